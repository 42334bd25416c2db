/* attention.h: attention probabilities drawn as PNG heatmaps: one picture per
 * layer and head with token labels and a colour bar, and one overview of
 * every layer (rows) and head (columns). */
#ifndef TX_DRAW_ATTENTION_H
#define TX_DRAW_ATTENTION_H

#include "../core/tensor.h"

/* One kind of attention (encoder self, decoder self, cross) over its layers. */
typedef struct tx_attn_view {
    const char *kind;          /* file stem: "cross" gives cross_layerL_headH.png, cross.png */
    const char *title;
    tx_tensor *const *maps;    /* [layers], each [1, H, Tq, Tk] */
    int layers;                /* 0: nothing to draw */
    const char *const *qlabel; /* [Tq] query labels (printable ASCII) */
    const char *const *klabel; /* [Tk] key labels */
} tx_attn_view;

/* Writes DIR/KIND_layerL_headH.png for every layer and head (cell pixels
 * per cell), then DIR/KIND.png (half the cell, at least 8). Returns TX_OK or
 * TX_EIO with "PATH: reason" from the first image that cannot be written. */
int tx_draw_attention(const tx_attn_view *v, int heads, int cell, const char *dir,
                      tx_err *err);

#endif
