/* batch.c: padded batches in the encoder-decoder and decoder-only layouts. */
#include <string.h>

#include "internal.h"

void tx_batch_alloc(tx_batch *b, int max_b, int max_src, int max_tgt) {
    TX_ASSERT(max_b > 0 && max_src >= 0 && max_tgt >= 0,
              "tx_batch_alloc: batch %d, source %d, target %d", max_b, max_src,
              max_tgt);
    memset(b, 0, sizeof *b);
    b->cap_b = max_b;
    b->cap_ts = max_src;
    b->cap_tt = max_src + max_tgt + 1; /* room for the decoder-only layout */
    size_t nb = (size_t)max_b * sizeof(int);
    b->src = tx_malloc(nb * (size_t)b->cap_ts);
    b->tgt_in = tx_malloc(nb * (size_t)b->cap_tt);
    b->tgt_out = tx_malloc(nb * (size_t)b->cap_tt);
    b->src_len = tx_malloc(nb);
    b->tgt_len = tx_malloc(nb);
}

void tx_batch_free(tx_batch *b) {
    free(b->src);
    free(b->tgt_in);
    free(b->tgt_out);
    free(b->src_len);
    free(b->tgt_len);
    memset(b, 0, sizeof *b);
}

void tx_batch_begin(tx_batch *b, int decoder_only) {
    b->B = b->Ts = b->Tt = 0;
    b->decoder_only = decoder_only;
}

static void fill_pad(int *row, int from, int to) {
    for (int i = from; i < to; i++) row[i] = TX_PAD;
}

/* Rows go in at the allocated stride, padded to it; tx_batch_end packs. */
void tx_batch_add(tx_batch *b, const tx_example *e) {
    TX_ASSERT(b->B < b->cap_b, "tx_batch_add: batch full (%d examples)",
              b->cap_b);
    int ls = e->src_len, lt = e->tgt_len, i = b->B++;
    int p = b->decoder_only ? ls : 0, len = p + lt + 1; /* BOS at in[p] */
    TX_ASSERT(ls <= b->cap_ts && len <= b->cap_tt,
              "tx_batch_add: example of %d + %d tokens does not fit rows of "
              "%d + %d", ls, lt, b->cap_ts, b->cap_tt);
    int *in = b->tgt_in + (size_t)i * b->cap_tt,
        *out = b->tgt_out + (size_t)i * b->cap_tt;
    if (b->decoder_only) {
        memcpy(in, e->src_ids, (size_t)ls * sizeof *in);
        fill_pad(out, 0, ls); /* predicting the prompt and BOS is not asked */
    } else {
        int *src = b->src + (size_t)i * b->cap_ts;
        memcpy(src, e->src_ids, (size_t)ls * sizeof *src);
        fill_pad(src, ls, b->cap_ts);
        if (ls > b->Ts) b->Ts = ls;
    }
    in[p] = TX_BOS;
    memcpy(in + p + 1, e->tgt_ids, (size_t)lt * sizeof *in);
    memcpy(out + p, e->tgt_ids, (size_t)lt * sizeof *out);
    out[p + lt] = TX_EOS;
    fill_pad(in, len, b->cap_tt);
    fill_pad(out, len, b->cap_tt);
    b->src_len[i] = ls;
    b->tgt_len[i] = len;
    if (len > b->Tt) b->Tt = len;
}

/* Moves row i from stride cap to stride T <= cap; going up from row 1 never
 * overwrites a row that has not moved yet. */
static void pack(int *a, int rows, int cap, int T) {
    for (int i = 1; i < rows; i++)
        memmove(a + (size_t)i * T, a + (size_t)i * cap, (size_t)T * sizeof *a);
}

void tx_batch_end(tx_batch *b) {
    pack(b->src, b->B, b->cap_ts, b->Ts);
    pack(b->tgt_in, b->B, b->cap_tt, b->Tt);
    pack(b->tgt_out, b->B, b->cap_tt, b->Tt);
}

void tx_batch_fill(tx_batch *b, const tx_example *ex, int n, int decoder_only) {
    tx_batch_begin(b, decoder_only);
    for (int i = 0; i < n; i++) tx_batch_add(b, &ex[i]);
    tx_batch_end(b);
}

void tx_batch_fill_windows(tx_batch *b, const int *tokens, const size_t *offset, int n,
                           int context) {
    TX_ASSERT(n <= b->cap_b && context <= b->cap_tt,
              "tx_batch_fill_windows: %d windows of %d tokens, room for %d of %d", n, context,
              b->cap_b, b->cap_tt);
    b->B = n;
    b->Ts = 0;
    b->Tt = context;
    b->decoder_only = 1;
    for (int i = 0; i < n; i++) {
        const int *w = tokens + offset[i];
        memcpy(b->tgt_in + (size_t)i * context, w, (size_t)context * sizeof *w);
        memcpy(b->tgt_out + (size_t)i * context, w + 1, (size_t)context * sizeof *w);
        b->src_len[i] = 0;
        b->tgt_len[i] = context;
    }
}
