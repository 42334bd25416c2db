/* generate.c: `tapeformer generate CHECKPOINT [--beam N] [--alpha A]
 * [--max-len N] [--input TEXT] [--strict]`: one decoded line per source line. */
#include <stdlib.h>
#include <string.h>

#include "../decode/decode.h"
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
    "  --logprobs      after each output a tab and each token's log-probability\n"
    "  --no-cache      recompute the decoder over the whole prefix at every step\n"
    "                  (slower; the same output: for testing the key/value cache)\n"
    "Decoding stops at EOS. Lines are decoded in batches of 64. Exit status 2 on a\n"
    "bad file, option or input line.\n";

/* Sources decoded together: batching is what makes the cache pay off. */
#define BATCH 64

static int emit(const tx_trained *t, const int *ids, int n, const double *logp) {
    size_t need = tx_vocab_decode(&t->vocab, TX_TGT, ids, n, NULL, 0) + 1;
    char *text = tx_malloc(need);
    tx_vocab_decode(&t->vocab, TX_TGT, ids, n, text, need);
    fputs(text, stdout);
    for (int i = 0; logp && i < n; i++) printf(i ? " %.6f" : "\t%.6f", logp[i]);
    putchar('\n');
    free(text);
    return fflush(stdout) ? 1 : 0;
}

typedef struct lines {
    char *text[BATCH];
    char where[BATCH][64];
    int n;
} lines;

/* Decodes the n sources of l together and prints one line each; stops at
 * the first source that is bad input (reported) after printing the ones
 * before it. Returns the exit status so far. */
static int decode(tx_tool *tool, lines *l, const tx_search *want, int logprobs) {
    const tx_trained *t = &tool->t;
    tx_example ex[BATCH];
    int *ids[BATCH] = {0}, n = 0, rc = 0, max_len = want->max_len, max_src = 1;
    tx_err err;
    for (; n < l->n; n++) {
        int cap = (int)strlen(l->text[n]) + 1;
        ids[n] = tx_malloc((size_t)cap * sizeof(int));
        if (tx_tool_example(tool, l->where[n], l->text[n], NULL, &ex[n], ids[n], cap, &err)) {
            fprintf(stderr, "generate: %s: %s\n", l->where[n], err.msg);
            rc = 2;
            break;
        }
        int room = tx_trained_room(t, ex[n].src_len);
        if (!want->max_len && room > max_len) max_len = room; /* rows stop at their own end */
        if (ex[n].src_len > max_src) max_src = ex[n].src_len;
    }
    if (n) {
        tx_batch b;
        tx_batch_alloc(&b, n, max_src, 0);
        tx_batch_fill(&b, ex, n, t->cfg.model.kind == TX_DECODER_ONLY);
        int *out = tx_malloc((size_t)n * max_len * sizeof *out), len[BATCH];
        double *lp = tx_malloc((size_t)n * max_len * sizeof *lp);
        tx_search s = *want;
        s.max_len = max_len;
        tx_decode(&tool->tp, &t->model, &b, &s, &(tx_decoded){.tok = out, .len = len, .logp = lp});
        tx_tape_reset(&tool->tp);
        for (int i = 0; i < n && !rc; i++)
            rc = emit(t, out + (size_t)i * max_len, len[i], logprobs ? lp + (size_t)i * max_len : NULL);
        free(out);
        free(lp);
        tx_batch_free(&b);
    }
    for (int i = 0; i <= n && i < l->n; i++) free(ids[i]);
    return rc;
}

int tx_cmd_generate(int argc, char **argv) {
    const char *path = NULL, *input = NULL;
    int beam = 1, max_len = 0, strict = 0, no_cache = 0, logprobs = 0;
    double alpha = 1;
    const tx_arg args[] = {{"input", TX_ARG_STR, &input, 0, 0},
                           {"beam", TX_ARG_INT, &beam, 1, 10000},
                           {"alpha", TX_ARG_REAL, &alpha, 0, 10},
                           {"max-len", TX_ARG_INT, &max_len, 1, 1 << 20},
                           {"strict", TX_ARG_FLAG, &strict, 0, 0},
                           {"logprobs", TX_ARG_FLAG, &logprobs, 0, 0},
                           {"no-cache", TX_ARG_FLAG, &no_cache, 0, 0}};
    const char **pos[] = {&path};
    int rc = tx_cli_parse(usage, argc, argv, args, 7, pos, 1);
    if (rc) return rc < 0 ? 0 : rc;
    tx_tool tool;
    if (tx_tool_open(&tool, "generate", path)) return 2;
    tool.strict = strict;
    if ((rc = tx_tool_pairs(&tool, path))) {
        tx_tool_close(&tool);
        return rc;
    }
    tx_search s = {.max_len = max_len, .beam = beam, .alpha = alpha, .no_cache = no_cache};
    lines l = {.n = 0};
    size_t cap[BATCH] = {0};
    long lineno = 0;
    if (input) {
        l.text[0] = tx_strdup(input);
        snprintf(l.where[0], sizeof l.where[0], "--input");
        l.n = 1;
        rc = decode(&tool, &l, &s, logprobs);
    }
    while (!input && !rc) {
        for (l.n = 0; l.n < BATCH && tx_cli_line(stdin, &l.text[l.n], &cap[l.n]) >= 0; l.n++)
            snprintf(l.where[l.n], sizeof l.where[l.n], "stdin:%ld", ++lineno);
        if (!l.n) break;
        rc = decode(&tool, &l, &s, logprobs);
        if (l.n < BATCH) break;
    }
    for (int i = 0; i < BATCH; i++) free(l.text[i]);
    tx_tool_close(&tool);
    return rc;
}
