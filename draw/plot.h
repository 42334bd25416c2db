/* plot.h: training curves: DIR/metrics.csv (as the trainer writes it) drawn
 * as DIR/curves.png, loss (log scale) and validation accuracy against step. */
#ifndef TX_PLOT_H
#define TX_PLOT_H

#include "../core/base.h"

/* Reads DIR/metrics.csv and writes DIR/curves.png (atomically). Returns
 * TX_OK, TX_EIO ("PATH: reason") or TX_EINPUT ("DIR/metrics.csv:LINE: ...")
 * when the file is malformed or has no rows; no image is left then. */
int tx_plot_metrics(const char *dir, tx_err *err);

#endif
