/* ops.c: every differentiable operation, one section each: a banner, the
 * static backward, then the public forward. Forward saves what backward needs
 * on the node; backward accumulates (+=) into inputs that have a gradient.
 * Parallel loops write disjoint outputs, and every reduction runs in a fixed
 * order, so results are the same for any thread count. */
#include "ops.h"
#include "vmath.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "gemm.h"

/* Aborts naming the op and both shapes when ok is false. */
#define CHECK_SHAPES(ok, op, a, b, hint)                                       \
    do {                                                                       \
        if (!(ok)) {                                                           \
            char sa_[64], sb_[64];                                             \
            tx_fail(__FILE__, __LINE__, #ok, "%s: shapes %s and %s: %s", op,   \
                    tx_shape_str(a, sa_, sizeof sa_),                          \
                    tx_shape_str(b, sb_, sizeof sb_), hint);                   \
        }                                                                      \
    } while (0)

/* Row sums in double in LANES interleaved partial sums, added up in a fixed
 * order at the end: the partial sums fit one vector register, where a single
 * running sum would be a chain of dependent adds, and the order, hence the
 * result, does not depend on the thread count. One register: eight doubles
 * on AVX-512, four on AVX2, where eight went through the stack (layer norm's
 * forward pass 4x slower). The sums, so the last bits, differ between the two. */
#if defined(__AVX__) && !defined(__AVX512F__)
#define LANES 4
#else
#define LANES 8
#endif

static double lanes_total(const double *acc) {
#if LANES == 4
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
#else
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
#endif
}

/* The same lanes as vectors: LANES entries of x, and their sums in double.
 * Alignment: an entry's; x + j is a vector wherever j falls. */
typedef tx_real sum_vec __attribute__((vector_size(LANES * sizeof(tx_real)),
                                       aligned(sizeof(tx_real))));
typedef double sum_acc __attribute__((vector_size(LANES * sizeof(double)),
                                      aligned(sizeof(double))));

static inline sum_acc widen(const tx_real *x) {
    return __builtin_convertvector(*(const sum_vec *)x, sum_acc);
}

static inline double acc_total(sum_acc acc) {
    double part[LANES];
    memcpy(part, &acc, sizeof part);
    return lanes_total(part);
}

/* Σ x[j] for j < C. */
static double row_sum(const tx_real *x, int C) {
    double acc[LANES] = {0};
    int j = 0;
    for (; j + LANES <= C; j += LANES)
        for (int l = 0; l < LANES; l++) acc[l] += x[j + l];
    for (int l = 0; j < C; j++, l++) acc[l] += x[j];
    return lanes_total(acc);
}

/* Σ x[j]·y[j] for j < C, in double. */
static double row_dot(const tx_real *x, const tx_real *y, int C) {
    double acc[LANES] = {0};
    int j = 0;
    for (; j + LANES <= C; j += LANES)
        for (int l = 0; l < LANES; l++) acc[l] += (double)x[j + l] * y[j + l];
    for (int l = 0; j < C; j++, l++) acc[l] += (double)x[j] * y[j];
    return lanes_total(acc);
}

/* max x[j] for j < C (−inf when C = 0), in MAX_LANES running maxima that
 * vectorise (a single running maximum does not), the same value in any order. */
#define MAX_LANES 16
static tx_real row_max(const tx_real *x, int C) {
    tx_real acc[MAX_LANES];
    for (int l = 0; l < MAX_LANES; l++) acc[l] = -INFINITY;
    int j = 0;
    for (; j + MAX_LANES <= C; j += MAX_LANES)
        for (int l = 0; l < MAX_LANES; l++) acc[l] = x[j + l] > acc[l] ? x[j + l] : acc[l];
    for (int l = 0; j < C; j++, l++) acc[l] = x[j] > acc[l] ? x[j] : acc[l];
    tx_real mx = acc[0];
    for (int l = 1; l < MAX_LANES; l++) mx = acc[l] > mx ? acc[l] : mx;
    return mx;
}

static tx_tensor *output_like(tx_tape *tp, const tx_tensor *x, tx_tensor *a,
                              tx_tensor *b) {
    return tx_op_output(tp, x->ndim, x->shape, a, b, NULL);
}

/* dst[j] += Σ_r src[r·cols + j] for j < cols, rows summed in order. Threads
 * take disjoint blocks of columns. */
static void add_column_sums(tx_real *dst, const tx_real *src, size_t rows,
                            size_t cols) {
    long nblk = (long)((cols + 63) / 64);
#pragma omp parallel for schedule(static) if (rows * cols >= TX_PAR_MIN_ELEMS)
    for (long blk = 0; blk < nblk; blk++) {
        size_t j0 = (size_t)blk * 64, j1 = j0 + 64 < cols ? j0 + 64 : cols;
        for (size_t r = 0; r < rows; r++)
            for (size_t j = j0; j < j1; j++) dst[j] += src[r * cols + j];
    }
}

/* ==== add (b broadcast over a's leading dimensions) ====================== */

/* dst = src, or (add) dst += src, on every thread. */
static void copy_or_add(tx_real *restrict dst, const tx_real *restrict src, size_t n, int add) {
#pragma omp parallel for schedule(static) if (n >= TX_PAR_MIN_ELEMS)
    for (size_t i = 0; i < n; i++) dst[i] = add ? dst[i] + src[i] : src[i];
}

static void add_backward(tx_node *n) {
    tx_tensor *a = n->in[0], *b = n->in[1], *out = n->out;
    if (a->grad) copy_or_add(a->grad, out->grad, a->size, tx_grad_add(a));
    if (b->grad && b->size == a->size) {
        copy_or_add(b->grad, out->grad, b->size, tx_grad_add(b));
    } else if (b->grad) {
        tx_grad_prepare(b);
        add_column_sums(b->grad, out->grad, a->size / b->size, b->size);
    }
}

tx_tensor *tx_add(tx_tape *tp, tx_tensor *a, tx_tensor *b) {
    int ok = b->ndim <= a->ndim;
    for (int i = 1; ok && i <= b->ndim; i++)
        ok = b->shape[b->ndim - i] == a->shape[a->ndim - i];
    CHECK_SHAPES(ok, "add", a, b, "b must equal a or a's trailing dimensions");
    tx_tensor *out = output_like(tp, a, a, b);
    size_t bs = b->size, rows = a->size / bs;
    if (rows == 1) { /* a residual: split the elements, not the one row */
#pragma omp parallel for schedule(static) if (a->size >= TX_PAR_MIN_ELEMS)
        for (size_t i = 0; i < bs; i++) out->data[i] = a->data[i] + b->data[i];
    } else {
#pragma omp parallel for schedule(static) if (a->size >= TX_PAR_MIN_ELEMS)
        for (size_t r = 0; r < rows; r++)
            for (size_t j = 0; j < bs; j++)
                out->data[r * bs + j] = a->data[r * bs + j] + b->data[j];
    }
    tx_op_record(tp, "add", add_backward, out, a, b, NULL);
    return out;
}

/* ==== sub ================================================================= */

static void sub_backward(tx_node *n) {
    tx_tensor *a = n->in[0], *b = n->in[1];
    const tx_real *g = n->out->grad;
    if (a->grad) {
        int add = tx_grad_add(a);
        for (size_t i = 0; i < a->size; i++) a->grad[i] = (add ? a->grad[i] : 0) + g[i];
    }
    if (b->grad) {
        int add = tx_grad_add(b);
        for (size_t i = 0; i < b->size; i++) b->grad[i] = (add ? b->grad[i] : 0) - g[i];
    }
}

tx_tensor *tx_sub(tx_tape *tp, tx_tensor *a, tx_tensor *b) {
    CHECK_SHAPES(tx_same_shape(a, b), "sub", a, b, "must be equal");
    tx_tensor *out = output_like(tp, a, a, b);
    for (size_t i = 0; i < a->size; i++) out->data[i] = a->data[i] - b->data[i];
    tx_op_record(tp, "sub", sub_backward, out, a, b, NULL);
    return out;
}

/* ==== mul (elementwise) =================================================== */

static void mul_backward(tx_node *n) {
    tx_tensor *a = n->in[0], *b = n->in[1];
    const tx_real *g = n->out->grad;
    if (a->grad) {
        int add = tx_grad_add(a);
        for (size_t i = 0; i < a->size; i++)
            a->grad[i] = (add ? a->grad[i] : 0) + g[i] * b->data[i];
    }
    if (b->grad) {
        int add = tx_grad_add(b);
        for (size_t i = 0; i < b->size; i++)
            b->grad[i] = (add ? b->grad[i] : 0) + g[i] * a->data[i];
    }
}

tx_tensor *tx_mul(tx_tape *tp, tx_tensor *a, tx_tensor *b) {
    CHECK_SHAPES(tx_same_shape(a, b), "mul", a, b, "must be equal");
    tx_tensor *out = output_like(tp, a, a, b);
    for (size_t i = 0; i < a->size; i++) out->data[i] = a->data[i] * b->data[i];
    tx_op_record(tp, "mul", mul_backward, out, a, b, NULL);
    return out;
}

/* ==== scale =============================================================== */

typedef struct scale_state {
    tx_real s;
} scale_state;

static void scale_backward(tx_node *n) {
    const scale_state *st = n->saved;
    tx_tensor *a = n->in[0];
    int add = tx_grad_add(a);
    for (size_t i = 0; i < a->size; i++)
        a->grad[i] = (add ? a->grad[i] : 0) + st->s * n->out->grad[i];
}

tx_tensor *tx_scale(tx_tape *tp, tx_tensor *a, tx_real s) {
    tx_tensor *out = output_like(tp, a, a, NULL);
    for (size_t i = 0; i < a->size; i++) out->data[i] = s * a->data[i];
    tx_node *n = tx_op_record(tp, "scale", scale_backward, out, a, NULL, NULL);
    scale_state *st = tx_op_save(tp, n, sizeof *st);
    if (st) st->s = s;
    return out;
}

/* ==== matmul ============================================================== */
/* With C = op(A)·op(B):
 *   dA += dC·op(B)ᵀ  (stored as op: A [K, M] gets op(B)·dCᵀ),
 *   dB += op(A)ᵀ·dC  (B [N, K] gets dCᵀ·op(A)). */

typedef struct matmul_state {
    int M, N, K;  /* one product: op(A) [M, K], op(B) [K, N] */
    int ta, tb;   /* transpose flags */
    int batch;    /* products (a's leading dimensions, unless folded into M) */
    int shared;   /* b is 2-D, the same for every product */
} matmul_state;

/* addA, addB: add to dA, dB (1) or assign them (0). */
static void matmul_grads(const tx_real *A, tx_real *dA, const tx_real *B,
                         tx_real *dB, const tx_real *dC, int M, int N, int K,
                         int ta, int tb, int addA, int addB) {
    int lda = ta ? M : K, ldb = tb ? K : N;
    if (dA) {
        if (!ta) tx_gemm(M, K, N, dC, N, 0, B, ldb, !tb, dA, K, addA);
        else tx_gemm(K, M, N, B, ldb, tb, dC, N, 1, dA, M, addA);
    }
    if (dB) {
        if (!tb) tx_gemm(K, N, M, A, lda, !ta, dC, N, 0, dB, N, addB);
        else tx_gemm(N, K, M, dC, N, 1, A, lda, ta, dB, K, addB);
    }
}

static void matmul_backward(tx_node *n) {
    const matmul_state *s = n->saved;
    tx_tensor *a = n->in[0], *b = n->in[1];
    const int M = s->M, N = s->N, K = s->K, ta = s->ta, tb = s->tb;
    const int batch = s->batch, shared = s->shared;
    size_t sa = (size_t)M * K, sb = shared ? 0 : (size_t)K * N,
           sc = (size_t)M * N;
    const tx_real *g = n->out->grad;
    int addA = a->grad && tx_grad_add(a), addB = b->grad && tx_grad_add(b);
    if (shared) {
        /* Shared b: batches cannot run concurrently, they all add into dB. */
        for (int t = 0; t < batch; t++)
            matmul_grads(a->data + t * sa, a->grad ? a->grad + t * sa : NULL,
                         b->data, b->grad, g + t * sc, M, N, K, ta, tb, addA, addB || t > 0);
        return;
    }
#pragma omp parallel for schedule(static) if (batch > 1 && (double)M * N * K * batch >= TX_PAR_MIN_MACS)
    for (int t = 0; t < batch; t++)
        matmul_grads(a->data + t * sa, a->grad ? a->grad + t * sa : NULL,
                     b->data + t * sb, b->grad ? b->grad + t * sb : NULL,
                     g + t * sc, M, N, K, ta, tb, addA, addB);
}

tx_tensor *tx_matmul(tx_tape *tp, tx_tensor *a, tx_tensor *b, int ta, int tb) {
    CHECK_SHAPES(a->ndim >= 2 && b->ndim >= 2, "matmul", a, b,
                 "both need at least 2 dimensions");
    int M = a->shape[a->ndim - (ta ? 1 : 2)], K = a->shape[a->ndim - (ta ? 2 : 1)];
    int Kb = b->shape[b->ndim - (tb ? 1 : 2)], N = b->shape[b->ndim - (tb ? 2 : 1)];
    CHECK_SHAPES(K == Kb, "matmul", a, b,
                 "inner dimensions differ (after the transpose flags)");
    int shared = b->ndim == 2;
    int same_lead = a->ndim == b->ndim;
    for (int i = 0; same_lead && i < a->ndim - 2; i++)
        same_lead = a->shape[i] == b->shape[i];
    CHECK_SHAPES(shared || same_lead, "matmul", a, b,
                 "b must be 2-D or have a's leading dimensions");
    int batch = (int)(a->size / ((size_t)M * K));
    /* A shared, untransposed b: fold the batch into M, one big product. */
    if (shared && !ta) {
        M *= batch;
        batch = 1;
    }
    int shape[TX_MAXDIM];
    memcpy(shape, a->shape, sizeof shape);
    shape[a->ndim - 2] = a->shape[a->ndim - (ta ? 1 : 2)];
    shape[a->ndim - 1] = N;
    tx_tensor *out = tx_op_output(tp, a->ndim, shape, a, b, NULL);
    size_t sa = (size_t)M * K, sb = shared ? 0 : (size_t)K * N,
           sc = (size_t)M * N;
    int lda = ta ? M : K, ldb = tb ? K : N;
    /* One product (the usual case) outside any region, so tx_gemm can spread
     * it over the threads: inside one, even an inactive one, it runs serially. */
    if (batch == 1) {
        tx_gemm(M, N, K, a->data, lda, ta, b->data, ldb, tb, out->data, N, 0);
    } else {
#pragma omp parallel for schedule(static) if ((double)M * N * K * batch >= TX_PAR_MIN_MACS)
        for (int t = 0; t < batch; t++)
            tx_gemm(M, N, K, a->data + t * sa, lda, ta, b->data + t * sb, ldb,
                    tb, out->data + t * sc, N, 0);
    }
    tx_node *n = tx_op_record(tp, "matmul", matmul_backward, out, a, b, NULL);
    matmul_state *s = tx_op_save(tp, n, sizeof *s);
    if (s) *s = (matmul_state){M, N, K, ta, tb, batch, shared};
    return out;
}

/* ==== affine (x·wᵀ + b) =================================================== */
/* The gradients are matmul's (a = x, b = w, tb) and add's. */

static void affine_backward(tx_node *n) {
    tx_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    int M = (int)tx_rows(x), K = tx_last(x), N = w->shape[0];
    const tx_real *g = n->out->grad;
    if (x->grad) tx_gemm(M, K, N, g, N, 0, w->data, K, 0, x->grad, K, tx_grad_add(x));
    if (w->grad) tx_gemm(N, K, M, g, N, 1, x->data, K, 0, w->grad, K, tx_grad_add(w));
    if (b && b->grad) {
        tx_grad_prepare(b);
        add_column_sums(b->grad, g, (size_t)M, (size_t)N);
    }
}

tx_tensor *tx_affine(tx_tape *tp, tx_tensor *x, tx_tensor *w, tx_tensor *b) {
    CHECK_SHAPES(w->ndim == 2 && w->shape[1] == tx_last(x), "affine", x, w,
                 "w must be [N, K] with K the last dimension of x");
    if (b)
        CHECK_SHAPES(b->ndim == 1 && b->shape[0] == w->shape[0], "affine", w, b,
                     "b must be [N] with N the rows of w");
    int M = (int)tx_rows(x), K = tx_last(x), N = w->shape[0], shape[TX_MAXDIM];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = N;
    tx_tensor *out = tx_op_output(tp, x->ndim, shape, x, w, b);
    tx_gemm(M, N, K, x->data, K, 0, w->data, K, 1, out->data, N, 0);
    if (b) {
#pragma omp parallel for schedule(static) if (out->size >= TX_PAR_MIN_ELEMS)
        for (int r = 0; r < M; r++)
            for (int j = 0; j < N; j++) out->data[(size_t)r * N + j] += b->data[j];
    }
    tx_op_record(tp, "affine", affine_backward, out, x, w, b);
    return out;
}

/* ==== relu ================================================================ */

static void relu_backward(tx_node *n) {
    tx_tensor *x = n->in[0];
    const tx_real *g = n->out->grad;
    int add = tx_grad_add(x);
#pragma omp parallel for schedule(static) if (x->size >= TX_PAR_MIN_ELEMS)
    for (size_t i = 0; i < x->size; i++) /* selects, no branch to mispredict */
        x->grad[i] = (add ? x->grad[i] : 0) + (x->data[i] > 0 ? g[i] : 0);
}

tx_tensor *tx_relu(tx_tape *tp, tx_tensor *x) {
    tx_tensor *out = output_like(tp, x, x, NULL);
#pragma omp parallel for schedule(static) if (x->size >= TX_PAR_MIN_ELEMS)
    for (size_t i = 0; i < x->size; i++)
        out->data[i] = x->data[i] > 0 ? x->data[i] : 0;
    tx_op_record(tp, "relu", relu_backward, out, x, NULL, NULL);
    return out;
}

/* ==== gelu (exact) ======================================================== */

typedef struct gelu_state {
    const tx_real *cdf; /* [size of x] Φ(x), kept so backward needs no erf */
} gelu_state;

static void gelu_backward(tx_node *n) {
    /* In the forward pass this was y = x·Φ(x), so dy/dx = Φ(x) + x·φ(x) with
     * φ(x) = e^(−x²/2)/√(2π): one exp per element, Φ(x) as forward left it. */
    const gelu_state *s = n->saved;
    tx_tensor *x = n->in[0];
    const tx_real *restrict g = n->out->grad, *restrict xd = x->data, *restrict cdf = s->cdf;
    tx_real *restrict dx = x->grad;
    const tx_real k = (tx_real)(0.5 * M_2_SQRTPI * M_SQRT1_2);
    int add = tx_grad_add(x);
#pragma omp parallel for schedule(static) if (x->size >= TX_PAR_MIN_ELEMS)
    for (size_t i = 0; i < x->size; i++) {
        tx_real v = xd[i];
        tx_real pdf = tx_exp_nonpos((tx_real)-0.5 * v * v) * k;
        dx[i] = (add ? dx[i] : 0) + g[i] * (cdf[i] + v * pdf);
    }
}

static inline tx_real gelu_cdf(tx_real v) {
    return (tx_real)0.5 * (1 + tx_erf(v * (tx_real)M_SQRT1_2));
}

tx_tensor *tx_gelu(tx_tape *tp, tx_tensor *x) {
    tx_tensor *out = output_like(tp, x, x, NULL);
    const tx_real *restrict xd = x->data;
    tx_real *restrict y = out->data;
    /* Φ(x) is kept only where a backward pass will read it. */
    tx_real *restrict cdf = out->grad ? tx_tape_alloc(tp, x->size * sizeof *cdf) : NULL;
    /* Two loops, not one with `if (cdf)` inside: on AVX2 GCC turns that one's
     * store into vmaskmovps, microcoded on AMD's cores (GELU's forward pass
     * took 1.3 times as long, measured on an AVX2 EPYC). */
    if (cdf) {
#pragma omp parallel for schedule(static) if (x->size >= TX_PAR_MIN_ELEMS)
        for (size_t i = 0; i < x->size; i++) {
            tx_real p = gelu_cdf(xd[i]);
            y[i] = xd[i] * p;
            cdf[i] = p;
        }
    } else {
#pragma omp parallel for schedule(static) if (x->size >= TX_PAR_MIN_ELEMS)
        for (size_t i = 0; i < x->size; i++) y[i] = xd[i] * gelu_cdf(xd[i]);
    }
    tx_node *n = tx_op_record(tp, "gelu", gelu_backward, out, x, NULL, NULL);
    gelu_state *s = tx_op_save(tp, n, sizeof *s);
    if (s) s->cdf = cdf;
    return out;
}

/* ==== masks and the softmax row kernel ==================================== */

/* Where the mask row for row (i0, i1, i2) of a 4-D-padded x starts. */
typedef struct mask_view {
    const tx_real *m; /* NULL: no mask */
    size_t st[3];     /* 0 on broadcast dimensions */
} mask_view;

static mask_view mask_view_make(const char *op, const tx_tensor *x,
                                const tx_tensor *mask) {
    mask_view mv = {0};
    if (!mask) return mv;
    int ok = mask->ndim <= x->ndim && tx_last(mask) == tx_last(x);
    int xs[4] = {1, 1, 1, 1}, ms[4] = {1, 1, 1, 1};
    for (int i = 0; i < x->ndim; i++) xs[4 - x->ndim + i] = x->shape[i];
    for (int i = 0; ok && i < mask->ndim; i++) ms[4 - mask->ndim + i] = mask->shape[i];
    for (int i = 0; ok && i < 3; i++) ok = ms[i] == 1 || ms[i] == xs[i];
    CHECK_SHAPES(ok, op, x, mask,
                 "mask must broadcast against x (dimensions equal or 1)");
    size_t stride = (size_t)ms[3];
    for (int i = 2; i >= 0; i--) {
        mv.st[i] = ms[i] == 1 ? 0 : stride;
        stride *= (size_t)ms[i];
    }
    mv.m = mask->data;
    return mv;
}

static const tx_real *mask_row(const mask_view *mv, int i0, int i1, int i2) {
    return mv->m ? mv->m + i0 * mv->st[0] + i1 * mv->st[1] + i2 * mv->st[2]
                 : NULL;
}

/* y = softmax(s·x + m) over n entries; every entry masked gives zeros. The
 * same sums as row_max and row_sum in the same lanes, fused into two
 * passes of whole vectors: attention's rows are short (16 to 64 entries
 * under a causal mask), and there three passes through row_max, row_sum
 * and the loops around them took twice as long. */
typedef tx_real row_vec __attribute__((vector_size(MAX_LANES * sizeof(tx_real)),
                                       aligned(sizeof(tx_real))));
#ifdef TX_DOUBLE
typedef int64_t row_mask __attribute__((vector_size(MAX_LANES * sizeof(tx_real))));
#else
typedef int32_t row_mask __attribute__((vector_size(MAX_LANES * sizeof(tx_real))));
#endif

static void softmax_row(const tx_real *x, tx_real s, const tx_real *m,
                        tx_real *y, int n) {
    int nv = n / MAX_LANES * MAX_LANES, j;
    row_vec vmax; /* row_max's lanes */
    for (int l = 0; l < MAX_LANES; l++) vmax[l] = -INFINITY;
    for (j = 0; j < nv; j += MAX_LANES) {
        row_vec v = s * *(const row_vec *)(x + j);
        if (m) v += *(const row_vec *)(m + j);
        *(row_vec *)(y + j) = v;
        row_mask gt = v > vmax;
        vmax = (row_vec)(((row_mask)v & gt) | ((row_mask)vmax & ~gt));
    }
    for (int l = 0; j < n; j++, l++) {
        y[j] = m ? s * x[j] + m[j] : s * x[j];
        vmax[l] = y[j] > vmax[l] ? y[j] : vmax[l];
    }
    tx_real mx = vmax[0];
    for (int l = 1; l < MAX_LANES; l++) mx = vmax[l] > mx ? vmax[l] : mx;
    if (mx == -INFINITY) {
        memset(y, 0, (size_t)n * sizeof *y);
        return;
    }
    sum_acc acc = {0}; /* row_sum's lanes: entry j in lane j mod LANES */
    for (j = 0; j < nv; j += MAX_LANES) {
        row_vec e;
        for (int l = 0; l < MAX_LANES; l++) e[l] = tx_exp_nonpos(y[j + l] - mx);
        *(row_vec *)(y + j) = e;
        for (int h = 0; h < MAX_LANES; h += LANES)
            acc += widen(y + j + h);
    }
    for (int k = j; k < n; k++) y[k] = tx_exp_nonpos(y[k] - mx);
    for (; j + LANES <= n; j += LANES)
        acc += widen(y + j);
    for (int l = 0; j < n; j++, l++) acc[l] += y[j];
    tx_real inv = (tx_real)(1 / acc_total(acc));
    for (j = 0; j < nv; j += MAX_LANES) *(row_vec *)(y + j) *= inv;
    for (; j < n; j++) y[j] *= inv;
}

/* s·y ⊙ (dy − Σ dy⊙y) added to dx, or (add 0) stored there; dx may be dy
 * when storing. */
static void softmax_row_backward(const tx_real *y, const tx_real *dy,
                                 tx_real *dx, tx_real s, int n, int add) {
    double dot = row_dot(dy, y, n);
    for (int j = 0; j < n; j++)
        dx[j] = (add ? dx[j] : 0) + s * y[j] * (dy[j] - (tx_real)dot);
}

/* 4-D-padded leading index of row r of a tensor with the given shape. */
static void row_index(const tx_tensor *x, size_t r, int idx[3]) {
    int lead[3] = {1, 1, 1};
    for (int i = 0; i < x->ndim - 1; i++) lead[3 - (x->ndim - 1) + i] = x->shape[i];
    idx[2] = (int)(r % (size_t)lead[2]);
    r /= (size_t)lead[2];
    idx[1] = (int)(r % (size_t)lead[1]);
    idx[0] = (int)(r / (size_t)lead[1]);
}

/* ==== softmax (last dimension, optional additive mask) ==================== */

static void softmax_backward(tx_node *n) {
    tx_tensor *x = n->in[0], *y = n->out;
    size_t rows = tx_rows(x);
    int c = tx_last(x), add = tx_grad_add(x);
#pragma omp parallel for schedule(static) if (x->size >= TX_PAR_MIN_ELEMS)
    for (size_t r = 0; r < rows; r++)
        softmax_row_backward(y->data + r * c, y->grad + r * c,
                             x->grad + r * c, 1, c, add);
}

tx_tensor *tx_softmax(tx_tape *tp, tx_tensor *x, const tx_tensor *mask) {
    mask_view mv = mask_view_make("softmax", x, mask);
    tx_tensor *out = output_like(tp, x, x, NULL);
    size_t rows = tx_rows(x);
    int c = tx_last(x);
#pragma omp parallel for schedule(static) if (x->size >= TX_PAR_MIN_ELEMS)
    for (size_t r = 0; r < rows; r++) {
        int idx[3];
        row_index(x, r, idx);
        softmax_row(x->data + r * c, 1, mask_row(&mv, idx[0], idx[1], idx[2]),
                    out->data + r * c, c);
    }
    tx_op_record(tp, "softmax", softmax_backward, out, x, NULL, NULL);
    return out;
}

/* ==== log-softmax ========================================================= */

static void log_softmax_backward(tx_node *n) {
    /* In the forward pass this was y = x − logΣexp(x): dx = dy − exp(y)·Σdy. */
    tx_tensor *x = n->in[0], *y = n->out;
    size_t rows = tx_rows(x);
    int c = tx_last(x), add = tx_grad_add(x);
#pragma omp parallel for schedule(static) if (x->size >= TX_PAR_MIN_ELEMS)
    for (size_t r = 0; r < rows; r++) {
        const tx_real *yr = y->data + r * c, *gr = y->grad + r * c;
        double gsum = 0;
        for (int j = 0; j < c; j++) gsum += gr[j];
        tx_real *restrict dx = x->grad + r * c;
        for (int j = 0; j < c; j++)
            dx[j] = (add ? dx[j] : 0) + gr[j] - (tx_real)(tx_exp_nonpos(yr[j]) * gsum);
    }
}

double tx_logsumexp(const tx_real *x, int n) {
    tx_real mx = row_max(x, n);
    double acc[LANES] = {0};
    int j = 0;
    for (; j + LANES <= n; j += LANES)
        for (int l = 0; l < LANES; l++) acc[l] += tx_exp_nonpos(x[j + l] - mx);
    for (int l = 0; j < n; j++, l++) acc[l] += tx_exp_nonpos(x[j] - mx);
    return mx + log(lanes_total(acc));
}

tx_tensor *tx_log_softmax(tx_tape *tp, tx_tensor *x) {
    tx_tensor *out = output_like(tp, x, x, NULL);
    size_t rows = tx_rows(x);
    int c = tx_last(x);
#pragma omp parallel for schedule(static) if (x->size >= TX_PAR_MIN_ELEMS)
    for (size_t r = 0; r < rows; r++) {
        double lse = tx_logsumexp(x->data + r * c, c);
        for (int j = 0; j < c; j++)
            out->data[r * c + j] = (tx_real)(x->data[r * c + j] - lse);
    }
    tx_op_record(tp, "log_softmax", log_softmax_backward, out, x, NULL, NULL);
    return out;
}

/* ==== cross-entropy (fused with log-softmax) ============================= */

typedef struct cross_entropy_state {
    const double *lse;  /* [rows] log Σ exp of each row */
    const int *targets; /* [rows] copied */
    double e;           /* label smoothing */
    double count;       /* rows not ignored */
    int ignore;         /* ignore_index */
} cross_entropy_state;

static void cross_entropy_backward(tx_node *n) {
    /* In the forward pass this was, for each counted row,
     *   loss = (1/count)·Σ_rows −(1−e)·(x_y − lse) − (e/V)·Σ_c (x_c − lse),
     * so dloss/dx_c = (1/count)·(p_c − (1−e)·[c = y] − e/V), p = softmax(x). */
    const cross_entropy_state *s = n->saved;
    tx_tensor *x = n->in[0];
    const double *lse = s->lse, e = s->e, count = s->count;
    const int *tg = s->targets, ignore = s->ignore, V = tx_last(x);
    double g = count ? n->out->grad[0] / count : 0;
    size_t rows = tx_rows(x);
    int add = tx_grad_add(x);
#pragma omp parallel for schedule(static) if (x->size >= TX_PAR_MIN_ELEMS)
    for (size_t r = 0; r < rows; r++) {
        tx_real *restrict dr = x->grad + r * V;
        if (tg[r] == ignore) { /* no gradient: on a first write, zeros */
            if (!add) memset(dr, 0, (size_t)V * sizeof *dr);
            continue;
        }
        const tx_real *restrict xr = x->data + r * V, l = (tx_real)lse[r];
        const tx_real gs = (tx_real)g, ge = (tx_real)(g * e / V);
        for (int c = 0; c < V; c++) dr[c] = (add ? dr[c] : 0) + gs * tx_exp_nonpos(xr[c] - l) - ge;
        dr[tg[r]] -= (tx_real)(g * (1 - e));
    }
}

tx_tensor *tx_cross_entropy(tx_tape *tp, tx_tensor *logits, const int *targets,
                            int ignore_index, tx_real label_smoothing) {
    tx_tensor *x = logits;
    size_t rows = tx_rows(x);
    int V = tx_last(x);
    TX_ASSERT(label_smoothing >= 0 && label_smoothing <= 1,
              "cross_entropy: label smoothing %g outside [0, 1]",
              (double)label_smoothing);
    for (size_t r = 0; r < rows; r++)
        TX_ASSERT(targets[r] == ignore_index || (targets[r] >= 0 && targets[r] < V),
                  "cross_entropy: target %d at row %zu outside [0, %d)",
                  targets[r], r, V);
    double *lse = tx_tape_alloc(tp, rows * sizeof *lse);
    double *loss = tx_tape_alloc(tp, rows * sizeof *loss);
    double e = label_smoothing;
#pragma omp parallel for schedule(static) if (x->size >= TX_PAR_MIN_ELEMS)
    for (size_t r = 0; r < rows; r++) {
        const tx_real *xr = x->data + r * V;
        lse[r] = tx_logsumexp(xr, V);
        if (targets[r] == ignore_index) continue;
        double sum = e ? row_sum(xr, V) : 0; /* only label smoothing reads it */
        loss[r] = -(1 - e) * (xr[targets[r]] - lse[r]) - e / V * (sum - V * lse[r]);
    }
    double total = 0, count = 0;
    for (size_t r = 0; r < rows; r++)
        if (targets[r] != ignore_index) total += loss[r], count += 1;
    int one = 1;
    tx_tensor *out = tx_op_output(tp, 1, &one, x, NULL, NULL);
    out->data[0] = (tx_real)(count ? total / count : 0);
    tx_node *n = tx_op_record(tp, "cross_entropy", cross_entropy_backward, out,
                              x, NULL, NULL);
    cross_entropy_state *s = tx_op_save(tp, n, sizeof *s);
    if (s) {
        int *tg = tx_tape_alloc(tp, rows * sizeof *tg);
        memcpy(tg, targets, rows * sizeof *tg);
        *s = (cross_entropy_state){lse, tg, e, count, ignore_index};
    }
    return out;
}

/* ==== layer norm (fused) ================================================== */

/* Rows per partial sum of the weight's and bias's gradients: a fixed split,
 * so the sums' order is the same at any thread count. */
#define LN_CHUNK 64

typedef struct layer_norm_state {
    int N, C;           /* rows, channels */
    const double *mean; /* [N] */
    const double *rstd; /* [N] 1 / sqrt(var + eps) */
    double *part;       /* [chunks of LN_CHUNK rows][2][C]: Σ dy·x̂ and Σ dy per chunk */
} layer_norm_state;

/* Layer norm goes through the rows LN_ROWS at a time. A row's sums are
 * chains of dependent adds (lane l adds entries l, l + LANES, ... in
 * order), and alone a row of 128 spent more than half its time waiting on
 * them; the chains of LN_ROWS rows side by side keep the adders busy. The
 * sums and their order are a single row's, so are the results. Both
 * functions below are always inlined, so nb = LN_ROWS and nb = 1 (the rows
 * left over) each get a loop over constant rows. Eight rows' two sums take
 * 16 registers: AVX-512 has 32, AVX2 16, where eight rows ran the backward
 * pass 1.3x slower than four. */
#ifdef __AVX512F__
#define LN_ROWS 8
#else
#define LN_ROWS 4
#endif

/* Rows x [nb, C] to y: mean and rstd [nb] out. */
static inline __attribute__((always_inline)) void
norm_rows(const tx_real *x, const tx_real *w, const tx_real *b, tx_real *y, double *mean,
          double *rstd, int nb, int C, double eps) {
    int C8 = C / LANES * LANES;
    sum_acc s[LN_ROWS] = {0}, q[LN_ROWS] = {0};
    double mu[LN_ROWS], rs[LN_ROWS];
    for (int j = 0; j < C8; j += LANES)
        for (int r = 0; r < nb; r++) s[r] += widen(x + (size_t)r * C + j);
    for (int r = 0; r < nb; r++) {
        for (int j = C8; j < C; j++) s[r][j - C8] += x[(size_t)r * C + j];
        mu[r] = acc_total(s[r]) / C;
    }
    for (int j = 0; j < C8; j += LANES)
        for (int r = 0; r < nb; r++) {
            sum_acc d = widen(x + (size_t)r * C + j) - mu[r];
            q[r] += d * d;
        }
    for (int r = 0; r < nb; r++) {
        for (int j = C8; j < C; j++) {
            double d = x[(size_t)r * C + j] - mu[r];
            q[r][j - C8] += d * d;
        }
        rs[r] = 1 / sqrt(acc_total(q[r]) / C + eps);
        mean[r] = mu[r], rstd[r] = rs[r];
    }
    for (int j = 0; j < C8; j += LANES) {
        sum_acc wv = widen(w + j);
        for (int r = 0; r < nb; r++) {
            sum_acc v = (widen(x + (size_t)r * C + j) - mu[r]) * rs[r] * wv;
            if (b) v += widen(b + j);
            *(sum_vec *)(y + (size_t)r * C + j) = __builtin_convertvector(v, sum_vec);
        }
    }
    for (int r = 0; r < nb; r++)
        for (int j = C8; j < C; j++) {
            double v = (x[(size_t)r * C + j] - mu[r]) * rs[r] * w[j];
            y[(size_t)r * C + j] = (tx_real)(b ? v + b[j] : v);
        }
}

/* Rows [nb, C] of the backward pass (see layer_norm_backward): dx, stored
 * or added (add), unless NULL; each row's dy·x̂ and dy added to pw and pb
 * [C], in row order, unless NULL. */
static inline __attribute__((always_inline)) void
norm_rows_backward(const tx_real *x, const tx_real *dy, const tx_real *w, const double *mean,
                   const double *rstd, tx_real *dx, int add, double *pw, double *pb, int nb,
                   int C) {
    int C8 = C / LANES * LANES;
    if (dx) {
        sum_acc sg[LN_ROWS] = {0}, sgx[LN_ROWS] = {0}; /* Σ g and Σ g·x̂, g = dy·w */
        double mg[LN_ROWS], mgx[LN_ROWS];
        for (int j = 0; j < C8; j += LANES) {
            sum_acc wv = widen(w + j);
            for (int r = 0; r < nb; r++) {
                if (j % (64 / sizeof(tx_real)) == 0) { /* the next rows, a line at a time */
                    __builtin_prefetch(x + (size_t)(r + nb) * C + j);
                    __builtin_prefetch(dy + (size_t)(r + nb) * C + j);
                }
                sum_acc g = widen(dy + (size_t)r * C + j) * wv;
                sg[r] += g;
                sgx[r] += g * ((widen(x + (size_t)r * C + j) - mean[r]) * rstd[r]);
            }
        }
        for (int r = 0; r < nb; r++) {
            for (int j = C8; j < C; j++) {
                double g = (double)dy[(size_t)r * C + j] * w[j];
                sg[r][j - C8] += g;
                sgx[r][j - C8] += g * ((x[(size_t)r * C + j] - mean[r]) * rstd[r]);
            }
            mg[r] = acc_total(sg[r]) / C, mgx[r] = acc_total(sgx[r]) / C;
        }
        for (int j = 0; j < C8; j += LANES) {
            sum_acc wv = widen(w + j);
            for (int r = 0; r < nb; r++) {
                sum_acc xh = (widen(x + (size_t)r * C + j) - mean[r]) * rstd[r];
                sum_vec d = __builtin_convertvector(
                    rstd[r] * (widen(dy + (size_t)r * C + j) * wv - mg[r] - xh * mgx[r]), sum_vec);
                sum_vec *o = (sum_vec *)(dx + (size_t)r * C + j);
                *o = add ? *o + d : d;
            }
        }
        for (int r = 0; r < nb; r++)
            for (int j = C8; j < C; j++) {
                size_t e = (size_t)r * C + j;
                double xh = (x[e] - mean[r]) * rstd[r];
                dx[e] = (add ? dx[e] : 0) +
                        (tx_real)(rstd[r] * ((double)dy[e] * w[j] - mg[r] - xh * mgx[r]));
            }
    }
    if (!pw && !pb) return;
    for (int j = 0; j < C8; j += LANES) {
        sum_acc aw = pw ? *(const sum_acc *)(pw + j) : (sum_acc){0},
                ab = pb ? *(const sum_acc *)(pb + j) : (sum_acc){0};
        for (int r = 0; r < nb; r++) {
            sum_acc g = widen(dy + (size_t)r * C + j);
            aw += g * ((widen(x + (size_t)r * C + j) - mean[r]) * rstd[r]);
            ab += g;
        }
        if (pw) *(sum_acc *)(pw + j) = aw;
        if (pb) *(sum_acc *)(pb + j) = ab;
    }
    for (int j = C8; j < C; j++)
        for (int r = 0; r < nb; r++) {
            size_t e = (size_t)r * C + j;
            if (pw) pw[j] += (double)dy[e] * ((x[e] - mean[r]) * rstd[r]);
            if (pb) pb[j] += dy[e];
        }
}

/* t's gradient gets Σ over the nch chunks of part[ch·2C + j], in chunk order. */
static void add_chunk_sums(tx_tensor *t, const double *part, int nch, int C) {
    int add = tx_grad_add(t);
    for (int j = 0; j < C; j++) {
        double sum = 0;
        for (int ch = 0; ch < nch; ch++) sum += part[(size_t)ch * 2 * C + j];
        t->grad[j] = (add ? t->grad[j] : 0) + (tx_real)sum;
    }
}

static void layer_norm_backward(tx_node *n) {
    /* In the forward pass this was, per row, x̂ = (x − μ)·r with
     * r = 1/sqrt(var + eps), and y = x̂·w + b. With g = dy·w:
     *   dx = r·(g − mean(g) − x̂·mean(g·x̂)),  dw = Σ_rows dy·x̂,  db = Σ_rows dy.
     * One pass over the rows makes dx and each chunk's share of dw and db
     * (x and dy read once, by the thread that has them), then the chunks'
     * shares are added in order. */
    const layer_norm_state *s = n->saved;
    tx_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    const double *mean = s->mean, *rstd = s->rstd;
    const tx_real *dy = n->out->grad;
    const int N = s->N, C = s->C, nch = (N + LN_CHUNK - 1) / LN_CHUNK;
    const int dw = w->grad != NULL, db = b && b->grad;
    int add = x->grad && tx_grad_add(x);
#pragma omp parallel for schedule(static) if (x->size >= TX_PAR_MIN_ELEMS)
    for (int ch = 0; ch < nch; ch++) {
        double *part = s->part + (size_t)ch * 2 * C, *pw = dw ? part : NULL,
               *pb = db ? part + C : NULL;
        for (int j = 0; j < 2 * C; j++) part[j] = 0;
        int r1 = (ch + 1) * LN_CHUNK < N ? (ch + 1) * LN_CHUNK : N;
        for (int r = ch * LN_CHUNK; r < r1;) {
            size_t e = (size_t)r * C;
            tx_real *dx = x->grad ? x->grad + e : NULL;
            if (r1 - r >= LN_ROWS) {
                norm_rows_backward(x->data + e, dy + e, w->data, mean + r, rstd + r, dx, add, pw,
                                   pb, LN_ROWS, C);
                r += LN_ROWS;
            } else {
                norm_rows_backward(x->data + e, dy + e, w->data, mean + r, rstd + r, dx, add, pw,
                                   pb, 1, C);
                r++;
            }
        }
    }
    if (dw) add_chunk_sums(w, s->part, nch, C);
    if (db) add_chunk_sums(b, s->part + C, nch, C);
}

tx_tensor *tx_layer_norm(tx_tape *tp, tx_tensor *x, tx_tensor *w, tx_tensor *b,
                         tx_real eps) {
    int C = tx_last(x), N = (int)tx_rows(x);
    CHECK_SHAPES(w->ndim == 1 && w->shape[0] == C, "layer_norm", x, w,
                 "weight must be [C] with C the last dimension of x");
    if (b)
        CHECK_SHAPES(b->ndim == 1 && b->shape[0] == C, "layer_norm", x, b,
                     "bias must be [C] with C the last dimension of x");
    tx_tensor *out = tx_op_output(tp, x->ndim, x->shape, x, w, b);
    int record = out->grad != NULL;
    double *stats = record ? tx_tape_alloc(tp, 2 * (size_t)N * sizeof *stats) : NULL;
    double *part = record ? tx_tape_alloc(tp, (size_t)(N + LN_CHUNK - 1) / LN_CHUNK * 2 * C *
                                                  sizeof *part) : NULL;
    int nblk = (N + LN_ROWS - 1) / LN_ROWS;
#pragma omp parallel for schedule(static) if (x->size >= TX_PAR_MIN_ELEMS)
    for (int k = 0; k < nblk; k++) {
        int r0 = k * LN_ROWS, nb = N - r0 < LN_ROWS ? N - r0 : LN_ROWS;
        double scratch[2 * LN_ROWS]; /* mean and rstd when no backward pass reads them */
        double *mu = stats ? stats + r0 : scratch, *rs = stats ? stats + N + r0 : scratch + LN_ROWS;
        const tx_real *bd = b ? b->data : NULL;
        if (nb == LN_ROWS)
            norm_rows(x->data + (size_t)r0 * C, w->data, bd, out->data + (size_t)r0 * C, mu, rs,
                      LN_ROWS, C, eps);
        else
            for (int r = 0; r < nb; r++)
                norm_rows(x->data + (size_t)(r0 + r) * C, w->data, bd,
                          out->data + (size_t)(r0 + r) * C, mu + r, rs + r, 1, C, eps);
    }
    tx_node *n = tx_op_record(tp, "layer_norm", layer_norm_backward, out, x, w, b);
    layer_norm_state *s = tx_op_save(tp, n, sizeof *s);
    if (s) *s = (layer_norm_state){N, C, stats, stats + N, part};
    return out;
}

/* ==== embedding =========================================================== */

typedef struct embedding_state {
    const int *ids; /* [B·T] copied */
} embedding_state;

static void embedding_backward(tx_node *n) {
    /* Scatter-add: rows with the same id collect every occurrence. Threads
     * own disjoint column blocks, so no two write the same element. */
    const embedding_state *s = n->saved;
    tx_tensor *table = n->in[0];
    const int *ids = s->ids;
    int C = table->shape[1], rows = (int)(n->out->size / (size_t)C);
    const tx_real *g = n->out->grad;
    int nblk = (C + 31) / 32;
    tx_grad_prepare(table);
#pragma omp parallel for schedule(static) if (n->out->size >= TX_PAR_MIN_ELEMS)
    for (int blk = 0; blk < nblk; blk++) {
        int j0 = blk * 32, j1 = j0 + 32 < C ? j0 + 32 : C;
        for (int r = 0; r < rows; r++) {
            tx_real *dst = table->grad + (size_t)ids[r] * C;
            for (int j = j0; j < j1; j++) dst[j] += g[(size_t)r * C + j];
        }
    }
}

tx_tensor *tx_embedding(tx_tape *tp, tx_tensor *table, const int *ids, int B,
                        int T) {
    TX_ASSERT(table->ndim == 2, "embedding: table must be [V, C], has %d dimensions",
              table->ndim);
    int V = table->shape[0], C = table->shape[1];
    for (int r = 0; r < B * T; r++)
        TX_ASSERT(ids[r] >= 0 && ids[r] < V,
                  "embedding: id %d at position %d outside [0, %d)", ids[r], r, V);
    int shape[3] = {B, T, C};
    tx_tensor *out = tx_op_output(tp, 3, shape, table, NULL, NULL);
    for (int r = 0; r < B * T; r++)
        memcpy(out->data + (size_t)r * C, table->data + (size_t)ids[r] * C,
               (size_t)C * sizeof(tx_real));
    tx_node *n = tx_op_record(tp, "embedding", embedding_backward, out, table, NULL, NULL);
    embedding_state *s = tx_op_save(tp, n, sizeof *s);
    if (s) {
        int *copy = tx_tape_alloc(tp, (size_t)B * T * sizeof *copy);
        memcpy(copy, ids, (size_t)B * T * sizeof *copy);
        s->ids = copy;
    }
    return out;
}

/* ==== dropout ============================================================= */
/* The mask is recomputed from the key, not stored. */

typedef struct dropout_state {
    uint64_t key; /* the mask's stream */
    double p;
} dropout_state;

static tx_real dropout_factor(uint64_t key, size_t i, double p) {
    return tx_hash_uniform(key, i) < p ? 0 : (tx_real)(1 / (1 - p));
}

static void dropout_backward(tx_node *n) {
    const dropout_state *s = n->saved;
    tx_tensor *x = n->in[0];
    const uint64_t key = s->key;
    const double p = s->p;
    int add = tx_grad_add(x);
#pragma omp parallel for schedule(static) if (x->size >= TX_PAR_MIN_ELEMS)
    for (size_t i = 0; i < x->size; i++)
        x->grad[i] = (add ? x->grad[i] : 0) + n->out->grad[i] * dropout_factor(key, i, p);
}

tx_tensor *tx_dropout(tx_tape *tp, tx_tensor *x, tx_real p) {
    TX_ASSERT(p >= 0 && p < 1, "dropout: p = %g outside [0, 1)", (double)p);
    if (!tp->training || p == 0) return x;
    uint64_t key = tp->seed * 0x9e3779b97f4a7c15ULL + ++tp->ncalls;
    tx_tensor *out = output_like(tp, x, x, NULL);
#pragma omp parallel for schedule(static) if (x->size >= TX_PAR_MIN_ELEMS)
    for (size_t i = 0; i < x->size; i++)
        out->data[i] = x->data[i] * dropout_factor(key, i, p);
    tx_node *n = tx_op_record(tp, "dropout", dropout_backward, out, x, NULL, NULL);
    dropout_state *s = tx_op_save(tp, n, sizeof *s);
    if (s) *s = (dropout_state){key, p};
    return out;
}

/* ==== reshape (a view: no copy, no node) ================================= */

tx_tensor *tx_reshape(tx_tape *tp, tx_tensor *x, int ndim, ...) {
    TX_ASSERT(ndim >= 1 && ndim <= TX_MAXDIM, "reshape: %d dimensions", ndim);
    int shape[TX_MAXDIM], infer = -1;
    size_t known = 1;
    va_list ap;
    va_start(ap, ndim);
    for (int i = 0; i < ndim; i++) {
        shape[i] = va_arg(ap, int);
        if (shape[i] == -1) {
            TX_ASSERT(infer < 0, "reshape: more than one -1");
            infer = i;
        } else {
            known *= (size_t)shape[i];
        }
    }
    va_end(ap);
    if (infer >= 0 && known) shape[infer] = (int)(x->size / known), known *= (size_t)shape[infer];
    char sx[64];
    TX_ASSERT(known == x->size, "reshape: %s has %zu elements, new shape %zu",
              tx_shape_str(x, sx, sizeof sx), x->size, known);
    tx_tensor *out = tx_tape_alloc(tp, sizeof *out);
    *out = *x;
    out->base = x->base ? x->base : x; /* shares x's gradient, and its flag */
    out->ndim = ndim;
    memcpy(out->shape, shape, (size_t)ndim * sizeof(int));
    return out;
}

/* ==== permute ============================================================= */
/* out[o] = x[perm-mapped o]; backward scatters the same map in reverse. */

typedef struct permute_state {
    int perm[TX_MAXDIM];
} permute_state;

/* Visits out in order; src walks x with x's strides permuted. dir 0 copies
 * x→out, dir 1 adds out→x, dir 2 copies out→x (for gradients). Each out element maps to one x
 * element, so threads over the first dimension write disjoint memory. */
static void permute_walk(tx_real *x, tx_real *out, const int *xshape4,
                         const int *perm, int dir) {
    size_t xst[4], st[4];
    int os[4];
    xst[3] = 1;
    for (int i = 2; i >= 0; i--) xst[i] = xst[i + 1] * (size_t)xshape4[i + 1];
    for (int i = 0; i < 4; i++) os[i] = xshape4[perm[i]], st[i] = xst[perm[i]];
#pragma omp parallel for schedule(static) if ((size_t)os[0] * os[1] * os[2] * os[3] >= TX_PAR_MIN_ELEMS)
    for (int a = 0; a < os[0]; a++)
        for (int b = 0; b < os[1]; b++)
            for (int c = 0; c < os[2]; c++) {
                size_t o = (((size_t)a * os[1] + b) * os[2] + c) * os[3];
                size_t s = a * st[0] + b * st[1] + c * st[2];
                tx_real *restrict xs = x + s, *restrict os_ = out + o;
                if (st[3] == 1) { /* the last dimension stays: whole rows */
                    if (dir == 0) memcpy(os_, xs, (size_t)os[3] * sizeof *xs);
                    else if (dir == 2) memcpy(xs, os_, (size_t)os[3] * sizeof *xs);
                    else
                        for (int d = 0; d < os[3]; d++) xs[d] += os_[d];
                } else if (dir == 0) {
                    for (int d = 0; d < os[3]; d++) os_[d] = xs[d * st[3]];
                } else if (dir == 2) {
                    for (int d = 0; d < os[3]; d++) xs[d * st[3]] = os_[d];
                } else {
                    for (int d = 0; d < os[3]; d++) xs[d * st[3]] += os_[d];
                }
            }
}

static void pad4(const tx_tensor *x, const int *perm, int xs[4], int p4[4]) {
    int k = 4 - x->ndim;
    for (int i = 0; i < 4; i++) xs[i] = i < k ? 1 : x->shape[i - k];
    for (int i = 0; i < 4; i++) p4[i] = i < k ? i : perm[i - k] + k;
}

static void permute_backward(tx_node *n) {
    const permute_state *s = n->saved;
    int xs[4], p4[4];
    pad4(n->in[0], s->perm, xs, p4);
    /* every element of x gets exactly one: the first write can assign */
    permute_walk(n->in[0]->grad, n->out->grad, xs, p4, tx_grad_add(n->in[0]) ? 1 : 2);
}

tx_tensor *tx_permute(tx_tape *tp, tx_tensor *x, const int *perm) {
    int seen = 0, shape[TX_MAXDIM];
    for (int i = 0; i < x->ndim; i++) {
        TX_ASSERT(perm[i] >= 0 && perm[i] < x->ndim && !(seen & 1 << perm[i]),
                  "permute: perm is not a permutation of %d dimensions", x->ndim);
        seen |= 1 << perm[i];
        shape[i] = x->shape[perm[i]];
    }
    tx_tensor *out = tx_op_output(tp, x->ndim, shape, x, NULL, NULL);
    int xs[4], p4[4];
    pad4(x, perm, xs, p4);
    permute_walk(x->data, out->data, xs, p4, 0);
    tx_node *n = tx_op_record(tp, "permute", permute_backward, out, x, NULL, NULL);
    permute_state *s = tx_op_save(tp, n, sizeof *s);
    if (s) memcpy(s->perm, perm, (size_t)x->ndim * sizeof(int));
    return out;
}

tx_tensor *tx_split_heads(tx_tape *tp, tx_tensor *x, int H) {
    TX_ASSERT(x->ndim == 3 && x->shape[2] % H == 0,
              "split_heads: x must be [B, T, H*D] with H = %d dividing the last "
              "dimension", H);
    tx_tensor *v = tx_reshape(tp, x, 4, x->shape[0], x->shape[1], H, x->shape[2] / H);
    return tx_permute(tp, v, (const int[]){0, 2, 1, 3});
}

tx_tensor *tx_merge_heads(tx_tape *tp, tx_tensor *x) {
    TX_ASSERT(x->ndim == 4, "merge_heads: x must be [B, H, T, D]");
    tx_tensor *v = tx_permute(tp, x, (const int[]){0, 2, 1, 3});
    return tx_reshape(tp, v, 3, v->shape[0], v->shape[1], v->shape[2] * v->shape[3]);
}

/* ==== sum and mean ======================================================== */

typedef struct sum_state {
    double scale; /* 1 (sum) or 1/size (mean) */
} sum_state;

static void sum_backward(tx_node *n) {
    const sum_state *s = n->saved;
    tx_tensor *x = n->in[0];
    tx_real g = n->out->grad[0] * (tx_real)s->scale;
    int add = tx_grad_add(x);
    for (size_t i = 0; i < x->size; i++) x->grad[i] = (add ? x->grad[i] : 0) + g;
}

static tx_tensor *reduce_all(tx_tape *tp, tx_tensor *x, double scale,
                             const char *op) {
    double s = 0;
    for (size_t i = 0; i < x->size; i++) s += x->data[i];
    int one = 1;
    tx_tensor *out = tx_op_output(tp, 1, &one, x, NULL, NULL);
    out->data[0] = (tx_real)(s * scale);
    tx_node *n = tx_op_record(tp, op, sum_backward, out, x, NULL, NULL);
    sum_state *st = tx_op_save(tp, n, sizeof *st);
    if (st) st->scale = scale;
    return out;
}

tx_tensor *tx_sum(tx_tape *tp, tx_tensor *x) { return reduce_all(tp, x, 1, "sum"); }
tx_tensor *tx_mean(tx_tape *tp, tx_tensor *x) {
    return reduce_all(tp, x, 1.0 / (double)x->size, "mean");
}

/* ==== attention (fused) =================================================== */
/* Per (batch item, head): S = s·q·kᵀ + mask, P = softmax(S), then with
 * attention dropout (training, p > 0) P' = P ⊙ m/(1−p), m the keep mask
 * drawn from the tape's stream (element by element, as tx_dropout), else
 * P' = P; O = P'·v. The heads are read and written where they lie: in
 * [B, H, T, D] (tx_attention), side by side in [B, T, H·D] as a linear
 * layer makes them (tx_attention_heads: no permuted copies), or in a
 * cache. */

/* Where head h of batch item b starts (b·bs + h·hs) and the stride from one
 * time step to the next (ld), in a tensor's data and its gradient alike. */
typedef struct heads_view {
    size_t bs, hs;
    int ld;
} heads_view;

static heads_view heads_bhtd(int H, int T, int D) {
    return (heads_view){(size_t)H * T * D, (size_t)T * D, D};
}

static heads_view heads_bthd(int H, int T, int D) {
    return (heads_view){(size_t)T * H * D, (size_t)D, H * D};
}

static size_t heads_at(heads_view v, int t, int H) {
    return (size_t)(t / H) * v.bs + (size_t)(t % H) * v.hs;
}

/* Causal and padding masks leave the end of many rows masked, and there
 * every probability is an exact 0 (e^−inf): row i of a (b, h) block sees at
 * most the keys [0, reach[i]) (reach: one past its last unmasked key) and
 * key j is seen first by row first[j] (Tq if by none). The block's products
 * leave the zero terms out (tx_gemm_banded) and its softmax rows stop at
 * row_span, which changes no bit: so causal attention does about half the
 * work of full attention. */
static void attention_reach(const mask_view *mv, int b, int h, int Tq, int Tk, int *reach,
                            int *first) {
    int seen = 0; /* keys [0, seen) have their first row */
    for (int i = 0; i < Tq; i++) {
        const tx_real *m = mask_row(mv, b, h, i);
        int n = Tk;
        /* whole masked groups first, by row_max's vector loop */
        while (m && n >= MAX_LANES && row_max(m + n - MAX_LANES, MAX_LANES) == -INFINITY)
            n -= MAX_LANES;
        while (m && n > 0 && m[n - 1] == -INFINITY) n--;
        reach[i] = n;
        for (; seen < n; seen++) first[seen] = i;
    }
    for (; seen < Tk; seen++) first[seen] = Tq;
}

/* Where a softmax row that reaches `reach` of its n entries stops: rounded
 * up to whole vectors of MAX_LANES. Any stop past the reach gives the same
 * bits: the row sums put entry j in lane j mod LANES wherever the row ends,
 * and the entries left out are exact zeros (−inf for the maximum). */
static int row_span(int reach, int n) {
    int r = (reach + MAX_LANES - 1) / MAX_LANES * MAX_LANES;
    return r < n ? r : n;
}

typedef struct attention_state {
    const tx_tensor *P; /* [B, H, Tq, Tk] probabilities (the `probs` tensor) */
    tx_real *Pd;        /* [B·H·Tq·Tk] P' with dropout, NULL without */
    tx_real *dP;        /* [nscratch·Tq·Tk] backward's scratch, a block per thread */
    int nscratch;
    tx_real scale;
    uint64_t key;       /* dropout stream */
    double p;           /* dropout probability, 0: none */
    int H, D;
    heads_view qv, kv;  /* q and the output; k and v */
    const int *rows;    /* [B·H][Tq + Tk] each block's reach and first (attention_blocks) */
} attention_state;

static void attention_backward(tx_node *n) {
    /* In the forward pass this was, per (b, h): S = s·q·kᵀ + mask,
     * P = softmax(S), P' = P ⊙ m/(1−p), O = P'·v. Hence dV = P'ᵀ·dO,
     * dP' = dO·vᵀ, dP = dP' ⊙ m/(1−p), dS = P ⊙ (dP − rowsum(dP ⊙ P)),
     * dq = s·dS·k, dk = s·dSᵀ·q. */
    const attention_state *st = n->saved;
    tx_tensor *q = n->in[0], *k = n->in[1], *v = n->in[2];
    const tx_tensor *P = st->P;
    int H = st->H, D = st->D, BH = P->shape[0] * H, Tq = P->shape[2], Tk = P->shape[3];
    int lq = st->qv.ld, lk = st->kv.ld;
    tx_real s = st->scale;
    /* in this order: q, k and v may be one tensor (each block then gets
     * dv assigned, then dk and dq added, as split_heads' copies of one
     * tensor would add them) */
    int addv = v->grad && tx_grad_add(v), addq = q->grad && tx_grad_add(q),
        addk = k->grad && tx_grad_add(k);
#pragma omp parallel if (BH > 1 && (double)BH * Tq * Tk * D >= TX_PAR_MIN_MACS)
    {
    /* a block's dP is used up before the thread's next block */
    int tid = tx_thread_num();
    TX_ASSERT(tid < st->nscratch, "attention backward: thread %d, but the forward pass made "
              "scratch for %d (threads changed in between?)", tid, st->nscratch);
    tx_real *dP = st->dP + (size_t)tid * Tq * Tk;
#pragma omp for schedule(static)
    for (int t = 0; t < BH; t++) {
        size_t off = (size_t)t * Tq * Tk, qo = heads_at(st->qv, t, H), ko = heads_at(st->kv, t, H);
        const tx_real *p = P->data + off, *pd = st->Pd ? st->Pd + off : p;
        const tx_real *dO = n->out->grad + qo;
        const int *reach = st->rows + (size_t)t * (Tq + Tk), *first = reach + Tq;
        /* columns of dP a row needs; terms of dq, dk and dv that are not zeros */
        tx_gemm_band cols = {NULL, NULL, reach}, by_query = {NULL, reach, NULL},
                     by_key = {first, NULL, NULL};
        if (v->grad)
            tx_gemm_banded(Tk, D, Tq, pd, Tk, 1, dO, lq, 0, v->grad + ko, lk, addv, &by_key);
        if (!q->grad && !k->grad) continue;
        tx_gemm_banded(Tq, Tk, D, dO, lq, 0, v->data + ko, lk, 1, dP, Tk, 0, &cols);
        /* dP becomes s·dS in place, exact zeros past each row's span. */
        for (int i = 0; i < Tq; i++) {
            tx_real *dr = dP + (size_t)i * Tk;
            int span = row_span(reach[i], Tk);
            if (st->Pd)
                for (int j = 0; j < span; j++)
                    dr[j] *= dropout_factor(st->key, off + (size_t)i * Tk + j, st->p);
            softmax_row_backward(p + (size_t)i * Tk, dr, dr, s, span, 0);
            memset(dr + span, 0, (size_t)(Tk - span) * sizeof *dr);
        }
        if (k->grad)
            tx_gemm_banded(Tk, D, Tq, dP, Tk, 1, q->data + qo, lq, 0, k->grad + ko, lk, addk,
                           &by_key);
        if (q->grad)
            tx_gemm_banded(Tq, D, Tk, dP, Tk, 0, k->data + ko, lk, 0, q->grad + qo, lq, addq,
                           &by_query);
    }
    }
}

/* The forward pass of every (b, h) block: q and out laid out as qv, k and v
 * as kv; P [B, H, Tq, Tk]. Returns each block's reach and first
 * (attention_reach), [B·H][Tq + Tk] on the arena, for the backward. */
static const int *attention_blocks(tx_tape *tp, const tx_real *q, heads_view qv,
                                   const tx_real *k, const tx_real *v, heads_view kv, int H,
                                   int D, const tx_tensor *mask, tx_real scale, tx_tensor *P,
                                   tx_real *Pd, uint64_t key, double p, tx_real *out) {
    int BH = P->shape[0] * H, Tq = P->shape[2], Tk = P->shape[3];
    int *rows = tx_tape_alloc(tp, (size_t)BH * (Tq + Tk) * sizeof *rows);
    mask_view mv = mask_view_make("attention", P, mask);
#pragma omp parallel if (BH > 1 && (double)BH * Tq * Tk * D >= TX_PAR_MIN_MACS)
    {
    int prev = -1; /* the block this thread did last */
#pragma omp for schedule(static)
    for (int t = 0; t < BH; t++) {
        size_t off = (size_t)t * Tq * Tk, qo = heads_at(qv, t, H), ko = heads_at(kv, t, H);
        int *reach = rows + (size_t)t * (Tq + Tk), *first = reach + Tq;
        if (prev == t - 1 && t % H && !mv.st[1]) /* one mask for all heads: as block t − 1 */
            memcpy(reach, reach - (Tq + Tk), (size_t)(Tq + Tk) * sizeof *reach);
        else
            attention_reach(&mv, t / H, t % H, Tq, Tk, reach, first);
        prev = t;
        /* the scores a row needs; the terms of P·v that are not zeros */
        tx_gemm_band cols = {NULL, NULL, reach}, by_query = {NULL, reach, NULL};
        tx_real *pt = P->data + off;
        tx_gemm_banded(Tq, Tk, D, q + qo, qv.ld, 0, k + ko, kv.ld, 1, pt, Tk, 0, &cols);
        for (int i = 0; i < Tq; i++) {
            tx_real *pr = pt + (size_t)i * Tk;
            int span = row_span(reach[i], Tk);
            softmax_row(pr, scale, mask_row(&mv, t / H, t % H, i), pr, span);
            memset(pr + span, 0, (size_t)(Tk - span) * sizeof *pr);
        }
        if (Pd) {
            for (size_t e = 0; e < (size_t)Tq * Tk; e++)
                Pd[off + e] = pt[e] * dropout_factor(key, off + e, p);
            pt = Pd + off;
        }
        tx_gemm_banded(Tq, D, Tk, pt, Tk, 0, v + ko, kv.ld, 0, out + qo, qv.ld, 0, &by_query);
    }
    }
    return rows;
}

/* The op around attention_blocks for both layouts: out has q's shape. */
static tx_tensor *attention(tx_tape *tp, tx_tensor *q, tx_tensor *k, tx_tensor *v, int B,
                            int H, int Tq, int Tk, int D, heads_view qv, heads_view kv,
                            const tx_tensor *mask, tx_real scale, tx_real dropout,
                            tx_tensor **probs) {
    TX_ASSERT(dropout >= 0 && dropout < 1, "attention: dropout %g outside [0, 1)", (double)dropout);
    tx_tensor *P = tx_tensor_new(tp, 0, 4, B, H, Tq, Tk);
    tx_tensor *out = tx_op_output(tp, q->ndim, q->shape, q, k, v);
    int drop = tp->training && dropout > 0;
    uint64_t key = drop ? tp->seed * 0x9e3779b97f4a7c15ULL + ++tp->ncalls : 0;
    tx_real *Pd = drop ? tx_tape_alloc(tp, P->size * sizeof(tx_real)) : NULL;
    const int *rows = attention_blocks(tp, q->data, qv, k->data, v->data, kv, H, D, mask, scale,
                                       P, Pd, key, dropout, out->data);
    tx_node *n = tx_op_record(tp, "attention", attention_backward, out, q, k, v);
    attention_state *st = tx_op_save(tp, n, sizeof *st);
    int nscratch = tx_get_threads() < B * H ? tx_get_threads() : B * H;
    if (st) {
        tx_real *dP = tx_tape_alloc(tp, (size_t)nscratch * Tq * Tk * sizeof(tx_real));
        *st = (attention_state){P, Pd, dP, nscratch, scale, key, drop ? dropout : 0, H, D, qv, kv,
                                rows};
    }
    if (probs) *probs = P;
    return out;
}

tx_tensor *tx_attention(tx_tape *tp, tx_tensor *q, tx_tensor *k, tx_tensor *v,
                        const tx_tensor *mask, tx_real scale, tx_real dropout,
                        tx_tensor **probs) {
    CHECK_SHAPES(q->ndim == 4 && k->ndim == 4 && q->shape[0] == k->shape[0] &&
                     q->shape[1] == k->shape[1] && q->shape[3] == k->shape[3],
                 "attention", q, k, "q must be [B, H, Tq, D] and k [B, H, Tk, D]");
    CHECK_SHAPES(tx_same_shape(k, v), "attention", k, v, "k and v must be equal");
    int B = q->shape[0], H = q->shape[1], Tq = q->shape[2], Tk = k->shape[2],
        D = q->shape[3];
    return attention(tp, q, k, v, B, H, Tq, Tk, D, heads_bhtd(H, Tq, D), heads_bhtd(H, Tk, D),
                     mask, scale, dropout, probs);
}

tx_tensor *tx_attention_heads(tx_tape *tp, tx_tensor *q, tx_tensor *k, tx_tensor *v, int H,
                              const tx_tensor *mask, tx_real scale, tx_real dropout,
                              tx_tensor **probs) {
    CHECK_SHAPES(q->ndim == 3 && k->ndim == 3 && q->shape[0] == k->shape[0] &&
                     q->shape[2] == k->shape[2] && H >= 1 && q->shape[2] % H == 0,
                 "attention_heads", q, k,
                 "q must be [B, Tq, H·D] and k [B, Tk, H·D], H dividing the last dimension");
    CHECK_SHAPES(tx_same_shape(k, v), "attention_heads", k, v, "k and v must be equal");
    int B = q->shape[0], Tq = q->shape[1], Tk = k->shape[1], D = q->shape[2] / H;
    return attention(tp, q, k, v, B, H, Tq, Tk, D, heads_bthd(H, Tq, D), heads_bthd(H, Tk, D),
                     mask, scale, dropout, probs);
}

tx_tensor *tx_attention_cached(tx_tape *tp, tx_tensor *q, const tx_real *k, const tx_real *v,
                               int cap, int Tk, const tx_tensor *mask, tx_real scale) {
    TX_ASSERT(q->ndim == 4 && Tk >= 1 && Tk <= cap,
              "attention_cached: q must be [B, H, Tq, D] and 1 <= Tk = %d <= cap = %d", Tk, cap);
    TX_ASSERT(!q->grad, "attention_cached: decoding only (no gradients)");
    int B = q->shape[0], H = q->shape[1], Tq = q->shape[2], D = q->shape[3];
    tx_tensor *P = tx_tensor_new(tp, 0, 4, B, H, Tq, Tk);
    tx_tensor *out = tx_tensor_newv(tp, 0, 4, q->shape);
    attention_blocks(tp, q->data, heads_bhtd(H, Tq, D), k, v, heads_bhtd(H, cap, D), H, D, mask,
                     scale, P, NULL, 0, 0, out->data);
    return out;
}

/* ==== masks =============================================================== */

/* [nb, 1, Tq, Tk]: key j hidden from query i of row b when causal and
 * j > i + off(b), or when j >= lengths[b]. */
static tx_tensor *mask_fill(tx_tape *tp, int nb, int Tq, int Tk, int causal, int off,
                            const int *offset, const int *lengths) {
    tx_tensor *m = tx_tensor_new(tp, 0, 4, nb, 1, Tq, Tk);
    for (int b = 0; b < nb; b++)
        for (int i = 0; i < Tq; i++)
            for (int j = 0; j < Tk; j++) {
                int hidden = (causal && j > i + (offset ? offset[b] : off)) ||
                             (lengths && j >= lengths[b]);
                m->data[((size_t)b * Tq + i) * Tk + j] = hidden ? -INFINITY : 0;
            }
    return m;
}

tx_tensor *tx_mask_make(tx_tape *tp, int B, int Tq, int Tk, int causal,
                        const int *lengths) {
    if (!causal && !lengths) return NULL;
    return mask_fill(tp, lengths ? B : 1, Tq, Tk, causal, Tk - Tq, NULL, lengths);
}

tx_tensor *tx_mask_offset(tx_tape *tp, int B, int Tq, int Tk, const int *offset) {
    return mask_fill(tp, B, Tq, Tk, 1, 0, offset, NULL);
}

tx_tensor *tx_mask_causal(tx_tape *tp, int Tq, int Tk) {
    return tx_reshape(tp, tx_mask_make(tp, 1, Tq, Tk, 1, NULL), 2, Tq, Tk);
}

tx_tensor *tx_mask_padding(tx_tape *tp, const int *lengths, int B, int Tk) {
    TX_ASSERT(lengths, "mask_padding: lengths is NULL");
    return tx_mask_make(tp, B, 1, Tk, 0, lengths);
}
