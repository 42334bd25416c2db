/* custom_op.c: a differentiable op defined outside the library, RMSNorm
 * (y = x / sqrt(mean(x²) + eps) · w over the last dimension, as LLaMA
 * normalises), written against the public tape API and checked against
 * finite differences with the public gradcheck, in double precision.
 * Build: cc custom_op.c $(pkg-config --cflags --libs tapeformer64) -o custom_op
 * (tapeformer64: the library with its scalar type tx_real = double). */
#include <math.h>
#include <stdio.h>

#include <tapeformer/tapeformer.h>

/* ---- rms_norm ------------------------------------------------------------------- */

typedef struct rms_state {
    int N, C;           /* rows, channels */
    const tx_real *rstd; /* [N] 1 / sqrt(mean(x²) + eps) */
} rms_state;

static void rms_norm_backward(tx_node *n) {
    /* In the forward pass this was, per row, r = 1/sqrt(mean(x²) + eps),
     * x̂ = x·r, y = x̂·w. With g = dy·w:
     *   dx = r·(g − x̂·mean(g·x̂)),  dw = Σ_rows dy·x̂. */
    const rms_state *s = n->saved;
    tx_tensor *x = n->in[0], *w = n->in[1];
    const tx_real *dy = n->out->grad;
    if (x->grad) {
        int add = tx_grad_add(x); /* 0: the first contribution, assign */
        for (int i = 0; i < s->N; i++) {
            const tx_real *xr = x->data + (size_t)i * s->C, *gr = dy + (size_t)i * s->C;
            tx_real r = s->rstd[i], mgx = 0;
            for (int j = 0; j < s->C; j++) mgx += gr[j] * w->data[j] * xr[j] * r;
            mgx /= s->C;
            for (int j = 0; j < s->C; j++) {
                tx_real d = r * (gr[j] * w->data[j] - xr[j] * r * mgx);
                x->grad[(size_t)i * s->C + j] = (add ? x->grad[(size_t)i * s->C + j] : 0) + d;
            }
        }
    }
    if (w->grad) {
        tx_grad_prepare(w); /* a sum over rows: add into zeros if nothing was written */
        for (int i = 0; i < s->N; i++)
            for (int j = 0; j < s->C; j++)
                w->grad[j] += dy[(size_t)i * s->C + j] * x->data[(size_t)i * s->C + j] * s->rstd[i];
    }
}

/* x [..., C], w [C]: out like x. */
static tx_tensor *rms_norm(tx_tape *tp, tx_tensor *x, tx_tensor *w, tx_real eps) {
    int C = x->shape[x->ndim - 1], N = (int)(x->size / (size_t)C);
    TX_ASSERT(w->ndim == 1 && w->shape[0] == C, "rms_norm: w has %d entries, x rows of %d",
              w->shape[0], C);
    tx_tensor *out = tx_op_output(tp, x->ndim, x->shape, x, w, NULL);
    tx_node *n = tx_op_record(tp, "rms_norm", rms_norm_backward, out, x, w, NULL);
    rms_state *s = tx_op_save(tp, n, sizeof *s); /* NULL when nothing is recorded */
    tx_real *rstd = tx_tape_alloc(tp, (size_t)N * sizeof *rstd);
    for (int i = 0; i < N; i++) {
        const tx_real *xr = x->data + (size_t)i * C;
        tx_real ms = 0;
        for (int j = 0; j < C; j++) ms += xr[j] * xr[j];
        rstd[i] = 1 / sqrt(ms / C + eps);
        for (int j = 0; j < C; j++) out->data[(size_t)i * C + j] = xr[j] * rstd[i] * w->data[j];
    }
    if (s) *s = (rms_state){N, C, rstd};
    return out;
}

/* ---- the check ------------------------------------------------------------------- */

typedef struct leaves {
    tx_tensor *x, *w; /* [3, 5, 8], [8] */
} leaves;

/* A scalar from rms_norm's output whose gradient reaches every element. */
static tx_tensor *loss(tx_tape *tp, void *ctx) {
    const leaves *l = ctx;
    return tx_gc_project(tp, rms_norm(tp, l->x, l->w, 1e-5), 7);
}

int main(void) {
    if (sizeof(tx_real) != sizeof(double)) {
        fprintf(stderr, "custom_op: build with pkg-config tapeformer64 (double)\n");
        return 2;
    }
    tx_params p = {0};
    leaves l = {tx_params_new(&p, "x", TX_INIT_ZERO, 3, 3, 5, 8),
                tx_params_new(&p, "w", TX_INIT_ZERO, 1, 8)};
    tx_params_alloc(&p);
    tx_gc_randomize(&p, 1); /* U(-1, 1) */
    tx_gc_stats st = {0};
    long failed = tx_gradcheck(&p, loss, &l, &st);
    printf("rms_norm gradcheck: %ld elements, %ld outside eps %g atol %g rtol %g, "
           "largest error %.2e\n", st.checked, failed, TX_GC_EPS, TX_GC_ATOL, TX_GC_RTOL,
           st.max_abs);
    tx_params_free(&p);
    return failed ? 1 : 0;
}
