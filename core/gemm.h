/* gemm.h: the matrix-product kernel behind matmul, attention and every linear
 * layer: C (+)= op(A)·op(B), op(X) = X or Xᵀ, read without materialising the
 * transpose. Packed, cache-blocked and register-tiled. */
#ifndef TX_GEMM_H
#define TX_GEMM_H

#include "base.h"

/* op(A) is [M, K]: A is [M, K] with row stride lda, or if ta [K, M].
 * op(B) is [K, N]: B is [K, N] with row stride ldb, or if tb [N, K].
 * C [M, N] with row stride ldc is overwritten (accumulate 0) or added to.
 * Splits the work across OpenMP threads unless already inside a parallel
 * region; each element of C is summed in the same order whatever the thread
 * count, so results are bitwise reproducible. */
void tx_gemm(int M, int N, int K, const tx_real *A, int lda, int ta,
             const tx_real *B, int ldb, int tb, tx_real *C, int ldc,
             int accumulate);

/* Products with structure, as causal attention's: row r of C needs only
 * the columns j < n_end[r] (the others are left unspecified: computed or
 * not), and its terms with k outside [k_begin[r], k_end[r]) are exact zeros
 * that the sums may leave out, changing no bit (a sum of products starts
 * at +0, and adding ±0 to it changes nothing). NULL arrays: no limit.
 * Whole MR-row tiles and NR-column panels are skipped, so the band is a
 * hint: results equal tx_gemm's on every element the caller needs. */
typedef struct tx_gemm_band {
    const int *k_begin, *k_end; /* [M] */
    const int *n_end;           /* [M] */
} tx_gemm_band;
void tx_gemm_banded(int M, int N, int K, const tx_real *A, int lda, int ta,
                    const tx_real *B, int ldb, int tb, tx_real *C, int ldc,
                    int accumulate, const tx_gemm_band *band);

/* bfloat16 products (gemm_bf16.c): the same contract, with A's and B's
 * entries rounded to bf16 (nearest even) and the products summed in float
 * by AVX-512 BF16. tx_bf16_supported says whether this CPU has it (always 0
 * in the double build); calling without it aborts. */
int tx_bf16_supported(void);
void tx_gemm_bf16(int M, int N, int K, const float *A, int lda, int ta, const float *B, int ldb,
                  int tb, float *C, int ldc, int accumulate);
/* on: every tx_gemm of the process runs as tx_gemm_bf16 from now on (a
 * model trained with precision bf16: its forward and backward products,
 * attention's too). Aborts if the CPU (or the build) lacks it. */
void tx_gemm_use_bf16(int on);

#endif
