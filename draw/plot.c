/* plot.c: the training-curve picture. Two panels: training and validation
 * loss on a log scale (losses fall over decades), validation exact-match
 * accuracy on [0, 1]. */
#include "plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

#define HEADER "step,lr,train_loss,grad_norm,tokens_per_s,valid_loss,valid_accuracy,elapsed_s"

typedef struct series {
    double *x, *y; /* [n] */
    int n, cap;
} series;

static void push(series *s, double x, double y) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->x = tx_realloc(s->x, (size_t)s->cap * sizeof *s->x);
        s->y = tx_realloc(s->y, (size_t)s->cap * sizeof *s->y);
    }
    s->x[s->n] = x;
    s->y[s->n++] = y;
}

static void series_free(series *s) {
    free(s->x);
    free(s->y);
}

/* One field of a row: a number, or (allow_empty) nothing. *has says which. */
static int field(const char **p, int allow_empty, double *v, int *has) {
    char *end;
    *has = **p != ',' && **p != '\n' && **p != 0;
    if (*has) {
        *v = strtod(*p, &end);
        if (end == *p || !isfinite(*v)) return 0;
        *p = end;
    } else if (!allow_empty) {
        return 0;
    }
    if (**p == ',') ++*p;
    return 1;
}

enum { TRAIN, VALID, ACC, BPC, NSERIES };

static int read_metrics(const char *path, series s[NSERIES], tx_err *err) {
    FILE *f = fopen(path, "r");
    if (!f) return tx_error(err, TX_EIO, "%s: %s", path, strerror(errno));
    char line[1024];
    int lineno = 0, rc = TX_OK;
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        if (lineno == 1) {
            if (strncmp(line, HEADER, strlen(HEADER)))
                rc = tx_error(err, TX_EINPUT, "%s:1: expected the header '%s'", path, HEADER);
            continue;
        }
        if (line[0] == '\n') continue;
        /* 8 fields, or 9 with valid_bpc (files before it have 8) */
        double v[9];
        int has[9] = {0}, ok = 1, nf = 8;
        const char *p = line;
        for (int i = 0; i < 8 && ok; i++) ok = field(&p, i == 5 || i == 6, &v[i], &has[i]);
        if (ok && p[-1] == ',') ok = field(&p, 1, &v[8], &has[8]), nf = 9;
        ok = ok && (*p == '\n' || *p == 0) && has[5] == (has[6] || has[8]);
        if (!ok) {
            rc = tx_error(err, TX_EINPUT,
                          "%s:%d: expected 8 or 9 comma-separated numbers (valid_loss with "
                          "valid_accuracy or valid_bpc, or neither)", path, lineno);
            break;
        }
        (void)nf;
        push(&s[TRAIN], v[0], v[2]);
        if (has[5]) push(&s[VALID], v[0], v[5]);
        if (has[6]) push(&s[ACC], v[0], v[6]);
        if (has[8]) push(&s[BPC], v[0], v[8]);
    }
    fclose(f);
    if (!rc && lineno == 0) rc = tx_error(err, TX_EINPUT, "%s: empty, expected the header '%s'", path, HEADER);
    if (!rc && s[TRAIN].n == 0) rc = tx_error(err, TX_EINPUT, "%s: no rows to plot", path);
    return rc;
}

/* ---- drawing -------------------------------------------------------------- */

static const unsigned char WHITE[3] = {255, 255, 255}, BLACK[3] = {0, 0, 0},
                           GREY[3] = {225, 225, 225}, BLUE[3] = {40, 100, 190},
                           ORANGE[3] = {230, 120, 20}, GREEN[3] = {30, 150, 70};

/* A panel: its pixel box and data ranges; y may be log10. */
typedef struct panel {
    int x, y, w, h;
    double x0, x1, y0, y1;
    int log_y;
} panel;

static int px_x(const panel *p, double x) {
    return p->x + (int)lround((x - p->x0) / (p->x1 - p->x0) * (p->w - 1));
}

static int px_y(const panel *p, double y) {
    double v = p->log_y ? log10(y > 1e-12 ? y : 1e-12) : y;
    return p->y + p->h - 1 - (int)lround((v - p->y0) / (p->y1 - p->y0) * (p->h - 1));
}

/* 1, 2 or 5 times a power of ten, giving about n intervals over range. */
static double nice_step(double range, int n) {
    double raw = range / n, mag = pow(10, floor(log10(raw))), r = raw / mag;
    return (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
}

static void frame(tx_image *im, const panel *p, const char *title) {
    char buf[32];
    double dx = nice_step(p->x1 - p->x0, 6);
    for (double x = ceil(p->x0 / dx) * dx; x <= p->x1 + 1e-9 * dx; x += dx) {
        int X = px_x(p, x);
        tx_image_rect(im, X, p->y, 1, p->h, GREY);
        snprintf(buf, sizeof buf, "%g", x);
        tx_image_text(im, X - tx_image_text_width(buf, 1) / 2, p->y + p->h + 6, buf, 1, 0, BLACK);
    }
    double dy = p->log_y ? 1 : nice_step(p->y1 - p->y0, 5);
    for (double y = ceil(p->y0 / dy - 1e-9) * dy; y <= p->y1 + 1e-9; y += dy) {
        int Y = px_y(p, p->log_y ? pow(10, y) : y);
        tx_image_rect(im, p->x, Y, p->w, 1, GREY);
        if (p->log_y) snprintf(buf, sizeof buf, "1e%d", (int)lround(y));
        else snprintf(buf, sizeof buf, "%g", fabs(y) < 1e-12 ? 0 : y);
        tx_image_text(im, p->x - 6 - tx_image_text_width(buf, 1), Y - 4, buf, 1, 0, BLACK);
    }
    tx_image_rect(im, p->x, p->y + p->h, p->w, 1, BLACK);
    tx_image_rect(im, p->x, p->y, 1, p->h, BLACK);
    tx_image_text(im, p->x, p->y - 22, title, 2, 0, BLACK);
    tx_image_text(im, p->x + p->w - tx_image_text_width("step", 1), p->y + p->h + 20, "step", 1, 0, BLACK);
}

static void curve(tx_image *im, const panel *p, const series *s, const unsigned char rgb[3]) {
    for (int i = 0; i < s->n; i++) {
        int X = px_x(p, s->x[i]), Y = px_y(p, s->y[i]);
        if (i) tx_image_line(im, px_x(p, s->x[i - 1]), px_y(p, s->y[i - 1]), X, Y, 2, rgb);
        else tx_image_rect(im, X - 1, Y - 1, 2, 2, rgb);
    }
}

static void legend(tx_image *im, const panel *p, int row, const char *label,
                   const unsigned char rgb[3]) {
    int x = p->x + p->w - 120, y = p->y + 10 + 16 * row;
    tx_image_rect(im, x, y + 3, 20, 3, rgb);
    tx_image_text(im, x + 26, y, label, 1, 0, BLACK);
}

static void range(const series *s, int ns, double *lo, double *hi, int log_y) {
    *lo = INFINITY, *hi = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < s[k].n; i++) {
            double v = log_y ? log10(s[k].y[i] > 1e-12 ? s[k].y[i] : 1e-12) : s[k].y[i];
            *lo = v < *lo ? v : *lo;
            *hi = v > *hi ? v : *hi;
        }
}

int tx_plot_metrics(const char *dir, tx_err *err) {
    char csv[4096], png[4096];
    snprintf(csv, sizeof csv, "%s/metrics.csv", dir);
    snprintf(png, sizeof png, "%s/curves.png", dir);
    series s[NSERIES] = {{0}};
    int rc = read_metrics(csv, s, err);
    if (!rc) {
        tx_image im;
        tx_image_new(&im, 1000, 420, WHITE);
        double last = s[TRAIN].x[s[TRAIN].n - 1], first = s[TRAIN].x[0];
        double x0 = first < 0 ? first : 0, x1 = last > x0 ? last : x0 + 1;
        panel loss = {70, 50, 400, 320, x0, x1, 0, 0, 1};
        range(s, 2, &loss.y0, &loss.y1, 1);
        loss.y0 = floor(loss.y0);
        loss.y1 = ceil(loss.y1) > loss.y0 ? ceil(loss.y1) : loss.y0 + 1;
        /* right: exact match on [0, 1], or (text) bits per character */
        int bpc = !s[ACC].n && s[BPC].n;
        panel acc = {570, 50, 400, 320, x0, x1, 0, 1, 0};
        if (bpc) {
            range(&s[BPC], 1, &acc.y0, &acc.y1, 0);
            acc.y0 = floor(acc.y0 * 2) / 2;
            acc.y1 = ceil(acc.y1 * 2) / 2 > acc.y0 ? ceil(acc.y1 * 2) / 2 : acc.y0 + 0.5;
        }
        frame(&im, &loss, "loss");
        frame(&im, &acc, bpc ? "validation bits per character" : "validation exact match");
        curve(&im, &loss, &s[TRAIN], BLUE);
        curve(&im, &loss, &s[VALID], ORANGE);
        curve(&im, &acc, &s[bpc ? BPC : ACC], GREEN);
        legend(&im, &loss, 0, "training", BLUE);
        legend(&im, &loss, 1, "validation", ORANGE);
        rc = tx_image_save_png(&im, png, err);
        tx_image_free(&im);
    }
    for (int k = 0; k < NSERIES; k++) series_free(&s[k]);
    return rc;
}
