/* data.c: the data stream: a task's vocabulary, its held-out validation
 * examples and reproducible training batches. */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "internal.h"

/* Independent streams of one data seed. */
#define TRAIN_STREAM 0x747261696e000000ULL
#define VALID_STREAM 0x76616c6964000000ULL

static int is_generated(const tx_data *d) {
    return d->cfg.task != TX_TASK_TSV && d->cfg.task != TX_TASK_TEXT;
}
static int is_text(const tx_data *d) { return d->cfg.task == TX_TASK_TEXT; }

/* Tokenizes e's texts into ids (room for cap_src + cap_tgt, target right
 * after source) and returns the first id not used. */
static int *encode(const tx_vocab *v, tx_example *e, int *ids, int cap_src,
                   int cap_tgt) {
    e->src_ids = ids;
    e->src_len = tx_vocab_encode(v, TX_SRC, e->src, ids, cap_src);
    e->tgt_ids = ids + e->src_len;
    e->tgt_len = tx_vocab_encode(v, TX_TGT, e->tgt, ids + e->src_len, cap_tgt);
    TX_ASSERT(e->src_len <= cap_src && e->tgt_len <= cap_tgt,
              "encode: '%s' -> '%s' is longer than %d -> %d tokens", e->src,
              e->tgt, cap_src, cap_tgt);
    return ids + e->src_len + e->tgt_len;
}

/* ---- generated tasks ------------------------------------------------------ */

/* Draws from the training distribution until K distinct held-out examples
 * are found; tiny tasks may have fewer, so the draws are bounded. */
static void generate_valid(tx_data *d) {
    const tx_data_config *c = &d->cfg;
    int K = c->valid_examples, room = d->max_src + d->max_tgt, size = 1;
    size_t cap = tx_task_text_cap(c);
    d->valid = tx_malloc((size_t)K * sizeof *d->valid);
    d->text[1] = tx_malloc((size_t)K * 2 * cap);
    d->ids[1] = tx_malloc((size_t)K * (size_t)room * sizeof(int));
    while (size < 2 * K) size *= 2;
    int *seen = tx_malloc((size_t)size * sizeof *seen); /* open addressing */
    memset(seen, 0xff, (size_t)size * sizeof *seen);
    tx_rng r;
    tx_rng_seed(&r, c->seed ^ VALID_STREAM);
    for (long t = 0; d->n_valid < K && t < 200L * K; t++) {
        tx_example *e = &d->valid[d->n_valid];
        char *src = d->text[1] + (size_t)d->n_valid * 2 * cap;
        tx_task_sample(c, &r, src, src + cap);
        if (!tx_data_held_out(c->seed, src)) continue;
        size_t h = tx_text_hash(src) & (size_t)(size - 1);
        while (seen[h] >= 0 && strcmp(d->valid[seen[h]].src, src))
            h = (h + 1) & (size_t)(size - 1);
        if (seen[h] >= 0) continue;
        seen[h] = d->n_valid;
        e->src = src;
        e->tgt = src + cap;
        encode(&d->vocab, e, d->ids[1] + (size_t)d->n_valid++ * room,
               d->max_src, d->max_tgt);
    }
    free(seen);
}

/* SentencePiece on a generated task: trained on the sources and targets of
 * SPM_SENTENCES training examples drawn from a stream of their own. */
#define SPM_SENTENCES 20000
#define SPM_STREAM 0x73706d0000000000ULL

static int generated_spm(tx_data *d, tx_err *err) {
    const tx_data_config *c = &d->cfg;
    if (d->vocab.spm) return TX_OK; /* loaded from spm_model */
    size_t cap = tx_task_text_cap(c);
    char *text = tx_malloc(2 * cap * SPM_SENTENCES);
    const char **s = tx_malloc(2 * SPM_SENTENCES * sizeof *s);
    tx_rng r;
    tx_rng_seed(&r, c->seed ^ SPM_STREAM);
    for (size_t i = 0; i < SPM_SENTENCES; i++) {
        char *src = text + 2 * cap * i;
        do tx_task_sample(c, &r, src, src + cap);
        while (tx_data_held_out(c->seed, src));
        s[2 * i] = src, s[2 * i + 1] = src + cap;
    }
    int rc = tx_vocab_sentencepiece(&d->vocab, c, s, 2 * SPM_SENTENCES, err);
    free(s);
    free(text);
    return rc;
}

static int open_generated(tx_data *d, tx_err *err) {
    const tx_data_config *c = &d->cfg;
    if (c->task <= TX_TASK_SORT)
        TX_ASSERT(c->symbols >= 1 && c->symbols <= TX_MAX_SYMBOLS &&
                      c->min_len >= 1 && c->min_len <= c->max_len &&
                      c->max_len <= TX_MAX_SEQ,
                  "tx_data_open: symbols %d, lengths %d..%d", c->symbols,
                  c->min_len, c->max_len);
    double sources = tx_task_sources(c);
    if (sources < 100)
        return tx_error(err, TX_EINPUT,
                        "data: %d symbols of length %d..%d make only %.0f "
                        "distinct sequences; need at least 100 to hold out "
                        "validation examples",
                        c->symbols, c->min_len, c->max_len, sources);
    size_t cap = tx_task_text_cap(c);
    if (c->tokenize == TX_TOK_SPM) {
        int rc = generated_spm(d, err);
        if (rc) return rc;
        d->max_src = d->max_tgt = (int)cap; /* a piece holds one byte or more */
    } else {
        tx_task_vocab(c, &d->vocab);
        tx_task_max_tokens(c, &d->max_src, &d->max_tgt);
    }
    d->text[0] = tx_malloc(2 * cap);
    d->ids[0] = tx_malloc((size_t)(d->max_src + d->max_tgt) * sizeof(int));
    d->sample.src = d->text[0];
    d->sample.tgt = d->text[0] + cap;
    generate_valid(d);
    tx_rng_seed(&d->rng, c->seed ^ TRAIN_STREAM);
    return TX_OK;
}

static const tx_example *next_generated(tx_data *d) {
    size_t cap = tx_task_text_cap(&d->cfg);
    do tx_task_sample(&d->cfg, &d->rng, d->text[0], d->text[0] + cap);
    while (tx_data_held_out(d->cfg.seed, d->text[0]));
    encode(&d->vocab, &d->sample, d->ids[0], d->max_src, d->max_tgt);
    return &d->sample;
}

/* ---- TSV corpora ---------------------------------------------------------- */

/* Every example's ids in one block, each text encoded once. The reader's
 * token counts size the block; SentencePiece's pieces are known only now
 * (the reader counted characters, and a text may take more byte pieces),
 * so the block grows as needed and the examples point into it at the end. */
static int *encode_all(const tx_vocab *v, tx_example *ex, int n) {
    size_t cap = 1, used = 0;
    for (int i = 0; i < n; i++) cap += (size_t)(ex[i].src_len + ex[i].tgt_len);
    int *ids = tx_malloc(cap * sizeof *ids);
    for (int i = 0; i < n; i++)
        for (int side = TX_SRC; side <= TX_TGT; side++) {
            const char *text = side == TX_SRC ? ex[i].src : ex[i].tgt;
            int room = cap - used < INT_MAX ? (int)(cap - used) : INT_MAX;
            int k = tx_vocab_encode(v, side, text, ids + used, room);
            if (k > room) {
                ids = tx_realloc(ids, (cap = 2 * cap + (size_t)k) * sizeof *ids);
                tx_vocab_encode(v, side, text, ids + used, k);
            }
            *(side == TX_SRC ? &ex[i].src_len : &ex[i].tgt_len) = k;
            used += (size_t)k;
        }
    for (int i = 0, *w = ids; i < n; i++) {
        ex[i].src_ids = w, w += ex[i].src_len;
        ex[i].tgt_ids = w, w += ex[i].tgt_len;
    }
    return ids;
}

/* The vocabulary is every token of the training file, held-out lines too, so
 * that validation needs no UNK unless it comes from a separate file. */
static int build_tsv_vocab(tx_data *d, tx_err *err) {
    if (d->cfg.tokenize == TX_TOK_SPM) {
        if (d->vocab.spm) return TX_OK; /* loaded from spm_model */
        const char **s = tx_malloc(2 * (size_t)d->n_train * sizeof *s);
        for (int i = 0; i < d->n_train; i++) s[2 * i] = d->train[i].src, s[2 * i + 1] = d->train[i].tgt;
        int rc = tx_vocab_sentencepiece(&d->vocab, &d->cfg, s, 2 * (size_t)d->n_train, err);
        free(s);
        return rc;
    }
    int mode = d->cfg.tokenize, len;
    size_t total = 0, k = 0;
    for (int i = 0; i < d->n_train; i++)
        total += (size_t)(d->train[i].src_len + d->train[i].tgt_len);
    tx_span *t = tx_malloc(total * sizeof *t);
    for (int i = 0; i < d->n_train; i++)
        for (int side = 0; side < 2; side++) {
            const char *p = side ? d->train[i].tgt : d->train[i].src, *tok;
            while (tx_token_next(mode, &p, &tok, &len))
                t[k++] = (tx_span){tok, len};
        }
    tx_vocab_build(&d->vocab, mode, mode, t, k);
    free(t);
    return TX_OK;
}

/* Moves the held-out lines of the training file to the validation set: the
 * 5% bucket, or else (small files) the lines with the lowest-scoring source. */
static int hold_out(tx_data *d, tx_err *err) {
    double low = 1;
    for (int i = 0; i < d->n_train; i++)
        low = fmin(low, tx_held_out_score(d->cfg.seed, d->train[i].src));
    double cut = fmax(TX_HOLD_OUT, nextafter(low, 2));
    int n = d->n_train;
    d->valid = tx_malloc((size_t)n * sizeof *d->valid);
    d->n_train = 0;
    for (int i = 0; i < n; i++) {
        int held = tx_held_out_score(d->cfg.seed, d->train[i].src) < cut;
        if (held) d->valid[d->n_valid++] = d->train[i];
        else d->train[d->n_train++] = d->train[i];
    }
    if (!d->n_train)
        return tx_error(err, TX_EINPUT,
                        "%s:1: holding out validation examples leaves none of "
                        "the %d lines for training; set valid_file",
                        d->cfg.train_file, n);
    return TX_OK;
}

static void shuffle(tx_data *d) {
    tx_rng r; /* keyed by the epoch alone, so a position can restore it */
    tx_rng_seed(&r, d->cfg.seed ^ TRAIN_STREAM ^ (d->epoch * 0x9e3779b97f4a7c15ULL));
    for (int i = 0; i < d->n_train; i++) d->order[i] = i;
    for (int i = d->n_train - 1; i > 0; i--) {
        int j = tx_rng_int(&r, 0, i), t = d->order[i];
        d->order[i] = d->order[j], d->order[j] = t;
    }
}

static void max_lengths(tx_data *d, const tx_example *ex, int n) {
    for (int i = 0; i < n; i++) {
        if (ex[i].src_len > d->max_src) d->max_src = ex[i].src_len;
        if (ex[i].tgt_len > d->max_tgt) d->max_tgt = ex[i].tgt_len;
    }
}

static int open_tsv(tx_data *d, tx_err *err) {
    const tx_data_config *c = &d->cfg;
    int rc = tx_tsv_read(c->train_file, c->tokenize, &d->text[0], &d->train,
                         &d->n_train, err);
    if (rc || (rc = build_tsv_vocab(d, err))) return rc;
    d->ids[0] = encode_all(&d->vocab, d->train, d->n_train);
    if (*c->valid_file) {
        rc = tx_tsv_read(c->valid_file, c->tokenize, &d->text[1], &d->valid,
                         &d->n_valid, err);
        if (rc) return rc;
        d->ids[1] = encode_all(&d->vocab, d->valid, d->n_valid);
    } else if ((rc = hold_out(d, err))) {
        return rc;
    }
    if (d->n_valid > c->valid_examples) d->n_valid = c->valid_examples;
    max_lengths(d, d->train, d->n_train);
    max_lengths(d, d->valid, d->n_valid);
    d->order = tx_malloc((size_t)d->n_train * sizeof *d->order);
    shuffle(d);
    return TX_OK;
}

static const tx_example *next_tsv(tx_data *d) {
    if (d->index == (uint64_t)d->n_train) {
        d->epoch++;
        d->index = 0;
        shuffle(d);
    }
    return &d->train[d->order[d->index++]];
}

/* ---- the stream ----------------------------------------------------------- */

int tx_data_open(tx_data *d, const tx_data_config *cfg, tx_err *err) {
    TX_ASSERT(cfg->valid_examples >= 0, "tx_data_open: valid_examples %d",
              cfg->valid_examples);
    memset(d, 0, sizeof *d);
    d->cfg = *cfg;
    int rc = TX_OK;
    /* A SentencePiece model from a file, before the openers, which then
     * train one only if there is none. */
    if (cfg->tokenize == TX_TOK_SPM && *cfg->spm_model)
        rc = tx_vocab_sentencepiece(&d->vocab, cfg, NULL, 0, err);
    if (!rc)
        rc = is_text(d) ? tx_text_open(d, err) : is_generated(d) ? open_generated(d, err)
                                                                   : open_tsv(d, err);
    if (rc) tx_data_free(d);
    return rc;
}

void tx_data_free(tx_data *d) {
    tx_vocab_free(&d->vocab);
    free(d->valid);
    free(d->train);
    free(d->order);
    for (int i = 0; i < 2; i++) {
        free(d->text[i]);
        free(d->ids[i]);
    }
    memset(d, 0, sizeof *d);
}

void tx_data_next_batch(tx_data *d, tx_batch *b, int n, int decoder_only) {
    if (is_text(d)) {
        tx_text_next_batch(d, b, n);
        return;
    }
    tx_batch_begin(b, decoder_only);
    for (int i = 0; i < n; i++)
        tx_batch_add(b, is_generated(d) ? next_generated(d) : next_tsv(d));
    tx_batch_end(b);
}

void tx_data_get_pos(const tx_data *d, uint64_t pos[TX_DATA_POS]) {
    memcpy(pos, d->rng.s, sizeof d->rng.s);
    pos[4] = d->epoch;
    pos[5] = d->index;
}

int tx_data_set_pos(tx_data *d, const uint64_t pos[TX_DATA_POS], tx_err *err) {
    if ((is_generated(d) || is_text(d)) && !(pos[0] | pos[1] | pos[2] | pos[3]))
        return tx_error(err, TX_EINPUT,
                        "data position: the generator state is all zero");
    if (d->cfg.task == TX_TASK_TSV && pos[5] > (uint64_t)d->n_train)
        return tx_error(err, TX_EINPUT,
                        "data position: index %llu beyond the %d training "
                        "examples", (unsigned long long)pos[5], d->n_train);
    memcpy(d->rng.s, pos, sizeof d->rng.s);
    d->epoch = pos[4];
    d->index = pos[5];
    if (d->cfg.task == TX_TASK_TSV) shuffle(d);
    return TX_OK;
}
