/* tensor.c: shape helpers, the activation arena and the parameter block. */
#include "tensor.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *tx_shape_str(const tx_tensor *t, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < t->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ", %d" : "%d", t->shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

int tx_same_shape(const tx_tensor *a, const tx_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

int tx_last(const tx_tensor *t) { return t->shape[t->ndim - 1]; }
size_t tx_rows(const tx_tensor *t) { return t->size / (size_t)tx_last(t); }

/* ---- arena --------------------------------------------------------------- */

static void push_chunk(tx_arena *a, size_t cap) {
    if (a->n == a->capn) {
        a->capn = a->capn ? 2 * a->capn : 8;
        a->chunks = tx_realloc(a->chunks, (size_t)a->capn * sizeof *a->chunks);
    }
    a->chunks[a->n++] = (tx_arena_chunk){tx_malloc_aligned(cap), cap, 0};
    a->mallocs++;
}

void *tx_arena_alloc(tx_arena *a, size_t bytes) {
    bytes = (bytes + 63) & ~(size_t)63;
    tx_arena_chunk *c = a->n ? &a->chunks[a->n - 1] : NULL;
    if (!c || c->used + bytes > c->cap) {
        /* Grow geometrically so the first step needs few chunks. */
        size_t cap = a->inuse > ((size_t)1 << 20) ? a->inuse : (size_t)1 << 20;
        push_chunk(a, bytes > cap ? bytes : cap);
        c = &a->chunks[a->n - 1];
    }
    void *p = c->base + c->used;
    c->used += bytes;
    a->inuse += bytes;
    if (a->inuse > a->high) a->high = a->inuse;
    return p;
}

void tx_arena_release(tx_arena *a, size_t mark) {
    while (a->inuse > mark) {
        tx_arena_chunk *c = &a->chunks[a->n - 1];
        size_t give = a->inuse - mark < c->used ? a->inuse - mark : c->used;
        c->used -= give;
        a->inuse -= give;
        if (c->used == 0 && a->n > 1) free(c->base), a->n--;
    }
}

void tx_arena_reset(tx_arena *a) {
    if (a->n > 1) {
        for (int i = 0; i < a->n; i++) free(a->chunks[i].base);
        a->n = 0;
        push_chunk(a, a->high);
    }
    if (a->n) a->chunks[0].used = 0;
    a->inuse = 0;
}

void tx_arena_free(tx_arena *a) {
    for (int i = 0; i < a->n; i++) free(a->chunks[i].base);
    free(a->chunks);
    memset(a, 0, sizeof *a);
}

/* ---- parameters ---------------------------------------------------------- */

tx_tensor *tx_params_new(tx_params *p, const char *name, int init, int ndim,
                         ...) {
    TX_ASSERT(!p->data, "tx_params_new(%s): parameters already allocated", name);
    TX_ASSERT(ndim >= 1 && ndim <= TX_MAXDIM,
              "tx_params_new(%s): %d dimensions (1..%d allowed)", name, ndim,
              TX_MAXDIM);
    TX_ASSERT(!tx_params_find(p, name), "tx_params_new: duplicate name %s", name);
    tx_tensor *t = tx_calloc(1, sizeof *t);
    t->name = tx_strdup(name);
    t->ndim = ndim;
    t->size = 1;
    va_list ap;
    va_start(ap, ndim);
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = va_arg(ap, int);
        TX_ASSERT(t->shape[i] > 0, "tx_params_new(%s): dimension %d is %d",
                  name, i, t->shape[i]);
        t->size *= (size_t)t->shape[i];
    }
    va_end(ap);
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 64;
        p->list = tx_realloc(p->list, (size_t)p->cap * sizeof *p->list);
        p->init = tx_realloc(p->init, (size_t)p->cap);
    }
    p->init[p->n] = (unsigned char)init;
    p->list[p->n++] = t;
    p->size += t->size;
    return t;
}

void tx_params_alloc(tx_params *p) {
    TX_ASSERT(!p->data, "tx_params_alloc: already allocated");
    size_t bytes = (p->size ? p->size : 1) * sizeof(tx_real);
    p->data = tx_malloc_aligned(bytes);
    p->grad = tx_malloc_aligned(bytes);
    memset(p->data, 0, bytes);
    memset(p->grad, 0, bytes);
    size_t off = 0;
    for (int i = 0; i < p->n; i++) {
        p->list[i]->data = p->data + off;
        p->list[i]->grad_set = 1; /* gradients accumulate across micro-batches */
        off += p->list[i]->size;
    }
    tx_params_grad_into(p, NULL);
}

void tx_params_init(tx_params *p, tx_rng *rng) {
    for (int i = 0; i < p->n; i++) {
        tx_tensor *t = p->list[i];
        double bound = 0;
        if (p->init[i] == TX_INIT_XAVIER) {
            int fan_out = t->shape[0];
            int fan_in = t->ndim > 1 ? (int)(t->size / (size_t)t->shape[0]) : 1;
            bound = sqrt(6.0 / (fan_in + fan_out));
        }
        for (size_t j = 0; j < t->size; j++) {
            switch (p->init[i]) {
            case TX_INIT_ZERO: t->data[j] = 0; break;
            case TX_INIT_ONE: t->data[j] = 1; break;
            case TX_INIT_XAVIER:
                t->data[j] = (tx_real)((2 * tx_rng_uniform(rng) - 1) * bound);
                break;
            default: t->data[j] = (tx_real)tx_rng_normal(rng); break;
            }
        }
    }
}

void tx_params_zero_grad(tx_params *p) {
    tx_zero(p->grad, p->size);
    for (int i = 0; i < p->n; i++) p->list[i]->grad_set = 1;
}

void tx_params_grad_begin(tx_params *p) {
    for (int i = 0; i < p->n; i++) p->list[i]->grad_set = 0;
}

void tx_params_grad_into(tx_params *p, tx_real *buf) {
    size_t off = 0;
    for (int i = 0; i < p->n; i++) {
        p->list[i]->grad = (buf ? buf : p->grad) + off;
        off += p->list[i]->size;
    }
}

void tx_params_grad_end(tx_params *p) {
    for (int i = 0; i < p->n; i++)
        if (!p->list[i]->grad_set) tx_zero(p->list[i]->grad, p->list[i]->size);
    for (int i = 0; i < p->n; i++) p->list[i]->grad_set = 1;
}

tx_tensor *tx_params_find(const tx_params *p, const char *name) {
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->list[i]->name, name)) return p->list[i];
    return NULL;
}

void tx_params_free(tx_params *p) {
    for (int i = 0; i < p->n; i++) {
        free((char *)p->list[i]->name);
        free(p->list[i]);
    }
    free(p->list);
    free(p->init);
    free(p->data);
    free(p->grad);
    memset(p, 0, sizeof *p);
}
