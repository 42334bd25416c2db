/* cli.h: what the subcommands share: one option parser (getopt_long behind a
 * table, one-line errors), input lines, and opening a trained model for a
 * tool (generate, score, eval, export, attention) with its per-line checks. */
#ifndef TX_CLI_H
#define TX_CLI_H

#include <stdio.h>

#include "../io/model_io.h"

enum { TX_ARG_FLAG, TX_ARG_INT, TX_ARG_LONG, TX_ARG_REAL, TX_ARG_STR, TX_ARG_LIST };

/* A repeatable option's values (--set A --set B), in order. */
#define TX_ARG_LIST_MAX 64
typedef struct tx_arg_list {
    const char *v[TX_ARG_LIST_MAX];
    int n;
} tx_arg_list;

/* One "--name" option. out points to an int (FLAG: set to 1; INT), a long
 * (LONG), a double (REAL), a const char * (STR) or a tx_arg_list (LIST);
 * numbers must lie in [lo, hi]. */
typedef struct tx_arg {
    const char *name; /* without the dashes */
    int kind;         /* TX_ARG_* */
    void *out;
    double lo, hi;
} tx_arg;

/* Parses argv [argc] (argv[0] is the command's name) into args [nargs] and
 * exactly npos positional arguments (*pos[i] set in order), options and
 * positionals in any order, "--name=value" too. "--help"/"-h" prints usage
 * to stdout and returns -1 (exit 0); an unknown option, a bad value or a
 * wrong count prints one line "CMD: ..." on stderr and returns 2; success 0. */
int tx_cli_parse(const char *usage, int argc, char **argv, const tx_arg *args, int nargs,
                 const char **pos[], int npos);

/* The next line of f into *buf (getline's contract: the caller frees *buf),
 * its \n or \r\n removed. Returns its length, or -1 at the end. */
long tx_cli_line(FILE *f, char **buf, size_t *cap);

/* A tool's model: the file opened, a tape to run it on, and how to treat
 * input text the model was not trained on. */
typedef struct tx_tool {
    const char *cmd; /* "generate", ... for messages */
    tx_trained t;
    tx_tape tp;
    int strict;      /* unknown tokens are an error, not a warning */
} tx_tool;

/* tx_trained_load for command cmd; prints "CMD: PATH: ..." on failure and
 * returns 2 (nothing to close), else 0. Close with tx_tool_close. */
int tx_tool_open(tx_tool *tool, const char *cmd, const char *path);
void tx_tool_close(tx_tool *tool);
/* 0 if the model maps sources to targets (every task but text), else prints
 * "CMD: PATH: ... use 'tapeformer sample'" and returns 2. */
int tx_tool_pairs(const tx_tool *tool, const char *path);

/* Tokenizes text for side (TX_SRC, TX_TGT) into ids [cap] and returns the
 * token count (which may exceed cap), after reporting tokens outside the
 * vocabulary: a warning "CMD: WHERE: ..." on stderr, or with tool->strict
 * the error TX_EINPUT in err and -TX_EINPUT returned. */
int tx_tool_encode(tx_tool *tool, const char *where, int side, const char *text, int *ids,
                   int cap, tx_err *err);

/* tx_trained_example with the checks a user needs to trust the output: a
 * token outside the vocabulary (read as <unk>) or a source longer than any
 * the model was trained on gets one warning line "CMD: WHERE: ..." on
 * stderr; with tool->strict an unknown token is an error instead (TX_EINPUT
 * in err, nothing printed). where names the input ("stdin:3"). */
int tx_tool_example(tx_tool *tool, const char *where, const char *src, const char *tgt,
                    tx_example *ex, int *ids, int cap, tx_err *err);

/* Decodes one source text, greedily (beam 1) or by beam search with length
 * penalty alpha, for at most max_len tokens (<= 0: what the model's
 * positions allow). *out gets n tokens, EOS excluded, in malloc'd memory the
 * caller frees. Returns TX_OK, or TX_EINPUT from tx_tool_example with *out
 * NULL. */
int tx_tool_generate(tx_tool *tool, const char *where, const char *src, int beam,
                     double alpha, int max_len, int **out, int *n, tx_err *err);

#endif
