/* report.c: what a training run tells its user: the start, a progress line
 * per step (in place on a terminal), validations, metrics.csv, and at the end
 * the memory it used, the training curves and a few decoded examples. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "../draw/plot.h"
#include "internal.h"

double tx_train_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fmt_time(double s, char *buf, size_t n) {
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

/* ---- metrics.csv ------------------------------------------------------------ */

#define METRICS_HEADER \
    "step,lr,train_loss,grad_norm,tokens_per_s,valid_loss,valid_accuracy,elapsed_s,valid_bpc\n"

int tx_train_metrics_open(trainer *tr, tx_err *err) {
    FILE *in = tr->start > 0 ? fopen(tr->metrics, "r") : NULL;
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", tr->metrics);
    FILE *out = fopen(tmp, "w");
    if (!out) {
        if (in) fclose(in);
        return tx_error(err, TX_EIO, "%s: %s", tmp, strerror(errno));
    }
    fputs(METRICS_HEADER, out);
    char line[512];
    /* later rows belong to the part of the run being redone */
    while (in && fgets(line, sizeof line, in))
        if (line[0] >= '0' && line[0] <= '9' && atol(line) <= tr->start) fputs(line, out);
    if (in) fclose(in);
    if (fclose(out) || rename(tmp, tr->metrics)) {
        remove(tmp);
        return tx_error(err, TX_EIO, "%s: %s", tr->metrics, strerror(errno));
    }
    return TX_OK;
}

static void metrics_row(const trainer *tr) {
    FILE *f = fopen(tr->metrics, "a");
    if (!f) return; /* metrics are a convenience; the checkpoint is what matters */
    int text = tr->cfg->data.task == TX_TASK_TEXT;
    fprintf(f, "%ld,%.6g,%.6f,%.6g,%.1f,", tr->step, tr->lr, tr->loss, tr->gnorm, tr->tps);
    if (tr->evaluated) fprintf(f, "%.6f,", tr->ev.loss);
    else fprintf(f, ",");
    if (tr->evaluated && !text) fprintf(f, "%.6f", tr->ev.accuracy);
    fprintf(f, ",%.2f,", tx_train_now() - tr->t0);
    if (tr->evaluated && text) fprintf(f, "%.6f", tr->ev.bits_per_char);
    fprintf(f, "\n");
    fclose(f);
}

/* ---- the start and each step ------------------------------------------------ */

/* Rank 0 prints; with several processes each one's memory (the optimizer
 * state, and the gradient exchange's buffers, are per process). */
void tx_train_announce(trainer *tr) {
    const tx_config *cfg = tr->cfg;
    if (!tx_train_is_root(tr) || tr->opts->quiet) return;
    int N = tr->dist->size, k = cfg->train.accumulate, T = tx_get_threads();
    /* every rank's figures follow from the shards, which every rank knows */
    const double MB = sizeof(tx_real) / 1e6, mb = (double)tr->params.size * MB;
    const int moments = tr->opt.v ? 2 : 1;
    printf("tapeformer: training %s (%s), %d process%s x %d thread%s, %zu parameters\n",
           cfg->name, cfg->model.kind == TX_DECODER_ONLY ? "decoder-only" : "encoder-decoder",
           N, N > 1 ? "es" : "", T, T > 1 ? "s" : "", tr->params.size);
    if (N == 1)
        printf("memory: parameters %.2f MB, gradients %.2f MB, optimizer %.2f MB\n", mb, mb,
               moments * mb);
    for (int r = 0; N > 1 && r < N; r++)
        printf("memory of rank %d: parameters %.2f MB, gradients %.2f MB, optimizer %.2f MB "
               "(its shard of elements from %d), gradient exchange %.2f MB out and in\n",
               r, mb, mb, moments * tr->elem_count[r] * MB, tr->elem_displ[r],
               2 * (k / N) * mb);
    if (tr->start) printf("resumed from %s at step %ld\n", tr->ckpt, tr->start);
    fflush(stdout);
}

static void progress(const trainer *tr, int log) {
    const tx_config *cfg = tr->cfg;
    double el = tx_train_now() - tr->t0;
    char e[32], eta[32];
    fmt_time(el, e, sizeof e);
    long done = tr->step - tr->start;
    fmt_time(done > 0 ? el / done * (cfg->train.steps - tr->step) : 0, eta, sizeof eta);
    printf("%sstep %ld/%d  loss %.4f  lr %.2e  gnorm %.3f  %.0f tok/s  %s elapsed  ETA %s%s",
           tr->tty ? "\r" : "", tr->step, cfg->train.steps, tr->loss, tr->lr, tr->gnorm,
           tr->tps, e, eta, tr->tty ? "\033[K" : "\n");
    if (tr->tty && log) printf("\n");
}

void tx_train_report(trainer *tr) {
    const tx_train_config *t = &tr->cfg->train;
    int log = tr->step % t->log_every == 0 || tr->step == 1 || tr->evaluated;
    if (!tr->opts->quiet) {
        if (tr->step == tr->start + 1)
            printf("memory: activation arena %.2f MB\n", tr->tape.arena.high / 1e6);
        if (tr->tty || log) progress(tr, log);
        if (tr->evaluated && tr->cfg->data.task == TX_TASK_TEXT)
            printf("  validation: loss %.4f  %.4f bits/char (%d windows)\n", tr->ev.loss,
                   tr->ev.bits_per_char, tr->ev.n);
        else if (tr->evaluated)
            printf("  validation: loss %.4f  exact match %.2f%% (%d examples)\n", tr->ev.loss,
                   100 * tr->ev.accuracy, tr->ev.n);
        fflush(stdout);
    }
    if (log) metrics_row(tr);
}

/* ---- the end ------------------------------------------------------------------ */

static int same_tokens(const int *a, int na, const int *b, int nb) {
    return na == nb && !memcmp(a, b, (size_t)na * sizeof *a);
}

/* Prints up to k validation examples as "source -> output" with a verdict. */
static void show_examples(trainer *tr, int k) {
    int n = tr->data.n_valid < k ? tr->data.n_valid : k;
    if (n > TX_EVAL_BATCH) n = TX_EVAL_BATCH;
    if (n <= 0) return;
    int max_out = tr->data.max_tgt + 1;
    int *out = tx_malloc((size_t)n * max_out * sizeof *out), *len = tx_malloc((size_t)n * sizeof *len);
    tx_batch b;
    tx_batch_alloc(&b, n, tr->data.max_src, tr->data.max_tgt);
    tx_batch_fill(&b, tr->data.valid, n, tr->cfg->model.kind == TX_DECODER_ONLY);
    tx_search s = {.max_len = max_out, .beam = 1};
    tx_decode(&tr->eval_tape, &tr->model, &b, &s, &(tx_decoded){.tok = out, .len = len});
    printf("examples (held-out):\n");
    for (int j = 0; j < n; j++) {
        char text[1024];
        const tx_example *ex = &tr->data.valid[j];
        const int *got = out + (size_t)j * max_out;
        tx_vocab_decode(&tr->data.vocab, TX_TGT, got, len[j], text, sizeof text);
        int ok = same_tokens(got, len[j], ex->tgt_ids, ex->tgt_len);
        printf("  %s  ->  %s  %s\n", ex->src, text, ok ? "(correct)" : "");
        if (!ok) printf("        expected %s\n", ex->tgt);
    }
    tx_tape_reset(&tr->eval_tape);
    tx_batch_free(&b);
    free(out);
    free(len);
}

void tx_train_finish(trainer *tr) {
    const tx_config *cfg = tr->cfg;
    if (tr->opts->quiet) return;
    char e[32];
    fmt_time(tx_train_now() - tr->t0, e, sizeof e);
    printf("done: step %ld, %s, checkpoint %s\n", tr->step, e, tr->ckpt);
    /* What the process holds against what the model needs: the rest is the
     * program, its libraries, the data and the thread stacks. */
    struct rusage ru;
    int N = tr->dist->size, k = cfg->train.accumulate;
    double pbytes = (double)tr->params.size * sizeof(tx_real);
    double shard = (double)(tr->opt.hi - tr->opt.lo) * sizeof(tx_real);
    double exchange = N > 1 ? pbytes * (k / N) + shard * k : k > 1 ? pbytes : 0;
    double need = 2 * pbytes + (tr->opt.v ? 2 : 1) * shard + exchange +
                  (double)tr->tape.arena.high + (double)tr->eval_tape.arena.high;
    if (!getrusage(RUSAGE_SELF, &ru))
        printf("memory: peak resident %.1f MB, %.2fx parameters, gradients, optimizer "
               "and arenas (%.1f MB)\n", ru.ru_maxrss / 1e3, ru.ru_maxrss * 1e3 / need,
               need / 1e6);
    size_t n = (size_t)(tr->timed < TX_TIMED ? tr->timed : TX_TIMED);
    if (n) {
        printf("time: median step %.1f ms, optimizer %.1f ms", 1e3 * tx_median(tr->step_s, n),
               1e3 * tx_median(tr->opt_s, n));
        if (N > 1)
            printf(", exchanging gradients and weights %.1f ms", 1e3 * tx_median(tr->comm_s, n));
        printf(" (%s%s%zu steps)\n", N > 1 ? "rank 0, " : "", (long)n < tr->timed ? "the last " : "",
               n);
    }
    tx_err perr;
    if (tx_plot_metrics(cfg->out_dir, &perr))
        printf("warning: no training curves: %s\n", perr.msg);
    else
        printf("training curves: %s/curves.png\n", cfg->out_dir);
    show_examples(tr, tr->opts->examples);
}
