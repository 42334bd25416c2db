/* eval.c: `tapeformer eval CHECKPOINT [--data FILE.tsv] [--strict]`:
 * validation loss and exact-match accuracy, on the task's held-out examples
 * or a TSV file. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../decode/decode.h"
#include "cli.h"
#include "commands.h"

static const char usage[] =
    "usage: tapeformer eval CHECKPOINT [--data FILE]\n"
    "Prints the model's validation loss (mean cross-entropy per target token, EOS\n"
    "included, natural log) and greedy exact-match accuracy, on the held-out examples\n"
    "of the task in the checkpoint's config (as training measures them) or, with\n"
    "--data, on every 'source<TAB>target' line of FILE. A model of the text task gets\n"
    "its loss per token and bits per character instead, on its validation windows or\n"
    "on every window of the text FILE.\n"
    "  --strict   with --data, a token outside the model's vocabulary is an error\n"
    "             (default: a warning on stderr, and the token is read as <unk>)\n"
    "Exit status 2 on a bad file or option.\n";

typedef struct example_list {
    tx_example *ex; /* [n], each owning its ids */
    int n, cap;
} example_list;

/* where NULL: a held-out example of the model's own task, no checks needed */
static int add(tx_tool *tool, const char *where, example_list *l, const char *src,
               const char *tgt, tx_err *err) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->ex = tx_realloc(l->ex, (size_t)l->cap * sizeof *l->ex);
    }
    int cap = (int)(strlen(src) + strlen(tgt)) + 2;
    int *ids = tx_malloc((size_t)cap * sizeof *ids);
    tx_example *ex = &l->ex[l->n];
    int rc = where ? tx_tool_example(tool, where, src, tgt, ex, ids, cap, err)
                   : tx_trained_example(&tool->t, src, tgt, ex, ids, cap, err);
    if (rc) {
        free(ids);
        return rc;
    }
    ex->src = ex->tgt = ""; /* only the ids are kept */
    l->n++;
    return TX_OK;
}

static void list_free(example_list *l) {
    for (int i = 0; i < l->n; i++) free((int *)l->ex[i].src_ids);
    free(l->ex);
}

/* The task's held-out examples, re-tokenized with the model's vocabulary. */
static int from_task(tx_tool *tool, example_list *l, tx_err *err) {
    tx_data d;
    int rc = tx_data_open(&d, &tool->t.cfg.data, err);
    if (rc) return rc;
    for (int i = 0; !rc && i < d.n_valid; i++)
        rc = add(tool, NULL, l, d.valid[i].src, d.valid[i].tgt, err);
    tx_data_free(&d);
    return rc;
}

static int from_tsv(tx_tool *tool, const char *path, example_list *l, tx_err *err) {
    FILE *f = fopen(path, "r");
    if (!f) return tx_error(err, TX_EIO, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL, *tab, where[1100];
    size_t cap = 0;
    int rc = TX_OK;
    tx_err inner;
    for (long lineno = 1; !rc && tx_cli_line(f, &line, &cap) >= 0; lineno++) {
        if (!line[0]) continue;
        tab = strchr(line, '\t');
        if (!tab || strchr(tab + 1, '\t')) {
            rc = tx_error(err, TX_EINPUT, "%s:%ld: expected 'source<TAB>target'", path, lineno);
            break;
        }
        *tab = 0;
        snprintf(where, sizeof where, "%s:%ld", path, lineno);
        if ((rc = add(tool, where, l, line, tab + 1, &inner)))
            tx_error(err, rc, "%s: %s", where, inner.msg);
    }
    free(line);
    fclose(f);
    if (!rc && !l->n) rc = tx_error(err, TX_EINPUT, "%s: no examples", path);
    return rc;
}

/* A text model: validation windows of its own task's text, or every window
 * of a text file's. */
static int eval_text(tx_tool *tool, const char *path) {
    const tx_trained *t = &tool->t;
    int context = t->cfg.data.context, windows, rc = 0;
    tx_data d = {0};
    char *text = NULL;
    int *ids = NULL;
    const int *tokens;
    tx_err err;
    if (!path) {
        if ((rc = tx_data_open(&d, &t->cfg.data, &err))) {
            fprintf(stderr, "eval: %s\n", err.msg);
            return 2;
        }
        tokens = d.text_valid;
        windows = d.valid_windows;
    } else {
        size_t size;
        if (tx_read_file(path, &text, &size, &err)) {
            fprintf(stderr, "eval: %s\n", err.msg);
            return 2;
        }
        size_t bad = tx_utf8_check(text, size);
        ids = tx_malloc((size + 1) * sizeof *ids);
        int n = bad < size ? 0 : tx_tool_encode(tool, path, TX_SRC, text, ids, (int)size + 1, &err);
        if (bad < size || n < 0 || n < context + 1) {
            if (bad < size) fprintf(stderr, "eval: %s: byte %zu: invalid UTF-8\n", path, bad);
            else if (n < 0) fprintf(stderr, "eval: %s: %s\n", path, err.msg);
            else fprintf(stderr, "eval: %s: %d tokens, fewer than one window of context + 1 = "
                                 "%d\n", path, n, context + 1);
            free(text);
            free(ids);
            return 2;
        }
        tokens = ids;
        windows = (n - 1) / context;
    }
    tx_eval_result r = tx_decode_evaluate_text(&tool->tp, &t->model, &t->vocab, tokens, windows,
                                               context);
    printf("loss %.6f  bits_per_char %.6f  windows %d  tokens %ld\n", r.loss, r.bits_per_char,
           r.n, r.tokens);
    tx_data_free(&d);
    free(text);
    free(ids);
    return rc;
}

int tx_cmd_eval(int argc, char **argv) {
    const char *path = NULL, *data = NULL;
    int strict = 0;
    const tx_arg args[] = {{"data", TX_ARG_STR, &data, 0, 0},
                           {"strict", TX_ARG_FLAG, &strict, 0, 0}};
    const char **pos[] = {&path};
    int rc = tx_cli_parse(usage, argc, argv, args, 2, pos, 1);
    if (rc) return rc < 0 ? 0 : rc;
    tx_tool tool;
    if (tx_tool_open(&tool, "eval", path)) return 2;
    tool.strict = strict;
    if (tool.t.cfg.data.task == TX_TASK_TEXT) {
        rc = eval_text(&tool, data);
        tx_tool_close(&tool);
        return rc;
    }
    example_list l = {0};
    tx_err err;
    rc = data ? from_tsv(&tool, data, &l, &err) : from_task(&tool, &l, &err);
    if (rc) {
        fprintf(stderr, "eval: %s\n", err.msg);
        rc = 2;
    } else {
        tx_eval_result r = tx_decode_evaluate(&tool.tp, &tool.t.model, l.ex, l.n);
        printf("loss %.6f  exact_match %.6f  examples %d  tokens %ld\n", r.loss, r.accuracy,
               r.n, r.tokens);
    }
    list_free(&l);
    tx_tool_close(&tool);
    return rc;
}
