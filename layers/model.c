/* model.c: building the encoder-decoder and decoder-only models from the
 * layers, and their forward passes (encode, decode, loss). */
#include "model.h"

#include <stdio.h>
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
    tx_real drop = (tx_real)cfg->dropout;
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
        tx_enc_layer_declare(&m->enc[i], p, name, C, cfg->heads, cfg->d_ff,
                             cfg->activation, cfg->norm_first, drop);
    }
    if (encdec) tx_norm_declare(&m->enc_norm, p, "encoder.norm", C);
    for (int i = 0; i < cfg->decoder_layers; i++) {
        snprintf(name, sizeof name, "decoder.layers.%d", i);
        if (encdec)
            tx_dec_layer_declare(&m->dec[i], p, name, C, cfg->heads, cfg->d_ff,
                                 cfg->activation, cfg->norm_first, drop);
        else
            tx_enc_layer_declare(&m->gpt[i], p, name, C, cfg->heads, cfg->d_ff,
                                 cfg->activation, cfg->norm_first, drop);
    }
    tx_norm_declare(&m->dec_norm, p, "decoder.norm", C);
    if (cfg->tie_embeddings) {
        m->generator.weight = m->tgt_embed.weight;
        m->generator.bias = tx_params_new(p, "generator.bias", TX_INIT_ZERO, 1,
                                          cfg->tgt_vocab);
    } else {
        tx_linear_declare(&m->generator, p, "generator", C, cfg->tgt_vocab);
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
    double ffn = 8 * C + 3 * F;                 /* per position: feed-forward block */
    double elems = B * Tt * (c->decoder_layers * (self + ffn) + 6 * C + 3 * V);
    if (c->kind == TX_ENCODER_DECODER)
        elems += B * Ts * (c->encoder_layers * (24 * C + 2 * H * Ts + ffn) + 6 * C) +
                 B * Tt * c->decoder_layers * (24 * C + 2 * H * Ts);
    return 2 * elems * sizeof(tx_real);
}

/* dropout(positions(embed(ids))): the input of either stack. */
static tx_tensor *embed(tx_tape *tp, const tx_model *m, const tx_embed *e,
                        const tx_positions *pos, const int *ids, int B, int T) {
    tx_tensor *x = tx_positions_forward(tp, pos, tx_embed_forward(tp, e, ids, B, T));
    return tx_dropout(tp, x, (tx_real)m->cfg.dropout);
}

tx_tensor *tx_model_encode(tx_tape *tp, const tx_model *m, const int *src,
                           const int *src_len, int B, int Ts,
                           tx_attn_maps *maps) {
    TX_ASSERT(m->cfg.kind == TX_ENCODER_DECODER,
              "tx_model_encode: a decoder-only model has no encoder");
    tx_tensor *x = embed(tp, m, &m->src_embed, &m->src_pos, src, B, Ts);
    tx_tensor *mask = src_len ? tx_mask_padding(tp, src_len, B, Ts) : NULL;
    for (int i = 0; i < m->cfg.encoder_layers; i++)
        x = tx_enc_layer_forward(tp, &m->enc[i], x, mask,
                                 maps ? &maps->enc_self[i] : NULL);
    return tx_norm_forward(tp, &m->enc_norm, x);
}

tx_tensor *tx_model_decode(tx_tape *tp, const tx_model *m, tx_tensor *memory,
                           const int *src_len, const int *tgt,
                           const int *tgt_len, int B, int Tt,
                           tx_attn_maps *maps) {
    int encdec = m->cfg.kind == TX_ENCODER_DECODER;
    TX_ASSERT(encdec == (memory != NULL),
              "tx_model_decode: memory must be given exactly for "
              "encoder-decoder models");
    tx_tensor *x = embed(tp, m, &m->tgt_embed, &m->tgt_pos, tgt, B, Tt);
    tx_tensor *self_mask = tx_mask_make(tp, B, Tt, Tt, 1, tgt_len);
    tx_tensor *mem_mask =
        encdec && src_len ? tx_mask_padding(tp, src_len, B, memory->shape[1])
                          : NULL;
    for (int i = 0; i < m->cfg.decoder_layers; i++) {
        tx_tensor **self_probs = maps ? &maps->dec_self[i] : NULL;
        if (encdec)
            x = tx_dec_layer_forward(tp, &m->dec[i], x, memory, self_mask,
                                     mem_mask, self_probs,
                                     maps ? &maps->cross[i] : NULL);
        else
            x = tx_enc_layer_forward(tp, &m->gpt[i], x, self_mask, self_probs);
    }
    return tx_linear_forward(tp, &m->generator,
                             tx_norm_forward(tp, &m->dec_norm, x));
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
