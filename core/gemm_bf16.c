/* gemm_bf16.c: C (+)= op(A)·op(B) with the entries of A and B rounded to
 * bfloat16 (round to nearest even) and the products summed in float32 by
 * AVX-512 BF16's vdpbf16ps, which multiplies a pair of bf16 by a pair and
 * adds both products to one float lane: twice a float FMA's multiply-adds
 * per instruction. The blocking is gemm.c's, on pairs of k: op(B) is packed
 * into NR-column panels [k/2][NR] of (k, k+1) pairs, op(A) into MR-row panels
 * [MR][k/2] (each row's pairs in order), and an MR×NR tile of C sums its pairs in k order, blocks in
 * order, whatever thread owns it: the same bits for any thread count. An odd
 * K pads the last pair with a zero. Built with a target attribute so the
 * file compiles on any x86-64; tx_bf16_supported says whether it may run.
 * The float build only: the double build (gradcheck) has no bf16. */
#include "gemm.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && !defined(TX_DOUBLE)
#include <immintrin.h>

#define BF16 __attribute__((target("avx512f,avx512bw,avx512bf16")))
#define MR 12
#define NR 32   /* two vectors of 16 float lanes */
#define KC 384  /* k per block: 192 pairs; a B panel (96 KiB... KC/2·NR·4) */
#define MC 144  /* multiple of MR: rows of A swept over one B panel */
#define NC 2048 /* multiple of NR: the packed B block KC/2·NC·4 = 1.5 MiB */
#define PARTS_PER_THREAD 4
#define MIN_PANELS 4

int tx_bf16_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw");
}

/* 16 floats (n of them, the rest zero) to 16 bf16, rounded to nearest even. */
BF16 static inline __m256i round16(const float *x, int n) {
    __m512 v = n >= 16 ? _mm512_loadu_ps(x) : _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), x);
    return (__m256i)_mm512_cvtneps_pbh(v);
}

/* Pairs (lo, hi) of bf16 vectors as 16 u32 lanes, lo in the low half: the
 * layout vdpbf16ps multiplies. */
BF16 static inline __m512i pairs(__m256i lo, __m256i hi) {
    return _mm512_or_si512(_mm512_cvtepu16_epi32(lo),
                           _mm512_slli_epi32(_mm512_cvtepu16_epi32(hi), 16));
}

/* op(B)[k0..k0+kc, j0..j0+nc] into NR-column panels [kc/2][NR] of pairs. */
BF16 static void pack_b(int kc, int nc, int K, const float *B, int ldb, int tb, int k0, int j0,
                        uint32_t *dst) {
    int kp = (kc + 1) / 2;
    for (int jr = 0; jr < nc; jr += NR, dst += (size_t)kp * NR) {
        int nr = nc - jr < NR ? nc - jr : NR;
        if (!tb) { /* B [K, N]: rows k and k+1 side by side, 16 columns at a time */
            for (int p = 0; p < kp; p++) {
                int k = k0 + 2 * p;
                const float *r0 = B + (size_t)k * ldb + j0 + jr, *r1 = r0 + ldb;
                for (int h = 0; h < NR; h += 16) {
                    int n = nr - h < 0 ? 0 : nr - h < 16 ? nr - h : 16;
                    __m256i lo = round16(r0 + h, n), hi = k + 1 < K ? round16(r1 + h, n) : _mm256_setzero_si256();
                    _mm512_storeu_si512(dst + (size_t)p * NR + h, pairs(lo, hi));
                }
            }
        } else { /* B [N, K]: row j holds column j's pairs in order, scattered */
            const __m512i stride = _mm512_mullo_epi32(_mm512_set1_epi32(NR),
                                                      _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8,
                                                                       7, 6, 5, 4, 3, 2, 1, 0));
            for (int c = 0; c < NR; c++) {
                const float *row = B + (size_t)(j0 + jr + (c < nr ? c : 0)) * ldb + k0;
                for (int p = 0; p < kp; p += 16) {
                    int n = 2 * (kp - p) < 32 ? 2 * (kp - p) : 32; /* floats of 16 pairs */
                    int have = kc - 2 * p < n ? kc - 2 * p : n;     /* odd kc: the pad is 0 */
                    __m256i lo = round16(row + 2 * p, have < 16 ? have : 16);
                    __m256i hi = have > 16 ? round16(row + 2 * p + 16, have - 16) : _mm256_setzero_si256();
                    /* 32 bf16 in order are 16 pairs: interleave the halves back */
                    __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
                    if (c >= nr) v = _mm512_setzero_si512();
                    __mmask16 m = (__mmask16)(kp - p >= 16 ? 0xFFFF : (1u << (kp - p)) - 1);
                    _mm512_mask_i32scatter_epi32(dst + (size_t)p * NR + c, m, stride, v, 4);
                }
            }
        }
    }
}

/* op(A)[i0..i0+mc, k0..k0+kc] into MR-row panels of pairs, [MR][kc/2] (A)
 * or [kc/2][MR] (Aᵀ, whose rows hold the MR values of one pair side by
 * side); rows past mc are zero. */
BF16 static void pack_a(int mc, int kc, int K, const float *A, int lda, int ta, int i0, int k0,
                        uint32_t *dst) {
    int kp = (kc + 1) / 2;
    for (int ir = 0; ir < mc; ir += MR, dst += (size_t)kp * MR) {
        int mr = mc - ir < MR ? mc - ir : MR;
        if (ta) { /* A [K, M]: rows k and k+1, MR columns of them: [kc/2][MR] */
            for (int p = 0; p < kp; p++) {
                int k = k0 + 2 * p;
                const float *r0 = A + (size_t)k * lda + i0 + ir, *r1 = r0 + lda;
                __m256i lo = round16(r0, mr), hi = k + 1 < K ? round16(r1, mr) : _mm256_setzero_si256();
                _mm512_mask_storeu_epi32(dst + (size_t)p * MR, (__mmask16)((1u << MR) - 1),
                                         pairs(lo, hi));
            }
        } else { /* A [M, K]: row r's pairs in order, as they are */
            for (int r = 0; r < MR; r++) {
                const float *row = A + (size_t)(i0 + ir + r) * lda + k0;
                uint32_t *d = dst + (size_t)r * kp;
                for (int p = 0; p < kp; p += 16) {
                    int n = 2 * (kp - p) < 32 ? 2 * (kp - p) : 32;
                    int have = r >= mr ? 0 : kc - 2 * p < n ? kc - 2 * p : n;
                    __m256i lo = round16(row + 2 * p, have < 16 ? have : 16);
                    __m256i hi = have > 16 ? round16(row + 2 * p + 16, have - 16) : _mm256_setzero_si256();
                    __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
                    __mmask16 m = (__mmask16)(kp - p >= 16 ? 0xFFFF : (1u << (kp - p)) - 1);
                    _mm512_mask_storeu_epi32(d + p, m, v);
                }
            }
        }
    }
}

/* acc[MR][NR] = Σ_p a(r, p) · b[p][0..NR) over kp pairs, a(r, p) at
 * a[r·rs + p·ps], then stored to or added to C's m × n corner. Inlined into
 * one function per layout of a, so the strides are constants. */
BF16 static inline __attribute__((always_inline)) void
kernel(int kp, const uint32_t *a, size_t rs, size_t ps, const uint32_t *b, float *c, int ldc,
       int m, int n, int add) {
    __m512 acc[MR][2];
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int p = 0; p < kp; p++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + (size_t)p * NR);
        __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + (size_t)p * NR + 16);
        for (int r = 0; r < MR; r++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[r * rs + p * ps]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
        }
    }
    __mmask16 m0 = (__mmask16)(n >= 16 ? 0xFFFF : (1u << n) - 1);
    __mmask16 m1 = (__mmask16)(n >= 32 ? 0xFFFF : n > 16 ? (1u << (n - 16)) - 1 : 0);
    for (int r = 0; r < m; r++) {
        float *dst = c + (size_t)r * ldc;
        __m512 v0 = acc[r][0], v1 = acc[r][1];
        if (add) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, dst));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, dst + 16));
        }
        _mm512_mask_storeu_ps(dst, m0, v0);
        _mm512_mask_storeu_ps(dst + 16, m1, v1);
    }
}

BF16 static void kernel_rows(int kp, const uint32_t *a, const uint32_t *b, float *c, int ldc,
                             int m, int n, int add) {
    kernel(kp, a, (size_t)kp, 1, b, c, ldc, m, n, add);
}

BF16 static void kernel_pairs(int kp, const uint32_t *a, const uint32_t *b, float *c, int ldc,
                              int m, int n, int add) {
    kernel(kp, a, 1, MR, b, c, ldc, m, n, add);
}

/* Thread-local buffers that grow to the largest request and are kept, freed
 * when the thread ends: a B block, and all of op(A) packed. */
static pthread_key_t buf_key[2];
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;
static void make_buf_keys(void) {
    for (int i = 0; i < 2; i++)
        TX_ASSERT(!pthread_key_create(&buf_key[i], free), "tx_gemm_bf16: no thread key");
}

static uint32_t *thread_buffer(int which, size_t n) {
    static __thread uint32_t *buf[2];
    static __thread size_t cap[2];
    if (n > cap[which]) {
        free(buf[which]);
        buf[which] = tx_malloc_aligned(n * sizeof(uint32_t));
        cap[which] = n;
        pthread_once(&buf_once, make_buf_keys);
        pthread_setspecific(buf_key[which], buf[which]);
    }
    return buf[which];
}

/* Where k block k0's MR-row panel of rows i0.. lies in packed A: blocks one
 * after another, each Mp rows (M padded to MR) by its pairs. */
static size_t a_offset(int Mp, int K, int k0, int i0) {
    int kc = K - k0 < KC ? K - k0 : KC, kp = (kc + 1) / 2;
    return (size_t)Mp * (k0 / 2) + (size_t)i0 * kp;
}

/* Rows [m0, m1) (whole panels) of op(A), every k block, into pa. */
BF16 static void pack_a_rows(int m0, int m1, int M, int K, const float *A, int lda, int ta,
                             uint32_t *pa) {
    int Mp = (M + MR - 1) / MR * MR;
    for (int k0 = 0; k0 < K; k0 += KC) {
        int kc = K - k0 < KC ? K - k0 : KC;
        for (int i0 = m0; i0 < m1; i0 += MR)
            pack_a(M - i0 < MR ? M - i0 : MR, kc, K, A, lda, ta, i0, k0,
                   pa + a_offset(Mp, K, k0, i0));
    }
}

/* Columns [n0, n1) of C from packed A. */
BF16 static void range_bf16(int M, int n0, int n1, int K, const uint32_t *pa, int ta,
                            const float *B, int ldb, int tb, float *C, int ldc, int acc) {
    int Mp = (M + MR - 1) / MR * MR;
    uint32_t *pb = thread_buffer(0, (size_t)KC / 2 * NC);
    for (int j0 = n0; j0 < n1; j0 += NC) {
        int nc = n1 - j0 < NC ? n1 - j0 : NC;
        for (int k0 = 0; k0 < K; k0 += KC) {
            int kc = K - k0 < KC ? K - k0 : KC, kp = (kc + 1) / 2, add = acc || k0 > 0;
            pack_b(kc, nc, K, B, ldb, tb, k0, j0, pb);
            for (int i0 = 0; i0 < M; i0 += MC) {
                int mc = M - i0 < MC ? M - i0 : MC;
                for (int jr = 0; jr < nc; jr += NR) {
                    int n = nc - jr < NR ? nc - jr : NR;
                    for (int ir = 0; ir < mc; ir += MR) {
                        int m = mc - ir < MR ? mc - ir : MR;
                        const uint32_t *a = pa + a_offset(Mp, K, k0, i0 + ir);
                        (ta ? kernel_pairs : kernel_rows)(kp, a, pb + (size_t)jr * kp,
                                                          C + (size_t)(i0 + ir) * ldc + j0 + jr,
                                                          ldc, m, n, add);
                    }
                }
            }
        }
    }
}

/* op(A) is packed once, by all threads (row panels split among them), and
 * shared; each thread then packs the B panels of its own columns. */
void tx_gemm_bf16(int M, int N, int K, const float *A, int lda, int ta, const float *B, int ldb,
                  int tb, float *C, int ldc, int accumulate) {
    int nth = tx_get_threads(), np = (N + NR - 1) / NR, nparts = nth * PARTS_PER_THREAD;
    if (nparts > np / MIN_PANELS) nparts = np / MIN_PANELS;
    if (nparts < nth) nparts = nth;
    if (nparts > np) nparts = np;
    int Mp = (M + MR - 1) / MR * MR, panels = Mp / MR;
    uint32_t *pa = thread_buffer(1, (size_t)Mp * ((K + 1) / 2 + (K + KC - 1) / KC));
    if (nth < 2 || nparts < 2 || (double)M * N * K < TX_PAR_MIN_MACS || tx_in_parallel()) {
        pack_a_rows(0, M, M, K, A, lda, ta, pa);
        range_bf16(M, 0, N, K, pa, ta, B, ldb, tb, C, ldc, accumulate);
        return;
    }
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (int t = 0; t < nth; t++) {
            int q0 = (int)((long)panels * t / nth), q1 = (int)((long)panels * (t + 1) / nth);
            pack_a_rows(q0 * MR, q1 * MR < M ? q1 * MR : M, M, K, A, lda, ta, pa);
        }
#pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < nparts; t++) {
            int p0 = (int)((long)np * t / nparts), p1 = (int)((long)np * (t + 1) / nparts);
            range_bf16(M, p0 * NR, p1 * NR < N ? p1 * NR : N, K, pa, ta, B, ldb, tb, C, ldc,
                       accumulate);
        }
    }
}

#else /* no x86-64 AVX-512 BF16 here, or the double build */

int tx_bf16_supported(void) { return 0; }

void tx_gemm_bf16(int M, int N, int K, const float *A, int lda, int ta, const float *B, int ldb,
                  int tb, float *C, int ldc, int accumulate) {
    (void)M, (void)N, (void)K, (void)A, (void)lda, (void)ta, (void)B, (void)ldb, (void)tb,
        (void)C, (void)ldc, (void)accumulate;
    TX_ASSERT(0, "tx_gemm_bf16: this build has no bf16 products");
}
#endif
