/* score_cmd.c: `tapeformer score CHECKPOINT`: the model's negative
 * log-likelihood of each "source<TAB>target" line of stdin. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "decode.h"

static const char usage[] =
    "usage: tapeformer score CHECKPOINT\n"
    "Reads 'source<TAB>target' lines from stdin and prints for each the negative\n"
    "log-likelihood (natural log) of the target tokens and EOS under the model, a tab,\n"
    "then the per-token values separated by spaces (EOS last).\n"
    "Exit status 2 on a bad file, option or input line.\n";

/* Prints one line for src/tgt; returns 0, or 2 with err filled. */
static int score_line(const tx_trained *t, tx_tape *tp, char *line, tx_err *err) {
    char *tab = strchr(line, '\t');
    if (!tab || strchr(tab + 1, '\t'))
        return tx_error(err, TX_EINPUT, "expected 'source<TAB>target', found %s",
                        tab ? "more than one tab" : "no tab");
    *tab = 0;
    int cap = (int)strlen(line) + (int)strlen(tab + 1) + 2;
    int *ids = malloc((size_t)cap * sizeof *ids);
    TX_ASSERT(ids, "score: out of memory");
    tx_example ex;
    int rc = tx_trained_example(t, line, tab + 1, &ex, ids, cap, err);
    if (!rc) {
        tx_batch b;
        tx_batch_alloc(&b, 1, ex.src_len, ex.tgt_len);
        tx_batch_fill(&b, &ex, 1, t->cfg.model.kind == TX_DECODER_ONLY);
        double *logp = malloc((size_t)b.Tt * sizeof *logp), sum = 0;
        TX_ASSERT(logp, "score: out of memory");
        tx_decode_score(tp, &t->model, &b, logp);
        tx_tape_reset(tp);
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
    const char **pos[] = {&path};
    int rc = tx_cli_parse("score", usage, argc, argv, NULL, 0, pos, 1);
    if (rc) return rc < 0 ? 0 : rc;
    tx_trained t;
    if (tx_cli_load("score", &t, path)) return 2;
    tx_tape tp;
    tx_tape_init(&tp);
    char *line = NULL;
    size_t cap = 0;
    tx_err err;
    for (long lineno = 1; !rc && tx_cli_line(stdin, &line, &cap) >= 0; lineno++)
        if ((rc = score_line(&t, &tp, line, &err)))
            fprintf(stderr, "score: stdin:%ld: %s\n", lineno, err.msg);
    if (fflush(stdout)) rc = 1;
    free(line);
    tx_tape_free(&tp);
    tx_trained_free(&t);
    return rc;
}
