#include "testutil.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../io/safetensors.h"

static char *in_dir(char *buf, const char *name) {
    snprintf(buf, 128, "%s/%s", test_dir, name);
    return buf;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* The whole file; *n gets its size. Caller frees. */
static unsigned char *slurp(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    ck_assert_ptr_nonnull(fp);
    fseek(fp, 0, SEEK_END);
    *n = (size_t)ftell(fp);
    rewind(fp);
    unsigned char *b = malloc(*n + 1);
    ck_assert(fread(b, 1, *n, fp) == *n);
    fclose(fp);
    return b;
}

/* A sample with every awkward case: a scalar, an empty tensor, an odd byte
 * count that leaves the next tensor unaligned, data not in header order when
 * read back by name. */
static const float f32[6] = {1.5f, -2.25f, 3e-38f, 0.0f, -0.0f, 1e30f};
static const double f64[4] = {3.141592653589793, -1e-300, 2.5, 7};
static const int64_t i64 = -9007199254740993;
static const uint8_t u8[3] = {1, 255, 7};
static const uint16_t bf16[2] = {0x3f80, 0xc000};
static const tx_st_tensor sample[] = {
    {"w.f32", "F32", 2, {2, 3}, f32, sizeof f32},
    {"u8", "U8", 1, {3}, u8, sizeof u8},
    {"f64", "F64", 1, {4}, f64, sizeof f64},
    {"scalar", "I64", 0, {0}, &i64, sizeof i64},
    {"empty", "F32", 2, {0, 5}, NULL, 0},
    {"bf16", "BF16", 1, {2}, bf16, sizeof bf16},
};
#define NSAMPLE (int)(sizeof sample / sizeof sample[0])
static const char *const meta[] = {"format", "pt", "step", "12"};

START_TEST(test_round_trip) {
    char path[128];
    make_dir();
    tx_err err = {{0}};
    ck_assert_int_eq(tx_st_write(in_dir(path, "a.safetensors"), sample, NSAMPLE,
                                 meta, 2, &err),
                     TX_OK);
    tx_st_file f;
    ck_assert_int_eq(tx_st_read(path, &f, &err), TX_OK);
    ck_assert_int_eq(f.n, NSAMPLE);
    for (int i = 0; i < NSAMPLE; i++) {
        const tx_st_tensor *t = tx_st_get(&f, sample[i].name);
        ck_assert_ptr_nonnull(t);
        ck_assert_str_eq(t->dtype, sample[i].dtype);
        ck_assert_int_eq(t->ndim, sample[i].ndim);
        for (int d = 0; d < t->ndim; d++)
            ck_assert_int_eq(t->shape[d], sample[i].shape[d]);
        ck_assert_uint_eq(t->nbytes, sample[i].nbytes);
        ck_assert(!t->nbytes || !memcmp(t->data, sample[i].data, t->nbytes));
    }
    ck_assert_ptr_null(tx_st_get(&f, "missing"));
    ck_assert_str_eq(tx_st_meta(&f, "format"), "pt");
    ck_assert_str_eq(tx_st_meta(&f, "step"), "12");
    ck_assert_ptr_null(tx_st_meta(&f, "missing"));
    tx_st_free(&f);
    ck_assert(!exists(in_dir(path, "a.safetensors.tmp")));
    remove_dir();
}
END_TEST

/* The writer's bytes against the format, checked here without the reader:
 * header length a multiple of 8, padded with spaces, keys in the order given,
 * offsets contiguous from 0, data in place, nothing after it. */
START_TEST(test_writer_follows_spec) {
    char path[128];
    make_dir();
    tx_err err = {{0}};
    ck_assert_int_eq(tx_st_write(in_dir(path, "b.safetensors"), sample, NSAMPLE,
                                 meta, 2, &err),
                     TX_OK);
    size_t size;
    unsigned char *b = slurp(path, &size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | b[i];
    ck_assert_uint_eq(n % 8, 0);
    char *hdr = strndup((char *)b + 8, n);
    size_t len = strrchr(hdr, '}') - hdr + 1;
    ck_assert_uint_lt(n - len, 8);
    for (size_t i = len; i < n; i++) ck_assert_int_eq(hdr[i], ' ');
    cJSON *root = cJSON_Parse(hdr);
    ck_assert_ptr_nonnull(root);
    const cJSON *e = root->child;
    ck_assert_str_eq(e->string, "__metadata__");
    ck_assert_str_eq(cJSON_GetObjectItem(e, "step")->valuestring, "12");
    uint64_t off = 0;
    for (int i = 0; i < NSAMPLE; i++) {
        e = e->next;
        ck_assert_str_eq(e->string, sample[i].name);
        ck_assert_str_eq(cJSON_GetObjectItem(e, "dtype")->valuestring,
                         sample[i].dtype);
        const cJSON *shape = cJSON_GetObjectItem(e, "shape");
        ck_assert_int_eq(cJSON_GetArraySize(shape), sample[i].ndim);
        for (int d = 0; d < sample[i].ndim; d++)
            ck_assert_int_eq(cJSON_GetArrayItem(shape, d)->valueint,
                             sample[i].shape[d]);
        const cJSON *r = cJSON_GetObjectItem(e, "data_offsets");
        ck_assert_uint_eq(cJSON_GetArrayItem(r, 0)->valuedouble, off);
        off += sample[i].nbytes;
        ck_assert_uint_eq(cJSON_GetArrayItem(r, 1)->valuedouble, off);
        ck_assert(!sample[i].nbytes ||
                  !memcmp(b + 8 + n + off - sample[i].nbytes, sample[i].data,
                          sample[i].nbytes));
    }
    ck_assert_ptr_null(e->next);
    ck_assert_uint_eq(size, 8 + n + off);
    cJSON_Delete(root);
    free(hdr);
    free(b);
    remove_dir();
}
END_TEST

/* Writes 8-byte length hlen (the header's own length if hlen < 0), header,
 * then ndata bytes 0, 1, 2, ... */
static void write_raw(const char *path, const char *header, long hlen,
                      size_t ndata) {
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    uint64_t n = hlen < 0 ? strlen(header) : (uint64_t)hlen;
    for (int i = 0; i < 8; i++) fputc((int)(n >> (8 * i) & 0xff), fp);
    fputs(header, fp);
    for (size_t i = 0; i < ndata; i++) fputc((int)i, fp);
    fclose(fp);
}

/* Built by hand: a = F64 scalar 1.5 (IEEE bits 0x3FF8000000000000), b = I32
 * [1, -2] stored before it, header padded with four spaces to 136 bytes. */
START_TEST(test_read_hand_built) {
    static const char header[] =
        "{\"a\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[8,16]},"
        "\"__metadata__\":{\"k\":\"v\"},"
        "\"b\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}    ";
    static const unsigned char data[16] = {1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff,
                                           0, 0, 0, 0, 0,    0,    0xf8, 0x3f};
    ck_assert_uint_eq(strlen(header), 136);
    char path[128];
    make_dir();
    FILE *fp = fopen(in_dir(path, "hand.safetensors"), "wb");
    const unsigned char len[8] = {136, 0, 0, 0, 0, 0, 0, 0};
    fwrite(len, 1, 8, fp);
    fwrite(header, 1, 136, fp);
    fwrite(data, 1, 16, fp);
    fclose(fp);
    tx_st_file f;
    tx_err err = {{0}};
    ck_assert_int_eq(tx_st_read(path, &f, &err), TX_OK);
    ck_assert_int_eq(f.n, 2);
    const tx_st_tensor *a = tx_st_get(&f, "a"), *b = tx_st_get(&f, "b");
    ck_assert_str_eq(a->dtype, "F64");
    ck_assert_int_eq(a->ndim, 0);
    double x;
    memcpy(&x, a->data, 8);
    ck_assert(x == 1.5);
    ck_assert_int_eq(b->ndim, 1);
    ck_assert_int_eq(b->shape[0], 2);
    int32_t y[2];
    memcpy(y, b->data, 8);
    ck_assert(y[0] == 1 && y[1] == -2);
    ck_assert_str_eq(tx_st_meta(&f, "k"), "v");
    tx_st_free(&f);
    remove_dir();
}
END_TEST

#define F32(shape, b, e)                                                       \
    "{\"dtype\":\"F32\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

/* Each file breaks one rule; the message must name the path, the byte where
 * the problem is, and what was expected. */
static const struct bad_case {
    const char *header;
    long hlen; /* -1: the header's length */
    size_t ndata;
    const char *want; /* in the message after the path */
} bad[] = {
    {"", 0, 0, ": byte 0: file of 7 bytes"}, /* hlen 0 but 7 bytes, below */
    {"{}", 9, 0, ": byte 0: header length 9, expected at most 2"},
    {"{\"a\":", -1, 0, ": byte 12: expected valid JSON"},
    {"[1,2]", -1, 0, ": byte 8: expected the header to be a JSON object"},
    {"{} x", -1, 0, ": byte 11: expected only whitespace"},
    {"{\"a\":3}", -1, 0, ": byte 9: tensor \"a\": expected an object"},
    {"{\"a\":{\"shape\":[],\"data_offsets\":[0,4]}}", -1, 4,
     "tensor \"a\": expected a string \"dtype\""},
    {"{\"a\":{\"dtype\":4,\"shape\":[],\"data_offsets\":[0,4]}}", -1, 4,
     "expected a string \"dtype\""},
    {"{\"a\":{\"dtype\":\"F33\",\"shape\":[],\"data_offsets\":[0,4]}}", -1, 4,
     "unknown dtype \"F33\""},
    /* Found by fuzz/fuzz_checkpoint: quoted file contents cannot break the
     * message's one line (JSON "\n" and ESC become '?'). */
    {"{\"a\":{\"dtype\":\"F\\n3\\u001b\",\"shape\":[],\"data_offsets\":[0,4]}}",
     -1, 4, "unknown dtype \"F?3?\""},
    {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", -1, 4,
     "expected \"shape\""},
    {"{\"a\":" F32("[1,1,1,1,1,1,1,1,1]", 0, 4) "}", -1, 4,
     "an array of at most 8"},
    {"{\"a\":" F32("[1.5]", 0, 4) "}", -1, 4, "non-negative integers in"},
    {"{\"a\":" F32("[-1]", 0, 4) "}", -1, 4, "non-negative integers in"},
    {"{\"a\":" F32("\"1\"", 0, 4) "}", -1, 4, "expected \"shape\""},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", -1, 4,
     "expected \"data_offsets\""},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", -1,
     4, "expected \"data_offsets\""},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,\"4\"]}}", -1,
     4, "expected \"data_offsets\""},
    {"{\"a\":" F32("[1]", 4, 0) "}", -1, 4, "[4, 0] end before begin"},
    {"{\"a\":" F32("[3]", 0, 8) "}", -1, 8,
     "span 8 bytes, expected 12 for its dtype and shape"},
    {"{\"a\":" F32("[4]", 0, 16) "}", -1, 8,
     "data_offsets end 16 past the 8 bytes"},
    {"{\"a\":" F32("[2]", 0, 8) ",\"b\":" F32("[2]", 4, 12) "}", -1, 12,
     "tensor \"b\" starts at data offset 4, expected 8"},
    {"{\"a\":" F32("[1]", 0, 4) ",\"b\":" F32("[1]", 8, 12) "}", -1, 12,
     "tensor \"b\" starts at data offset 8, expected 4"},
    {"{\"a\":" F32("[1]", 4, 8) "}", -1, 8,
     ": byte 62: tensor \"a\" starts at data offset 4, expected 0"},
    {"{\"a\":" F32("[1]", 0, 4) "}", -1, 8,
     ": byte 66: file has 70 bytes, expected 8 + 54 + 4"},
    {"{\"a\":" F32("[1]", 0, 4) ",\"a\":" F32("[1]", 4, 8) "}", -1, 8,
     "tensor \"a\": expected one entry, found two"},
    {"{\"__metadata__\":3}", -1, 0, "\"__metadata__\" to be an object"},
    {"{\"__metadata__\":{\"k\":1}}", -1, 0,
     "__metadata__ \"k\": expected a string value"},
};

START_TEST(test_invalid) {
    char path[128];
    make_dir();
    in_dir(path, "bad.safetensors");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_raw(path, bad[i].header, bad[i].hlen, bad[i].ndata);
        if (i == 0) ck_assert_int_eq(truncate(path, 7), 0);
        tx_st_file f;
        tx_err err = {{0}};
        ck_assert_int_eq(tx_st_read(path, &f, &err), TX_EINPUT);
        ck_assert_msg(!strncmp(err.msg, path, strlen(path)) &&
                          strstr(err.msg, bad[i].want),
                      "case %zu: got \"%s\", expected \"%s\"", i, err.msg,
                      bad[i].want);
        ck_assert_ptr_null(f.tensors); /* nothing left to free */
    }
    tx_st_file f;
    tx_err err = {{0}};
    ck_assert_int_eq(tx_st_read(in_dir(path, "absent"), &f, &err), TX_EINPUT);
    ck_assert_ptr_nonnull(strstr(err.msg, path));
    remove_dir();
}
END_TEST

/* A write that cannot happen leaves neither the file nor its temporary. */
START_TEST(test_failed_write) {
    char path[128], tmp[140];
    make_dir();
    tx_err err = {{0}};
    /* No such directory: the temporary cannot even be created. */
    ck_assert_int_eq(tx_st_write(in_dir(path, "no/such/test_dir/c.safetensors"),
                                 sample, NSAMPLE, NULL, 0, &err),
                     TX_EIO);
    ck_assert(!strncmp(err.msg, path, strlen(path)));
    ck_assert(!exists(path));
    /* PATH is a directory: the temporary is written, the rename fails. */
    ck_assert_int_eq(mkdir(in_dir(path, "d"), 0755), 0);
    ck_assert_int_eq(tx_st_write(path, sample, NSAMPLE, NULL, 0, &err), TX_EIO);
    ck_assert(!strncmp(err.msg, path, strlen(path)));
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ck_assert(!exists(tmp));
    struct stat st;
    ck_assert(stat(path, &st) == 0 && S_ISDIR(st.st_mode));
    remove_dir();
}
END_TEST

Suite *suite(void) {
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("safetensors");
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_writer_follows_spec);
    tcase_add_test(tc, test_read_hand_built);
    tcase_add_test(tc, test_invalid);
    tcase_add_test(tc, test_failed_write);
    suite_add_tcase(s, tc);
    return s;
}

TX_TEST_MAIN
