/* cli.c: option parsing, input lines, and the tools' model. */
#include "cli.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../decode/decode.h"

/* ---- options ---------------------------------------------------------------- */

static int set_value(const char *cmd, const tx_arg *a, const char *s) {
    switch (a->kind) {
    case TX_ARG_FLAG: *(int *)a->out = 1; return 0;
    case TX_ARG_STR: *(const char **)a->out = s; return 0;
    case TX_ARG_LIST: {
        tx_arg_list *l = a->out;
        if (l->n == TX_ARG_LIST_MAX) {
            fprintf(stderr, "%s: --%s: at most %d times\n", cmd, a->name, TX_ARG_LIST_MAX);
            return 2;
        }
        l->v[l->n++] = s;
        return 0;
    }
    }
    char *end;
    double v = strtod(s, &end);
    int integer = a->kind != TX_ARG_REAL;
    if (end == s || *end || !isfinite(v) || v < a->lo || v > a->hi || (integer && v != floor(v))) {
        fprintf(stderr, "%s: --%s: expected %s in [%g, %g], got '%s'\n", cmd, a->name,
                integer ? "an integer" : "a number", a->lo, a->hi, s);
        return 2;
    }
    if (a->kind == TX_ARG_INT) *(int *)a->out = (int)v;
    else if (a->kind == TX_ARG_LONG) *(long *)a->out = (long)v;
    else *(double *)a->out = v;
    return 0;
}

int tx_cli_parse(const char *usage, int argc, char **argv, const tx_arg *args, int nargs,
                 const char **pos[], int npos) {
    const char *cmd = argv[0];
    struct option *lo = tx_calloc((size_t)nargs + 2, sizeof *lo);
    for (int i = 0; i < nargs; i++)
        lo[i] = (struct option){args[i].name, args[i].kind == TX_ARG_FLAG ? no_argument
                                                                           : required_argument,
                                NULL, 1000 + i};
    lo[nargs] = (struct option){"help", no_argument, NULL, 'h'};
    int rc = 0, c;
    opterr = 0; /* our messages, one line each */
    optind = 0; /* GNU: start afresh, so the parser can run again */
    while (!rc && (c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage, stdout);
            rc = -1;
        } else if (c == ':') {
            fprintf(stderr, "%s: %s needs a value (see --help)\n", cmd, argv[optind - 1]);
            rc = 2;
        } else if (c == '?') {
            fprintf(stderr, "%s: unknown option '%s' (see --help)\n", cmd, argv[optind - 1]);
            rc = 2;
        } else {
            rc = set_value(cmd, &args[c - 1000], optarg);
        }
    }
    free(lo);
    if (rc) return rc;
    int got = 0;
    for (int i = optind; i < argc; i++) {
        if (got == npos) {
            fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", cmd, argv[i]);
            return 2;
        }
        *pos[got++] = argv[i];
    }
    if (got < npos) {
        fprintf(stderr, "%s: missing arguments (see --help)\n", cmd);
        return 2;
    }
    return 0;
}

long tx_cli_line(FILE *f, char **buf, size_t *cap) {
    ssize_t n = getline(buf, cap, f);
    if (n < 0) return -1;
    if (n > 0 && (*buf)[n - 1] == '\n') (*buf)[--n] = 0;
    if (n > 0 && (*buf)[n - 1] == '\r') (*buf)[--n] = 0;
    return (long)n;
}

/* ---- the tools' model --------------------------------------------------------- */

int tx_tool_open(tx_tool *tool, const char *cmd, const char *path) {
    tx_err err;
    memset(tool, 0, sizeof *tool);
    tool->cmd = cmd;
    if (tx_trained_load(&tool->t, path, &err)) {
        fprintf(stderr, "%s: %s\n", cmd, err.msg);
        return 2;
    }
    tx_tape_init(&tool->tp);
    return 0;
}

int tx_tool_pairs(const tx_tool *tool, const char *path) {
    if (tool->t.cfg.data.task != TX_TASK_TEXT) return 0;
    fprintf(stderr, "%s: %s: a model of the text task continues text: use 'tapeformer "
                    "sample' (or 'eval')\n", tool->cmd, path);
    return 2;
}

void tx_tool_close(tx_tool *tool) {
    tx_tape_free(&tool->tp);
    tx_trained_free(&tool->t);
}

int tx_tool_encode(tx_tool *tool, const char *where, int side, const char *text, int *ids,
                   int cap, tx_err *err) {
    const char *tok;
    int len, n = tx_vocab_unknown(&tool->t.vocab, side, text, &tok, &len);
    const char *what = side == TX_SRC ? "source" : "target";
    if (n && tool->strict)
        return -tx_error(err, TX_EINPUT, "%s token '%.*s' is not in the model's vocabulary%s",
                         what, len, tok, n > 1 ? " (and more)" : "");
    if (n) {
        tx_err msg;
        tx_error(&msg, 0, "%s: %s: %d %s token%s not in the model's vocabulary, read as "
                          "<unk>, first '%.*s' (--strict: an error)",
                 tool->cmd, where, n, what, n > 1 ? "s" : "", len, tok);
        fprintf(stderr, "%s\n", msg.msg);
    }
    return tx_vocab_encode(&tool->t.vocab, side, text, ids, cap);
}

int tx_tool_example(tx_tool *tool, const char *where, const char *src, const char *tgt,
                    tx_example *ex, int *ids, int cap, tx_err *err) {
    int rc = tx_trained_example(&tool->t, src, tgt, ex, ids, cap, err);
    if (!rc && tx_tool_encode(tool, where, TX_SRC, src, ids, cap, err) < 0) rc = TX_EINPUT;
    if (!rc && tgt && tx_tool_encode(tool, where, TX_TGT, tgt, ids + ex->src_len,
                                     cap - ex->src_len, err) < 0)
        rc = TX_EINPUT;
    int longest = tool->t.info.max_src;
    if (!rc && longest && ex->src_len > longest)
        fprintf(stderr, "%s: %s: the source has %d tokens, more than any training source "
                        "(%d): expect a poor output\n", tool->cmd, where, ex->src_len, longest);
    return rc;
}

int tx_tool_generate(tx_tool *tool, const char *where, const char *src, int beam,
                     double alpha, int max_len, int **out, int *n, tx_err *err) {
    const tx_trained *t = &tool->t;
    *out = NULL;
    *n = 0;
    int cap = (int)strlen(src) + 1; /* a token has at least one byte */
    int *ids = tx_malloc((size_t)cap * sizeof *ids);
    tx_example ex;
    int rc = tx_tool_example(tool, where, src, NULL, &ex, ids, cap, err);
    if (!rc) {
        if (max_len <= 0) max_len = tx_trained_room(t, ex.src_len);
        tx_batch b;
        tx_batch_alloc(&b, 1, ex.src_len, 0);
        tx_batch_fill(&b, &ex, 1, t->cfg.model.kind == TX_DECODER_ONLY);
        *out = tx_malloc(((size_t)max_len + 1) * sizeof **out);
        tx_search s = {.max_len = max_len, .beam = beam, .alpha = alpha};
        tx_decode(&tool->tp, &t->model, &b, &s, &(tx_decoded){.tok = *out, .len = n});
        tx_tape_reset(&tool->tp);
        tx_batch_free(&b);
    }
    free(ids);
    return rc;
}
