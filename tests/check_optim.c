#include "testutil.h"

#include <string.h>

#include "../core/ops.h"
#include "../optim/optim.h"

/* Four parameters in one tensor, three steps with fixed gradients. Expected
 * values from torch 1.13 (float64), script:
 *   G = [[0.3,-0.2,1.5,0.0], [-0.1,0.4,0.5,2.0], [0.2,0.2,-1.0,-0.5]]
 *   p = torch.tensor([0.5,-1.0,2.0,0.25], requires_grad=True)
 *   opt = torch.optim.Adam([p], lr=0.1, betas=(0.9,0.999), eps=1e-3,
 *                          weight_decay=0.1)   # AdamW: same arguments;
 *   # SGD: torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.1)
 *   for g in G: p.grad = torch.tensor(g); opt.step(); print(p)
 * Hand check of Adam's first element after step 1: g = 0.3 + 0.1·0.5 = 0.35,
 * m̂ = 0.35, sqrt(v̂) = 0.35, p = 0.5 - 0.1·0.35/(0.35 + 1e-3) = 0.4002849...
 * (eps inside the sqrt would give 0.4008...). eps = 1e-3 makes its placement
 * visible at the 1e-4 level. */
static const double G[3][4] = {
    {0.3, -0.2, 1.5, 0.0}, {-0.1, 0.4, 0.5, 2.0}, {0.2, 0.2, -1.0, -0.5}};

static void run3(int name, const double want[3][4]) {
    tx_params p = {0};
    tx_params_new(&p, "w", TX_INIT_ZERO, 1, 4);
    tx_params_alloc(&p);
    const double w0[4] = {0.5, -1.0, 2.0, 0.25};
    for (int i = 0; i < 4; i++) p.data[i] = w0[i];
    tx_optim_config cfg = {.name = name,
                           .lr = 0.1,
                           .beta1 = 0.9,
                           .beta2 = 0.999,
                           .eps = 1e-3,
                           .weight_decay = 0.1};
    tx_optim o;
    tx_optim_init(&o, &cfg, &p);
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < 4; i++) p.grad[i] = G[s][i];
        tx_optim_step(&o, &p, cfg.lr);
        for (int i = 0; i < 4; i++) ck_near(p.data[i], want[s][i], 1e-12);
    }
    ck_assert_int_eq(o.t, 3);
    tx_optim_free(&o);
    tx_params_free(&p);
}

START_TEST(test_adam) {
    const double want[3][4] = {{0.40028490028490027, -0.90033222591362128,
                                1.9000587889476779, 0.15384615384615385},
                               {0.34702819257142559, -0.90720585928960029,
                                1.8100479703045471, 0.078660232057012516},
                               {0.27759255163977437, -0.92799077139611552,
                                1.772565167312802, 0.037356348291178607}};
    run3(TX_OPT_ADAM, want);
}
END_TEST

START_TEST(test_adamw) {
    const double want[3][4] = {
        {0.39533222591362127, -0.89049751243781095, 1.8800666222518321, 0.2475},
        {0.35153526827914638, -0.91808750012724505, 1.774237417228979,
         0.17066388574449282},
        {0.28798920429061703, -0.96064777414544189, 1.7337935421183828,
         0.12868899338614898}};
    run3(TX_OPT_ADAMW, want);
}
END_TEST

/* By hand too: step 1, element 0: g = 0.3 + 0.05 = 0.35, buf = g,
 * p = 0.5 - 0.035 = 0.465. */
START_TEST(test_sgd) {
    const double want[3][4] = {{0.465, -0.97, 1.83, 0.2475},
                               {0.43885, -0.9733, 1.6087, 0.042775},
                               {0.3909265, -0.986537, 1.493443, -0.09190525}};
    run3(TX_OPT_SGD, want);
}
END_TEST

/* Gradients 3 and 4 in two tensors: global norm 5. */
START_TEST(test_clip) {
    tx_params p = {0};
    tx_params_new(&p, "a", TX_INIT_ZERO, 1, 1);
    tx_params_new(&p, "b", TX_INIT_ZERO, 2, 1, 1);
    tx_params_alloc(&p);
    p.grad[0] = 3, p.grad[1] = -4;
    ck_near(tx_clip_grad_norm(&p, 10), 5, 1e-15);
    ck_assert(p.grad[0] == 3 && p.grad[1] == -4); /* below max: untouched */
    ck_near(tx_clip_grad_norm(&p, 4), 5, 1e-15);
    ck_near(p.grad[0], 3 * 4 / (5 + 1e-6), 1e-15);
    ck_near(p.grad[1], -4 * 4 / (5 + 1e-6), 1e-15);
    p.grad[0] = INFINITY; /* not finite: reported, nothing scaled */
    ck_assert(isinf(tx_clip_grad_norm(&p, 1)));
    ck_assert(isinf(p.grad[0]));
    ck_near(p.grad[1], -4 * 4 / (5 + 1e-6), 1e-15);
    tx_params_free(&p);
}
END_TEST

/* Clipping (norm and scaling), the Adam, AdamW and SGD updates and zeroing
 * give the same bits with 1, 2 and 4 threads, with the parallel thresholds
 * at 1 so every loop is split even on this small block; the norm agrees with
 * a long double sum. */
START_TEST(test_parallel_deterministic) {
    enum { N = 10007 };
    static const int names[3] = {TX_OPT_ADAM, TX_OPT_ADAMW, TX_OPT_SGD};
    tx_real *want[3] = {0}, *got = tx_malloc(2 * N * sizeof *got);
    double norm[3];
    long double ref = 0;
    tx_set_par_min(1, 1);
    for (int t = 0; t < 3; t++) {
        tx_set_threads(1 << t); /* 1, 2, 4 */
        tx_params p = {0};
        tx_params_new(&p, "w", TX_INIT_NORMAL, 1, N);
        tx_params_alloc(&p);
        tx_rng r;
        tx_rng_seed(&r, 7);
        tx_params_init(&p, &r);
        for (size_t i = 0; i < p.size; i++) p.grad[i] = tx_rng_normal(&r);
        if (t == 0)
            for (size_t i = 0; i < p.size; i++) ref += (long double)p.grad[i] * p.grad[i];
        norm[t] = tx_clip_grad_norm(&p, 10); /* scales: the norm is about 100 */
        for (int o = 0; o < 3; o++) {
            tx_optim opt;
            tx_optim_config cfg = {.name = names[o], .lr = 0.01, .beta1 = 0.9, .beta2 = 0.99,
                                   .eps = 1e-8, .weight_decay = 0.1};
            tx_optim_init(&opt, &cfg, &p);
            for (int k = 0; k < 3; k++) tx_optim_step(&opt, &p, 0.01);
            memcpy(got, p.data, N * sizeof *got);
            memcpy(got + N, opt.m, N * sizeof *got);
            if (t == 0) want[o] = tx_malloc(2 * N * sizeof *got), memcpy(want[o], got, 2 * N * sizeof *got);
            else ck_assert_msg(!memcmp(want[o], got, 2 * N * sizeof *got),
                               "optimizer %d differs with %d threads", o, 1 << t);
            tx_optim_free(&opt);
        }
        tx_params_zero_grad(&p);
        for (size_t i = 0; i < p.size; i++) ck_assert(p.grad[i] == 0);
        tx_params_free(&p);
    }
    tx_set_par_min(0, 0);
    tx_set_threads(0);
    ck_assert(norm[0] == norm[1] && norm[0] == norm[2]);
    ck_near(norm[0], sqrtl(ref), 1e-12 * norm[0]);
    for (int o = 0; o < 3; o++) free(want[o]);
    free(got);
}
END_TEST

/* Values worked out by hand from the formulas in optim.h. */
START_TEST(test_schedule_constant) {
    tx_optim_config c = {
        .lr = 1e-3, .schedule = TX_SCHED_CONSTANT, .warmup = 4};
    ck_near(tx_schedule_lr(&c, 0, 1), 2.5e-4, 1e-18);
    ck_near(tx_schedule_lr(&c, 0, 3), 7.5e-4, 1e-18);
    ck_near(tx_schedule_lr(&c, 0, 4), 1e-3, 1e-18);
    ck_near(tx_schedule_lr(&c, 0, 100), 1e-3, 1e-18);
    c.warmup = 0;
    ck_near(tx_schedule_lr(&c, 0, 1), 1e-3, 1e-18);
}
END_TEST

/* lr 2, d_model 64 (factor 2/8 = 0.25), warmup 100 (100^-1.5 = 1e-3). */
START_TEST(test_schedule_noam) {
    tx_optim_config c = {.lr = 2, .schedule = TX_SCHED_NOAM, .warmup = 100};
    ck_near(tx_schedule_lr(&c, 64, 1), 0.25 * 1e-3, 1e-15); /* warmup side */
    ck_near(tx_schedule_lr(&c, 64, 50), 0.25 * 0.05, 1e-15);
    ck_near(tx_schedule_lr(&c, 64, 100), 0.25 * 0.1, 1e-15);  /* peak */
    ck_near(tx_schedule_lr(&c, 64, 400), 0.25 * 0.05, 1e-15); /* 400^-0.5 */
    c.warmup = 0;
    ck_near(tx_schedule_lr(&c, 64, 4), 0.25 * 0.5, 1e-15);
}
END_TEST

/* lr 1, warmup 10, total 110: the decay spans 100 steps from 1 to 0.1, so
 * lr = 0.1 + 0.45·(1 + cos(pi·(step-10)/100)). */
START_TEST(test_schedule_cosine) {
    tx_optim_config c = {
        .lr = 1, .schedule = TX_SCHED_COSINE, .warmup = 10, .total_steps = 110};
    ck_near(tx_schedule_lr(&c, 0, 1), 0.1, 1e-15);
    ck_near(tx_schedule_lr(&c, 0, 5), 0.5, 1e-15);
    ck_near(tx_schedule_lr(&c, 0, 10), 1, 1e-15);
    ck_near(tx_schedule_lr(&c, 0, 35), 0.1 + 0.45 * (1 + sqrt(0.5)), 1e-15);
    ck_near(tx_schedule_lr(&c, 0, 60), 0.55, 1e-15);
    ck_near(tx_schedule_lr(&c, 0, 110), 0.1, 1e-15);
    ck_near(tx_schedule_lr(&c, 0, 500), 0.1, 1e-15);
    /* Warmup as long as the run: no 0/0, floor once past the end. */
    c.warmup = c.total_steps = 10;
    ck_near(tx_schedule_lr(&c, 0, 10), 1, 1e-15);
    ck_near(tx_schedule_lr(&c, 0, 11), 0.1, 1e-15);
    /* No warmup: starts (just below) lr at step 1, 0.55 half-way. */
    c.warmup = 0, c.total_steps = 100;
    ck_near(tx_schedule_lr(&c, 0, 1), 0.1 + 0.45 * (1 + cos(M_PI * 0.01)),
            1e-15);
    ck_near(tx_schedule_lr(&c, 0, 50), 0.55, 1e-15);
    c.total_steps = 0;
    ck_near(tx_schedule_lr(&c, 0, 1), 0.1, 1e-15);
}
END_TEST

/* ---- gradient accumulation ----------------------------------------------- */
enum { K = 3, MB = 2, CIN = 3, COUT = 4 };

/* Cross-entropy of the linear model x·W + b on rows [first, first + n) of a
 * fixed data set of K·MB rows, scaled by `scale`, backpropagated. */
static void backward_rows(tx_params *p, int first, int n, double scale) {
    static const int y[K * MB] = {0, 3, 1, 1, 2, 0};
    tx_tape tp;
    tx_tape_init(&tp);
    tx_tensor *x = tx_tensor_new(&tp, 0, 2, n, CIN);
    for (int i = 0; i < n * CIN; i++)
        x->data[i] = sin(1.7 * (first * CIN + i) + 0.3);
    tx_tensor *W = tx_params_find(p, "W"), *b = tx_params_find(p, "b");
    tx_tensor *logits = tx_add(&tp, tx_matmul(&tp, x, W, 0, 0), b);
    tx_tensor *loss = tx_cross_entropy(&tp, logits, y + first, -1, 0);
    tx_tape_backward(&tp, tx_scale(&tp, loss, scale));
    tx_tape_free(&tp);
}

static void make_model(tx_params *p, tx_optim *o) {
    *p = (tx_params){0};
    tx_params_new(p, "W", TX_INIT_NORMAL, 2, CIN, COUT);
    tx_params_new(p, "b", TX_INIT_NORMAL, 1, COUT);
    tx_params_alloc(p);
    tx_rng r;
    tx_rng_seed(&r, 42);
    tx_params_init(p, &r);
    tx_optim_config cfg = {.name = TX_OPT_ADAM,
                           .lr = 0.01,
                           .beta1 = 0.9,
                           .beta2 = 0.999,
                           .eps = 1e-8};
    tx_optim_init(o, &cfg, p);
}

/* K micro-batches of MB rows, each loss scaled by 1/K, accumulate the same
 * gradient as one batch of K·MB rows, and so take the same Adam steps. */
START_TEST(test_accumulation) {
    tx_params whole, acc;
    tx_optim ow, oa;
    make_model(&whole, &ow);
    make_model(&acc, &oa);
    for (int step = 0; step < 2; step++) {
        tx_params_zero_grad(&whole);
        backward_rows(&whole, 0, K * MB, 1);
        tx_params_zero_grad(&acc);
        for (int k = 0; k < K; k++) backward_rows(&acc, k * MB, MB, 1.0 / K);
        double gnorm = 0;
        for (size_t i = 0; i < whole.size; i++) {
            ck_near(acc.grad[i], whole.grad[i], 1e-12);
            gnorm += whole.grad[i] * whole.grad[i];
        }
        ck_assert(gnorm > 1e-4); /* the comparison is not between zeros */
        tx_optim_step(&ow, &whole, 0.01);
        tx_optim_step(&oa, &acc, 0.01);
        for (size_t i = 0; i < whole.size; i++)
            ck_near(acc.data[i], whole.data[i], 1e-12);
    }
    tx_optim_free(&ow);
    tx_optim_free(&oa);
    tx_params_free(&whole);
    tx_params_free(&acc);
}
END_TEST

Suite *suite(void) {
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("optim");
    tcase_add_test(tc, test_adam);
    tcase_add_test(tc, test_adamw);
    tcase_add_test(tc, test_sgd);
    tcase_add_test(tc, test_clip);
    tcase_add_test(tc, test_parallel_deterministic);
    tcase_add_test(tc, test_schedule_constant);
    tcase_add_test(tc, test_schedule_noam);
    tcase_add_test(tc, test_schedule_cosine);
    tcase_add_test(tc, test_accumulation);
    suite_add_tcase(s, tc);
    return s;
}

TX_TEST_MAIN
