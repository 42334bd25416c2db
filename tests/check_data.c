#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../data/data.h"

/* Hand-checked: English without "and" or hyphens, Chinese with 二 (not 两),
 * one 零 per run of inner zeros, 一十 shortened only at the start. */
static const struct {
    int n;
    const char *en, *zh;
} numbers[] = {
    {0, "zero", "零"},
    {7, "seven", "七"},
    {10, "ten", "十"},
    {11, "eleven", "十一"},
    {15, "fifteen", "十五"},
    {20, "twenty", "二十"},
    {21, "twenty one", "二十一"},
    {100, "one hundred", "一百"},
    {101, "one hundred one", "一百零一"},
    {110, "one hundred ten", "一百一十"},
    {1000, "one thousand", "一千"},
    {1001, "one thousand one", "一千零一"},
    {1010, "one thousand ten", "一千零一十"},
    {1204, "one thousand two hundred four", "一千二百零四"},
    {10000, "ten thousand", "一万"},
    {10010, "ten thousand ten", "一万零一十"},
    {100000, "one hundred thousand", "十万"},
    {100100, "one hundred thousand one hundred", "十万零一百"},
    {101000, "one hundred one thousand", "十万一千"},
    {110000, "one hundred ten thousand", "十一万"},
    {200005, "two hundred thousand five", "二十万零五"},
    {999999, "nine hundred ninety nine thousand nine hundred ninety nine",
     "九十九万九千九百九十九"},
};

START_TEST(test_numbers) {
    char buf[TX_NUMBER_TEXT];
    for (size_t i = 0; i < sizeof numbers / sizeof *numbers; i++) {
        tx_number_en(numbers[i].n, buf);
        ck_assert_str_eq(buf, numbers[i].en);
        tx_number_zh(numbers[i].n, buf);
        ck_assert_str_eq(buf, numbers[i].zh);
    }
}
END_TEST

static tx_data_config config(int task) {
    tx_data_config c = {.task = task, .symbols = 10, .min_len = 1,
                        .max_len = 8, .tokenize = TX_TOK_WORD, .seed = 7,
                        .valid_examples = 500};
    return c;
}

static void open_ok(tx_data *d, const tx_data_config *c) {
    tx_err err = {""};
    ck_assert_msg(tx_data_open(d, c, &err) == TX_OK, "%s", err.msg);
}

/* Row i of b decoded: source (encoder-decoder layout) and target. */
static void decode_row(const tx_data *d, const tx_batch *b, int i, char *src,
                       char *tgt) {
    tx_vocab_decode(&d->vocab, TX_SRC, b->src + i * b->Ts, b->Ts, src, 256);
    tx_vocab_decode(&d->vocab, TX_TGT, b->tgt_out + i * b->Tt, b->Tt, tgt, 256);
}

static int parse(const char *s, int *out) {
    int n = 0, used;
    while (sscanf(s, "%d%n", &out[n], &used) == 1) s += used, n++;
    return n;
}

static int int_cmp(const void *a, const void *b) {
    return *(const int *)a - *(const int *)b;
}

START_TEST(test_symbol_tasks) {
    for (int task = TX_TASK_COPY; task <= TX_TASK_SORT; task++) {
        tx_data_config c = config(task);
        tx_data d;
        tx_batch b;
        open_ok(&d, &c);
        ck_assert_int_eq(d.vocab.size, TX_NSPECIAL + 10);
        tx_batch_alloc(&b, 64, d.max_src, d.max_tgt);
        tx_data_next_batch(&d, &b, 64, 0);
        for (int i = 0; i < 64; i++) {
            char src[256], tgt[256];
            int s[16], t[16];
            decode_row(&d, &b, i, src, tgt);
            int n = parse(src, s);
            ck_assert_int_eq(parse(tgt, t), n);
            ck_assert(n >= 1 && n <= 8 && b.src_len[i] == n);
            ck_assert_int_eq(b.tgt_len[i], n + 1);
            for (int k = 0; k < n; k++) ck_assert(s[k] >= 1 && s[k] <= 10);
            if (task == TX_TASK_REVERSE)
                for (int k = 0, j = n - 1; k < j; k++, j--) {
                    int x = s[k];
                    s[k] = s[j], s[j] = x;
                }
            if (task == TX_TASK_SORT) qsort(s, (size_t)n, sizeof *s, int_cmp);
            for (int k = 0; k < n; k++) ck_assert_int_eq(s[k], t[k]);
        }
        tx_batch_free(&b);
        tx_data_free(&d);
    }
}
END_TEST

START_TEST(test_number_tasks) {
    for (int task = TX_TASK_NUMBERS_EN; task <= TX_TASK_NUMBERS_ZH; task++) {
        tx_data_config c = config(task);
        tx_data d;
        tx_batch b;
        open_ok(&d, &c);
        tx_batch_alloc(&b, 600, d.max_src, d.max_tgt);
        tx_data_next_batch(&d, &b, 600, 0);
        int one_digit = 0;
        for (int i = 0; i < 600; i++) {
            char src[256], tgt[256], want[TX_NUMBER_TEXT];
            decode_row(&d, &b, i, src, tgt);
            (task == TX_TASK_NUMBERS_EN ? tx_number_en : tx_number_zh)(atoi(src), want);
            ck_assert_str_eq(tgt, want);
            one_digit += strlen(src) == 1;
        }
        /* Digit counts are uniform: about 100 of 600 numbers have one. */
        ck_assert_msg(one_digit > 60 && one_digit < 140, "%d", one_digit);
        tx_batch_free(&b);
        tx_data_free(&d);
    }
}
END_TEST

static int in_valid(const tx_data *d, const char *src) {
    for (int i = 0; i < d->n_valid; i++)
        if (!strcmp(d->valid[i].src, src)) return 1;
    return 0;
}

/* Draws n batches of 64 and fails if a validation source appears. */
static void check_never_trained(tx_data *d, int n) {
    tx_batch b;
    tx_batch_alloc(&b, 64, d->max_src, d->max_tgt);
    for (int k = 0; k < n; k++) {
        tx_data_next_batch(d, &b, 64, 0);
        for (int i = 0; i < 64; i++) {
            char src[256], tgt[256];
            decode_row(d, &b, i, src, tgt);
            ck_assert_msg(!in_valid(d, src), "validation source '%s' trained", src);
        }
    }
    tx_batch_free(&b);
}

START_TEST(test_validation_held_out) {
    tx_data_config c = config(TX_TASK_NUMBERS_EN);
    tx_data d, again;
    open_ok(&d, &c);
    ck_assert_int_eq(d.n_valid, 500);
    for (int i = 0; i < d.n_valid; i++) {
        ck_assert(tx_data_held_out(c.seed, d.valid[i].src));
        for (int j = 0; j < i; j++) ck_assert_str_ne(d.valid[i].src, d.valid[j].src);
    }
    open_ok(&again, &c); /* the same seed gives the same list */
    for (int i = 0; i < d.n_valid; i++)
        ck_assert_str_eq(d.valid[i].src, again.valid[i].src);
    check_never_trained(&d, 100);
    tx_data_free(&again);
    tx_data_free(&d);

    /* 3 symbols of length 1..4: 120 sequences, so every held-out one. */
    c = config(TX_TASK_COPY);
    c.symbols = 3, c.max_len = 4;
    int held = 0;
    for (int code = 0; code < 3 + 9 + 27 + 81; code++) {
        int len = code < 3 ? 1 : code < 12 ? 2 : code < 39 ? 3 : 4;
        int rest = code - (len == 1 ? 0 : len == 2 ? 3 : len == 3 ? 12 : 39);
        char src[16], *w = src;
        for (int k = 0; k < len; k++, rest /= 3)
            w += sprintf(w, k ? " %d" : "%d", rest % 3 + 1);
        held += tx_data_held_out(c.seed, src);
    }
    open_ok(&d, &c);
    ck_assert_int_gt(held, 0);
    ck_assert_int_eq(d.n_valid, held);
    check_never_trained(&d, 50);
    tx_data_free(&d);
}
END_TEST

START_TEST(test_batch_layouts) {
    static const int s0[] = {5, 6, 7}, t0[] = {8, 9}, s1[] = {10},
                     t1[] = {11, 12, 13};
    tx_example ex[2] = {{.src_ids = s0, .src_len = 3, .tgt_ids = t0, .tgt_len = 2},
                        {.src_ids = s1, .src_len = 1, .tgt_ids = t1, .tgt_len = 3}};
    tx_batch b;
    tx_batch_alloc(&b, 4, 5, 5);
    tx_batch_fill(&b, ex, 2, 0);
    static const int src[] = {5, 6, 7, 10, 0, 0},
                     in[] = {1, 8, 9, 0, 1, 11, 12, 13},
                     out[] = {8, 9, 2, 0, 11, 12, 13, 2};
    ck_assert(b.B == 2 && b.Ts == 3 && b.Tt == 4);
    ck_assert(!memcmp(b.src, src, sizeof src));
    ck_assert(!memcmp(b.tgt_in, in, sizeof in));
    ck_assert(!memcmp(b.tgt_out, out, sizeof out));
    ck_assert(b.src_len[0] == 3 && b.src_len[1] == 1);
    ck_assert(b.tgt_len[0] == 3 && b.tgt_len[1] == 4);

    /* seq = source BOS target EOS; the prompt's predictions are PAD. */
    tx_batch_fill(&b, ex, 2, 1);
    static const int din[] = {5, 6, 7, 1, 8, 9, 10, 1, 11, 12, 13, 0},
                     dout[] = {0, 0, 0, 8, 9, 2, 0, 11, 12, 13, 2, 0};
    ck_assert(b.B == 2 && b.Ts == 0 && b.Tt == 6);
    ck_assert(!memcmp(b.tgt_in, din, sizeof din));
    ck_assert(!memcmp(b.tgt_out, dout, sizeof dout));
    ck_assert(b.src_len[0] == 3 && b.src_len[1] == 1);
    ck_assert(b.tgt_len[0] == 6 && b.tgt_len[1] == 5);

    /* Refilling with shorter rows leaves nothing of the previous batch. */
    const tx_example two[2] = {ex[1], ex[1]};
    tx_batch_fill(&b, two, 2, 0);
    static const int src2[] = {10, 10}, in2[] = {1, 11, 12, 13, 1, 11, 12, 13};
    ck_assert(b.Ts == 1 && b.Tt == 4);
    ck_assert(!memcmp(b.src, src2, sizeof src2));
    ck_assert(!memcmp(b.tgt_in, in2, sizeof in2));
    tx_batch_free(&b);
}
END_TEST

/* TSV files live in one directory made before the tests and removed after. */
static char tmpdir[64] = "/tmp/check_data_XXXXXX";

static void make_tmpdir(void) { ck_assert(mkdtemp(tmpdir)); }

static void remove_tmpdir(void) {
    DIR *dir = opendir(tmpdir);
    char path[600];
    for (struct dirent *e; dir && (e = readdir(dir));) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
        if (*e->d_name != '.') unlink(path);
    }
    if (dir) closedir(dir);
    rmdir(tmpdir);
}

/* Writes text to a new file in tmpdir; returns its path (static buffer). */
static const char *write_file(const char *name, const char *text) {
    static char path[128];
    size_t n = strlen(text);
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    ck_assert(f && fwrite(text, 1, n, f) == n);
    fclose(f);
    return path;
}

static tx_data_config tsv_config(const char *name, const char *text) {
    tx_data_config c = config(TX_TASK_TSV);
    strcpy(c.train_file, write_file(name, text));
    return c;
}

/* Opening fails with code and a message starting "path:line:" and holding what. */
static void expect_error(const tx_data_config *c, int code, int line,
                         const char *what) {
    tx_data d;
    tx_err err = {""};
    char prefix[700];
    ck_assert_int_eq(tx_data_open(&d, c, &err), code);
    snprintf(prefix, sizeof prefix, "%s:%d: ", c->train_file, line);
    ck_assert_msg(!strncmp(err.msg, prefix, strlen(prefix)) && strstr(err.msg, what),
                  "got '%s', expected '%s...%s'", err.msg, prefix, what);
}

START_TEST(test_tsv_errors) {
    tx_data_config c = tsv_config("tab.tsv", "a\tb\nno tab here\n");
    expect_error(&c, TX_EINPUT, 2, "no tab");
    c = tsv_config("utf8.tsv", "a\tb\nc\td\n\xff\tx\n");
    expect_error(&c, TX_EINPUT, 3, "invalid UTF-8 at byte 1");
    c = tsv_config("overlong.tsv", "\xe0\x80\xaf\tx\n"); /* '/' in 3 bytes */
    expect_error(&c, TX_EINPUT, 1, "invalid UTF-8");
    c = tsv_config("empty.tsv", "");
    expect_error(&c, TX_EINPUT, 1, "empty file");
    c = tsv_config("notarget.tsv", "a\tb\n\nc\t  \n");
    expect_error(&c, TX_EINPUT, 3, "empty target");
    c = tsv_config("twotabs.tsv", "a\tb\tc\n");
    expect_error(&c, TX_EINPUT, 1, "more than one tab");
    char line[TX_TSV_MAX_LINE + 8];
    memset(line, 'x', sizeof line);
    line[1] = '\t';
    line[sizeof line - 1] = 0;
    c = tsv_config("long.tsv", line);
    expect_error(&c, TX_EINPUT, 1, "longer than");
    strcpy(c.train_file, "/nonexistent/train.tsv");
    tx_data d;
    tx_err err;
    ck_assert_int_eq(tx_data_open(&d, &c, &err), TX_EINPUT);
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/train.tsv: cannot open"));
}
END_TEST

START_TEST(test_tsv_corpus) {
    /* Word tokens, CRLF line ends and a blank line; no valid_file. */
    char text[4096] = "";
    for (int i = 0; i < 60; i++)
        sprintf(text + strlen(text), "w%d x\ty%d z\r\n%s", i, i, i == 30 ? "\n" : "");
    tx_data_config c = tsv_config("words.tsv", text);
    tx_data d;
    open_ok(&d, &c);
    ck_assert_int_eq(d.n_train + d.n_valid, 60);
    ck_assert_int_ge(d.n_valid, 1);
    ck_assert_int_eq(d.vocab.size, TX_NSPECIAL + 60 + 60 + 2); /* wI yI x z */
    ck_assert(d.max_src == 2 && d.max_tgt == 2);
    check_never_trained(&d, 5);
    tx_data_free(&d);

    /* One line only cannot be split; two can (at least one held out). */
    c = tsv_config("one.tsv", "a\tb\n");
    expect_error(&c, TX_EINPUT, 1, "valid_file");
    c = tsv_config("two.tsv", "a\tb\nc\td\n");
    open_ok(&d, &c);
    ck_assert(d.n_train == 1 && d.n_valid == 1);
    tx_data_free(&d);

    /* Characters are code points; unseen validation tokens are UNK. */
    c = tsv_config("zh.tsv", "你好\thello\r\n再见\tbye\r\n");
    c.tokenize = TX_TOK_CHAR;
    strcpy(c.valid_file, write_file("zh_valid.tsv", "你们\tok\n"));
    open_ok(&d, &c);
    ck_assert(d.n_train == 2 && d.n_valid == 1);
    ck_assert_int_eq(d.valid[0].src_len, 2);
    ck_assert_int_ne(d.valid[0].src_ids[0], TX_UNK); /* 你 */
    ck_assert_int_eq(d.valid[0].src_ids[1], TX_UNK); /* 们 */
    ck_assert_int_ne(d.valid[0].tgt_ids[0], TX_UNK); /* o */
    ck_assert_int_eq(d.valid[0].tgt_ids[1], TX_UNK); /* k */
    ck_assert_int_eq(d.vocab.size, TX_NSPECIAL + 4 + 6); /* 你好再见 helby */
    tx_data_free(&d);
}
END_TEST

START_TEST(test_vocab) {
    tx_data_config c = config(TX_TASK_NUMBERS_ZH);
    tx_data d;
    tx_vocab v;
    tx_err err;
    open_ok(&d, &c);
    char *s = tx_vocab_to_string(&d.vocab);
    ck_assert_int_eq(tx_vocab_from_string(&v, s, &err), TX_OK);
    ck_assert_int_eq(v.size, 4 + 10 + 14); /* digits, 零..九 十百千万 */
    ck_assert_int_eq(v.size, d.vocab.size);
    ck_assert(v.mode[TX_SRC] == TX_TOK_CHAR && v.mode[TX_TGT] == TX_TOK_CHAR);
    for (int i = 0; i < v.size; i++) ck_assert_str_eq(v.tok[i], d.vocab.tok[i]);
    int ids[16];
    char out[64];
    ck_assert_int_eq(tx_vocab_encode(&v, TX_TGT, "一千零四", ids, 16), 4);
    ids[4] = TX_EOS, ids[5] = ids[0];
    ck_assert_int_eq(tx_vocab_decode(&v, TX_TGT, ids, 6, out, sizeof out), 12);
    ck_assert_str_eq(out, "一千零四");
    ck_assert_int_eq(tx_vocab_decode(&v, TX_TGT, ids, 6, out, 5), 12);
    ck_assert_str_eq(out, "一"); /* truncated at cap - 1 = 4 bytes */
    free(s);
    tx_vocab_free(&v);
    tx_data_free(&d);

    /* Words are joined by spaces, unknown words become <unk>. */
    c = config(TX_TASK_NUMBERS_EN);
    open_ok(&d, &c);
    int n = tx_vocab_encode(&d.vocab, TX_TGT, " one  hundred bogus ", ids, 16);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(ids[2], TX_UNK);
    tx_vocab_decode(&d.vocab, TX_TGT, ids, n, out, sizeof out);
    ck_assert_str_eq(out, "one hundred <unk>");
    ck_assert_int_eq(tx_vocab_encode(&d.vocab, TX_SRC, "1204", ids, 2), 4);
    tx_data_free(&d);

    ck_assert_int_eq(tx_vocab_from_string(&v, "tapeformer-vocab word word\nb\na\n", &err),
                     TX_EINPUT);
    ck_assert_str_eq(err.msg, "vocabulary:3: expected a non-empty token after the "
                              "previous one in sorted order, ending in a newline");
    ck_assert_int_eq(tx_vocab_from_string(&v, "tapeformer-vocab word bytes\n", &err),
                     TX_EINPUT);
    ck_assert_ptr_null(v.tok);
}
END_TEST

/* Saves the position, draws 3 batches, restores, draws again: identical. */
static void check_replay(tx_data *d, int B) {
    tx_batch b;
    uint64_t pos[TX_DATA_POS];
    tx_err err;
    int first[3][64 * 32];
    tx_batch_alloc(&b, B, d->max_src, d->max_tgt);
    tx_data_next_batch(d, &b, B, 1); /* not from the start */
    tx_data_get_pos(d, pos);
    for (int k = 0; k < 3; k++) {
        tx_data_next_batch(d, &b, B, 1);
        memcpy(first[k], b.tgt_in, sizeof(int) * (size_t)(B * b.Tt));
    }
    ck_assert_int_eq(tx_data_set_pos(d, pos, &err), TX_OK);
    for (int k = 0; k < 3; k++) {
        tx_data_next_batch(d, &b, B, 1);
        ck_assert(!memcmp(first[k], b.tgt_in, sizeof(int) * (size_t)(B * b.Tt)));
    }
    ck_assert(memcmp(first[0], first[1], sizeof(int) * (size_t)(B * b.Tt)));
    tx_batch_free(&b);
}

/* SentencePiece: a model trained here gives the text back exactly (spaces,
 * line breaks, Chinese) and is the same bytes when trained twice; through
 * the vocabulary's string form (checkpoint metadata) it is the same model. */
START_TEST(test_sentencepiece) {
    static const char *const lines[] = {
        "one thousand two hundred four\n", "two hundred  and six\n", "一千二百零四\n",
        "九百零七 and seven\n", "the cat sat on the mat\n", "四十五\n"};
    tx_data_config c = config(TX_TASK_TSV);
    c.tokenize = TX_TOK_SPM, c.vocab_size = 40, c.spm_type = TX_SPM_BPE;
    tx_vocab v, w, again;
    tx_err err;
    ck_assert_int_eq(tx_vocab_sentencepiece(&v, &c, lines, 6, &err), TX_OK);
    ck_assert_int_eq(tx_vocab_sentencepiece(&again, &c, lines, 6, &err), TX_OK);
    ck_assert_uint_eq(v.spm_len, again.spm_len);
    ck_assert(!memcmp(v.spm_model, again.spm_model, v.spm_len));
    tx_vocab_free(&again);
    ck_assert_int_eq(v.size, 40);
    for (int i = 0; i < TX_NSPECIAL; i++) ck_assert_int_eq(v.to_spm[i], i); /* ours, as trained */
    char *s = tx_vocab_to_string(&v);
    ck_assert_int_eq(tx_vocab_from_string(&w, s, &err), TX_OK);
    const char *texts[] = {"一千二百零四", "two hundred  and six\nthe cat", "  九百 the\n四十五\n"};
    for (int t = 0; t < 3; t++) {
        int ids[128], n = tx_vocab_encode(&w, TX_SRC, texts[t], ids, 128);
        ck_assert(n > 0 && n <= (int)strlen(texts[t]));
        for (int i = 0; i < n; i++) ck_assert(ids[i] >= TX_NSPECIAL && ids[i] < w.size);
        char out[256];
        ck_assert_uint_eq(tx_vocab_decode(&w, TX_TGT, ids, n, out, sizeof out), strlen(texts[t]));
        ck_assert_str_eq(out, texts[t]);
    }
    /* a character it never saw: UNK, named */
    const char *first = NULL;
    int len = 0, ids[16];
    ck_assert_int_eq(tx_vocab_unknown(&w, TX_SRC, "cat 猫", &first, &len), 1);
    ck_assert(len == 3 && !strncmp(first, "猫", 3));
    ck_assert_int_eq(tx_vocab_encode(&w, TX_SRC, "猫", ids, 16), 1);
    ck_assert_int_eq(ids[0], TX_UNK);
    /* too many pieces for the text, and bytes that are no model */
    c.vocab_size = 5000;
    ck_assert_int_eq(tx_vocab_sentencepiece(&again, &c, lines, 6, &err), TX_EINPUT);
    ck_assert_ptr_nonnull(strstr(err.msg, "data.vocab_size = 5000"));
    ck_assert_int_eq(tx_vocab_from_spm(&again, "\x0a\x05hello", 7, &err), TX_EINPUT);
    ck_assert_ptr_nonnull(strstr(err.msg, "not a SentencePiece model"));
    free(s);
    tx_vocab_free(&v);
    tx_vocab_free(&w);
}
END_TEST

START_TEST(test_position) {
    tx_data_config c = config(TX_TASK_SORT);
    tx_data d;
    open_ok(&d, &c);
    check_replay(&d, 16);
    uint64_t zero[TX_DATA_POS] = {0};
    tx_err err;
    ck_assert_int_eq(tx_data_set_pos(&d, zero, &err), TX_EINPUT);
    tx_data_free(&d);

    /* 8 training lines, batches of 4: the replay crosses epochs. */
    char text[256] = "";
    for (int i = 0; i < 8; i++) sprintf(text + strlen(text), "s%d\tt%d\n", i, i);
    c = tsv_config("epochs.tsv", text);
    strcpy(c.valid_file, write_file("epochs_valid.tsv", "s0\tt0\n"));
    open_ok(&d, &c);
    ck_assert_int_eq(d.n_train, 8);
    check_replay(&d, 4);
    uint64_t far[TX_DATA_POS] = {0, 0, 0, 0, 1, 9};
    ck_assert_int_eq(tx_data_set_pos(&d, far, &err), TX_EINPUT);
    tx_data_free(&d);
}
END_TEST

Suite *suite(void) {
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("data");
    tcase_set_timeout(tc, 20);
    tcase_add_unchecked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_add_test(tc, test_numbers);
    tcase_add_test(tc, test_symbol_tasks);
    tcase_add_test(tc, test_number_tasks);
    tcase_add_test(tc, test_validation_held_out);
    tcase_add_test(tc, test_batch_layouts);
    tcase_add_test(tc, test_tsv_errors);
    tcase_add_test(tc, test_tsv_corpus);
    tcase_add_test(tc, test_vocab);
    tcase_add_test(tc, test_sentencepiece);
    tcase_add_test(tc, test_position);
    suite_add_tcase(s, tc);
    return s;
}

TX_TEST_MAIN
