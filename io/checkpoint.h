/* checkpoint.h: a training run's whole state in one safetensors file:
 * weights (by parameter name), optimizer moments, and in the metadata the
 * step, the data stream's position, the config (INI text) and vocabulary. */
#ifndef TX_CHECKPOINT_H
#define TX_CHECKPOINT_H

#include "../data/data.h"
#include "../optim/optim.h"
#include "safetensors.h"

#define TX_CHECKPOINT_FORMAT "tapeformer-checkpoint-1"
#define TX_WEIGHTS_FORMAT "tapeformer-weights-1" /* export: weights only */

/* What a model file says beside the weights (its metadata): enough for the
 * tools to rebuild the model and read and write its text. */
typedef struct tx_model_info {
    const char *config;   /* INI text (tx_config_write) */
    const char *vocab;    /* tx_vocab_to_string */
    int max_src, max_tgt; /* longest training source / target in tokens; 0: not recorded */
} tx_model_info;

typedef struct tx_run_state {
    long step;                    /* optimizer steps completed */
    uint64_t data_pos[TX_DATA_POS];
} tx_run_state;

/* Writes atomically (PATH.tmp then rename). o may be NULL (weights only, as
 * `export` writes them, in float32 whatever tx_real is). Returns TX_OK or
 * TX_EIO with "PATH: reason"; an old PATH survives any failure. */
int tx_checkpoint_save(const char *path, const tx_params *p, const tx_optim *o,
                       const tx_run_state *st, const tx_model_info *info, tx_err *err);

/* After tx_st_read: info's fields from the metadata (pointing into f); a
 * missing config or vocab is TX_EINPUT "PATH: metadata KEY: missing"; an
 * absent or malformed longest_example leaves max_src and max_tgt 0. */
int tx_checkpoint_info(const tx_st_file *f, const char *path, tx_model_info *info,
                       tx_err *err);

/* After tx_st_read: checks that every parameter of p (declared, allocated
 * or not) is stored with its shape and a float dtype, so a caller can refuse
 * a file before allocating the model it describes. TX_OK or TX_EINPUT with
 * "PATH: tensor NAME: ...". */
int tx_checkpoint_check(const tx_st_file *f, const char *path,
                        const tx_params *p, tx_err *err);

/* After tx_st_read: copies every parameter of p (which must be allocated)
 * from f by name, checking shapes and rejecting NaN/inf; then, if o is
 * non-NULL, the optimizer moments (of a shard, its part) and st. Returns TX_OK or TX_EINPUT with
 * "PATH: tensor NAME: ..." (p and o may then be partly overwritten). */
int tx_checkpoint_restore(const tx_st_file *f, const char *path, tx_params *p,
                          tx_optim *o, tx_run_state *st, tx_err *err);

#endif
