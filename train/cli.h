/* cli.h: what the tool subcommands (generate, score, eval, export, attention,
 * plot) share: a table-driven argument parser that prints one-line errors,
 * input lines without their line breaks, and opening a model for a command. */
#ifndef TX_CLI_H
#define TX_CLI_H

#include <stdio.h>

#include "model_io.h"

enum { TX_CLI_INT, TX_CLI_REAL, TX_CLI_STR };

/* One "--name VALUE" option; out points to an int, a double or a
 * const char *; numbers must lie in [lo, hi]. */
typedef struct tx_cli_flag {
    const char *name;
    int kind;   /* TX_CLI_* */
    void *out;
    double lo, hi;
} tx_cli_flag;

/* Parses argv [argc] into flags [nflags] and exactly npos positional
 * arguments (*pos[i] set in order). "--help"/"-h" prints usage to stdout and
 * returns -1 (exit 0); an unknown flag, a bad value or a wrong count prints
 * "CMD: ..." on stderr and returns 2; success returns 0. */
int tx_cli_parse(const char *cmd, const char *usage, int argc, char **argv,
                 const tx_cli_flag *flags, int nflags, const char **pos[], int npos);

/* The next line of f into *buf (getline's contract: the caller frees *buf),
 * its \n or \r\n removed. Returns its length, or -1 at the end. */
long tx_cli_line(FILE *f, char **buf, size_t *cap);

/* tx_trained_load that prints "CMD: PATH: ..." on failure; returns 0 or 2. */
int tx_cli_load(const char *cmd, tx_trained *t, const char *path);

#endif
