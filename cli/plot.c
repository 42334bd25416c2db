/* plot.c: `tapeformer plot DIR`: DIR/metrics.csv to DIR/curves.png. */
#include <stdio.h>

#include "../draw/plot.h"
#include "cli.h"
#include "commands.h"

static const char usage[] =
    "usage: tapeformer plot DIR\n"
    "Draws DIR/metrics.csv (written by 'train') as DIR/curves.png: training and\n"
    "validation loss (log scale) and validation exact match against step.\n"
    "Exit status 2 if the metrics cannot be read or the image written.\n";

int tx_cmd_plot(int argc, char **argv) {
    const char *dir = NULL;
    const char **pos[] = {&dir};
    int rc = tx_cli_parse(usage, argc, argv, NULL, 0, pos, 1);
    if (rc) return rc < 0 ? 0 : rc;
    tx_err err;
    if ((rc = tx_plot_metrics(dir, &err))) {
        fprintf(stderr, "plot: %s\n", err.msg);
        return 2;
    }
    printf("%s/curves.png\n", dir);
    return 0;
}
