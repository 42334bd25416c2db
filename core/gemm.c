/* gemm.c: C (+)= op(A)·op(B), BLIS-style. The threads split C into column
 * ranges (or row ranges when that packs less); each walks its range in
 * NC-wide, KC-deep blocks, packs that block of op(B) into NR-column
 * micro-panels (zero padded) once, and sweeps every row of its range over it
 * with a register-tiled MR×NR micro-kernel. op(A) is read in place, except
 * a wide Aᵀ feeding many panels, which is packed into MR-row micro-panels.
 * Each C element is summed over K in one fixed order (k within a block,
 * blocks in order) whichever thread owns it, so results do not depend on the
 * thread count. The micro-kernel uses GCC vector extensions, which
 * -march=native turns into AVX-512 or AVX2 and other targets into portable
 * code. */
#include "gemm.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One vector register: AVX-512's 64 bytes, AVX2's 32, SSE's 16. Wider than
 * the target's registers, GCC splits every vector operation and the 2·MR
 * accumulators no longer fit in registers: on an AVX2 machine a 64-byte
 * build ran the products about 35 times slower. */
#if defined(__AVX512F__)
#define VBYTES 64
#elif defined(__AVX__)
#define VBYTES 32
#else
#define VBYTES 16
#endif
#define VL ((int)(VBYTES / sizeof(tx_real))) /* lanes: VBYTES / 4 float, / 8 double */
#define MR 6
#define NR (2 * VL)
#define KC 256  /* a B micro-panel (KC×NR) stays in L1 */
#define MC 144  /* multiple of MR: a packed Aᵀ block (MC×KC) stays in L2 */
#define NC 2048 /* multiple of NR: the packed B block (KC×NC) */
/* Column ranges per thread: a thread that gets the CPU late finds fewer
 * left to do. Column ranges pack nothing twice, row ranges repack B. A range
 * keeps at least MIN_PANELS micro-panels while there are enough: A, read in
 * place, is reused once per panel, and narrower ranges stream it from L3. */
#define PARTS_PER_THREAD 4
#define MIN_PANELS 8

typedef tx_real vreal __attribute__((vector_size(VBYTES), aligned(VBYTES)));
typedef tx_real vreal_u __attribute__((vector_size(VBYTES), aligned(sizeof(tx_real))));
#ifdef TX_DOUBLE
typedef int64_t vlane __attribute__((vector_size(VBYTES))); /* lane indices */
#else
typedef int32_t vlane __attribute__((vector_size(VBYTES)));
#endif

/* acc[MR][NR] = Σ_k a(r, k) ⊗ b[k][0..NR) with a(r, k) = a[r·rs + k·ks],
 * then stored or added to C. b: packed [kc][NR]. Rows past m read row m-1
 * (valid memory) and are dropped, as are columns past n. Always inlined so
 * the two layouts of a (packed: rs 1, ks MR; in place: rs lda, ks 1) each
 * get a loop with constant strides. */
static inline __attribute__((always_inline)) void
kernel(int kc, const tx_real *restrict a, size_t rs, size_t ks,
       const tx_real *restrict b, tx_real *restrict c, int ldc, int m, int n,
       int add) {
    const tx_real *ar[MR];
    for (int r = 0; r < MR; r++) ar[r] = a + (size_t)(r < m ? r : m - 1) * rs;
    vreal acc[MR][2]; /* zeroed by value: a memset here was a call per tile */
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = (vreal){0};
    for (int k = 0; k < kc; k++) {
        vreal b0 = *(const vreal *)(b + (size_t)k * NR);
        vreal b1 = *(const vreal *)(b + (size_t)k * NR + VL);
        for (int r = 0; r < MR; r++) {
            tx_real ak = ar[r][(size_t)k * ks];
            acc[r][0] += b0 * ak;
            acc[r][1] += b1 * ak;
        }
    }
    for (int r = 0; r < m; r++) {
        tx_real *dst = c + (size_t)r * ldc;
        if (n == NR) {
            vreal_u *d = (vreal_u *)dst;
            if (add) d[0] += acc[r][0], d[1] += acc[r][1];
            else d[0] = acc[r][0], d[1] = acc[r][1];
        } else {
            const tx_real *src = (const tx_real *)acc[r];
            if (add)
                for (int j = 0; j < n; j++) dst[j] += src[j];
            else
                for (int j = 0; j < n; j++) dst[j] = src[j];
        }
    }
}

static void kernel_packed(int kc, const tx_real *a, const tx_real *b,
                          tx_real *c, int ldc, int m, int n, int add) {
    kernel(kc, a, 1, MR, b, c, ldc, m, n, add);
}

static void kernel_direct(int kc, const tx_real *a, int lda, const tx_real *b,
                          tx_real *c, int ldc, int m, int n, int add) {
    kernel(kc, a, (size_t)lda, 1, b, c, ldc, m, n, add);
}

/* Aᵀ in place: row r of the tile is column r of A, so the MR values at one
 * k are neighbours in row k of A. */
static void kernel_direct_t(int kc, const tx_real *a, int lda, const tx_real *b,
                            tx_real *c, int ldc, int m, int n, int add) {
    kernel(kc, a, 1, (size_t)lda, b, c, ldc, m, n, add);
}

/* Aᵀ[i0.., k0..] (mc × kc, A stored [K, M]) into MR-row micro-panels
 * [kc][MR]; rows past mc are zero. */
static void pack_at(int mc, int kc, const tx_real *A, int lda, int i0, int k0,
                    tx_real *restrict dst) {
    for (int ir = 0; ir < mc; ir += MR) {
        int mr = mc - ir < MR ? mc - ir : MR;
        for (int k = 0; k < kc; k++, dst += MR) {
            const tx_real *src = A + (size_t)(k0 + k) * lda + i0 + ir;
            int r = 0;
            for (; r < mr; r++) dst[r] = src[r];
            for (; r < MR; r++) dst[r] = 0;
        }
    }
}

/* d[i·NR + j] = s[j·lds + i] for i, j < VL: VL rows of B read as vectors
 * and transposed in registers (gathered one element at a time, op(B) = Bᵀ
 * took a quarter of the products' own time). Each stage swaps the
 * off-diagonal h × h blocks of every 2h × 2h block: lane l of row i takes
 * lane l − h of row i + h, or lane l + h of row i − h. After h = VL/2, ...,
 * 1 the block is transposed. */
static inline void transpose_block(const tx_real *restrict s, int lds, tx_real *restrict d) {
    vreal r[VL];
#pragma GCC unroll 16
    for (int i = 0; i < VL; i++) {
        r[i] = *(const vreal_u *)(s + (size_t)i * lds);
        __builtin_prefetch(s + (size_t)i * lds + 4 * VL);
    }
#pragma GCC unroll 4
    for (int h = VL / 2; h >= 1; h /= 2) {
        vlane lo, hi; /* __builtin_shuffle: index VL + l is lane l of its second operand */
#pragma GCC unroll 16
        for (int l = 0; l < VL; l++) {
            lo[l] = l & h ? VL + l - h : l;
            hi[l] = l & h ? VL + l : l + h;
        }
#pragma GCC unroll 16
        for (int i = 0; i < VL; i++) {
            if (i & h) continue;
            vreal a = r[i], b = r[i + h];
            r[i] = __builtin_shuffle(a, b, lo);
            r[i + h] = __builtin_shuffle(a, b, hi);
        }
    }
#pragma GCC unroll 16
    for (int i = 0; i < VL; i++) *(vreal *)(d + (size_t)i * NR) = r[i];
}

/* op(B)[k0.., j0..] (kc × nc) into NR-column micro-panels [kc][NR]. */
static void pack_b(int kc, int nc, const tx_real *B, int ldb, int tb, int k0,
                   int j0, tx_real *restrict dst) {
    for (int jr = 0; jr < nc; jr += NR, dst += (size_t)kc * NR) {
        int nr = nc - jr < NR ? nc - jr : NR;
        if (tb) {
            /* B is [N, K]: row c of B is column c of the panel. Blocks of
             * VL × VL transposed in registers, the rest element by element
             * with the nr rows side by side (every store contiguous). */
            const tx_real *src = B + (size_t)(j0 + jr) * ldb + k0;
            int k = 0, kv = nr == NR ? kc / VL * VL : 0;
            /* VL rows at a time along k: VL streams for the prefetcher */
            for (int h = 0; h < NR && kv; h += VL)
                for (k = 0; k < kv; k += VL)
                    transpose_block(src + (size_t)h * ldb + k, ldb, dst + (size_t)k * NR + h);
            for (k = kv; k < kc; k++) {
                tx_real *d = dst + (size_t)k * NR;
                int c = 0;
                for (; c < nr; c++) d[c] = src[(size_t)c * ldb + k];
                for (; c < NR; c++) d[c] = 0;
            }
        } else if (nr == NR) {
            /* a row of the panel is two vectors: copied as such (the loop
             * below became a memcpy call per 128 bytes) */
            for (int k = 0; k < kc; k++) {
                const tx_real *src = B + (size_t)(k0 + k) * ldb + j0 + jr;
                vreal *d = (vreal *)(dst + (size_t)k * NR);
                d[0] = *(const vreal_u *)src, d[1] = *(const vreal_u *)(src + VL);
                __builtin_prefetch(src + 8 * (size_t)ldb);
                __builtin_prefetch(src + 8 * (size_t)ldb + VL);
            }
        } else {
            for (int k = 0; k < kc; k++) {
                const tx_real *src = B + (size_t)(k0 + k) * ldb + j0 + jr;
                tx_real *d = dst + (size_t)k * NR;
                int c = 0;
                for (; c < nr; c++) d[c] = src[c];
                for (; c < NR; c++) d[c] = 0;
            }
        }
    }
}

/* Frees a thread's packing buffers when the thread ends (OpenMP ends
 * threads when the thread count shrinks). */
static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;
static void make_buf_key(void) {
    TX_ASSERT(!pthread_key_create(&buf_key, free), "tx_gemm: no thread key");
}

/* One thread's packing buffers (B block, then Aᵀ block), allocated on first
 * use and kept. */
static tx_real *thread_buffers(void) {
    static __thread tx_real *buf;
    if (!buf) {
        buf = tx_malloc_aligned(sizeof(tx_real) * ((size_t)KC * NC + MC * KC));
        pthread_once(&buf_once, make_buf_key);
        pthread_setspecific(buf_key, buf);
    }
    return buf;
}

/* Whether the tile of rows [r0, r0 + m) needs columns from j on, and
 * which terms [*klo, *khi) it sums (narrowed from what it holds). */
static int tile_band(const tx_gemm_band *band, int r0, int m, int j, int *klo, int *khi) {
    if (band->n_end) {
        int ne = 0;
        for (int r = r0; r < r0 + m; r++) ne = band->n_end[r] > ne ? band->n_end[r] : ne;
        if (j >= ne) return 0;
    }
    if (band->k_begin) {
        int kb = INT_MAX;
        for (int r = r0; r < r0 + m; r++) kb = band->k_begin[r] < kb ? band->k_begin[r] : kb;
        if (kb > *klo) *klo = kb;
    }
    if (band->k_end) {
        int ke = 0;
        for (int r = r0; r < r0 + m; r++) ke = band->k_end[r] > ke ? band->k_end[r] : ke;
        if (ke < *khi) *khi = ke;
    }
    return 1;
}

/* The rows [m0, m1) × columns [n0, n1) of C, on one thread. ta: 0 reads A
 * in place, 1 reads Aᵀ in place, 2 packs Aᵀ. */
static void gemm_range(int m0, int m1, int n0, int n1, int K,
                       const tx_real *A, int lda, int ta, const tx_real *B,
                       int ldb, int tb, tx_real *C, int ldc, int accumulate,
                       const tx_gemm_band *band) {
    tx_real *pb = thread_buffers(), *pa = pb + (size_t)KC * NC;
    for (int j0 = n0; j0 < n1; j0 += NC) {
        int nc = n1 - j0 < NC ? n1 - j0 : NC;
        for (int k0 = 0; k0 < K; k0 += KC) {
            int kc = K - k0 < KC ? K - k0 : KC, add = accumulate || k0 > 0;
            pack_b(kc, nc, B, ldb, tb, k0, j0, pb);
            for (int i0 = m0; i0 < m1; i0 += MC) {
                int mc = m1 - i0 < MC ? m1 - i0 : MC;
                if (ta == 2) pack_at(mc, kc, A, lda, i0, k0, pa);
                for (int jr = 0; jr < nc; jr += NR) {
                    int n = nc - jr < NR ? nc - jr : NR;
                    for (int ir = 0; ir < mc; ir += MR) {
                        int m = mc - ir < MR ? mc - ir : MR, klo = k0, khi = k0 + kc;
                        if (band && !tile_band(band, i0 + ir, m, j0 + jr, &klo, &khi)) continue;
                        if (khi <= klo) { /* no term here: C unchanged, or zeros */
                            if (add) continue;
                            klo = khi = k0;
                        }
                        const tx_real *b = pb + (size_t)jr * kc + (size_t)(klo - k0) * NR;
                        tx_real *c = C + (size_t)(i0 + ir) * ldc + j0 + jr;
                        if (ta == 2)
                            kernel_packed(khi - klo, pa + (size_t)ir * kc + (size_t)(klo - k0) * MR,
                                          b, c, ldc, m, n, add);
                        else if (ta)
                            kernel_direct_t(khi - klo, A + (size_t)klo * lda + i0 + ir, lda,
                                            b, c, ldc, m, n, add);
                        else
                            kernel_direct(khi - klo, A + (size_t)(i0 + ir) * lda + klo, lda,
                                          b, c, ldc, m, n, add);
                    }
                }
            }
        }
    }
}

/* ---- few rows: x·Wᵀ while decoding ------------------------------------- */
/* With a handful of rows of A (a decoding step: one token per sequence) and
 * B stored [N, K] (a weight, x·Wᵀ), packing B would move every weight twice
 * to use it a few times. Instead each C element is a dot product of a row of
 * A and a row of B, both read in place along k: DOT_N rows of B at a time
 * against DOT_M rows of A, VL lanes of k per step, the lanes added up at the
 * end in a fixed order. */
#define DOT_M 8
#define DOT_N 2
#define DOT_MAX_M 16 /* up to this many rows of A */

static void gemm_dot(int M, int n0, int n1, int K, const tx_real *A, int lda,
                     const tx_real *B, int ldb, tx_real *C, int ldc, int add) {
    for (int j = n0; j < n1; j += DOT_N) {
        int nj = n1 - j < DOT_N ? n1 - j : DOT_N;
        const tx_real *b[DOT_N];
        for (int c = 0; c < DOT_N; c++) b[c] = B + (size_t)(j + (c < nj ? c : nj - 1)) * ldb;
        for (int i = 0; i < M; i += DOT_M) {
            int mi = M - i < DOT_M ? M - i : DOT_M;
            const tx_real *a[DOT_M]; /* rows past mi repeat the last, dropped */
            for (int r = 0; r < DOT_M; r++) a[r] = A + (size_t)(i + (r < mi ? r : mi - 1)) * lda;
            vreal acc[DOT_M][DOT_N];
            memset(acc, 0, sizeof acc);
            int k = 0;
            for (; k + VL <= K; k += VL) {
                vreal bv[DOT_N];
                for (int c = 0; c < DOT_N; c++) bv[c] = *(const vreal_u *)(b[c] + k);
                for (int r = 0; r < DOT_M; r++) {
                    vreal av = *(const vreal_u *)(a[r] + k);
                    for (int c = 0; c < DOT_N; c++) acc[r][c] += av * bv[c];
                }
            }
            for (int r = 0; r < mi; r++)
                for (int c = 0; c < nj; c++) {
                    tx_real s = 0;
                    for (int l = 0; l < VL; l++) s += acc[r][c][l];
                    for (int kk = k; kk < K; kk++) s += a[r][kk] * b[c][kk];
                    tx_real *dst = C + (size_t)(i + r) * ldc + j + c;
                    *dst = add ? *dst + s : s;
                }
        }
    }
}

static int use_bf16;

void tx_gemm_use_bf16(int on) {
    TX_ASSERT(!on || tx_bf16_supported(), "tx_gemm_use_bf16: no AVX-512 BF16 in this CPU or build");
    use_bf16 = on;
}

void tx_gemm(int M, int N, int K, const tx_real *A, int lda, int ta,
             const tx_real *B, int ldb, int tb, tx_real *C, int ldc,
             int accumulate) {
    tx_gemm_banded(M, N, K, A, lda, ta, B, ldb, tb, C, ldc, accumulate, NULL);
}

void tx_gemm_banded(int M, int N, int K, const tx_real *A, int lda, int ta,
                    const tx_real *B, int ldb, int tb, tx_real *C, int ldc,
                    int accumulate, const tx_gemm_band *band) {
    if (M <= 0 || N <= 0) return;
#ifndef TX_DOUBLE
    if (use_bf16 && K > 0) {
        tx_gemm_bf16(M, N, K, A, lda, ta, B, ldb, tb, C, ldc, accumulate);
        return;
    }
#endif
    if (K <= 0) {
        if (!accumulate)
            for (int i = 0; i < M; i++)
                memset(C + (size_t)i * ldc, 0, (size_t)N * sizeof(tx_real));
        return;
    }
    /* Aᵀ read in place walks down columns of A, one row of A per k; when
     * those rows are 4 KiB or more apart they fall into the same few cache
     * sets and evict each other, so a wide Aᵀ is packed, if enough panels of
     * B reuse the packed copy to repay the copying (measured: 2048×512×1024
     * runs 17% faster packed, 256×64×512 43% faster in place). */
    if (ta && (size_t)lda * sizeof(tx_real) >= 4096 && N > 4 * NR) ta = 2;
    if (!ta && tb && M <= DOT_MAX_M) {
        /* Columns split over the threads, each C element on one of them.
         * Reading the weights is the work here, and from 2^21 multiply-adds
         * (a [512, 256] weight, 0.5 MB) two threads read them faster. */
        int nth = tx_get_threads(), parts = N / (4 * DOT_N) < nth ? N / (4 * DOT_N) : nth;
        if (nth < 2 || parts < 2 || (double)M * N * K < TX_PAR_MIN_MACS / 8 || tx_in_parallel()) {
            gemm_dot(M, 0, N, K, A, lda, B, ldb, C, ldc, accumulate);
            return;
        }
#pragma omp parallel for schedule(static)
        for (int t = 0; t < parts; t++) {
            int j0 = (int)((long)N * t / parts) & ~(DOT_N - 1), j1 = (int)((long)N * (t + 1) / parts) & ~(DOT_N - 1);
            gemm_dot(M, j0, t == parts - 1 ? N : j1, K, A, lda, B, ldb, C, ldc, accumulate);
        }
        return;
    }
    /* Split C by columns unless Aᵀ, which every column range would pack
     * again, is the larger operand: then by rows, one range per thread. Parts
     * are whole micro-tiles. A product that is small, or called from inside
     * a parallel region, runs on this thread. */
    int nth = tx_get_threads(), by_rows = ta == 2 && M > N;
    int np = by_rows ? (M + MR - 1) / MR : (N + NR - 1) / NR;
    int nparts = by_rows ? nth : nth * PARTS_PER_THREAD;
    if (!by_rows && nparts > np / MIN_PANELS) nparts = np / MIN_PANELS;
    if (nparts < nth) nparts = nth;
    if (nparts > np) nparts = np;
    if (nth < 2 || nparts < 2 || (double)M * N * K < TX_PAR_MIN_MACS || tx_in_parallel()) {
        gemm_range(0, M, 0, N, K, A, lda, ta, B, ldb, tb, C, ldc, accumulate, band);
        return;
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (int t = 0; t < nparts; t++) {
        int p0 = (int)((long)np * t / nparts), p1 = (int)((long)np * (t + 1) / nparts);
        if (by_rows)
            gemm_range(p0 * MR, p1 * MR < M ? p1 * MR : M, 0, N, K, A, lda, ta,
                       B, ldb, tb, C, ldc, accumulate, band);
        else
            gemm_range(0, M, p0 * NR, p1 * NR < N ? p1 * NR : N, K, A, lda, ta,
                       B, ldb, tb, C, ldc, accumulate, band);
    }
}
