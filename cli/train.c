/* train.c: `tapeformer train CONFIG [--set section.key=value]... [--resume]
 * [--stop-at STEP] [--examples N] [--quiet] [--detect-anomaly]`. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../train/train.h"
#include "cli.h"
#include "commands.h"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) {
    interrupted = 1;
    signal(sig, SIG_DFL); /* a second one ends the run at once */
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
    const char *path = NULL, *kill = NULL;
    tx_train_opts opts = {.examples = 5, .interrupted = &interrupted, .kill_rank = -1};
    tx_arg_list sets = {0};
    const tx_arg args[] = {
        {"set", TX_ARG_LIST, &sets, 0, 0},
        {"resume", TX_ARG_FLAG, &opts.resume, 0, 0},
        {"stop-at", TX_ARG_LONG, &opts.stop_at, 0, 1e15},
        {"examples", TX_ARG_INT, &opts.examples, 0, 1 << 20},
        {"quiet", TX_ARG_FLAG, &opts.quiet, 0, 0},
        {"detect-anomaly", TX_ARG_FLAG, &opts.detect_anomaly, 0, 0},
        /* hidden, for the fault tests: STEP[:write][@RANK] */
        {"kill-at", TX_ARG_STR, &kill, 0, 0}};
    const char **pos[] = {&path};
    int rc = tx_cli_parse(usage, argc, argv, args, 7, pos, 1);
    if (rc) return rc < 0 ? 0 : rc;
    if (kill) {
        char *end;
        opts.kill_at = strtol(kill, &end, 10);
        opts.kill_in_write = !strncmp(end, ":write", 6);
        end += opts.kill_in_write ? 6 : 0;
        const char *rank = *end == '@' ? end + 1 : NULL;
        if (rank) opts.kill_rank = (int)strtol(rank, &end, 10);
        if (opts.kill_at < 1 || *end || end == rank) {
            fprintf(stderr, "train: --kill-at: expected STEP[:write][@RANK], got '%s'\n", kill);
            return 2;
        }
    }
    tx_config cfg;
    tx_err err;
    tx_dist dist; /* first, so that under mpirun only rank 0 names a bad config */
    if (tx_dist_init(&dist, &err)) {
        fprintf(stderr, "train: %s\n", err.msg);
        return 2;
    }
    rc = tx_config_load(&cfg, path, &err);
    for (int i = 0; !rc && i < sets.n; i++) rc = tx_config_set(&cfg, sets.v[i], &err);
    if (!rc) rc = tx_config_validate(&cfg, &err);
    if (rc) {
        if (dist.rank == 0) fprintf(stderr, "%s\n", err.msg);
        tx_dist_finalize(&dist);
        return 2;
    }
    opts.dist = &dist;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal); /* mpirun passes a Ctrl-C on as SIGTERM */
    rc = tx_train(&cfg, &opts, &err);
    /* Print before tx_dist_finalize, whose barrier then keeps every other rank
     * from exiting (and mpirun from ending the job) before the message is
     * out. */
    if (rc && rc != TX_EINTERRUPTED && dist.rank == 0) {
        /* End an in-place progress line first. */
        if (isatty(1) && !opts.quiet) putchar('\n');
        fflush(stdout);
        fprintf(stderr, "train: %s\n", err.msg);
    }
    tx_dist_finalize(&dist);
    if (rc == TX_EINTERRUPTED) return 130;
    return rc == TX_EIO ? 1 : rc ? 2 : 0;
}
