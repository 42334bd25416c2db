/* fuzz_tsv.c: libFuzzer harness of the TSV corpus reader and the data stream
 * built on it. The input is a TSV file, read with word tokens when its first
 * byte is even and character tokens otherwise. Properties: no crash; a
 * rejected file gets a one-line message naming it; an accepted one yields
 * batches, and its vocabulary survives the checkpoint text round trip. */
#include "fuzz.h" /* first: it defines _GNU_SOURCE */

#include <string.h>

#include "../data/data.h"

static void check_vocab_round_trip(const tx_vocab *v) {
    char *s = tx_vocab_to_string(v);
    tx_vocab w;
    tx_err err;
    FUZZ_CHECK(tx_vocab_from_string(&w, s, &err) == TX_OK);
    FUZZ_CHECK(w.size == v->size && w.mode[0] == v->mode[0] &&
               w.mode[1] == v->mode[1]);
    for (int i = 0; i < v->size; i++) FUZZ_CHECK(!strcmp(w.tok[i], v->tok[i]));
    tx_vocab_free(&w);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tx_data_config cfg = {.task = TX_TASK_TSV,
                          .tokenize = size && data[0] % 2 ? TX_TOK_CHAR : TX_TOK_WORD,
                          .seed = 1, .valid_examples = 8};
    snprintf(cfg.train_file, sizeof cfg.train_file, "%s", fuzz_file(data, size));
    tx_data d;
    tx_err err;
    if (tx_data_open(&d, &cfg, &err) != TX_OK) {
        FUZZ_CHECK(!strncmp(err.msg, cfg.train_file, strlen(cfg.train_file)));
        FUZZ_CHECK(!strchr(err.msg, '\n'));
        return 0;
    }
    FUZZ_CHECK(d.vocab.size > TX_NSPECIAL && d.n_valid >= 1);
    check_vocab_round_trip(&d.vocab);
    tx_batch b;
    tx_batch_alloc(&b, 4, d.max_src, d.max_tgt);
    for (int i = 0; i < 3; i++) tx_data_next_batch(&d, &b, 4, i % 2);
    tx_batch_fill(&b, d.valid, d.n_valid < 4 ? d.n_valid : 4, 0);
    tx_batch_free(&b);
    tx_data_free(&d);
    return 0;
}
