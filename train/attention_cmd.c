/* attention_cmd.c: `tapeformer attention CHECKPOINT --input TEXT
 * [--target TEXT] --out DIR`: PNG heatmaps of every attention layer and head. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "commands.h"
#include "image.h"

static const char usage[] =
    "usage: tapeformer attention CHECKPOINT --input TEXT [--target TEXT] --out DIR\n"
    "Draws the attention probabilities of the model on one example as PNG heatmaps in\n"
    "DIR (created if needed): rows are queries, columns keys, colour 0 (dark) to 1\n"
    "(bright). Without --target the model's greedy output is used.\n"
    "  KIND_layerL_headH.png  one map with token labels\n"
    "  KIND.png               every layer (rows) and head (columns) at a glance\n"
    "KIND is encoder_self and cross (encoder-decoder models) and decoder_self.\n"
    "  --cell N   pixels per cell of the single maps (default 24, at least 8)\n"
    "Exit status 2 on a bad file, option or input, 1 if an image cannot be written.\n";

static const unsigned char WHITE[3] = {255, 255, 255}, BLACK[3] = {0, 0, 0};

/* A token as a short ASCII label (the font has nothing else): the text, or
 * "#id" for other scripts. */
static void label(const tx_vocab *v, int id, char *out, size_t n) {
    const char *s = v->tok[id];
    int ascii = 1;
    for (const char *p = s; *p; p++) ascii &= *p > 32 && *p < 127;
    if (ascii && strlen(s) < 10) snprintf(out, n, "%s", s);
    else snprintf(out, n, "#%d", id);
}

typedef struct view {
    const char *kind;          /* file stem */
    const char *title;
    tx_tensor **maps;          /* [layers] each [1, H, Tq, Tk] */
    int layers;
    const int *q, *k;          /* query / key token ids [Tq] / [Tk] */
} view;

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

/* One head's map with token labels, a title and a colour bar. */
static int single(const tx_trained *t, const view *v, int l, int h, int cell,
                  const char *dir, tx_err *err) {
    const tx_tensor *m = v->maps[l];
    int Tq = m->shape[2], Tk = m->shape[3], lw = 0, lh = 0;
    char buf[64];
    for (int i = 0; i < Tq; i++) {
        label(&t->vocab, v->q[i], buf, sizeof buf);
        lw = tx_image_text_width(buf, 1) > lw ? tx_image_text_width(buf, 1) : lw;
    }
    for (int j = 0; j < Tk; j++) {
        label(&t->vocab, v->k[j], buf, sizeof buf);
        lh = tx_image_text_width(buf, 1) > lh ? tx_image_text_width(buf, 1) : lh;
    }
    int x0 = lw + 12, y0 = lh + 40, bar = 14, w = x0 + Tk * cell + 20 + bar + 30;
    char title[128];
    snprintf(title, sizeof title, "%s, layer %d, head %d", v->title, l, h);
    int tw = tx_image_text_width(title, 1) + 8;
    tx_image im;
    tx_image_new(&im, w > tw ? w : tw, y0 + Tq * cell + 12, WHITE);
    tx_image_text(&im, 4, 4, title, 1, 0, BLACK);
    for (int i = 0; i < Tq; i++) {
        label(&t->vocab, v->q[i], buf, sizeof buf);
        tx_image_text(&im, x0 - 6 - tx_image_text_width(buf, 1), y0 + i * cell + cell / 2 - 4, buf, 1, 0, BLACK);
    }
    for (int j = 0; j < Tk; j++) {
        label(&t->vocab, v->k[j], buf, sizeof buf);
        tx_image_text(&im, x0 + j * cell + cell / 2 - 4, y0 - 6, buf, 1, 1, BLACK);
    }
    heat(&im, x0, y0, m->data + (size_t)h * Tq * Tk, Tq, Tk, cell);
    int bx = x0 + Tk * cell + 20, bh = Tq * cell;
    for (int r = 0; r < bh; r++) { /* colour bar: 1 at the top */
        unsigned char rgb[3];
        tx_colormap(1 - (double)r / (bh > 1 ? bh - 1 : 1), rgb);
        tx_image_rect(&im, bx, y0 + r, bar, 1, rgb);
    }
    tx_image_text(&im, bx + bar + 4, y0, "1", 1, 0, BLACK);
    tx_image_text(&im, bx + bar + 4, y0 + bh - 8, "0", 1, 0, BLACK);
    snprintf(buf, sizeof buf, "%s_layer%d_head%d", v->kind, l, h);
    int rc = save(&im, dir, buf, err);
    tx_image_free(&im);
    return rc;
}

/* Every layer (rows) and head (columns) of one kind in one picture. */
static int grid(const view *v, int heads, int cell, const char *dir, tx_err *err) {
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

static int draw(const tx_trained *t, const view *v, int cell, const char *dir, tx_err *err) {
    int H = t->cfg.model.heads, rc = TX_OK;
    if (!v->layers) return TX_OK;
    for (int l = 0; !rc && l < v->layers; l++)
        for (int h = 0; !rc && h < H; h++) rc = single(t, v, l, h, cell, dir, err);
    return rc ? rc : grid(v, H, cell / 2 > 8 ? cell / 2 : 8, dir, err);
}

/* The example's token ids: source, and the decoder input (decoder-only: the
 * source, BOS and target; encoder-decoder: BOS and target). */
static int tokens(const tx_trained *t, tx_tape *tp, const char *input, const char *target,
                  int **src, int *ls, int **dec, int *ld, tx_err *err) {
    int dec_only = t->cfg.model.kind == TX_DECODER_ONLY, *gen = NULL, lt;
    int cap = (int)(strlen(input) + (target ? strlen(target) : 0)) + 2;
    int *ids = malloc((size_t)cap * sizeof *ids);
    TX_ASSERT(ids, "attention: out of memory");
    tx_example ex;
    int rc = tx_trained_example(t, input, target, &ex, ids, cap, err);
    if (!rc && !target) {
        /* room - 1: BOS and the output must fit the positions together */
        int room = tx_trained_room(t, ex.src_len);
        if (room > 1) rc = tx_trained_generate(t, tp, input, 1, 1, room - 1, &gen, &lt, err);
        else lt = 0;
    } else {
        lt = ex.tgt_len;
    }
    if (rc) {
        free(ids);
        return rc;
    }
    *ls = ex.src_len;
    *ld = (dec_only ? *ls : 0) + 1 + lt;
    *src = ids;
    *dec = malloc((size_t)*ld * sizeof **dec);
    TX_ASSERT(*dec, "attention: out of memory");
    int p = dec_only ? *ls : 0;
    memcpy(*dec, ids, (size_t)p * sizeof **dec);
    (*dec)[p] = TX_BOS;
    memcpy(*dec + p + 1, gen ? gen : ex.tgt_ids, (size_t)lt * sizeof **dec);
    free(gen);
    return TX_OK;
}

int tx_cmd_attention(int argc, char **argv) {
    const char *path = NULL, *input = NULL, *target = NULL, *dir = NULL;
    int cell = 24;
    const tx_cli_flag flags[] = {{"--input", TX_CLI_STR, &input, 0, 0},
                                 {"--target", TX_CLI_STR, &target, 0, 0},
                                 {"--out", TX_CLI_STR, &dir, 0, 0},
                                 {"--cell", TX_CLI_INT, &cell, 8, 256}};
    const char **pos[] = {&path};
    int rc = tx_cli_parse("attention", usage, argc, argv, flags, 4, pos, 1);
    if (rc) return rc < 0 ? 0 : rc;
    if (!input || !dir) {
        fprintf(stderr, "attention: %s is required (see --help)\n", input ? "--out" : "--input");
        return 2;
    }
    if (mkdir(dir, 0777) && errno != EEXIST) {
        fprintf(stderr, "attention: %s: cannot create directory: %s\n", dir, strerror(errno));
        return 1;
    }
    tx_trained t;
    if (tx_cli_load("attention", &t, path)) return 2;
    tx_tape tp;
    tx_tape_init(&tp);
    tx_err err;
    int *src = NULL, *dec = NULL, ls, ld;
    rc = tokens(&t, &tp, input, target, &src, &ls, &dec, &ld, &err);
    if (rc) {
        fprintf(stderr, "attention: %s: %s\n", target ? "--input/--target" : "--input", err.msg);
        rc = 2;
    } else {
        const tx_model_config *mc = &t.cfg.model;
        int dec_only = mc->kind == TX_DECODER_ONLY;
        tx_attn_maps maps;
        memset(&maps, 0, sizeof maps);
        tp.no_grad = 1;
        tx_tensor *memory = dec_only ? NULL : tx_model_encode(&tp, &t.model, src, &ls, 1, ls, &maps);
        tx_model_decode(&tp, &t.model, memory, NULL, dec, NULL, 1, ld, &maps);
        const view views[] = {
            {"encoder_self", "encoder self-attention", maps.enc_self, dec_only ? 0 : mc->encoder_layers, src, src},
            {"decoder_self", "decoder self-attention", maps.dec_self, mc->decoder_layers, dec, dec},
            {"cross", "cross-attention (decoder queries, source keys)", maps.cross, dec_only ? 0 : mc->decoder_layers, dec, src}};
        for (int i = 0; !rc && i < 3; i++) rc = draw(&t, &views[i], cell, dir, &err);
        if (rc) {
            fprintf(stderr, "attention: %s\n", err.msg);
            rc = 1;
        }
    }
    free(src);
    free(dec);
    tx_tape_free(&tp);
    tx_trained_free(&t);
    return rc;
}
