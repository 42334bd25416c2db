/* image.h: a small RGB canvas for the tools' pictures (attention heatmaps,
 * training curves): rectangles, lines, bitmap text (stb_easy_font), a
 * perceptually ordered colour map, and atomic PNG output (stb_image_write). */
#ifndef TX_IMAGE_H
#define TX_IMAGE_H

#include "../core/base.h"

typedef struct tx_image {
    int w, h;
    unsigned char *px; /* [h · w · 3] RGB, rows top to bottom */
} tx_image;

/* A w×h canvas filled with rgb; aborts if the heap is exhausted. Free with
 * tx_image_free. */
void tx_image_new(tx_image *im, int w, int h, const unsigned char rgb[3]);
void tx_image_free(tx_image *im);

/* Fills [x, x+w) × [y, y+h), clipped to the canvas. */
void tx_image_rect(tx_image *im, int x, int y, int w, int h, const unsigned char rgb[3]);
/* A straight line of the given width (pixels), clipped. */
void tx_image_line(tx_image *im, int x0, int y0, int x1, int y1, int width,
                   const unsigned char rgb[3]);

/* ASCII text with its top-left corner at (x, y), each font pixel drawn as a
 * scale×scale square; other bytes show as '?'. vertical: rotated a quarter
 * turn anticlockwise (reads bottom to top), (x, y) then being its bottom-left.
 * Returns the text's length along its baseline in pixels. */
int tx_image_text(tx_image *im, int x, int y, const char *text, int scale,
                  int vertical, const unsigned char rgb[3]);
/* Length tx_image_text would draw, in pixels. */
int tx_image_text_width(const char *text, int scale);

/* t in [0, 1] (clamped) to a dark-blue-violet → teal → yellow ramp whose
 * CIELAB lightness rises linearly (L* 15 → 92) so equal steps in t look
 * equally different and order reads as light. Derived here, not a table. */
void tx_colormap(double t, unsigned char rgb[3]);

/* Writes im as PNG at path via path.tmp and a rename. Returns TX_OK or TX_EIO
 * with "PATH: reason" (no file left behind). */
int tx_image_save_png(const tx_image *im, const char *path, tx_err *err);

#endif
