/* generate_cmd.c: `tapeformer generate CHECKPOINT [--beam N] [--alpha A]
 * [--max-len N] [--input TEXT]`: one decoded line per source line. */
#include <stdlib.h>

#include "cli.h"
#include "commands.h"

static const char usage[] =
    "usage: tapeformer generate CHECKPOINT [options]\n"
    "Decodes each source line of stdin (or --input) with the model in CHECKPOINT\n"
    "(a training checkpoint or an exported .safetensors) and prints one output line each.\n"
    "  --input TEXT    decode TEXT instead of reading stdin\n"
    "  --beam N        beam search with N hypotheses (default 1: greedy)\n"
    "  --alpha A       beam length penalty: a hypothesis scores sum(log p) / length^A,\n"
    "                  length counting EOS (default 1; 0 prefers short outputs)\n"
    "  --max-len N     stop after N tokens (default: what the model's positions allow,\n"
    "                  else the config's model.max_len)\n"
    "Decoding stops at EOS. Exit status 2 on a bad file, option or input line.\n";

static int emit(const tx_trained *t, const int *ids, int n) {
    size_t need = tx_vocab_decode(&t->vocab, TX_TGT, ids, n, NULL, 0) + 1;
    char *text = malloc(need);
    TX_ASSERT(text, "generate: out of memory");
    tx_vocab_decode(&t->vocab, TX_TGT, ids, n, text, need);
    puts(text);
    free(text);
    return fflush(stdout) ? 1 : 0;
}

int tx_cmd_generate(int argc, char **argv) {
    const char *path = NULL, *input = NULL;
    int beam = 1, max_len = 0;
    double alpha = 1;
    const tx_cli_flag flags[] = {{"--input", TX_CLI_STR, &input, 0, 0},
                                 {"--beam", TX_CLI_INT, &beam, 1, 10000},
                                 {"--alpha", TX_CLI_REAL, &alpha, 0, 10},
                                 {"--max-len", TX_CLI_INT, &max_len, 1, 1 << 20}};
    const char **pos[] = {&path};
    int rc = tx_cli_parse("generate", usage, argc, argv, flags, 4, pos, 1);
    if (rc) return rc < 0 ? 0 : rc;
    tx_trained t;
    if (tx_cli_load("generate", &t, path)) return 2;
    tx_tape tp;
    tx_tape_init(&tp);
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    while (!rc) {
        const char *src = input;
        if (!input && tx_cli_line(stdin, &line, &cap) < 0) break;
        if (!input) src = line;
        lineno++;
        int *out, n;
        tx_err err;
        if (tx_trained_generate(&t, &tp, src, beam, alpha, max_len, &out, &n, &err)) {
            if (input) fprintf(stderr, "generate: --input: %s\n", err.msg);
            else fprintf(stderr, "generate: stdin:%ld: %s\n", lineno, err.msg);
            rc = 2;
            break;
        }
        rc = emit(&t, out, n);
        free(out);
        if (input) break;
    }
    free(line);
    tx_tape_free(&tp);
    tx_trained_free(&t);
    return rc;
}
