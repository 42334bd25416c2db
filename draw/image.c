/* image.c: the canvas, its colour map and PNG output. The stb headers come
 * from Debian's libstb-dev and are compiled here only, as static functions. */
#include "image.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
#include <stb/stb_easy_font.h>
#pragma GCC diagnostic pop

void tx_image_new(tx_image *im, int w, int h, const unsigned char rgb[3]) {
    TX_ASSERT(w > 0 && h > 0, "tx_image_new: %d x %d", w, h);
    im->w = w;
    im->h = h;
    im->px = tx_malloc((size_t)w * h * 3);
    tx_image_rect(im, 0, 0, w, h, rgb);
}

void tx_image_free(tx_image *im) {
    free(im->px);
    im->px = NULL;
    im->w = im->h = 0;
}

void tx_image_rect(tx_image *im, int x, int y, int w, int h, const unsigned char rgb[3]) {
    int x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
    int x1 = x + w > im->w ? im->w : x + w, y1 = y + h > im->h ? im->h : y + h;
    for (int r = y0; r < y1; r++)
        for (int c = x0; c < x1; c++) memcpy(im->px + ((size_t)r * im->w + c) * 3, rgb, 3);
}

void tx_image_line(tx_image *im, int x0, int y0, int x1, int y1, int width,
                   const unsigned char rgb[3]) {
    /* Bresenham, stamping a width×width square at every step. */
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int e = dx + dy, half = width / 2;
    for (;;) {
        tx_image_rect(im, x0 - half, y0 - half, width, width, rgb);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * e;
        if (e2 >= dy) e += dy, x0 += sx;
        if (e2 <= dx) e += dx, y0 += sy;
    }
}

/* Printable ASCII copy of text (the font covers 32..126 only). Caller frees. */
static char *printable(const char *text) {
    size_t n = strlen(text);
    char *s = tx_malloc(n + 1);
    for (size_t i = 0; i <= n; i++)
        s[i] = i == n ? 0 : text[i] >= 32 && text[i] < 127 ? text[i] : '?';
    return s;
}

int tx_image_text_width(const char *text, int scale) {
    char *s = printable(text);
    int w = stb_easy_font_width(s) * scale;
    free(s);
    return w;
}

int tx_image_text(tx_image *im, int x, int y, const char *text, int scale,
                  int vertical, const unsigned char rgb[3]) {
    char *s = printable(text);
    /* The header's "~270 bytes a character" is an average: '0' needs 576. */
    size_t cap = (strlen(s) + 1) * 1024;
    float *v = tx_malloc(cap);
    int quads = stb_easy_font_print(0, 0, s, NULL, v, (int)cap);
    for (int q = 0; q < quads; q++) {
        /* Four vertices of x, y, z, colour (16 bytes): corners 0 and 2 span it. */
        const float *a = v + q * 16, *c = a + 8;
        int qx = (int)a[0] * scale, qy = (int)a[1] * scale;
        int qw = (int)(c[0] - a[0]) * scale, qh = (int)(c[1] - a[1]) * scale;
        if (vertical) tx_image_rect(im, x + qy, y - qx - qw, qh, qw, rgb);
        else tx_image_rect(im, x + qx, y + qy, qw, qh, rgb);
    }
    int w = stb_easy_font_width(s) * scale;
    free(v);
    free(s);
    return w;
}

/* ---- colour map ----------------------------------------------------------- */

static double lab_finv(double f) {
    return f > 6.0 / 29 ? f * f * f : 3 * (6.0 / 29) * (6.0 / 29) * (f - 4.0 / 29);
}

/* CIELAB (D65 white) to linear sRGB. */
static void lab_to_linear(double L, double a, double b, double rgb[3]) {
    double fy = (L + 16) / 116, X = 0.95047 * lab_finv(fy + a / 500),
           Y = lab_finv(fy), Z = 1.08883 * lab_finv(fy - b / 200);
    rgb[0] = 3.2406 * X - 1.5372 * Y - 0.4986 * Z;
    rgb[1] = -0.9689 * X + 1.8758 * Y + 0.0415 * Z;
    rgb[2] = 0.0557 * X - 0.2040 * Y + 1.0570 * Z;
}

static int in_gamut(const double c[3]) {
    for (int i = 0; i < 3; i++)
        if (c[i] < 0 || c[i] > 1) return 0;
    return 1;
}

void tx_colormap(double t, unsigned char rgb[3]) {
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    /* Lightness carries the order; the hue turns from violet (300°) through
     * blue and teal to yellow (95°) as viridis does, and the chroma asked for
     * grows towards the bright end. Where sRGB cannot show it, the chroma is
     * reduced (bisection) at the same lightness and hue, so L* stays exact. */
    double L = 15 + 77 * t, h = (300 - 205 * t) * M_PI / 180, want = 45 + 40 * t;
    double lo = 0, hi = want, c[3];
    lab_to_linear(L, want * cos(h), want * sin(h), c);
    if (!in_gamut(c)) {
        for (int i = 0; i < 40; i++) {
            double mid = (lo + hi) / 2;
            lab_to_linear(L, mid * cos(h), mid * sin(h), c);
            if (in_gamut(c)) lo = mid;
            else hi = mid;
        }
        lab_to_linear(L, lo * cos(h), lo * sin(h), c);
    }
    for (int i = 0; i < 3; i++) {
        double x = c[i] < 0 ? 0 : c[i] > 1 ? 1 : c[i];
        x = x <= 0.0031308 ? 12.92 * x : 1.055 * pow(x, 1 / 2.4) - 0.055;
        rgb[i] = (unsigned char)lround(255 * x);
    }
}

/* ---- PNG ------------------------------------------------------------------ */

static void write_file(void *ctx, void *data, int n) {
    FILE *f = ctx;
    fwrite(data, 1, (size_t)n, f);
}

int tx_image_save_png(const tx_image *im, const char *path, tx_err *err) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return tx_error(err, TX_EIO, "%s: path too long", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return tx_error(err, TX_EIO, "%s: %s", tmp, strerror(errno));
    int ok = stbi_write_png_to_func(write_file, f, im->w, im->h, 3, im->px, im->w * 3);
    ok = ok && !ferror(f);
    if (fclose(f)) ok = 0;
    if (!ok || rename(tmp, path)) {
        int e = errno;
        remove(tmp);
        return tx_error(err, TX_EIO, "%s: cannot write PNG: %s", path,
                        ok ? strerror(e) : "write failed");
    }
    return TX_OK;
}
