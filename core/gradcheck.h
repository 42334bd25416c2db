/* gradcheck.h: checks analytic gradients against central finite differences,
 * as torch.autograd.gradcheck (eps 1e-6, atol 1e-5, rtol 1e-3). Meaningful in
 * the double build (TX_DOUBLE). The checks themselves (every op and layer)
 * live in gradcheck/, outside the library. */
#ifndef TX_GRADCHECK_H
#define TX_GRADCHECK_H

#include "ops.h"

#define TX_GC_EPS 1e-6
#define TX_GC_ATOL 1e-5
#define TX_GC_RTOL 1e-3

typedef struct tx_gc_stats {
    long checked;   /* elements compared */
    long failed;    /* elements outside tolerance */
    long kinks;     /* elements at a non-differentiable point, see below */
    double max_abs; /* largest |analytic - numeric| */
    double max_rel; /* largest |analytic - numeric| / |numeric| (|numeric| > atol) */
} tx_gc_stats;

/* Builds a one-element loss on tp from the leaves (which live in a tx_params,
 * so the perturbation loop is one loop over one block). Must be a pure
 * function of the leaves' data: same values in, same loss out. */
typedef tx_tensor *(*tx_gc_fn)(tx_tape *tp, void *ctx);

/* Runs fn once with gradients, then twice per leaf element with the element
 * moved by ±eps, and accumulates into st. An element whose one-sided
 * differences disagree beyond tolerance sits on a kink (relu at 0): it passes
 * if the analytic value lies between them, and is counted in st->kinks.
 * Returns the number of failed elements in this call. */
long tx_gradcheck(tx_params *leaves, tx_gc_fn fn, void *ctx, tx_gc_stats *st);

/* sum(out ⊙ R) for a fixed random R drawn from seed: turns any output into a
 * scalar whose gradient reaches every element with a different weight. */
tx_tensor *tx_gc_project(tx_tape *tp, tx_tensor *out, uint64_t seed);
/* Fills every leaf with U(-1, 1) from seed. */
void tx_gc_randomize(tx_params *leaves, uint64_t seed);

#endif
