/* base.c: assertions, user errors, random numbers and thread settings. */
#define _GNU_SOURCE /* sched_setaffinity */
#include "base.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

void tx_fail(const char *file, int line, const char *cond, const char *fmt,
             ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (failed: %s)\n", cond);
    va_end(ap);
    abort();
}

int tx_error(tx_err *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        /* Messages quote file contents: keep them one line, free of
         * terminal control sequences. */
        for (char *c = err->msg; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
    }
    return code;
}

/* ---- memory and files ---------------------------------------------------- */

static void *checked(void *p, size_t bytes) {
    TX_ASSERT(p, "out of memory allocating %zu bytes", bytes);
    return p;
}

void *tx_malloc(size_t bytes) { return checked(malloc(bytes ? bytes : 1), bytes); }

void *tx_calloc(size_t n, size_t size) {
    return checked(calloc(n ? n : 1, size ? size : 1), n * size);
}

void *tx_realloc(void *p, size_t bytes) {
    return checked(realloc(p, bytes ? bytes : 1), bytes);
}

char *tx_strdup(const char *s) { return checked(strdup(s), strlen(s) + 1); }

void *tx_malloc_aligned(size_t bytes) {
    size_t rounded = (bytes + 63) & ~(size_t)63;
    return checked(aligned_alloc(64, rounded ? rounded : 64), bytes);
}

int tx_read_file(const char *path, char **text, size_t *size, tx_err *err) {
    *text = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return tx_error(err, TX_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0, got;
    char *b = tx_malloc(cap);
    /* fopen accepts a directory; fread then fails with EISDIR */
    while ((got = fread(b + n, 1, cap - n - 1, f)) > 0)
        if ((n += got) == cap - 1) b = tx_realloc(b, cap *= 2);
    int bad = ferror(f) ? errno : 0;
    fclose(f);
    if (bad) {
        free(b);
        return tx_error(err, TX_EINPUT, "%s: cannot read: %s", path, strerror(bad));
    }
    b[n] = 0;
    *text = b;
    *size = n;
    return TX_OK;
}

int tx_write_with(const char *path, int (*write)(FILE *f, void *ctx), void *ctx, tx_err *err) {
    size_t plen = strlen(path);
    char *tmp = tx_malloc(plen + 5);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    /* Each step runs only if the previous ones succeeded; errno is kept from
     * the first failure. */
    FILE *f = fopen(tmp, "wb");
    int e = f ? 0 : errno;
    int ok = f && write(f, ctx) && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (f && !ok) e = errno;
    if (f && fclose(f) != 0 && ok) ok = 0, e = errno;
    if (ok && rename(tmp, path) != 0) ok = 0, e = errno;
    if (!ok && f) remove(tmp);
    int rc = ok ? TX_OK : tx_error(err, TX_EIO, "%s: cannot write (via %s): %s", path, tmp, strerror(e));
    free(tmp);
    return rc;
}

typedef struct bytes_span {
    const void *p;
    size_t n;
} bytes_span;

static int write_bytes(FILE *f, void *ctx) {
    const bytes_span *b = ctx;
    return b->n == 0 || fwrite(b->p, 1, b->n, f) == b->n;
}

int tx_write_file(const char *path, const void *bytes, size_t n, tx_err *err) {
    return tx_write_with(path, write_bytes, &(bytes_span){bytes, n}, err);
}

/* ---- random numbers ------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void tx_rng_seed(tx_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t tx_rng_u64(tx_rng *r) {
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double tx_rng_uniform(tx_rng *r) {
    return (double)(tx_rng_u64(r) >> 11) * 0x1.0p-53;
}

double tx_rng_normal(tx_rng *r) {
    double u1 = 1.0 - tx_rng_uniform(r), u2 = tx_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

int tx_rng_int(tx_rng *r, int lo, int hi) {
    TX_ASSERT(lo <= hi, "tx_rng_int: empty range [%d, %d]", lo, hi);
    uint64_t span = (uint64_t)((int64_t)hi - lo) + 1;
    return lo + (int)(tx_rng_u64(r) % span); /* bias < 2^-32 for our spans */
}

double tx_hash_uniform(uint64_t key, uint64_t i) {
    uint64_t x = key ^ (i * 0xd1b54a32d192ed03ULL);
    return (double)(splitmix64(&x) >> 11) * 0x1.0p-53;
}

/* ---- threads ------------------------------------------------------------- */

/* Each thread of the team gets a CPU of its own, unless the user placed
 * threads through the environment. Left to the scheduler, a new thread
 * starts on its parent's CPU and on a virtual machine can stay there for a
 * hundred milliseconds; while two threads share one CPU, every barrier costs
 * a scheduler time slice (measured here: 8 ms instead of 0.25 ms per
 * product). */
static void bind_threads(void) {
#if defined(_OPENMP) && defined(__linux__)
    static cpu_set_t all; /* the CPUs we were given, before any binding */
    static int have_all;
    if (getenv("OMP_PROC_BIND") || getenv("OMP_PLACES") || getenv("GOMP_CPU_AFFINITY"))
        return;
    if (!have_all) {
        if (sched_getaffinity(0, sizeof all, &all)) return;
        have_all = 1;
    }
    int cpus[CPU_SETSIZE], ncpu = 0;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &all)) cpus[ncpu++] = c;
    /* More threads than CPUs (or one thread): every thread may run anywhere
     * again, as a thread created later inherits its creator's binding. */
    int nth = omp_get_max_threads(), bind = nth >= 2 && nth <= ncpu;
#pragma omp parallel num_threads(nth)
    {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpus[omp_get_thread_num() % ncpu], &one);
        /* best effort: a thread that cannot be bound runs unbound */
        sched_setaffinity(0, sizeof(cpu_set_t), bind ? &one : &all);
    }
#endif
}

size_t tx_par_min_elems = TX_PAR_DEFAULT_ELEMS;
double tx_par_min_macs = TX_PAR_DEFAULT_MACS;

void tx_set_par_min(size_t elems, double macs) {
    int dflt = elems == 0 && macs == 0;
    tx_par_min_elems = dflt ? TX_PAR_DEFAULT_ELEMS : elems < 1 ? 1 : elems;
    tx_par_min_macs = dflt ? TX_PAR_DEFAULT_MACS : macs < 1 ? 1 : macs;
}

/* TAPEFORMER_PAR_MIN="ELEMS,MACS": both thresholds (tests set "1,1"). */
static void par_min_from_env(void) {
    const char *s = getenv("TAPEFORMER_PAR_MIN");
    if (!s || !*s) return;
    char *end;
    double e = strtod(s, &end), m = e;
    if (*end == ',') m = strtod(end + 1, &end);
    if (*end || !(e >= 0 && m >= 0)) {
        fprintf(stderr, "tapeformer: TAPEFORMER_PAR_MIN='%s' ignored: expected ELEMS,MACS\n", s);
        return;
    }
    tx_set_par_min((size_t)e, m);
}

void tx_zero(tx_real *p, size_t n) {
    const size_t chunk = 1 << 16; /* elements */
    const long nch = (long)((n + chunk - 1) / chunk);
#pragma omp parallel for schedule(static) if (n >= TX_PAR_MIN_ELEMS && !tx_in_parallel())
    for (long c = 0; c < nch; c++) {
        size_t lo = (size_t)c * chunk, hi = lo + chunk < n ? lo + chunk : n;
        memset(p + lo, 0, (hi - lo) * sizeof *p);
    }
}

void tx_set_threads(int n) {
#ifdef _OPENMP
    if (n > 0) omp_set_num_threads(n);
#else
    (void)n;
#endif
    par_min_from_env();
    bind_threads();
}

int tx_get_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int tx_thread_num(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

int tx_in_parallel(void) {
#ifdef _OPENMP
    return omp_get_level() > 0;
#else
    return 0;
#endif
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double tx_median(double *x, size_t n) {
    qsort(x, n, sizeof *x, by_value);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}
