/* decode.h: turning a model's outputs into token sequences and scoring them:
 * batched greedy decoding, beam search, per-token log-likelihoods and the
 * validation measures (loss, exact match), all in no-grad mode. */
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

/* Beam search, each example of b on its own, with the same inputs, outputs
 * and tape use as tx_decode_greedy. A hypothesis of n tokens scores
 * Σ log p / len^alpha, len = n + 1 if it ended with EOS (whose probability is
 * in the sum) or n if it reached max_len (alpha 0: plain likelihood; larger
 * alpha favours longer outputs). Each step extends every live hypothesis by
 * every token and keeps the best `beam - finished` extensions; those ending
 * in EOS are finished and leave the beam, which so shrinks to nothing (the
 * Nematus variant: beam 1 is exactly greedy decoding). The search also stops
 * when no live hypothesis can beat the best finished one. Returns the best
 * finished hypothesis; score [B] (may be NULL) receives its score. Like any
 * beam search it may, rarely, miss a sequence greedy decoding finds. */
void tx_decode_beam(tx_tape *tp, const tx_model *m, const tx_batch *b,
                    int beam, double alpha, int max_len, int *out, int *out_len,
                    double *score);

/* Natural-log probability the model gives every target of b:
 * logp [b->B · b->Tt] gets log p(tgt_out[j]) at each position j whose target
 * is not PAD, 0 elsewhere (the row layout of tgt_out). Same tape use. */
void tx_decode_score(tx_tape *tp, const tx_model *m, const tx_batch *b,
                     double *logp);

/* Validation of ex [n] in batches of TX_EVAL_BATCH (so results do not depend
 * on how the caller splits the set): loss is the mean cross-entropy over all
 * target tokens (EOS included, as tx_model_loss), accuracy the share of
 * examples whose greedy decoding equals the target exactly. Resets tp before
 * returning. Allocates its buffers (aborts if the heap is exhausted). */
#define TX_EVAL_BATCH 128
typedef struct tx_eval_result {
    double loss, accuracy;
    int n;       /* examples */
    long tokens; /* target tokens the loss averages over */
} tx_eval_result;
tx_eval_result tx_decode_evaluate(tx_tape *tp, const tx_model *m,
                                  const tx_example *ex, int n);

#endif
