/* model.h: the Transformer models (encoder-decoder and decoder-only) built
 * from the layers in layers.h, their hyperparameters, and the entry points
 * training and decoding use. Parameter names follow torch.nn.Transformer. */
#ifndef TX_MODEL_H
#define TX_MODEL_H

#include "layers.h"

enum { TX_ENCODER_DECODER, TX_DECODER_ONLY };
enum { TX_FLOAT32, TX_BF16 };

typedef struct tx_model_config {
    int kind;            /* TX_ENCODER_DECODER | TX_DECODER_ONLY */
    int d_model;         /* C */
    int heads;           /* H, divides d_model */
    int encoder_layers;  /* 0 for decoder-only */
    int decoder_layers;
    int d_ff;
    int activation;      /* TX_ACT_* */
    int norm_first;      /* 0 post-LN (default), 1 pre-LN */
    double dropout;      /* [0, 1) */
    int positions;       /* TX_POS_* */
    int tie_embeddings;  /* generator.weight is tgt_embed.weight */
    int scale_embeddings;/* multiply embeddings by sqrt(d_model) */
    int bias;            /* linears, norms and the generator have biases */
    int precision;       /* TX_FLOAT32, or TX_BF16: training's matrix products in bf16 */
    int src_vocab;       /* V of the source (encoder-decoder only) */
    int tgt_vocab;       /* V of the target, = generator outputs */
    int max_len;         /* longest sequence (learned positions' table) */
} tx_model_config;

/* Layer-count limit of one stack (sizes the fixed arrays below). */
#define TX_MAX_LAYERS 32

/* Hyperparameters and parameter handles only: the tensors belong to the
 * tx_params given to tx_model_build, activations to the tape. */
typedef struct tx_model {
    tx_model_config cfg;
    tx_embed src_embed;              /* encoder-decoder only */
    tx_embed tgt_embed;
    tx_positions src_pos, tgt_pos;   /* learned: src_pos.weight, tgt_pos.weight */
    tx_enc_layer enc[TX_MAX_LAYERS]; /* encoder.layers.N */
    tx_norm enc_norm;                /* encoder.norm */
    tx_dec_layer dec[TX_MAX_LAYERS]; /* decoder.layers.N (encoder-decoder) */
    tx_enc_layer gpt[TX_MAX_LAYERS]; /* decoder.layers.N (decoder-only, causal) */
    tx_norm dec_norm;                /* decoder.norm */
    tx_linear generator;             /* C -> V; weight is tgt_embed.weight if tied */
} tx_model;

/* Keys and values of every decoder layer kept between decoding steps (each
 * layer's self-attention, and an encoder-decoder's cross-attention), for B
 * rows of up to cap decoder positions: each step then runs the decoder on
 * its new tokens only. */
typedef struct tx_cache {
    int B, cap, C;                 /* rows, decoder positions, channels */
    int *len;                      /* [B] decoder positions cached per row */
    tx_kv kv[TX_MAX_LAYERS][2];    /* per decoder layer: self, cross */
    tx_real *block;                /* every key and value */
} tx_cache;

/* Room for B rows of cap decoder positions and (encoder-decoder) Ts source
 * positions, empty (len 0). Aborts if the heap is exhausted; release with
 * tx_cache_free. */
void tx_cache_init(tx_cache *c, const tx_model *m, int B, int cap, int Ts);
void tx_cache_free(tx_cache *c);
/* Row i becomes what row rows[i] was, for i < n (beam search keeping the
 * hypotheses that survive). */
void tx_cache_reorder(tx_cache *c, const int *rows, int n);

/* Attention probabilities per layer (arena memory, valid until the tape's
 * reset); the forward functions fill the slots of the layers they run. */
typedef struct tx_attn_maps {
    tx_tensor *enc_self[TX_MAX_LAYERS]; /* [B, H, Ts, Ts] */
    tx_tensor *dec_self[TX_MAX_LAYERS]; /* [B, H, Tt, Tt] */
    tx_tensor *cross[TX_MAX_LAYERS];    /* [B, H, Tt, Ts] */
} tx_attn_maps;

/* Validates cfg (returns TX_EINPUT with a message in err, having declared
 * nothing) and declares every parameter into p, which must not be allocated
 * yet; the caller then runs tx_params_alloc and tx_params_init. For a
 * decoder-only model encoder_layers and src_vocab are ignored. */
int tx_model_build(tx_model *m, const tx_model_config *cfg, tx_params *p,
                   tx_err *err);

/* An estimate, from above, of the activation memory (bytes of the tape's
 * arena) of one training forward and backward pass on a batch of B examples
 * with sources of Ts and decoder inputs of Tt tokens, for refusing a model
 * that cannot fit before allocating it. */
double tx_model_activation_bytes(const tx_model_config *cfg, int B, int Ts, int Tt);

/* Token arrays (src, tgt, and lengths) are borrowed until tx_tape_backward
 * has run. Lengths may be NULL (no padding); keys at positions >= length are
 * hidden from attention. maps may be NULL. */

/* Encoder-decoder only: memory [B, Ts, C] (after encoder.norm). */
tx_tensor *tx_model_encode(tx_tape *tp, const tx_model *m,
                           const int *src /* [B·Ts] */,
                           const int *src_len /* [B] */, int B, int Ts,
                           tx_attn_maps *maps);
/* Logits [B, Tt, V] for every target position, causal. memory and src_len
 * come from tx_model_encode (memory NULL for decoder-only models). */
tx_tensor *tx_model_decode(tx_tape *tp, const tx_model *m,
                           tx_tensor *memory /* [B, Ts, C] or NULL */,
                           const int *src_len /* [B] */,
                           const int *tgt /* [B·Tt] */,
                           const int *tgt_len /* [B] */, int B, int Tt,
                           tx_attn_maps *maps);
/* The decoder on new tokens tgt [B·T] following what c holds (row b's at
 * positions c->len[b], ...), no gradients: logits [B, T, V]. memory and
 * src_len as for tx_model_decode (memory is read at the first step only).
 * Afterwards c->len[b] has grown by new_len[b] (NULL: by T), the tokens of
 * row b that were real (a padded prompt's tail is overwritten later). */
tx_tensor *tx_model_decode_cached(tx_tape *tp, const tx_model *m, tx_cache *c,
                                  tx_tensor *memory /* [B, Ts, C] or NULL */,
                                  const int *src_len /* [B] */,
                                  const int *tgt /* [B·T] */,
                                  const int *new_len /* [B] */, int B, int T);

/* Encode (encoder-decoder only; src ignored otherwise), decode tgt_in and
 * return the mean cross-entropy against tgt_out [B·Tt] over the positions
 * whose target is not PAD (0), as a one-element tensor. */
tx_tensor *tx_model_loss(tx_tape *tp, const tx_model *m,
                         const int *src /* [B·Ts] */,
                         const int *src_len /* [B] */, int Ts,
                         const int *tgt_in /* [B·Tt] */,
                         const int *tgt_out /* [B·Tt] */,
                         const int *tgt_len /* [B] */, int Tt, int B,
                         tx_real label_smoothing);

#endif
