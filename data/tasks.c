/* tasks.c: the generated tasks: symbol sequences to copy, reverse or sort,
 * numbers to spell out in English or Chinese, and the held-out rule. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

uint64_t tx_hash_bytes(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h;
}

uint64_t tx_text_hash(const char *s) { return tx_hash_bytes(s, strlen(s)); }

double tx_held_out_score(uint64_t seed, const char *src) {
    return tx_hash_uniform(seed, tx_text_hash(src));
}

int tx_data_held_out(uint64_t seed, const char *src) {
    return tx_held_out_score(seed, src) < TX_HOLD_OUT;
}

/* ---- numbers -------------------------------------------------------------- */

static const char *const en_ones[20] = {
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
    "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen",
    "sixteen", "seventeen", "eighteen", "nineteen"};
static const char *const en_tens[10] = {"", "", "twenty", "thirty", "forty",
                                        "fifty", "sixty", "seventy", "eighty",
                                        "ninety"};
static const char *const zh_digits[10] = {"零", "一", "二", "三", "四",
                                          "五", "六", "七", "八", "九"};
static const char *const zh_units[4] = {"", "十", "百", "千"};

static void add_word(char *out, const char *w) {
    if (*out) strcat(out, " ");
    strcat(out, w);
}

static void en_group(char *out, int n) { /* 1..999 */
    if (n >= 100) {
        add_word(out, en_ones[n / 100]);
        add_word(out, "hundred");
        n %= 100;
    }
    if (n >= 20) {
        add_word(out, en_tens[n / 10]);
        n %= 10;
    }
    if (n) add_word(out, en_ones[n]);
}

void tx_number_en(int n, char *out) {
    TX_ASSERT(n >= 0 && n <= 999999, "tx_number_en: %d out of range", n);
    *out = 0;
    if (n == 0) add_word(out, en_ones[0]);
    if (n >= 1000) {
        en_group(out, n / 1000);
        add_word(out, "thousand");
    }
    if (n % 1000) en_group(out, n % 1000);
}

/* 1..9999. Zeros inside the group read as one 零; trailing zeros are silent. */
static void zh_group(char *out, int g) {
    static const int pow10[4] = {1, 10, 100, 1000};
    int zero = 0, started = 0;
    for (int p = 3; p >= 0; p--) {
        int d = g / pow10[p] % 10;
        if (!d) {
            zero = started;
            continue;
        }
        if (zero) strcat(out, zh_digits[0]);
        strcat(strcat(out, zh_digits[d]), zh_units[p]);
        zero = 0, started = 1;
    }
}

void tx_number_zh(int n, char *out) {
    TX_ASSERT(n >= 0 && n <= 999999, "tx_number_zh: %d out of range", n);
    int wan = n / 10000, rest = n % 10000;
    strcpy(out, n ? "" : zh_digits[0]);
    if (wan) {
        zh_group(out, wan);
        strcat(out, "万");
    }
    if (rest) {
        /* 10010 一万零一十: the zeros between the groups are read too. */
        if (wan && rest < 1000) strcat(out, zh_digits[0]);
        zh_group(out, rest);
    }
    /* 一十五 is said 十五, but only at the start: 一百一十 keeps its 一. */
    if (!strncmp(out, "一十", strlen("一十")))
        memmove(out, out + strlen("一"), strlen(out) - strlen("一") + 1);
}

/* ---- sampling ------------------------------------------------------------- */

static int is_symbol_task(int task) {
    return task == TX_TASK_COPY || task == TX_TASK_REVERSE ||
           task == TX_TASK_SORT;
}

static int digits(int n) { return n >= 10 ? 1 + digits(n / 10) : 1; }

size_t tx_task_text_cap(const tx_data_config *c) {
    if (is_symbol_task(c->task))
        return (size_t)c->max_len * (size_t)(digits(c->symbols) + 1) + 1;
    return TX_NUMBER_TEXT;
}

/* Numbers: 6 digits; "seven hundred seventy seven thousand seven hundred
 * seventy seven" has 9 words, 九十九万九千九百九十九 11 characters. */
void tx_task_max_tokens(const tx_data_config *c, int *max_src, int *max_tgt) {
    *max_src = is_symbol_task(c->task) ? c->max_len : 6;
    *max_tgt = is_symbol_task(c->task)          ? c->max_len
               : c->task == TX_TASK_NUMBERS_EN ? 9
                                                : 11;
}

double tx_task_sources(const tx_data_config *c) {
    if (!is_symbol_task(c->task)) return 1e6;
    double n = 0;
    for (int len = c->min_len; len <= c->max_len; len++)
        n += pow(c->symbols, len);
    return n;
}

static int int_cmp(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static char *join(char *out, const int *s, int n) {
    char *w = out;
    *w = 0;
    for (int i = 0; i < n; i++) w += sprintf(w, i ? " %d" : "%d", s[i]);
    return out;
}

void tx_task_sample(const tx_data_config *c, tx_rng *r, char *src, char *tgt) {
    if (!is_symbol_task(c->task)) {
        /* Digit count first, so that short numbers are common. */
        int d = tx_rng_int(r, 1, 6), lo = 1;
        for (int i = 1; i < d; i++) lo *= 10;
        int n = tx_rng_int(r, d == 1 ? 0 : lo, lo * 10 - 1);
        sprintf(src, "%d", n);
        (c->task == TX_TASK_NUMBERS_EN ? tx_number_en : tx_number_zh)(n, tgt);
        return;
    }
    TX_ASSERT(c->max_len <= TX_MAX_SEQ, "tx_task_sample: max_len %d > %d",
              c->max_len, TX_MAX_SEQ);
    int s[TX_MAX_SEQ], n = tx_rng_int(r, c->min_len, c->max_len);
    for (int i = 0; i < n; i++) s[i] = tx_rng_int(r, 1, c->symbols);
    join(src, s, n);
    if (c->task == TX_TASK_REVERSE)
        for (int i = 0; i < n / 2; i++) {
            int t = s[i];
            s[i] = s[n - 1 - i], s[n - 1 - i] = t;
        }
    if (c->task == TX_TASK_SORT) qsort(s, (size_t)n, sizeof *s, int_cmp);
    join(tgt, s, n);
}

static void add_span(tx_span *t, int *n, const char *s) {
    t[(*n)++] = (tx_span){s, (int)strlen(s)};
}

void tx_task_vocab(const tx_data_config *c, tx_vocab *v) {
    int n = is_symbol_task(c->task) ? c->symbols : 10, count = n;
    tx_span *t = tx_malloc((size_t)(n + 32) * sizeof *t);
    char *names = tx_malloc((size_t)n * (size_t)(digits(n) + 1));
    for (int i = 0, off = 0; i < n; i++) {
        t[i].s = names + off;
        t[i].n = sprintf(names + off, "%d", is_symbol_task(c->task) ? i + 1 : i);
        off += t[i].n + 1;
    }
    if (c->task == TX_TASK_NUMBERS_EN) {
        for (int i = 0; i < 20; i++) add_span(t, &count, en_ones[i]);
        for (int i = 2; i < 10; i++) add_span(t, &count, en_tens[i]);
        add_span(t, &count, "hundred");
        add_span(t, &count, "thousand");
    }
    if (c->task == TX_TASK_NUMBERS_ZH) {
        for (int i = 0; i < 10; i++) add_span(t, &count, zh_digits[i]);
        for (int i = 1; i < 4; i++) add_span(t, &count, zh_units[i]);
        add_span(t, &count, "万");
    }
    int src_mode = is_symbol_task(c->task) ? TX_TOK_WORD : TX_TOK_CHAR;
    int tgt_mode = c->task == TX_TASK_NUMBERS_ZH ? TX_TOK_CHAR : TX_TOK_WORD;
    tx_vocab_build(v, src_mode, tgt_mode, t, (size_t)count);
    free(names);
    free(t);
}
