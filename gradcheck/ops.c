/* ops.c: the gradient checks of every core op. Each loss below runs one op on
 * the row's leaves (c->in[], declared from the row's shapes) and projects the
 * output onto a fixed random tensor, so every element's gradient differs. */
#include "cases.h"

#define PROJECT(tp, t) tx_gc_project(tp, t, 7)
#define CTX(v) tx_gc_ctx *c = (v)

/* variant 1: a and b used again later (a mul), so the add's backward adds
 * to gradients that hold values, and the outer add's b is an op output */
static tx_tensor *add(tx_tape *tp, void *v) {
    CTX(v);
    tx_tensor *y = tx_add(tp, c->in[0], c->in[1]);
    if (c->v) y = tx_add(tp, y, tx_mul(tp, c->in[0], c->in[1]));
    return PROJECT(tp, y);
}
static tx_tensor *sub(tx_tape *tp, void *v) {
    CTX(v);
    return PROJECT(tp, tx_sub(tp, c->in[0], c->in[1]));
}
static tx_tensor *mul(tx_tape *tp, void *v) {
    CTX(v);
    return PROJECT(tp, tx_mul(tp, c->in[0], c->in[1]));
}
static tx_tensor *scale(tx_tape *tp, void *v) {
    CTX(v);
    return PROJECT(tp, tx_scale(tp, c->in[0], (tx_real)-1.7));
}
/* variant: bit 0 transposes a, bit 1 transposes b */
static tx_tensor *matmul(tx_tape *tp, void *v) {
    CTX(v);
    return PROJECT(tp, tx_matmul(tp, c->in[0], c->in[1], c->v & 1, c->v >> 1 & 1));
}
/* variant 1: no bias */
static tx_tensor *affine(tx_tape *tp, void *v) {
    CTX(v);
    return PROJECT(tp, tx_affine(tp, c->in[0], c->in[1], c->v ? NULL : c->in[2]));
}
static tx_tensor *relu(tx_tape *tp, void *v) {
    CTX(v);
    return PROJECT(tp, tx_relu(tp, c->in[0]));
}
static tx_tensor *gelu(tx_tape *tp, void *v) {
    CTX(v);
    return PROJECT(tp, tx_gelu(tp, c->in[0]));
}
/* variant 0: no mask; 1: causal [T, T]; 2: key padding [B, 1, 1, Tk] with
 * the second batch item fully padded; 3: both, [B, 1, Tq, Tk] */
static tx_tensor *softmax(tx_tape *tp, void *v) {
    CTX(v);
    tx_tensor *x = c->in[0];
    int B = x->ndim == 4 ? x->shape[0] : 1, Tq = x->shape[x->ndim - 2], Tk = tx_last(x);
    static const int lengths[2] = {3, 0};
    tx_tensor *m = c->v == 1 ? tx_mask_causal(tp, Tq, Tk)
                 : c->v == 2 ? tx_mask_padding(tp, lengths, B, Tk)
                 : c->v == 3 ? tx_mask_make(tp, B, Tq, Tk, 1, lengths)
                             : NULL;
    return PROJECT(tp, tx_softmax(tp, x, m));
}
static tx_tensor *log_softmax(tx_tape *tp, void *v) {
    CTX(v);
    return PROJECT(tp, tx_log_softmax(tp, c->in[0]));
}
/* variant 1: label smoothing 0.1; both ignore the rows whose target is 0 */
static tx_tensor *cross_entropy(tx_tape *tp, void *v) {
    CTX(v);
    static const int targets[6] = {2, 0, 4, 1, 0, 3};
    return tx_cross_entropy(tp, c->in[0], targets, 0, c->v ? (tx_real)0.1 : 0);
}
/* variant 1: x used again later (a mul), so the backward adds to dx */
static tx_tensor *layer_norm(tx_tape *tp, void *v) {
    CTX(v);
    tx_tensor *y = tx_layer_norm(tp, c->in[0], c->in[1], c->in[2], (tx_real)1e-5);
    if (c->v) y = tx_add(tp, y, tx_mul(tp, c->in[0], c->in[0]));
    return PROJECT(tp, y);
}
static tx_tensor *embedding(tx_tape *tp, void *v) {
    CTX(v);
    static const int ids[6] = {4, 1, 4, 0, 2, 1}; /* repeats scatter-add */
    return PROJECT(tp, tx_embedding(tp, c->in[0], ids, 2, 3));
}
static tx_tensor *dropout(tx_tape *tp, void *v) {
    CTX(v);
    return PROJECT(tp, tx_dropout(tp, c->in[0], (tx_real)0.3));
}
/* variant 0: split then merge heads of [B, T, H·D] around a product (so the
 * split layout matters); 1: a general permute {2, 0, 1} of a reshape */
static tx_tensor *heads(tx_tape *tp, void *v) {
    CTX(v);
    if (c->v == 0) {
        tx_tensor *h = tx_split_heads(tp, c->in[0], 3);
        return PROJECT(tp, tx_merge_heads(tp, tx_mul(tp, h, h)));
    }
    tx_tensor *r = tx_reshape(tp, c->in[0], 3, 2, -1, 5);
    return PROJECT(tp, tx_permute(tp, r, (const int[]){2, 0, 1}));
}
/* variant 0: sum, 1: mean, of the squares */
static tx_tensor *sum_mean(tx_tape *tp, void *v) {
    CTX(v);
    tx_tensor *sq = tx_mul(tp, c->in[0], c->in[0]);
    return c->v ? tx_mean(tp, sq) : tx_sum(tp, sq);
}
/* q [B, H, Tq, D], k and v [B, H, Tk, D]. variant 0: no mask; 1: causal with
 * key padding; 2: key padding only (cross-attention shapes); 3: causal with
 * key padding and attention dropout 0.3. Variants 4 to 7: the same with the
 * heads side by side (tx_attention_heads, 2 heads): q [B, Tq, 2·D], k and v
 * [B, Tk, 2·D]. */
static tx_tensor *attention(tx_tape *tp, void *v) {
    CTX(v);
    tx_tensor *q = c->in[0], *k = c->in[1];
    int heads = c->v >= 4, var = c->v % 4, t = heads ? 1 : 2; /* the time dimension */
    static const int lengths[2] = {4, 2};
    tx_tensor *m = var ? tx_mask_make(tp, q->shape[0], q->shape[t], k->shape[t], var != 2,
                                      lengths)
                       : NULL;
    tx_real drop = var == 3 ? (tx_real)0.3 : 0;
    return PROJECT(tp, heads ? tx_attention_heads(tp, q, k, c->in[2], 2, m, (tx_real)0.6, drop,
                                                  NULL)
                             : tx_attention(tp, q, k, c->in[2], m, (tx_real)0.6, drop, NULL));
}

#define ROW(name, v, shapes) {#name, tx_gc_leaves, name, v, shapes, {0}, 0}

const tx_gc_row tx_gc_op_rows[] = {
    ROW(add, 0, "3x5,3x5"),
    ROW(add, 0, "2x3x5,5"),
    ROW(add, 0, "2x3x5,3x5"),
    ROW(add, 1, "4x5,4x5"),
    ROW(sub, 0, "4x3,4x3"),
    ROW(mul, 0, "2x3x5,2x3x5"),
    ROW(scale, 0, "7"),
    /* M 3, K 5, N 4 under every transpose flag: 2-D, batched, shared b */
    ROW(matmul, 0, "3x5,5x4"),     ROW(matmul, 1, "5x3,5x4"),
    ROW(matmul, 2, "3x5,4x5"),     ROW(matmul, 3, "5x3,4x5"),
    ROW(matmul, 0, "2x3x5,2x5x4"), ROW(matmul, 1, "2x5x3,2x5x4"),
    ROW(matmul, 2, "2x3x5,2x4x5"), ROW(matmul, 3, "2x5x3,2x4x5"),
    ROW(matmul, 0, "2x3x3x5,5x4"), ROW(matmul, 1, "2x3x5x3,5x4"),
    ROW(matmul, 2, "2x3x3x5,4x5"), ROW(matmul, 3, "2x3x5x3,4x5"),
    ROW(affine, 0, "3x5,4x5,4"),
    ROW(affine, 0, "2x3x5,4x5,4"),
    ROW(affine, 1, "3x5,4x5"),
    ROW(relu, 0, "3x7"),
    {"relu", tx_gc_leaves, relu, 0, "3x7", {0}, 1}, /* an element on the kink */
    ROW(gelu, 0, "3x7"),
    ROW(softmax, 0, "3x5"),
    ROW(softmax, 1, "2x4x4"),
    ROW(softmax, 2, "2x3x2x5"),
    ROW(softmax, 3, "2x2x3x5"),
    ROW(softmax, 0, "2x19"), /* rows past the kernels' 8 and 16 lanes, and a tail */
    ROW(softmax, 3, "2x1x9x19"),
    ROW(log_softmax, 0, "3x5"),
    ROW(log_softmax, 0, "2x2x7"),
    ROW(cross_entropy, 0, "6x5"),
    ROW(cross_entropy, 1, "2x3x5"),
    ROW(layer_norm, 0, "3x5,5,5"),
    ROW(layer_norm, 0, "2x3x4,4"), /* no bias */
    ROW(layer_norm, 0, "2x19,19,19"), /* rows past the 8 lanes, and a tail */
    ROW(layer_norm, 0, "2x35x3,3,3"), /* 70 rows: two chunks of dw and db */
    ROW(layer_norm, 0, "10x16,16"), /* a block of 8 rows and 2 more, whole vectors */
    ROW(layer_norm, 1, "3x4x19,19,19"), /* dx added; 8 rows and 4 more, a tail */
    ROW(embedding, 0, "5x3"),
    ROW(dropout, 0, "4x9"),
    {"reshape_permute", tx_gc_leaves, heads, 0, "2x3x6", {0}, 0},
    {"reshape_permute", tx_gc_leaves, heads, 1, "6x5", {0}, 0},
    ROW(sum_mean, 0, "3x4"),
    ROW(sum_mean, 1, "2x5"),
    ROW(attention, 0, "1x2x3x3,1x2x3x3,1x2x3x3"),
    ROW(attention, 1, "2x2x4x3,2x2x4x3,2x2x4x3"),
    ROW(attention, 2, "2x1x3x5,2x1x5x5,2x1x5x5"),
    ROW(attention, 3, "2x2x4x3,2x2x4x3,2x2x4x3"),
    ROW(attention, 0, "1x2x5x3,1x2x17x3,1x2x17x3"), /* rows of 17 keys */
    {"attention_heads", tx_gc_leaves, attention, 4, "1x3x6,1x3x6,1x3x6", {0}, 0},
    {"attention_heads", tx_gc_leaves, attention, 5, "2x4x6,2x4x6,2x4x6", {0}, 0},
    {"attention_heads", tx_gc_leaves, attention, 6, "2x3x4,2x5x4,2x5x4", {0}, 0},
    {"attention_heads", tx_gc_leaves, attention, 7, "2x4x6,2x4x6,2x4x6", {0}, 0},
    {NULL, NULL, NULL, 0, NULL, {0}, 0},
};
