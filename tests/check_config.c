#include "testutil.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../io/config.h"

/* Files live in one directory made before the tests and removed after. */
static char tmpdir[64] = "/tmp/check_config_XXXXXX";

static void make_tmpdir(void) { ck_assert(mkdtemp(tmpdir)); }

static void remove_tmpdir(void) {
    char path[600];
    snprintf(path, sizeof path, "%s/sub/data/train.tsv", tmpdir);
    unlink(path);
    snprintf(path, sizeof path, "%s/sub/data", tmpdir);
    rmdir(path);
    snprintf(path, sizeof path, "%s/sub/exp.ini", tmpdir);
    unlink(path);
    snprintf(path, sizeof path, "%s/sub", tmpdir);
    rmdir(path);
    rmdir(tmpdir);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert(f && fputs(text, f) >= 0);
    fclose(f);
}

START_TEST(test_defaults) {
    tx_config c;
    tx_err err;
    tx_config_defaults(&c);
    ck_assert(c.model.kind == TX_ENCODER_DECODER && c.model.d_model == 64 &&
              c.model.heads == 4 && c.model.encoder_layers == 2);
    ck_assert(c.data.task == TX_TASK_COPY && c.data.symbols == 10 &&
              c.data.min_len == 1 && c.data.max_len == 10);
    ck_assert(c.train.batch_size == 64 && c.train.accumulate == 1);
    ck_assert(c.optim.name == TX_OPT_ADAM && c.optim.lr == 1e-3);
    ck_assert_int_eq(c.optim.total_steps, c.train.steps);
    ck_assert_int_eq(c.data.valid_examples, c.train.eval_examples);
    ck_assert_str_eq(c.name, "default");
    ck_assert_str_eq(c.out_dir, "runs/default");
    ck_assert_int_eq(tx_config_validate(&c, &err), TX_OK);
}
END_TEST

START_TEST(test_load_file) {
    char dir[128], path[256], tsv[256];
    snprintf(dir, sizeof dir, "%s/sub", tmpdir);
    ck_assert(!mkdir(dir, 0700));
    snprintf(path, sizeof path, "%s/exp.ini", dir);
    write_file(path, "; a comment\n"
                     "[model]\n"
                     "d_model = 32\n"
                     "kind = decoder_only\n"
                     "encoder_layers = 0\n"
                     "norm_first = true\n"
                     "dropout = 0\n"
                     "\n"
                     "[data]\n"
                     "task = tsv\n"
                     "train_file = data/train.tsv\n"
                     "tokenize = char\n"
                     "seed = 18446744073709551615\n"
                     "[optim]\n"
                     "name = adamw\n"
                     "lr = 3e-4 ; inline comment\n"
                     "schedule = cosine\n");
    tx_config c;
    tx_err err;
    ck_assert_msg(tx_config_load(&c, path, &err) == TX_OK, "%s", err.msg);
    ck_assert_str_eq(c.name, "exp");
    ck_assert_str_eq(c.out_dir, "runs/exp");
    snprintf(tsv, sizeof tsv, "%s/data/train.tsv", dir);
    ck_assert_str_eq(c.data.train_file, tsv);
    ck_assert(c.model.d_model == 32 && c.model.kind == TX_DECODER_ONLY &&
              c.model.encoder_layers == 0 && c.model.norm_first == 1 &&
              c.model.dropout == 0 && c.model.heads == 4);
    ck_assert(c.data.task == TX_TASK_TSV && c.data.tokenize == TX_TOK_CHAR &&
              c.data.seed == UINT64_MAX);
    ck_assert(c.optim.name == TX_OPT_ADAMW && c.optim.lr == 3e-4 &&
              c.optim.schedule == TX_SCHED_COSINE);

    /* The message points at the line that named the missing file. */
    char want[1024];
    snprintf(want, sizeof want,
             "%s:11: [data] train_file: expected a readable file for task = "
             "tsv, got '%s'", path, tsv);
    ck_assert_int_eq(tx_config_validate(&c, &err), TX_EINPUT);
    ck_assert_str_eq(err.msg, want);
    snprintf(want, sizeof want, "%s/data", dir);
    ck_assert(!mkdir(want, 0700));
    write_file(tsv, "a\tb\n");
    ck_assert_int_eq(tx_config_validate(&c, &err), TX_OK);

    ck_assert_int_eq(tx_config_load(&c, "/nonexistent/x.ini", &err), TX_EINPUT);
    ck_assert_str_eq(err.msg, "/nonexistent/x.ini: cannot open: No such file or directory");
}
END_TEST

/* Loading text fails with exactly this message and leaves c alone. */
static void expect_load_error(const char *text, const char *msg) {
    tx_config c;
    tx_err err;
    tx_config_defaults(&c);
    c.model.d_ff = 7; /* a marker that a failed load must keep */
    ck_assert_int_eq(tx_config_load_string(&c, text, "t.ini", &err), TX_EINPUT);
    ck_assert_str_eq(err.msg, msg);
    ck_assert_int_eq(c.model.d_ff, 7);
}

START_TEST(test_load_errors) {
    expect_load_error("[modle]\nd_model = 3\n",
                      "t.ini:2: [modle] d_model: unknown section [modle]; "
                      "expected model, data, train, optim or output");
    expect_load_error("[optim]\nrate = 3\n",
                      "t.ini:2: [optim] rate: unknown key; expected one of name, "
                      "lr, beta1, beta2, eps, weight_decay, decay, schedule, warmup, "
                      "clip_norm");
    expect_load_error("[model]\n\nd_model = 6x4\n",
                      "t.ini:3: [model] d_model: expected an integer in "
                      "1..65536, got '6x4'");
    expect_load_error("[model]\nd_model = 0\n",
                      "t.ini:2: [model] d_model: expected an integer in "
                      "1..65536, got '0'");
    expect_load_error("[model]\nactivation = tanh\n",
                      "t.ini:2: [model] activation: expected one of relu|gelu, "
                      "got 'tanh'");
    expect_load_error("[model]\ndropout = 1\n",
                      "t.ini:2: [model] dropout: expected a number in [0, 1), "
                      "got '1'");
    expect_load_error("[optim]\nlr = 0\n",
                      "t.ini:2: [optim] lr: expected a number in (0, inf), got '0'");
    expect_load_error("[model]\nnorm_first = yes\n",
                      "t.ini:2: [model] norm_first: expected true, false, 1 or 0, "
                      "got 'yes'");
    expect_load_error("[data]\nseed = -1\n",
                      "t.ini:2: [data] seed: expected an unsigned 64-bit "
                      "integer, got '-1'");
    expect_load_error("[model]\nheads = 2\nheads = 4\n",
                      "t.ini:3: [model] heads: set twice (first on line 2)");
    expect_load_error("[model]\nd_model\n",
                      "t.ini:2: expected '[section]' or 'key = value'");
    /* Only the first of several errors is reported. */
    expect_load_error("[model]\nheads = x\nd_ff = y\n",
                      "t.ini:2: [model] heads: expected an integer in 1..4096, "
                      "got 'x'");
    char long_line[600] = "[data]\ntrain_file = ";
    memset(long_line + strlen(long_line), 'x', 500);
    tx_config c;
    tx_err err;
    ck_assert_int_eq(tx_config_load_string(&c, long_line, "t.ini", &err), TX_EINPUT);
    ck_assert_msg(!strncmp(err.msg, "t.ini:2: line longer than", 25), "%s", err.msg);
}
END_TEST

START_TEST(test_overrides) {
    tx_config c;
    tx_err err;
    tx_config_defaults(&c);
    ck_assert_int_eq(tx_config_set(&c, "optim.lr=0.5", &err), TX_OK);
    ck_assert(c.optim.lr == 0.5);
    ck_assert_int_eq(tx_config_set(&c, " train.steps = 300 ", &err), TX_OK);
    ck_assert(c.train.steps == 300 && c.optim.total_steps == 300);
    ck_assert_int_eq(tx_config_set(&c, "train.eval_examples=40", &err), TX_OK);
    ck_assert_int_eq(c.data.valid_examples, 40);
    ck_assert_int_eq(tx_config_set(&c, "output.name=foo", &err), TX_OK);
    ck_assert_str_eq(c.out_dir, "runs/foo");
    ck_assert_int_eq(tx_config_set(&c, "output.dir=out/x", &err), TX_OK);
    ck_assert_int_eq(tx_config_set(&c, "output.name=bar", &err), TX_OK);
    ck_assert_str_eq(c.out_dir, "out/x"); /* an explicit dir stays */
    ck_assert_int_eq(tx_config_set(&c, "data.train_file=rel/t.tsv", &err), TX_OK);
    ck_assert_str_eq(c.data.train_file, "rel/t.tsv"); /* cwd-relative */

    ck_assert_int_eq(tx_config_set(&c, "optim.lr=abc", &err), TX_EINPUT);
    ck_assert_str_eq(err.msg, "--set optim.lr: expected a number in (0, inf), got 'abc'");
    ck_assert(c.optim.lr == 0.5);
    ck_assert_int_eq(tx_config_set(&c, "model.foo=1", &err), TX_EINPUT);
    ck_assert_msg(!strncmp(err.msg, "--set model.foo: unknown key; expected one of kind, "
                                    "d_model,", 49), "%s", err.msg);
    ck_assert_int_eq(tx_config_set(&c, "lr=1", &err), TX_EINPUT);
    ck_assert_str_eq(err.msg, "--set 'lr=1': expected section.key=value");

    /* Cross-key checks name where the key was set. */
    ck_assert_int_eq(tx_config_set(&c, "model.heads=5", &err), TX_OK);
    ck_assert_int_eq(tx_config_validate(&c, &err), TX_EINPUT);
    ck_assert_str_eq(err.msg, "--set model.heads: expected a divisor of d_model = 64, got '5'");
}
END_TEST

static void expect_invalid(const char *text, const char *msg) {
    tx_config c;
    tx_err err;
    ck_assert_msg(tx_config_load_string(&c, text, "t.ini", &err) == TX_OK, "%s", err.msg);
    ck_assert_int_eq(tx_config_validate(&c, &err), TX_EINPUT);
    ck_assert_str_eq(err.msg, msg);
}

START_TEST(test_validate) {
    expect_invalid("[model]\nd_model = 30\nheads = 4\n",
                   "t.ini:3: [model] heads: expected a divisor of d_model = 30, got '4'");
    expect_invalid("[data]\nmin_len = 5\nmax_len = 3\n",
                   "t.ini:2: [data] min_len: expected at most max_len = 3, got '5'");
    expect_invalid("[model]\nkind = decoder_only\n",
                   "t.ini: [model] encoder_layers (default): expected 0 for kind = "
                   "decoder_only, got '2'");
    expect_invalid("[data]\ntask = tsv\n",
                   "t.ini: [data] train_file (default): expected a readable file "
                   "for task = tsv, got ''");
}
END_TEST

START_TEST(test_round_trip) {
    static const char *sets[] = {
        "model.kind=decoder_only", "model.encoder_layers=0", "model.dropout=0.1",
        "model.activation=gelu", "model.positions=learned", "model.tie_embeddings=0",
        "data.task=numbers_zh", "data.seed=18446744073709551615",
        "data.valid_file=a b/v.tsv", "train.label_smoothing=0.3",
        "train.target_accuracy=0.999", "optim.eps=1e-9", "optim.lr=0.000123456789",
        "optim.schedule=noam", "output.name=trip"};
    tx_config c, back;
    tx_err err;
    tx_config_defaults(&c);
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
        ck_assert_msg(tx_config_set(&c, sets[i], &err) == TX_OK, "%s", err.msg);
    char text[8192], again[8192];
    int n = tx_config_write(&c, text, sizeof text);
    ck_assert(n > 0 && (size_t)n < sizeof text && (size_t)n == strlen(text));
    ck_assert_msg(!strncmp(text, "[model]\nkind = decoder_only\nd_model = 64\n", 40), "%s", text);
    ck_assert_ptr_nonnull(strstr(text, "\n\n[optim]\nname = adam\nlr = 0.000123456789\n"));
    ck_assert_ptr_nonnull(strstr(text, "\neps = 1e-09\n"));
    ck_assert_msg(tx_config_load_string(&back, text, "checkpoint", &err) == TX_OK, "%s", err.msg);
    ck_assert(!memcmp(&back.model, &c.model, sizeof c.model));
    ck_assert(!memcmp(&back.data, &c.data, sizeof c.data));
    ck_assert(!memcmp(&back.train, &c.train, sizeof c.train));
    ck_assert(!memcmp(&back.optim, &c.optim, sizeof c.optim));
    ck_assert_str_eq(back.name, "trip");
    ck_assert_str_eq(back.out_dir, "runs/trip");
    tx_config_write(&back, again, sizeof again);
    ck_assert_str_eq(again, text);

    /* Too small a buffer: truncated, terminated, full length returned. */
    char small[10];
    ck_assert_int_eq(tx_config_write(&c, small, sizeof small), n);
    ck_assert_str_eq(small, "[model]\nk");
}
END_TEST

/* Found by fuzz/fuzz_config: text values that tx_config_write's output
 * would not read back as they are (a ';' after a space starts a comment,
 * inih trims spaces and rejects lines over 197 bytes) are refused. */
START_TEST(test_text_values_read_back) {
    expect_load_error("[data]\ntrain_file=;x\n",
                      "t.ini:2: [data] train_file: expected a text of at most "
                      "184 bytes without control characters, spaces at either "
                      "end or ';' after a space, got ';x'");
    tx_config c, back;
    tx_err err;
    tx_config_defaults(&c);
    ck_assert_int_eq(tx_config_set(&c, "output.name=a ;b", &err), TX_EINPUT);
    ck_assert_int_eq(tx_config_set(&c, "output.dir=a\nb", &err), TX_EINPUT);
    char set[300] = "data.train_file=";
    memset(set + strlen(set), 'p', 185);
    ck_assert_int_eq(tx_config_set(&c, set, &err), TX_EINPUT);
    set[strlen(set) - 1] = 0; /* 184 bytes: the longest that fits the line */
    ck_assert_msg(tx_config_set(&c, set, &err) == TX_OK, "%s", err.msg);
    ck_assert_int_eq(tx_config_set(&c, "output.name=a;b", &err), TX_OK);
    char text[8192], again[8192];
    tx_config_write(&c, text, sizeof text);
    ck_assert_msg(tx_config_load_string(&back, text, "ckpt", &err) == TX_OK, "%s", err.msg);
    tx_config_write(&back, again, sizeof again);
    ck_assert_str_eq(again, text);
    /* The run name a file's stem gives by default obeys the same rule. */
    ck_assert_int_eq(tx_config_load_string(&c, "", "d/a ;b.ini", &err), TX_EINPUT);
    ck_assert_str_eq(err.msg, "d/a ;b.ini: [output] name: the file name 'a ;b' "
                              "does not make a run name; set one");
    ck_assert_int_eq(tx_config_load_string(&c, "[output]\nname = ab\n", "d/a ;b.ini", &err),
                     TX_OK);
}
END_TEST

Suite *suite(void) {
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_unchecked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_load_file);
    tcase_add_test(tc, test_load_errors);
    tcase_add_test(tc, test_overrides);
    tcase_add_test(tc, test_validate);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_text_values_read_back);
    suite_add_tcase(s, tc);
    return s;
}

TX_TEST_MAIN
