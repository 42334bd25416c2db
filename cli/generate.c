/* generate.c: `tapeformer generate CHECKPOINT [--beam N] [--alpha A]
 * [--max-len N] [--input TEXT] [--strict]`: one decoded line per source line. */
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
    "  --strict        a token outside the model's vocabulary is an error (default: a\n"
    "                  warning on stderr, and the token is read as <unk>)\n"
    "Decoding stops at EOS. Exit status 2 on a bad file, option or input line.\n";

static int emit(const tx_trained *t, const int *ids, int n) {
    size_t need = tx_vocab_decode(&t->vocab, TX_TGT, ids, n, NULL, 0) + 1;
    char *text = tx_malloc(need);
    tx_vocab_decode(&t->vocab, TX_TGT, ids, n, text, need);
    puts(text);
    free(text);
    return fflush(stdout) ? 1 : 0;
}

int tx_cmd_generate(int argc, char **argv) {
    const char *path = NULL, *input = NULL;
    int beam = 1, max_len = 0, strict = 0;
    double alpha = 1;
    const tx_arg args[] = {{"input", TX_ARG_STR, &input, 0, 0},
                           {"beam", TX_ARG_INT, &beam, 1, 10000},
                           {"alpha", TX_ARG_REAL, &alpha, 0, 10},
                           {"max-len", TX_ARG_INT, &max_len, 1, 1 << 20},
                           {"strict", TX_ARG_FLAG, &strict, 0, 0}};
    const char **pos[] = {&path};
    int rc = tx_cli_parse(usage, argc, argv, args, 5, pos, 1);
    if (rc) return rc < 0 ? 0 : rc;
    tx_tool tool;
    if (tx_tool_open(&tool, "generate", path)) return 2;
    tool.strict = strict;
    if ((rc = tx_tool_pairs(&tool, path))) {
        tx_tool_close(&tool);
        return rc;
    }
    char *line = NULL, where[64] = "--input";
    size_t cap = 0;
    for (long lineno = 1; !rc; lineno++) {
        const char *src = input;
        if (!input) {
            if (tx_cli_line(stdin, &line, &cap) < 0) break;
            src = line;
            snprintf(where, sizeof where, "stdin:%ld", lineno);
        }
        int *out, n;
        tx_err err;
        if (tx_tool_generate(&tool, where, src, beam, alpha, max_len, &out, &n, &err)) {
            fprintf(stderr, "generate: %s: %s\n", where, err.msg);
            rc = 2;
            break;
        }
        rc = emit(&tool.t, out, n);
        free(out);
        if (input) break;
    }
    free(line);
    tx_tool_close(&tool);
    return rc;
}
