/* gradcheck.c: central finite differences against the tape's gradients, and
 * the gradcheck cases of every core op. */
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

/* ==== cases for the core ops ============================================== */

/* Leaves of one check, declared from a spec such as "2x3x5,5". */
typedef struct op_ctx {
    tx_params p;
    tx_tensor *in[4];
    int v; /* variant, meaning chosen by each case */
} op_ctx;

static void run_case(tx_gc_stats *st, tx_gc_fn fn, int v, const char *spec,
                     int zero_first) {
    op_ctx c;
    memset(&c, 0, sizeof c);
    c.v = v;
    for (int k = 0; *spec && k < 4; k++) {
        int d[4] = {0}, nd = 0;
        while (*spec && *spec != ',') {
            d[nd++] = (int)strtol(spec, (char **)&spec, 10);
            if (*spec == 'x') spec++;
        }
        if (*spec == ',') spec++;
        char name[8] = {'x', (char)('0' + k), 0};
        c.in[k] = tx_params_new(&c.p, name, TX_INIT_ZERO, nd, d[0], d[1], d[2], d[3]);
    }
    tx_params_alloc(&c.p);
    tx_gc_randomize(&c.p, 1000 + (uint64_t)v + c.p.size);
    if (zero_first) c.p.data[0] = 0;
    tx_gradcheck(&c.p, fn, &c, st);
    tx_params_free(&c.p);
}

#define PROJECT(tp, t) tx_gc_project(tp, t, 7)

static tx_tensor *gc_add(tx_tape *tp, void *c) {
    op_ctx *o = c;
    return PROJECT(tp, tx_add(tp, o->in[0], o->in[1]));
}
static void run_add(tx_gc_stats *st) {
    run_case(st, gc_add, 0, "3x5,3x5", 0);
    run_case(st, gc_add, 0, "2x3x5,5", 0);
    run_case(st, gc_add, 0, "2x3x5,3x5", 0);
}

static tx_tensor *gc_sub(tx_tape *tp, void *c) {
    op_ctx *o = c;
    return PROJECT(tp, tx_sub(tp, o->in[0], o->in[1]));
}
static void run_sub(tx_gc_stats *st) { run_case(st, gc_sub, 0, "4x3,4x3", 0); }

static tx_tensor *gc_mul(tx_tape *tp, void *c) {
    op_ctx *o = c;
    return PROJECT(tp, tx_mul(tp, o->in[0], o->in[1]));
}
static void run_mul(tx_gc_stats *st) { run_case(st, gc_mul, 0, "2x3x5,2x3x5", 0); }

static tx_tensor *gc_scale(tx_tape *tp, void *c) {
    op_ctx *o = c;
    return PROJECT(tp, tx_scale(tp, o->in[0], (tx_real)-1.7));
}
static void run_scale(tx_gc_stats *st) { run_case(st, gc_scale, 0, "7", 0); }

/* v: bit 0 transposes a, bit 1 transposes b. */
static tx_tensor *gc_matmul(tx_tape *tp, void *c) {
    op_ctx *o = c;
    return PROJECT(tp, tx_matmul(tp, o->in[0], o->in[1], o->v & 1, o->v >> 1 & 1));
}
static void run_matmul(tx_gc_stats *st) {
    /* M 3, K 5, N 4, every transpose combination: 2-D, batched, shared b. */
    static const char *two[4] = {"3x5,5x4", "5x3,5x4", "3x5,4x5", "5x3,4x5"};
    static const char *bat[4] = {"2x3x5,2x5x4", "2x5x3,2x5x4", "2x3x5,2x4x5",
                                 "2x5x3,2x4x5"};
    static const char *shr[4] = {"2x3x3x5,5x4", "2x3x5x3,5x4", "2x3x3x5,4x5",
                                 "2x3x5x3,4x5"};
    for (int v = 0; v < 4; v++) {
        run_case(st, gc_matmul, v, two[v], 0);
        run_case(st, gc_matmul, v, bat[v], 0);
        run_case(st, gc_matmul, v, shr[v], 0);
    }
}

/* v: 0 with a bias, 1 without. */
static tx_tensor *gc_affine(tx_tape *tp, void *c) {
    op_ctx *o = c;
    return PROJECT(tp, tx_affine(tp, o->in[0], o->in[1], o->v ? NULL : o->in[2]));
}
static void run_affine(tx_gc_stats *st) {
    run_case(st, gc_affine, 0, "3x5,4x5,4", 0);
    run_case(st, gc_affine, 0, "2x3x5,4x5,4", 0);
    run_case(st, gc_affine, 1, "3x5,4x5", 0);
}

static tx_tensor *gc_relu(tx_tape *tp, void *c) {
    op_ctx *o = c;
    return PROJECT(tp, tx_relu(tp, o->in[0]));
}
static void run_relu(tx_gc_stats *st) {
    run_case(st, gc_relu, 0, "3x7", 0);
    run_case(st, gc_relu, 0, "3x7", 1); /* an element exactly at the kink */
}

static tx_tensor *gc_gelu(tx_tape *tp, void *c) {
    op_ctx *o = c;
    return PROJECT(tp, tx_gelu(tp, o->in[0]));
}
static void run_gelu(tx_gc_stats *st) { run_case(st, gc_gelu, 0, "3x7", 0); }

/* v 0: no mask; 1: causal [T, T]; 2: key padding [B, 1, 1, Tk] with one
 * batch item fully padded; 3: combined [B, 1, Tq, Tk]. */
static tx_tensor *gc_softmax(tx_tape *tp, void *c) {
    op_ctx *o = c;
    tx_tensor *x = o->in[0];
    int B = x->ndim == 4 ? x->shape[0] : 1, Tq = x->shape[x->ndim - 2],
        Tk = tx_last(x);
    static const int lengths[2] = {3, 0};
    tx_tensor *m = o->v == 1 ? tx_mask_causal(tp, Tq, Tk)
                 : o->v == 2 ? tx_mask_padding(tp, lengths, B, Tk)
                 : o->v == 3 ? tx_mask_make(tp, B, Tq, Tk, 1, lengths)
                             : NULL;
    return PROJECT(tp, tx_softmax(tp, x, m));
}
static void run_softmax(tx_gc_stats *st) {
    run_case(st, gc_softmax, 0, "3x5", 0);
    run_case(st, gc_softmax, 1, "2x4x4", 0);
    run_case(st, gc_softmax, 2, "2x3x2x5", 0);
    run_case(st, gc_softmax, 3, "2x2x3x5", 0);
}

static tx_tensor *gc_log_softmax(tx_tape *tp, void *c) {
    op_ctx *o = c;
    return PROJECT(tp, tx_log_softmax(tp, o->in[0]));
}
static void run_log_softmax(tx_gc_stats *st) {
    run_case(st, gc_log_softmax, 0, "3x5", 0);
    run_case(st, gc_log_softmax, 0, "2x2x7", 0);
}

/* v 0: plain; 1: label smoothing 0.1; both with ignored rows (target 0). */
static tx_tensor *gc_cross_entropy(tx_tape *tp, void *c) {
    op_ctx *o = c;
    static const int targets[6] = {2, 0, 4, 1, 0, 3};
    return tx_cross_entropy(tp, o->in[0], targets, 0, o->v ? (tx_real)0.1 : 0);
}
static void run_cross_entropy(tx_gc_stats *st) {
    run_case(st, gc_cross_entropy, 0, "6x5", 0);
    run_case(st, gc_cross_entropy, 1, "2x3x5", 0);
}

static tx_tensor *gc_layer_norm(tx_tape *tp, void *c) {
    op_ctx *o = c;
    return PROJECT(tp, tx_layer_norm(tp, o->in[0], o->in[1], o->in[2], (tx_real)1e-5));
}
static void run_layer_norm(tx_gc_stats *st) {
    run_case(st, gc_layer_norm, 0, "3x5,5,5", 0);
    run_case(st, gc_layer_norm, 0, "2x3x4,4", 0); /* no bias */
}

static tx_tensor *gc_embedding(tx_tape *tp, void *c) {
    op_ctx *o = c;
    static const int ids[6] = {4, 1, 4, 0, 2, 1}; /* repeats scatter-add */
    return PROJECT(tp, tx_embedding(tp, o->in[0], ids, 2, 3));
}
static void run_embedding(tx_gc_stats *st) { run_case(st, gc_embedding, 0, "5x3", 0); }

static tx_tensor *gc_dropout(tx_tape *tp, void *c) {
    op_ctx *o = c;
    return PROJECT(tp, tx_dropout(tp, o->in[0], (tx_real)0.3));
}
static void run_dropout(tx_gc_stats *st) { run_case(st, gc_dropout, 0, "4x9", 0); }

/* v 0: split then merge heads of [B, T, H·D] around a product (so the split
 * layout matters); 1: a general permute {2, 0, 1} of a reshaped tensor. */
static tx_tensor *gc_heads(tx_tape *tp, void *c) {
    op_ctx *o = c;
    if (o->v == 0) {
        tx_tensor *h = tx_split_heads(tp, o->in[0], 3);
        return PROJECT(tp, tx_merge_heads(tp, tx_mul(tp, h, h)));
    }
    tx_tensor *r = tx_reshape(tp, o->in[0], 3, 2, -1, 5);
    return PROJECT(tp, tx_permute(tp, r, (const int[]){2, 0, 1}));
}
static void run_heads(tx_gc_stats *st) {
    run_case(st, gc_heads, 0, "2x3x6", 0);
    run_case(st, gc_heads, 1, "6x5", 0);
}

static tx_tensor *gc_sum(tx_tape *tp, void *c) {
    op_ctx *o = c;
    tx_tensor *sq = tx_mul(tp, o->in[0], o->in[0]);
    return o->v ? tx_mean(tp, sq) : tx_sum(tp, sq);
}
static void run_sum(tx_gc_stats *st) {
    run_case(st, gc_sum, 0, "3x4", 0);
    run_case(st, gc_sum, 1, "2x5", 0);
}

/* v 0: self, no mask; 1: causal with padding; 2: cross (Tq 3, Tk 5) with
 * key padding. q [B, H, Tq, D], k and v [B, H, Tk, D]. */
static tx_tensor *gc_attention(tx_tape *tp, void *c) {
    op_ctx *o = c;
    tx_tensor *q = o->in[0], *k = o->in[1];
    static const int lengths[2] = {4, 2};
    tx_tensor *m = o->v ? tx_mask_make(tp, q->shape[0], q->shape[2], k->shape[2],
                                       o->v == 1, lengths)
                        : NULL;
    return PROJECT(tp, tx_attention(tp, q, k, o->in[2], m, (tx_real)0.6, NULL));
}
static void run_attention(tx_gc_stats *st) {
    run_case(st, gc_attention, 0, "1x2x3x3,1x2x3x3,1x2x3x3", 0);
    run_case(st, gc_attention, 1, "2x2x4x3,2x2x4x3,2x2x4x3", 0);
    run_case(st, gc_attention, 2, "2x1x3x5,2x1x5x5,2x1x5x5", 0);
}

const tx_gc_case tx_gc_core_cases[] = {
    {"add", run_add},
    {"sub", run_sub},
    {"mul", run_mul},
    {"scale", run_scale},
    {"matmul", run_matmul},
    {"affine", run_affine},
    {"relu", run_relu},
    {"gelu", run_gelu},
    {"softmax", run_softmax},
    {"log_softmax", run_log_softmax},
    {"cross_entropy", run_cross_entropy},
    {"layer_norm", run_layer_norm},
    {"embedding", run_embedding},
    {"dropout", run_dropout},
    {"reshape_permute", run_heads},
    {"sum_mean", run_sum},
    {"attention", run_attention},
    {NULL, NULL},
};
