/* cli.c: argument parsing and input lines for the tool subcommands. */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int set_value(const char *cmd, const tx_cli_flag *f, const char *s) {
    if (f->kind == TX_CLI_STR) {
        *(const char **)f->out = s;
        return 0;
    }
    char *end;
    double v = strtod(s, &end);
    int integer = f->kind == TX_CLI_INT;
    if (end == s || *end || !isfinite(v) || v < f->lo || v > f->hi || (integer && v != floor(v))) {
        fprintf(stderr, "%s: %s: expected %s in [%g, %g], got '%s'\n", cmd, f->name,
                integer ? "an integer" : "a number", f->lo, f->hi, s);
        return 2;
    }
    if (integer) *(int *)f->out = (int)v;
    else *(double *)f->out = v;
    return 0;
}

int tx_cli_parse(const char *cmd, const char *usage, int argc, char **argv,
                 const tx_cli_flag *flags, int nflags, const char **pos[], int npos) {
    int got = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return -1;
        }
        if (a[0] == '-' && a[1]) {
            const tx_cli_flag *f = NULL;
            for (int k = 0; k < nflags && !f; k++)
                if (!strcmp(a, flags[k].name)) f = &flags[k];
            if (!f) {
                fprintf(stderr, "%s: unknown option '%s' (see --help)\n", cmd, a);
                return 2;
            }
            if (i + 1 >= argc) {
                fprintf(stderr, "%s: %s needs a value (see --help)\n", cmd, a);
                return 2;
            }
            if (set_value(cmd, f, argv[++i])) return 2;
        } else if (got < npos) {
            *pos[got++] = a;
        } else {
            fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", cmd, a);
            return 2;
        }
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

int tx_cli_load(const char *cmd, tx_trained *t, const char *path) {
    tx_err err;
    if (!tx_trained_load(t, path, &err)) return 0;
    fprintf(stderr, "%s: %s\n", cmd, err.msg);
    return 2;
}
