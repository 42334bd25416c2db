/* decode.c: greedy decoding. Each step runs the decoder over every row's
 * whole prefix (no key/value cache: the models here are small) and appends
 * the argmax at the row's last position. Rows have their own lengths, so a
 * decoder-only batch keeps each prompt where training put it. */
#include "decode.h"

#include <string.h>

static int argmax(const tx_real *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

void tx_decode_greedy(tx_tape *tp, const tx_model *m, const tx_batch *b,
                      int max_len, int *out, int *out_len) {
    int B = b->B, dec_only = m->cfg.kind == TX_DECODER_ONLY;
    int V = m->cfg.tgt_vocab;
    tx_tape_reset(tp);
    tp->no_grad = 1;
    tp->training = 0;
    tx_tensor *memory = dec_only ? NULL
                                 : tx_model_encode(tp, m, b->src, b->src_len, B,
                                                   b->Ts, NULL);
    int prompt_cap = dec_only ? b->Tt : 1, cap = prompt_cap + max_len;
    int *seq = tx_tape_alloc(tp, (size_t)B * cap * sizeof *seq);
    int *len = tx_tape_alloc(tp, (size_t)B * sizeof *len);
    int *done = tx_tape_alloc(tp, (size_t)B * sizeof *done);
    int *packed = tx_tape_alloc(tp, (size_t)B * cap * sizeof *packed);
    for (int i = 0; i < B; i++) {
        len[i] = dec_only ? b->src_len[i] + 1 : 1;
        if (dec_only) memcpy(seq + (size_t)i * cap, b->tgt_in + (size_t)i * b->Tt,
                             (size_t)len[i] * sizeof *seq);
        else seq[(size_t)i * cap] = TX_BOS;
        done[i] = 0;
        out_len[i] = 0;
    }
    for (int step = 0; step < max_len; step++) {
        int T = 0;
        for (int i = 0; i < B; i++) T = len[i] > T ? len[i] : T;
        for (int i = 0; i < B; i++)
            for (int t = 0; t < T; t++)
                packed[(size_t)i * T + t] = t < len[i] ? seq[(size_t)i * cap + t] : TX_PAD;
        tx_tensor *logits = tx_model_decode(tp, m, memory, dec_only ? NULL : b->src_len,
                                            packed, len, B, T, NULL);
        int active = 0;
        for (int i = 0; i < B; i++) {
            if (done[i]) continue;
            int tok = argmax(logits->data + ((size_t)i * T + len[i] - 1) * V, V);
            if (tok == TX_EOS) {
                done[i] = 1;
                continue;
            }
            out[(size_t)i * max_len + out_len[i]++] = tok;
            seq[(size_t)i * cap + len[i]++] = tok;
            active++;
        }
        if (!active) break;
    }
    tp->no_grad = 0;
}
