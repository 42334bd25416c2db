/* tape.h: the Wengert list. Every op run on a tape allocates its output from
 * the tape's arena and, unless the tape is in no-grad mode or no input needs a
 * gradient, appends a node; tx_tape_backward walks the nodes in reverse. */
#ifndef TX_TAPE_H
#define TX_TAPE_H

#include "tensor.h"

typedef struct tx_node tx_node;
typedef void (*tx_backward_fn)(tx_node *n);

struct tx_node {
    const char *op;          /* "matmul", "layer_norm", ... */
    tx_backward_fn backward; /* reads out->grad, accumulates into in[i]->grad */
    tx_tensor *out;
    tx_tensor *in[4];        /* unused slots NULL */
    void *saved;             /* the op's own state struct (arena), or NULL */
    tx_node *prev;
};

typedef struct tx_tape {
    tx_arena arena;
    tx_node *last;     /* most recent node, NULL when empty */
    int nnodes;
    int no_grad;       /* record nothing, save nothing, outputs have no grad */
    int training;      /* dropout active */
    uint64_t seed;     /* dropout key of this step (set by the caller) */
    uint64_t ncalls;   /* dropout calls since reset: each gets its own stream */
    int detect_anomaly;      /* check every op's output and every gradient */
    const char *anomaly;     /* first op that produced NaN/inf, NULL if none */
    int anomaly_backward;    /* ... in its backward (1) or forward (0) */
} tx_tape;

void tx_tape_init(tx_tape *tp);
/* Forgets all nodes and frees every activation (arena reset). Keeps the
 * settings (no_grad, training, seed, detect_anomaly) and the anomaly found. */
void tx_tape_reset(tx_tape *tp);
void tx_tape_free(tx_tape *tp);

/* loss must be a one-element tensor with a gradient. Seeds dloss = 1 and runs
 * every node's backward in reverse order, skipping nodes whose output
 * received no gradient. Parameter gradients add to what they hold: zero them
 * first (tx_params_zero_grad), or call tx_params_grad_begin before the
 * forward pass and tx_params_grad_end after the backward, which spares the
 * zeroing (some forwards already touch parameter gradients). */
void tx_tape_backward(tx_tape *tp, tx_tensor *loss);

/* Leaf tensor from the arena: data uninitialised, grad zeroed (and set) if
 * requested. */
tx_tensor *tx_tensor_new(tx_tape *tp, int requires_grad, int ndim, ...);
tx_tensor *tx_tensor_newv(tx_tape *tp, int requires_grad, int ndim,
                          const int *shape);
/* Arena scratch memory that lives until the next reset. */
void *tx_tape_alloc(tx_tape *tp, size_t bytes);

/* No-grad mode only: everything allocated after a mark is given back by
 * tx_tape_release (decoding frees each step's activations this way, keeping
 * the encoder's output). */
size_t tx_tape_mark(const tx_tape *tp);
void tx_tape_release(tx_tape *tp, size_t mark);

/* For op implementations: the output tensor, whose grad exists iff the tape
 * records and any of the inputs a, b, c (unused ones NULL) has a grad; and
 * the node, recorded after the output's data is computed (detect_anomaly
 * checks it there). tx_op_record returns NULL when nothing is recorded. */
tx_tensor *tx_op_output(tx_tape *tp, int ndim, const int *shape,
                        tx_tensor *a, tx_tensor *b, tx_tensor *c);
tx_node *tx_op_record(tx_tape *tp, const char *op, tx_backward_fn bw,
                      tx_tensor *out, tx_tensor *a, tx_tensor *b,
                      tx_tensor *c);
/* Arena memory of `bytes` for the op's saved state, hung on n as n->saved;
 * NULL when n is NULL (nothing recorded, nothing to save). Each op declares
 * its state as a struct: `matmul_state *s = tx_op_save(tp, n, sizeof *s);`. */
void *tx_op_save(tx_tape *tp, tx_node *n, size_t bytes);
/* What a backward calls for each input x it writes, before writing:
 * returns 1 if x's gradient already holds values (add to them), 0 if this
 * is the first contribution (assign: the memory is uninitialised), and
 * marks it as holding values. Every op's backward that can write its whole
 * input gradient assigns on the first write instead of zeroing and adding. */
static inline int tx_grad_add(tx_tensor *x) {
    tx_tensor *o = x->base ? x->base : x;
    int had = o->grad_set;
    o->grad_set = 1;
    return had;
}
/* For backward code that can only add (scatter-adds, partial writes): zeroes
 * x's gradient first if nothing was written yet. */
void tx_grad_prepare(tx_tensor *x);
/* Non-NULL grad means "needs a gradient". */
static inline int tx_needs_grad(const tx_tensor *t) { return t && t->grad; }

#endif
