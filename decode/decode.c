/* decode.c: greedy decoding, beam search, scoring and validation. Each
 * decoding step runs the decoder over every row's whole prefix (no key/value
 * cache: the models here are small) and reads the row's last position. Rows
 * have their own lengths, so a decoder-only batch keeps each prompt where
 * training put it. A learned position table ends any row that fills it. */
#include "decode.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int argmax(const tx_real *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Longest decoder input the model accepts. */
static int position_limit(const tx_model *m) {
    return m->cfg.positions == TX_POS_LEARNED ? m->cfg.max_len : INT_MAX;
}

static void no_grad(tx_tape *tp) {
    tx_tape_reset(tp);
    tp->no_grad = 1;
    tp->training = 0;
}

void tx_decode_greedy(tx_tape *tp, const tx_model *m, const tx_batch *b,
                      int max_len, int *out, int *out_len) {
    int B = b->B, dec_only = m->cfg.kind == TX_DECODER_ONLY;
    int V = m->cfg.tgt_vocab, limit = position_limit(m);
    no_grad(tp);
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
        done[i] = len[i] > limit;
        out_len[i] = 0;
    }
    size_t mark = tx_tape_mark(tp);
    for (int step = 0; step < max_len; step++) {
        tx_tape_release(tp, mark); /* the previous step's activations */
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
            if (len[i] == limit) { /* the table is full: no next step */
                done[i] = 1;
                continue;
            }
            seq[(size_t)i * cap + len[i]++] = tok;
            active++;
        }
        if (!active) break;
    }
    tp->no_grad = 0;
}

/* ---- beam search ------------------------------------------------------------ */

typedef struct cand {
    double s;  /* Σ log p after appending v */
    int k, v;  /* hypothesis, token */
} cand;

/* Best first; ties to the lower hypothesis, then token, as argmax does. */
static int cand_cmp(const void *pa, const void *pb) {
    const cand *a = pa, *b = pb;
    if (a->s != b->s) return a->s < b->s ? 1 : -1;
    if (a->k != b->k) return a->k - b->k;
    return a->v - b->v;
}

typedef struct beam_state {
    int K, cap;       /* beam width; tokens per hypothesis (prompt included) */
    int *seq, *next;  /* [K · cap] live hypotheses, the next step's */
    double *sum, *next_sum; /* [K] */
    cand *cands;      /* [K · V] */
    int *best;        /* [cap] best finished hypothesis (prompt included) */
    int best_n;       /* its generated tokens */
    double best_score;
    int finished;
} beam_state;

static void finish(beam_state *s, const int *seq, int P, int n, double sum, int eos,
                   double alpha) {
    int len = n + eos;
    double score = len ? sum / pow(len, alpha) : 0;
    if (!s->finished++ || score > s->best_score) {
        memcpy(s->best, seq, (size_t)(P + n) * sizeof *seq);
        s->best_n = n;
        s->best_score = score;
    }
}

/* Whether no live hypothesis can beat the best finished one. Log
 * probabilities are <= 0, so a hypothesis with sum S now ends with a score
 * at most S / max_len^alpha (its sum only falls, its length is at most
 * max_len): stopping then returns what running on would. */
static int hopeless(const beam_state *s, int alive, double alpha, int max_len) {
    if (!s->finished) return 0;
    double bound = -INFINITY;
    for (int k = 0; k < alive; k++) bound = s->sum[k] > bound ? s->sum[k] : bound;
    return s->best_score >= bound / pow(max_len, alpha);
}

/* Beam search of row `row` of b; returns the winner's score. */
static double beam_row(tx_tape *tp, const tx_model *m, const tx_batch *b, int row,
                       beam_state *s, double alpha, int max_len, int *out, int *out_len) {
    int dec_only = m->cfg.kind == TX_DECODER_ONLY, V = m->cfg.tgt_vocab, K = s->K;
    int ls = b->src_len[row], P = dec_only ? ls + 1 : 1, C = m->cfg.d_model;
    no_grad(tp);
    tx_tensor *mem = NULL;
    if (!dec_only) { /* encode once, then give every hypothesis its copy */
        tx_tensor *one = tx_model_encode(tp, m, b->src + (size_t)row * b->Ts, &ls, 1, ls, NULL);
        mem = tx_tensor_new(tp, 0, 3, K, ls, C);
        for (int k = 0; k < K; k++) memcpy(mem->data + one->size * k, one->data, one->size * sizeof *one->data);
    }
    if (dec_only) memcpy(s->seq, b->tgt_in + (size_t)row * b->Tt, (size_t)P * sizeof *s->seq);
    else s->seq[0] = TX_BOS;
    s->sum[0] = 0;
    s->finished = 0;
    int alive = 1, t = 0, limit = position_limit(m);
    int *packed = tx_tape_alloc(tp, (size_t)K * s->cap * sizeof *packed);
    for (; t < max_len && P + t <= limit && alive && !hopeless(s, alive, alpha, max_len); t++) {
        int T = P + t;
        for (int k = 0; k < alive; k++)
            memcpy(packed + (size_t)k * T, s->seq + (size_t)k * s->cap, (size_t)T * sizeof *packed);
        tx_tensor view, *memv = NULL;
        if (mem) { /* the first `alive` copies */
            view = *mem;
            view.shape[0] = alive;
            view.size = (size_t)alive * ls * C;
            memv = &view;
        }
        size_t mark = tx_tape_mark(tp);
        tx_tensor *logits = tx_model_decode(tp, m, memv, NULL, packed, NULL, alive, T, NULL);
        int nc = 0;
        for (int k = 0; k < alive; k++) {
            const tx_real *x = logits->data + ((size_t)k * T + T - 1) * V;
            double lse = tx_logsumexp(x, V);
            for (int v = 0; v < V; v++) s->cands[nc++] = (cand){s->sum[k] + (x[v] - lse), k, v};
        }
        tx_tape_release(tp, mark); /* this step's activations */
        qsort(s->cands, (size_t)nc, sizeof *s->cands, cand_cmp);
        /* The best K - finished extensions; those ending in EOS finish and
         * give up their place, so the beam shrinks as hypotheses complete. */
        int width = K - s->finished, kept = 0;
        for (int r = 0; r < nc && r < width; r++) {
            const cand *c = &s->cands[r];
            const int *src = s->seq + (size_t)c->k * s->cap;
            if (c->v == TX_EOS) {
                finish(s, src, P, t, c->s, 1, alpha);
                continue;
            }
            int *dst = s->next + (size_t)kept * s->cap;
            memcpy(dst, src, (size_t)T * sizeof *dst);
            dst[T] = c->v;
            s->next_sum[kept++] = c->s;
        }
        int *ts = s->seq;
        s->seq = s->next, s->next = ts;
        double *tsum = s->sum;
        s->sum = s->next_sum, s->next_sum = tsum;
        alive = kept;
    }
    /* Out of room (or hopeless, which changes nothing): the rest end here. */
    for (int k = 0; k < alive; k++) finish(s, s->seq + (size_t)k * s->cap, P, t, s->sum[k], 0, alpha);
    memcpy(out, s->best + P, (size_t)s->best_n * sizeof *out);
    *out_len = s->best_n;
    return s->best_score;
}

void tx_decode_beam(tx_tape *tp, const tx_model *m, const tx_batch *b,
                    int beam, double alpha, int max_len, int *out, int *out_len,
                    double *score) {
    TX_ASSERT(beam >= 1 && max_len >= 0, "tx_decode_beam: beam %d, max_len %d", beam, max_len);
    int V = m->cfg.tgt_vocab, cap = (m->cfg.kind == TX_DECODER_ONLY ? b->Tt : 1) + max_len;
    beam_state s = {.K = beam, .cap = cap};
    size_t kc = (size_t)beam * cap;
    s.seq = tx_malloc(kc * sizeof *s.seq);
    s.next = tx_malloc(kc * sizeof *s.next);
    s.sum = tx_malloc((size_t)beam * sizeof *s.sum);
    s.next_sum = tx_malloc((size_t)beam * sizeof *s.next_sum);
    s.cands = tx_malloc((size_t)beam * V * sizeof *s.cands);
    s.best = tx_malloc((size_t)cap * sizeof *s.best);
    for (int i = 0; i < b->B; i++) {
        double sc = beam_row(tp, m, b, i, &s, alpha, max_len, out + (size_t)i * max_len,
                             &out_len[i]);
        if (score) score[i] = sc;
    }
    free(s.seq);
    free(s.next);
    free(s.sum);
    free(s.next_sum);
    free(s.cands);
    free(s.best);
    tp->no_grad = 0;
}

/* ---- scoring and validation ----------------------------------------------- */

void tx_decode_score(tx_tape *tp, const tx_model *m, const tx_batch *b,
                     double *logp) {
    int dec_only = m->cfg.kind == TX_DECODER_ONLY, V = m->cfg.tgt_vocab;
    no_grad(tp);
    tx_tensor *memory = dec_only ? NULL
                                 : tx_model_encode(tp, m, b->src, b->src_len, b->B,
                                                   b->Ts, NULL);
    tx_tensor *logits = tx_model_decode(tp, m, memory, dec_only ? NULL : b->src_len,
                                        b->tgt_in, b->tgt_len, b->B, b->Tt, NULL);
    for (size_t j = 0; j < (size_t)b->B * b->Tt; j++) {
        const tx_real *x = logits->data + j * V;
        int y = b->tgt_out[j];
        logp[j] = y == TX_PAD ? 0 : x[y] - tx_logsumexp(x, V);
    }
    tp->no_grad = 0;
}

static int same_tokens(const int *a, int na, const int *b, int nb) {
    return na == nb && !memcmp(a, b, (size_t)na * sizeof *a);
}

tx_eval_result tx_decode_evaluate(tx_tape *tp, const tx_model *m,
                                  const tx_example *ex, int n) {
    tx_eval_result r = {.n = n};
    if (n <= 0) return r;
    int dec_only = m->cfg.kind == TX_DECODER_ONLY, max_src = 1, max_tgt = 0;
    for (int i = 0; i < n; i++) {
        max_src = ex[i].src_len > max_src ? ex[i].src_len : max_src;
        max_tgt = ex[i].tgt_len > max_tgt ? ex[i].tgt_len : max_tgt;
    }
    /* One token past the longest target decides every verdict. */
    int max_out = max_tgt + 1, correct = 0;
    tx_batch b;
    tx_batch_alloc(&b, TX_EVAL_BATCH, max_src, max_tgt);
    int *out = tx_malloc((size_t)TX_EVAL_BATCH * max_out * sizeof *out);
    int *out_len = tx_malloc(TX_EVAL_BATCH * sizeof *out_len);
    double loss_sum = 0;
    for (int i = 0; i < n; i += TX_EVAL_BATCH) {
        int nb = n - i < TX_EVAL_BATCH ? n - i : TX_EVAL_BATCH;
        tx_batch_fill(&b, ex + i, nb, dec_only);
        no_grad(tp);
        tx_tensor *loss = tx_model_loss(tp, m, b.src, b.src_len, b.Ts, b.tgt_in, b.tgt_out,
                                        b.tgt_len, b.Tt, nb, 0);
        int count = 0;
        for (int j = 0; j < nb * b.Tt; j++) count += b.tgt_out[j] != TX_PAD;
        loss_sum += loss->data[0] * count;
        r.tokens += count;
        tx_decode_greedy(tp, m, &b, max_out, out, out_len);
        for (int j = 0; j < nb; j++)
            correct += same_tokens(out + (size_t)j * max_out, out_len[j], ex[i + j].tgt_ids,
                                   ex[i + j].tgt_len);
    }
    tx_tape_reset(tp);
    tp->no_grad = 0;
    tx_batch_free(&b);
    free(out);
    free(out_len);
    r.loss = r.tokens ? loss_sum / r.tokens : 0;
    r.accuracy = (double)correct / n;
    return r;
}
