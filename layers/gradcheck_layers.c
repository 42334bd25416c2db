/* gradcheck_layers.c: gradient checks of every layer and of tiny whole models
 * (tx_gc_layer_cases). Sizes are odd and small so the set runs in seconds. */
#include "model.h"

#define PROJ_SEED 7
#define LEAF_SEED 1234

/* One check: the leaves (parameters and float inputs) and whichever layer
 * the case exercises. */
typedef struct gc_ctx {
    tx_params p;
    tx_tensor *x, *mem;       /* inputs [B, T, C] and [B, Tk, C] */
    const int *len, *mem_len; /* key lengths [B] or NULL */
    int causal;
    tx_linear lin;
    tx_embed emb;
    tx_positions pos;
    const int *ids; /* [B·T] */
    int B, T;
    tx_ffn ffn;
    tx_mha mha;
    tx_enc_layer enc;
    tx_dec_layer dec;
    tx_model model;
    const int *src, *tgt_in, *tgt_out, *tgt_len; /* model cases */
    int Ts;
} gc_ctx;

static void inputs(gc_ctx *c, int B, int T, int Tk, int C) {
    c->x = tx_params_new(&c->p, "x", TX_INIT_ZERO, 3, B, T, C);
    if (Tk) c->mem = tx_params_new(&c->p, "mem", TX_INIT_ZERO, 3, B, Tk, C);
}

static void check(gc_ctx *c, tx_gc_fn fn, tx_gc_stats *st) {
    tx_params_alloc(&c->p);
    tx_gc_randomize(&c->p, LEAF_SEED);
    tx_gradcheck(&c->p, fn, c, st);
    tx_params_free(&c->p);
}

/* ---- linear, embedding + positions, FFN ---------------------------------- */

static tx_tensor *linear_fn(tx_tape *tp, void *v) {
    gc_ctx *c = v;
    return tx_gc_project(tp, tx_linear_forward(tp, &c->lin, c->x), PROJ_SEED);
}

static void run_linear(tx_gc_stats *st) {
    static const int sizes[][4] = {{2, 3, 5, 4}, {1, 1, 3, 7}}; /* B T in out */
    for (int s = 0; s < 2; s++) {
        gc_ctx c = {0};
        tx_linear_declare(&c.lin, &c.p, "lin", sizes[s][2], sizes[s][3]);
        inputs(&c, sizes[s][0], sizes[s][1], 0, sizes[s][2]);
        check(&c, linear_fn, st);
    }
}

static tx_tensor *embed_fn(tx_tape *tp, void *v) {
    gc_ctx *c = v;
    tx_tensor *x = tx_embed_forward(tp, &c->emb, c->ids, c->B, c->T);
    return tx_gc_project(tp, tx_positions_forward(tp, &c->pos, x), PROJ_SEED);
}

static void run_embed(tx_gc_stats *st) {
    static const int ids[] = {1, 4, 1, 0, 6, 4, 4, 2}; /* repeats accumulate */
    static const int kinds[] = {TX_POS_SINUSOIDAL, TX_POS_LEARNED, TX_POS_NONE};
    for (int s = 0; s < 3; s++) {
        gc_ctx c = {.ids = ids, .B = 2, .T = 4};
        tx_embed_declare(&c.emb, &c.p, "emb", 7, 5, s != 1);
        tx_positions_declare(&c.pos, &c.p, "pos", kinds[s], 6, 5);
        check(&c, embed_fn, st);
    }
}

static tx_tensor *ffn_fn(tx_tape *tp, void *v) {
    gc_ctx *c = v;
    return tx_gc_project(tp, tx_ffn_forward(tp, &c->ffn, c->x, 0), PROJ_SEED);
}

static void run_ffn(int activation, tx_gc_stats *st) {
    gc_ctx c = {0};
    tx_ffn_declare(&c.ffn, &c.p, "ff", 5, 7, activation);
    inputs(&c, 2, 3, 0, 5);
    check(&c, ffn_fn, st);
}
static void run_ffn_relu(tx_gc_stats *st) { run_ffn(TX_ACT_RELU, st); }
static void run_ffn_gelu(tx_gc_stats *st) { run_ffn(TX_ACT_GELU, st); }

/* ---- attention and layers -------------------------------------------------- */

static tx_tensor *mha_fn(tx_tape *tp, void *v) {
    gc_ctx *c = v;
    int B = c->x->shape[0], Tq = c->x->shape[1];
    int Tk = c->mem ? c->mem->shape[1] : Tq;
    const tx_tensor *mask = tx_mask_make(tp, B, Tq, Tk, c->causal, c->len);
    return tx_gc_project(tp, tx_mha_forward(tp, &c->mha, c->x, c->mem, mask, NULL),
                         PROJ_SEED);
}

/* C, H, B, Tq, Tk (0: self-attention), causal, lengths of the keys */
typedef struct mha_shape {
    int C, H, B, Tq, Tk, causal;
    int len[2];
} mha_shape;

static void run_mha(const mha_shape *s, int n, tx_gc_stats *st) {
    for (int i = 0; i < n; i++) {
        gc_ctx c = {.causal = s[i].causal, .len = s[i].len[0] ? s[i].len : NULL};
        tx_mha_declare(&c.mha, &c.p, "attn", s[i].C, s[i].H);
        inputs(&c, s[i].B, s[i].Tq, s[i].Tk, s[i].C);
        check(&c, mha_fn, st);
    }
}

static void run_mha_self(tx_gc_stats *st) {
    static const mha_shape s[] = {{6, 2, 2, 3, 0, 0, {3, 2}},
                                  {4, 1, 1, 4, 0, 0, {0}}};
    run_mha(s, 2, st);
}
static void run_mha_causal(tx_gc_stats *st) {
    static const mha_shape s[] = {{6, 3, 2, 4, 0, 1, {4, 3}},
                                  {5, 5, 1, 3, 0, 1, {0}}};
    run_mha(s, 2, st);
}
static void run_mha_cross(tx_gc_stats *st) {
    static const mha_shape s[] = {{6, 2, 2, 3, 5, 0, {5, 2}},
                                  {4, 2, 2, 4, 2, 0, {1, 2}}};
    run_mha(s, 2, st);
}

static const int len_a[] = {4, 2}, len_b[] = {5, 3};

static tx_tensor *enc_fn(tx_tape *tp, void *v) {
    gc_ctx *c = v;
    const tx_tensor *mask = tx_mask_padding(tp, c->len, 2, c->x->shape[1]);
    return tx_gc_project(tp, tx_enc_layer_forward(tp, &c->enc, c->x, mask, NULL),
                         PROJ_SEED);
}

static void run_enc(int norm_first, tx_gc_stats *st) {
    gc_ctx c = {.len = len_a};
    tx_enc_layer_declare(&c.enc, &c.p, "layer", 6, 2, 7,
                         norm_first ? TX_ACT_GELU : TX_ACT_RELU, norm_first, 0);
    inputs(&c, 2, 4, 0, 6);
    check(&c, enc_fn, st);
}
static void run_enc_post(tx_gc_stats *st) { run_enc(0, st); }
static void run_enc_pre(tx_gc_stats *st) { run_enc(1, st); }

static tx_tensor *dec_fn(tx_tape *tp, void *v) {
    gc_ctx *c = v;
    int Tt = c->x->shape[1], Ts = c->mem->shape[1];
    const tx_tensor *self = tx_mask_make(tp, 2, Tt, Tt, 1, c->len);
    const tx_tensor *cross = tx_mask_padding(tp, c->mem_len, 2, Ts);
    tx_tensor *y = tx_dec_layer_forward(tp, &c->dec, c->x, c->mem, self, cross,
                                        NULL, NULL);
    return tx_gc_project(tp, y, PROJ_SEED);
}

static void run_dec(int norm_first, tx_gc_stats *st) {
    gc_ctx c = {.len = len_a, .mem_len = len_b};
    tx_dec_layer_declare(&c.dec, &c.p, "layer", 6, 3, 5,
                         norm_first ? TX_ACT_RELU : TX_ACT_GELU, norm_first, 0);
    inputs(&c, 2, 4, 5, 6);
    check(&c, dec_fn, st);
}
static void run_dec_post(tx_gc_stats *st) { run_dec(0, st); }
static void run_dec_pre(tx_gc_stats *st) { run_dec(1, st); }

/* ---- whole models -------------------------------------------------------- */

/* B = 2, Ts = 4, Tt = 3, with padding in the second row of each. */
static const int src[] = {3, 1, 4, 6, 5, 2, 0, 0}, src_len[] = {4, 2};
static const int tgt_in[] = {1, 2, 3, 1, 5, 0}, tgt_out[] = {2, 3, 4, 5, 2, 0},
                 tgt_len[] = {3, 2};

static tx_tensor *model_fn(tx_tape *tp, void *v) {
    gc_ctx *c = v;
    /* Fixed per forward: every rerun draws the same dropout masks. */
    tp->training = 1;
    tp->seed = 99;
    return tx_model_loss(tp, &c->model, src, src_len, 4, tgt_in, tgt_out,
                         tgt_len, 3, 2, (tx_real)0.1);
}

static void run_model(tx_model_config cfg, tx_gc_stats *st) {
    gc_ctx c = {0};
    cfg.d_model = 4;
    cfg.heads = 2;
    cfg.d_ff = 6;
    cfg.src_vocab = 7;
    cfg.tgt_vocab = 6;
    cfg.max_len = 5;
    int rc = tx_model_build(&c.model, &cfg, &c.p, NULL);
    TX_ASSERT(rc == TX_OK, "gradcheck: tiny model config rejected");
    check(&c, model_fn, st);
}

static void run_model_post(tx_gc_stats *st) {
    run_model((tx_model_config){.kind = TX_ENCODER_DECODER, .encoder_layers = 1,
                                .decoder_layers = 2, .scale_embeddings = 1,
                                .positions = TX_POS_SINUSOIDAL},
              st);
}
static void run_model_pre(tx_gc_stats *st) {
    run_model((tx_model_config){.kind = TX_ENCODER_DECODER, .encoder_layers = 2,
                                .decoder_layers = 1, .norm_first = 1,
                                .activation = TX_ACT_GELU, .tie_embeddings = 1,
                                .positions = TX_POS_LEARNED},
              st);
}
static void run_model_gpt(tx_gc_stats *st) {
    run_model((tx_model_config){.kind = TX_DECODER_ONLY, .decoder_layers = 2,
                                .positions = TX_POS_LEARNED,
                                .tie_embeddings = 1},
              st);
}
static void run_model_dropout(tx_gc_stats *st) {
    run_model((tx_model_config){.kind = TX_ENCODER_DECODER, .encoder_layers = 1,
                                .decoder_layers = 1, .dropout = 0.3,
                                .positions = TX_POS_SINUSOIDAL},
              st);
}

const tx_gc_case tx_gc_layer_cases[] = {
    {"linear", run_linear},
    {"embedding_positions", run_embed},
    {"ffn_relu", run_ffn_relu},
    {"ffn_gelu", run_ffn_gelu},
    {"mha_self", run_mha_self},
    {"mha_causal", run_mha_causal},
    {"mha_cross", run_mha_cross},
    {"encoder_layer_post_ln", run_enc_post},
    {"encoder_layer_pre_ln", run_enc_pre},
    {"decoder_layer_post_ln", run_dec_post},
    {"decoder_layer_pre_ln", run_dec_pre},
    {"model_encoder_decoder_post_ln", run_model_post},
    {"model_encoder_decoder_pre_ln", run_model_pre},
    {"model_decoder_only", run_model_gpt},
    {"model_dropout", run_model_dropout},
    {NULL, NULL},
};
