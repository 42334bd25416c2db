/* base.h: the scalar type, always-on assertions, user-error buffers and the
 * seeded random number generators every other module builds on.
 * Letters used in shape comments throughout the project:
 *   B batch, T time (Tq queries, Tk keys), C channels, H heads, D head size,
 *   V vocabulary, N rows (any flattened leading dimensions). */
#ifndef TX_BASE_H
#define TX_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The library's version (major.minor.patch), and as one number. */
#define TX_VERSION "1.0.0"
#define TX_VERSION_NUMBER 10000 /* major·10000 + minor·100 + patch */

/* One macro switches the whole library to double precision (gradcheck). */
#ifdef TX_DOUBLE
typedef double tx_real;
#define TX_REAL_NAME "f64"
#else
typedef float tx_real;
#define TX_REAL_NAME "f32"
#endif

/* Programmer errors: always on, print "file:line: message" and abort. */
#define TX_ASSERT(cond, ...)                                                   \
    do {                                                                       \
        if (!(cond)) tx_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);          \
    } while (0)

__attribute__((noreturn, format(printf, 4, 5))) void
tx_fail(const char *file, int line, const char *cond, const char *fmt, ...);

/* User errors: functions return 0 on success or TX_EINPUT/TX_EIO and leave a
 * one-line message (no trailing newline) in a tx_err the caller owns. */
enum { TX_OK = 0, TX_EINPUT = 2, TX_EIO = 3 };
typedef struct tx_err {
    char msg[512];
} tx_err;
/* Formats into err (if non-NULL) and returns code, for `return tx_error(...)`.
 * Control characters (newlines included) in the text become '?'. */
__attribute__((format(printf, 3, 4))) int tx_error(tx_err *err, int code,
                                                    const char *fmt, ...);

/* xoshiro256** seeded through splitmix64: the stream used for initialisation
 * and data generation. Its whole state is `s`, so checkpoints can save it. */
typedef struct tx_rng {
    uint64_t s[4];
} tx_rng;
void tx_rng_seed(tx_rng *r, uint64_t seed);
uint64_t tx_rng_u64(tx_rng *r);
double tx_rng_uniform(tx_rng *r);          /* [0, 1) */
double tx_rng_normal(tx_rng *r);           /* N(0, 1), Box-Muller */
int tx_rng_int(tx_rng *r, int lo, int hi); /* uniform in [lo, hi] */

/* Counter-based uniform in [0, 1): element i of a stream keyed by `key`.
 * Used by dropout so masks do not depend on how threads split the work. */
double tx_hash_uniform(uint64_t key, uint64_t i);

/* Work from which a loop or product is split over the threads: elementwise
 * and row-wise ops from TX_PAR_MIN_ELEMS elements, matrix products from
 * TX_PAR_MIN_MACS multiply-adds. A parallel region costs a few microseconds
 * on a quiet machine, but on a virtual one each is a chance to wait for a CPU
 * the host has lent elsewhere. Measured 2026-12-03 at 2 threads: 2^16 and
 * 2^22 against the earlier 2^18 and 2^24 made the tiny benchmark model
 * (d_model 64) 15% and configs/fortunes.ini (d_model 128, 768 tokens a
 * step) 28% faster and the larger models no slower (on 2026-11-23 the tiny
 * model had preferred the higher ones). Tests lower them to 1 so that every
 * parallel path runs on small inputs (tx_set_par_min, or the environment
 * variable TAPEFORMER_PAR_MIN="ELEMS,MACS" read by tx_set_threads). */
#define TX_PAR_DEFAULT_ELEMS (1 << 16)
#define TX_PAR_DEFAULT_MACS (1 << 22)
extern size_t tx_par_min_elems;
extern double tx_par_min_macs;
#define TX_PAR_MIN_ELEMS tx_par_min_elems
#define TX_PAR_MIN_MACS tx_par_min_macs
/* Sets both thresholds (values < 1 count as 1); 0, 0 restores the defaults. */
void tx_set_par_min(size_t elems, double macs);

/* The one checked allocator: like malloc, calloc, realloc and strdup, but
 * abort with the size asked for when the heap is exhausted (activations,
 * parameters and buffers cannot be recovered from). Free with free(). */
void *tx_malloc(size_t bytes);
void *tx_calloc(size_t n, size_t size);
void *tx_realloc(void *p, size_t bytes);
char *tx_strdup(const char *s);
/* 64-byte aligned (for vector loads); free with free(). */
void *tx_malloc_aligned(size_t bytes);

/* The one whole-file reader: *text gets the file's bytes and a NUL after
 * them (malloc'd, the caller frees), *size their count. Returns TX_OK, or
 * TX_EINPUT (an input that cannot be read is bad input) with "PATH: cannot
 * open: REASON" or "PATH: cannot read: REASON" (a directory: "Is a
 * directory"), *text NULL. */
int tx_read_file(const char *path, char **text, size_t *size, tx_err *err);
/* Writes bytes [n] to path atomically: to PATH.tmp, synced, then renamed, so
 * path holds the old file or the new one, never part of one. TX_OK, or
 * TX_EIO ("PATH: cannot write (via PATH.tmp): REASON", no .tmp left). */
int tx_write_file(const char *path, const void *bytes, size_t n, tx_err *err);
/* The same with the content made by write(f, ctx), which returns nonzero
 * when every write succeeded (for content written in parts). */
int tx_write_with(const char *path, int (*write)(FILE *f, void *ctx), void *ctx, tx_err *err);

/* The median of x[0..n), n > 0; sorts x (timings: the bench, the trainer). */
double tx_median(double *x, size_t n);

/* p[0..n) = 0, split over the threads when n is large: zeroing gradients
 * is a pass over memory like any other, and run on one thread it would be
 * the part of a big step that does not scale. */
void tx_zero(tx_real *p, size_t n);

/* Threads: n <= 0 keeps the OpenMP default (OMP_NUM_THREADS). Binds each
 * thread of the team to a CPU of its own unless the environment places
 * them (OMP_PROC_BIND, OMP_PLACES, GOMP_CPU_AFFINITY). */
void tx_set_threads(int n);
int tx_get_threads(void);
/* This thread's number in its team, 0 .. tx_get_threads() − 1 (0 outside a
 * parallel region): for per-thread scratch. */
int tx_thread_num(void);
/* Inside a parallel region, even an inactive one (an `if` clause that was
 * false): kernels then run serially, because a parallel region there would
 * start a nested team, whose threads are created anew on every call. */
int tx_in_parallel(void);

#endif
