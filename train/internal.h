/* internal.h: the trainer's state, shared by the loop (train.c) and what it
 * reports (report.c: progress, metrics.csv, the end of a run). */
#ifndef TX_TRAIN_INTERNAL_H
#define TX_TRAIN_INTERNAL_H

#include "../decode/decode.h"
#include "../dist/dist.h"
#include "train.h"

#define TX_TIMED 4096

typedef struct trainer {
    const tx_config *cfg;
    const tx_train_opts *opts;
    tx_data data;
    tx_model model;
    tx_params params;
    tx_optim opt;
    tx_tape tape, eval_tape;
    tx_batch *micro;        /* [accumulate] one step's micro-batches */
    char *config_text, *vocab_text;
    char ckpt[1024], metrics[1024], lock[1024];
    int lock_fd;            /* held open (and locked) for the run's life */
    int tty;                /* stdout is a terminal: progress in place */
    long start;             /* step this run started from */
    long step;              /* steps completed */
    double t0;              /* start time */
    /* the step just taken */
    double loss, gnorm, lr;
    int evaluated;          /* validated at this step */
    tx_eval_result ev;      /* the last validation */
    /* throughput, over a window of about 2 s */
    double window_t, tps;
    long window_tokens;
    /* the last TX_TIMED steps' times, the part of each spent in the
     * exchange and in the optimizer (seconds, a ring), for the medians
     * printed at the end */
    double *step_s, *comm_s, *opt_s; /* [TX_TIMED] */
    long timed;                      /* steps timed in all */
    /* Several processes (see train.c, "the step"): rank r owns the norm's
     * chunks [chunk_displ[r], + chunk_count[r]) and the parameter elements
     * [elem_displ[r], + elem_count[r]) they cover: it sums their gradient,
     * updates them (its optimizer shard) and sends them to all. */
    const tx_dist *dist;
    int *elem_count, *elem_displ;   /* [size] */
    int *chunk_count, *chunk_displ; /* [size] */
    int *scount, *sdispl, *rcount, *rdispl; /* [size] the gradient exchange */
    tx_real *send, *recv;           /* its slices out, and in */
    tx_real *scratch;               /* one process, accumulate > 1: one micro-batch's gradient */
    double *mloss;                  /* [accumulate] each micro-batch's loss × its tokens */
    int stopping;                   /* agreed by every process */
} trainer;

/* Rank 0 reports and writes files; every rank trains. */
static inline int tx_train_is_root(const trainer *tr) { return tr->dist->rank == 0; }

double tx_train_now(void); /* seconds, monotonic */

/* metrics.csv: a fresh file with its header, or on resume the rows up to
 * tr->start kept. TX_OK or TX_EIO. */
int tx_train_metrics_open(trainer *tr, tx_err *err);
/* What a run prints at its start, after each step and at its end; the end
 * also draws curves.png and decodes opts->examples held-out examples. */
void tx_train_announce(trainer *tr);
void tx_train_report(trainer *tr);
void tx_train_finish(trainer *tr);

#endif
