/* bench.c: the timing half of `make bench` (bench/run.py drives it and runs
 * the PyTorch twin, bench/bench_torch.py, interleaved with it).
 *   bench model KIND C H LE LD F V T B ACT NORM_FIRST POS TIE WARMUP STEPS
 *     times full training steps (zero grad, forward, backward, Adam) of one
 *     model on a copy-task batch and prints one line:
 *     "ms t1 t2 ... rss_kb N need_kb M" (per-step wall times, peak resident
 *     set, and the bytes the model needs: parameters, gradients, Adam's
 *     moments, activation arena).
 *   bench decode KIND C H LE LD F V T B ACT NORM_FIRST POS TIE LEN CACHE REPS
 *     times greedy decoding of LEN tokens for B sources (decode_bench).
 *   bench gemm M N K TA TB REPS
 *     prints "gemm ours_ms openblas_ms maxdiff" for C = op(A)·op(B), median
 *     of REPS runs each, ours then OpenBLAS's sgemm.
 *   bench stream MB REPS
 *     times reading MB megabytes: the memory bandwidth (stream_bench).
 *   bench peak
 *     the machine's multiply-add peak on every thread, float32 FMA and bf16
 *     dot products, from register-only loops (peak_bench).
 * Threads come from OMP_NUM_THREADS (ours) and OPENBLAS_NUM_THREADS. */
#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "../core/gemm.h"
#include "../layers/model.h"
#include "../optim/optim.h"
#include "../decode/decode.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

/* KIND C H LE LD F V T B ACT NORM_FIRST POS TIE: a model's shape. */
static tx_model_config shape(char **a) {
    return (tx_model_config){
        .bias = 1, .kind = strcmp(a[0], "gpt") ? TX_ENCODER_DECODER : TX_DECODER_ONLY,
        .d_model = atoi(a[1]), .heads = atoi(a[2]), .encoder_layers = atoi(a[3]),
        .decoder_layers = atoi(a[4]), .d_ff = atoi(a[5]), .src_vocab = atoi(a[6]),
        .tgt_vocab = atoi(a[6]),
        .activation = strcmp(a[9], "gelu") ? TX_ACT_RELU : TX_ACT_GELU,
        .norm_first = atoi(a[10]),
        .positions = strcmp(a[11], "learned") ? TX_POS_SINUSOIDAL : TX_POS_LEARNED,
        .tie_embeddings = atoi(a[12]), .max_len = atoi(a[7])};
}

static int model_bench(char **a) {
    tx_model_config mc = shape(a);
    int T = atoi(a[7]), B = atoi(a[8]), warmup = atoi(a[13]), steps = atoi(a[14]);
    int V = mc.tgt_vocab;
    tx_params p = {0};
    tx_model m;
    tx_err err;
    if (tx_model_build(&m, &mc, &p, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    tx_params_alloc(&p);
    tx_rng rng;
    tx_rng_seed(&rng, 1);
    tx_params_init(&p, &rng);
    /* Copy task: the target repeats the source, fed in shifted by one
     * behind a start token (1); tokens are drawn from [2, V). */
    int n = B * T, *src = malloc(4 * (size_t)n * sizeof *src);
    int *tgt_in = src + n, *tgt_out = src + 2 * n, *len = src + 3 * n;
    for (int i = 0; i < n; i++) src[i] = tx_rng_int(&rng, 2, V - 1);
    for (int i = 0; i < n; i++) {
        tgt_out[i] = src[i];
        tgt_in[i] = i % T ? src[i - 1] : 1;
    }
    for (int b = 0; b < B; b++) len[b] = T;
    tx_optim_config oc = {.name = TX_OPT_ADAM, .lr = 1e-4, .beta1 = 0.9,
                          .beta2 = 0.98, .eps = 1e-9};
    tx_optim opt;
    tx_optim_init(&opt, &oc, &p);
    tx_tape tp;
    tx_tape_init(&tp);
    tp.training = 1;
    double *ms = malloc((size_t)steps * sizeof *ms);
    for (int s = -warmup; s < steps; s++) {
        double t0 = now_ms();
        tx_params_grad_begin(&p); /* as training does: no zeroing */
        tx_tape_reset(&tp);
        tx_tensor *loss = tx_model_loss(&tp, &m, src, len, T, tgt_in, tgt_out,
                                        len, T, B, 0);
        tx_tape_backward(&tp, loss);
        tx_params_grad_end(&p);
        tx_optim_step(&opt, &p, oc.lr);
        if (s >= 0) ms[s] = now_ms() - t0;
        if (!isfinite(loss->data[0])) {
            fprintf(stderr, "bench: loss is %g\n", (double)loss->data[0]);
            return 1;
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("ms");
    for (int s = 0; s < steps; s++) printf(" %.3f", ms[s]);
    /* parameters, gradients, Adam's two moments and the activation arena */
    double need = 4.0 * (double)p.size * sizeof(tx_real) + (double)tp.arena.high;
    printf(" rss_kb %ld need_kb %.0f\n", ru.ru_maxrss, need / 1024);
    tx_tape_free(&tp);
    tx_optim_free(&opt);
    tx_params_free(&p);
    free(src);
    free(ms);
    return 0;
}

static int gemm_bench(char **a) {
    int M = atoi(a[0]), N = atoi(a[1]), K = atoi(a[2]), ta = atoi(a[3]),
        tb = atoi(a[4]), reps = atoi(a[5]);
    float *A = malloc(sizeof(float) * (size_t)M * K);
    float *B = malloc(sizeof(float) * (size_t)K * N);
    float *C1 = malloc(sizeof(float) * (size_t)M * N);
    float *C2 = malloc(sizeof(float) * (size_t)M * N);
    double *t1 = malloc(sizeof(double) * (size_t)reps);
    double *t2 = malloc(sizeof(double) * (size_t)reps);
    tx_rng rng;
    tx_rng_seed(&rng, 2);
    for (size_t i = 0; i < (size_t)M * K; i++) A[i] = (float)tx_rng_uniform(&rng) - 0.5f;
    for (size_t i = 0; i < (size_t)K * N; i++) B[i] = (float)tx_rng_uniform(&rng) - 0.5f;
    int lda = ta ? M : K, ldb = tb ? K : N;
    /* Ours first, then OpenBLAS, each after a warm-up call, with a pause
     * between: both keep idle threads spinning for a while after a call,
     * and interleaved they would steal each other's second core. */
    for (int r = -1; r < reps; r++) {
        double t0 = now_ms();
        tx_gemm(M, N, K, A, lda, ta, B, ldb, tb, C1, N, 0);
        if (r >= 0) t1[r] = now_ms() - t0;
    }
    nanosleep(&(struct timespec){.tv_nsec = 200000000}, NULL);
    for (int r = -1; r < reps; r++) {
        double t0 = now_ms();
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
                    tb ? CblasTrans : CblasNoTrans, M, N, K, 1, A, lda, B, ldb,
                    0, C2, N);
        if (r >= 0) t2[r] = now_ms() - t0;
    }
    double diff = 0;
    for (size_t i = 0; i < (size_t)M * N; i++)
        diff = fmax(diff, fabs((double)C1[i] - C2[i]));
    printf("gemm %.4f %.4f %.2e\n", tx_median(t1, (size_t)reps), tx_median(t2, (size_t)reps), diff);
    free(A), free(B), free(C1), free(C2), free(t1), free(t2);
    return 0;
}

/* Greedy decoding of B random sources of T tokens (decoder-only: prompts of
 * T/2 tokens) for LEN tokens each, with the cache or without, REPS times:
 * "decode ms t1 t2 ... tokens N weight_bytes W", W the bytes of weights a
 * decoding step reads (the decoder's and the generator's, not the cross-
 * attention's keys and values, projected once per source). */
static int decode_bench(char **a) {
    tx_model_config mc = shape(a);
    int T = atoi(a[7]), B = atoi(a[8]), len = atoi(a[13]), cache = atoi(a[14]);
    int reps = atoi(a[15]), V = mc.tgt_vocab, C = mc.d_model, F = mc.d_ff;
    int dec_only = mc.kind == TX_DECODER_ONLY, P = dec_only ? T / 2 : T;
    mc.max_len = P + len + 1;
    tx_params p = {0};
    tx_model m;
    tx_err err;
    if (tx_model_build(&m, &mc, &p, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    tx_params_alloc(&p);
    tx_rng rng;
    tx_rng_seed(&rng, 1);
    tx_params_init(&p, &rng);
    m.generator.bias->data[TX_EOS] = -1e4; /* every row runs to LEN tokens */
    tx_example *ex = malloc((size_t)B * sizeof *ex);
    int *ids = malloc((size_t)B * P * sizeof *ids), *out = malloc((size_t)B * len * sizeof *out);
    int *out_len = malloc((size_t)B * sizeof *out_len);
    for (int i = 0; i < B * P; i++) ids[i] = tx_rng_int(&rng, TX_NSPECIAL, V - 1);
    for (int b = 0; b < B; b++) ex[b] = (tx_example){"", "", ids + b * P, ids, P, 0};
    tx_batch batch;
    tx_batch_alloc(&batch, B, P, 0);
    tx_batch_fill(&batch, ex, B, dec_only);
    tx_tape tp;
    tx_tape_init(&tp);
    tx_search s = {.max_len = len, .beam = 1, .no_cache = !cache};
    double *ms = malloc((size_t)reps * sizeof *ms);
    long tokens = 0;
    for (int r = -1; r < reps; r++) {
        double t0 = now_ms();
        tx_decode(&tp, &m, &batch, &s, &(tx_decoded){.tok = out, .len = out_len});
        tx_tape_reset(&tp);
        if (r >= 0) ms[r] = now_ms() - t0;
        for (int b = 0; r == 0 && b < B; b++) tokens += out_len[b];
    }
    /* per layer: q, k, v and out projections of self-attention; the query
     * and out projections of cross-attention; the feed-forward block */
    double layer = 4.0 * C * C + (dec_only ? 0 : 2.0 * C * C) + 2.0 * C * F;
    double weights = (mc.decoder_layers * layer + (double)V * C) * sizeof(tx_real);
    printf("decode ms");
    for (int r = 0; r < reps; r++) printf(" %.3f", ms[r]);
    printf(" tokens %ld weight_bytes %.0f\n", tokens, weights);
    tx_tape_free(&tp);
    tx_batch_free(&batch);
    tx_params_free(&p);
    free(ex), free(ids), free(out), free(out_len), free(ms);
    return 0;
}

/* Reads an array of MB megabytes REPS times with the OpenMP threads (each
 * its own part): "stream ms t1 ... bytes N", the memory bandwidth that
 * bounds a decoding step, which reads every weight once. Each thread sums
 * into STREAM_LANES independent lanes: one running sum would be a chain of
 * dependent adds, which measured the adder's latency (7 to 13 GB/s here),
 * not the memory. The values are small integers, so every sum is exact. */
#define STREAM_LANES 64

static int stream_bench(char **a) {
    size_t n = (size_t)atol(a[0]) << 20, m = n / sizeof(float) / STREAM_LANES * STREAM_LANES;
    int reps = atoi(a[1]);
    float *x = malloc(n);
    for (size_t i = 0; i < m; i++) x[i] = (float)(i & 7);
    double *ms = malloc((size_t)reps * sizeof *ms), sum = 0;
    for (int r = -1; r < reps; r++) {
        double t0 = now_ms(), s = 0;
#pragma omp parallel reduction(+ : s)
        {
            float acc[STREAM_LANES] = {0};
#pragma omp for schedule(static)
            for (size_t i = 0; i < m; i += STREAM_LANES)
                for (int l = 0; l < STREAM_LANES; l++) acc[l] += x[i + l];
            for (int l = 0; l < STREAM_LANES; l++) s += acc[l];
        }
        if (r >= 0) ms[r] = now_ms() - t0;
        sum += s;
    }
    printf("stream ms");
    for (int r = 0; r < reps; r++) printf(" %.3f", ms[r]);
    printf(" bytes %zu check %g\n", m * sizeof(float), sum);
    free(x), free(ms);
    return 0;
}

/* ---- peak -------------------------------------------------------------------- */
/* What the cores can do at best: each thread runs 12 independent chains of
 * vfmadd231ps (32 flops each: 16 lanes × multiply and add) or of vdpbf16ps
 * (64 flops: 16 lanes × two bf16 products and their sums) on registers
 * only, enough chains to cover the instructions' latency. Prints
 * "peak fp32_gflops bf16_gflops" summed over the threads. */
#define PEAK_ITERS 20000000L
#define CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
/* n rounds of STEP on every chain (the asm keeps the compiler from folding
 * them), then the chains' sum */
#define CHAIN_LOOP(n)                                                                       \
    for (long i = 0; i < (n); i++) {                                                        \
        CHAINS(STEP)                                                                        \
        __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5));  \
    }                                                                                       \
    return 0 CHAINS(SUM);

/* The FMA chains on AVX2 (16 flops a vfmadd231ps), for CPUs without AVX-512. */
__attribute__((target("avx2,fma"))) static inline float sum8(__m256 v) {
    float x[8];
    _mm256_storeu_ps(x, v);
    return ((x[0] + x[1]) + (x[2] + x[3])) + ((x[4] + x[5]) + (x[6] + x[7]));
}

__attribute__((target("avx2,fma"), noinline)) static float fma_loop_avx2(long n, float seed) {
#define DECL(i) __m256 a##i = _mm256_set1_ps(seed + i);
#define STEP(i) a##i = _mm256_fmadd_ps(a##i, m, c);
#define SUM(i) + sum8(a##i)
    __m256 m = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(1e-3f);
    CHAINS(DECL)
    CHAIN_LOOP(n)
#undef STEP
#undef DECL
#undef SUM
}

__attribute__((target("avx512f"), noinline)) static float fma_loop(long n, float seed) {
#define DECL(i) __m512 a##i = _mm512_set1_ps(seed + i);
#define STEP(i) a##i = _mm512_fmadd_ps(a##i, m, c);
#define SUM(i) + _mm512_reduce_add_ps(a##i)
    __m512 m = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(1e-3f);
    CHAINS(DECL)
    CHAIN_LOOP(n)
#undef STEP
}

__attribute__((target("avx512f,avx512bf16"), noinline)) static float dot_loop(long n, float seed) {
#define STEP(i) a##i = _mm512_dpbf16_ps(a##i, x, y);
    __m512bh x = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f)), y = x;
    CHAINS(DECL)
    CHAIN_LOOP(n)
#undef STEP
#undef DECL
#undef SUM
}

static int peak_bench(void) {
    double gf[2] = {0, 0}, sink = 0;
    /* float32 on AVX-512 or else AVX2; a CPU without bf16 reports 0 for it */
    int wide = __builtin_cpu_supports("avx512f");
    for (int kind = 0; kind < 2; kind++) {
        if (kind == 0 && !wide && !__builtin_cpu_supports("fma")) continue;
        if (kind == 1 && !tx_bf16_supported()) break;
        double best = 1e30;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = now_ms();
#pragma omp parallel reduction(+ : sink)
            sink += kind ? dot_loop(PEAK_ITERS, 1)
                         : wide ? fma_loop(PEAK_ITERS, 1) : fma_loop_avx2(PEAK_ITERS, 1);
            double ms = now_ms() - t0;
            if (ms < best) best = ms;
        }
        double flops = (double)PEAK_ITERS * 12 * (kind ? 64 : wide ? 32 : 16) * tx_get_threads();
        gf[kind] = flops / best / 1e6;
    }
    printf("peak %.1f %.1f check %g\n", gf[0], gf[1], sink);
    return 0;
}

int main(int argc, char **argv) {
    tx_set_threads(0); /* OMP_NUM_THREADS, bound as training binds them */
    /* TAPEFORMER_BF16=1: every product in bf16, as [model] precision = bf16 */
    const char *bf = getenv("TAPEFORMER_BF16");
    if (bf && *bf == '1') {
        if (!tx_bf16_supported()) {
            fprintf(stderr, "bench: no AVX-512 BF16 on this CPU\n");
            return 2;
        }
        tx_gemm_use_bf16(1);
    }
    if (argc == 17 && !strcmp(argv[1], "model")) return model_bench(argv + 2);
    if (argc == 18 && !strcmp(argv[1], "decode")) return decode_bench(argv + 2);
    if (argc == 8 && !strcmp(argv[1], "gemm")) return gemm_bench(argv + 2);
    if (argc == 4 && !strcmp(argv[1], "stream")) return stream_bench(argv + 2);
    if (argc == 2 && !strcmp(argv[1], "peak")) return peak_bench();
    fprintf(stderr, "usage: bench model KIND C H LE LD F V T B ACT NORM_FIRST POS TIE WARMUP STEPS\n"
                    "     | bench decode KIND C H LE LD F V T B ACT NORM_FIRST POS TIE LEN CACHE REPS\n"
                    "     | bench gemm M N K TA TB REPS | bench stream MB REPS | bench peak\n");
    return 2;
}
