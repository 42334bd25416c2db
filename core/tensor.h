/* tensor.h: tensors (contiguous, row-major, up to 4 dimensions), the per-step
 * activation arena they live in, and the parameter block that holds every
 * trainable tensor (and its gradient) in one contiguous allocation. */
#ifndef TX_TENSOR_H
#define TX_TENSOR_H

#include "base.h"

#define TX_MAXDIM 4

typedef struct tx_tensor {
    int ndim;
    int shape[TX_MAXDIM];
    size_t size;       /* product of shape */
    tx_real *data;     /* [size] */
    tx_real *grad;     /* [size], NULL when no gradient is needed */
    const char *name;  /* parameters only: "encoder.layers.0.norm1.weight" */
    /* An op output's gradient is not zeroed when it is allocated: grad_set
     * says whether it holds values yet (see tx_grad_add). Parameters and
     * leaves have it set from the start. A view (reshape, a row block of a
     * parameter) keeps the flag of the tensor it views, its base. */
    int grad_set;
    struct tx_tensor *base; /* NULL, or the tensor this one views */
} tx_tensor;

/* "[2, 3, 4]" into buf (for error messages); returns buf. */
char *tx_shape_str(const tx_tensor *t, char *buf, size_t n);
int tx_same_shape(const tx_tensor *a, const tx_tensor *b);
/* Number of rows when the last dimension is the row: size / shape[ndim-1]. */
size_t tx_rows(const tx_tensor *t);
int tx_last(const tx_tensor *t); /* shape[ndim-1] */

/* ---- arena ------------------------------------------------------------ */
/* A bump allocator reset after every step. When the current chunk is full a
 * new one is added; the next reset folds all chunks into one block the size
 * of the high-water mark, so from the second identical step on nothing is
 * malloc'd. */
typedef struct tx_arena_chunk {
    char *base;
    size_t cap, used;
} tx_arena_chunk;

typedef struct tx_arena {
    tx_arena_chunk *chunks; /* [n]; the last one is being filled */
    int n, capn;
    size_t inuse;           /* bytes handed out since the last reset */
    size_t high;            /* most bytes ever in use at once */
    long mallocs;           /* heap allocations made, ever (for the tests) */
} tx_arena;

/* 64-byte aligned, uninitialised; aborts if the heap is exhausted. */
void *tx_arena_alloc(tx_arena *a, size_t bytes);
void tx_arena_reset(tx_arena *a);
/* Gives back everything allocated since inuse was `mark`. */
void tx_arena_release(tx_arena *a, size_t mark);
void tx_arena_free(tx_arena *a);

/* ---- parameters --------------------------------------------------------- */
/* Start from a zeroed struct (tx_params p = {0}), declare every parameter
 * (tx_params_new), then tx_params_alloc gives
 * them one block for data and one for gradients, both zeroed. Tensor structs
 * are heap-allocated one by one, so pointers taken at declaration stay valid. */
enum { TX_INIT_ZERO, TX_INIT_ONE, TX_INIT_XAVIER, TX_INIT_NORMAL };

typedef struct tx_params {
    tx_tensor **list;  /* [n] in declaration order */
    unsigned char *init; /* [n] TX_INIT_* */
    int n, cap;
    size_t size;       /* total elements */
    tx_real *data;     /* [size] */
    tx_real *grad;     /* [size] */
} tx_params;

/* name is copied; init is TX_INIT_*; the shape follows as ndim ints. Aborts on
 * a duplicate name or after tx_params_alloc. */
tx_tensor *tx_params_new(tx_params *p, const char *name, int init, int ndim,
                         ...);
void tx_params_alloc(tx_params *p);
/* Fills every tensor by its init kind, in declaration order, from rng:
 * Xavier-uniform U(±sqrt(6/(fan_in+fan_out))) with fan_in = shape[1],
 * fan_out = shape[0] (as torch.nn.init.xavier_uniform_ for 2-D), N(0, 1). */
void tx_params_init(tx_params *p, tx_rng *rng);
void tx_params_zero_grad(tx_params *p);
/* The lean alternative for a training step: grad_begin marks every
 * gradient unwritten without touching memory, so the step's first backward
 * contribution to each assigns it (tx_grad_add) and later ones add;
 * grad_end zeroes the gradients no backward wrote. Read gradients only after
 * grad_end. */
void tx_params_grad_begin(tx_params *p);
void tx_params_grad_end(tx_params *p);
/* Points every parameter's gradient into buf [p->size] (NULL: back into
 * p->grad), same layout: a backward then writes its gradients there, and
 * the caller can add them to p->grad in an order it chooses. */
void tx_params_grad_into(tx_params *p, tx_real *buf);
tx_tensor *tx_params_find(const tx_params *p, const char *name); /* or NULL */
void tx_params_free(tx_params *p);

#endif
