/* optim.c: Adam, AdamW and SGD steps, gradient clipping and the schedules. */
#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void tx_optim_init(tx_optim *o, const tx_optim_config *cfg, const tx_params *p) {
    tx_optim_init_shard(o, cfg, p, 0, p->size);
}

void tx_optim_init_shard(tx_optim *o, const tx_optim_config *cfg, const tx_params *p,
                         size_t lo, size_t hi) {
    TX_ASSERT(cfg->name == TX_OPT_ADAM || cfg->name == TX_OPT_ADAMW ||
                  cfg->name == TX_OPT_SGD,
              "tx_optim_init: unknown optimizer %d", cfg->name);
    TX_ASSERT(lo <= hi && hi <= p->size, "tx_optim_init: shard [%zu, %zu) of %zu", lo, hi,
              p->size);
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
    o->size = p->size;
    o->lo = lo;
    o->hi = hi;
    size_t size = hi - lo;
    /* Adjacent tensors with the same rule share one span. */
    o->spans = tx_malloc(((size_t)p->n + 1) * sizeof *o->spans);
    size_t at = 0;
    for (int i = 0; i < p->n; i++) {
        int decay = cfg->decay == TX_DECAY_ALL || p->list[i]->ndim >= 2;
        if (o->nspans && o->spans[o->nspans - 1].decay == decay)
            o->spans[o->nspans - 1].hi += p->list[i]->size;
        else
            o->spans[o->nspans++] = (tx_optim_span){at, at + p->list[i]->size, decay};
        at += p->list[i]->size;
    }
    /* Only the shard's part of each span is updated here: clip them once. */
    int kept = 0;
    for (int i = 0; i < o->nspans; i++) {
        tx_optim_span sp = o->spans[i];
        sp.lo = sp.lo > lo ? sp.lo : lo;
        sp.hi = sp.hi < hi ? sp.hi : hi;
        if (sp.lo < sp.hi) o->spans[kept++] = sp;
    }
    o->nspans = kept;
    o->m = tx_calloc(size, sizeof(tx_real));
    if (cfg->name != TX_OPT_SGD) o->v = tx_calloc(size, sizeof(tx_real));
}

void tx_optim_free(tx_optim *o) {
    free(o->m);
    free(o->v);
    free(o->spans);
    memset(o, 0, sizeof *o);
}

/* Per element in double, in torch's order of operations (so the float build
 * rounds only when storing): denom = sqrt(v)/sqrt(1-b2^t) + eps,
 * p -= lr/(1-b1^t) · m/denom. AdamW first shrinks p by 1 - lr·wd instead of
 * adding wd·p to the gradient. wd is 0 on spans without decay. */
static void adam_span(const tx_optim *o, tx_params *p, double lr, const tx_optim_span *sp) {
    const tx_optim_config *c = &o->cfg;
    const int decoupled = c->name == TX_OPT_ADAMW;
    const double wd = sp->decay ? c->weight_decay : 0;
    const double b1 = c->beta1, b2 = c->beta2, eps = c->eps;
    const double l2 = decoupled ? 0 : wd;
    const double shrink = decoupled ? 1 - lr * wd : 1;
    const double step_size = lr / (1 - pow(b1, (double)o->t));
    const double bc2_sqrt = sqrt(1 - pow(b2, (double)o->t));
    /* restrict: four distinct arrays, which lets the loop vectorise; the
     * moments are indexed from the shard's start */
    const size_t n = sp->hi - sp->lo;
    tx_real *restrict w = p->data + sp->lo, *restrict m = o->m + (sp->lo - o->lo),
                      *restrict v = o->v + (sp->lo - o->lo);
    const tx_real *restrict dw = p->grad + sp->lo;
#pragma omp parallel for schedule(static) if (n >= TX_PAR_MIN_ELEMS)
    for (size_t i = 0; i < n; i++) {
        double wi = (double)w[i] * shrink;
        double g = (double)dw[i] + l2 * wi;
        double mi = b1 * m[i] + (1 - b1) * g;
        double vi = b2 * v[i] + (1 - b2) * g * g;
        m[i] = (tx_real)mi;
        v[i] = (tx_real)vi;
        w[i] = (tx_real)(wi - step_size * mi / (sqrt(vi) / bc2_sqrt + eps));
    }
}

/* torch.optim.SGD: without momentum p -= lr·g; with it buf = mom·buf + g,
 * where the zeroed buffer makes the first step buf = g as in torch. */
static void sgd_span(const tx_optim *o, tx_params *p, double lr, const tx_optim_span *sp) {
    const double mom = o->cfg.beta1, wd = sp->decay ? o->cfg.weight_decay : 0;
    const size_t n = sp->hi - sp->lo;
    tx_real *restrict w = p->data + sp->lo, *restrict buf = o->m + (sp->lo - o->lo);
    const tx_real *restrict dw = p->grad + sp->lo;
#pragma omp parallel for schedule(static) if (n >= TX_PAR_MIN_ELEMS)
    for (size_t i = 0; i < n; i++) {
        double g = (double)dw[i] + wd * (double)w[i];
        if (mom != 0) {
            g = mom * (double)buf[i] + g;
            buf[i] = (tx_real)g;
        }
        w[i] = (tx_real)((double)w[i] - lr * g);
    }
}

void tx_optim_step(tx_optim *o, tx_params *p, double lr) {
    TX_ASSERT(p->size == o->size,
              "tx_optim_step: optimizer made for %zu elements, params have %zu",
              o->size, p->size);
    o->t++;
    for (int i = 0; i < o->nspans; i++) {
        if (o->cfg.name == TX_OPT_SGD) sgd_span(o, p, lr, &o->spans[i]);
        else adam_span(o, p, lr, &o->spans[i]);
    }
}

/* The block is cut into a fixed number of chunks, a function of the size
 * alone, so the partial sums and their in-order total are the same bits
 * whatever the thread count, and whatever processes hold the chunks. */
size_t tx_norm_chunk(size_t size) { return (size + TX_NORM_CHUNKS - 1) / TX_NORM_CHUNKS; }

#define SQ_LANES 32
void tx_grad_sq_chunks(const tx_params *p, int c0, int c1, double *sq) {
    const size_t n = p->size, chunk = tx_norm_chunk(n);
    const tx_real *g = p->grad;
#pragma omp parallel for schedule(static) if (n >= TX_PAR_MIN_ELEMS)
    for (int c = c0; c < c1; c++) {
        size_t lo = (size_t)c * chunk, hi = lo + chunk < n ? lo + chunk : n, i = lo;
        /* SQ_LANES running sums, element i into sum (i - lo) mod SQ_LANES,
         * then added in lane order: a fixed order that vectorises, where one
         * running sum waited on every add */
        double lane[SQ_LANES] = {0}, s = 0;
        for (; i + SQ_LANES <= hi; i += SQ_LANES)
            for (int l = 0; l < SQ_LANES; l++) lane[l] += (double)g[i + l] * (double)g[i + l];
        for (int l = 0; i < hi; i++, l++) lane[l] += (double)g[i] * (double)g[i];
        for (int l = 0; l < SQ_LANES; l++) s += lane[l];
        sq[c - c0] = s;
    }
}

double tx_norm_of_chunks(const double *sq) {
    double sum = 0;
    for (int c = 0; c < TX_NORM_CHUNKS; c++) sum += sq[c];
    return sqrt(sum);
}

double tx_clip_factor(double norm, double max_norm) {
    const double scale = max_norm / (norm + 1e-6);
    return isfinite(norm) && scale < 1 ? scale : 1;
}

void tx_grad_scale(tx_params *p, size_t lo, size_t hi, double s) {
    if (s == 1) return;
    tx_real *dw = p->grad;
    const ptrdiff_t a = (ptrdiff_t)lo, b = (ptrdiff_t)hi;
#pragma omp parallel for schedule(static) if (hi - lo >= TX_PAR_MIN_ELEMS)
    for (ptrdiff_t i = a; i < b; i++) dw[i] = (tx_real)((double)dw[i] * s);
}

double tx_clip_grad_norm(tx_params *p, double max_norm) {
    double sq[TX_NORM_CHUNKS];
    tx_grad_sq_chunks(p, 0, TX_NORM_CHUNKS, sq);
    const double norm = tx_norm_of_chunks(sq);
    tx_grad_scale(p, 0, p->size, tx_clip_factor(norm, max_norm));
    return norm;
}

double tx_schedule_lr(const tx_optim_config *cfg, int d_model, long step) {
    TX_ASSERT(step >= 1, "tx_schedule_lr: step %ld, steps count from 1", step);
    const double lr = cfg->lr, s = (double)step, w = cfg->warmup;
    switch (cfg->schedule) {
    case TX_SCHED_CONSTANT:
        return step < cfg->warmup ? lr * s / w : lr;
    case TX_SCHED_NOAM: {
        TX_ASSERT(d_model > 0, "tx_schedule_lr: noam needs d_model > 0, got %d",
                  d_model);
        double f = 1 / sqrt(s);
        if (cfg->warmup > 0 && s * pow(w, -1.5) < f) f = s * pow(w, -1.5);
        return lr / sqrt((double)d_model) * f;
    }
    case TX_SCHED_COSINE: {
        if (step <= cfg->warmup) return lr * s / w;
        const double lo = TX_COSINE_FLOOR * lr;
        /* At the floor from total_steps on, even if warmup reaches it. */
        if (step >= cfg->total_steps) return lo;
        const double progress = (s - w) / ((double)cfg->total_steps - w);
        return lo + (lr - lo) * 0.5 * (1 + cos(M_PI * progress));
    }
    }
    TX_ASSERT(0, "tx_schedule_lr: unknown schedule %d", cfg->schedule);
}
