/* gemm.c: C (+)= op(A)·op(B), BLIS-style. C is cut into MC×NC tiles shared
 * out to threads; for each tile and each KC-deep slice of K the thread packs
 * op(A) into MR-row micro-panels and op(B) into NR-column micro-panels (zero
 * padded), then a register-tiled micro-kernel computes MR×NR blocks. Each C
 * element is summed over K in one fixed order (k within a slice, slices in
 * order), whichever thread owns the tile: results do not depend on the thread
 * count. The micro-kernel uses GCC vector extensions, which -march=native
 * turns into AVX-512 or AVX2 and other targets into portable code. */
#include "gemm.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define VBYTES 64
#define VL ((int)(VBYTES / sizeof(tx_real))) /* lanes: 16 float, 8 double */
#define MR 6
#define NR (2 * VL)
#define KC 256
#define MC 96   /* multiple of MR */
#define NC 256  /* multiple of NR */

typedef tx_real vreal __attribute__((vector_size(VBYTES), aligned(VBYTES)));

/* acc[MR][NR] = Σ_k a[k][0..MR) ⊗ b[k][0..NR), then stored or added to C.
 * a: packed [kc][MR], b: packed [kc][NR]. Rows/columns past m/n are dropped. */
static void micro_kernel(int kc, const tx_real *restrict a,
                         const tx_real *restrict b, tx_real *restrict c,
                         int ldc, int m, int n, int add) {
    vreal acc[MR][2];
    memset(acc, 0, sizeof acc);
    for (int k = 0; k < kc; k++) {
        vreal b0 = *(const vreal *)(b + (size_t)k * NR);
        vreal b1 = *(const vreal *)(b + (size_t)k * NR + VL);
        const tx_real *ak = a + (size_t)k * MR;
        for (int r = 0; r < MR; r++) {
            acc[r][0] += b0 * ak[r];
            acc[r][1] += b1 * ak[r];
        }
    }
    for (int r = 0; r < m; r++) {
        const tx_real *src = (const tx_real *)acc[r];
        tx_real *dst = c + (size_t)r * ldc;
        if (add)
            for (int j = 0; j < n; j++) dst[j] += src[j];
        else
            for (int j = 0; j < n; j++) dst[j] = src[j];
    }
}

/* op(A)[i0.., k0..] (mc × kc) into MR-row micro-panels [kc][MR]. */
static void pack_a(int mc, int kc, const tx_real *A, int lda, int ta, int i0,
                   int k0, tx_real *restrict dst) {
    for (int ir = 0; ir < mc; ir += MR) {
        int mr = mc - ir < MR ? mc - ir : MR;
        for (int k = 0; k < kc; k++, dst += MR) {
            int r = 0;
            if (ta) {
                const tx_real *src = A + (size_t)(k0 + k) * lda + i0 + ir;
                for (; r < mr; r++) dst[r] = src[r];
            } else {
                const tx_real *src = A + (size_t)(i0 + ir) * lda + k0 + k;
                for (; r < mr; r++) dst[r] = src[(size_t)r * lda];
            }
            for (; r < MR; r++) dst[r] = 0;
        }
    }
}

/* op(B)[k0.., j0..] (kc × nc) into NR-column micro-panels [kc][NR]. */
static void pack_b(int kc, int nc, const tx_real *B, int ldb, int tb, int k0,
                   int j0, tx_real *restrict dst) {
    for (int jr = 0; jr < nc; jr += NR) {
        int nr = nc - jr < NR ? nc - jr : NR;
        if (tb) {
            /* B is [N, K]: walk each column's contiguous run of k. */
            for (int c = 0; c < nr; c++) {
                const tx_real *src = B + (size_t)(j0 + jr + c) * ldb + k0;
                for (int k = 0; k < kc; k++) dst[(size_t)k * NR + c] = src[k];
            }
            for (int k = 0; k < kc; k++)
                for (int c = nr; c < NR; c++) dst[(size_t)k * NR + c] = 0;
        } else {
            for (int k = 0; k < kc; k++) {
                const tx_real *src = B + (size_t)(k0 + k) * ldb + j0 + jr;
                tx_real *d = dst + (size_t)k * NR;
                int c = 0;
                for (; c < nr; c++) d[c] = src[c];
                for (; c < NR; c++) d[c] = 0;
            }
        }
        dst += (size_t)kc * NR;
    }
}

/* Frees a thread's packing buffers when the thread ends (OpenMP ends
 * threads when the thread count shrinks). */
static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;
static void make_buf_key(void) {
    TX_ASSERT(!pthread_key_create(&buf_key, free), "tx_gemm: no thread key");
}

/* One thread's packing buffers, allocated on first use and kept. */
static tx_real *thread_buffers(void) {
    static __thread tx_real *buf;
    if (!buf) {
        buf = aligned_alloc(VBYTES, sizeof(tx_real) * (MC * KC + KC * NC));
        TX_ASSERT(buf, "tx_gemm: out of memory for packing buffers");
        pthread_once(&buf_once, make_buf_key);
        pthread_setspecific(buf_key, buf);
    }
    return buf;
}

static void gemm_tile(int i0, int mc, int j0, int nc, int K, const tx_real *A,
                      int lda, int ta, const tx_real *B, int ldb, int tb,
                      tx_real *C, int ldc, int accumulate) {
    tx_real *pa = thread_buffers(), *pb = pa + MC * KC;
    for (int k0 = 0; k0 < K; k0 += KC) {
        int kc = K - k0 < KC ? K - k0 : KC;
        int add = accumulate || k0 > 0;
        pack_a(mc, kc, A, lda, ta, i0, k0, pa);
        pack_b(kc, nc, B, ldb, tb, k0, j0, pb);
        for (int jr = 0; jr < nc; jr += NR)
            for (int ir = 0; ir < mc; ir += MR) {
                int m = mc - ir < MR ? mc - ir : MR;
                int n = nc - jr < NR ? nc - jr : NR;
                micro_kernel(kc, pa + (size_t)ir * kc, pb + (size_t)jr * kc,
                             C + (size_t)(i0 + ir) * ldc + j0 + jr, ldc, m, n,
                             add);
            }
    }
}

void tx_gemm(int M, int N, int K, const tx_real *A, int lda, int ta,
             const tx_real *B, int ldb, int tb, tx_real *C, int ldc,
             int accumulate) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (!accumulate)
            for (int i = 0; i < M; i++)
                memset(C + (size_t)i * ldc, 0, (size_t)N * sizeof(tx_real));
        return;
    }
    int tm = (M + MC - 1) / MC, tn = (N + NC - 1) / NC, ntiles = tm * tn;
    /* Entering even an inactive parallel region costs a team set-up; small
     * products and calls from inside a parallel loop run straight through. */
    if (ntiles == 1 || (double)M * N * K < (1 << 22) || tx_in_parallel()) {
        for (int t = 0; t < ntiles; t++)
            gemm_tile((t / tn) * MC, M - (t / tn) * MC < MC ? M - (t / tn) * MC : MC,
                      (t % tn) * NC, N - (t % tn) * NC < NC ? N - (t % tn) * NC : NC,
                      K, A, lda, ta, B, ldb, tb, C, ldc, accumulate);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int t = 0; t < ntiles; t++) {
        int i0 = (t / tn) * MC, j0 = (t % tn) * NC;
        int mc = M - i0 < MC ? M - i0 : MC, nc = N - j0 < NC ? N - j0 : NC;
        gemm_tile(i0, mc, j0, nc, K, A, lda, ta, B, ldb, tb, C, ldc,
                  accumulate);
    }
}
