/* layers.h: the Transformer building blocks (linear, embedding, positional
 * encodings, layer norm, feed-forward, multi-head attention, encoder and
 * decoder layers) as handles to parameters declared in a tx_params, and
 * forward functions that run on a tape. */
#ifndef TX_LAYERS_H
#define TX_LAYERS_H

#include "../core/ops.h"

/* Every *_declare function below declares its parameters with
 * tx_params_new under `prefix` (names as in torch.nn.Transformer's
 * state_dict) and stores the pointers in the handle; the tensors belong to the
 * tx_params and only get memory at tx_params_alloc. Handles own nothing and
 * are never freed. Sizes are asserted positive (programmer errors). */

#define TX_LN_EPS 1e-5

enum { TX_ACT_RELU, TX_ACT_GELU };
enum { TX_POS_SINUSOIDAL, TX_POS_LEARNED, TX_POS_NONE };

/* y = x·Wᵀ + b over the last dimension (b absent: y = x·Wᵀ). */
typedef struct tx_linear {
    tx_tensor *weight; /* [out, in]; Xavier */
    tx_tensor *bias;   /* [out]; zeros; NULL when declared without */
} tx_linear;
void tx_linear_declare(tx_linear *l, tx_params *p, const char *prefix, int in,
                       int out, int bias);
tx_tensor *tx_linear_forward(tx_tape *tp, const tx_linear *l,
                             tx_tensor *x /* [..., in] */); /* [..., out] */

/* Token embedding, optionally scaled by sqrt(C) as in "Attention Is All You
 * Need". ids are borrowed until tx_tape_backward has run. */
typedef struct tx_embed {
    tx_tensor *weight; /* [V, C]; Xavier */
    tx_real scale;     /* 1 or sqrt(C) */
} tx_embed;
void tx_embed_declare(tx_embed *e, tx_params *p, const char *prefix, int V,
                      int C, int scale_by_sqrt_c);
tx_tensor *tx_embed_forward(tx_tape *tp, const tx_embed *e,
                            const int *ids /* [B·T] */, int B,
                            int T); /* [B, T, C] */

/* Positional information added to [B, T, C] (kind is TX_POS_*):
 * sinusoidal PE[t, 2i] = sin(t / 10000^(2i/C)), PE[t, 2i+1] = cos(same), a
 * constant; learned, a table looked up at 0..T-1; or none (x returned). */
typedef struct tx_positions {
    int kind;
    int max_len;       /* learned: rows of weight; T must not exceed it */
    tx_tensor *weight; /* learned only: [max_len, C]; Xavier */
} tx_positions;
void tx_positions_declare(tx_positions *pos, tx_params *p, const char *prefix,
                          int kind, int max_len, int C);
tx_tensor *tx_positions_forward(tx_tape *tp, const tx_positions *pos,
                                tx_tensor *x /* [B, T, C] */);
/* The same with row b's positions starting at offset[b] (decoding with a
 * cache: the new tokens follow what is cached); offset NULL: all at 0. */
tx_tensor *tx_positions_forward_at(tx_tape *tp, const tx_positions *pos,
                                   tx_tensor *x /* [B, T, C] */,
                                   const int *offset /* [B] */);

/* Layer norm over the last dimension, eps TX_LN_EPS. */
typedef struct tx_norm {
    tx_tensor *weight; /* [C]; ones */
    tx_tensor *bias;   /* [C]; zeros; NULL when declared without */
} tx_norm;
void tx_norm_declare(tx_norm *n, tx_params *p, const char *prefix, int C, int bias);
tx_tensor *tx_norm_forward(tx_tape *tp, const tx_norm *n,
                           tx_tensor *x /* [..., C] */);

/* linear2(dropout(act(linear1(x)))); act is TX_ACT_*. Declares
 * prefix.linear1 and prefix.linear2, as nn.TransformerEncoderLayer names
 * them directly under the layer. */
typedef struct tx_ffn {
    tx_linear linear1; /* C -> d_ff */
    tx_linear linear2; /* d_ff -> C */
    int activation;
} tx_ffn;
void tx_ffn_declare(tx_ffn *f, tx_params *p, const char *prefix, int C,
                    int d_ff, int activation, int bias);
tx_tensor *tx_ffn_forward(tx_tape *tp, const tx_ffn *f,
                          tx_tensor *x /* [B, T, C] */, tx_real dropout);

/* Keys and values of one attention layer kept between decoding steps, so
 * that each step projects only its new positions. Self-attention: the new
 * positions of row b go at pos[b], pos[b] + 1, ... and attend to everything
 * before them; cross-attention: the memory's keys and values, projected at
 * the first step (filled). The model's tx_cache owns the memory. */
typedef struct tx_kv {
    tx_real *k, *v;   /* [B, H, cap, D] */
    int cap;          /* positions per row */
    const int *pos;   /* self-attention: [B] positions cached per row */
    int filled;       /* cross-attention: keys and values of Ts positions held */
} tx_kv;

/* Multi-head attention as torch.nn.MultiheadAttention: q = x·Wqᵀ + bq,
 * k = mem·Wkᵀ + bk, v = mem·Wvᵀ + bv with Wq; Wk; Wv the row blocks of
 * in_proj_weight, per head dropout(softmax(q·kᵀ / sqrt(D) + mask))·v,
 * heads concatenated, then out_proj. */
typedef struct tx_mha {
    tx_tensor *in_proj_weight; /* [3C, C]; Xavier over the whole block */
    tx_tensor *in_proj_bias;   /* [3C]; zeros; NULL without biases */
    tx_linear out_proj;        /* C -> C */
    int heads;                 /* H, divides C */
    tx_real dropout;           /* on the attention probabilities (training) */
} tx_mha;
void tx_mha_declare(tx_mha *a, tx_params *p, const char *prefix, int C,
                    int heads, int bias, tx_real dropout);
/* mem NULL: self-attention on x. mask (tx_mask_make) is as for tx_attention
 * against [B, H, Tq, Tk], NULL for none. probs, if non-NULL, receives the
 * attention probabilities [B, H, Tq, Tk] (arena, valid until reset). kv
 * non-NULL (decoding, no gradients): keys and values come from and go to
 * the cache, Tk then counting the cached positions, and probs is not set. */
tx_tensor *tx_mha_forward(tx_tape *tp, const tx_mha *a,
                          tx_tensor *x /* [B, Tq, C] */,
                          tx_tensor *mem /* [B, Tk, C] or NULL */,
                          const tx_tensor *mask, tx_tensor **probs, tx_kv *kv);

/* What an encoder or decoder layer is made of. */
typedef struct tx_layer_config {
    int C, heads, d_ff;
    int activation; /* TX_ACT_* */
    int norm_first; /* 0 post-LN, 1 pre-LN */
    int bias;       /* linears and norms have biases */
    tx_real dropout;
} tx_layer_config;

/* nn.TransformerEncoderLayer(batch_first=True). Post-LN (norm_first 0):
 *   x = norm1(x + dropout(SA(x)));  x = norm2(x + dropout(FFN(x)))
 * pre-LN (norm_first 1):
 *   x = x + dropout(SA(norm1(x)));  x = x + dropout(FFN(norm2(x)))
 * Decoder-only models use it with a causal mask. */
typedef struct tx_enc_layer {
    tx_mha self_attn;
    tx_ffn ffn; /* linear1, linear2 */
    tx_norm norm1, norm2;
    int norm_first;
    tx_real dropout;
} tx_enc_layer;
void tx_enc_layer_declare(tx_enc_layer *l, tx_params *p, const char *prefix,
                          const tx_layer_config *c);
/* kv: the self-attention's cache when decoding, else NULL. */
tx_tensor *tx_enc_layer_forward(tx_tape *tp, const tx_enc_layer *l,
                                tx_tensor *x /* [B, T, C] */,
                                const tx_tensor *mask, tx_tensor **probs, tx_kv *kv);

/* nn.TransformerDecoderLayer(batch_first=True). Post-LN:
 *   x = norm1(x + dropout(SA(x, self_mask)))
 *   x = norm2(x + dropout(MHA(x, memory, mem_mask)))
 *   x = norm3(x + dropout(FFN(x)))
 * pre-LN applies norm1..3 to each sublayer's input instead (memory as is). */
typedef struct tx_dec_layer {
    tx_mha self_attn, multihead_attn;
    tx_ffn ffn;
    tx_norm norm1, norm2, norm3;
    int norm_first;
    tx_real dropout;
} tx_dec_layer;
void tx_dec_layer_declare(tx_dec_layer *l, tx_params *p, const char *prefix,
                          const tx_layer_config *c);
/* self_probs [B, H, Tt, Tt] and cross_probs [B, H, Tt, Ts] as in
 * tx_mha_forward (either may be NULL). kv: when decoding, the caches of the
 * self- and the cross-attention (kv[0], kv[1]), else NULL. */
tx_tensor *tx_dec_layer_forward(tx_tape *tp, const tx_dec_layer *l,
                                tx_tensor *x /* [B, Tt, C] */,
                                tx_tensor *memory /* [B, Ts, C] */,
                                const tx_tensor *self_mask,
                                const tx_tensor *mem_mask,
                                tx_tensor **self_probs,
                                tx_tensor **cross_probs, tx_kv *kv);

#endif
