/* layers.c: linear, embedding, positions, layer norm, feed-forward,
 * multi-head attention and the encoder and decoder layers. */
#include "layers.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define NAME_MAX_LEN 256

/* "prefix.leaf" into buf; returns buf. */
static const char *join(char buf[NAME_MAX_LEN], const char *prefix,
                        const char *leaf) {
    int n = snprintf(buf, NAME_MAX_LEN, "%s.%s", prefix, leaf);
    TX_ASSERT(n < NAME_MAX_LEN, "parameter name too long: %s.%s", prefix, leaf);
    return buf;
}

/* ---- linear ----------------------------------------------------------- */

void tx_linear_declare(tx_linear *l, tx_params *p, const char *prefix, int in,
                       int out, int bias) {
    char name[NAME_MAX_LEN];
    l->weight = tx_params_new(p, join(name, prefix, "weight"), TX_INIT_XAVIER,
                              2, out, in);
    l->bias = bias ? tx_params_new(p, join(name, prefix, "bias"), TX_INIT_ZERO, 1, out) : NULL;
}

tx_tensor *tx_linear_forward(tx_tape *tp, const tx_linear *l, tx_tensor *x) {
    return tx_affine(tp, x, l->weight, l->bias);
}

/* ---- embedding and positions --------------------------------------------- */

void tx_embed_declare(tx_embed *e, tx_params *p, const char *prefix, int V,
                      int C, int scale_by_sqrt_c) {
    char name[NAME_MAX_LEN];
    e->weight = tx_params_new(p, join(name, prefix, "weight"), TX_INIT_XAVIER,
                              2, V, C);
    e->scale = scale_by_sqrt_c ? (tx_real)sqrt((double)C) : 1;
}

tx_tensor *tx_embed_forward(tx_tape *tp, const tx_embed *e, const int *ids,
                            int B, int T) {
    tx_tensor *x = tx_embedding(tp, e->weight, ids, B, T);
    return e->scale == 1 ? x : tx_scale(tp, x, e->scale);
}

void tx_positions_declare(tx_positions *pos, tx_params *p, const char *prefix,
                          int kind, int max_len, int C) {
    TX_ASSERT(kind == TX_POS_SINUSOIDAL || kind == TX_POS_LEARNED ||
                  kind == TX_POS_NONE,
              "tx_positions_declare(%s): unknown kind %d", prefix, kind);
    char name[NAME_MAX_LEN];
    pos->kind = kind;
    pos->max_len = max_len;
    pos->weight = kind == TX_POS_LEARNED
                      ? tx_params_new(p, join(name, prefix, "weight"),
                                      TX_INIT_XAVIER, 2, max_len, C)
                      : NULL;
}

/* The sinusoidal table of positions off[r] + t for R rows ([R, T, C], or
 * [T, C] when R = 1) as a constant; recomputed per forward because T varies
 * and the cost (R·T·C sines) is negligible next to one matmul. */
static tx_tensor *sinusoid(tx_tape *tp, int R, int T, int C, const int *off) {
    tx_tensor *pe = R > 1 ? tx_tensor_new(tp, 0, 3, R, T, C) : tx_tensor_new(tp, 0, 2, T, C);
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++)
            for (int i = 0; i < C; i++) {
                double angle = (t + (off ? off[r] : 0)) / pow(10000.0, (double)(i - i % 2) / C);
                pe->data[((size_t)r * T + t) * C + i] = (tx_real)(i % 2 ? cos(angle) : sin(angle));
            }
    return pe;
}

tx_tensor *tx_positions_forward_at(tx_tape *tp, const tx_positions *pos,
                                   tx_tensor *x, const int *offset) {
    TX_ASSERT(x->ndim == 3, "positions: input has %d dimensions, want [B, T, C]",
              x->ndim);
    int B = x->shape[0], T = x->shape[1], C = x->shape[2], R = offset ? B : 1;
    switch (pos->kind) {
    case TX_POS_SINUSOIDAL: return tx_add(tp, x, sinusoid(tp, R, T, C, offset));
    case TX_POS_LEARNED: {
        /* The ids must outlive the backward pass, so they live on the arena. */
        int *ids = tx_tape_alloc(tp, (size_t)R * T * sizeof *ids);
        for (int r = 0; r < R; r++)
            for (int t = 0; t < T; t++) {
                ids[r * T + t] = t + (offset ? offset[r] : 0);
                TX_ASSERT(ids[r * T + t] < pos->max_len,
                          "positions: position %d exceeds the table's max_len %d",
                          ids[r * T + t], pos->max_len);
            }
        tx_tensor *pe = tx_embedding(tp, pos->weight, ids, R, T);
        return tx_add(tp, x, R > 1 ? pe : tx_reshape(tp, pe, 2, T, C));
    }
    default: return x;
    }
}

tx_tensor *tx_positions_forward(tx_tape *tp, const tx_positions *pos, tx_tensor *x) {
    return tx_positions_forward_at(tp, pos, x, NULL);
}

/* ---- layer norm and feed-forward ----------------------------------------- */

void tx_norm_declare(tx_norm *n, tx_params *p, const char *prefix, int C, int bias) {
    char name[NAME_MAX_LEN];
    n->weight = tx_params_new(p, join(name, prefix, "weight"), TX_INIT_ONE, 1, C);
    n->bias = bias ? tx_params_new(p, join(name, prefix, "bias"), TX_INIT_ZERO, 1, C) : NULL;
}

tx_tensor *tx_norm_forward(tx_tape *tp, const tx_norm *n, tx_tensor *x) {
    return tx_layer_norm(tp, x, n->weight, n->bias, (tx_real)TX_LN_EPS);
}

void tx_ffn_declare(tx_ffn *f, tx_params *p, const char *prefix, int C,
                    int d_ff, int activation, int bias) {
    TX_ASSERT(activation == TX_ACT_RELU || activation == TX_ACT_GELU,
              "tx_ffn_declare(%s): unknown activation %d", prefix, activation);
    char name[NAME_MAX_LEN];
    tx_linear_declare(&f->linear1, p, join(name, prefix, "linear1"), C, d_ff, bias);
    tx_linear_declare(&f->linear2, p, join(name, prefix, "linear2"), d_ff, C, bias);
    f->activation = activation;
}

tx_tensor *tx_ffn_forward(tx_tape *tp, const tx_ffn *f, tx_tensor *x,
                          tx_real dropout) {
    tx_tensor *h = tx_linear_forward(tp, &f->linear1, x);
    h = f->activation == TX_ACT_GELU ? tx_gelu(tp, h) : tx_relu(tp, h);
    return tx_linear_forward(tp, &f->linear2, tx_dropout(tp, h, dropout));
}

/* ---- multi-head attention -------------------------------------------------- */

void tx_mha_declare(tx_mha *a, tx_params *p, const char *prefix, int C,
                    int heads, int bias, tx_real dropout) {
    TX_ASSERT(heads > 0 && C % heads == 0,
              "tx_mha_declare(%s): %d heads do not divide C = %d", prefix,
              heads, C);
    char name[NAME_MAX_LEN];
    a->in_proj_weight = tx_params_new(p, join(name, prefix, "in_proj_weight"),
                                      TX_INIT_XAVIER, 2, 3 * C, C);
    a->in_proj_bias = bias ? tx_params_new(p, join(name, prefix, "in_proj_bias"),
                                           TX_INIT_ZERO, 1, 3 * C)
                           : NULL;
    tx_linear_declare(&a->out_proj, p, join(name, prefix, "out_proj"), C, C, bias);
    a->heads = heads;
    a->dropout = dropout;
}

/* Third `block` (0 q, 1 k, 2 v) of w [3C, ...] along its first dimension: a
 * view sharing w's data and gradient, so gradients land in w in place. A
 * view of a part cannot assign the whole on a first write, so w's gradient
 * is made to hold values (zeroed if it held none) before any view writes. */
static tx_tensor *third(tx_tape *tp, tx_tensor *w, int block) {
    if (!w) return NULL;
    if (w->grad && !tp->no_grad) tx_grad_prepare(w);
    tx_tensor *v = tx_tape_alloc(tp, sizeof *v);
    *v = *w;
    v->base = (tx_tensor *)w; /* a parameter: its gradient is always set */
    v->name = NULL;
    v->shape[0] = w->shape[0] / 3;
    v->size = w->size / 3;
    v->data = w->data + (size_t)block * v->size;
    v->grad = w->grad ? w->grad + (size_t)block * v->size : NULL;
    return v;
}

/* x [B, T, C] projected by block `block` of in_proj: [B, T, C]. */
static tx_tensor *project(tx_tape *tp, const tx_mha *a, int block, tx_tensor *x) {
    tx_linear l = {third(tp, a->in_proj_weight, block),
                   third(tp, a->in_proj_bias, block)};
    return tx_linear_forward(tp, &l, x);
}

/* The same split into heads, [B, H, T, D], for the cache. */
static tx_tensor *project_heads(tx_tape *tp, const tx_mha *a, int block, tx_tensor *x) {
    return tx_split_heads(tp, project(tp, a, block, x), a->heads);
}

/* Heads h [B, H, T, D] into the cache at positions at[b] + 0..T-1 of row b. */
static void cache_put(tx_real *cache, int cap, const tx_tensor *h, const int *at) {
    int B = h->shape[0], H = h->shape[1], T = h->shape[2], D = h->shape[3];
    for (int b = 0; b < B; b++)
        for (int j = 0; j < H; j++) {
            TX_ASSERT((at ? at[b] : 0) + T <= cap, "mha: %d cached positions overflow a cache of %d",
                      (at ? at[b] : 0) + T, cap);
            memcpy(cache + (((size_t)b * H + j) * cap + (at ? at[b] : 0)) * D,
                   h->data + ((size_t)b * H + j) * T * D, (size_t)T * D * sizeof(tx_real));
        }
}

/* Attention of q against the cache, after storing this step's keys and
 * values (self-attention) or the memory's at the first step (cross). */
static tx_tensor *attend_cached(tx_tape *tp, const tx_mha *a, tx_tensor *q, tx_tensor *x,
                                tx_tensor *mem, const tx_tensor *mask, tx_real scale,
                                tx_kv *kv) {
    TX_ASSERT(tp->no_grad, "mha: a key/value cache is for decoding, in no-grad mode");
    int Tk;
    if (kv->pos) { /* self-attention: append the new positions */
        cache_put(kv->k, kv->cap, project_heads(tp, a, 1, x), kv->pos);
        cache_put(kv->v, kv->cap, project_heads(tp, a, 2, x), kv->pos);
        Tk = 0;
        for (int b = 0; b < x->shape[0]; b++)
            Tk = kv->pos[b] + x->shape[1] > Tk ? kv->pos[b] + x->shape[1] : Tk;
    } else { /* cross-attention: the memory, once */
        if (!kv->filled) {
            cache_put(kv->k, kv->cap, project_heads(tp, a, 1, mem), NULL);
            cache_put(kv->v, kv->cap, project_heads(tp, a, 2, mem), NULL);
            kv->filled = mem->shape[1];
        }
        Tk = kv->filled;
    }
    return tx_attention_cached(tp, q, kv->k, kv->v, kv->cap, Tk, mask, scale);
}

tx_tensor *tx_mha_forward(tx_tape *tp, const tx_mha *a, tx_tensor *x,
                          tx_tensor *mem, const tx_tensor *mask,
                          tx_tensor **probs, tx_kv *kv) {
    int C = a->out_proj.weight->shape[0];
    tx_tensor *kx = mem ? mem : x;
    char bx[64], bm[64];
    TX_ASSERT(x->ndim == 3 && x->shape[2] == C && (!mem || (mem->ndim == 3 &&
                  mem->shape[2] == C && mem->shape[0] == x->shape[0])),
              "mha: x %s and memory %s, want [B, Tq, %d] and [B, Tk, %d]",
              tx_shape_str(x, bx, sizeof bx), tx_shape_str(kx, bm, sizeof bm),
              C, C);
    tx_real scale = (tx_real)(1 / sqrt((double)(C / a->heads)));
    tx_tensor *o;
    if (kv) {
        o = tx_merge_heads(tp, attend_cached(tp, a, project_heads(tp, a, 0, x), x, mem, mask,
                                             scale, kv));
    } else {
        tx_tensor *q = project(tp, a, 0, x), *k = project(tp, a, 1, kx), *v = project(tp, a, 2, kx);
        o = tx_attention_heads(tp, q, k, v, a->heads, mask, scale, a->dropout, probs);
    }
    return tx_linear_forward(tp, &a->out_proj, o);
}

/* ---- encoder and decoder layers -------------------------------------------- */

/* A sublayer's input: norm(x) in pre-LN, x itself in post-LN. */
static tx_tensor *sub_in(tx_tape *tp, int norm_first, const tx_norm *n,
                         tx_tensor *x) {
    return norm_first ? tx_norm_forward(tp, n, x) : x;
}

/* The residual connection around sublayer output y: x + dropout(y), followed
 * by the norm in post-LN. */
static tx_tensor *sub_out(tx_tape *tp, int norm_first, const tx_norm *n,
                          tx_tensor *x, tx_tensor *y, tx_real dropout) {
    tx_tensor *r = tx_add(tp, x, tx_dropout(tp, y, dropout));
    return norm_first ? r : tx_norm_forward(tp, n, r);
}

void tx_enc_layer_declare(tx_enc_layer *l, tx_params *p, const char *prefix,
                          const tx_layer_config *c) {
    char name[NAME_MAX_LEN];
    tx_mha_declare(&l->self_attn, p, join(name, prefix, "self_attn"), c->C, c->heads,
                   c->bias, c->dropout);
    tx_ffn_declare(&l->ffn, p, prefix, c->C, c->d_ff, c->activation, c->bias);
    tx_norm_declare(&l->norm1, p, join(name, prefix, "norm1"), c->C, c->bias);
    tx_norm_declare(&l->norm2, p, join(name, prefix, "norm2"), c->C, c->bias);
    l->norm_first = c->norm_first;
    l->dropout = c->dropout;
}

tx_tensor *tx_enc_layer_forward(tx_tape *tp, const tx_enc_layer *l,
                                tx_tensor *x, const tx_tensor *mask,
                                tx_tensor **probs, tx_kv *kv) {
    int nf = l->norm_first;
    tx_tensor *y = tx_mha_forward(tp, &l->self_attn, sub_in(tp, nf, &l->norm1, x),
                                  NULL, mask, probs, kv);
    x = sub_out(tp, nf, &l->norm1, x, y, l->dropout);
    y = tx_ffn_forward(tp, &l->ffn, sub_in(tp, nf, &l->norm2, x), l->dropout);
    return sub_out(tp, nf, &l->norm2, x, y, l->dropout);
}

void tx_dec_layer_declare(tx_dec_layer *l, tx_params *p, const char *prefix,
                          const tx_layer_config *c) {
    char name[NAME_MAX_LEN];
    tx_mha_declare(&l->self_attn, p, join(name, prefix, "self_attn"), c->C, c->heads,
                   c->bias, c->dropout);
    tx_mha_declare(&l->multihead_attn, p, join(name, prefix, "multihead_attn"),
                   c->C, c->heads, c->bias, c->dropout);
    tx_ffn_declare(&l->ffn, p, prefix, c->C, c->d_ff, c->activation, c->bias);
    tx_norm_declare(&l->norm1, p, join(name, prefix, "norm1"), c->C, c->bias);
    tx_norm_declare(&l->norm2, p, join(name, prefix, "norm2"), c->C, c->bias);
    tx_norm_declare(&l->norm3, p, join(name, prefix, "norm3"), c->C, c->bias);
    l->norm_first = c->norm_first;
    l->dropout = c->dropout;
}

tx_tensor *tx_dec_layer_forward(tx_tape *tp, const tx_dec_layer *l,
                                tx_tensor *x, tx_tensor *memory,
                                const tx_tensor *self_mask,
                                const tx_tensor *mem_mask,
                                tx_tensor **self_probs,
                                tx_tensor **cross_probs, tx_kv *kv) {
    int nf = l->norm_first;
    tx_tensor *y = tx_mha_forward(tp, &l->self_attn, sub_in(tp, nf, &l->norm1, x),
                                  NULL, self_mask, self_probs, kv ? &kv[0] : NULL);
    x = sub_out(tp, nf, &l->norm1, x, y, l->dropout);
    y = tx_mha_forward(tp, &l->multihead_attn, sub_in(tp, nf, &l->norm2, x),
                       memory, mem_mask, cross_probs, kv ? &kv[1] : NULL);
    x = sub_out(tp, nf, &l->norm2, x, y, l->dropout);
    y = tx_ffn_forward(tp, &l->ffn, sub_in(tp, nf, &l->norm3, x), l->dropout);
    return sub_out(tp, nf, &l->norm3, x, y, l->dropout);
}
