/* fuzz_checkpoint.c: libFuzzer harness of the safetensors reader and of
 * checkpoint restore into a tiny model, with the config and vocabulary texts
 * a checkpoint carries. The input is a safetensors file. Properties: no
 * crash; a rejected file gets a one-line message naming it; an accepted one
 * has every tensor's bytes inside the file.
 * A vocabulary that parses (a SentencePiece one: its model's bytes, in
 * base64) also encodes and decodes a text.
 * `TX_FUZZ_WRITE_SEED=PATH fuzz_checkpoint` writes a valid checkpoint of the
 * tiny model to PATH (the seeds in fuzz/corpus/checkpoint) and exits; with
 * TX_FUZZ_SEED_SPM=1 its vocabulary is a SentencePiece model's. */
#include "fuzz.h" /* first: it defines _GNU_SOURCE */

#include <string.h>

#include "../io/checkpoint.h"
#include "../io/config.h"

static tx_model model;
static tx_params params;
static tx_optim opt;

/* A checked failure: the message is one line that starts with the path. */
static void check_message(const char *path, const tx_err *err) {
    if (strncmp(err->msg, path, strlen(path)) || strchr(err->msg, '\n'))
        fprintf(stderr, "message: %s\n", err->msg);
    FUZZ_CHECK(!strncmp(err->msg, path, strlen(path)));
    FUZZ_CHECK(!strchr(err->msg, '\n'));
}

static void write_seed(const char *path) {
    tx_config c;
    tx_config_defaults(&c);
    char cfg[1 << 14];
    tx_vocab v = {.mode = {TX_TOK_WORD, TX_TOK_WORD}, .size = 8};
    char *tok[] = {"<pad>", "<bos>", "<eos>", "<unk>", "1", "2", "3", "4"};
    v.tok = tok;
    tx_err err;
    if (getenv("TX_FUZZ_SEED_SPM")) {
        static const char *const lines[] = {"one two three\n", "一二三 four\n", "two one\n"};
        c.data.tokenize = TX_TOK_SPM, c.data.vocab_size = 20;
        if (tx_vocab_sentencepiece(&v, &c.data, lines, 3, &err))
            fprintf(stderr, "%s\n", err.msg), exit(1);
    }
    tx_config_write(&c, cfg, sizeof cfg); /* after tokenize is set: the seed's own config */
    char *vocab = tx_vocab_to_string(&v);
    tx_run_state st = {.step = 3, .data_pos = {1, 2, 3, 4, 0, 5}};
    if (tx_checkpoint_save(path, &params, &opt, &st, &(tx_model_info){cfg, vocab, 5, 6}, &err))
        fprintf(stderr, "%s\n", err.msg), exit(1);
    free(vocab);
    exit(0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    tx_model_config mc = {.kind = TX_ENCODER_DECODER, .d_model = 4, .heads = 2, .bias = 1,
                          .encoder_layers = 1, .decoder_layers = 1, .d_ff = 4,
                          .positions = TX_POS_LEARNED, .tie_embeddings = 1,
                          .src_vocab = 8, .tgt_vocab = 8, .max_len = 6};
    tx_err err;
    if (tx_model_build(&model, &mc, &params, &err))
        fprintf(stderr, "%s\n", err.msg), abort();
    tx_params_alloc(&params);
    tx_rng rng;
    tx_rng_seed(&rng, 1);
    tx_params_init(&params, &rng);
    tx_optim_config oc = {.name = TX_OPT_ADAM, .lr = 1e-3, .beta1 = 0.9,
                          .beta2 = 0.98, .eps = 1e-9};
    tx_optim_init(&opt, &oc, &params);
    const char *seed = getenv("TX_FUZZ_WRITE_SEED");
    if (seed) write_seed(seed);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size);
    tx_st_file f;
    tx_err err;
    if (tx_st_read(path, &f, &err)) {
        check_message(path, &err);
        return 0;
    }
    unsigned sum = 0;
    for (int i = 0; i < f.n; i++) {
        const tx_st_tensor *t = &f.tensors[i];
        FUZZ_CHECK(tx_st_get(&f, t->name) && t->nbytes <= f.size);
        FUZZ_CHECK((const uint8_t *)t->data >= f.bytes &&
                   (const uint8_t *)t->data + t->nbytes <= f.bytes + f.size);
        for (size_t k = 0; k < t->nbytes; k++) sum += ((const uint8_t *)t->data)[k];
    }
    (void)sum;
    tx_run_state st;
    if (tx_checkpoint_restore(&f, path, &params, &opt, &st, &err))
        check_message(path, &err);
    const char *text = tx_st_meta(&f, "config"), *vocab = tx_st_meta(&f, "vocab");
    tx_config c;
    if (text && tx_config_load_string(&c, text, path, &err)) check_message(path, &err);
    tx_vocab v;
    if (vocab && tx_vocab_from_string(&v, vocab, &err) == TX_OK) {
        int ids[64], n = tx_vocab_encode(&v, TX_SRC, "one two 一二 x\n", ids, 64);
        char out[256];
        for (int i = 0; i < n && i < 64; i++) FUZZ_CHECK(ids[i] >= 0 && ids[i] < v.size);
        tx_vocab_decode(&v, TX_TGT, ids, n < 64 ? n : 64, out, sizeof out);
        tx_vocab_free(&v);
    }
    tx_st_free(&f);
    return 0;
}
