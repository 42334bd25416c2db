/* decode.h: turning a model's outputs into token sequences and scoring them:
 * batched greedy decoding, beam search and sampling with a key/value cache
 * (or, for testing it, without), per-token log-likelihoods, and the
 * validation measures (loss, exact match; bits per character for text), all
 * in no-grad mode. */
#ifndef TX_DECODE_H
#define TX_DECODE_H

#include "../data/data.h"
#include "../layers/model.h"

/* How to decode. A hypothesis of n tokens scores Σ log p / len^alpha, len =
 * n + 1 if it ended with EOS (whose probability is in the sum) or n if it
 * stopped at max_len or at the end of a learned position table (alpha 0:
 * plain likelihood; larger alpha favours longer outputs). Each step extends
 * every live hypothesis of a row by every token and keeps the best
 * `beam - finished` extensions; those ending in EOS are finished and leave
 * the beam, which so shrinks to nothing (the Nematus variant: beam 1 is
 * exactly greedy decoding). A row also stops when no live hypothesis can
 * beat its best finished one. Like any beam search it may, rarely, miss a
 * sequence greedy decoding finds. With beam 1 and rng set, each token is
 * drawn instead: from softmax(logits / temperature), restricted to the
 * top_k likeliest (0: all) and to the smallest set whose probability
 * reaches top_p (1: all); temperature 0 is greedy. */
typedef struct tx_search {
    int max_len;        /* tokens to generate at most, per row */
    int beam;           /* hypotheses kept per row (1: greedy or sampling) */
    double alpha;       /* length penalty exponent */
    int no_cache;       /* recompute the decoder over each whole prefix at
                           every step instead of keeping keys and values:
                           slower, for testing the cache */
    tx_rng *rng;        /* [B] one stream per row: sample (beam 1); NULL: greedy */
    double temperature; /* > 0 when sampling */
    int top_k;
    double top_p;
    /* beam 1: called with each token as it is chosen (EOS excluded) */
    void (*emit)(void *ctx, int row, int token);
    void *ctx;
} tx_search;

/* What decoding writes for row i; any pointer but tok and len may be NULL. */
typedef struct tx_decoded {
    int *tok;      /* [B · max_len] row i at i·max_len, EOS excluded */
    int *len;      /* [B] tokens of row i */
    double *logp;  /* [B · max_len] each token's log-probability under the model */
    double *score; /* [B] the winner's score (beam) */
    int *eos;      /* [B] 1 if the row ended with EOS, 0 if it ran out of room */
} tx_decoded;

/* Every function here runs with tp->no_grad = 1 and tp->training = 0, and
 * leaves no_grad 0 and training 0: a tape shared with training needs
 * training = 1 again. */
/* Decodes every example of b (either layout: encoder-decoder from b->src,
 * decoder-only from the prompt b->tgt_in[0 .. src_len + 1), source and BOS).
 * Runs on tp in no-grad mode, resetting it first and leaving its arena in use
 * (the caller resets it). Allocates its buffers (aborts if the heap is
 * exhausted) and frees them. */
void tx_decode(tx_tape *tp, const tx_model *m, const tx_batch *b, const tx_search *s,
               const tx_decoded *out);

/* Decoder-only models: continues B prompts, prompt[i] of plen[i] >= 1
 * tokens each, as tx_decode does. */
void tx_decode_prompts(tx_tape *tp, const tx_model *m, const int *const *prompt,
                       const int *plen, int B, const tx_search *s, const tx_decoded *out);

/* Natural-log probability the model gives every target of b:
 * logp [b->B · b->Tt] gets log p(tgt_out[j]) at each position j whose target
 * is not PAD, 0 elsewhere (the row layout of tgt_out). Same tape use. */
void tx_decode_score(tx_tape *tp, const tx_model *m, const tx_batch *b,
                     double *logp);

/* Validation of ex [n] in batches of TX_EVAL_BATCH (so results do not depend
 * on how the caller splits the set): loss is the mean cross-entropy over all
 * target tokens (EOS included, as tx_model_loss), accuracy the share of
 * examples whose greedy decoding equals the target exactly. The text task
 * (windows): loss per token, bits per character (the nats of all targets in
 * bits over the characters they spell, comparable across vocabularies), no
 * accuracy. Both reset tp before returning. */
#define TX_EVAL_BATCH 128
typedef struct tx_eval_result {
    double loss, accuracy;
    double bits_per_char; /* text only */
    int n;                /* examples (text: windows) */
    long tokens;          /* target tokens the loss averages over */
} tx_eval_result;
tx_eval_result tx_decode_evaluate(tx_tape *tp, const tx_model *m,
                                  const tx_example *ex, int n);
/* windows windows of context + 1 tokens of tokens, the k-th at k·context,
 * in batches of 16 windows. */
tx_eval_result tx_decode_evaluate_text(tx_tape *tp, const tx_model *m, const tx_vocab *v,
                                       const int *tokens, int windows, int context);

#endif
