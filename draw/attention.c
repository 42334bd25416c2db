/* attention.c: the attention heatmaps. */
#include "attention.h"

#include <stdio.h>

#include "image.h"

static const unsigned char WHITE[3] = {255, 255, 255}, BLACK[3] = {0, 0, 0};

static void heat(tx_image *im, int x, int y, const tx_real *p, int Tq, int Tk, int cell) {
    for (int i = 0; i < Tq; i++)
        for (int j = 0; j < Tk; j++) {
            unsigned char rgb[3];
            tx_colormap(p[(size_t)i * Tk + j], rgb);
            tx_image_rect(im, x + j * cell, y + i * cell, cell, cell, rgb);
        }
}

static int save(const tx_image *im, const char *dir, const char *name, tx_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.png", dir, name);
    return tx_image_save_png(im, path, err);
}

static int widest(const char *const *labels, int n) {
    int w = 0;
    for (int i = 0; i < n; i++)
        if (tx_image_text_width(labels[i], 1) > w) w = tx_image_text_width(labels[i], 1);
    return w;
}

/* One head's map with token labels, a title and a colour bar. */
static int single(const tx_attn_view *v, int l, int h, int cell, const char *dir,
                  tx_err *err) {
    const tx_tensor *m = v->maps[l];
    int Tq = m->shape[2], Tk = m->shape[3];
    int x0 = widest(v->qlabel, Tq) + 12, y0 = widest(v->klabel, Tk) + 40, bar = 14;
    int w = x0 + Tk * cell + 20 + bar + 30;
    char title[128];
    snprintf(title, sizeof title, "%s, layer %d, head %d", v->title, l, h);
    int tw = tx_image_text_width(title, 1) + 8;
    tx_image im;
    tx_image_new(&im, w > tw ? w : tw, y0 + Tq * cell + 12, WHITE);
    tx_image_text(&im, 4, 4, title, 1, 0, BLACK);
    for (int i = 0; i < Tq; i++)
        tx_image_text(&im, x0 - 6 - tx_image_text_width(v->qlabel[i], 1),
                      y0 + i * cell + cell / 2 - 4, v->qlabel[i], 1, 0, BLACK);
    for (int j = 0; j < Tk; j++)
        tx_image_text(&im, x0 + j * cell + cell / 2 - 4, y0 - 6, v->klabel[j], 1, 1, BLACK);
    heat(&im, x0, y0, m->data + (size_t)h * Tq * Tk, Tq, Tk, cell);
    int bx = x0 + Tk * cell + 20, bh = Tq * cell;
    for (int r = 0; r < bh; r++) { /* colour bar: 1 at the top */
        unsigned char rgb[3];
        tx_colormap(1 - (double)r / (bh > 1 ? bh - 1 : 1), rgb);
        tx_image_rect(&im, bx, y0 + r, bar, 1, rgb);
    }
    tx_image_text(&im, bx + bar + 4, y0, "1", 1, 0, BLACK);
    tx_image_text(&im, bx + bar + 4, y0 + bh - 8, "0", 1, 0, BLACK);
    char name[64];
    snprintf(name, sizeof name, "%s_layer%d_head%d", v->kind, l, h);
    int rc = save(&im, dir, name, err);
    tx_image_free(&im);
    return rc;
}

/* Every layer (rows) and head (columns) of one kind in one picture. */
static int grid(const tx_attn_view *v, int heads, int cell, const char *dir, tx_err *err) {
    int Tq = v->maps[0]->shape[2], Tk = v->maps[0]->shape[3], gap = 12;
    int x0 = 60, y0 = 40, mw = Tk * cell, mh = Tq * cell;
    int w = x0 + heads * (mw + gap), tw = tx_image_text_width(v->title, 1) + 8;
    tx_image im;
    tx_image_new(&im, w > tw ? w : tw, y0 + v->layers * (mh + gap), WHITE);
    tx_image_text(&im, 4, 4, v->title, 1, 0, BLACK);
    char buf[32];
    for (int h = 0; h < heads; h++) {
        snprintf(buf, sizeof buf, "head %d", h);
        tx_image_text(&im, x0 + h * (mw + gap), y0 - 14, buf, 1, 0, BLACK);
    }
    for (int l = 0; l < v->layers; l++) {
        snprintf(buf, sizeof buf, "layer %d", l);
        tx_image_text(&im, 4, y0 + l * (mh + gap) + mh / 2 - 4, buf, 1, 0, BLACK);
        for (int h = 0; h < heads; h++)
            heat(&im, x0 + h * (mw + gap), y0 + l * (mh + gap),
                 v->maps[l]->data + (size_t)h * Tq * Tk, Tq, Tk, cell);
    }
    int rc = save(&im, dir, v->kind, err);
    tx_image_free(&im);
    return rc;
}

int tx_draw_attention(const tx_attn_view *v, int heads, int cell, const char *dir,
                      tx_err *err) {
    int rc = TX_OK;
    if (!v->layers) return TX_OK;
    for (int l = 0; !rc && l < v->layers; l++)
        for (int h = 0; !rc && h < heads; h++) rc = single(v, l, h, cell, dir, err);
    return rc ? rc : grid(v, heads, cell / 2 > 8 ? cell / 2 : 8, dir, err);
}
