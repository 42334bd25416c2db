/* train.c: the training loop. One optimizer step = `accumulate` micro-batches
 * whose losses are weighted by their share of the step's target tokens, so k
 * micro-batches of B give the update of one batch of k·B. Dropout keys come
 * from (seed, step, micro-batch) and the data stream's position is saved, so
 * a run resumed from a checkpoint continues bit for bit. */
#include "train.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "decode.h"
#include "plot.h"

typedef struct trainer {
    const tx_config *cfg;
    const tx_train_opts *opts;
    tx_data data;
    tx_model model;
    tx_params params;
    tx_optim opt;
    tx_tape tape, eval_tape;
    tx_batch *micro;     /* [accumulate] */
    tx_batch vbatch;
    int *dec_out, *dec_len; /* [TX_EVAL_BATCH · max_out], [TX_EVAL_BATCH] */
    int max_out;
    char *config_text, *vocab_text;
    char ckpt[1024], metrics[1024];
    int tty;
    long start;   /* step this run started from */
    double t0;
} trainer;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fmt_time(double s, char *buf, size_t n) {
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

static int mkdirs(const char *dir, tx_err *err) {
    char path[1024];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1;; p++) {
        int end = *p == 0;
        if (*p == '/' || end) {
            *p = 0;
            if (mkdir(path, 0777) && errno != EEXIST)
                return tx_error(err, TX_EIO, "%s: cannot create directory: %s",
                                path, strerror(errno));
            if (end) return TX_OK;
            *p = '/';
        }
    }
}

/* ---- evaluation ----------------------------------------------------------- */

static int same_tokens(const int *a, int na, const int *b, int nb) {
    return na == nb && !memcmp(a, b, (size_t)na * sizeof *a);
}

/* Prints up to k validation examples as "source → output" with a verdict. */
static void show_examples(trainer *tr, int k) {
    int n = tr->data.n_valid < k ? tr->data.n_valid : k;
    if (n > TX_EVAL_BATCH) n = TX_EVAL_BATCH;
    if (n <= 0) return;
    tx_batch *b = &tr->vbatch;
    tx_batch_fill(b, tr->data.valid, n, tr->cfg->model.kind == TX_DECODER_ONLY);
    tx_decode_greedy(&tr->eval_tape, &tr->model, b, tr->max_out, tr->dec_out, tr->dec_len);
    printf("examples (held-out):\n");
    for (int j = 0; j < n; j++) {
        char text[1024];
        const tx_example *ex = &tr->data.valid[j];
        const int *got = tr->dec_out + (size_t)j * tr->max_out;
        tx_vocab_decode(&tr->data.vocab, TX_TGT, got, tr->dec_len[j], text, sizeof text);
        int ok = same_tokens(got, tr->dec_len[j], ex->tgt_ids, ex->tgt_len);
        printf("  %s  ->  %s  %s\n", ex->src, text, ok ? "(correct)" : "");
        if (!ok) printf("        expected %s\n", ex->tgt);
    }
    tx_tape_reset(&tr->eval_tape);
}

/* ---- metrics.csv ---------------------------------------------------------- */

#define METRICS_HEADER "step,lr,train_loss,grad_norm,tokens_per_s,valid_loss,valid_accuracy,elapsed_s\n"

/* Fresh run: a new file with the header. Resume: keep the rows up to `step`
 * (later ones belong to the part of the run being redone). */
static int metrics_open(trainer *tr, long step, tx_err *err) {
    FILE *in = step > 0 ? fopen(tr->metrics, "r") : NULL;
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", tr->metrics);
    FILE *out = fopen(tmp, "w");
    if (!out) {
        if (in) fclose(in);
        return tx_error(err, TX_EIO, "%s: %s", tmp, strerror(errno));
    }
    fputs(METRICS_HEADER, out);
    char line[512];
    while (in && fgets(line, sizeof line, in))
        if (line[0] >= '0' && line[0] <= '9' && atol(line) <= step) fputs(line, out);
    if (in) fclose(in);
    if (fclose(out) || rename(tmp, tr->metrics)) {
        remove(tmp);
        return tx_error(err, TX_EIO, "%s: %s", tr->metrics, strerror(errno));
    }
    return TX_OK;
}

static void metrics_row(trainer *tr, long step, double lr, double loss, double gnorm,
                        double tps, const tx_eval_result *ev) {
    FILE *f = fopen(tr->metrics, "a");
    if (!f) return; /* metrics are a convenience; the checkpoint is what matters */
    fprintf(f, "%ld,%.6g,%.6f,%.6g,%.1f,", step, lr, loss, gnorm, tps);
    if (ev) fprintf(f, "%.6f,%.6f", ev->loss, ev->accuracy);
    else fprintf(f, ",");
    fprintf(f, ",%.2f\n", now() - tr->t0);
    fclose(f);
}

/* ---- set-up and teardown -------------------------------------------------- */

static int save(trainer *tr, long step, tx_err *err) {
    tx_run_state st = {.step = step};
    tx_data_get_pos(&tr->data, st.data_pos);
    return tx_checkpoint_save(tr->ckpt, &tr->params, &tr->opt, &st, tr->config_text,
                              tr->vocab_text, err);
}

static void teardown(trainer *tr) {
    for (int i = 0; tr->micro && i < tr->cfg->train.accumulate; i++) tx_batch_free(&tr->micro[i]);
    free(tr->micro);
    tx_batch_free(&tr->vbatch);
    free(tr->dec_out);
    free(tr->dec_len);
    free(tr->config_text);
    free(tr->vocab_text);
    tx_tape_free(&tr->tape);
    tx_tape_free(&tr->eval_tape);
    tx_optim_free(&tr->opt);
    tx_params_free(&tr->params);
    tx_data_free(&tr->data);
}

static int setup(trainer *tr, long *start, tx_err *err) {
    const tx_config *cfg = tr->cfg;
    int rc;
    tx_set_threads(cfg->train.threads);
    if ((rc = tx_data_open(&tr->data, &cfg->data, err))) return rc;
    tx_model_config mc = cfg->model;
    mc.src_vocab = mc.tgt_vocab = tr->data.vocab.size;
    int need = mc.kind == TX_DECODER_ONLY ? tr->data.max_src + tr->data.max_tgt + 1
                                          : (tr->data.max_src > tr->data.max_tgt + 1
                                                 ? tr->data.max_src
                                                 : tr->data.max_tgt + 1);
    if (mc.max_len < need) mc.max_len = need;
    if ((rc = tx_model_build(&tr->model, &mc, &tr->params, err))) return rc;
    tx_params_alloc(&tr->params);
    tx_rng rng;
    tx_rng_seed(&rng, cfg->train.seed);
    tx_params_init(&tr->params, &rng);
    tx_optim_config oc = cfg->optim;
    oc.total_steps = cfg->train.steps;
    tx_optim_init(&tr->opt, &oc, tr->params.size);
    tx_tape_init(&tr->tape);
    tx_tape_init(&tr->eval_tape);
    int k = cfg->train.accumulate;
    tr->micro = calloc((size_t)k, sizeof *tr->micro);
    TX_ASSERT(tr->micro, "train: out of memory");
    for (int i = 0; i < k; i++)
        tx_batch_alloc(&tr->micro[i], cfg->train.batch_size, tr->data.max_src, tr->data.max_tgt);
    tx_batch_alloc(&tr->vbatch, TX_EVAL_BATCH, tr->data.max_src, tr->data.max_tgt);
    tr->max_out = tr->data.max_tgt + 1;
    tr->dec_out = malloc((size_t)TX_EVAL_BATCH * tr->max_out * sizeof *tr->dec_out);
    tr->dec_len = malloc(TX_EVAL_BATCH * sizeof *tr->dec_len);
    TX_ASSERT(tr->dec_out && tr->dec_len, "train: out of memory");
    size_t n = 1 << 16;
    tr->config_text = malloc(n);
    TX_ASSERT(tr->config_text, "train: out of memory");
    tx_config_write(cfg, tr->config_text, n);
    tr->vocab_text = tx_vocab_to_string(&tr->data.vocab);
    if ((rc = mkdirs(cfg->out_dir, err))) return rc;
    snprintf(tr->ckpt, sizeof tr->ckpt, "%s/checkpoint.safetensors", cfg->out_dir);
    snprintf(tr->metrics, sizeof tr->metrics, "%s/metrics.csv", cfg->out_dir);
    *start = 0;
    if (tr->opts->resume) {
        tx_st_file f;
        tx_run_state st;
        tx_err inner;
        if (access(tr->ckpt, F_OK))
            return tx_error(err, TX_EINPUT, "%s: no checkpoint to resume from", tr->ckpt);
        if ((rc = tx_st_read(tr->ckpt, &f, err))) return rc;
        rc = tx_checkpoint_restore(&f, tr->ckpt, &tr->params, &tr->opt, &st, err);
        tx_st_free(&f);
        if (rc) return rc;
        if ((rc = tx_data_set_pos(&tr->data, st.data_pos, &inner)))
            return tx_error(err, rc, "%s: %s", tr->ckpt, inner.msg);
        *start = st.step;
    }
    return metrics_open(tr, *start, err);
}

/* ---- the loop ------------------------------------------------------------- */

/* Dropout key of micro-batch i of a step: a function of the run's seed only. */
static uint64_t step_seed(uint64_t seed, long step, int i) {
    return seed * 0x9e3779b97f4a7c15ULL ^ ((uint64_t)step << 16 | (uint64_t)i);
}

static int count_targets(const tx_batch *b) {
    int n = 0;
    for (int j = 0; j < b->B * b->Tt; j++) n += b->tgt_out[j] != TX_PAD;
    return n;
}

static int count_inputs(const tx_batch *b) {
    int n = 0;
    for (int j = 0; j < b->B; j++) n += b->tgt_len[j] + (b->decoder_only ? 0 : b->src_len[j]);
    return n;
}

/* One optimizer step; returns the token-weighted mean loss. */
static double train_step(trainer *tr, long step, double *gnorm, double *lr, int *tokens) {
    const tx_config *cfg = tr->cfg;
    int k = cfg->train.accumulate, total = 0, dec_only = cfg->model.kind == TX_DECODER_ONLY;
    for (int i = 0; i < k; i++) {
        tx_data_next_batch(&tr->data, &tr->micro[i], cfg->train.batch_size, dec_only);
        total += count_targets(&tr->micro[i]);
        *tokens += count_inputs(&tr->micro[i]);
    }
    tx_params_zero_grad(&tr->params);
    double loss_sum = 0;
    tx_tape *tp = &tr->tape;
    for (int i = 0; i < k; i++) {
        tx_batch *b = &tr->micro[i];
        int n = count_targets(b);
        tx_tape_reset(tp);
        tp->training = 1;
        tp->seed = step_seed(cfg->train.seed, step, i);
        tx_tensor *loss = tx_model_loss(tp, &tr->model, b->src, b->src_len, b->Ts,
                                        b->tgt_in, b->tgt_out, b->tgt_len, b->Tt, b->B,
                                        (tx_real)cfg->train.label_smoothing);
        loss_sum += loss->data[0] * n;
        if (n) tx_tape_backward(tp, tx_scale(tp, loss, (tx_real)((double)n / total)));
    }
    tx_tape_reset(tp);
    double clip = cfg->optim.clip_norm > 0 ? cfg->optim.clip_norm : INFINITY;
    *gnorm = tx_clip_grad_norm(&tr->params, clip);
    *lr = tx_schedule_lr(&tr->opt.cfg, cfg->model.d_model, step);
    double loss = total ? loss_sum / total : 0;
    if (isfinite(loss) && isfinite(*gnorm)) tx_optim_step(&tr->opt, &tr->params, *lr);
    return loss;
}

static void progress(trainer *tr, long step, double loss, double lr, double gnorm,
                     double tps, int final) {
    const tx_config *cfg = tr->cfg;
    if (tr->opts->quiet) return;
    int log = final || step % cfg->train.log_every == 0 || step == 1;
    if (!tr->tty && !log) return;
    double el = now() - tr->t0;
    char e[32], eta[32];
    fmt_time(el, e, sizeof e);
    long done = step - tr->start;
    fmt_time(done > 0 ? el / done * (cfg->train.steps - step) : 0, eta, sizeof eta);
    printf("%sstep %ld/%d  loss %.4f  lr %.2e  gnorm %.3f  %.0f tok/s  %s elapsed  ETA %s%s",
           tr->tty ? "\r" : "", step, cfg->train.steps, loss, lr, gnorm, tps, e, eta,
           tr->tty ? "\033[K" : "\n");
    if (tr->tty && log) printf("\n");
    fflush(stdout);
}

int tx_train(const tx_config *cfg, const tx_train_opts *opts, tx_err *err) {
    trainer tr;
    memset(&tr, 0, sizeof tr);
    tr.cfg = cfg;
    tr.opts = opts;
    tr.tty = isatty(1);
    int rc = setup(&tr, &tr.start, err);
    if (rc) {
        teardown(&tr);
        return rc;
    }
    size_t pbytes = tr.params.size * sizeof(tx_real);
    if (!opts->quiet) {
        printf("tapeformer: training %s (%s), %d threads, %zu parameters\n", cfg->name,
               cfg->model.kind == TX_DECODER_ONLY ? "decoder-only" : "encoder-decoder",
               tx_get_threads(), tr.params.size);
        printf("memory: parameters %.2f MB, gradients %.2f MB, optimizer %.2f MB\n",
               pbytes / 1e6, pbytes / 1e6, (tr.opt.v ? 2 : 1) * pbytes / 1e6);
        if (tr.start) printf("resumed from %s at step %ld\n", tr.ckpt, tr.start);
        fflush(stdout);
    }
    tr.tape.detect_anomaly = opts->detect_anomaly;
    tr.t0 = now();
    double window_t = now();
    int window_tokens = 0;
    long step = tr.start;
    tx_eval_result ev = {0};
    int stop = 0;
    while (step < cfg->train.steps && !stop) {
        step++;
        double gnorm, lr;
        double loss = train_step(&tr, step, &gnorm, &lr, &window_tokens);
        if (!isfinite(loss) || !isfinite(gnorm)) {
            char where[160] = "";
            if (tr.tape.anomaly)
                snprintf(where, sizeof where, "; first non-finite value from op '%s' (%s)",
                         tr.tape.anomaly, tr.tape.anomaly_backward ? "backward" : "forward");
            else if (!opts->detect_anomaly)
                snprintf(where, sizeof where, "; rerun with --detect-anomaly to find the op");
            double bad = isfinite(loss) ? gnorm : loss;
            rc = tx_error(err, TX_EINPUT, "step %ld: %s is %s%s; stopped, %s%s", step,
                          isfinite(loss) ? "gradient norm" : "loss",
                          isnan(bad) ? "NaN" : bad > 0 ? "inf" : "-inf", where,
                          access(tr.ckpt, F_OK) ? "no checkpoint written yet" : "kept the last checkpoint ",
                          access(tr.ckpt, F_OK) ? "" : tr.ckpt);
            break;
        }
        double dt = now() - window_t, tps = dt > 0 ? window_tokens / dt : 0;
        if (dt > 2) window_t = now(), window_tokens = 0;
        int eval_now = step % cfg->train.eval_every == 0 || step == cfg->train.steps;
        if (eval_now) ev = tx_decode_evaluate(&tr.eval_tape, &tr.model, tr.data.valid,
                                              tr.data.n_valid);
        if (step == 1 && !opts->quiet)
            printf("memory: activation arena %.2f MB\n", tr.tape.arena.high / 1e6);
        progress(&tr, step, loss, lr, gnorm, tps, eval_now);
        if (eval_now && !opts->quiet) {
            printf("  validation: loss %.4f  exact match %.2f%% (%d examples)\n", ev.loss,
                   100 * ev.accuracy, ev.n);
            fflush(stdout);
        }
        if (step % cfg->train.log_every == 0 || eval_now || step == 1)
            metrics_row(&tr, step, lr, loss, gnorm, tps, eval_now ? &ev : NULL);
        int reached = eval_now && cfg->train.target_accuracy > 0 &&
                      ev.accuracy >= cfg->train.target_accuracy;
        int interrupted = opts->interrupted && *opts->interrupted;
        int at_stop = opts->stop_at > 0 && step >= opts->stop_at;
        stop = reached || interrupted || at_stop;
        if (stop || step == cfg->train.steps ||
            (cfg->train.checkpoint_every > 0 && step % cfg->train.checkpoint_every == 0))
            if ((rc = save(&tr, step, err))) break;
        if (reached && !opts->quiet)
            printf("reached %.2f%% exact match at step %ld (target %.2f%%)\n",
                   100 * ev.accuracy, step, 100 * cfg->train.target_accuracy);
        if (interrupted) {
            printf("\ninterrupted: checkpoint saved at step %ld; continue with --resume\n", step);
            rc = TX_EINTERRUPTED;
        }
    }
    if (rc == TX_OK && !opts->quiet) {
        char e[32];
        fmt_time(now() - tr.t0, e, sizeof e);
        printf("done: step %ld, %s, checkpoint %s\n", step, e, tr.ckpt);
        /* What the process holds against what the model needs: the rest is
         * the program, its libraries, the data and the thread stacks. */
        struct rusage ru;
        double need = (double)(tr.opt.v ? 4 : 3) * pbytes + (double)tr.tape.arena.high +
                      (double)tr.eval_tape.arena.high;
        if (!getrusage(RUSAGE_SELF, &ru))
            printf("memory: peak resident %.1f MB, %.2fx parameters, gradients, optimizer "
                   "and arenas (%.1f MB)\n", ru.ru_maxrss / 1e3, ru.ru_maxrss * 1e3 / need,
                   need / 1e6);
        tx_err perr;
        if (tx_plot_metrics(cfg->out_dir, &perr))
            printf("warning: no training curves: %s\n", perr.msg);
        else
            printf("training curves: %s/curves.png\n", cfg->out_dir);
        show_examples(&tr, opts->examples);
    }
    teardown(&tr);
    return rc;
}
