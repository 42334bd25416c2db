/* score.c: `tapeformer score CHECKPOINT [--strict]`: the model's negative
 * log-likelihood of each "source<TAB>target" line of stdin. */
#include <stdlib.h>
#include <string.h>

#include "../decode/decode.h"
#include "cli.h"
#include "commands.h"

static const char usage[] =
    "usage: tapeformer score CHECKPOINT [--strict]\n"
    "Reads 'source<TAB>target' lines from stdin and prints for each the negative\n"
    "log-likelihood (natural log) of the target tokens and EOS under the model, a tab,\n"
    "then the per-token values separated by spaces (EOS last).\n"
    "  --strict   a token outside the model's vocabulary is an error (default: a\n"
    "             warning on stderr, and the token is read as <unk>)\n"
    "Exit status 2 on a bad file, option or input line.\n";

/* Prints one line for src/tgt; returns 0, or 2 with err filled. */
static int score_line(tx_tool *tool, const char *where, char *line, tx_err *err) {
    char *tab = strchr(line, '\t');
    if (!tab || strchr(tab + 1, '\t'))
        return tx_error(err, TX_EINPUT, "expected 'source<TAB>target', found %s",
                        tab ? "more than one tab" : "no tab");
    *tab = 0;
    int cap = (int)strlen(line) + (int)strlen(tab + 1) + 2;
    int *ids = tx_malloc((size_t)cap * sizeof *ids);
    tx_example ex;
    int rc = tx_tool_example(tool, where, line, tab + 1, &ex, ids, cap, err);
    if (!rc) {
        tx_batch b;
        tx_batch_alloc(&b, 1, ex.src_len, ex.tgt_len);
        tx_batch_fill(&b, &ex, 1, tool->t.cfg.model.kind == TX_DECODER_ONLY);
        double *logp = tx_malloc((size_t)b.Tt * sizeof *logp), sum = 0;
        tx_decode_score(&tool->tp, &tool->t.model, &b, logp);
        tx_tape_reset(&tool->tp);
        for (int j = 0; j < b.Tt; j++) sum -= b.tgt_out[j] != TX_PAD ? logp[j] : 0;
        printf("%.8g\t", sum);
        for (int j = 0, k = 0; j < b.Tt; j++)
            if (b.tgt_out[j] != TX_PAD) printf(k++ ? " %.8g" : "%.8g", -logp[j]);
        putchar('\n');
        free(logp);
        tx_batch_free(&b);
    }
    free(ids);
    return rc;
}

int tx_cmd_score(int argc, char **argv) {
    const char *path = NULL;
    int strict = 0;
    const tx_arg args[] = {{"strict", TX_ARG_FLAG, &strict, 0, 0}};
    const char **pos[] = {&path};
    int rc = tx_cli_parse(usage, argc, argv, args, 1, pos, 1);
    if (rc) return rc < 0 ? 0 : rc;
    tx_tool tool;
    if (tx_tool_open(&tool, "score", path)) return 2;
    tool.strict = strict;
    if ((rc = tx_tool_pairs(&tool, path))) {
        tx_tool_close(&tool);
        return rc;
    }
    char *line = NULL, where[64];
    size_t cap = 0;
    tx_err err;
    for (long lineno = 1; !rc && tx_cli_line(stdin, &line, &cap) >= 0; lineno++) {
        snprintf(where, sizeof where, "stdin:%ld", lineno);
        if ((rc = score_line(&tool, where, line, &err)))
            fprintf(stderr, "score: %s: %s\n", where, err.msg);
    }
    if (fflush(stdout)) rc = 1;
    free(line);
    tx_tool_close(&tool);
    return rc;
}
