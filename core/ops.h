/* ops.h: the differentiable operations. Each takes the tape first, returns a
 * new tensor from the tape's arena, and records its backward on the tape.
 * Shape mismatches abort with the op's name and both shapes. */
#ifndef TX_OPS_H
#define TX_OPS_H

#include "tape.h"

/* a + b. b has a's shape or a's trailing dimensions (a bias [C] added to
 * [N, C], positions [T, C] added to [B, T, C]). */
tx_tensor *tx_add(tx_tape *tp, tx_tensor *a, tx_tensor *b);
tx_tensor *tx_sub(tx_tape *tp, tx_tensor *a, tx_tensor *b); /* same shapes */
tx_tensor *tx_mul(tx_tape *tp, tx_tensor *a, tx_tensor *b); /* same shapes */
tx_tensor *tx_scale(tx_tape *tp, tx_tensor *a, tx_real s);

/* a·b over the last two dimensions, with a read as its transpose if ta and b
 * if tb (nothing is materialised). a [..., M, K] (ta: [..., K, M]);
 * b [K, N] (tb: [N, K]) shared across a's leading dimensions, or
 * b [..., K, N] with the same leading dimensions as a. Out [..., M, N]. */
tx_tensor *tx_matmul(tx_tape *tp, tx_tensor *a, tx_tensor *b, int ta, int tb);

/* x·wᵀ + b fused, as torch.nn.functional.linear: x [..., K], w [N, K], b [N]
 * (may be NULL). Out [..., N]. The same values as tx_add(tx_matmul(x, w, 0,
 * 1), b), with one output tensor (and gradient) instead of two. */
tx_tensor *tx_affine(tx_tape *tp, tx_tensor *x, tx_tensor *w, tx_tensor *b);

tx_tensor *tx_relu(tx_tape *tp, tx_tensor *x);
tx_tensor *tx_gelu(tx_tape *tp, tx_tensor *x); /* exact: x·Φ(x), as PyTorch */

/* Softmax over the last dimension of x [..., Tk] after adding mask (may be
 * NULL, no grad): mask's shape right-aligns with x's, each dimension equal or
 * 1 (broadcast), last equal to Tk. -INFINITY entries exclude a key; a row with
 * every key excluded gives all zeros (PyTorch gives NaN). */
tx_tensor *tx_softmax(tx_tape *tp, tx_tensor *x, const tx_tensor *mask);
tx_tensor *tx_log_softmax(tx_tape *tp, tx_tensor *x);
/* log Σ_j exp(x[j]) over x [n], n >= 1, in double and stable: the row
 * kernel of log_softmax and cross_entropy, for callers off the tape. */
double tx_logsumexp(const tx_real *x, int n);

/* Mean over the rows of logits [..., V] whose target is not ignore_index of
 * the cross-entropy with label smoothing e: per row
 * -(1-e)·log p[y] - (e/V)·Σ_c log p[c], as torch.nn.functional.cross_entropy.
 * targets has one entry per row. Returns a one-element tensor; 0 when every
 * row is ignored. Fused with the softmax. */
tx_tensor *tx_cross_entropy(tx_tape *tp, tx_tensor *logits, const int *targets,
                            int ignore_index, tx_real label_smoothing);

/* (x - mean) / sqrt(var + eps) · w + b over the last dimension, biased
 * variance. x [..., C], w [C], b [C] (b may be NULL). Saves mean and rstd. */
tx_tensor *tx_layer_norm(tx_tape *tp, tx_tensor *x, tx_tensor *w, tx_tensor *b,
                         tx_real eps);

/* Rows of table [V, C] picked by ids [B·T] (each in [0, V)): out [B, T, C]. */
tx_tensor *tx_embedding(tx_tape *tp, tx_tensor *table, const int *ids, int B,
                        int T);

/* Inverted dropout: zero with probability p, scale the rest by 1/(1-p). The
 * mask is keyed by the tape's seed and call count. Identity (the same tensor
 * returned) when !tp->training or p == 0. */
tx_tensor *tx_dropout(tx_tape *tp, tx_tensor *x, tx_real p);

/* A view: same data and grad, new shape (same size). -1 in one place infers. */
tx_tensor *tx_reshape(tx_tape *tp, tx_tensor *x, int ndim, ...);
/* out.shape[i] = x.shape[perm[i]], copied. Splitting heads is
 * reshape [B,T,H,D] then permute {0,2,1,3}; merging is the reverse. */
tx_tensor *tx_permute(tx_tape *tp, tx_tensor *x, const int *perm);
tx_tensor *tx_split_heads(tx_tape *tp, tx_tensor *x, int H); /* [B,T,H·D] -> [B,H,T,D] */
tx_tensor *tx_merge_heads(tx_tape *tp, tx_tensor *x);        /* [B,H,T,D] -> [B,T,H·D] */

tx_tensor *tx_sum(tx_tape *tp, tx_tensor *x);  /* one element */
tx_tensor *tx_mean(tx_tape *tp, tx_tensor *x); /* one element */

/* Fused scaled dot-product attention, per (batch item, head) in parallel:
 * softmax(scale · q·kᵀ + mask)·v. q [B, H, Tq, D], k and v [B, H, Tk, D],
 * mask as in tx_softmax against scores [B, H, Tq, Tk]. With tp->training
 * and dropout > 0 the probabilities go through inverted dropout before
 * multiplying v (as torch.nn.MultiheadAttention's dropout); dropout 0 costs
 * nothing. Out [B, H, Tq, D]. If probs is non-NULL it receives the
 * probabilities [B, H, Tq, Tk] before dropout (arena memory valid until the
 * next reset), kept for attention maps. */
tx_tensor *tx_attention(tx_tape *tp, tx_tensor *q, tx_tensor *k, tx_tensor *v,
                        const tx_tensor *mask, tx_real scale, tx_real dropout,
                        tx_tensor **probs);

/* The same with the heads side by side in the last dimension, as a linear
 * layer makes them: q [B, Tq, H·D], k and v [B, Tk, H·D], out [B, Tq, H·D]
 * (probs still [B, H, Tq, Tk]). Equal, bit for bit, to
 * tx_merge_heads(tx_attention(split q, k, v)), without the permuted copies
 * and their gradients. */
tx_tensor *tx_attention_heads(tx_tape *tp, tx_tensor *q, tx_tensor *k, tx_tensor *v, int H,
                              const tx_tensor *mask, tx_real scale, tx_real dropout,
                              tx_tensor **probs);

/* tx_attention without gradients, for decoding with a key/value cache: keys and values
 * are the first Tk of cap positions of k and v [B, H, cap, D]. q must not need
 * a gradient. Out [B, H, Tq, D]. */
tx_tensor *tx_attention_cached(tx_tape *tp, tx_tensor *q, const tx_real *k, const tx_real *v,
                               int cap, int Tk, const tx_tensor *mask, tx_real scale);

/* Masks (no grad) for tx_softmax and tx_attention, 0 or -INFINITY.
 * causal [Tq, Tk]: query i sees keys j <= i + (Tk - Tq).
 * key padding [B, 1, 1, Tk] from lengths[B]: keys at j >= lengths[b] hidden.
 * combined [B, 1, Tq, Tk]: both (either may be absent: causal 0, lengths NULL). */
tx_tensor *tx_mask_causal(tx_tape *tp, int Tq, int Tk);
tx_tensor *tx_mask_padding(tx_tape *tp, const int *lengths, int B, int Tk);
tx_tensor *tx_mask_make(tx_tape *tp, int B, int Tq, int Tk, int causal,
                        const int *lengths);
/* Causal for rows whose queries start at offset[b] (decoding with a cache):
 * [B, 1, Tq, Tk], key j hidden from query i of row b when j > offset[b] + i. */
tx_tensor *tx_mask_offset(tx_tape *tp, int B, int Tq, int Tk, const int *offset);

#endif
