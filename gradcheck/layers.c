/* layers.c: the gradient checks of every layer and of tiny whole models.
 * Each row declares a layer and its inputs as leaves, with odd small sizes so
 * the whole set runs in seconds; the sizes are the row's d[], named per
 * section. Masks mix causal and padding so every branch is reached. */
#include "cases.h"

#define PROJECT(tp, t) tx_gc_project(tp, t, 7)
#define CTX(v) tx_gc_ctx *c = (v)

static void inputs(tx_gc_ctx *c, int B, int T, int Tk, int C) {
    c->x = tx_params_new(&c->p, "x", TX_INIT_ZERO, 3, B, T, C);
    if (Tk) c->mem = tx_params_new(&c->p, "mem", TX_INIT_ZERO, 3, B, Tk, C);
}

/* ---- linear: d = {B, T, in, out} ------------------------------------------ */

static void linear_declare(tx_gc_ctx *c, const tx_gc_row *r) {
    (void)r;
    tx_linear_declare(&c->lin, &c->p, "lin", c->d[2], c->d[3], 1);
    inputs(c, c->d[0], c->d[1], 0, c->d[2]);
}
static tx_tensor *linear(tx_tape *tp, void *v) {
    CTX(v);
    return PROJECT(tp, tx_linear_forward(tp, &c->lin, c->x));
}

/* ---- embedding and positions: d = {positions kind, scale by sqrt(C)} ------- */

static const int ids[] = {1, 4, 1, 0, 6, 4, 4, 2}; /* [2·4], repeats accumulate */

static void embed_declare(tx_gc_ctx *c, const tx_gc_row *r) {
    (void)r;
    tx_embed_declare(&c->emb, &c->p, "emb", 7, 5, c->d[1]);
    tx_positions_declare(&c->pos, &c->p, "pos", c->d[0], 6, 5);
}
static tx_tensor *embed(tx_tape *tp, void *v) {
    CTX(v);
    tx_tensor *x = tx_embed_forward(tp, &c->emb, ids, 2, 4);
    return PROJECT(tp, tx_positions_forward(tp, &c->pos, x));
}

/* ---- feed-forward: d = {activation}, C 5, d_ff 7 on [2, 3, 5] --------------- */

static void ffn_declare(tx_gc_ctx *c, const tx_gc_row *r) {
    (void)r;
    tx_ffn_declare(&c->ffn, &c->p, "ff", 5, 7, c->d[0], 1);
    inputs(c, 2, 3, 0, 5);
}
static tx_tensor *ffn(tx_tape *tp, void *v) {
    CTX(v);
    return PROJECT(tp, tx_ffn_forward(tp, &c->ffn, c->x, 0));
}

/* ---- multi-head attention: d = {C, H, B, Tq, Tk (0: self), causal, key
 * lengths[2] (0: no padding)}; variant 1: attention dropout 0.2 ------------ */

static void mha_declare(tx_gc_ctx *c, const tx_gc_row *r) {
    tx_mha_declare(&c->mha, &c->p, "attn", c->d[0], c->d[1], 1, r->v ? (tx_real)0.2 : 0);
    inputs(c, c->d[2], c->d[3], c->d[4], c->d[0]);
}
static tx_tensor *mha(tx_tape *tp, void *v) {
    CTX(v);
    int B = c->d[2], Tq = c->d[3], Tk = c->d[4] ? c->d[4] : Tq;
    const tx_tensor *mask = tx_mask_make(tp, B, Tq, Tk, c->d[5], c->d[6] ? c->d + 6 : NULL);
    tp->training = 1;
    return PROJECT(tp, tx_mha_forward(tp, &c->mha, c->x, c->mem, mask, NULL, NULL));
}

/* ---- encoder and decoder layers: d = {norm_first}; B 2, padded rows ---------- */

static const int len_a[] = {4, 2}, len_b[] = {5, 3};

static void enc_declare(tx_gc_ctx *c, const tx_gc_row *r) {
    (void)r;
    int nf = c->d[0];
    tx_layer_config lc = {6, 2, 7, nf ? TX_ACT_GELU : TX_ACT_RELU, nf, 1, 0};
    tx_enc_layer_declare(&c->enc, &c->p, "layer", &lc);
    inputs(c, 2, 4, 0, 6);
}
static tx_tensor *enc(tx_tape *tp, void *v) {
    CTX(v);
    const tx_tensor *mask = tx_mask_padding(tp, len_a, 2, 4);
    return PROJECT(tp, tx_enc_layer_forward(tp, &c->enc, c->x, mask, NULL, NULL));
}

static void dec_declare(tx_gc_ctx *c, const tx_gc_row *r) {
    (void)r;
    int nf = c->d[0];
    tx_layer_config lc = {6, 3, 5, nf ? TX_ACT_RELU : TX_ACT_GELU, nf, 1, 0};
    tx_dec_layer_declare(&c->dec, &c->p, "layer", &lc);
    inputs(c, 2, 4, 5, 6);
}
static tx_tensor *dec(tx_tape *tp, void *v) {
    CTX(v);
    const tx_tensor *self = tx_mask_make(tp, 2, 4, 4, 1, len_a);
    const tx_tensor *cross = tx_mask_padding(tp, len_b, 2, 5);
    return PROJECT(tp, tx_dec_layer_forward(tp, &c->dec, c->x, c->mem, self, cross, NULL, NULL, NULL));
}

/* ---- whole models: d = {kind, encoder layers, decoder layers, norm_first,
 * activation, tie_embeddings, positions, dropout in tenths}; C 4, H 2;
 * variant 1: no biases ------------------------------------------------------- */

/* B = 2, Ts = 4, Tt = 3, with padding in the second row of each. */
static const int src[] = {3, 1, 4, 6, 5, 2, 0, 0}, src_len[] = {4, 2};
static const int tgt_in[] = {1, 2, 3, 1, 5, 0}, tgt_out[] = {2, 3, 4, 5, 2, 0},
                 tgt_len[] = {3, 2};

static void model_declare(tx_gc_ctx *c, const tx_gc_row *r) {
    const int *d = c->d;
    tx_model_config cfg = {.kind = d[0], .encoder_layers = d[1], .decoder_layers = d[2],
                           .norm_first = d[3], .activation = d[4], .tie_embeddings = d[5],
                           .positions = d[6], .dropout = d[7] / 10.0,
                           .scale_embeddings = d[0] == TX_ENCODER_DECODER && !d[3],
                           .d_model = 4, .heads = 2, .d_ff = 6, .src_vocab = 7,
                           .tgt_vocab = 6, .max_len = 5, .bias = r->v != 1};
    int rc = tx_model_build(&c->model, &cfg, &c->p, NULL);
    TX_ASSERT(rc == TX_OK, "gradcheck: tiny model config rejected");
}
static tx_tensor *model(tx_tape *tp, void *v) {
    CTX(v);
    /* Fixed per forward: every rerun draws the same dropout masks. */
    tp->training = 1;
    tp->seed = 99;
    return tx_model_loss(tp, &c->model, src, src_len, 4, tgt_in, tgt_out, tgt_len, 3, 2,
                         (tx_real)0.1);
}

#define ROW(name, declare, loss, ...) {name, declare, loss, 0, NULL, {__VA_ARGS__}, 0}
#define ROWV(name, v, declare, loss, ...) {name, declare, loss, v, NULL, {__VA_ARGS__}, 0}
enum { ED = TX_ENCODER_DECODER, DO = TX_DECODER_ONLY, RELU = TX_ACT_RELU, GELU = TX_ACT_GELU,
       SIN = TX_POS_SINUSOIDAL, LEARNED = TX_POS_LEARNED, NONE = TX_POS_NONE };

const tx_gc_row tx_gc_layer_rows[] = {
    ROW("linear", linear_declare, linear, 2, 3, 5, 4),
    ROW("linear", linear_declare, linear, 1, 1, 3, 7),
    ROW("embedding_positions", embed_declare, embed, SIN, 1),
    ROW("embedding_positions", embed_declare, embed, LEARNED, 0),
    ROW("embedding_positions", embed_declare, embed, NONE, 1),
    ROW("ffn_relu", ffn_declare, ffn, RELU),
    ROW("ffn_gelu", ffn_declare, ffn, GELU),
    /*                               C  H  B  Tq Tk causal lengths */
    ROW("mha_self", mha_declare, mha, 6, 2, 2, 3, 0, 0, 3, 2),
    ROW("mha_self", mha_declare, mha, 4, 1, 1, 4, 0, 0, 0, 0),
    ROW("mha_causal", mha_declare, mha, 6, 3, 2, 4, 0, 1, 4, 3),
    ROW("mha_causal", mha_declare, mha, 5, 5, 1, 3, 0, 1, 0, 0),
    ROW("mha_cross", mha_declare, mha, 6, 2, 2, 3, 5, 0, 5, 2),
    ROW("mha_cross", mha_declare, mha, 4, 2, 2, 4, 2, 0, 1, 2),
    ROWV("mha_dropout", 1, mha_declare, mha, 6, 3, 2, 4, 0, 1, 4, 3),
    ROWV("mha_dropout", 1, mha_declare, mha, 6, 2, 2, 3, 5, 0, 5, 2),
    ROW("encoder_layer_post_ln", enc_declare, enc, 0),
    ROW("encoder_layer_pre_ln", enc_declare, enc, 1),
    ROW("decoder_layer_post_ln", dec_declare, dec, 0),
    ROW("decoder_layer_pre_ln", dec_declare, dec, 1),
    /*                                               kind Le Ld nf act tie pos drop */
    ROW("model_encoder_decoder_post_ln", model_declare, model, ED, 1, 2, 0, RELU, 0, SIN, 0),
    ROW("model_encoder_decoder_pre_ln", model_declare, model, ED, 2, 1, 1, GELU, 1, LEARNED, 0),
    ROW("model_decoder_only", model_declare, model, DO, 0, 2, 0, RELU, 1, LEARNED, 0),
    ROW("model_dropout", model_declare, model, ED, 1, 1, 0, RELU, 0, SIN, 3),
    ROWV("model_no_bias", 1, model_declare, model, DO, 0, 2, 1, GELU, 1, LEARNED, 0),
    ROWV("model_no_bias", 1, model_declare, model, ED, 1, 1, 0, RELU, 0, SIN, 0),
    {NULL, NULL, NULL, 0, NULL, {0}, 0},
};
