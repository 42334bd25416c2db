/* config.c: INI configuration through one table of keys, which drives
 * parsing, --set overrides, messages and writing alike. */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Defaults: a small model that learns the copy task in a few minutes.
 *   [model]  kind encoder_decoder, d_model 64, heads 4, encoder_layers 2,
 *            decoder_layers 2, d_ff 256, activation relu, norm_first false,
 *            dropout 0.1, positions sinusoidal, tie_embeddings true,
 *            scale_embeddings true, bias true, precision float32, max_len 64
 *   [data]   task copy, symbols 10, min_len 1, max_len 10, train_file and
 *            valid_file empty, tokenize word, vocab_size 1000, spm_type
 *            unigram, spm_model empty, context 64, seed 1
 *   [train]  batch_size 64, steps 2000, eval_every 200, checkpoint_every 1000,
 *            threads 0, seed 1, target_accuracy 0, target_loss 0, accumulate 1,
 *            label_smoothing 0, log_every 50, eval_examples 500
 *   [optim]  name adam, lr 0.001, beta1 0.9, beta2 0.98, eps 1e-9,
 *            weight_decay 0, decay all, schedule constant, warmup 100, clip_norm 1
 *   [output] name: the config file's stem, dir runs/<name> */
void tx_config_defaults(tx_config *c) {
    memset(c, 0, sizeof *c);
    c->model = (tx_model_config){
        .kind = TX_ENCODER_DECODER, .d_model = 64, .heads = 4,
        .encoder_layers = 2, .decoder_layers = 2, .d_ff = 256,
        .activation = TX_ACT_RELU, .norm_first = 0, .dropout = 0.1,
        .positions = TX_POS_SINUSOIDAL, .tie_embeddings = 1,
        .scale_embeddings = 1, .bias = 1, .max_len = 64};
    c->data = (tx_data_config){.task = TX_TASK_COPY, .symbols = 10,
                               .min_len = 1, .max_len = 10,
                               .tokenize = TX_TOK_WORD, .vocab_size = 1000,
                               .spm_type = TX_SPM_UNIGRAM, .context = 64, .seed = 1,
                               .valid_examples = 500};
    c->train = (tx_train_config){
        .batch_size = 64, .steps = 2000, .eval_every = 200,
        .checkpoint_every = 1000, .seed = 1, .accumulate = 1,
        .log_every = 50, .eval_examples = 500};
    c->optim = (tx_optim_config){
        .name = TX_OPT_ADAM, .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.98,
        .eps = 1e-9, .schedule = TX_SCHED_CONSTANT, .warmup = 100,
        .total_steps = 2000, .clip_norm = 1};
    strcpy(c->name, "default");
    strcpy(c->out_dir, "runs/default");
    strcpy(c->source, "defaults");
}

/* ---- the keys ------------------------------------------------------------- */

enum { K_INT, K_U64, K_REAL, K_BOOL, K_ENUM, K_PATH, K_STR };
enum { OPEN_LO = 1, OPEN_HI = 2 }; /* K_REAL bounds left out of the range */

typedef struct key {
    const char *section, *name;
    int type;
    size_t offset, size;
    double lo, hi;            /* K_INT, K_REAL */
    int open;                 /* K_REAL: OPEN_* */
    const char *const *names; /* K_ENUM: value i is names[i], NULL-ended */
} key;

static const char *const kinds[] = {"encoder_decoder", "decoder_only", NULL};
static const char *const activations[] = {"relu", "gelu", NULL};
static const char *const positions[] = {"sinusoidal", "learned", "none", NULL};
static const char *const tasks[] = {"copy", "reverse", "sort", "numbers_en",
                                    "numbers_zh", "tsv", "text", NULL};
static const char *const tokenizers[] = {"char", "word", "byte", "sentencepiece", NULL};
static const char *const spm_types[] = {"unigram", "bpe", NULL}; /* TX_SPM_UNIGRAM, _BPE */
static const char *const decays[] = {"all", "matrices", NULL};
static const char *const precisions[] = {"float32", "bf16", NULL};
static const char *const optimizers[] = {"adam", "adamw", "sgd", NULL};
static const char *const schedules[] = {"constant", "noam", "cosine", NULL};

#define AT(f) offsetof(tx_config, f), sizeof(((tx_config *)0)->f)
#define INT(s, k, lo, hi) {#s, #k, K_INT, AT(s.k), lo, hi, 0, NULL}
#define U64(s, k) {#s, #k, K_U64, AT(s.k), 0, 0, 0, NULL}
#define REAL(s, k, lo, hi, open) {#s, #k, K_REAL, AT(s.k), lo, hi, open, NULL}
#define BOOL(s, k) {#s, #k, K_BOOL, AT(s.k), 0, 0, 0, NULL}
#define ENUM(s, k, names) {#s, #k, K_ENUM, AT(s.k), 0, 0, 0, names}
#define PATH(s, k) {#s, #k, K_PATH, AT(s.k), 0, 0, 0, NULL}
#define BIG 1e9

static const key keys[] = {
    ENUM(model, kind, kinds),
    INT(model, d_model, 1, 65536),
    INT(model, heads, 1, 4096),
    INT(model, encoder_layers, 0, 1000),
    INT(model, decoder_layers, 1, 1000),
    INT(model, d_ff, 1, 1 << 20),
    ENUM(model, activation, activations),
    BOOL(model, norm_first),
    REAL(model, dropout, 0, 1, OPEN_HI),
    ENUM(model, positions, positions),
    BOOL(model, tie_embeddings),
    BOOL(model, scale_embeddings),
    BOOL(model, bias),
    ENUM(model, precision, precisions),
    INT(model, max_len, 1, 1 << 20),
    ENUM(data, task, tasks),
    INT(data, symbols, 1, TX_MAX_SYMBOLS),
    INT(data, min_len, 1, TX_MAX_SEQ),
    INT(data, max_len, 1, TX_MAX_SEQ),
    PATH(data, train_file),
    PATH(data, valid_file),
    ENUM(data, tokenize, tokenizers),
    INT(data, vocab_size, TX_NSPECIAL + 1, 1 << 20),
    ENUM(data, spm_type, spm_types),
    PATH(data, spm_model),
    INT(data, context, 1, TX_MAX_CONTEXT),
    U64(data, seed),
    INT(train, batch_size, 1, 1 << 20),
    INT(train, steps, 1, BIG),
    INT(train, eval_every, 1, BIG),
    INT(train, checkpoint_every, 0, BIG),
    INT(train, threads, 0, 4096),
    U64(train, seed),
    REAL(train, target_accuracy, 0, 1, 0),
    REAL(train, target_loss, 0, INFINITY, OPEN_HI),
    INT(train, accumulate, 1, 4096),
    REAL(train, label_smoothing, 0, 1, OPEN_HI),
    INT(train, log_every, 1, BIG),
    INT(train, eval_examples, 0, 1 << 20),
    ENUM(optim, name, optimizers),
    REAL(optim, lr, 0, INFINITY, OPEN_LO | OPEN_HI),
    REAL(optim, beta1, 0, 1, OPEN_HI),
    REAL(optim, beta2, 0, 1, OPEN_HI),
    REAL(optim, eps, 0, INFINITY, OPEN_HI),
    REAL(optim, weight_decay, 0, INFINITY, OPEN_HI),
    ENUM(optim, decay, decays),
    ENUM(optim, schedule, schedules),
    INT(optim, warmup, 0, BIG),
    REAL(optim, clip_norm, 0, INFINITY, OPEN_HI),
    {"output", "dir", K_STR, AT(out_dir), 0, 0, 0, NULL},
    {"output", "name", K_STR, AT(name), 0, 0, 0, NULL},
};
#define NKEYS ((int)(sizeof keys / sizeof *keys))
_Static_assert(NKEYS == TX_CONFIG_KEYS, "TX_CONFIG_KEYS is the table's size");

static int find(const char *section, const char *name) {
    for (int i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].section, section) && !strcmp(keys[i].name, name))
            return i;
    return -1;
}

/* Longest text value of key k: its field, and its line when written. */
static size_t text_max(const key *k) {
    size_t line = INI_MAX_LINE - 3 - strlen(k->name) - strlen(" = ");
    return k->size - 1 < line ? k->size - 1 : line;
}

/* What key k accepts, for messages. */
static void expectation(const key *k, char *out, size_t n) {
    switch (k->type) {
    case K_INT:
        snprintf(out, n, "an integer in %.0f..%.0f", k->lo, k->hi);
        break;
    case K_U64: snprintf(out, n, "an unsigned 64-bit integer"); break;
    case K_REAL:
        snprintf(out, n, "a number in %c%g, %g%c", k->open & OPEN_LO ? '(' : '[',
                 k->lo, k->hi, k->open & OPEN_HI ? ')' : ']');
        break;
    case K_BOOL: snprintf(out, n, "true, false, 1 or 0"); break;
    case K_ENUM: {
        size_t len = (size_t)snprintf(out, n, "one of ");
        for (int i = 0; k->names[i] && len < n; i++)
            len += (size_t)snprintf(out + len, n - len, "%s%s", i ? "|" : "",
                                    k->names[i]);
        break;
    }
    default:
        snprintf(out, n,
                 "a text of at most %zu bytes without control characters, "
                 "spaces at either end or ';' after a space",
                 text_max(k));
    }
}

/* Text values must read back unchanged from tx_config_write's "key = value"
 * lines through inih, which limits lines to INI_MAX_LINE - 3 bytes, trims
 * values and starts a comment at a ';' that follows a space. */
static int writable(const key *k, const char *v) {
    size_t n = strlen(v);
    if (n > text_max(k) || (n && (v[0] == ' ' || v[n - 1] == ' '))) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f ||
            (v[i] == ';' && (i == 0 || v[i - 1] == ' ')))
            return 0;
    return 1;
}

/* Stores value v into key k of c; 0 if v is not acceptable. Relative paths
 * are prefixed with base (the config file's directory, "" or ending in /). */
static int parse_value(tx_config *c, const key *k, const char *v,
                       const char *base) {
    void *p = (char *)c + k->offset;
    char *end;
    errno = 0;
    switch (k->type) {
    case K_INT: {
        long x = strtol(v, &end, 10);
        if (!*v || *end || errno || x < k->lo || x > k->hi) return 0;
        *(int *)p = (int)x;
        return 1;
    }
    case K_U64: {
        unsigned long long x = strtoull(v, &end, 10);
        if (!*v || *end || errno || strchr(v, '-')) return 0;
        *(uint64_t *)p = x;
        return 1;
    }
    case K_REAL: {
        double x = strtod(v, &end);
        if (!*v || *end || errno || isnan(x) || x < k->lo || x > k->hi ||
            (x == k->lo && (k->open & OPEN_LO)) ||
            (x == k->hi && (k->open & OPEN_HI)))
            return 0;
        *(double *)p = x;
        return 1;
    }
    case K_BOOL: {
        int yes = !strcmp(v, "true") || !strcmp(v, "1");
        if (!yes && strcmp(v, "false") && strcmp(v, "0")) return 0;
        *(int *)p = yes;
        return 1;
    }
    case K_ENUM:
        for (int i = 0; k->names[i]; i++)
            if (!strcmp(v, k->names[i])) return *(int *)p = i, 1;
        return 0;
    default: {
        if (k->type == K_STR || !*v || *v == '/') base = "";
        char text[1024];
        size_t n = (size_t)snprintf(text, sizeof text, "%s%s", base, v);
        if (n >= sizeof text || !writable(k, text)) return 0;
        memcpy(p, text, n + 1);
        return 1;
    }
    }
}

/* The value of key k in c as written in INI text. */
static void format_value(const tx_config *c, const key *k, char *out, size_t n) {
    const void *p = (const char *)c + k->offset;
    switch (k->type) {
    case K_INT: snprintf(out, n, "%d", *(const int *)p); break;
    case K_U64:
        snprintf(out, n, "%llu", (unsigned long long)*(const uint64_t *)p);
        break;
    case K_REAL: /* the shortest text that reads back to the same double */
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(out, n, "%.*g", prec, *(const double *)p);
            if (strtod(out, NULL) == *(const double *)p) break;
        }
        break;
    case K_BOOL: snprintf(out, n, "%s", *(const int *)p ? "true" : "false"); break;
    case K_ENUM: snprintf(out, n, "%s", k->names[*(const int *)p]); break;
    default: snprintf(out, n, "%s", (const char *)p);
    }
}

/* Keys that follow from others: kept in step after every change. */
static void derive(tx_config *c, int explicit_dir) {
    if (!explicit_dir) snprintf(c->out_dir, sizeof c->out_dir, "runs/%s", c->name);
    c->data.valid_examples = c->train.eval_examples;
    c->optim.total_steps = c->train.steps;
}

static int dir_key(void) { return find("output", "dir"); }

/* Sets section.name = value in c, from `line` of c->source (or -1: --set);
 * where prefixes the messages. */
static int assign(tx_config *c, const char *section, const char *name,
                  const char *value, int line, const char *base,
                  const char *where, tx_err *err) {
    int i = find(section, name);
    if (i < 0) {
        char known[512] = "";
        size_t len = 0;
        for (int j = 0; j < NKEYS; j++)
            if (!strcmp(keys[j].section, section) && len < sizeof known)
                len += (size_t)snprintf(known + len, sizeof known - len, "%s%s",
                                        len ? ", " : "", keys[j].name);
        if (!len)
            return tx_error(err, TX_EINPUT,
                            "%s: unknown section [%s]; expected model, data, "
                            "train, optim or output", where, section);
        return tx_error(err, TX_EINPUT, "%s: unknown key; expected one of %s",
                        where, known);
    }
    if (line > 0 && c->line[i] > 0)
        return tx_error(err, TX_EINPUT, "%s: set twice (first on line %d)",
                        where, c->line[i]);
    if (!parse_value(c, &keys[i], value, base)) {
        char want[256];
        expectation(&keys[i], want, sizeof want);
        return tx_error(err, TX_EINPUT, "%s: expected %s, got '%s'", where,
                        want, value);
    }
    c->line[i] = line;
    return TX_OK;
}

/* ---- reading INI text ----------------------------------------------------- */

typedef struct parser {
    tx_config *c;
    const char *base; /* directory prefix for relative paths */
    const char *p;    /* the reader's position in the text */
    int line;         /* line the reader handed out last */
    int rc;           /* the first error, kept in err */
    tx_err *err;
} parser;

/* fgets over the text, counting lines so messages can name them. */
static char *reader(char *str, int num, void *stream) {
    parser *ps = stream;
    if (!*ps->p) return NULL;
    ps->line++;
    const char *nl = strchr(ps->p, '\n');
    size_t len = nl ? (size_t)(nl - ps->p) + 1 : strlen(ps->p);
    if (len > (size_t)num - 1 && !ps->rc)
        ps->rc = tx_error(ps->err, TX_EINPUT, "%s:%d: line longer than %d bytes",
                          ps->c->source, ps->line, num - 3);
    size_t n = len < (size_t)num - 1 ? len : (size_t)num - 1;
    memcpy(str, ps->p, n);
    str[n] = 0;
    ps->p += len;
    return str;
}

static int handler(void *user, const char *section, const char *name,
                   const char *value) {
    parser *ps = user;
    char where[1024];
    if (ps->rc) return 1; /* report only the first error */
    snprintf(where, sizeof where, "%s:%d: [%s] %s", ps->c->source, ps->line,
             section, name);
    ps->rc = assign(ps->c, section, name, value, ps->line, ps->base, where,
                    ps->err);
    return 1;
}

/* Defaults, then text; c changes only on success. */
static int load(tx_config *c, const char *text, const char *origin,
                const char *base, tx_err *err) {
    tx_config t;
    tx_config_defaults(&t);
    snprintf(t.source, sizeof t.source, "%s", origin);
    const char *stem = strrchr(origin, '/') ? strrchr(origin, '/') + 1 : origin;
    const char *dot = strrchr(stem, '.');
    int n = dot && dot > stem ? (int)(dot - stem) : (int)strlen(stem);
    snprintf(t.name, sizeof t.name, "%.*s", n, stem);
    parser ps = {&t, base, text, 0, TX_OK, err};
    int bad = ini_parse_stream(reader, &ps, handler, &ps);
    if (!ps.rc && bad)
        ps.rc = tx_error(err, TX_EINPUT,
                         "%s:%d: expected '[section]' or 'key = value'",
                         origin, bad);
    if (ps.rc) return ps.rc;
    if (!writable(&keys[find("output", "name")], t.name))
        return tx_error(err, TX_EINPUT,
                        "%s: [output] name: the file name '%s' does not make "
                        "a run name; set one", origin, t.name);
    derive(&t, t.line[dir_key()] != 0);
    *c = t;
    return TX_OK;
}

int tx_config_load_string(tx_config *c, const char *text, const char *origin,
                          tx_err *err) {
    return load(c, text, origin, "", err);
}

int tx_config_load(tx_config *c, const char *path, tx_err *err) {
    char *text, base[512] = "";
    size_t n;
    int rc = tx_read_file(path, &text, &n, err);
    if (rc) return rc;
    const char *slash = strrchr(path, '/');
    if (slash) snprintf(base, sizeof base, "%.*s", (int)(slash - path + 1), path);
    if (strlen(text) < n)
        rc = tx_error(err, TX_EINPUT, "%s: byte %zu: NUL, expected text", path,
                      strlen(text));
    else
        rc = load(c, text, path, base, err);
    free(text);
    return rc;
}

static void trim(char *s) {
    size_t n = strlen(s), i = 0;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = 0;
    while (s[i] == ' ' || s[i] == '\t') i++;
    memmove(s, s + i, n - i + 1);
}

int tx_config_set(tx_config *c, const char *assignment, tx_err *err) {
    char section[64], name[64], value[1024], where[200];
    const char *eq = strchr(assignment, '='), *dot = strchr(assignment, '.');
    if (!eq || !dot || dot > eq || dot - assignment >= (long)sizeof section ||
        eq - dot > (long)sizeof name || strlen(eq + 1) >= sizeof value)
        return tx_error(err, TX_EINPUT, "--set '%s': expected section.key=value",
                        assignment);
    snprintf(section, sizeof section, "%.*s", (int)(dot - assignment), assignment);
    snprintf(name, sizeof name, "%.*s", (int)(eq - dot - 1), dot + 1);
    snprintf(value, sizeof value, "%s", eq + 1);
    trim(section), trim(name), trim(value);
    snprintf(where, sizeof where, "--set %s.%s", section, name);
    tx_config t = *c;
    int rc = assign(&t, section, name, value, -1, "", where, err);
    if (rc) return rc;
    derive(&t, t.line[dir_key()] != 0);
    *c = t;
    return TX_OK;
}

/* ---- checks and writing --------------------------------------------------- */

/* "where key i was set: expected <fmt...>, got '<its value>'". */
__attribute__((format(printf, 4, 5))) static int
invalid(const tx_config *c, tx_err *err, const char *section_name, const char *fmt,
        ...) {
    char want[256], got[600], where[700];
    const char *dot = strchr(section_name, '.');
    char section[16];
    snprintf(section, sizeof section, "%.*s", (int)(dot - section_name),
             section_name);
    int i = find(section, dot + 1);
    TX_ASSERT(i >= 0, "invalid: no key %s", section_name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(want, sizeof want, fmt, ap);
    va_end(ap);
    format_value(c, &keys[i], got, sizeof got);
    if (c->line[i] > 0)
        snprintf(where, sizeof where, "%s:%d: [%s] %s", c->source, c->line[i],
                 section, keys[i].name);
    else if (c->line[i] < 0)
        snprintf(where, sizeof where, "--set %s", section_name);
    else
        snprintf(where, sizeof where, "%s: [%s] %s (default)", c->source,
                 section, keys[i].name);
    return tx_error(err, TX_EINPUT, "%s: expected %s, got '%s'", where, want, got);
}

int tx_config_validate(const tx_config *c, tx_err *err) {
    const tx_model_config *m = &c->model;
    const tx_data_config *d = &c->data;
    if (m->d_model % m->heads)
        return invalid(c, err, "model.heads", "a divisor of d_model = %d",
                       m->d_model);
    if (m->kind == TX_ENCODER_DECODER && m->encoder_layers < 1)
        return invalid(c, err, "model.encoder_layers",
                       "at least 1 for kind = encoder_decoder");
    if (m->kind == TX_DECODER_ONLY && m->encoder_layers)
        return invalid(c, err, "model.encoder_layers",
                       "0 for kind = decoder_only");
    if (d->task <= TX_TASK_SORT && d->min_len > d->max_len)
        return invalid(c, err, "data.min_len", "at most max_len = %d",
                       d->max_len);
    int files = d->task == TX_TASK_TSV || d->task == TX_TASK_TEXT;
    if (files && access(d->train_file, R_OK))
        return invalid(c, err, "data.train_file", "a readable file for task = %s",
                       tasks[d->task]);
    if (d->task == TX_TASK_TEXT && m->kind != TX_DECODER_ONLY)
        return invalid(c, err, "model.kind", "decoder_only for task = text");
    if (d->task == TX_TASK_TEXT && d->tokenize == TX_TOK_WORD)
        return invalid(c, err, "data.tokenize", "char, byte or sentencepiece for task = text");
    if (d->task == TX_TASK_TSV && d->tokenize == TX_TOK_BYTE)
        return invalid(c, err, "data.tokenize", "char, word or sentencepiece for task = tsv");
    if (files && *d->valid_file && access(d->valid_file, R_OK))
        return invalid(c, err, "data.valid_file", "a readable file or nothing");
    if (d->tokenize == TX_TOK_SPM && *d->spm_model && access(d->spm_model, R_OK))
        return invalid(c, err, "data.spm_model", "a readable SentencePiece .model file or nothing");
    return TX_OK;
}

int tx_config_write(const tx_config *c, char *buf, size_t n) {
    size_t len = 0;
    char value[600];
    for (int i = 0; i < NKEYS; i++) {
        int head = !i || strcmp(keys[i].section, keys[i - 1].section);
        format_value(c, &keys[i], value, sizeof value);
        len += (size_t)snprintf(len < n ? buf + len : NULL, len < n ? n - len : 0,
                                "%s%s%s%s%s = %s\n", head && i ? "\n" : "",
                                head ? "[" : "", head ? keys[i].section : "",
                                head ? "]\n" : "", keys[i].name, value);
    }
    return (int)len;
}
