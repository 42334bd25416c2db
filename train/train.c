/* train.c: the training loop. One optimizer step = `accumulate` micro-batches
 * whose losses are weighted by their share of the step's target tokens, so k
 * micro-batches of B give the update of one batch of k·B. Dropout keys come
 * from (seed, step, micro-batch) and the data stream's position is saved, so
 * a run resumed from a checkpoint continues bit for bit. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/gemm.h"
#include "../io/checkpoint.h"
#include "internal.h"

/* ---- set-up and teardown ------------------------------------------------------ */

static int mkdirs(const char *dir, tx_err *err) {
    char path[1024];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1;; p++) {
        int end = *p == 0;
        if (*p == '/' || end) {
            *p = 0;
            if (mkdir(path, 0777) && errno != EEXIST)
                return tx_error(err, TX_EIO, "%s: cannot create directory: %s", path,
                                strerror(errno));
            if (end) return TX_OK;
            *p = '/';
        }
    }
}

/* One run per output directory: OUT/train.lock stays locked while this
 * process lives (the kernel drops the lock when it ends, however it ends)
 * and is removed at its end. A lock taken on a file another run removed
 * meanwhile is taken again on the new one. */
static int lock_dir(trainer *tr, tx_err *err) {
    snprintf(tr->lock, sizeof tr->lock, "%s/train.lock", tr->cfg->out_dir);
    for (;;) {
        tr->lock_fd = open(tr->lock, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (tr->lock_fd < 0)
            return tx_error(err, TX_EIO, "%s: cannot open: %s", tr->lock, strerror(errno));
        if (flock(tr->lock_fd, LOCK_EX | LOCK_NB)) {
            char pid[32] = "";
            ssize_t n = pread(tr->lock_fd, pid, sizeof pid - 1, 0);
            pid[n > 0 ? n : 0] = 0;
            pid[strcspn(pid, "\n")] = 0;
            close(tr->lock_fd);
            tr->lock_fd = -1; /* not ours: leave the file alone */
            return tx_error(err, TX_EINPUT,
                            "%s: another training run (process %s) is writing this "
                            "directory; wait for it or set another [output] dir",
                            tr->cfg->out_dir, *pid ? pid : "?");
        }
        struct stat held, now;
        if (!fstat(tr->lock_fd, &held) && !stat(tr->lock, &now) && held.st_ino == now.st_ino)
            break;
        close(tr->lock_fd); /* removed under us: lock the new file */
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(tr->lock_fd, 0) || pwrite(tr->lock_fd, pid, (size_t)n, 0) != n)
        return tx_error(err, TX_EIO, "%s: cannot write: %s", tr->lock, strerror(errno));
    return TX_OK;
}

static void unlock_dir(trainer *tr) {
    if (tr->lock_fd < 0) return;
    unlink(tr->lock); /* still ours: removed before the lock is released */
    close(tr->lock_fd);
}

/* MemAvailable of /proc/meminfo in bytes, 0 if unknown. */
static double memory_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    double kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb * 1024;
}

/* Refuses, before anything is allocated, a model whose parameters,
 * gradients, optimizer state and activations cannot fit in memory. */
static int check_memory(const trainer *tr, const tx_model_config *mc, tx_err *err) {
    double p = (double)tr->params.size * sizeof(tx_real);
    double opt = (tr->cfg->optim.name == TX_OPT_SGD ? 1 : 2) * p;
    int Tt = mc->kind == TX_DECODER_ONLY ? tr->data.max_src + tr->data.max_tgt + 1
                                         : tr->data.max_tgt + 1;
    double act = tx_model_activation_bytes(mc, tr->cfg->train.batch_size, tr->data.max_src, Tt);
    double need = 2 * p + opt + act, avail = memory_available();
    if (avail > 0 && need > avail)
        return tx_error(err, TX_EINPUT,
                        "the model needs %.3g GB (parameters %.3g GB, gradients %.3g GB, "
                        "optimizer %.3g GB, activations about %.3g GB), more than the %.3g GB "
                        "of memory available; make it or its batches smaller",
                        need / 1e9, p / 1e9, p / 1e9, opt / 1e9, act / 1e9, avail / 1e9);
    return TX_OK;
}

static int resume(trainer *tr, tx_err *err) {
    tx_st_file f;
    tx_run_state st;
    tx_err inner;
    int rc;
    if (access(tr->ckpt, F_OK))
        return tx_error(err, TX_EINPUT, "%s: no checkpoint to resume from", tr->ckpt);
    if ((rc = tx_st_read(tr->ckpt, &f, err))) return rc;
    rc = tx_checkpoint_restore(&f, tr->ckpt, &tr->params, &tr->opt, &st, err);
    tx_st_free(&f);
    if (rc) return rc;
    if ((rc = tx_data_set_pos(&tr->data, st.data_pos, &inner)))
        return tx_error(err, rc, "%s: %s", tr->ckpt, inner.msg);
    tr->start = tr->step = st.step;
    return TX_OK;
}

static int setup(trainer *tr, tx_err *err) {
    const tx_config *cfg = tr->cfg;
    int rc;
    tx_set_threads(cfg->train.threads);
    if (cfg->model.precision == TX_BF16) {
        if (!tx_bf16_supported())
            return tx_error(err, TX_EINPUT,
                            "[model] precision = bf16: %s; use precision = float32",
                            sizeof(tx_real) != 4 ? "this is the double-precision build"
                                                 : "this CPU has no AVX-512 BF16 (checked at run time)");
        tx_gemm_use_bf16(1);
    }
    if ((rc = tx_data_open(&tr->data, &cfg->data, err))) return rc;
    tx_model_config mc = cfg->model;
    mc.src_vocab = mc.tgt_vocab = tr->data.vocab.size;
    int need = mc.kind == TX_DECODER_ONLY ? tr->data.max_src + tr->data.max_tgt + 1
                                          : (tr->data.max_src > tr->data.max_tgt + 1
                                                 ? tr->data.max_src
                                                 : tr->data.max_tgt + 1);
    if (mc.max_len < need) mc.max_len = need;
    if ((rc = tx_model_build(&tr->model, &mc, &tr->params, err)) ||
        (rc = check_memory(tr, &mc, err)))
        return rc;
    tx_params_alloc(&tr->params);
    tx_rng rng;
    tx_rng_seed(&rng, cfg->train.seed);
    tx_params_init(&tr->params, &rng);
    tx_optim_init(&tr->opt, &cfg->optim, &tr->params);
    int k = cfg->train.accumulate;
    tr->micro = tx_calloc((size_t)k, sizeof *tr->micro);
    for (int i = 0; i < k; i++)
        tx_batch_alloc(&tr->micro[i], cfg->train.batch_size, tr->data.max_src, tr->data.max_tgt);
    size_t n = (size_t)tx_config_write(cfg, NULL, 0) + 1;
    tr->config_text = tx_malloc(n);
    tx_config_write(cfg, tr->config_text, n);
    tr->vocab_text = tx_vocab_to_string(&tr->data.vocab);
    if ((rc = mkdirs(cfg->out_dir, err)) || (rc = lock_dir(tr, err))) return rc;
    snprintf(tr->ckpt, sizeof tr->ckpt, "%s/checkpoint.safetensors", cfg->out_dir);
    snprintf(tr->metrics, sizeof tr->metrics, "%s/metrics.csv", cfg->out_dir);
    if (tr->opts->resume && (rc = resume(tr, err))) return rc;
    return tx_train_metrics_open(tr, err);
}

static void teardown(trainer *tr) {
    for (int i = 0; tr->micro && i < tr->cfg->train.accumulate; i++) tx_batch_free(&tr->micro[i]);
    free(tr->micro);
    free(tr->config_text);
    free(tr->vocab_text);
    tx_tape_free(&tr->tape);
    tx_tape_free(&tr->eval_tape);
    tx_optim_free(&tr->opt);
    tx_params_free(&tr->params);
    tx_data_free(&tr->data);
    unlock_dir(tr);
    if (tr->cfg->model.precision == TX_BF16 && tx_bf16_supported()) tx_gemm_use_bf16(0);
}

/* ---- one step ------------------------------------------------------------------- */

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

/* One optimizer step: tr->loss (token-weighted mean), gnorm and lr. The
 * update is skipped when the loss or the gradient is not finite. */
static void train_step(trainer *tr) {
    const tx_config *cfg = tr->cfg;
    int k = cfg->train.accumulate, total = 0, dec_only = cfg->model.kind == TX_DECODER_ONLY;
    long step = ++tr->step;
    for (int i = 0; i < k; i++) {
        tx_data_next_batch(&tr->data, &tr->micro[i], cfg->train.batch_size, dec_only);
        total += count_targets(&tr->micro[i]);
        tr->window_tokens += count_inputs(&tr->micro[i]);
    }
    /* no zeroing: the first backward contribution to each gradient assigns */
    tx_params_grad_begin(&tr->params);
    double loss_sum = 0;
    tx_tape *tp = &tr->tape;
    for (int i = 0; i < k; i++) {
        tx_batch *b = &tr->micro[i];
        int n = count_targets(b);
        tx_tape_reset(tp);
        tp->training = 1;
        tp->seed = step_seed(cfg->train.seed, step, i);
        tx_tensor *loss = tx_model_loss(tp, &tr->model, b->src, b->src_len, b->Ts, b->tgt_in,
                                        b->tgt_out, b->tgt_len, b->Tt, b->B,
                                        (tx_real)cfg->train.label_smoothing);
        loss_sum += loss->data[0] * n;
        if (n) tx_tape_backward(tp, tx_scale(tp, loss, (tx_real)((double)n / total)));
    }
    tx_tape_reset(tp);
    tx_params_grad_end(&tr->params);
    tr->gnorm = tx_clip_grad_norm(&tr->params, cfg->optim.clip_norm > 0 ? cfg->optim.clip_norm
                                                                        : INFINITY);
    tr->lr = tx_schedule_lr(&tr->opt.cfg, cfg->model.d_model, step);
    tr->loss = total ? loss_sum / total : 0;
    if (isfinite(tr->loss) && isfinite(tr->gnorm)) tx_optim_step(&tr->opt, &tr->params, tr->lr);
    double dt = tx_train_now() - tr->window_t;
    tr->tps = dt > 0 ? tr->window_tokens / dt : 0;
    if (dt > 2) tr->window_t = tx_train_now(), tr->window_tokens = 0;
}

/* A NaN or inf stops the run before the update, naming the step (and with
 * --detect-anomaly the op). */
static int nonfinite(const trainer *tr, tx_err *err) {
    if (isfinite(tr->loss) && isfinite(tr->gnorm)) return TX_OK;
    char where[160] = "";
    if (tr->tape.anomaly)
        snprintf(where, sizeof where, "; first non-finite value from op '%s' (%s)",
                 tr->tape.anomaly, tr->tape.anomaly_backward ? "backward" : "forward");
    else if (!tr->opts->detect_anomaly)
        snprintf(where, sizeof where, "; rerun with --detect-anomaly to find the op");
    double bad = isfinite(tr->loss) ? tr->gnorm : tr->loss;
    int none = access(tr->ckpt, F_OK) != 0;
    return tx_error(err, TX_EINPUT, "step %ld: %s is %s%s; stopped, %s%s", tr->step,
                    isfinite(tr->loss) ? "gradient norm" : "loss",
                    isnan(bad) ? "NaN" : bad > 0 ? "inf" : "-inf", where,
                    none ? "no checkpoint written yet" : "kept the last checkpoint ",
                    none ? "" : tr->ckpt);
}

/* Every eval_every steps and at the last: validation loss and exact match. */
static void validate(trainer *tr) {
    const tx_train_config *t = &tr->cfg->train;
    tr->evaluated = tr->step % t->eval_every == 0 || tr->step == t->steps;
    if (tr->evaluated && tr->cfg->data.task == TX_TASK_TEXT)
        tr->ev = tx_decode_evaluate_text(&tr->eval_tape, &tr->model, &tr->data.vocab,
                                         tr->data.text_valid, tr->data.valid_windows,
                                         tr->cfg->data.context);
    else if (tr->evaluated)
        tr->ev = tx_decode_evaluate(&tr->eval_tape, &tr->model, tr->data.valid, tr->data.n_valid);
}

/* The stop rule: the target accuracy or loss reached, Ctrl-C, or --stop-at. */
static int stop_rule(const trainer *tr) {
    const tx_train_opts *o = tr->opts;
    const tx_train_config *t = &tr->cfg->train;
    int text = tr->cfg->data.task == TX_TASK_TEXT;
    int by_acc = !text && t->target_accuracy > 0 && tr->ev.accuracy >= t->target_accuracy;
    int by_loss = t->target_loss > 0 && tr->ev.loss <= t->target_loss;
    int reached = tr->evaluated && (by_acc || by_loss);
    if (reached && !o->quiet && by_acc)
        printf("reached %.2f%% exact match at step %ld (target %.2f%%)\n", 100 * tr->ev.accuracy,
               tr->step, 100 * t->target_accuracy);
    else if (reached && !o->quiet)
        printf("reached validation loss %.4f at step %ld (target %.4f)\n", tr->ev.loss, tr->step,
               t->target_loss);
    return reached || (o->interrupted && *o->interrupted) || (o->stop_at > 0 && tr->step >= o->stop_at);
}

/* A checkpoint every checkpoint_every steps, at the last step and on stopping. */
static int checkpoint(trainer *tr, int stopping, tx_err *err) {
    const tx_train_config *t = &tr->cfg->train;
    if (!stopping && tr->step != t->steps &&
        !(t->checkpoint_every > 0 && tr->step % t->checkpoint_every == 0))
        return TX_OK;
    tx_run_state st = {.step = tr->step};
    tx_data_get_pos(&tr->data, st.data_pos);
    tx_model_info info = {tr->config_text, tr->vocab_text, tr->data.max_src, tr->data.max_tgt};
    if (tr->opts->kill_at == tr->step && tr->opts->kill_in_write)
        tx_st_crash_after(4096); /* past the header, inside the tensors */
    return tx_checkpoint_save(tr->ckpt, &tr->params, &tr->opt, &st, &info, err);
}

/* ---- the loop -------------------------------------------------------------------- */

int tx_train(const tx_config *cfg, const tx_train_opts *opts, tx_err *err) {
    trainer tr;
    memset(&tr, 0, sizeof tr);
    tr.cfg = cfg;
    tr.opts = opts;
    tr.tty = isatty(1);
    tr.lock_fd = -1;
    tx_tape_init(&tr.tape);
    tx_tape_init(&tr.eval_tape);
    int rc = setup(&tr, err), stop = 0;
    if (!rc) tx_train_announce(&tr);
    tr.tape.detect_anomaly = opts->detect_anomaly;
    tr.t0 = tr.window_t = tx_train_now();
    while (!rc && !stop && tr.step < cfg->train.steps) {
        if (opts->kill_at == tr.step + 1 && !opts->kill_in_write) raise(SIGKILL);
        train_step(&tr);
        if ((rc = nonfinite(&tr, err))) break;
        validate(&tr);
        tx_train_report(&tr);
        stop = stop_rule(&tr);
        rc = checkpoint(&tr, stop, err);
    }
    if (!rc && opts->interrupted && *opts->interrupted) {
        printf("\ninterrupted: checkpoint saved at step %ld; continue with --resume\n", tr.step);
        rc = TX_EINTERRUPTED;
    }
    if (!rc) tx_train_finish(&tr);
    teardown(&tr);
    return rc;
}
