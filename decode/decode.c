/* decode.c: one search behind greedy decoding, beam search and sampling,
 * scoring and validation. The search keeps live hypotheses as rows, grouped
 * by the example (the batch row) they extend. Each step needs the logits at
 * the last position of every row: with the cache (the default) the decoder
 * runs on the rows' newest tokens only, its keys and values reordered as the
 * beam keeps and drops hypotheses; without it (testing), on every row's
 * whole prefix. A learned position table ends any row that fills it. */
#include "decode.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void no_grad(tx_tape *tp) {
    tx_tape_reset(tp);
    tp->no_grad = 1;
    tp->training = 0;
}

/* A candidate extension: hypothesis (row) k of its example by token v. */
typedef struct cand {
    double s;  /* Σ log p after appending v */
    int k, v;
} cand;

/* Best first; ties to the lower hypothesis, then token, as argmax does. */
static int cand_cmp(const void *pa, const void *pb) {
    const cand *a = pa, *b = pb;
    if (a->s != b->s) return a->s < b->s ? 1 : -1;
    if (a->k != b->k) return a->k - b->k;
    return a->v - b->v;
}

typedef struct search {
    tx_tape *tp;
    const tx_model *m;
    const tx_search *s;
    const tx_decoded *out;
    int B, K, V, cap; /* examples, beam, vocabulary, tokens a hypothesis holds */
    int limit;        /* longest decoder input the positions allow */
    tx_tensor *memory;        /* [B, Ts, C] (encoder-decoder) */
    const int *src_len;       /* [B] */
    const int *const *prompt; /* [B] prompts */
    const int *plen;          /* [B] their lengths */
    /* live hypotheses: n rows, examples in order */
    int n;
    int *ex, *len;            /* [B·K] example, tokens in seq */
    int *seq;                 /* [B·K · cap] prompt then generated tokens */
    double *sum;              /* [B·K] Σ log p of the generated tokens */
    double *lp;               /* [B·K · cap] log p of the token at each position */
    int *nex, *nlen, *nseq;   /* the next step's, swapped in */
    double *nsum, *nlp;
    int *from;                /* [B·K] row each next row extends */
    int *row_src_len, *tok;   /* [B·K] per row: source length, newest token */
    /* per example */
    int *finished, *best_n, *best_eos;
    double *best_score;
    int *best;                /* [B · cap] best finished hypothesis (generated part) */
    double *best_lp;          /* [B · cap] */
    cand *cands;              /* [K · V] */
    const tx_real **rowp;     /* [B·K] logits of each row's last position */
    tx_cache cache;
    size_t mark;              /* the arena after the encoder */
} search;

static void finish(search *S, int r, int eos, double sum_with) {
    int e = S->ex[r], P = S->plen[e], n = S->len[r] - P;
    int L = n + eos;
    double score = L ? sum_with / pow(L, S->s->alpha) : 0;
    if (!S->finished[e]++ || score > S->best_score[e]) {
        memcpy(S->best + (size_t)e * S->cap, S->seq + (size_t)r * S->cap + P, (size_t)n * sizeof(int));
        memcpy(S->best_lp + (size_t)e * S->cap, S->lp + (size_t)r * S->cap + P, (size_t)n * sizeof(double));
        S->best_n[e] = n;
        S->best_eos[e] = eos;
        S->best_score[e] = score;
    }
}

/* No live hypothesis of example e (rows [r0, r1)) can beat its best finished
 * one: log probabilities are <= 0, so a hypothesis with sum S ends with a
 * score at most S / max_len^alpha. */
static int hopeless(const search *S, int e, int r0, int r1) {
    if (!S->finished[e]) return 0;
    double bound = -INFINITY;
    for (int r = r0; r < r1; r++) bound = S->sum[r] > bound ? S->sum[r] : bound;
    return S->best_score[e] >= bound / pow(S->s->max_len, S->s->alpha);
}

/* ---- the logits of every row's last position ---------------------------------- */

static void logits_cached(search *S, int t) {
    tx_tape *tp = S->tp;
    tx_tape_release(tp, S->mark);
    tx_tensor *lg;
    if (t == 0) { /* the prompts, padded to the longest */
        int T = 0;
        for (int e = 0; e < S->B; e++) T = S->plen[e] > T ? S->plen[e] : T;
        int *ids = tx_tape_alloc(tp, (size_t)S->B * T * sizeof *ids);
        for (int e = 0; e < S->B; e++)
            for (int j = 0; j < T; j++) ids[e * T + j] = j < S->plen[e] ? S->prompt[e][j] : TX_PAD;
        lg = tx_model_decode_cached(tp, S->m, &S->cache, S->memory, S->src_len, ids, S->plen,
                                    S->B, T);
        for (int e = 0; e < S->B; e++)
            S->rowp[e] = lg->data + ((size_t)e * T + S->plen[e] - 1) * S->V;
        return;
    }
    lg = tx_model_decode_cached(tp, S->m, &S->cache, NULL, S->row_src_len, S->tok, NULL, S->n, 1);
    for (int r = 0; r < S->n; r++) S->rowp[r] = lg->data + (size_t)r * S->V;
}

static void logits_recomputed(search *S) {
    tx_tape *tp = S->tp;
    tx_tape_release(tp, S->mark);
    int T = 0, n = S->n;
    for (int r = 0; r < n; r++) T = S->len[r] > T ? S->len[r] : T;
    int *ids = tx_tape_alloc(tp, (size_t)n * T * sizeof *ids);
    for (int r = 0; r < n; r++)
        for (int j = 0; j < T; j++) ids[r * T + j] = j < S->len[r] ? S->seq[(size_t)r * S->cap + j] : TX_PAD;
    tx_tensor *mem = NULL;
    if (S->memory) { /* each row's copy of its example's memory */
        int Ts = S->memory->shape[1], C = S->memory->shape[2];
        mem = tx_tensor_new(tp, 0, 3, n, Ts, C);
        for (int r = 0; r < n; r++)
            memcpy(mem->data + (size_t)r * Ts * C, S->memory->data + (size_t)S->ex[r] * Ts * C,
                   (size_t)Ts * C * sizeof(tx_real));
    }
    tx_tensor *lg = tx_model_decode(tp, S->m, mem, mem ? S->row_src_len : NULL, ids, S->len, n,
                                    T, NULL);
    for (int r = 0; r < n; r++) S->rowp[r] = lg->data + ((size_t)r * T + S->len[r] - 1) * S->V;
}

/* ---- choosing the next tokens ----------------------------------------------------- */

static int argmax(const tx_real *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static int by_prob(const void *pa, const void *pb) {
    const cand *a = pa, *b = pb;
    if (a->s != b->s) return a->s < b->s ? 1 : -1;
    return a->v - b->v;
}

/* One token drawn from softmax(x / temperature) cut to top_k and top_p. */
static int draw(const search *S, const tx_real *x, tx_rng *rng) {
    const tx_search *s = S->s;
    if (s->temperature <= 0) return argmax(x, S->V);
    cand *c = S->cands;
    double mx = x[argmax(x, S->V)], z = 0;
    for (int v = 0; v < S->V; v++) c[v] = (cand){exp((x[v] - mx) / s->temperature), 0, v};
    qsort(c, (size_t)S->V, sizeof *c, by_prob);
    int keep = s->top_k > 0 && s->top_k < S->V ? s->top_k : S->V;
    for (int v = 0; v < keep; v++) z += c[v].s;
    if (s->top_p < 1) { /* the smallest head whose mass reaches top_p */
        double acc = 0;
        for (int v = 0; v < keep; v++)
            if ((acc += c[v].s) >= s->top_p * z) {
                keep = v + 1;
                z = acc;
                break;
            }
    }
    double u = tx_rng_uniform(rng) * z, acc = 0;
    for (int v = 0; v < keep; v++)
        if ((acc += c[v].s) > u) return c[v].v;
    return c[keep - 1].v;
}

/* Extends the rows of example e ([r0, r1)) into the next step's rows. */
static void extend(search *S, int e, int r0, int r1, int *nn) {
    int width = S->K - S->finished[e], nc = 0;
    if (width <= 0) return;
    for (int r = r0; r < r1; r++) {
        const tx_real *x = S->rowp[r];
        double lse = tx_logsumexp(x, S->V);
        if (width == 1 && r1 - r0 == 1) { /* greedy or sampling: one candidate */
            int v = S->s->rng ? draw(S, x, &S->s->rng[e]) : argmax(x, S->V);
            S->cands[nc++] = (cand){S->sum[r] + (x[v] - lse), 0, v};
            break;
        }
        for (int v = 0; v < S->V; v++) S->cands[nc++] = (cand){S->sum[r] + (x[v] - lse), r - r0, v};
    }
    if (nc > 1) qsort(S->cands, (size_t)nc, sizeof *S->cands, cand_cmp);
    for (int i = 0; i < nc && i < width; i++) {
        const cand *c = &S->cands[i];
        int r = r0 + c->k;
        if (c->v == TX_EOS) {
            finish(S, r, 1, c->s);
            continue;
        }
        int q = (*nn)++, L = S->len[r];
        memcpy(S->nseq + (size_t)q * S->cap, S->seq + (size_t)r * S->cap, (size_t)L * sizeof(int));
        memcpy(S->nlp + (size_t)q * S->cap, S->lp + (size_t)r * S->cap, (size_t)L * sizeof(double));
        S->nseq[(size_t)q * S->cap + L] = c->v;
        S->nlp[(size_t)q * S->cap + L] = c->s - S->sum[r];
        S->nlen[q] = L + 1;
        S->nsum[q] = c->s;
        S->nex[q] = e;
        S->from[q] = r;
        if (S->s->emit && S->K == 1) S->s->emit(S->s->ctx, e, c->v);
    }
}

#define SWAP(a, b) do { __typeof__(a) t_ = a; a = b; b = t_; } while (0)

static void run(search *S) {
    for (int t = 0; t < S->s->max_len && S->n; t++) {
        if (S->s->no_cache) logits_recomputed(S);
        else logits_cached(S, t);
        int nn = 0;
        for (int r0 = 0, r1; r0 < S->n; r0 = r1) {
            int e = S->ex[r0];
            for (r1 = r0; r1 < S->n && S->ex[r1] == e; r1++) {}
            extend(S, e, r0, r1, &nn);
        }
        SWAP(S->seq, S->nseq);
        SWAP(S->lp, S->nlp);
        SWAP(S->len, S->nlen);
        SWAP(S->sum, S->nsum);
        SWAP(S->ex, S->nex);
        S->n = nn;
        if (!S->s->no_cache) tx_cache_reorder(&S->cache, S->from, nn);
        /* Rows out of room (positions, max_len) or hopeless end here. */
        int kept = 0;
        for (int r0 = 0, r1; r0 < S->n; r0 = r1) {
            int e = S->ex[r0];
            for (r1 = r0; r1 < S->n && S->ex[r1] == e; r1++) {}
            int full = S->len[r0] > S->limit || t + 1 == S->s->max_len;
            if (full || hopeless(S, e, r0, r1)) {
                for (int r = r0; r < r1; r++) finish(S, r, 0, S->sum[r]);
                continue;
            }
            for (int r = r0; r < r1; r++) S->from[kept] = r, S->nex[kept++] = e;
        }
        if (kept < S->n) { /* compact the surviving rows */
            for (int q = 0; q < kept; q++) {
                int r = S->from[q];
                memmove(S->seq + (size_t)q * S->cap, S->seq + (size_t)r * S->cap, (size_t)S->len[r] * sizeof(int));
                memmove(S->lp + (size_t)q * S->cap, S->lp + (size_t)r * S->cap, (size_t)S->len[r] * sizeof(double));
                S->len[q] = S->len[r], S->sum[q] = S->sum[r], S->ex[q] = S->ex[r];
            }
            if (!S->s->no_cache) tx_cache_reorder(&S->cache, S->from, kept);
            S->n = kept;
        }
        for (int r = 0; r < S->n; r++) {
            S->tok[r] = S->seq[(size_t)r * S->cap + S->len[r] - 1];
            S->row_src_len[r] = S->src_len ? S->src_len[S->ex[r]] : 0;
        }
    }
    for (int r = 0; r < S->n; r++) finish(S, r, 0, S->sum[r]); /* max_len 0 */
}

/* Shared by tx_decode and tx_decode_prompts: memory and src_len set (or NULL). */
static void search_all(tx_tape *tp, const tx_model *m, tx_tensor *memory, const int *src_len,
                       const int *const *prompt, const int *plen, int B, const tx_search *s,
                       const tx_decoded *out) {
    TX_ASSERT(s->beam >= 1 && s->max_len >= 0, "decode: beam %d, max_len %d", s->beam, s->max_len);
    TX_ASSERT(!s->rng || s->beam == 1, "decode: sampling keeps one hypothesis (beam %d)", s->beam);
    search S = {.tp = tp, .m = m, .s = s, .out = out, .B = B, .K = s->beam,
                .V = m->cfg.tgt_vocab, .memory = memory, .src_len = src_len,
                .prompt = prompt, .plen = plen, .n = B};
    S.limit = m->cfg.positions == TX_POS_LEARNED ? m->cfg.max_len : INT_MAX;
    int P = 0;
    for (int e = 0; e < B; e++) P = plen[e] > P ? plen[e] : P;
    S.cap = P + s->max_len + 1;
    size_t rows = (size_t)B * S.K, hyp = rows * S.cap;
    S.seq = tx_malloc(hyp * sizeof *S.seq), S.nseq = tx_malloc(hyp * sizeof *S.nseq);
    S.lp = tx_calloc(hyp, sizeof *S.lp), S.nlp = tx_calloc(hyp, sizeof *S.nlp);
    S.ex = tx_malloc(rows * sizeof(int)), S.nex = tx_malloc(rows * sizeof(int));
    S.len = tx_malloc(rows * sizeof(int)), S.nlen = tx_malloc(rows * sizeof(int));
    S.sum = tx_calloc(rows, sizeof(double)), S.nsum = tx_calloc(rows, sizeof(double));
    S.from = tx_malloc(rows * sizeof(int)), S.tok = tx_malloc(rows * sizeof(int));
    S.row_src_len = tx_calloc(rows, sizeof(int));
    S.rowp = tx_malloc(rows * sizeof *S.rowp);
    S.cands = tx_malloc((size_t)S.K * S.V * sizeof *S.cands);
    S.finished = tx_calloc((size_t)B, sizeof(int)), S.best_n = tx_calloc((size_t)B, sizeof(int));
    S.best_eos = tx_calloc((size_t)B, sizeof(int));
    S.best_score = tx_calloc((size_t)B, sizeof(double));
    S.best = tx_malloc((size_t)B * S.cap * sizeof(int));
    S.best_lp = tx_malloc((size_t)B * S.cap * sizeof(double));
    for (int e = 0; e < B; e++) {
        memcpy(S.seq + (size_t)e * S.cap, prompt[e], (size_t)plen[e] * sizeof(int));
        S.len[e] = plen[e];
        S.ex[e] = e;
        S.row_src_len[e] = src_len ? src_len[e] : 0;
        if (plen[e] > S.limit) S.n = 0; /* cannot happen: callers check prompts */
    }
    if (!s->no_cache && S.n)
        tx_cache_init(&S.cache, m, (int)rows, P + s->max_len < S.limit ? P + s->max_len : S.limit,
                      memory ? memory->shape[1] : 0);
    S.mark = tx_tape_mark(tp);
    run(&S);
    for (int e = 0; e < B; e++) {
        int n = S.best_n[e];
        memcpy(out->tok + (size_t)e * s->max_len, S.best + (size_t)e * S.cap, (size_t)n * sizeof(int));
        out->len[e] = n;
        if (out->logp)
            memcpy(out->logp + (size_t)e * s->max_len, S.best_lp + (size_t)e * S.cap, (size_t)n * sizeof(double));
        if (out->score) out->score[e] = S.best_score[e];
        if (out->eos) out->eos[e] = S.best_eos[e];
    }
    if (!s->no_cache && S.cache.block) tx_cache_free(&S.cache);
    void *bufs[] = {S.seq, S.nseq, S.lp, S.nlp, S.ex, S.nex, S.len, S.nlen, S.sum, S.nsum,
                    S.from, S.tok, S.row_src_len, S.rowp, S.cands, S.finished, S.best_n,
                    S.best_eos, S.best_score, S.best, S.best_lp};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    tp->no_grad = 0;
}

void tx_decode(tx_tape *tp, const tx_model *m, const tx_batch *b, const tx_search *s,
               const tx_decoded *out) {
    int B = b->B, dec_only = m->cfg.kind == TX_DECODER_ONLY;
    no_grad(tp);
    tx_tensor *memory = dec_only ? NULL
                                 : tx_model_encode(tp, m, b->src, b->src_len, B, b->Ts, NULL);
    const int **prompt = tx_malloc((size_t)B * sizeof *prompt);
    int *plen = tx_malloc((size_t)B * sizeof *plen);
    static const int bos = TX_BOS;
    for (int i = 0; i < B; i++) {
        prompt[i] = dec_only ? b->tgt_in + (size_t)i * b->Tt : &bos;
        plen[i] = dec_only ? b->src_len[i] + 1 : 1;
    }
    search_all(tp, m, memory, dec_only ? NULL : b->src_len, prompt, plen, B, s, out);
    free(prompt);
    free(plen);
}

void tx_decode_prompts(tx_tape *tp, const tx_model *m, const int *const *prompt,
                       const int *plen, int B, const tx_search *s, const tx_decoded *out) {
    TX_ASSERT(m->cfg.kind == TX_DECODER_ONLY, "tx_decode_prompts: decoder-only models only");
    for (int i = 0; i < B; i++)
        TX_ASSERT(plen[i] >= 1, "tx_decode_prompts: prompt %d is empty", i);
    no_grad(tp);
    search_all(tp, m, NULL, NULL, prompt, plen, B, s, out);
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
    tx_search s = {.max_len = max_out, .beam = 1};
    tx_decoded dec = {.tok = out, .len = out_len};
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
        tx_decode(tp, m, &b, &s, &dec);
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

/* Windows are long: fewer per batch keep the arena small. */
#define TEXT_BATCH 16

tx_eval_result tx_decode_evaluate_text(tx_tape *tp, const tx_model *m, const tx_vocab *v,
                                       const int *tokens, int windows, int context) {
    tx_eval_result r = {.n = windows};
    tx_batch b;
    tx_batch_alloc(&b, TEXT_BATCH, 0, context - 1);
    size_t *off = tx_malloc(TEXT_BATCH * sizeof *off);
    double nats = 0;
    long chars = 0;
    for (int i = 0; i < windows; i += TEXT_BATCH) {
        int nb = windows - i < TEXT_BATCH ? windows - i : TEXT_BATCH;
        for (int j = 0; j < nb; j++) off[j] = (size_t)(i + j) * context;
        tx_batch_fill_windows(&b, tokens, off, nb, context);
        no_grad(tp);
        tx_tensor *loss = tx_model_loss(tp, m, b.src, b.src_len, 0, b.tgt_in, b.tgt_out,
                                        b.tgt_len, context, nb, 0);
        nats += loss->data[0] * nb * context;
        for (int j = 0; j < nb * context; j++) chars += tx_vocab_chars(v, b.tgt_out[j]);
    }
    r.tokens = (long)windows * context;
    r.loss = r.tokens ? nats / r.tokens : 0;
    r.bits_per_char = chars ? nats / M_LN2 / chars : 0;
    tx_tape_reset(tp);
    tp->no_grad = 0;
    tx_batch_free(&b);
    free(off);
    return r;
}
