/* train.h: the training loop: a model, its data and optimizer built from a
 * tx_config, progress on the terminal, validation, metrics.csv, checkpoints,
 * exact resume, Ctrl-C, and one run at a time per output directory. */
#ifndef TX_TRAIN_H
#define TX_TRAIN_H

#include <signal.h>

#include "../dist/dist.h"
#include "../io/config.h"

typedef struct tx_train_opts {
    int resume;         /* continue from OUT/checkpoint.safetensors */
    long stop_at;       /* > 0: stop after this step as if interrupted */
    int quiet;          /* no progress lines (tests) */
    int examples;       /* decoded validation examples printed at the end */
    int detect_anomaly; /* name the first op that makes a NaN/inf */
    volatile sig_atomic_t *interrupted; /* set by the caller's SIGINT handler */
    /* Fault injection for the tests: SIGKILL the process (of rank kill_rank,
     * -1: every rank) at the start of step kill_at (> 0), or with
     * kill_in_write halfway through writing that step's checkpoint. */
    long kill_at;
    int kill_in_write;
    int kill_rank;
    /* the processes training together (tx_dist_init); NULL: this one alone */
    const tx_dist *dist;
} tx_train_opts;

/* Runs cfg to its end (steps, target accuracy, Ctrl-C or stop_at), writing
 * OUT/checkpoint.safetensors and OUT/metrics.csv and holding OUT/train.lock
 * meanwhile. Progress goes to stdout. Returns TX_OK, TX_EINPUT (bad input:
 * data, a checkpoint to resume, a model too big for the memory, OUT in use
 * by another run, a NaN) or TX_EIO (an output cannot be written) with a
 * one-line message in err, or TX_EINTERRUPTED after saving on Ctrl-C. */
enum { TX_EINTERRUPTED = 130 };
int tx_train(const tx_config *cfg, const tx_train_opts *opts, tx_err *err);

#endif
