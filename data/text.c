/* text.c: UTF-8 validation, the tokenizer and the shared vocabulary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *const special_names[TX_NSPECIAL] = {"<pad>", "<bos>",
                                                       "<eos>", "<unk>"};
static const char *const mode_names[] = {"char", "word", "byte", "sentencepiece"};
#define NMODES (int)(sizeof mode_names / sizeof *mode_names)

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), 0 if none.
 * Continuation bytes are checked in order, so a NUL stops the scan early and
 * NUL-terminated text may pass n = 4 without knowing its length. */
static int utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0], cp, min;
    int len;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07, min = 0x10000;
    else return 0;
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

size_t tx_utf8_check(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        int len = utf8_seq((const unsigned char *)s + i, n - i);
        if (!len || !s[i]) return i;
        i += (size_t)len;
    }
    return n;
}

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
}

int tx_token_next(int mode, const char **p, const char **tok, int *len) {
    const char *s = *p;
    if (mode == TX_TOK_WORD) {
        while (is_space(*s)) s++;
        const char *e = s;
        while (*e && !is_space(*e)) e++;
        *tok = s, *len = (int)(e - s), *p = e;
        return e > s;
    }
    if (!*s) return 0;
    int n = mode == TX_TOK_BYTE ? 1 : utf8_seq((const unsigned char *)s, 4);
    *tok = s, *len = n ? n : 1, *p = s + *len;
    return 1;
}

/* ---- vocabulary ----------------------------------------------------------- */

/* Byte order, as strcmp, for tokens that are not NUL-terminated. */
static int span_cmp(const char *a, int na, const char *b, int nb) {
    int c = memcmp(a, b, (size_t)(na < nb ? na : nb));
    return c ? c : (na > nb) - (na < nb);
}

static int span_qsort_cmp(const void *a, const void *b) {
    const tx_span *x = a, *y = b;
    return span_cmp(x->s, x->n, y->s, y->n);
}

/* Moves the first of each distinct span to the front of t, in order, and
 * returns how many there are: one pass with a hash set (slots hold index + 1,
 * doubled when half full), where sorting the millions of a corpus's tokens
 * took most of a text run's start-up. */
static size_t span_unique(tx_span *t, size_t n) {
    size_t cap = 1024, kept = 0;
    size_t *slot = tx_calloc(cap, sizeof *slot);
    for (size_t i = 0; i < n; i++) {
        size_t h = tx_hash_bytes(t[i].s, (size_t)t[i].n) & (cap - 1);
        while (slot[h] && span_qsort_cmp(&t[slot[h] - 1], &t[i])) h = (h + 1) & (cap - 1);
        if (slot[h]) continue;
        t[kept] = t[i];
        slot[h] = ++kept;
        if (2 * kept < cap) continue;
        free(slot);
        slot = tx_calloc(cap *= 2, sizeof *slot);
        for (size_t j = 0; j < kept; j++) {
            size_t g = tx_hash_bytes(t[j].s, (size_t)t[j].n) & (cap - 1);
            while (slot[g]) g = (g + 1) & (cap - 1);
            slot[g] = j + 1;
        }
    }
    free(slot);
    return kept;
}

/* All strings live in one block that tok[0] points at. */
void tx_vocab_build(tx_vocab *v, int src_mode, int tgt_mode, tx_span *t,
                    size_t n) {
    size_t unique = span_unique(t, n), bytes = 0;
    TX_ASSERT(unique < (size_t)1 << 30, "tx_vocab_build: %zu tokens", unique);
    qsort(t, unique, sizeof *t, span_qsort_cmp);
    for (int i = 0; i < TX_NSPECIAL; i++) bytes += strlen(special_names[i]) + 1;
    for (size_t i = 0; i < unique; i++) bytes += (size_t)t[i].n + 1;
    v->mode[TX_SRC] = src_mode;
    v->mode[TX_TGT] = tgt_mode;
    v->size = TX_NSPECIAL + (int)unique;
    v->tok = tx_malloc((size_t)v->size * sizeof *v->tok);
    char *w = tx_malloc(bytes);
    int k = 0;
    for (int i = 0; i < TX_NSPECIAL; i++) {
        v->tok[k++] = w;
        w = stpcpy(w, special_names[i]) + 1;
    }
    for (size_t i = 0; i < unique; i++) {
        v->tok[k++] = w;
        memcpy(w, t[i].s, (size_t)t[i].n);
        w[t[i].n] = 0;
        w += t[i].n + 1;
    }
}

void tx_vocab_free(tx_vocab *v) {
    if (v->tok) free(v->tok[0]);
    free(v->tok);
    if (v->spm) tx_spm_free(v->spm);
    free(v->to_spm), free(v->from_spm), free(v->spm_model);
    memset(v, 0, sizeof *v);
}

static int lookup(const tx_vocab *v, const char *s, int n) {
    int lo = TX_NSPECIAL, hi = v->size - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const char *t = v->tok[mid];
        int c = span_cmp(s, n, t, (int)strlen(t));
        if (!c) return mid;
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return TX_UNK;
}

static int spm_encode(const tx_vocab *v, const char *text, int *ids, int cap);
static int spm_unknown(const tx_vocab *v, const char *text, const char **first, int *first_len);
static size_t spm_decode(const tx_vocab *v, const int *ids, int n, char *out, size_t cap);

int tx_vocab_encode(const tx_vocab *v, int side, const char *text, int *ids,
                    int cap) {
    if (v->mode[side] == TX_TOK_SPM) return spm_encode(v, text, ids, cap);
    const char *tok;
    int len, count = 0;
    while (tx_token_next(v->mode[side], &text, &tok, &len)) {
        if (count < cap) ids[count] = lookup(v, tok, len);
        count++;
    }
    return count;
}

int tx_vocab_unknown(const tx_vocab *v, int side, const char *text, const char **first,
                     int *first_len) {
    if (v->mode[side] == TX_TOK_SPM) return spm_unknown(v, text, first, first_len);
    const char *tok;
    int len, n = 0;
    while (tx_token_next(v->mode[side], &text, &tok, &len))
        if (lookup(v, tok, len) == TX_UNK && !n++) *first = tok, *first_len = len;
    return n;
}

void tx_vocab_show(const tx_vocab *v, int id, char space, char *out, size_t cap) {
    size_t n = 0;
    int spm = v->mode[TX_TGT] == TX_TOK_SPM; /* only pieces mark spaces with ▁ */
    for (const char *p = v->tok[id]; *p && n + 1 < cap; p++)
        if (spm && !strncmp(p, "\xe2\x96\x81", 3)) out[n++] = space, p += 2;
        else out[n++] = *p;
    if (cap) out[n] = 0;
}

int tx_vocab_chars(const tx_vocab *v, int id) {
    if (id < TX_NSPECIAL) return id == TX_UNK; /* an unknown token stood for something */
    int n = 0;
    for (const unsigned char *p = (const unsigned char *)v->tok[id]; *p; p++)
        n += (*p & 0xC0) != 0x80;
    return n;
}

/* Appends s whole, or nothing once a piece did not fit (so no code point is
 * cut); *len counts the full length either way. */
static void append(char *out, size_t cap, size_t *len, const char *s) {
    size_t n = strlen(s);
    if (*len + n < cap) {
        memcpy(out + *len, s, n);
        out[*len + n] = 0;
    }
    *len += n;
}

size_t tx_vocab_decode(const tx_vocab *v, int side, const int *ids, int n,
                       char *out, size_t cap) {
    if (v->mode[side] == TX_TOK_SPM) return spm_decode(v, ids, n, out, cap);
    size_t len = 0;
    int words = 0;
    if (cap) *out = 0;
    for (int i = 0; i < n && ids[i] != TX_EOS; i++) {
        TX_ASSERT(ids[i] >= 0 && ids[i] < v->size,
                  "tx_vocab_decode: id %d outside the vocabulary [0, %d)",
                  ids[i], v->size);
        if (ids[i] == TX_PAD || ids[i] == TX_BOS) continue;
        if (v->mode[side] == TX_TOK_WORD && words++) append(out, cap, &len, " ");
        append(out, cap, &len, v->tok[ids[i]]);
    }
    return len;
}

/* A token byte that the vocabulary text cannot hold as it is: the escape
 * character, line breaks and other controls, and bytes that are not part
 * of well-formed UTF-8 (a byte-level token). */
static int needs_escape(const char *t, size_t i) {
    unsigned char c = (unsigned char)t[i];
    if (c == '\\' || c < 0x20 || c == 0x7f) return 1;
    if (c < 0x80) return 0;
    /* inside a well-formed sequence? find its lead byte */
    size_t lead = i;
    while (lead > 0 && i - lead < 3 && ((unsigned char)t[lead] & 0xC0) == 0x80) lead--;
    int n = utf8_seq((const unsigned char *)t + lead, strlen(t + lead));
    return !n || lead + (size_t)n <= i;
}

/* Version 1 writes tokens as they are, one per line; version 2 (used when
 * some token needs it) escapes \\, \n and the bytes needs_escape names as
 * \xHH. */
static char *spm_to_string(const tx_vocab *v);

char *tx_vocab_to_string(const tx_vocab *v) {
    if (v->spm) return spm_to_string(v);
    int escape = 0;
    for (int i = TX_NSPECIAL; i < v->size; i++)
        for (size_t j = 0; v->tok[i][j]; j++) escape |= needs_escape(v->tok[i], j);
    char head[64];
    int hn = snprintf(head, sizeof head, "tapeformer-vocab%s %s %s\n", escape ? "2" : "",
                      mode_names[v->mode[TX_SRC]], mode_names[v->mode[TX_TGT]]);
    size_t bytes = (size_t)hn + 1;
    for (int i = TX_NSPECIAL; i < v->size; i++) bytes += 4 * strlen(v->tok[i]) + 1;
    char *s = tx_malloc(bytes), *w = stpcpy(s, head);
    for (int i = TX_NSPECIAL; i < v->size; i++) {
        const char *t = v->tok[i];
        for (size_t j = 0; t[j]; j++) {
            if (escape && needs_escape(t, j)) w += sprintf(w, t[j] == '\\' ? "\\\\" : "\\x%02x", (unsigned char)t[j]);
            else *w++ = t[j];
        }
        *w++ = '\n';
    }
    *w = 0;
    return s;
}

static int mode_of(const char *s, int n) {
    for (int m = 0; m < NMODES; m++)
        if (!span_cmp(s, n, mode_names[m], (int)strlen(mode_names[m])))
            return m;
    return -1;
}

static int hex(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Unescapes the version-2 token [p, e) into out; its length, or -1. */
static int unescape(const char *p, const char *e, char *out) {
    int n = 0;
    while (p < e) {
        if (*p != '\\') {
            out[n++] = *p++;
        } else if (p + 1 < e && p[1] == '\\') {
            out[n++] = '\\', p += 2;
        } else if (p + 3 < e + 0 && p[1] == 'x' && hex(p[2]) >= 0 && hex(p[3]) >= 0 &&
                   (hex(p[2]) << 4 | hex(p[3]))) {
            out[n++] = (char)(hex(p[2]) << 4 | hex(p[3])), p += 4;
        } else {
            return -1;
        }
    }
    return n;
}

static int spm_from_string(tx_vocab *v, const char *s, tx_err *err);

int tx_vocab_from_string(tx_vocab *v, const char *s, tx_err *err) {
    memset(v, 0, sizeof *v);
    const char *nl = strchr(s, '\n'), *p = s, *tok;
    int modes[2], len, escaped = !strncmp(s, "tapeformer-vocab2 ", 18);
    if (!nl || (strncmp(s, "tapeformer-vocab ", 17) && !escaped))
        return tx_error(err, TX_EINPUT,
                        "vocabulary:1: expected 'tapeformer-vocab <src mode> "
                        "<tgt mode>'");
    p += escaped ? 18 : 17;
    for (int side = 0; side < 2; side++) {
        if (!tx_token_next(TX_TOK_WORD, &p, &tok, &len) || p > nl ||
            (modes[side] = mode_of(tok, len)) < 0)
            return tx_error(err, TX_EINPUT,
                            "vocabulary:1: expected modes 'char', 'word', 'byte' or "
                            "'sentencepiece'");
    }
    if (modes[0] == TX_TOK_SPM || modes[1] == TX_TOK_SPM) {
        if (modes[0] != modes[1] || escaped)
            return tx_error(err, TX_EINPUT,
                            "vocabulary:1: expected 'tapeformer-vocab sentencepiece sentencepiece'");
        return spm_from_string(v, nl + 1, err);
    }
    size_t n = 0, cap = 64;
    tx_span *t = tx_malloc(cap * sizeof *t);
    char *text = tx_malloc(strlen(nl + 1) + 1), *w = text;
    for (p = nl + 1; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        int line = (int)n + 2, k = nl ? (escaped ? unescape(p, nl, w) : (int)(nl - p)) : -1;
        if (!escaped && k > 0) memcpy(w, p, (size_t)k);
        if (k <= 0 || (n && span_cmp(t[n - 1].s, t[n - 1].n, w, k) >= 0)) {
            free(t);
            free(text);
            return tx_error(err, TX_EINPUT,
                            "vocabulary:%d: expected a non-empty token after "
                            "the previous one in sorted order, ending in a "
                            "newline", line);
        }
        if (n == cap) t = tx_realloc(t, (cap *= 2) * sizeof *t);
        t[n].s = w;
        t[n++].n = k;
        w += k;
    }
    tx_vocab_build(v, modes[TX_SRC], modes[TX_TGT], t, n);
    free(t);
    free(text);
    return TX_OK;
}

/* ---- SentencePiece vocabularies ------------------------------------------------ */

int tx_vocab_from_spm(tx_vocab *v, const char *model, size_t len, tx_err *err) {
    memset(v, 0, sizeof *v);
    tx_spm *m;
    int rc = tx_spm_load(&m, model, len, err);
    if (rc) return rc;
    int S = tx_spm_size(m), special[TX_NSPECIAL];
    tx_spm_specials(m, &special[TX_UNK], &special[TX_BOS], &special[TX_EOS], &special[TX_PAD]);
    v->spm = m;
    v->mode[TX_SRC] = v->mode[TX_TGT] = TX_TOK_SPM;
    v->from_spm = tx_malloc((size_t)S * sizeof *v->from_spm);
    v->to_spm = tx_malloc(((size_t)S + TX_NSPECIAL) * sizeof *v->to_spm);
    size_t bytes = 0;
    for (int i = 0; i < TX_NSPECIAL; i++) bytes += strlen(special_names[i]) + 1;
    v->size = TX_NSPECIAL;
    for (int j = 0; j < S; j++) {
        v->from_spm[j] = TX_UNK; /* control pieces that are none of ours */
        for (int i = 0; i < TX_NSPECIAL; i++)
            if (special[i] == j) v->from_spm[j] = i;
        if (!tx_spm_is_special(m, j)) {
            v->from_spm[j] = v->size;
            v->to_spm[v->size++] = j;
            bytes += strlen(tx_spm_piece(m, j)) + 1;
        }
    }
    for (int i = 0; i < TX_NSPECIAL; i++) v->to_spm[i] = special[i];
    v->tok = tx_malloc((size_t)v->size * sizeof *v->tok);
    char *w = tx_malloc(bytes);
    for (int i = 0; i < v->size; i++) {
        v->tok[i] = w;
        w = stpcpy(w, i < TX_NSPECIAL ? special_names[i] : tx_spm_piece(m, v->to_spm[i])) + 1;
    }
    v->spm_model = tx_malloc(len ? len : 1);
    memcpy(v->spm_model, model, len);
    v->spm_len = len;
    return TX_OK;
}

int tx_vocab_sentencepiece(tx_vocab *v, const tx_data_config *cfg, const char *const *sentences,
                           size_t n, tx_err *err) {
    char *model;
    size_t len;
    tx_err inner;
    int rc;
    if (*cfg->spm_model) {
        if ((rc = tx_read_file(cfg->spm_model, &model, &len, err))) return rc;
        rc = tx_vocab_from_spm(v, model, len, &inner);
        free(model);
        return rc ? tx_error(err, rc, "%s: %s", cfg->spm_model, inner.msg) : TX_OK;
    }
    if (tx_spm_train(sentences, n, cfg->vocab_size, cfg->spm_type, (unsigned)cfg->seed, &model,
                     &len, &inner))
        return tx_error(err, TX_EINPUT, "data.vocab_size = %d: %s", cfg->vocab_size, inner.msg);
    rc = tx_vocab_from_spm(v, model, len, err);
    free(model);
    return rc;
}

/* The text line by line, each line with its break: the sentences the model
 * was trained on. Ours for the model's ids. */
static int spm_encode(const tx_vocab *v, const char *text, int *ids, int cap) {
    int count = 0;
    while (*text) {
        const char *nl = strchr(text, '\n');
        size_t n = nl ? (size_t)(nl - text) + 1 : strlen(text);
        int k = tx_spm_encode(v->spm, text, n, ids ? ids + (count < cap ? count : cap) : NULL,
                              ids && count < cap ? cap - count : 0);
        for (int i = count; ids && i < count + k && i < cap; i++) ids[i] = v->from_spm[ids[i]];
        count += k;
        text += n;
    }
    return count;
}

/* Unknown tokens: the UNK ids of the text's encoding; the first one named
 * by the first code point that encodes to UNK on its own. */
static int spm_unknown(const tx_vocab *v, const char *text, const char **first, int *first_len) {
    int n = spm_encode(v, text, NULL, 0), unknown = 0;
    int *ids = tx_malloc(((size_t)n + 1) * sizeof *ids);
    spm_encode(v, text, ids, n);
    for (int i = 0; i < n; i++) unknown += ids[i] == TX_UNK;
    free(ids);
    const char *p = text, *tok;
    int len, one[8];
    char c[8];
    while (unknown && tx_token_next(TX_TOK_CHAR, &p, &tok, &len)) {
        memcpy(c, tok, (size_t)len);
        c[len] = 0;
        int k = spm_encode(v, c, one, 8);
        for (int i = 0; i < k && i < 8; i++)
            if (one[i] == TX_UNK) {
                *first = tok, *first_len = len;
                return unknown;
            }
    }
    if (unknown) *first = text, *first_len = 0;
    return unknown;
}

/* PAD and BOS skipped, EOS ends the text, as for the other modes. */
static size_t spm_decode(const tx_vocab *v, const int *ids, int n, char *out, size_t cap) {
    int *m = tx_malloc(((size_t)n + 1) * sizeof *m), k = 0;
    for (int i = 0; i < n && ids[i] != TX_EOS; i++) {
        TX_ASSERT(ids[i] >= 0 && ids[i] < v->size,
                  "tx_vocab_decode: id %d outside the vocabulary [0, %d)", ids[i], v->size);
        if (ids[i] != TX_PAD && ids[i] != TX_BOS) m[k++] = v->to_spm[ids[i]];
    }
    size_t len = tx_spm_decode(v->spm, m, k, out, cap);
    free(m);
    return len;
}

/* base64 (RFC 4648, with padding) of the model's bytes */
static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *spm_to_string(const tx_vocab *v) {
    static const char head[] = "tapeformer-vocab sentencepiece sentencepiece\nmodel ";
    const unsigned char *b = (const unsigned char *)v->spm_model;
    size_t n = v->spm_len;
    char *s = tx_malloc(sizeof head + 4 * (n / 3 + 1) + 2), *w = stpcpy(s, head);
    for (size_t i = 0; i < n; i += 3) {
        unsigned x = (unsigned)b[i] << 16 | (i + 1 < n ? (unsigned)b[i + 1] << 8 : 0) |
                     (i + 2 < n ? b[i + 2] : 0);
        *w++ = b64[x >> 18 & 63];
        *w++ = b64[x >> 12 & 63];
        *w++ = i + 1 < n ? b64[x >> 6 & 63] : '=';
        *w++ = i + 2 < n ? b64[x & 63] : '=';
    }
    *w++ = '\n';
    *w = 0;
    return s;
}

static int b64_value(char c) {
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

/* s: the text after the header line: "model BASE64\n". */
static int spm_from_string(tx_vocab *v, const char *s, tx_err *err) {
    const char *e = strchr(s, '\n');
    if (strncmp(s, "model ", 6) || !e || e[1])
        return tx_error(err, TX_EINPUT, "vocabulary:2: expected 'model ' and the SentencePiece "
                                        "model in base64, then the end");
    s += 6;
    size_t n = (size_t)(e - s);
    if (n % 4)
        return tx_error(err, TX_EINPUT, "vocabulary:2: base64 of %zu characters, expected a "
                                        "multiple of 4", n);
    unsigned char *b = tx_malloc(n / 4 * 3 + 1);
    size_t len = 0;
    for (size_t i = 0; i < n; i += 4) {
        int q[4], pad = 0;
        for (int j = 0; j < 4; j++) {
            q[j] = b64_value(s[i + j]);
            if (s[i + j] == '=' && i + 4 == n && j >= 2 && (j == 3 || s[i + 3] == '=')) q[j] = 0, pad++;
            else if (q[j] < 0 || pad) q[j] = -1;
        }
        if (q[0] < 0 || q[1] < 0 || q[2] < 0 || q[3] < 0) {
            free(b);
            return tx_error(err, TX_EINPUT, "vocabulary:2: byte %zu: not base64", i + 6);
        }
        unsigned x = (unsigned)q[0] << 18 | (unsigned)q[1] << 12 | (unsigned)q[2] << 6 | (unsigned)q[3];
        b[len++] = (unsigned char)(x >> 16);
        if (pad < 2) b[len++] = (unsigned char)(x >> 8);
        if (pad < 1) b[len++] = (unsigned char)x;
    }
    tx_err inner;
    int rc = tx_vocab_from_spm(v, (const char *)b, len, &inner);
    free(b);
    return rc ? tx_error(err, rc, "vocabulary:2: %s", inner.msg) : TX_OK;
}
