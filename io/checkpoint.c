/* checkpoint.c: the run state to and from safetensors. Weights are stored in
 * the build's scalar type (F32, or F64 in the double build) so that a resumed
 * run continues bit for bit; exports are always F32. */
#include "checkpoint.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REAL_DTYPE (sizeof(tx_real) == 4 ? "F32" : "F64")

static void describe(tx_st_tensor *t, const char *name, const char *dtype,
                     const tx_tensor *x, const void *data) {
    memset(t, 0, sizeof *t);
    t->name = name;
    t->dtype = dtype;
    t->ndim = x->ndim;
    for (int d = 0; d < x->ndim; d++) t->shape[d] = x->shape[d];
    t->data = data;
    t->nbytes = x->size * tx_st_dtype_size(dtype);
}

int tx_checkpoint_save(const char *path, const tx_params *p, const tx_optim *o,
                       const tx_run_state *st, const tx_model_info *info, tx_err *err) {
    TX_ASSERT(!o || (o->lo == 0 && o->hi == p->size),
              "tx_checkpoint_save: the optimizer holds a shard [%zu, %zu) of %zu; gather it first",
              o ? o->lo : 0, o ? o->hi : 0, p->size);
    int n = p->n + (o ? 2 : 0);
    tx_st_tensor *t = tx_calloc((size_t)n, sizeof *t);
    float *f32 = NULL;
    if (!o && sizeof(tx_real) != 4) { /* export: convert to float32 */
        f32 = tx_malloc(p->size * sizeof *f32);
        for (size_t i = 0; i < p->size; i++) f32[i] = (float)p->data[i];
    }
    for (int i = 0; i < p->n; i++) {
        const tx_tensor *x = p->list[i];
        size_t off = (size_t)(x->data - p->data);
        if (f32) describe(&t[i], x->name, "F32", x, f32 + off);
        else describe(&t[i], x->name, REAL_DTYPE, x, x->data);
    }
    if (o) {
        tx_tensor flat = {.ndim = 1, .shape = {(int)p->size}, .size = p->size};
        describe(&t[p->n], "optimizer.exp_avg", REAL_DTYPE, &flat, o->m);
        /* SGD has no second moment: store the first twice to keep one layout. */
        describe(&t[p->n + 1], "optimizer.exp_avg_sq", REAL_DTYPE, &flat,
                 o->v ? o->v : o->m);
    }
    char step[32] = "0", optim_t[32] = "0", pos[TX_DATA_POS * 21 + 1] = "";
    if (st) {
        snprintf(step, sizeof step, "%ld", st->step);
        for (int i = 0, k = 0; i < TX_DATA_POS; i++)
            k += snprintf(pos + k, sizeof pos - (size_t)k, i ? ",%" PRIu64 : "%" PRIu64,
                          st->data_pos[i]);
    }
    if (o) snprintf(optim_t, sizeof optim_t, "%ld", o->t);
    char longest[32];
    snprintf(longest, sizeof longest, "%d,%d", info->max_src, info->max_tgt);
    const char *meta[] = {"format", o ? TX_CHECKPOINT_FORMAT : TX_WEIGHTS_FORMAT,
                          "config", info->config,
                          "vocab", info->vocab,
                          "longest_example", longest,
                          "step", step,
                          "optimizer_step", optim_t,
                          "data_position", pos};
    int npairs = o ? 7 : 4;
    int rc = tx_st_write(path, t, n, meta, npairs, err);
    free(f32);
    free(t);
    return rc;
}

int tx_checkpoint_info(const tx_st_file *f, const char *path, tx_model_info *info,
                       tx_err *err) {
    memset(info, 0, sizeof *info);
    info->config = tx_st_meta(f, "config");
    info->vocab = tx_st_meta(f, "vocab");
    if (!info->config || !info->vocab)
        return tx_error(err, TX_EINPUT, "%s: metadata %s: missing", path,
                        info->config ? "vocab" : "config");
    const char *longest = tx_st_meta(f, "longest_example");
    int s, t;
    if (longest && sscanf(longest, "%d,%d", &s, &t) == 2 && s >= 0 && t >= 0)
        info->max_src = s, info->max_tgt = t;
    return TX_OK;
}

/* The stored tensor `name`, if it has want's shape and a float dtype. */
static int find_tensor(const tx_st_file *f, const char *path, const char *name,
                       const tx_tensor *want, const tx_st_tensor **out,
                       tx_err *err) {
    const tx_st_tensor *s = *out = tx_st_get(f, name);
    if (!s) return tx_error(err, TX_EINPUT, "%s: tensor %s: missing", path, name);
    int same = s->ndim == want->ndim;
    for (int d = 0; same && d < s->ndim; d++) same = s->shape[d] == want->shape[d];
    char ws[64];
    if (!same)
        return tx_error(err, TX_EINPUT, "%s: tensor %s: expected shape %s",
                        path, name, tx_shape_str(want, ws, sizeof ws));
    if (strcmp(s->dtype, "F32") && strcmp(s->dtype, "F64"))
        return tx_error(err, TX_EINPUT, "%s: tensor %s: expected dtype F32 or F64, got %s",
                        path, name, s->dtype);
    return TX_OK;
}

int tx_checkpoint_check(const tx_st_file *f, const char *path,
                        const tx_params *p, tx_err *err) {
    const tx_st_tensor *s;
    for (int i = 0; i < p->n; i++) {
        int rc = find_tensor(f, path, p->list[i]->name, p->list[i], &s, err);
        if (rc) return rc;
    }
    return TX_OK;
}

/* Copies elements [lo, hi) of a stored tensor of dtype F32 or F64 and shape
 * `want` into dst[0 .. hi - lo). */
static int load_tensor(const tx_st_file *f, const char *path, const char *name,
                       const tx_tensor *want, size_t lo, size_t hi, tx_real *dst, tx_err *err) {
    const tx_st_tensor *s;
    int rc = find_tensor(f, path, name, want, &s, err);
    if (rc) return rc;
    int is32 = !strcmp(s->dtype, "F32");
    const unsigned char *src = s->data;
    for (size_t i = lo; i < hi; i++) {
        double v;
        if (is32) {
            float x;
            memcpy(&x, src + 4 * i, 4);
            v = x;
        } else {
            memcpy(&v, src + 8 * i, 8);
        }
        if (!isfinite(v))
            return tx_error(err, TX_EINPUT, "%s: tensor %s: element %zu is %g, expected a finite number",
                            path, name, i, v);
        dst[i - lo] = (tx_real)v;
    }
    return TX_OK;
}

static int parse_long(const tx_st_file *f, const char *path, const char *key,
                      long *out, tx_err *err) {
    const char *s = tx_st_meta(f, key);
    char *end;
    if (!s) return tx_error(err, TX_EINPUT, "%s: metadata %s: missing", path, key);
    *out = strtol(s, &end, 10);
    if (end == s || *end || *out < 0)
        return tx_error(err, TX_EINPUT, "%s: metadata %s: expected a count, got '%s'",
                        path, key, s);
    return TX_OK;
}

int tx_checkpoint_restore(const tx_st_file *f, const char *path, tx_params *p,
                          tx_optim *o, tx_run_state *st, tx_err *err) {
    int rc;
    for (int i = 0; i < p->n; i++)
        if ((rc = load_tensor(f, path, p->list[i]->name, p->list[i], 0, p->list[i]->size,
                              p->list[i]->data, err)))
            return rc;
    if (!o) return TX_OK;
    /* a shard's optimizer (several processes) takes its part of the moments */
    tx_tensor flat = {.ndim = 1, .shape = {(int)p->size}, .size = p->size};
    if ((rc = load_tensor(f, path, "optimizer.exp_avg", &flat, o->lo, o->hi, o->m, err)) ||
        (o->v && (rc = load_tensor(f, path, "optimizer.exp_avg_sq", &flat, o->lo, o->hi, o->v, err))) ||
        (rc = parse_long(f, path, "optimizer_step", &o->t, err)) ||
        (rc = parse_long(f, path, "step", &st->step, err)))
        return rc;
    const char *pos = tx_st_meta(f, "data_position");
    const char *s = pos ? pos : "";
    for (int i = 0; i < TX_DATA_POS; i++) {
        char *end;
        st->data_pos[i] = strtoull(s, &end, 10);
        if (end == s || (*end != (i + 1 < TX_DATA_POS ? ',' : 0)))
            return tx_error(err, TX_EINPUT,
                            "%s: metadata data_position: expected %d comma-separated counts",
                            path, TX_DATA_POS);
        s = end + (i + 1 < TX_DATA_POS);
    }
    return TX_OK;
}
