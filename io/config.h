/* config.h: a run's whole configuration (model, data, training, optimizer,
 * output), read from an INI file, overridden by "--set section.key=value",
 * checked across keys, and written back as INI text for checkpoints. */
#ifndef TX_CONFIG_H
#define TX_CONFIG_H

#include "../core/base.h"
#include "../data/data.h"
#include "../layers/model.h"
#include "../optim/optim.h"

typedef struct tx_train_config {
    int batch_size;         /* examples per micro-batch */
    int steps;              /* optimizer steps */
    int eval_every;         /* steps between validations */
    int checkpoint_every;   /* steps between checkpoints; 0: only at the end */
    int threads;            /* 0: the OpenMP default */
    uint64_t seed;          /* initialisation and dropout */
    double target_accuracy; /* stop at this validation accuracy; 0: off */
    double target_loss;     /* stop at this validation loss or below; 0: off */
    int accumulate;         /* micro-batches per optimizer step */
    double label_smoothing; /* [0, 1) */
    int log_every;          /* steps between progress lines */
    int eval_examples;      /* validation set size, copied to data.valid_examples */
} tx_train_config;

/* Every key of every section, for remembering where each was set. */
#define TX_CONFIG_KEYS 51

typedef struct tx_config {
    tx_model_config model; /* src_vocab, tgt_vocab: set by the trainer */
    tx_data_config data;
    tx_train_config train;
    tx_optim_config optim;
    char out_dir[512];
    char name[128];        /* config file stem */
    /* Where values came from, for messages: source file, and per key its
     * line there (0: default, -1: --set). */
    char source[512];
    int line[TX_CONFIG_KEYS];
} tx_config;

/* Defaults suited to the copy task (table in config.c), name "default". */
void tx_config_defaults(tx_config *c);
/* Defaults, then the INI file at path. name becomes the file's stem, paths
 * in [data] are taken relative to the file's directory and [output] dir
 * defaults to runs/<name>. Returns TX_OK or TX_EINPUT ("PATH: cannot
 * read: ..." or "FILE:LINE: [section] key: expected ..., got '...'"); on
 * failure c is unchanged. */
int tx_config_load(tx_config *c, const char *path, tx_err *err);
/* The same from INI text (as tx_config_write makes it); origin names it in
 * messages and gives name its default; paths are used as written. */
int tx_config_load_string(tx_config *c, const char *text, const char *origin,
                          tx_err *err);
/* Applies "section.key=value" (messages start "--set section.key: ");
 * paths are relative to the working directory. c is unchanged on failure. */
int tx_config_set(tx_config *c, const char *assignment, tx_err *err);
/* Checks between keys (d_model divisible by heads, min_len <= max_len, the
 * layer counts of the model kind, TSV files readable); the message names
 * where the offending key was set. Returns TX_OK or TX_EINPUT. */
int tx_config_validate(const tx_config *c, tx_err *err);
/* The full config as INI text into buf [n] (truncated, always terminated
 * when n > 0); returns the length the whole text needs, like snprintf. */
int tx_config_write(const tx_config *c, char *buf, size_t n);

#endif
