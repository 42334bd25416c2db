/* check_core.c: the arena, the parameter block, the tape's bookkeeping, the
 * gemm kernel against a naive triple loop, and bitwise determinism of forward
 * and backward across thread counts. */
#include <string.h>

#include "../core/gemm.h"
#include "../core/gradcheck.h"
#include "testutil.h"

/* The float build's exp and erf (this suite builds in double, where
 * vmath.h would hand back libm's): include the float versions directly. */
#undef TX_DOUBLE
#undef TX_VMATH_H
#include "../core/vmath.h"

START_TEST(test_arena_alignment_and_reuse) {
    tx_arena a = {0};
    char *p1 = tx_arena_alloc(&a, 10), *p2 = tx_arena_alloc(&a, 100);
    ck_assert_int_eq((uintptr_t)p1 % 64, 0);
    ck_assert_int_eq((uintptr_t)p2 % 64, 0);
    ck_assert(p2 >= p1 + 10);
    tx_arena_alloc(&a, 3 << 20); /* a second chunk */
    ck_assert_int_eq(a.n, 2);
    tx_arena_reset(&a); /* folds the chunks into one block */
    ck_assert_int_eq(a.n, 1);
    char *q1 = tx_arena_alloc(&a, 10);
    tx_arena_alloc(&a, 100);
    long m = a.mallocs;
    tx_arena_reset(&a);
    ck_assert_ptr_eq(tx_arena_alloc(&a, 10), q1); /* same memory again */
    tx_arena_alloc(&a, 100);
    ck_assert_int_eq(a.mallocs, m);
    /* Release gives memory back: the next allocation reuses it. */
    size_t mark = a.inuse;
    char *r1 = tx_arena_alloc(&a, 1000);
    tx_arena_release(&a, mark);
    ck_assert_ptr_eq(tx_arena_alloc(&a, 1000), r1);
    ck_assert_int_eq(a.inuse, mark + 1024);
    tx_arena_free(&a);
}
END_TEST

/* A small training-like step: linear → relu → linear → cross-entropy. */
static double step(tx_tape *tp, tx_params *p, const int *targets) {
    tx_tensor *x = tx_tensor_new(tp, 0, 3, 4, 5, 8);
    for (size_t i = 0; i < x->size; i++) x->data[i] = (tx_real)(i % 7) / 7;
    tx_tensor *h = tx_relu(tp, tx_add(tp, tx_matmul(tp, x, p->list[0], 0, 1), p->list[1]));
    tx_tensor *y = tx_matmul(tp, h, p->list[2], 0, 1);
    tx_tensor *loss = tx_cross_entropy(tp, y, targets, -1, 0);
    tx_params_zero_grad(p);
    tx_tape_backward(tp, loss);
    double v = loss->data[0];
    tx_tape_reset(tp);
    return v;
}

START_TEST(test_arena_high_water_mark_stops_growing) {
    tx_params p = {0};
    tx_params_new(&p, "w1", TX_INIT_XAVIER, 2, 16, 8);
    tx_params_new(&p, "b1", TX_INIT_ZERO, 1, 16);
    tx_params_new(&p, "w2", TX_INIT_XAVIER, 2, 6, 16);
    tx_params_alloc(&p);
    tx_rng rng;
    tx_rng_seed(&rng, 1);
    tx_params_init(&p, &rng);
    int targets[20];
    for (int i = 0; i < 20; i++) targets[i] = i % 6;
    tx_tape tp;
    tx_tape_init(&tp);
    step(&tp, &p, targets);
    step(&tp, &p, targets);
    size_t high = tp.arena.high;
    long mallocs = tp.arena.mallocs;
    for (int i = 0; i < 5; i++) step(&tp, &p, targets);
    ck_assert_int_eq(tp.arena.high, high);
    ck_assert_int_eq(tp.arena.mallocs, mallocs);
    ck_assert_int_eq(tp.arena.n, 1); /* one block */
    tx_tape_free(&tp);
    tx_params_free(&p);
}
END_TEST

START_TEST(test_params_block) {
    tx_params p = {0};
    tx_tensor *w = tx_params_new(&p, "layer.weight", TX_INIT_XAVIER, 2, 30, 10);
    tx_tensor *b = tx_params_new(&p, "layer.bias", TX_INIT_ZERO, 1, 30);
    tx_tensor *g = tx_params_new(&p, "norm.weight", TX_INIT_ONE, 1, 10);
    tx_params_alloc(&p);
    ck_assert_int_eq(p.size, 300 + 30 + 10);
    ck_assert_ptr_eq(w->data, p.data); /* one contiguous block, in order */
    ck_assert_ptr_eq(b->data, p.data + 300);
    ck_assert_ptr_eq(g->grad, p.grad + 330);
    ck_assert_ptr_eq(tx_params_find(&p, "layer.bias"), b);
    ck_assert_ptr_null(tx_params_find(&p, "nope"));
    tx_rng rng;
    tx_rng_seed(&rng, 3);
    tx_params_init(&p, &rng);
    double bound = sqrt(6.0 / (10 + 30)), mx = 0;
    for (int i = 0; i < 300; i++) mx = fmax(mx, fabs(w->data[i]));
    ck_assert(mx <= bound && mx > 0.9 * bound); /* U(-bound, bound), 300 draws */
    for (int i = 0; i < 30; i++) ck_assert(b->data[i] == 0);
    for (int i = 0; i < 10; i++) ck_assert(g->data[i] == 1);
    tx_params_free(&p);
}
END_TEST

START_TEST(test_tape_bookkeeping) {
    tx_params p = {0};
    tx_tensor *a = tx_params_new(&p, "a", TX_INIT_ZERO, 1, 3);
    tx_params_alloc(&p);
    for (int i = 0; i < 3; i++) a->data[i] = i + 1;
    tx_tape tp;
    tx_tape_init(&tp);
    for (int pass = 1; pass <= 2; pass++) {
        tx_tensor *c = tx_tensor_new(&tp, 0, 1, 3);
        for (int i = 0; i < 3; i++) c->data[i] = 10;
        tx_tensor *y = tx_sum(&tp, tx_mul(&tp, a, c));
        ck_assert_int_eq(tp.nnodes, 2);
        ck_assert_str_eq(tp.last->op, "sum");
        ck_assert_str_eq(tp.last->prev->op, "mul");
        tx_tape_backward(&tp, y);
        ck_assert_ptr_null(c->grad); /* no gradient asked, none made */
        /* Parameter gradients accumulate across passes: 10, then 20. */
        for (int i = 0; i < 3; i++) ck_near(a->grad[i], 10 * pass, 0);
        tx_tape_reset(&tp);
    }
    /* no-grad mode: nothing recorded, outputs carry no gradient. */
    tp.no_grad = 1;
    tx_tensor *y = tx_sum(&tp, tx_relu(&tp, a));
    ck_assert_int_eq(tp.nnodes, 0);
    ck_assert_ptr_null(tp.last);
    ck_assert_ptr_null(y->grad);
    ck_near(y->data[0], 6, 0);
    tx_tape_free(&tp);
    tx_params_free(&p);
}
END_TEST

static void naive(int M, int N, int K, const tx_real *A, int ta, const tx_real *B,
                  int tb, double *C) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (double)(ta ? A[k * M + i] : A[i * K + k]) *
                     (tb ? B[j * K + k] : B[k * N + j]);
            C[i * N + j] = s;
        }
}

/* Every path of the kernel: M > MC, N > NC, K > KC, ragged edges; Aᵀ read
 * in place and Aᵀ packed (rows 4 KiB apart, split by rows when M > N and by
 * columns otherwise); one thread and 2 or 4 splitting the work (thresholds at
 * 1). Each result against a naive triple loop, and the same bits whatever the
 * thread count. */
START_TEST(test_gemm_against_naive) {
    static const int sizes[][3] = {{1, 1, 1},   {7, 5, 3},     {97, 33, 300}, {200, 300, 517},
                                   {5, 2100, 7}, {600, 80, 300}, {520, 700, 40}};
    tx_rng rng;
    tx_rng_seed(&rng, 11);
    tx_set_par_min(1, 1);
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        int M = sizes[s][0], N = sizes[s][1], K = sizes[s][2];
        tx_real *A = malloc(sizeof(tx_real) * M * K), *B = malloc(sizeof(tx_real) * K * N);
        tx_real *C = malloc(sizeof(tx_real) * M * N), *C1 = malloc(sizeof(tx_real) * M * N);
        double *R = malloc(sizeof(double) * M * N);
        for (int i = 0; i < M * K; i++) A[i] = (tx_real)tx_rng_normal(&rng);
        for (int i = 0; i < K * N; i++) B[i] = (tx_real)tx_rng_normal(&rng);
        for (int t = 0; t < 4; t++) {
            int ta = t & 1, tb = t >> 1;
            naive(M, N, K, A, ta, B, tb, R);
            for (int threads = 1; threads <= 4; threads *= 2) {
                tx_set_threads(threads);
                for (int i = 0; i < M * N; i++) C[i] = 1;
                tx_gemm(M, N, K, A, ta ? M : K, ta, B, tb ? K : N, tb, C, N, 1);
                for (int i = 0; i < M * N; i++) ck_near(C[i], R[i] + 1, 1e-9 * K);
                tx_gemm(M, N, K, A, ta ? M : K, ta, B, tb ? K : N, tb, C, N, 0);
                for (int i = 0; i < M * N; i++) ck_near(C[i], R[i], 1e-9 * K);
                if (threads == 1) memcpy(C1, C, sizeof(tx_real) * M * N);
                ck_assert_msg(!memcmp(C, C1, sizeof(tx_real) * M * N),
                              "%d x %d x %d (ta %d, tb %d): %d threads differ from 1", M, N, K,
                              ta, tb, threads);
            }
        }
        free(A), free(B), free(C), free(C1), free(R);
    }
    tx_set_par_min(0, 0);
}
END_TEST

/* Attention block + layer norm + big products + dropout, forward and
 * backward; returns the loss and leaves gradients in p. */
static double block_step(tx_params *p) {
    enum { B = 4, T = 24, C = 96, H = 4, V = 37 };
    tx_tape tp;
    tx_tape_init(&tp);
    tp.training = 1;
    tp.seed = 77;
    tx_tensor *x = p->list[0], *wqkv = p->list[1], *wo = p->list[2],
              *g = p->list[3], *wv = p->list[4], *bo = p->list[5], *bn = p->list[6];
    tx_tensor *qkv = tx_matmul(&tp, x, wqkv, 0, 1); /* [B, T, 3C] */
    tx_tensor *h = tx_split_heads(&tp, qkv, 3 * H);  /* [B, 3H, T, D] */
    int lengths[B] = {24, 20, 9, 1};
    tx_tensor *m = tx_mask_make(&tp, B, T, T, 1, lengths);
    /* q = k = v: 3H heads of self-attention, causal with key padding. */
    tx_tensor *a = tx_attention(&tp, h, h, h, m, 0.3, 0.1, NULL);
    tx_tensor *o = tx_add(&tp, tx_matmul(&tp, tx_merge_heads(&tp, a), wo, 0, 1), bo);
    o = tx_dropout(&tp, tx_layer_norm(&tp, tx_gelu(&tp, o), g, bn, 1e-5), 0.1);
    tx_tensor *logits = tx_matmul(&tp, o, wv, 0, 1);
    int targets[B * T];
    for (int i = 0; i < B * T; i++) targets[i] = (i * 7) % V;
    tx_tensor *loss = tx_cross_entropy(&tp, logits, targets, 0, 0.1);
    tx_params_zero_grad(p);
    tx_tape_backward(&tp, loss);
    double v = loss->data[0];
    tx_tape_free(&tp);
    return v;
}

/* The block above with 1, 2 and 4 threads: loss and gradients bit for bit,
 * once with the real parallel thresholds (only the largest products split)
 * and once with them at 1, where every op's parallel loop runs. */
START_TEST(test_determinism_across_threads) {
    enum { B = 4, T = 24, C = 96, H = 4, V = 37 };
    tx_params p = {0};
    tx_params_new(&p, "x", TX_INIT_NORMAL, 3, B, T, C);
    tx_params_new(&p, "wqkv", TX_INIT_XAVIER, 2, 3 * C, C);
    tx_params_new(&p, "wo", TX_INIT_XAVIER, 2, 3 * C, 3 * C);
    tx_params_new(&p, "g", TX_INIT_ONE, 1, 3 * C);
    tx_params_new(&p, "wv", TX_INIT_XAVIER, 2, V, 3 * C);
    tx_params_new(&p, "bo", TX_INIT_NORMAL, 1, 3 * C);
    tx_params_new(&p, "bn", TX_INIT_NORMAL, 1, 3 * C);
    tx_params_alloc(&p);
    tx_rng rng;
    tx_rng_seed(&rng, 5);
    tx_params_init(&p, &rng);
    if (_i) tx_set_par_min(1, 1);
    int threads[3] = {1, 2, 4};
    double loss[3];
    tx_real *grads[3];
    for (int t = 0; t < 3; t++) {
        tx_set_threads(threads[t]);
        loss[t] = block_step(&p);
        grads[t] = malloc(p.size * sizeof(tx_real));
        memcpy(grads[t], p.grad, p.size * sizeof(tx_real));
    }
    tx_set_par_min(0, 0);
    for (int t = 1; t < 3; t++) {
        ck_assert_msg(loss[t] == loss[0], "loss with %d threads differs", threads[t]);
        ck_assert_msg(!memcmp(grads[t], grads[0], p.size * sizeof(tx_real)),
                      "gradients with %d threads differ", threads[t]);
    }
    double norm = 0;
    for (size_t i = 0; i < p.size; i++) norm += grads[0][i] * grads[0][i];
    ck_assert(norm > 0 && isfinite(loss[0]));
    for (int t = 0; t < 3; t++) free(grads[t]);
    tx_params_free(&p);
}
END_TEST

START_TEST(test_float_exp_erf_against_libm) {
    /* Against libm in double: exp within 2 float ulps (relative 2^-22),
     * erf within 2.5e-7, over the whole range each is used on. */
    double worst_exp = 0, worst_erf = 0;
    for (float x = -87.0f; x < 88.5f; x += 0.0037f) {
        double want = exp((double)x);
        double rel = fabs((double)tx_exp(x) - want) / want;
        if (rel > worst_exp) worst_exp = rel;
    }
    for (float x = -7.0f; x < 7.0f; x += 0.00037f) {
        double err = fabs((double)tx_erf(x) - erf((double)x));
        if (err > worst_erf) worst_erf = err;
    }
    ck_assert_msg(worst_exp < 0x1p-22, "exp: relative error %g", worst_exp);
    ck_assert_msg(worst_erf < 2.5e-7, "erf: absolute error %g", worst_erf);
    /* masked softmax entries need exp(-inf) = 0 exactly; NaN must survive
     * for --detect-anomaly */
    ck_assert(tx_exp(-INFINITY) == 0.0f && tx_exp(-100.0f) == 0.0f);
    ck_assert(isinf(tx_exp(INFINITY)) && tx_exp(INFINITY) > 0);
    ck_assert(isnan(tx_exp(NAN)) && isnan(tx_erf(NAN)));
    ck_assert(tx_erf(0.0f) == 0.0f && tx_erf(10.0f) == 1.0f && tx_erf(-10.0f) == -1.0f);
    /* the lean exp: tx_exp's bits wherever it is valid, and the ends */
    for (float x = -95.0f; x < 88.0f; x += 0.0013f) {
        float a = tx_exp(x), b = tx_exp_nonpos(x);
        ck_assert_msg(!memcmp(&a, &b, sizeof a), "exp_nonpos(%.9g) = %.9g, exp %.9g", x, b, a);
    }
    ck_assert(tx_exp_nonpos(-INFINITY) == 0.0f && isnan(tx_exp_nonpos(NAN)));
}
END_TEST

Suite *suite(void) {
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_arena_alignment_and_reuse);
    tcase_add_test(tc, test_arena_high_water_mark_stops_growing);
    tcase_add_test(tc, test_params_block);
    tcase_add_test(tc, test_tape_bookkeeping);
    tcase_add_test(tc, test_gemm_against_naive);
    tcase_add_loop_test(tc, test_determinism_across_threads, 0, 2);
    tcase_add_test(tc, test_float_exp_erf_against_libm);
    suite_add_tcase(s, tc);
    return s;
}

TX_TEST_MAIN
