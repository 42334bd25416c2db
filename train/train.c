/* train.c: the training loop. One optimizer step = `accumulate` micro-batches
 * whose losses are weighted by their share of the step's target tokens, so k
 * micro-batches of B give the update of one batch of k·B. Dropout keys come
 * from (seed, step, micro-batch) and the data stream's position is saved, so
 * a run resumed from a checkpoint continues bit for bit. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

/* Every process's rc, the worst of them, for all to act on alike; rank 0,
 * which prints, gets the message of the first process that failed, named. */
static int agree(trainer *tr, int rc, tx_err *err) {
    int all = rc, N = tr->dist->size;
    tx_dist_max(tr->dist, &all, 1);
    if (!all || N == 1) return all;
    struct { int rc; tx_err err; } mine = {rc, {""}}, *each = tx_malloc((size_t)N * sizeof mine);
    if (rc) mine.err = *err;
    tx_dist_gather_bytes(tr->dist, &mine, (int)sizeof mine, each);
    int r = 0;
    while (tx_train_is_root(tr) && !rc && !each[r].rc) r++;
    if (tx_train_is_root(tr) && !rc) tx_error(err, all, "rank %d: %s", r, each[r].err.msg);
    free(each);
    return all;
}

/* The shards of the parameter block, chunk-aligned so that each process
 * adds up whole chunks of the gradient norm (see train_step). */
static void shards(trainer *tr) {
    int N = tr->dist->size;
    size_t size = tr->params.size, chunk = tx_norm_chunk(size);
    tr->elem_count = tx_calloc((size_t)N, sizeof(int)), tr->elem_displ = tx_calloc((size_t)N, sizeof(int));
    tr->chunk_count = tx_calloc((size_t)N, sizeof(int)), tr->chunk_displ = tx_calloc((size_t)N, sizeof(int));
    for (int q = 0; q < N; q++) {
        int c0 = TX_NORM_CHUNKS * q / N, c1 = TX_NORM_CHUNKS * (q + 1) / N;
        size_t e0 = (size_t)c0 * chunk < size ? (size_t)c0 * chunk : size;
        size_t e1 = (size_t)c1 * chunk < size ? (size_t)c1 * chunk : size;
        tr->chunk_displ[q] = c0, tr->chunk_count[q] = c1 - c0;
        tr->elem_displ[q] = (int)e0, tr->elem_count[q] = (int)(e1 - e0);
    }
    int k = tr->cfg->train.accumulate, per = k / N, me = tr->elem_count[tr->dist->rank];
    tr->mloss = tx_calloc((size_t)k, sizeof *tr->mloss);
    tr->step_s = tx_calloc(TX_TIMED, sizeof *tr->step_s);
    tr->comm_s = tx_calloc(TX_TIMED, sizeof *tr->comm_s);
    tr->opt_s = tx_calloc(TX_TIMED, sizeof *tr->opt_s);
    if (N == 1) {
        if (k > 1) tr->scratch = tx_malloc_aligned(size * sizeof(tx_real));
        return;
    }
    tr->scount = tx_calloc((size_t)N, sizeof(int)), tr->sdispl = tx_calloc((size_t)N, sizeof(int));
    tr->rcount = tx_calloc((size_t)N, sizeof(int)), tr->rdispl = tx_calloc((size_t)N, sizeof(int));
    for (int q = 0; q < N; q++) {
        /* to q: my micro-batches' slices of q's shard; from q: its ones of mine */
        tr->scount[q] = per * tr->elem_count[q];
        tr->sdispl[q] = per * tr->elem_displ[q];
        tr->rcount[q] = per * me;
        tr->rdispl[q] = q * per * me;
    }
    tr->send = tx_malloc_aligned((size_t)per * size * sizeof(tx_real));
    tr->recv = tx_malloc_aligned((size_t)k * me * sizeof(tx_real) + 64);
}

static int setup(trainer *tr, tx_err *err) {
    const tx_config *cfg = tr->cfg;
    int rc;
    tx_set_threads(cfg->train.threads);
    if (cfg->train.accumulate % tr->dist->size)
        return tx_error(err, TX_EINPUT,
                        "%s: [train] accumulate: expected a multiple of the %d processes "
                        "(each takes the same share of a step's micro-batches), got %d",
                        cfg->source, tr->dist->size, cfg->train.accumulate);
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
    if (tr->dist->size > 1 &&
        (double)(cfg->train.accumulate / tr->dist->size) * (double)tr->params.size > INT_MAX)
        return tx_error(err, TX_EINPUT,
                        "%s: %zu parameters x %d micro-batches per process exceed what one "
                        "MPI exchange can count (%d elements); use fewer micro-batches per process",
                        cfg->source, tr->params.size, cfg->train.accumulate / tr->dist->size,
                        INT_MAX);
    tx_params_alloc(&tr->params);
    tx_rng rng;
    tx_rng_seed(&rng, cfg->train.seed);
    tx_params_init(&tr->params, &rng);
    shards(tr);
    int r = tr->dist->rank, k = cfg->train.accumulate;
    size_t lo = (size_t)tr->elem_displ[r];
    tx_optim_init_shard(&tr->opt, &cfg->optim, &tr->params, lo, lo + (size_t)tr->elem_count[r]);
    tr->micro = tx_calloc((size_t)k, sizeof *tr->micro);
    for (int i = 0; i < k; i++)
        tx_batch_alloc(&tr->micro[i], cfg->train.batch_size, tr->data.max_src, tr->data.max_tgt);
    size_t n = (size_t)tx_config_write(cfg, NULL, 0) + 1;
    tr->config_text = tx_malloc(n);
    tx_config_write(cfg, tr->config_text, n);
    tr->vocab_text = tx_vocab_to_string(&tr->data.vocab);
    snprintf(tr->ckpt, sizeof tr->ckpt, "%s/checkpoint.safetensors", cfg->out_dir);
    snprintf(tr->metrics, sizeof tr->metrics, "%s/metrics.csv", cfg->out_dir);
    /* the output directory is rank 0's: its lock, metrics and checkpoints */
    int root = tx_train_is_root(tr);
    if (root && ((rc = mkdirs(cfg->out_dir, err)) || (rc = lock_dir(tr, err)))) return rc;
    if (tr->opts->resume && (rc = resume(tr, err))) return rc;
    return root ? tx_train_metrics_open(tr, err) : TX_OK;
}

static void teardown(trainer *tr) {
    void *bufs[] = {tr->elem_count, tr->elem_displ, tr->chunk_count, tr->chunk_displ, tr->scount,
                    tr->sdispl, tr->rcount, tr->rdispl, tr->send, tr->recv, tr->scratch, tr->mloss,
                    tr->step_s, tr->comm_s, tr->opt_s};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
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

/* ---- the step ------------------------------------------------------------------ */
/* One optimizer step: `accumulate` micro-batches of the one data stream
 * (every process draws all of them, and computes its share: k/N of them, in
 * a block), their gradients added in micro-batch order, element by element,
 * whatever the number of processes: so the weights after a step are the
 * same bits for 1, 2 or 3 processes, and any thread count. One process adds
 * each micro-batch's gradient to the running sum as it comes; several send
 * each micro-batch's slice of every shard to the shard's owner
 * (all-to-all), which adds the k slices in order. Each owner then clips its
 * shard (the norm adds the chunks' sums in chunk order), updates it with its
 * part of the optimizer state (ZeRO-1), and sends it to all. */

/* dst[i] += src[i] for i < n: in parallel, the same sum for any split. */
static void add_into(tx_real *restrict dst, const tx_real *restrict src, size_t n) {
    const ptrdiff_t m = (ptrdiff_t)n;
#pragma omp parallel for schedule(static) if (n >= TX_PAR_MIN_ELEMS)
    for (ptrdiff_t i = 0; i < m; i++) dst[i] += src[i];
}

/* Micro-batch m's loss and gradient (scaled by its share n/total of the
 * step's target tokens), written fresh into the gradient buffer. */
static void micro_step(trainer *tr, long step, int m, int total) {
    const tx_config *cfg = tr->cfg;
    tx_batch *b = &tr->micro[m];
    tx_tape *tp = &tr->tape;
    int n = count_targets(b);
    tx_params_grad_begin(&tr->params); /* no zeroing: the first contribution assigns */
    tx_tape_reset(tp);
    tp->training = 1;
    tp->seed = step_seed(cfg->train.seed, step, m);
    tx_tensor *loss = tx_model_loss(tp, &tr->model, b->src, b->src_len, b->Ts, b->tgt_in,
                                    b->tgt_out, b->tgt_len, b->Tt, b->B,
                                    (tx_real)cfg->train.label_smoothing);
    tr->mloss[m] = loss->data[0] * n;
    if (n) tx_tape_backward(tp, tx_scale(tp, loss, (tx_real)((double)n / total)));
    tx_tape_reset(tp);
    tx_params_grad_end(&tr->params);
}

/* tr->loss (token-weighted mean), gnorm and lr. The update is skipped when
 * the loss or the gradient is not finite (every process sees the same). */
static void train_step(trainer *tr) {
    const tx_config *cfg = tr->cfg;
    tx_params *p = &tr->params;
    int k = cfg->train.accumulate, total = 0, dec_only = cfg->model.kind == TX_DECODER_ONLY;
    int N = tr->dist->size, r = tr->dist->rank, per = k / N, m0 = r * per;
    long step = ++tr->step;
    double t_step = tx_train_now(), comm = 0, adam = 0, t;
    for (int i = 0; i < k; i++) {
        tx_data_next_batch(&tr->data, &tr->micro[i], cfg->train.batch_size, dec_only);
        total += count_targets(&tr->micro[i]);
        tr->window_tokens += count_inputs(&tr->micro[i]);
    }
    for (int j = 0; j < per; j++) {
        int m = m0 + j, later = N == 1 && m > 0;
        if (later) tx_params_grad_into(p, tr->scratch);
        micro_step(tr, step, m, total);
        if (later) tx_params_grad_into(p, NULL), add_into(p->grad, tr->scratch, p->size);
        for (int q = 0; N > 1 && q < N; q++) /* this micro-batch's slice of q's shard */
            memcpy(tr->send + tr->sdispl[q] + (size_t)j * tr->elem_count[q],
                   p->grad + tr->elem_displ[q], (size_t)tr->elem_count[q] * sizeof(tx_real));
    }
    size_t lo = tr->opt.lo, n = tr->opt.hi - tr->opt.lo;
    if (N > 1) { /* my shard: the k micro-batches' slices, added in order */
        t = tx_train_now();
        tx_dist_alltoallv_real(tr->dist, tr->send, tr->scount, tr->sdispl, tr->recv, tr->rcount,
                               tr->rdispl);
        tx_dist_allgather_double(tr->dist, tr->mloss + m0, per, tr->mloss);
        comm += tx_train_now() - t;
        memcpy(p->grad + lo, tr->recv, n * sizeof(tx_real));
        for (int m = 1; m < k; m++) add_into(p->grad + lo, tr->recv + (size_t)m * n, n);
    }
    double loss_sum = 0, sq[TX_NORM_CHUNKS];
    for (int m = 0; m < k; m++) loss_sum += tr->mloss[m];
    int c0 = tr->chunk_displ[r];
    tx_grad_sq_chunks(p, c0, c0 + tr->chunk_count[r], sq + c0);
    t = tx_train_now();
    tx_dist_allgatherv_double(tr->dist, sq + c0, sq, tr->chunk_count, tr->chunk_displ);
    comm += tx_train_now() - t;
    tr->gnorm = tx_norm_of_chunks(sq);
    tx_grad_scale(p, lo, lo + n,
                  tx_clip_factor(tr->gnorm, cfg->optim.clip_norm > 0 ? cfg->optim.clip_norm
                                                                     : INFINITY));
    tr->lr = tx_schedule_lr(&tr->opt.cfg, cfg->model.d_model, step);
    tr->loss = total ? loss_sum / total : 0;
    if (isfinite(tr->loss) && isfinite(tr->gnorm)) {
        t = tx_train_now();
        tx_optim_step(&tr->opt, p, tr->lr);
        adam = tx_train_now() - t;
        t = tx_train_now();
        tx_dist_allgatherv_real(tr->dist, p->data + lo, p->data, tr->elem_count, tr->elem_displ);
        comm += tx_train_now() - t;
    }
    long i = tr->timed++ % TX_TIMED;
    tr->step_s[i] = tx_train_now() - t_step, tr->comm_s[i] = comm, tr->opt_s[i] = adam;
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

/* Every eval_every steps and at the last: validation loss and exact match
 * (rank 0; the others go on to the next step's work). */
static void validate(trainer *tr) {
    const tx_train_config *t = &tr->cfg->train;
    tr->evaluated = tx_train_is_root(tr) && (tr->step % t->eval_every == 0 || tr->step == t->steps);
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

/* A checkpoint every checkpoint_every steps, at the last step and on
 * stopping: rank 0 writes it, the optimizer state gathered from every
 * shard; the same file whatever the number of processes. */
static int checkpoint(trainer *tr, tx_err *err) {
    const tx_train_config *t = &tr->cfg->train;
    if (!tr->stopping && tr->step != t->steps &&
        !(t->checkpoint_every > 0 && tr->step % t->checkpoint_every == 0))
        return TX_OK;
    tx_optim whole = tr->opt, *o = &tr->opt;
    if (tr->dist->size > 1) {
        /* the moments gathered on rank 0, which alone writes (the others
         * pass no buffer: a gather fills only the root's) */
        int root = tx_train_is_root(tr);
        size_t bytes = whole.size * sizeof(tx_real);
        whole.lo = 0, whole.hi = whole.size;
        whole.m = root ? tx_malloc(bytes) : NULL;
        whole.v = root && tr->opt.v ? tx_malloc(bytes) : NULL;
        tx_dist_gatherv_real(tr->dist, tr->opt.m, whole.m, tr->elem_count, tr->elem_displ);
        if (tr->opt.v)
            tx_dist_gatherv_real(tr->dist, tr->opt.v, whole.v, tr->elem_count, tr->elem_displ);
        o = &whole;
    }
    int rc = TX_OK;
    if (tx_train_is_root(tr)) {
        tx_run_state st = {.step = tr->step};
        tx_data_get_pos(&tr->data, st.data_pos);
        tx_model_info info = {tr->config_text, tr->vocab_text, tr->data.max_src, tr->data.max_tgt};
        if (tr->opts->kill_at == tr->step && tr->opts->kill_in_write)
            tx_st_crash_after(4096); /* past the header, inside the tensors */
        rc = tx_checkpoint_save(tr->ckpt, &tr->params, o, &st, &info, err);
    }
    if (o == &whole) free(whole.m), free(whole.v);
    return agree(tr, rc, err);
}

/* ---- the loop -------------------------------------------------------------------- */

int tx_train(const tx_config *cfg, const tx_train_opts *opts, tx_err *err) {
    static const tx_dist alone = {0, 1, 0};
    trainer tr;
    memset(&tr, 0, sizeof tr);
    tr.cfg = cfg;
    tr.opts = opts;
    tr.dist = opts->dist ? opts->dist : &alone;
    /* mpirun hands its processes a pseudo-terminal whatever its own output is */
    tr.tty = isatty(1) && !tr.dist->mpirun;
    tr.lock_fd = -1;
    tx_tape_init(&tr.tape);
    tx_tape_init(&tr.eval_tape);
    int rc = agree(&tr, setup(&tr, err), err), interrupted = 0;
    if (!rc) tx_train_announce(&tr);
    tr.tape.detect_anomaly = opts->detect_anomaly;
    tr.t0 = tr.window_t = tx_train_now();
    int kill_me = opts->kill_rank < 0 || opts->kill_rank == tr.dist->rank;
    while (!rc && !tr.stopping && tr.step < cfg->train.steps) {
        if (kill_me && opts->kill_at == tr.step + 1 && !opts->kill_in_write) raise(SIGKILL);
        train_step(&tr);
        if ((rc = nonfinite(&tr, err))) break;
        validate(&tr);
        if (tx_train_is_root(&tr)) tx_train_report(&tr);
        /* every process stops at the same step: the stop rule is rank 0's,
         * a Ctrl-C or SIGTERM may reach any */
        int flags[2] = {stop_rule(&tr), opts->interrupted && *opts->interrupted};
        tx_dist_max(tr.dist, flags, 2);
        tr.stopping = flags[0] || flags[1];
        interrupted = flags[1];
        rc = checkpoint(&tr, err);
    }
    if (!rc && interrupted) {
        if (tx_train_is_root(&tr))
            printf("\ninterrupted: checkpoint saved at step %ld; continue with --resume\n", tr.step);
        rc = TX_EINTERRUPTED;
    }
    if (!rc && tx_train_is_root(&tr)) tx_train_finish(&tr);
    teardown(&tr);
    return rc;
}
