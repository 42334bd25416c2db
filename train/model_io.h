/* model_io.h: a trained model opened for the tools (generate, score, eval,
 * export, attention): a training checkpoint or an exported weights file,
 * both safetensors carrying the config and vocabulary in their metadata. */
#ifndef TX_MODEL_IO_H
#define TX_MODEL_IO_H

#include "config.h"

#define TX_WEIGHTS_FORMAT "tapeformer-weights-1"

typedef struct tx_trained {
    tx_config cfg;      /* cfg.model as built: vocab sizes and max_len filled in */
    tx_vocab vocab;
    tx_model model;
    tx_params params;   /* allocated, holding the stored weights */
    char *config_text;  /* the metadata as stored, for export */
    char *vocab_text;
} tx_trained;

/* Reads path, checks its metadata (format, config, vocabulary), builds the
 * model and restores every parameter; a stored tensor that is no parameter
 * (optimizer state aside) is an error. max_len comes from the learned
 * position table if there is one, else from the stored config. Returns TX_OK
 * (release with tx_trained_free), or TX_EIO / TX_EINPUT with one line
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

/* Decodes one source text, greedily (beam 1) or by beam search with length
 * penalty exponent alpha (tx_decode_beam), for at most max_len tokens
 * (<= 0: tx_trained_room). *out gets n tokens, EOS excluded, in malloc'd
 * memory the caller frees. Runs on tp (left reset). Returns TX_OK, or
 * TX_EINPUT from tx_trained_example with *out NULL. */
int tx_trained_generate(const tx_trained *t, tx_tape *tp, const char *src, int beam,
                        double alpha, int max_len, int **out, int *n, tx_err *err);

#endif
