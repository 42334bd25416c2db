/* model_io.h: a trained model opened for the tools (generate, score, eval,
 * export, attention): a training checkpoint or an exported weights file,
 * both safetensors carrying the config and vocabulary in their metadata. */
#ifndef TX_MODEL_IO_H
#define TX_MODEL_IO_H

#include "checkpoint.h"
#include "config.h"

typedef struct tx_trained {
    tx_config cfg;      /* cfg.model as built: vocab sizes and max_len filled in */
    tx_vocab vocab;
    tx_model model;
    tx_params params;   /* allocated, holding the stored weights */
    tx_model_info info; /* the metadata as stored (owned copies), for export */
} tx_trained;

/* Reads path, checks its metadata (format, config, vocabulary), builds the
 * model and restores every parameter; a stored tensor that is no parameter
 * (optimizer state aside) is an error. max_len comes from the learned
 * position table if there is one, else from the stored config. Returns TX_OK
 * (release with tx_trained_free), or TX_EINPUT with one line
 * "PATH: ..." in err and nothing to free. */
int tx_trained_load(tx_trained *t, const char *path, tx_err *err);
void tx_trained_free(tx_trained *t);

/* Decoder positions left after a source of src_len tokens: learned positions
 * bound what fits (encoder-decoder M, decoder-only M - src_len); otherwise
 * nothing does and max_len is returned. */
int tx_trained_room(const tx_trained *t, int src_len);

/* Tokenizes src and tgt (NULL: no target) with the model's vocabulary into
 * ids [cap] (source first, then target) and points ex at them. Returns TX_OK,
 * or TX_EINPUT with "empty source", "source has N tokens, ..." when the
 * source is empty or, with the target and its EOS, does not fit the model. */
int tx_trained_example(const tx_trained *t, const char *src, const char *tgt,
                       tx_example *ex, int *ids, int cap, tx_err *err);

#endif
