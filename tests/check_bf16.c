/* check_bf16.c: the bfloat16 matrix products (core/gemm_bf16.c), built in
 * float (the double build has none): against products of the same inputs
 * rounded to bf16 by hand and summed in double, on shapes that reach every
 * path (transposes, odd K, edges of every block, several k blocks, split
 * over threads), and the same bits whatever the thread count. Where the CPU
 * lacks AVX-512 BF16, training in bf16 must be refused instead
 * (tests/cli_train.sh checks the message). Also the float build's own
 * products where their lanes differ from the double build's (check_core):
 * op(B) = Bᵀ packed by 16 × 16 transposes in registers. */
#include "testutil.h"

#include <string.h>

#include "../core/gemm.h"

/* x rounded to bfloat16, to nearest even (no NaN in these tests). */
static float bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000u;
    memcpy(&x, &u, 4);
    return x;
}

START_TEST(test_rounding) {
    /* bf16 keeps 8 bits of mantissa: 1 + 2^-8 lies halfway between 1 and
     * 1 + 2^-7 and goes to the even one, 1; 1 + 3·2^-8 to 1 + 2^-6. */
    ck_assert(bf16(1.0f + 0x1p-8f) == 1.0f);
    ck_assert(bf16(1.0f + 3 * 0x1p-8f) == 1.0f + 0x1p-6f);
    ck_assert(bf16(1.0f + 0x1p-8f + 0x1p-20f) == 1.0f + 0x1p-7f);
    if (!tx_bf16_supported()) return;
    /* The kernel rounds the same way: A = [1 + 2^-8, 1 + 3·2^-8], B = [1, 1]. */
    float A[2] = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f}, B[2] = {1, 1}, C = 0;
    tx_gemm_bf16(1, 1, 2, A, 2, 0, B, 1, 0, &C, 1, 0);
    ck_assert(C == 1.0f + 1.0f + 0x1p-6f);
}
END_TEST

static void naive(int M, int N, int K, const float *A, int ta, const float *B, int tb,
                  double *C) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (double)bf16(ta ? A[k * M + i] : A[i * K + k]) *
                     bf16(tb ? B[j * K + k] : B[k * N + j]);
            C[i * N + j] = s;
        }
}

START_TEST(test_against_naive) {
    if (!tx_bf16_supported()) return; /* cli_train.sh checks the refusal */
    /* M > MC (144), N > NC (512), K > KC (384), odd K, ragged edges */
    static const int sizes[][3] = {{1, 1, 1}, {7, 5, 3}, {13, 33, 17}, {150, 520, 400},
                                   {40, 70, 771}, {3, 1100, 9}};
    tx_rng rng;
    tx_rng_seed(&rng, 21);
    tx_set_par_min(1, 1);
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        int M = sizes[s][0], N = sizes[s][1], K = sizes[s][2];
        float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
        float *C = malloc(sizeof(float) * M * N), *C1 = malloc(sizeof(float) * M * N);
        double *R = malloc(sizeof(double) * M * N);
        for (int i = 0; i < M * K; i++) A[i] = (float)tx_rng_normal(&rng);
        for (int i = 0; i < K * N; i++) B[i] = (float)tx_rng_normal(&rng);
        for (int t = 0; t < 4; t++) {
            int ta = t & 1, tb = t >> 1;
            naive(M, N, K, A, ta, B, tb, R);
            for (int threads = 1; threads <= 4; threads *= 2) {
                tx_set_threads(threads);
                for (int i = 0; i < M * N; i++) C[i] = 1;
                tx_gemm_bf16(M, N, K, A, ta ? M : K, ta, B, tb ? K : N, tb, C, N, 1);
                /* float sums of K products of size ~1: ~K·2^-24 relative */
                for (int i = 0; i < M * N; i++) ck_near(C[i], R[i] + 1, 2e-6 * K);
                tx_gemm_bf16(M, N, K, A, ta ? M : K, ta, B, tb ? K : N, tb, C, N, 0);
                for (int i = 0; i < M * N; i++) ck_near(C[i], R[i], 2e-6 * K);
                if (threads == 1) memcpy(C1, C, sizeof(float) * M * N);
                ck_assert_msg(!memcmp(C, C1, sizeof(float) * M * N),
                              "%d x %d x %d (ta %d, tb %d): %d threads differ from 1", M, N, K,
                              ta, tb, threads);
            }
        }
        free(A), free(B), free(C), free(C1), free(R);
    }
    tx_set_par_min(0, 0);
}
END_TEST

START_TEST(test_float_transposed_b) {
    /* K and N multiples of the 16 lanes and not, several panels of 32
     * columns and a ragged one, K past a k block (256) */
    static const int sizes[][3] = {{5, 64, 16}, {20, 45, 33}, {33, 70, 300}, {7, 96, 48}};
    tx_rng rng;
    tx_rng_seed(&rng, 23);
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        int M = sizes[s][0], N = sizes[s][1], K = sizes[s][2];
        float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
        float *C = malloc(sizeof(float) * M * N);
        double *R = malloc(sizeof(double) * M * N);
        for (int i = 0; i < M * K; i++) A[i] = (float)tx_rng_normal(&rng);
        for (int i = 0; i < K * N; i++) B[i] = (float)tx_rng_normal(&rng);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double r = 0;
                for (int k = 0; k < K; k++) r += (double)A[i * K + k] * B[j * K + k];
                R[i * N + j] = r;
            }
        tx_gemm(M, N, K, A, K, 0, B, K, 1, C, N, 0);
        for (int i = 0; i < M * N; i++) ck_near(C[i], R[i], 2e-6 * K);
        free(A), free(B), free(C), free(R);
    }
}
END_TEST

Suite *suite(void) {
    Suite *s = suite_create("bf16");
    TCase *tc = tcase_create("bf16");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_rounding);
    tcase_add_test(tc, test_against_naive);
    tcase_add_test(tc, test_float_transposed_b);
    suite_add_tcase(s, tc);
    return s;
}

TX_TEST_MAIN
