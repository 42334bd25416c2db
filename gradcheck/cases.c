/* cases.c: running the rows of a case, and the case names. */
#include "cases.h"

#include <stdlib.h>
#include <string.h>

static const tx_gc_row *const tables[] = {tx_gc_op_rows, tx_gc_layer_rows};
#define NTABLES (int)(sizeof tables / sizeof *tables)

void tx_gc_leaves(tx_gc_ctx *c, const tx_gc_row *r) {
    const char *spec = r->shapes;
    for (int k = 0; *spec && k < 4; k++) {
        int d[TX_MAXDIM] = {0}, nd = 0;
        while (*spec && *spec != ',' && nd < TX_MAXDIM) {
            d[nd++] = (int)strtol(spec, (char **)&spec, 10);
            if (*spec == 'x') spec++;
        }
        if (*spec == ',') spec++;
        char name[8] = {'x', (char)('0' + k), 0};
        c->in[k] = tx_params_new(&c->p, name, TX_INIT_ZERO, nd, d[0], d[1], d[2], d[3]);
    }
}

static void run_row(const tx_gc_row *r, tx_gc_stats *st) {
    tx_gc_ctx c;
    memset(&c, 0, sizeof c);
    c.v = r->v;
    c.d = r->d;
    r->declare(&c, r);
    tx_params_alloc(&c.p);
    tx_gc_randomize(&c.p, 1000 + (uint64_t)r->v + c.p.size);
    if (r->kink) c.p.data[0] = 0;
    tx_gradcheck(&c.p, r->loss, &c, st);
    tx_params_free(&c.p);
}

int tx_gc_run(const char *name, tx_gc_stats *st) {
    int n = 0;
    for (int t = 0; t < NTABLES; t++)
        for (const tx_gc_row *r = tables[t]; r->name; r++)
            if (!strcmp(r->name, name)) run_row(r, st), n++;
    return n;
}

const char *tx_gc_case_name(const tx_gc_row *table, int i) {
    const char *prev = NULL;
    for (int t = 0; t < NTABLES; t++)
        for (const tx_gc_row *r = tables[t]; r->name && (!table || table == tables[t]); r++) {
            if (prev && !strcmp(prev, r->name)) continue; /* a case's rows are adjacent */
            if (i-- == 0) return r->name;
            prev = r->name;
        }
    return NULL;
}
