/* model.c: building the encoder-decoder and decoder-only models from the
 * layers, and their forward passes (encode, decode, loss). */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAD 0

static int validate(const tx_model_config *c, tx_err *err) {
    int encdec = c->kind == TX_ENCODER_DECODER;
    if (!encdec && c->kind != TX_DECODER_ONLY)
        return tx_error(err, TX_EINPUT, "model: unknown kind %d", c->kind);
    if (c->d_model <= 0 || c->heads <= 0 || c->d_model % c->heads)
        return tx_error(err, TX_EINPUT,
                        "model: heads (%d) must be positive and divide d_model "
                        "(%d)", c->heads, c->d_model);
    if (encdec && (c->encoder_layers < 1 || c->encoder_layers > TX_MAX_LAYERS))
        return tx_error(err, TX_EINPUT, "model: encoder_layers %d, want 1..%d",
                        c->encoder_layers, TX_MAX_LAYERS);
    if (c->decoder_layers < 1 || c->decoder_layers > TX_MAX_LAYERS)
        return tx_error(err, TX_EINPUT, "model: decoder_layers %d, want 1..%d",
                        c->decoder_layers, TX_MAX_LAYERS);
    if (c->d_ff <= 0)
        return tx_error(err, TX_EINPUT, "model: d_ff %d, want > 0", c->d_ff);
    if (c->activation != TX_ACT_RELU && c->activation != TX_ACT_GELU)
        return tx_error(err, TX_EINPUT, "model: unknown activation %d",
                        c->activation);
    if (c->norm_first != 0 && c->norm_first != 1)
        return tx_error(err, TX_EINPUT, "model: norm_first %d, want 0 or 1",
                        c->norm_first);
    if (!(c->dropout >= 0 && c->dropout < 1))
        return tx_error(err, TX_EINPUT, "model: dropout %g, want [0, 1)",
                        c->dropout);
    if (c->positions != TX_POS_SINUSOIDAL && c->positions != TX_POS_LEARNED &&
        c->positions != TX_POS_NONE)
        return tx_error(err, TX_EINPUT, "model: unknown positions %d",
                        c->positions);
    if (c->positions == TX_POS_LEARNED && c->max_len <= 0)
        return tx_error(err, TX_EINPUT,
                        "model: learned positions need max_len > 0, got %d",
                        c->max_len);
    if (c->tgt_vocab <= 0 || (encdec && c->src_vocab <= 0))
        return tx_error(err, TX_EINPUT,
                        "model: vocabulary sizes must be positive (src %d, "
                        "tgt %d)", c->src_vocab, c->tgt_vocab);
    return TX_OK;
}

int tx_model_build(tx_model *m, const tx_model_config *cfg, tx_params *p,
                   tx_err *err) {
    int rc = validate(cfg, err);
    if (rc) return rc;
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    int C = cfg->d_model, encdec = cfg->kind == TX_ENCODER_DECODER;
    tx_layer_config lc = {C, cfg->heads, cfg->d_ff, cfg->activation, cfg->norm_first,
                          cfg->bias, (tx_real)cfg->dropout};
    char name[64];
    if (encdec) {
        tx_embed_declare(&m->src_embed, p, "src_embed", cfg->src_vocab, C,
                         cfg->scale_embeddings);
        tx_positions_declare(&m->src_pos, p, "src_pos", cfg->positions,
                             cfg->max_len, C);
    }
    tx_embed_declare(&m->tgt_embed, p, "tgt_embed", cfg->tgt_vocab, C,
                     cfg->scale_embeddings);
    tx_positions_declare(&m->tgt_pos, p, "tgt_pos", cfg->positions,
                         cfg->max_len, C);
    for (int i = 0; encdec && i < cfg->encoder_layers; i++) {
        snprintf(name, sizeof name, "encoder.layers.%d", i);
        tx_enc_layer_declare(&m->enc[i], p, name, &lc);
    }
    if (encdec) tx_norm_declare(&m->enc_norm, p, "encoder.norm", C, cfg->bias);
    for (int i = 0; i < cfg->decoder_layers; i++) {
        snprintf(name, sizeof name, "decoder.layers.%d", i);
        if (encdec) tx_dec_layer_declare(&m->dec[i], p, name, &lc);
        else tx_enc_layer_declare(&m->gpt[i], p, name, &lc);
    }
    tx_norm_declare(&m->dec_norm, p, "decoder.norm", C, cfg->bias);
    if (cfg->tie_embeddings) {
        m->generator.weight = m->tgt_embed.weight;
        m->generator.bias = cfg->bias ? tx_params_new(p, "generator.bias", TX_INIT_ZERO, 1,
                                                      cfg->tgt_vocab)
                                      : NULL;
    } else {
        tx_linear_declare(&m->generator, p, "generator", C, cfg->tgt_vocab, cfg->bias);
    }
    return TX_OK;
}

/* Counted per op, data and gradient: per layer the q, k, v projections
 * and their head-split copies, the probabilities and their backward
 * scratch, the merged heads, the output projection, the dropouts, the
 * residual adds and norms, the FFN's two products and activation. */
double tx_model_activation_bytes(const tx_model_config *c, int B, int Ts, int Tt) {
    double C = c->d_model, F = c->d_ff, H = c->heads, V = c->tgt_vocab;
    double self = 24 * C + 2 * H * Tt;          /* per position: self-attention block */
    /* per position: feed-forward block (GELU keeps Φ(x) for its backward) */
    double ffn = 8 * C + (c->activation == TX_ACT_GELU ? 4 : 3) * F;
    double elems = B * Tt * (c->decoder_layers * (self + ffn) + 6 * C + 3 * V);
    if (c->kind == TX_ENCODER_DECODER)
        elems += B * Ts * (c->encoder_layers * (24 * C + 2 * H * Ts + ffn) + 6 * C) +
                 B * Tt * c->decoder_layers * (24 * C + 2 * H * Ts);
    return 2 * elems * sizeof(tx_real);
}

/* dropout(positions(embed(ids))): the input of either stack, row b's
 * positions starting at offset[b] (NULL: 0). */
static tx_tensor *embed(tx_tape *tp, const tx_model *m, const tx_embed *e,
                        const tx_positions *pos, const int *ids, int B, int T,
                        const int *offset) {
    tx_tensor *x = tx_positions_forward_at(tp, pos, tx_embed_forward(tp, e, ids, B, T), offset);
    return tx_dropout(tp, x, (tx_real)m->cfg.dropout);
}

tx_tensor *tx_model_encode(tx_tape *tp, const tx_model *m, const int *src,
                           const int *src_len, int B, int Ts,
                           tx_attn_maps *maps) {
    TX_ASSERT(m->cfg.kind == TX_ENCODER_DECODER,
              "tx_model_encode: a decoder-only model has no encoder");
    tx_tensor *x = embed(tp, m, &m->src_embed, &m->src_pos, src, B, Ts, NULL);
    tx_tensor *mask = src_len ? tx_mask_padding(tp, src_len, B, Ts) : NULL;
    for (int i = 0; i < m->cfg.encoder_layers; i++)
        x = tx_enc_layer_forward(tp, &m->enc[i], x, mask,
                                 maps ? &maps->enc_self[i] : NULL, NULL);
    return tx_norm_forward(tp, &m->enc_norm, x);
}

/* The decoder stack on x and the generator: what tx_model_decode and
 * tx_model_decode_cached share. */
static tx_tensor *decoder(tx_tape *tp, const tx_model *m, tx_tensor *x, tx_tensor *memory,
                          const tx_tensor *self_mask, const tx_tensor *mem_mask,
                          tx_attn_maps *maps, tx_cache *c) {
    int encdec = m->cfg.kind == TX_ENCODER_DECODER;
    for (int i = 0; i < m->cfg.decoder_layers; i++) {
        tx_tensor **self_probs = maps ? &maps->dec_self[i] : NULL;
        tx_kv *kv = c ? c->kv[i] : NULL;
        if (encdec)
            x = tx_dec_layer_forward(tp, &m->dec[i], x, memory, self_mask, mem_mask,
                                     self_probs, maps ? &maps->cross[i] : NULL, kv);
        else
            x = tx_enc_layer_forward(tp, &m->gpt[i], x, self_mask, self_probs, kv);
    }
    return tx_linear_forward(tp, &m->generator, tx_norm_forward(tp, &m->dec_norm, x));
}

tx_tensor *tx_model_decode(tx_tape *tp, const tx_model *m, tx_tensor *memory,
                           const int *src_len, const int *tgt,
                           const int *tgt_len, int B, int Tt,
                           tx_attn_maps *maps) {
    int encdec = m->cfg.kind == TX_ENCODER_DECODER;
    TX_ASSERT(encdec == (memory != NULL),
              "tx_model_decode: memory must be given exactly for "
              "encoder-decoder models");
    tx_tensor *x = embed(tp, m, &m->tgt_embed, &m->tgt_pos, tgt, B, Tt, NULL);
    tx_tensor *self_mask = tx_mask_make(tp, B, Tt, Tt, 1, tgt_len);
    tx_tensor *mem_mask =
        encdec && src_len ? tx_mask_padding(tp, src_len, B, memory->shape[1])
                          : NULL;
    return decoder(tp, m, x, memory, self_mask, mem_mask, maps, NULL);
}

/* ---- decoding with a key/value cache ------------------------------------------ */

void tx_cache_init(tx_cache *c, const tx_model *m, int B, int cap, int Ts) {
    TX_ASSERT(B > 0 && cap > 0, "tx_cache_init: %d rows of %d positions", B, cap);
    memset(c, 0, sizeof *c);
    int L = m->cfg.decoder_layers, C = m->cfg.d_model;
    int cross = m->cfg.kind == TX_ENCODER_DECODER ? Ts : 0;
    size_t self_n = (size_t)B * cap * C, cross_n = (size_t)B * cross * C;
    c->B = B;
    c->cap = cap;
    c->C = C;
    c->len = tx_calloc((size_t)B, sizeof *c->len);
    /* Zeroed: a row's positions not written yet are read (and masked) when
     * other rows are longer, and masked garbage could be a NaN that 0·NaN
     * passes on. */
    size_t bytes = (size_t)L * 2 * (self_n + cross_n) * sizeof(tx_real);
    c->block = tx_malloc_aligned(bytes);
    memset(c->block, 0, bytes);
    tx_real *w = c->block;
    for (int i = 0; i < L; i++) {
        c->kv[i][0] = (tx_kv){w, w + self_n, cap, c->len, 0};
        w += 2 * self_n;
        if (cross) c->kv[i][1] = (tx_kv){w, w + cross_n, cross, NULL, 0};
        w += 2 * cross_n;
    }
}

void tx_cache_free(tx_cache *c) {
    free(c->len);
    free(c->block);
    memset(c, 0, sizeof *c);
}

/* Rows [B, row] of a: row i from row rows[i]; tmp holds n rows. */
static void gather(tx_real *a, size_t row, const int *rows, int n, tx_real *tmp) {
    for (int i = 0; i < n; i++) memcpy(tmp + i * row, a + rows[i] * row, row * sizeof *a);
    memcpy(a, tmp, n * row * sizeof *a);
}

void tx_cache_reorder(tx_cache *c, const int *rows, int n) {
    TX_ASSERT(n <= c->B, "tx_cache_reorder: %d rows of %d", n, c->B);
    int same = 1; /* greedy decoding keeps every row where it is */
    for (int i = 0; same && i < n; i++) same = rows[i] == i;
    if (same) return;
    size_t most = (size_t)c->cap; /* positions of the longest row kept */
    for (int i = 0; i < TX_MAX_LAYERS; i++)
        if (c->kv[i][1].cap > (int)most) most = (size_t)c->kv[i][1].cap;
    tx_real *tmp = tx_malloc((size_t)n * most * c->C * sizeof *tmp);
    for (int i = 0; i < TX_MAX_LAYERS; i++)
        for (int j = 0; j < 2; j++) {
            tx_kv *kv = &c->kv[i][j];
            if (!kv->k) continue;
            gather(kv->k, (size_t)kv->cap * c->C, rows, n, tmp);
            gather(kv->v, (size_t)kv->cap * c->C, rows, n, tmp);
        }
    int *len = tx_malloc((size_t)n * sizeof *len);
    for (int i = 0; i < n; i++) len[i] = c->len[rows[i]];
    memcpy(c->len, len, (size_t)n * sizeof *len);
    free(len);
    free(tmp);
}

tx_tensor *tx_model_decode_cached(tx_tape *tp, const tx_model *m, tx_cache *c,
                                  tx_tensor *memory, const int *src_len, const int *tgt,
                                  const int *new_len, int B, int T) {
    int encdec = m->cfg.kind == TX_ENCODER_DECODER;
    TX_ASSERT(B <= c->B, "tx_model_decode_cached: %d rows, the cache has %d", B, c->B);
    TX_ASSERT(!encdec || memory || c->kv[0][1].filled,
              "tx_model_decode_cached: the first step needs the memory");
    tx_tensor *x = embed(tp, m, &m->tgt_embed, &m->tgt_pos, tgt, B, T, c->len);
    int Tk = 0;
    for (int b = 0; b < B; b++) Tk = c->len[b] + T > Tk ? c->len[b] + T : Tk;
    tx_tensor *self_mask = tx_mask_offset(tp, B, T, Tk, c->len);
    int Ts = encdec ? (c->kv[0][1].filled ? c->kv[0][1].filled : memory->shape[1]) : 0;
    tx_tensor *mem_mask = encdec && src_len ? tx_mask_padding(tp, src_len, B, Ts) : NULL;
    tx_tensor *logits = decoder(tp, m, x, memory, self_mask, mem_mask, NULL, c);
    for (int b = 0; b < B; b++) c->len[b] += new_len ? new_len[b] : T;
    return logits;
}

tx_tensor *tx_model_loss(tx_tape *tp, const tx_model *m, const int *src,
                         const int *src_len, int Ts, const int *tgt_in,
                         const int *tgt_out, const int *tgt_len, int Tt, int B,
                         tx_real label_smoothing) {
    tx_tensor *memory = m->cfg.kind == TX_ENCODER_DECODER
                            ? tx_model_encode(tp, m, src, src_len, B, Ts, NULL)
                            : NULL;
    tx_tensor *logits = tx_model_decode(tp, m, memory, src_len, tgt_in, tgt_len,
                                        B, Tt, NULL);
    return tx_cross_entropy(tp, logits, tgt_out, PAD, label_smoothing);
}
