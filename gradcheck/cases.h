/* cases.h: the gradient checks that `tapeformer gradcheck` and the tests run,
 * kept out of the library: every op (ops.c), every layer and tiny whole
 * models (layers.c), each a table of rows. A case is a name; each of its
 * rows declares leaves of some shapes and checks one loss built from them. */
#ifndef TX_GC_CASES_H
#define TX_GC_CASES_H

#include "../core/gradcheck.h"
#include "../layers/model.h"

/* What one row's loss reads: the leaves (data checked by finite differences)
 * and whichever layer the row declared on them. */
typedef struct tx_gc_ctx {
    tx_params p;              /* every leaf: inputs and layer parameters */
    tx_tensor *in[4];         /* op rows: the leaves, in the order of `shapes` */
    int v;                    /* the row's variant */
    const int *d;             /* the row's sizes */
    tx_tensor *x, *mem;       /* layer rows: inputs [B, T, C] and [B, Tk, C] */
    tx_linear lin;
    tx_embed emb;
    tx_positions pos;
    tx_ffn ffn;
    tx_mha mha;
    tx_enc_layer enc;
    tx_dec_layer dec;
    tx_model model;
} tx_gc_ctx;

typedef struct tx_gc_row {
    const char *name; /* the case the row belongs to */
    /* Declares the leaves into c->p (op rows: gc_leaves, from `shapes`). */
    void (*declare)(tx_gc_ctx *c, const struct tx_gc_row *r);
    tx_gc_fn loss;    /* the loss from the leaves (ctx is the tx_gc_ctx) */
    int v;            /* variant: its meaning is the loss function's */
    const char *shapes; /* op rows: leaf shapes, "2x3x5,5" is [2, 3, 5] and [5] */
    int d[8];         /* layer rows: sizes, named where the table is */
    int kink;         /* put leaf element 0 exactly at 0 (relu's kink) */
} tx_gc_row;

/* The tables, each ending with a row whose name is NULL. */
extern const tx_gc_row tx_gc_op_rows[], tx_gc_layer_rows[];

/* Declares one leaf per shape of r->shapes, named x0, x1, ... */
void tx_gc_leaves(tx_gc_ctx *c, const tx_gc_row *r);

/* Runs every row of case `name` into st; returns the rows run (0: no such
 * case). */
int tx_gc_run(const char *name, tx_gc_stats *st);
/* The i-th case name of table (NULL: of both, ops first), NULL past the end. */
const char *tx_gc_case_name(const tx_gc_row *table, int i);

#endif
