/* attention.c: `tapeformer attention CHECKPOINT --input TEXT [--target TEXT]
 * --out DIR`: PNG heatmaps of every attention layer and head. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../draw/attention.h"
#include "cli.h"
#include "commands.h"

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

#define LABEL 16 /* bytes of one label */

/* A token as a short ASCII label (the font has nothing else): the text
 * (SentencePiece's word marker as '_'), or "#id" for other scripts. */
static void label(const tx_vocab *v, int id, char *out) {
    char s[64];
    tx_vocab_show(v, id, '_', s, sizeof s);
    int ascii = 1;
    for (const char *p = s; *p; p++) ascii &= *p > 32 && *p < 127;
    if (ascii && strlen(s) < 10) snprintf(out, LABEL, "%s", s);
    else snprintf(out, LABEL, "#%d", id);
}

/* Labels of ids [n]: pointers into one block the caller frees (lab[0]). */
static const char **labels(const tx_vocab *v, const int *ids, int n) {
    const char **lab = tx_malloc((size_t)n * sizeof *lab);
    char *text = tx_malloc((size_t)n * LABEL);
    for (int i = 0; i < n; i++) label(v, ids[i], text + (size_t)i * LABEL), lab[i] = text + (size_t)i * LABEL;
    return lab;
}

static void labels_free(const char **lab) {
    free((char *)lab[0]);
    free(lab);
}

/* The example's token ids: source, and the decoder input (decoder-only: the
 * source, BOS and target; encoder-decoder: BOS and target). */
static int tokens(tx_tool *tool, const char *input, const char *target, int **src, int *ls,
                  int **dec, int *ld, tx_err *err) {
    int dec_only = tool->t.cfg.model.kind == TX_DECODER_ONLY, *gen = NULL, lt;
    if (tool->t.cfg.data.task == TX_TASK_TEXT) { /* text: the input's own tokens, no BOS */
        int cap = (int)strlen(input) + 1;
        *src = tx_malloc((size_t)cap * sizeof **src);
        *ls = tx_tool_encode(tool, "--input", TX_SRC, input, *src, cap, err);
        int limit = tool->t.cfg.model.positions == TX_POS_LEARNED ? tool->t.cfg.model.max_len : cap;
        if (*ls < 1 || *ls > limit) {
            if (*ls >= 0) tx_error(err, TX_EINPUT, "expected 1 to %d tokens, got %d", limit, *ls);
            free(*src);
            *src = NULL;
            return TX_EINPUT;
        }
        *ld = *ls;
        *dec = tx_malloc((size_t)*ls * sizeof **dec);
        memcpy(*dec, *src, (size_t)*ls * sizeof **dec);
        return TX_OK;
    }
    int cap = (int)(strlen(input) + (target ? strlen(target) : 0)) + 2;
    int *ids = tx_malloc((size_t)cap * sizeof *ids);
    tx_example ex;
    int rc = tx_tool_example(tool, "--input", input, target, &ex, ids, cap, err);
    if (!rc && !target) {
        /* room - 1: BOS and the output must fit the positions together */
        int room = tx_trained_room(&tool->t, ex.src_len);
        if (room > 1) rc = tx_tool_generate(tool, "--input", input, 1, 1, room - 1, &gen, &lt, err);
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
    *dec = tx_malloc((size_t)*ld * sizeof **dec);
    int p = dec_only ? *ls : 0;
    memcpy(*dec, ids, (size_t)p * sizeof **dec);
    (*dec)[p] = TX_BOS;
    memcpy(*dec + p + 1, gen ? gen : ex.tgt_ids, (size_t)lt * sizeof **dec);
    free(gen);
    return TX_OK;
}

/* Runs the model on the example and draws the three kinds of attention. */
static int draw(tx_tool *tool, const int *src, int ls, const int *dec, int ld, int cell,
                const char *dir, tx_err *err) {
    const tx_model_config *mc = &tool->t.cfg.model;
    const tx_vocab *v = &tool->t.vocab;
    int dec_only = mc->kind == TX_DECODER_ONLY;
    tx_attn_maps maps;
    memset(&maps, 0, sizeof maps);
    tool->tp.no_grad = 1;
    tx_tensor *memory = dec_only ? NULL
                                 : tx_model_encode(&tool->tp, &tool->t.model, src, &ls, 1, ls, &maps);
    tx_model_decode(&tool->tp, &tool->t.model, memory, NULL, dec, NULL, 1, ld, &maps);
    const char **sl = labels(v, src, ls), **dl = labels(v, dec, ld);
    const tx_attn_view views[] = {
        {"encoder_self", "encoder self-attention", maps.enc_self,
         dec_only ? 0 : mc->encoder_layers, sl, sl},
        {"decoder_self", "decoder self-attention", maps.dec_self, mc->decoder_layers, dl, dl},
        {"cross", "cross-attention (decoder queries, source keys)", maps.cross,
         dec_only ? 0 : mc->decoder_layers, dl, sl}};
    int rc = TX_OK;
    for (int i = 0; !rc && i < 3; i++) rc = tx_draw_attention(&views[i], mc->heads, cell, dir, err);
    labels_free(sl);
    labels_free(dl);
    return rc;
}

int tx_cmd_attention(int argc, char **argv) {
    const char *path = NULL, *input = NULL, *target = NULL, *dir = NULL;
    int cell = 24;
    const tx_arg args[] = {{"input", TX_ARG_STR, &input, 0, 0},
                           {"target", TX_ARG_STR, &target, 0, 0},
                           {"out", TX_ARG_STR, &dir, 0, 0},
                           {"cell", TX_ARG_INT, &cell, 8, 256}};
    const char **pos[] = {&path};
    int rc = tx_cli_parse(usage, argc, argv, args, 4, pos, 1);
    if (rc) return rc < 0 ? 0 : rc;
    if (!input || !dir) {
        fprintf(stderr, "attention: %s is required (see --help)\n", input ? "--out" : "--input");
        return 2;
    }
    tx_tool tool;
    if (tx_tool_open(&tool, "attention", path)) return 2;
    tx_err err;
    int *src = NULL, *dec = NULL, ls, ld;
    if (tokens(&tool, input, target, &src, &ls, &dec, &ld, &err)) {
        fprintf(stderr, "attention: %s: %s\n", target ? "--input/--target" : "--input", err.msg);
        rc = 2;
    } else if (mkdir(dir, 0777) && errno != EEXIST) {
        fprintf(stderr, "attention: %s: cannot create directory: %s\n", dir, strerror(errno));
        rc = 1;
    } else if (draw(&tool, src, ls, dec, ld, cell, dir, &err)) {
        fprintf(stderr, "attention: %s\n", err.msg);
        rc = 1;
    }
    free(src);
    free(dec);
    tx_tool_close(&tool);
    return rc;
}
