/* train_cmd.c: `tapeformer train CONFIG [--set section.key=value]... [--resume]
 * [--stop-at STEP] [--quiet]`. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "train.h"

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
    signal(SIGINT, SIG_DFL); /* a second Ctrl-C ends the run at once */
}

static const char usage[] =
    "usage: tapeformer train CONFIG [options]\n"
    "Trains the model CONFIG (an INI file, see configs/) describes.\n"
    "  --set SECTION.KEY=VALUE  override a config key (repeatable)\n"
    "  --resume                 continue from OUT/checkpoint.safetensors\n"
    "  --stop-at STEP           stop after STEP, saving a checkpoint, as if interrupted\n"
    "  --examples N             decoded examples shown at the end (default 5)\n"
    "  --quiet                  no progress output\n"
    "  --detect-anomaly         check every op for NaN/inf and name the first (slower)\n"
    "Ctrl-C saves a checkpoint and exits; --resume continues bit for bit.\n";

int tx_cmd_train(int argc, char **argv) {
    const char *path = NULL;
    tx_train_opts opts = {.examples = 5, .interrupted = &interrupted};
    const char *sets[64];
    int nsets = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--resume")) {
            opts.resume = 1;
        } else if (!strcmp(a, "--detect-anomaly")) {
            opts.detect_anomaly = 1;
        } else if (!strcmp(a, "--quiet")) {
            opts.quiet = 1;
        } else if (!strcmp(a, "--set") && has_value && nsets < 64) {
            sets[nsets++] = argv[++i];
        } else if ((!strcmp(a, "--stop-at") || !strcmp(a, "--examples")) && has_value) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 0) {
                fprintf(stderr, "train: %s: expected a non-negative integer, got '%s'\n", a, argv[i]);
                return 2;
            }
            if (a[2] == 's') opts.stop_at = v;
            else opts.examples = (int)v;
        } else if (a[0] == '-' || path) {
            fprintf(stderr, "train: unexpected argument '%s' (see --help)\n", a);
            return 2;
        } else {
            path = a;
        }
    }
    if (!path) {
        fputs(usage, stderr);
        return 2;
    }
    tx_config cfg;
    tx_err err;
    int rc = tx_config_load(&cfg, path, &err);
    for (int i = 0; !rc && i < nsets; i++) rc = tx_config_set(&cfg, sets[i], &err);
    if (!rc) rc = tx_config_validate(&cfg, &err);
    if (rc) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    signal(SIGINT, on_sigint);
    rc = tx_train(&cfg, &opts, &err);
    if (rc == TX_EINTERRUPTED) return 130;
    if (rc) {
        /* End an in-place progress line first. */
        if (isatty(1) && !opts.quiet) putchar('\n');
        fflush(stdout);
        fprintf(stderr, "train: %s\n", err.msg);
        return rc == TX_EIO ? 1 : 2;
    }
    return 0;
}
