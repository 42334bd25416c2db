/* decode.h: turning a model's outputs into token sequences: batched greedy
 * decoding in no-grad mode, for validation and the generate command. */
#ifndef TX_DECODE_H
#define TX_DECODE_H

#include "../data/data.h"
#include "../layers/model.h"

/* Decodes every example of b (either layout: encoder-decoder from b->src,
 * decoder-only from the prompt b->tgt_in[0 .. src_len + 1), source and BOS)
 * until EOS or max_len tokens. Writes the tokens, EOS excluded, to
 * out [b->B · max_len] (row i at i·max_len) and their counts to out_len [B].
 * Runs on tp in no-grad mode, resetting it first and leaving its arena in use
 * (the caller resets it). */
void tx_decode_greedy(tx_tape *tp, const tx_model *m, const tx_batch *b,
                      int max_len, int *out, int *out_len);

#endif
