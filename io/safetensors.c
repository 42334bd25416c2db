/* safetensors.c: the safetensors writer (atomic) and validating reader. */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Tensor bytes are written and handed out as they are in memory. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "safetensors data is little-endian; add byte swapping");

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {{"F64", 8},  {"F32", 4},     {"F16", 2},    {"BF16", 2},
              {"I64", 8},  {"I32", 4},     {"I16", 2},    {"I8", 1},
              {"U64", 8},  {"U32", 4},     {"U16", 2},    {"U8", 1},
              {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
#define NDTYPES (int)(sizeof dtypes / sizeof dtypes[0])

static int dtype_index(const char *dtype) {
    for (int i = 0; i < NDTYPES; i++)
        if (!strcmp(dtypes[i].name, dtype)) return i;
    return -1;
}

size_t tx_st_dtype_size(const char *dtype) {
    int i = dtype_index(dtype);
    return i < 0 ? 0 : dtypes[i].size;
}

/* ---- writing ------------------------------------------------------------- */

static cJSON *must(cJSON *item) {
    TX_ASSERT(item, "out of memory building a safetensors header");
    return item;
}

/* Raw text, because cJSON prints numbers past 1e15 in exponent notation,
 * which readers expecting u64 reject. */
static cJSON *json_u64(uint64_t v) {
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return must(cJSON_CreateRaw(buf));
}

/* The header text, unpadded; the caller frees it with cJSON_free. */
static char *header_json(const tx_st_tensor *t, int n, const char *const *meta,
                         int nmeta_pairs) {
    cJSON *root = must(cJSON_CreateObject());
    if (nmeta_pairs > 0) {
        cJSON *m = must(cJSON_CreateObject());
        for (int i = 0; i < nmeta_pairs; i++)
            cJSON_AddItemToObject(m, meta[2 * i],
                                  must(cJSON_CreateString(meta[2 * i + 1])));
        cJSON_AddItemToObject(root, "__metadata__", m);
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t esize = tx_st_dtype_size(t[i].dtype), count = 1;
        TX_ASSERT(esize, "tx_st_write: tensor %s: unknown dtype %s", t[i].name,
                  t[i].dtype);
        TX_ASSERT(t[i].ndim >= 0 && t[i].ndim <= TX_ST_MAXDIM,
                  "tx_st_write: tensor %s: %d dimensions", t[i].name,
                  t[i].ndim);
        TX_ASSERT(strcmp(t[i].name, "__metadata__") &&
                      !cJSON_GetObjectItemCaseSensitive(root, t[i].name),
                  "tx_st_write: tensor name %s reserved or used twice",
                  t[i].name);
        cJSON *e = must(cJSON_CreateObject());
        cJSON *shape = must(cJSON_CreateArray());
        cJSON *range = must(cJSON_CreateArray());
        for (int d = 0; d < t[i].ndim; d++) {
            count *= (size_t)t[i].shape[d];
            cJSON_AddItemToArray(shape, json_u64((uint64_t)t[i].shape[d]));
        }
        TX_ASSERT(t[i].nbytes == count * esize,
                  "tx_st_write: tensor %s: %zu bytes, its %s shape needs %zu",
                  t[i].name, t[i].nbytes, t[i].dtype, count * esize);
        cJSON_AddItemToArray(range, json_u64(off));
        cJSON_AddItemToArray(range, json_u64(off += t[i].nbytes));
        cJSON_AddItemToObject(e, "dtype", must(cJSON_CreateString(t[i].dtype)));
        cJSON_AddItemToObject(e, "shape", shape);
        cJSON_AddItemToObject(e, "data_offsets", range);
        cJSON_AddItemToObject(root, t[i].name, e);
    }
    char *json = cJSON_PrintUnformatted(root);
    TX_ASSERT(json, "out of memory printing a safetensors header");
    cJSON_Delete(root);
    return json;
}

static size_t crash_after; /* tx_st_crash_after: bytes, 0 off */

void tx_st_crash_after(size_t bytes) { crash_after = bytes; }

static int put(FILE *fp, const void *p, size_t n) {
    if (crash_after && (size_t)ftell(fp) + n >= crash_after) {
        size_t part = crash_after - (size_t)ftell(fp);
        fwrite(p, 1, part < n ? part : n, fp);
        fflush(fp);
        raise(SIGKILL);
    }
    return n == 0 || fwrite(p, 1, n, fp) == n;
}

/* What tx_st_write writes: the length, the header, its padding, the data. */
typedef struct st_content {
    const char *json;
    const tx_st_tensor *t;
    int n;
} st_content;

static int write_content(FILE *fp, void *ctx) {
    const st_content *c = ctx;
    size_t len = strlen(c->json), padded = (len + 7) & ~(size_t)7;
    unsigned char head[8];
    for (int i = 0; i < 8; i++)
        head[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    const char spaces[] = "       "; /* padding is at most 7 */
    int ok = put(fp, head, 8) && put(fp, c->json, len) && put(fp, spaces, padded - len);
    for (int i = 0; ok && i < c->n; i++) ok = put(fp, c->t[i].data, c->t[i].nbytes);
    return ok;
}

int tx_st_write(const char *path, const tx_st_tensor *t, int n,
                const char *const *meta, int nmeta_pairs, tx_err *err) {
    char *json = header_json(t, n, meta, nmeta_pairs);
    int rc = tx_write_with(path, write_content, &(st_content){json, t, n}, err);
    cJSON_free(json);
    return rc;
}

/* ---- reading ------------------------------------------------------------- */

/* Where a tensor's entry starts in the file, for messages: its quoted name
 * searched in the header text, or the start of the header if not found
 * (a name with escapes). */
static size_t key_offset(const tx_st_file *f, size_t hlen, const char *name) {
    size_t nlen = strlen(name);
    const char *h = (const char *)f->bytes + 8;
    for (size_t i = 0; i + nlen + 2 <= hlen; i++)
        if (h[i] == '"' && !memcmp(h + i + 1, name, nlen) &&
            h[i + 1 + nlen] == '"')
            return 8 + i;
    return 8;
}

/* TX_EINPUT with "PATH: byte AT: what". */
__attribute__((format(printf, 4, 5))) static int
bad(tx_err *err, const char *path, size_t at, const char *fmt, ...) {
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return tx_error(err, TX_EINPUT, "%s: byte %zu: %s", path, at, what);
}

/* TX_EINPUT with "PATH: byte AT: tensor \"NAME\": what", AT where the
 * tensor's entry starts (searched only now: an error is rare). */
__attribute__((format(printf, 6, 7))) static int
bad_tensor(tx_err *err, const char *path, const tx_st_file *f, size_t hlen,
           const char *name, const char *fmt, ...) {
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return bad(err, path, key_offset(f, hlen, name), "tensor \"%s\": %s", name,
               what);
}

/* A JSON number that is an exact non-negative integer a double holds. */
static int get_u64(const cJSON *x, uint64_t *v) {
    if (!cJSON_IsNumber(x)) return 0;
    double d = x->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0 && d == floor(d))) return 0;
    *v = (uint64_t)d;
    return 1;
}

typedef struct span {
    uint64_t begin, end;
    int i; /* tensor index */
} span;

static int by_begin(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* One header entry into f->tensors[i] and s; data is set once the layout is
 * known to be valid. */
static int parse_entry(const char *path, tx_st_file *f, size_t hlen,
                       const cJSON *e, int i, span *s, tx_err *err) {
    tx_st_tensor *t = &f->tensors[i];
    const char *name = t->name = e->string;
    if (cJSON_GetObjectItemCaseSensitive(f->header, name) != e)
        return bad_tensor(err, path, f, hlen, name, "expected one entry, found two");
    if (!cJSON_IsObject(e))
        return bad_tensor(err, path, f, hlen, name, "expected an object");
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *range = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dtype))
        return bad_tensor(err, path, f, hlen, name, "expected a string \"dtype\"");
    int d = dtype_index(dtype->valuestring);
    if (d < 0)
        return bad_tensor(err, path, f, hlen, name, "unknown dtype \"%s\"",
                          dtype->valuestring);
    t->dtype = dtypes[d].name;
    int ndim = cJSON_GetArraySize(shape);
    if (!cJSON_IsArray(shape) || ndim > TX_ST_MAXDIM)
        return bad_tensor(err, path, f, hlen, name,
                          "expected \"shape\", an array of at most %d integers",
                          TX_ST_MAXDIM);
    t->ndim = ndim;
    uint64_t count = 1, dim;
    const cJSON *x;
    int k = 0;
    cJSON_ArrayForEach(x, shape) {
        if (!get_u64(x, &dim))
            return bad_tensor(err, path, f, hlen, name,
                              "expected non-negative integers in \"shape\"");
        t->shape[k++] = (int64_t)dim;
        count = dim && count > UINT64_MAX / dim ? UINT64_MAX : count * dim;
    }
    if (!cJSON_IsArray(range) || cJSON_GetArraySize(range) != 2 ||
        !get_u64(range->child, &s->begin) ||
        !get_u64(range->child->next, &s->end))
        return bad_tensor(err, path, f, hlen, name,
                          "expected \"data_offsets\", two non-negative integers");
    if (s->end < s->begin)
        return bad_tensor(err, path, f, hlen, name,
                          "data_offsets [%" PRIu64 ", %" PRIu64 "] end before begin",
                          s->begin, s->end);
    uint64_t want = count > UINT64_MAX / dtypes[d].size
                        ? UINT64_MAX
                        : count * dtypes[d].size;
    if (s->end - s->begin != want)
        return bad_tensor(err, path, f, hlen, name,
                          "data_offsets span %" PRIu64 " bytes, expected %" PRIu64
                          " for its dtype and shape",
                          s->end - s->begin, want);
    s->i = i;
    t->nbytes = (size_t)want;
    return TX_OK;
}

/* Checks the metadata, every entry, then that the data spans tile the data
 * area exactly: sorted by begin, each starts where the previous ended. */
static int parse_header(const char *path, tx_st_file *f, size_t hlen,
                        tx_err *err) {
    const cJSON *root = f->header, *e;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    if (meta && !cJSON_IsObject(meta))
        return bad(err, path, 8, "expected \"__metadata__\" to be an object");
    cJSON_ArrayForEach(e, meta) {
        if (!cJSON_IsString(e))
            return bad(err, path, 8,
                       "__metadata__ \"%s\": expected a string value",
                       e->string);
    }
    f->n = cJSON_GetArraySize(root) - (meta != NULL);
    f->tensors = tx_calloc((size_t)f->n + 1, sizeof *f->tensors);
    span *s = tx_calloc((size_t)f->n + 1, sizeof *s);
    int i = 0, rc = TX_OK;
    cJSON_ArrayForEach(e, root) {
        if (e == meta) continue;
        if ((rc = parse_entry(path, f, hlen, e, i, &s[i], err))) goto out;
        i++;
    }
    const size_t data = 8 + hlen, dsize = f->size - data;
    qsort(s, (size_t)f->n, sizeof *s, by_begin);
    uint64_t end = 0;
    for (i = 0; i < f->n; i++) {
        const char *name = f->tensors[s[i].i].name;
        if (s[i].end > dsize) {
            rc = bad_tensor(err, path, f, hlen, name,
                            "data_offsets end %" PRIu64 " past the %zu bytes of data",
                            s[i].end, dsize);
            goto out;
        }
        if (s[i].begin != end) {
            size_t at = data + (size_t)end;
            rc = bad(err, path, at,
                     "tensor \"%s\" starts at data offset %" PRIu64
                     ", expected %" PRIu64 " (tensors must not overlap or "
                     "leave holes)",
                     name, s[i].begin, end);
            goto out;
        }
        end = s[i].end;
        f->tensors[s[i].i].data = f->bytes + data + s[i].begin;
    }
    if (end != dsize)
        rc = bad(err, path, data + end,
                 "file has %zu bytes, expected 8 + %zu + %" PRIu64
                 " (header length + end of the last tensor)",
                 f->size, hlen, end);
out:
    free(s);
    return rc;
}

static int parse(const char *path, tx_st_file *f, tx_err *err) {
    if (f->size < 8)
        return bad(err, path, 0,
                   "file of %zu bytes, expected at least 8 (header length)",
                   f->size);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)f->bytes[i] << (8 * i);
    if (hlen > f->size - 8)
        return bad(err, path, 0,
                   "header length %" PRIu64 ", expected at most %zu (the "
                   "bytes after it)",
                   hlen, f->size - 8);
    const char *h = (const char *)f->bytes + 8, *end = NULL;
    f->header = cJSON_ParseWithLengthOpts(h, hlen, &end, 0);
    size_t at = 8 + (size_t)(end ? end - h : 0);
    if (!f->header)
        return bad(err, path, at, "expected valid JSON in the header");
    for (; at < 8 + hlen; at++)
        if (!memchr(" \t\r\n", f->bytes[at], 4))
            return bad(err, path, at,
                       "expected only whitespace after the header JSON");
    if (!cJSON_IsObject(f->header))
        return bad(err, path, 8, "expected the header to be a JSON object");
    return parse_header(path, f, (size_t)hlen, err);
}

/* The file is mapped, not read: a tool opening a checkpoint then touches
 * the weights it needs and none of the optimizer state. Empty files (and
 * what cannot be mapped) are read. */
int tx_st_read(const char *path, tx_st_file *f, tx_err *err) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc;
    struct stat st;
    if (fd < 0) return tx_error(err, TX_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, &st) || S_ISDIR(st.st_mode)) {
        rc = tx_error(err, TX_EINPUT, "%s: cannot read: %s", path,
                      S_ISDIR(st.st_mode) ? strerror(EISDIR) : strerror(errno));
        close(fd);
        return rc;
    }
    void *map = st.st_size > 0 ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0)
                               : MAP_FAILED;
    close(fd);
    if (map != MAP_FAILED) {
        f->bytes = map;
        f->size = (size_t)st.st_size;
        f->mapped = 1;
    } else {
        char *bytes;
        if ((rc = tx_read_file(path, &bytes, &f->size, err))) return rc;
        f->bytes = (unsigned char *)bytes;
    }
    if ((rc = parse(path, f, err))) tx_st_free(f);
    return rc;
}

const tx_st_tensor *tx_st_get(const tx_st_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

const char *tx_st_meta(const tx_st_file *f, const char *key) {
    const cJSON *m =
        cJSON_GetObjectItemCaseSensitive(f->header, "__metadata__");
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, key));
}

void tx_st_free(tx_st_file *f) {
    cJSON_Delete(f->header);
    free(f->tensors);
    if (f->mapped) munmap(f->bytes, f->size);
    else free(f->bytes);
    memset(f, 0, sizeof *f);
}
