/* gradcheck.c: central finite differences against the tape's gradients. */
#include "gradcheck.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double loss_at(tx_tape *tp, tx_gc_fn fn, void *ctx) {
    tx_tape_reset(tp);
    tp->no_grad = 1;
    double v = fn(tp, ctx)->data[0];
    tp->no_grad = 0;
    return v;
}

long tx_gradcheck(tx_params *leaves, tx_gc_fn fn, void *ctx, tx_gc_stats *st) {
    tx_tape tp;
    tx_tape_init(&tp);
    tp.training = 1;
    tp.seed = 1234;
    tx_params_zero_grad(leaves);
    tx_tensor *loss = fn(&tp, ctx);
    tx_tape_backward(&tp, loss);
    long failed = 0;
    const double eps = TX_GC_EPS;
    for (size_t i = 0; i < leaves->size; i++) {
        tx_real keep = leaves->data[i];
        leaves->data[i] = keep + (tx_real)eps;
        double fp = loss_at(&tp, fn, ctx);
        leaves->data[i] = keep - (tx_real)eps;
        double fm = loss_at(&tp, fn, ctx);
        leaves->data[i] = keep;
        double num = (fp - fm) / (2 * eps), ana = leaves->grad[i];
        double err = fabs(ana - num);
        int ok = err <= TX_GC_ATOL + TX_GC_RTOL * fabs(num);
        if (!ok) {
            /* A kink (relu at 0): the one-sided slopes disagree, and any value
             * between them is a valid subgradient. */
            double f0 = loss_at(&tp, fn, ctx);
            double right = (fp - f0) / eps, left = (f0 - fm) / eps;
            double lo = fmin(left, right) - TX_GC_ATOL, hi = fmax(left, right) + TX_GC_ATOL;
            if (fabs(right - left) > TX_GC_ATOL + TX_GC_RTOL * fabs(num) && ana >= lo && ana <= hi) {
                st->kinks++;
                ok = 1;
                err = 0;
            }
        }
        st->checked++;
        if (!ok) failed++;
        if (err > st->max_abs) st->max_abs = err;
        if (fabs(num) > TX_GC_ATOL && err / fabs(num) > st->max_rel)
            st->max_rel = err / fabs(num);
    }
    st->failed += failed;
    tx_tape_free(&tp);
    return failed;
}

tx_tensor *tx_gc_project(tx_tape *tp, tx_tensor *out, uint64_t seed) {
    tx_tensor *r = tx_tensor_newv(tp, 0, out->ndim, out->shape);
    for (size_t i = 0; i < r->size; i++)
        r->data[i] = (tx_real)(2 * tx_hash_uniform(seed, i) - 1);
    return tx_sum(tp, tx_mul(tp, out, r));
}

void tx_gc_randomize(tx_params *leaves, uint64_t seed) {
    tx_rng rng;
    tx_rng_seed(&rng, seed);
    for (size_t i = 0; i < leaves->size; i++)
        leaves->data[i] = (tx_real)(2 * tx_rng_uniform(&rng) - 1);
}
