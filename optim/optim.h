/* optim.h: optimizers over a whole tx_params block (one loop each), global-norm
 * gradient clipping and learning-rate schedules, with PyTorch's semantics. */
#ifndef TX_OPTIM_H
#define TX_OPTIM_H

#include "../core/tensor.h"

enum { TX_OPT_ADAM, TX_OPT_ADAMW, TX_OPT_SGD };
enum { TX_SCHED_CONSTANT, TX_SCHED_NOAM, TX_SCHED_COSINE };
enum { TX_DECAY_ALL, TX_DECAY_MATRICES };

typedef struct tx_optim_config {
    int name;            /* TX_OPT_* */
    double lr;           /* peak / base learning rate (Noam: the factor) */
    double beta1, beta2; /* Adam; SGD uses beta1 as momentum */
    double eps;
    double weight_decay;
    int decay;           /* TX_DECAY_*: which parameters weight decay applies to */
    int schedule;        /* TX_SCHED_* */
    int warmup;          /* steps */
    int total_steps;     /* for cosine decay (the run's steps) */
    double clip_norm;    /* 0: off */
} tx_optim_config;

/* Optimizer state for one tx_params block. Adam/AdamW: m and v are the first
 * and second moments; SGD: m is the momentum buffer and v is NULL. Both are
 * kept in tx_real, like torch keeps its state in the parameters' dtype, and
 * are public so checkpoints can save and restore them together with t. */
/* A run of the parameter block with or without weight decay. */
typedef struct tx_optim_span {
    size_t lo, hi; /* elements [lo, hi) */
    int decay;     /* weight decay applies */
} tx_optim_span;

typedef struct tx_optim {
    tx_optim_config cfg;
    long t;        /* steps taken so far */
    size_t size;   /* elements of the parameter block */
    size_t lo, hi; /* the shard this optimizer updates: [0, size), or one
                      process's part when several share the work (ZeRO-1) */
    tx_real *m;    /* [hi - lo], element i of the block at m[i - lo] */
    tx_real *v;    /* [hi - lo], NULL for SGD */
    tx_optim_span *spans; /* [nspans] covering [lo, hi) in order */
    int nspans;
} tx_optim;

/* Zeroed state for the block of p (declared; allocated or not). With
 * cfg->decay TX_DECAY_MATRICES weight decay applies only to tensors of two
 * or more dimensions (matrices and embeddings, not biases and norms), as
 * GPT-2 and nanoGPT train. Aborts if the heap is exhausted; tx_optim_free
 * releases the buffers. */
void tx_optim_init(tx_optim *o, const tx_optim_config *cfg, const tx_params *p);
/* The same for the shard [lo, hi) of the block only: state for hi - lo
 * elements, and tx_optim_step updates those alone. */
void tx_optim_init_shard(tx_optim *o, const tx_optim_config *cfg, const tx_params *p,
                         size_t lo, size_t hi);
void tx_optim_free(tx_optim *o);

/* One update of p->data from p->grad with learning rate lr (the schedule is
 * applied by the caller), as torch.optim.Adam / AdamW / SGD (dampening 0, no
 * Nesterov), of the elements of o's shard. Increments o->t. Elementwise, so
 * the result does not depend on the thread count or the sharding. */
void tx_optim_step(tx_optim *o, tx_params *p, double lr);

/* Global L2 norm of every gradient, then, as torch.nn.utils.clip_grad_norm_,
 * gradients scaled by max_norm / (norm + 1e-6) when that is below 1 (so
 * max_norm 0 zeroes them: pass INFINITY to measure without clipping). Returns
 * the norm before clipping. If it is NaN or inf nothing is scaled (torch
 * would turn the gradients into NaN): the caller decides, e.g. skips the step.
 * Summed in a fixed order, so the same bits whatever the thread count. */
double tx_clip_grad_norm(tx_params *p, double max_norm);

/* The pieces of tx_clip_grad_norm, for processes that each hold a part of
 * the gradient: the block is cut into TX_NORM_CHUNKS chunks of
 * tx_norm_chunk(size) elements (a function of the size alone); sq[c - c0]
 * gets Σ g² over chunk c for c in [c0, c1); the norm is the square root of
 * the chunks' sums added in chunk order; tx_grad_scale scales [lo, hi). */
#define TX_NORM_CHUNKS 64
size_t tx_norm_chunk(size_t size);
void tx_grad_sq_chunks(const tx_params *p, int c0, int c1, double *sq);
double tx_norm_of_chunks(const double *sq); /* sq [TX_NORM_CHUNKS] */
/* The factor clipping to max_norm applies for this norm (1: none). */
double tx_clip_factor(double norm, double max_norm);
void tx_grad_scale(tx_params *p, size_t lo, size_t hi, double s);

/* Cosine decay ends at this fraction of cfg->lr, so training never stops. */
#define TX_COSINE_FLOOR 0.1

/* Learning rate for step (1-based) under cfg->schedule:
 *   constant: lr, ramped linearly as lr·step/warmup over the first warmup steps;
 *   noam:     lr·d_model^-0.5·min(step^-0.5, step·warmup^-1.5);
 *   cosine:   lr·step/warmup up to step == warmup, then half a cosine from lr
 *             down to TX_COSINE_FLOOR·lr at total_steps, constant after.
 * warmup == 0 means no warmup. d_model is only read by noam. */
double tx_schedule_lr(const tx_optim_config *cfg, int d_model, long step);

#endif
