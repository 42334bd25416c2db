/* check_ops.c: forward values of every op against values worked out by hand
 * or with PyTorch 1.13 in float64 (the script lines are quoted), gradcheck of
 * every op, and shape errors that abort naming the op and both shapes. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../gradcheck/cases.h"
#include "testutil.h"

static tx_tape tp;
static void setup(void) { tx_tape_init(&tp); }
static void teardown(void) { tx_tape_free(&tp); }

static tx_tensor *make(int ndim, const int *shape, const double *v, int grad) {
    tx_tensor *t = tx_tensor_newv(&tp, grad, ndim, shape);
    for (size_t i = 0; i < t->size; i++) t->data[i] = (tx_real)v[i];
    return t;
}

static void expect(const tx_tensor *t, const double *want, double tol) {
    for (size_t i = 0; i < t->size; i++)
        ck_assert_msg(fabs(t->data[i] - want[i]) <= tol,
                      "element %zu: got %.10f, expected %.10f", i,
                      (double)t->data[i], want[i]);
}

/* x = [[1, 2, 3], [-1, 0.5, 0]] is the input of most checks below. */
static const double X[6] = {1, 2, 3, -1, 0.5, 0};
static const int S23[2] = {2, 3};

START_TEST(test_add_broadcast) {
    tx_tensor *a = make(2, S23, X, 0);
    tx_tensor *b = make(1, (int[]){3}, (double[]){10, 20, 30}, 0);
    expect(tx_add(&tp, a, b), (double[]){11, 22, 33, 9, 20.5, 30}, 0);
    expect(tx_sub(&tp, a, a), (double[]){0, 0, 0, 0, 0, 0}, 0);
    expect(tx_mul(&tp, a, a), (double[]){1, 4, 9, 1, 0.25, 0}, 0);
    expect(tx_scale(&tp, a, 2), (double[]){2, 4, 6, -2, 1, 0}, 0);
}
END_TEST

START_TEST(test_matmul_transposes) {
    /* a = [[1,2,3],[-1,.5,0]] (2x3), b = [[1,0],[0,1],[2,-1]] (3x2):
     * a·b = [[1+0+6, 0+2-3], [-1+0+0, 0+.5+0]] = [[7, -1], [-1, .5]]. */
    static const double B[6] = {1, 0, 0, 1, 2, -1}, BT[6] = {1, 0, 2, 0, 1, -1};
    static const double AT[6] = {1, -1, 2, 0.5, 3, 0}, want[4] = {7, -1, -1, 0.5};
    tx_tensor *a = make(2, S23, X, 0), *at = make(2, (int[]){3, 2}, AT, 0);
    tx_tensor *b = make(2, (int[]){3, 2}, B, 0), *bt = make(2, S23, BT, 0);
    expect(tx_matmul(&tp, a, b, 0, 0), want, 0);
    expect(tx_matmul(&tp, at, b, 1, 0), want, 0);
    expect(tx_matmul(&tp, a, bt, 0, 1), want, 0);
    expect(tx_matmul(&tp, at, bt, 1, 1), want, 0);
    /* Batched: two copies of a against b and against 2·b. */
    double a2[12], b2[12];
    for (int i = 0; i < 6; i++) a2[i] = a2[6 + i] = X[i], b2[i] = B[i], b2[6 + i] = 2 * B[i];
    tx_tensor *ab = make(3, (int[]){2, 2, 3}, a2, 0);
    tx_tensor *out = tx_matmul(&tp, ab, make(3, (int[]){2, 3, 2}, b2, 0), 0, 0);
    ck_assert_int_eq(out->ndim, 3);
    expect(out, (double[]){7, -1, -1, 0.5, 14, -2, -2, 1}, 0);
    out = tx_matmul(&tp, ab, b, 0, 0); /* shared 2-D b */
    expect(out, (double[]){7, -1, -1, 0.5, 7, -1, -1, 0.5}, 0);
    /* affine: a·btᵀ (= a·b above) plus a bias per column, then without one. */
    tx_tensor *bias = make(1, (int[]){2}, (double[]){10, 20}, 0);
    expect(tx_affine(&tp, a, bt, bias), (double[]){17, 19, 9, 20.5}, 0);
    expect(tx_affine(&tp, ab, bt, NULL), (double[]){7, -1, -1, 0.5, 7, -1, -1, 0.5}, 0);
}
END_TEST

START_TEST(test_activations) {
    tx_tensor *a = make(2, S23, X, 0);
    expect(tx_relu(&tp, a), (double[]){1, 2, 3, 0, 0.5, 0}, 0);
    /* F.gelu(torch.tensor([-1., 0., .5, 2.], dtype=torch.float64)) */
    tx_tensor *g = make(1, (int[]){4}, (double[]){-1, 0, 0.5, 2}, 0);
    expect(tx_gelu(&tp, g), (double[]){-0.1586552539, 0, 0.3457312306, 1.9544997361}, 1e-9);
}
END_TEST

START_TEST(test_softmax_values) {
    tx_tensor *a = make(2, S23, X, 0);
    /* F.softmax(x, -1) and F.log_softmax(x, -1) */
    expect(tx_softmax(&tp, a, NULL),
           (double[]){0.0900305732, 0.2447284711, 0.6652409558, 0.1219516523,
                      0.5465493873, 0.3314989604}, 1e-9);
    expect(tx_log_softmax(&tp, a),
           (double[]){-2.4076059644, -1.4076059644, -0.4076059644,
                      -2.1041306053, -0.6041306053, -1.1041306053}, 1e-9);
    /* s = [[.1,.2,.3],[.4,.5,.6],[.7,.8,.9]];
     * F.softmax(s + torch.triu(torch.full((3,3), -inf), diagonal=1), -1) */
    static const double s[9] = {.1, .2, .3, .4, .5, .6, .7, .8, .9};
    tx_tensor *sc = make(2, (int[]){3, 3}, s, 0);
    expect(tx_softmax(&tp, sc, tx_mask_causal(&tp, 3, 3)),
           (double[]){1, 0, 0, 0.4750208125, 0.5249791875, 0, 0.3006096054,
                      0.3322249935, 0.3671654011}, 1e-9);
    /* Key padding: lengths {2, 0}: batch item 0 sees keys 0..1, item 1 none. */
    tx_tensor *x2 = make(4, (int[]){2, 1, 1, 3}, (double[]){0, 0, 5, 1, 2, 3}, 0);
    expect(tx_softmax(&tp, x2, tx_mask_padding(&tp, (int[]){2, 0}, 2, 3)),
           (double[]){0.5, 0.5, 0, 0, 0, 0}, 1e-15);
}
END_TEST

START_TEST(test_cross_entropy_values) {
    /* logits = [[1,2,3],[-1,.5,0],[.3,.2,.1]], t = [2,0,1];
     * F.cross_entropy(logits, t, ignore_index=1) = 1.2558682849, and with
     * label_smoothing=0.2: 1.2725349516. */
    static const double L[9] = {1, 2, 3, -1, 0.5, 0, 0.3, 0.2, 0.1};
    static const int t[3] = {2, 0, 1};
    tx_tensor *x = make(2, (int[]){3, 3}, L, 0);
    ck_near(tx_cross_entropy(&tp, x, t, 1, 0)->data[0], 1.2558682849, 1e-9);
    ck_near(tx_cross_entropy(&tp, x, t, 1, 0.2)->data[0], 1.2725349516, 1e-9);
    /* Every row ignored: loss 0, not NaN. */
    static const int none[3] = {1, 1, 1};
    ck_near(tx_cross_entropy(&tp, x, none, 1, 0)->data[0], 0, 0);
}
END_TEST

START_TEST(test_layer_norm_values) {
    /* F.layer_norm(x, (3,), w=[1,2,.5], b=[0,1,-1], eps=1e-5) */
    tx_tensor *x = make(2, S23, X, 0);
    tx_tensor *w = make(1, (int[]){3}, (double[]){1, 2, 0.5}, 0);
    tx_tensor *b = make(1, (int[]){3}, (double[]){0, 1, -1}, 0);
    tx_tensor *y = tx_layer_norm(&tp, x, w, b, 1e-5);
    expect(y, (double[]){-1.2247356859, 1, -0.3876321570, -1.3362890288,
                         3.1380624461, -0.8663710971}, 1e-9);
}
END_TEST

START_TEST(test_embedding_and_views) {
    /* table rows r = [r, 10r]; ids {2, 0, 2}. */
    tx_tensor *tab = make(2, (int[]){3, 2}, (double[]){0, 0, 1, 10, 2, 20}, 0);
    tx_tensor *e = tx_embedding(&tp, tab, (int[]){2, 0, 2}, 1, 3);
    ck_assert(e->ndim == 3 && e->shape[0] == 1 && e->shape[1] == 3 && e->shape[2] == 2);
    expect(e, (double[]){2, 20, 0, 0, 2, 20}, 0);
    /* x [B=1, T=2, H·D=4], H = 2: head h of step t is x[t][2h..2h+1], so
     * split gives [h0: t0 (0,1), t1 (4,5); h1: t0 (2,3), t1 (6,7)]. */
    tx_tensor *x = make(3, (int[]){1, 2, 4}, (double[]){0, 1, 2, 3, 4, 5, 6, 7}, 0);
    tx_tensor *h = tx_split_heads(&tp, x, 2);
    ck_assert(h->shape[1] == 2 && h->shape[2] == 2 && h->shape[3] == 2);
    expect(h, (double[]){0, 1, 4, 5, 2, 3, 6, 7}, 0);
    expect(tx_merge_heads(&tp, h), (double[]){0, 1, 2, 3, 4, 5, 6, 7}, 0);
    tx_tensor *r = tx_reshape(&tp, x, 2, -1, 2);
    ck_assert(r->shape[0] == 4 && r->data == x->data);
    ck_near(tx_sum(&tp, x)->data[0], 28, 0);
    ck_near(tx_mean(&tp, x)->data[0], 3.5, 0);
}
END_TEST

START_TEST(test_dropout) {
    enum { N = 20000 };
    tx_tensor *x = tx_tensor_new(&tp, 0, 1, N);
    for (int i = 0; i < N; i++) x->data[i] = 1;
    ck_assert_ptr_eq(tx_dropout(&tp, x, 0.25), x); /* eval: identity */
    tp.training = 1;
    tp.seed = 9;
    tx_tensor *y = tx_dropout(&tp, x, 0.25);
    int zeros = 0;
    for (int i = 0; i < N; i++) {
        ck_assert(y->data[i] == 0 || fabs(y->data[i] - 1 / 0.75) < 1e-12);
        zeros += y->data[i] == 0;
    }
    /* Binomial(20000, .25): sd 61, so ±400 is > 6 sd. */
    ck_assert_int_gt(zeros, 5000 - 400);
    ck_assert_int_lt(zeros, 5000 + 400);
    tx_tensor *z = tx_dropout(&tp, x, 0.25); /* the next call: a new mask */
    ck_assert(memcmp(y->data, z->data, N * sizeof(tx_real)) != 0);
    static tx_real first[N];
    memcpy(first, y->data, sizeof first);
    tx_tape_reset(&tp); /* same seed after a reset: the same masks again */
    x = tx_tensor_new(&tp, 0, 1, N);
    for (int i = 0; i < N; i++) x->data[i] = 1;
    y = tx_dropout(&tp, x, 0.25);
    ck_assert(memcmp(first, y->data, sizeof first) == 0);
}
END_TEST

START_TEST(test_attention_matches_composition) {
    /* The fused op against matmul → scale → masked softmax → matmul. */
    tx_params p = {0};
    tx_tensor *q = tx_params_new(&p, "q", TX_INIT_ZERO, 4, 2, 3, 4, 5);
    tx_tensor *k = tx_params_new(&p, "k", TX_INIT_ZERO, 4, 2, 3, 6, 5);
    tx_tensor *v = tx_params_new(&p, "v", TX_INIT_ZERO, 4, 2, 3, 6, 5);
    tx_params_alloc(&p);
    tx_gc_randomize(&p, 5);
    tx_tensor *m = tx_mask_make(&tp, 2, 4, 6, 1, (int[]){6, 3});
    tx_tensor *probs;
    tx_tensor *o = tx_attention(&tp, q, k, v, m, 0.4, 0, &probs);
    tx_tensor *s = tx_scale(&tp, tx_matmul(&tp, q, k, 0, 1), 0.4);
    tx_tensor *pr = tx_softmax(&tp, s, m);
    tx_tensor *o2 = tx_matmul(&tp, pr, v, 0, 0);
    for (size_t i = 0; i < o->size; i++) ck_near(o->data[i], o2->data[i], 1e-12);
    for (size_t i = 0; i < pr->size; i++) ck_near(probs->data[i], pr->data[i], 1e-12);
    tx_params_free(&p);
}
END_TEST

/* One forward and backward of o = attention (heads side by side, or split,
 * attended and merged) of q = p->list[iq] and k = v = p->list[ik], or
 * separate k and v (iv) when iv >= 0; loss Σ o ⊙ w: o, the probabilities
 * and all of p's gradients, copied into out in turn. */
static size_t attend(tx_params *p, int side_by_side, int iq, int ik, int iv, tx_real *out) {
    tx_tensor *q = p->list[iq], *k = p->list[ik], *v = p->list[iv >= 0 ? iv : ik], *probs, *o;
    tx_tape_reset(&tp);
    tp.training = 1, tp.seed = 3, tp.ncalls = 0; /* the same dropout key for both */
    tx_tensor *m = tx_mask_make(&tp, 2, q->shape[1], k->shape[1], 1, (int[]){5, 3});
    if (side_by_side) {
        o = tx_attention_heads(&tp, q, k, v, 2, m, 0.4, 0.25, &probs);
    } else { /* split in this order, so a shared tensor adds dv, dk, dq */
        tx_tensor *sq = tx_split_heads(&tp, q, 2), *sk = tx_split_heads(&tp, k, 2),
                  *sv = tx_split_heads(&tp, v, 2);
        o = tx_merge_heads(&tp, tx_attention(&tp, sq, sk, sv, m, 0.4, 0.25, &probs));
    }
    tx_tensor *w = tx_tensor_newv(&tp, 0, o->ndim, o->shape);
    for (size_t i = 0; i < w->size; i++) w->data[i] = (tx_real)(i % 7) - 3;
    tx_params_zero_grad(p);
    tx_tape_backward(&tp, tx_sum(&tp, tx_mul(&tp, o, w)));
    size_t n = 0;
    const tx_tensor *parts[2] = {o, probs};
    for (int i = 0; i < 2; i++, n += parts[i - 1]->size)
        memcpy(out + n, parts[i]->data, parts[i]->size * sizeof *out);
    memcpy(out + n, p->grad, p->size * sizeof *out);
    return n + p->size;
}

START_TEST(test_attention_heads_matches_split) {
    /* Heads side by side in [B, T, H·D] against split → attention → merge,
     * with a causal padded mask and dropout: the same products over the same
     * numbers, so the same bits, forward and backward. */
    tx_params p = {0};
    tx_params_new(&p, "q", TX_INIT_ZERO, 3, 2, 4, 6);
    tx_params_new(&p, "k", TX_INIT_ZERO, 3, 2, 5, 6);
    tx_params_new(&p, "v", TX_INIT_ZERO, 3, 2, 5, 6);
    tx_params_alloc(&p);
    tx_gc_randomize(&p, 7);
    /* o, probs, then the gradients of q, k, v (168) */
    enum { N = 48 + 80 + 168, N1 = 60 + 100 + 168 };
    tx_real a[N1], b[N1];
    ck_assert_int_eq(attend(&p, 1, 0, 1, 2, a), N);
    ck_assert_int_eq(attend(&p, 0, 0, 1, 2, b), N);
    ck_assert(memcmp(a, b, N * sizeof *a) == 0);
    /* q = k = v one tensor (k): its gradient gets dv, then dk and dq added */
    ck_assert_int_eq(attend(&p, 1, 1, 1, -1, a), N1);
    ck_assert_int_eq(attend(&p, 0, 1, 1, -1, b), N1);
    ck_assert(memcmp(a, b, N1 * sizeof *a) == 0);
    tx_params_free(&p);
}
END_TEST

/* Attention of q, k, v (p's three tensors, heads side by side) under a
 * [B, H, Tq, Tk] mask, `hidden` where it hides a key: a different causal
 * offset per head, padding, and holes; key 0 always visible. Output,
 * probabilities and gradients into out, as attend. */
static size_t attend_masked(tx_params *p, tx_real hidden, tx_real *out) {
    tx_tensor *q = p->list[0], *k = p->list[1], *v = p->list[2], *probs;
    int B = q->shape[0], Tq = q->shape[1], Tk = k->shape[1], H = 2, len[2] = {Tk, Tk - 9};
    tx_tape_reset(&tp);
    tp.training = 1, tp.seed = 5, tp.ncalls = 0;
    tx_tensor *m = tx_tensor_new(&tp, 0, 4, B, H, Tq, Tk);
    for (int b = 0, e = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < Tq; i++)
                for (int j = 0; j < Tk; j++, e++)
                    m->data[e] = j > 0 && (j > i + 5 * h || j >= len[b] || (i * 7 + j * 3 + h) % 11 == 0)
                                     ? hidden : 0;
    tx_tensor *o = tx_attention_heads(&tp, q, k, v, H, m, 0.3, 0.2, &probs);
    tx_tensor *w = tx_tensor_newv(&tp, 0, o->ndim, o->shape);
    for (size_t i = 0; i < w->size; i++) w->data[i] = (tx_real)(i % 5) - 2;
    tx_params_zero_grad(p);
    tx_tape_backward(&tp, tx_sum(&tp, tx_mul(&tp, o, w)));
    memcpy(out, o->data, o->size * sizeof *out);
    memcpy(out + o->size, probs->data, probs->size * sizeof *out);
    memcpy(out + o->size + probs->size, p->grad, p->size * sizeof *out);
    return o->size + probs->size + p->size;
}

START_TEST(test_attention_skips_masked_keys) {
    /* Keys past a row's last visible one are left out of the products and
     * softmax rows (masked by −inf, so exact zeros). A mask of −1e30 hides
     * them just as well (e^−1e30 is 0 too) but is finite, so nothing is
     * left out: the same bits either way, forward and backward, with
     * tiles and panels skipped (Tk 45 spans two panels) and heads that do
     * not share a mask. */
    enum { B = 2, Tq = 40, Tk = 45, C = 2 * 8 };
    tx_params p = {0};
    tx_params_new(&p, "q", TX_INIT_ZERO, 3, B, Tq, C);
    tx_params_new(&p, "k", TX_INIT_ZERO, 3, B, Tk, C);
    tx_params_new(&p, "v", TX_INIT_ZERO, 3, B, Tk, C);
    tx_params_alloc(&p);
    tx_gc_randomize(&p, 11);
    enum { N = B * Tq * C + B * 2 * Tq * Tk + B * (Tq + 2 * Tk) * C };
    static tx_real a[N], b[N];
    ck_assert_int_eq(attend_masked(&p, -INFINITY, a), N);
    ck_assert_int_eq(attend_masked(&p, (tx_real)-1e30, b), N);
    ck_assert(memcmp(a, b, sizeof a) == 0);
    tx_params_free(&p);
}
END_TEST

/* Every op's gradcheck case, one loop iteration each. */
START_TEST(test_gradcheck_op) {
    ck_gradcheck(tx_gc_case_name(tx_gc_op_rows, _i));
}
END_TEST

/* Runs f in a child with stderr captured; returns the child's stderr and
 * whether it died of SIGABRT. */
static int aborts_with(void (*f)(void), char *msg, size_t n) {
    int fd[2];
    ck_assert(pipe(fd) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        f();
        _exit(0);
    }
    close(fd[1]);
    size_t len = 0;
    ssize_t got;
    while (len < n - 1 && (got = read(fd[0], msg + len, n - 1 - len)) > 0)
        len += (size_t)got;
    msg[len] = 0;
    close(fd[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void bad_matmul(void) {
    tx_tape t;
    tx_tape_init(&t);
    tx_matmul(&t, tx_tensor_new(&t, 0, 2, 2, 3), tx_tensor_new(&t, 0, 2, 4, 5), 0, 0);
}
static void bad_add(void) {
    tx_tape t;
    tx_tape_init(&t);
    tx_add(&t, tx_tensor_new(&t, 0, 2, 2, 3), tx_tensor_new(&t, 0, 1, 2));
}

START_TEST(test_shape_errors_abort) {
    char msg[512];
    ck_assert(aborts_with(bad_matmul, msg, sizeof msg));
    ck_assert_msg(strstr(msg, "matmul") && strstr(msg, "[2, 3]") && strstr(msg, "[4, 5]"),
                  "message: %s", msg);
    ck_assert(strstr(msg, "core/ops.c:"));
    ck_assert(aborts_with(bad_add, msg, sizeof msg));
    ck_assert_msg(strstr(msg, "add") && strstr(msg, "[2, 3]") && strstr(msg, "[2]"),
                  "message: %s", msg);
}
END_TEST

Suite *suite(void) {
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("ops");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_add_broadcast);
    tcase_add_test(tc, test_matmul_transposes);
    tcase_add_test(tc, test_activations);
    tcase_add_test(tc, test_softmax_values);
    tcase_add_test(tc, test_cross_entropy_values);
    tcase_add_test(tc, test_layer_norm_values);
    tcase_add_test(tc, test_embedding_and_views);
    tcase_add_test(tc, test_dropout);
    tcase_add_test(tc, test_attention_matches_composition);
    tcase_add_test(tc, test_attention_heads_matches_split);
    tcase_add_test(tc, test_attention_skips_masked_keys);
    int ncases = 0;
    while (tx_gc_case_name(tx_gc_op_rows, ncases)) ncases++;
    tcase_add_loop_test(tc, test_gradcheck_op, 0, ncases);
    tcase_add_test(tc, test_shape_errors_abort);
    suite_add_tcase(s, tc);
    return s;
}

TX_TEST_MAIN
