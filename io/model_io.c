/* model_io.c: opening checkpoints and exported weights for the tools. */
#include "model_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* err's message with "PATH: " in front (the parsers name only their line). */
static int prefixed(tx_err *err, int code, const char *path, const tx_err *inner) {
    return tx_error(err, code, "%s: %s", path, inner->msg);
}

/* Every stored tensor must be a parameter or (checkpoints) optimizer state,
 * so a file made for another model is not silently half-used. */
static int check_names(const tx_st_file *f, const char *path, const tx_params *p,
                       tx_err *err) {
    for (int i = 0; i < f->n; i++) {
        const char *name = f->tensors[i].name;
        if (!tx_params_find(p, name) && strncmp(name, "optimizer.", 10))
            return tx_error(err, TX_EINPUT, "%s: tensor %s: not a parameter of the model its config describes",
                            path, name);
    }
    return TX_OK;
}

static int load(tx_trained *t, const tx_st_file *f, const char *path, tx_err *err) {
    const char *fmt = tx_st_meta(f, "format");
    if (!fmt || (strcmp(fmt, TX_CHECKPOINT_FORMAT) && strcmp(fmt, TX_WEIGHTS_FORMAT)))
        return tx_error(err, TX_EINPUT, "%s: metadata format: expected '%s' or '%s', got '%s'",
                        path, TX_CHECKPOINT_FORMAT, TX_WEIGHTS_FORMAT, fmt ? fmt : "(none)");
    tx_model_info info;
    int rc = tx_checkpoint_info(f, path, &info, err);
    if (rc) return rc;
    tx_err inner;
    char origin[1100];
    snprintf(origin, sizeof origin, "%s: config", path);
    if ((rc = tx_config_load_string(&t->cfg, info.config, origin, err))) return rc;
    if ((rc = tx_vocab_from_string(&t->vocab, info.vocab, &inner)))
        return prefixed(err, rc, path, &inner);
    tx_model_config mc = t->cfg.model;
    mc.src_vocab = mc.tgt_vocab = t->vocab.size;
    if (mc.positions == TX_POS_LEARNED) {
        /* The trainer grows max_len to the data's longest sequence, and the
         * table's rows are the one record of what it chose. */
        const tx_st_tensor *pos = tx_st_get(f, "tgt_pos.weight");
        if (!pos || pos->ndim != 2 || pos->shape[0] < 1 || pos->shape[0] > 1 << 20)
            return tx_error(err, TX_EINPUT,
                            "%s: tensor tgt_pos.weight: expected a [max_len, d_model] table (learned positions)",
                            path);
        mc.max_len = (int)pos->shape[0];
    }
    if ((rc = tx_model_build(&t->model, &mc, &t->params, &inner)))
        return prefixed(err, rc, path, &inner);
    t->cfg.model = mc;
    /* Shapes first: a config describing some other (maybe huge) model is
     * refused before its parameters are allocated. */
    if ((rc = tx_checkpoint_check(f, path, &t->params, err))) return rc;
    tx_params_alloc(&t->params);
    if ((rc = check_names(f, path, &t->params, err)) ||
        (rc = tx_checkpoint_restore(f, path, &t->params, NULL, NULL, err)))
        return rc;
    t->info = info;
    t->info.config = tx_strdup(info.config);
    t->info.vocab = tx_strdup(info.vocab);
    return TX_OK;
}

int tx_trained_load(tx_trained *t, const char *path, tx_err *err) {
    memset(t, 0, sizeof *t);
    tx_st_file f;
    int rc = tx_st_read(path, &f, err);
    if (rc) return rc;
    rc = load(t, &f, path, err);
    tx_st_free(&f);
    if (rc) tx_trained_free(t);
    return rc;
}

void tx_trained_free(tx_trained *t) {
    tx_vocab_free(&t->vocab);
    tx_params_free(&t->params);
    free((char *)t->info.config);
    free((char *)t->info.vocab);
    memset(t, 0, sizeof *t);
}

int tx_trained_room(const tx_trained *t, int src_len) {
    const tx_model_config *mc = &t->cfg.model;
    if (mc->positions != TX_POS_LEARNED) return mc->max_len;
    return mc->kind == TX_DECODER_ONLY ? mc->max_len - src_len : mc->max_len;
}

int tx_trained_example(const tx_trained *t, const char *src, const char *tgt,
                       tx_example *ex, int *ids, int cap, tx_err *err) {
    memset(ex, 0, sizeof *ex);
    int ls = tx_vocab_encode(&t->vocab, TX_SRC, src, ids, cap);
    int lt = tgt ? tx_vocab_encode(&t->vocab, TX_TGT, tgt, ids + (ls < cap ? ls : cap),
                                   ls < cap ? cap - ls : 0)
                 : 0;
    const tx_model_config *mc = &t->cfg.model;
    int room = tx_trained_room(t, ls), learned = mc->positions == TX_POS_LEARNED;
    if (ls == 0) return tx_error(err, TX_EINPUT, "empty source");
    if (ls + lt > cap)
        return tx_error(err, TX_EINPUT, "source and target have %d tokens, more than %d",
                        ls + lt, cap);
    if (learned && (room < 1 || ls > mc->max_len))
        return tx_error(err, TX_EINPUT,
                        "source has %d tokens, the model's positions allow at most %d", ls,
                        mc->kind == TX_DECODER_ONLY ? mc->max_len - 1 : mc->max_len);
    if (learned && tgt && lt + 1 > room)
        return tx_error(err, TX_EINPUT,
                        "target has %d tokens, the model's positions allow at most %d after this source",
                        lt, room - 1);
    ex->src = src;
    ex->tgt = tgt ? tgt : "";
    ex->src_ids = ids;
    ex->tgt_ids = ids + ls;
    ex->src_len = ls;
    ex->tgt_len = lt;
    return TX_OK;
}
