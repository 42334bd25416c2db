/* lm.c: the text task for language models: a UTF-8 corpus as one stream of
 * tokens (code points or bytes), split into training text and validation
 * text (a valid_file, or the last 10%), training windows at seeded random
 * offsets and validation windows in order. */
#include <string.h>

#include "internal.h"


/* Reads path whole, checks it is non-empty UTF-8 (a BOM is dropped) and
 * returns its text in *out (owned by d->text[side]). */
static int read_text(tx_data *d, int side, const char *path, const char **out, tx_err *err) {
    size_t n;
    int rc = tx_read_file(path, &d->text[side], &n, err);
    if (rc) return rc;
    const char *s = d->text[side];
    if (n >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) s += 3, n -= 3;
    size_t bad = tx_utf8_check(s, n);
    if (bad < n) {
        int line = 1;
        size_t col = 1;
        for (size_t i = 0; i < bad; i++) line += s[i] == '\n', col = s[i] == '\n' ? 1 : col + 1;
        return tx_error(err, TX_EINPUT, "%s:%d: invalid UTF-8 at byte %zu", path, line, col);
    }
    if (!n) return tx_error(err, TX_EINPUT, "%s: empty file, expected text", path);
    *out = s;
    return TX_OK;
}

/* The text's tokens as ids (unknown ones UNK): *n of them, malloc'd. */
static int *encode_text(const tx_vocab *v, const char *s, size_t *n) {
    int cap = (int)strlen(s) + 1; /* most tokenizers: a token has a byte or more */
    int *ids = tx_malloc((size_t)cap * sizeof *ids), k = tx_vocab_encode(v, TX_TGT, s, ids, cap);
    if (k > cap) { /* a SentencePiece model's normalization may expand the text */
        ids = tx_realloc(ids, (size_t)k * sizeof *ids);
        tx_vocab_encode(v, TX_TGT, s, ids, k);
    }
    *n = (size_t)k;
    return ids;
}

/* SentencePiece: a model trained on the lines (each with its break) of the
 * training text's first `bytes` bytes, unless one was loaded. */
static int text_spm(tx_data *d, const char *s, size_t bytes, tx_err *err) {
    if (d->vocab.spm) return TX_OK; /* loaded from spm_model */
    size_t n = 0, cap = 1024;
    const char **lines = tx_malloc(cap * sizeof *lines);
    char *copy = tx_malloc(2 * bytes + 1), *w = copy; /* each line, NUL-terminated */
    for (const char *p = s; p < s + bytes;) {
        const char *nl = memchr(p, '\n', (size_t)(s + bytes - p));
        size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(s + bytes - p);
        if (n == cap) lines = tx_realloc(lines, (cap *= 2) * sizeof *lines);
        lines[n++] = w;
        memcpy(w, p, len);
        w += len;
        *w++ = 0;
        p += len;
    }
    int rc = tx_vocab_sentencepiece(&d->vocab, &d->cfg, lines, n, err);
    free(lines);
    free(copy);
    return rc;
}

/* Characters or bytes: every token of the training text. */
static void text_vocab(tx_data *d, const char *train) {
    int mode = d->cfg.tokenize, len;
    size_t ntok = 0, cap = 1024;
    tx_span *t = tx_malloc(cap * sizeof *t);
    const char *p = train, *tok;
    while (tx_token_next(mode, &p, &tok, &len)) {
        if (ntok == cap) t = tx_realloc(t, (cap *= 2) * sizeof *t);
        t[ntok++] = (tx_span){tok, len};
    }
    tx_vocab_build(&d->vocab, mode, mode, t, ntok);
    free(t);
}

static int too_short(const char *path, const char *what, size_t n, int context, tx_err *err) {
    return tx_error(err, TX_EINPUT,
                    "%s: %zu tokens%s, fewer than one window of context + 1 = %d tokens",
                    path, n, what, context + 1);
}

int tx_text_open(tx_data *d, tx_err *err) {
    const tx_data_config *c = &d->cfg;
    const char *train, *valid = NULL;
    int rc = read_text(d, 0, c->train_file, &train, err);
    if (!rc && *c->valid_file) rc = read_text(d, 1, c->valid_file, &valid, err);
    if (rc) return rc;
    /* the vocabulary: every token of the training file (SentencePiece: of
     * its training part, the first 90% unless there is a valid_file) */
    if (c->tokenize != TX_TOK_SPM)
        text_vocab(d, train);
    else if ((rc = text_spm(d, train, valid ? strlen(train) : strlen(train) / 10 * 9, err)))
        return rc;
    size_t n;
    d->ids[0] = encode_text(&d->vocab, train, &n);
    if (valid) {
        d->ids[1] = encode_text(&d->vocab, valid, &d->n_text_valid);
        d->text_valid = d->ids[1];
        d->n_text_train = n;
    } else {
        d->n_text_train = n * 9 / 10; /* the last 10% validate, split as nanoGPT splits */
        d->text_valid = d->ids[0] + d->n_text_train;
        d->n_text_valid = n - d->n_text_train;
    }
    if (d->n_text_train < (size_t)c->context + 1)
        return too_short(c->train_file, valid ? "" : " left for training after holding out the last 10%",
                         d->n_text_train, c->context, err);
    if (d->n_text_valid < (size_t)c->context + 1)
        return too_short(valid ? c->valid_file : c->train_file,
                         valid ? "" : " in its last 10% (validation)", d->n_text_valid,
                         c->context, err);
    size_t windows = (d->n_text_valid - 1) / (size_t)c->context;
    d->valid_windows = windows < (size_t)c->valid_examples ? (int)windows : c->valid_examples;
    d->max_src = 0;
    d->max_tgt = c->context - 1;
    tx_rng_seed(&d->rng, c->seed ^ 0x746578740000ULL);
    return TX_OK;
}

void tx_text_next_batch(tx_data *d, tx_batch *b, int n) {
    int T = d->cfg.context;
    size_t span = d->n_text_train - (size_t)T; /* offsets 0 .. span - 1 */
    size_t *off = tx_malloc((size_t)n * sizeof *off);
    for (int i = 0; i < n; i++) off[i] = (size_t)(tx_rng_u64(&d->rng) % span);
    tx_batch_fill_windows(b, d->ids[0], off, n, T);
    free(off);
}
