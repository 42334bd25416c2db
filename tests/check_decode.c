/* check_decode.c: decoding (greedy, beam search), scoring and validation,
 * and opening a trained model (io/model_io) the way the tools do. */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#include "../decode/decode.h"
#include "../io/model_io.h"

/* Vocabulary "1" "2" "3" after the four specials. */
#define V 7
#define VOCAB "tapeformer-vocab word word\n1\n2\n3\n"

static tx_model model;
static tx_params params;
static tx_tape tape;

static tx_model_config tiny_config(int kind, int positions) {
    return (tx_model_config){.kind = kind, .d_model = 8, .heads = 2, .bias = 1, .encoder_layers = 1,
                             .decoder_layers = 2, .d_ff = 16, .activation = TX_ACT_RELU,
                             .positions = positions, .scale_embeddings = 1,
                             .src_vocab = V, .tgt_vocab = V, .max_len = 6};
}

/* A random model whose generator is scaled up so that its next-token
 * distributions are far from uniform (ties and near-ties would make the
 * comparisons below meaningless) and EOS is likely enough to end outputs. */
static void build(int kind, int positions, uint64_t seed) {
    tx_model_config c = tiny_config(kind, positions);
    tx_err err;
    memset(&params, 0, sizeof params);
    ck_assert_int_eq(tx_model_build(&model, &c, &params, &err), TX_OK);
    tx_params_alloc(&params);
    tx_rng r;
    tx_rng_seed(&r, seed);
    tx_params_init(&params, &r);
    tx_tensor *g = model.generator.weight;
    for (size_t i = 0; i < g->size; i++) g->data[i] *= 4;
    model.generator.bias->data[TX_EOS] = 1; /* so that outputs do end */
    tx_tape_init(&tape);
}

static void unbuild(void) {
    tx_tape_free(&tape);
    tx_params_free(&params);
}

/* Examples with sources from a fixed stream, targets of length lt (ids in
 * [1, V) incl. BOS/UNK: any token the model may emit), into b. */
static int ids[16][16];
static tx_example ex[16];
static void examples(tx_batch *b, int n, int lt, int dec_only, uint64_t seed) {
    tx_rng r;
    tx_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        int ls = tx_rng_int(&r, 1, 4);
        for (int j = 0; j < ls + lt; j++)
            ids[i][j] = j < ls ? tx_rng_int(&r, 4, V - 1) : tx_rng_int(&r, 1, V - 1);
        for (int j = ls; j < ls + lt; j++)
            if (ids[i][j] == TX_EOS) ids[i][j] = TX_UNK;
        ex[i] = (tx_example){"", "", ids[i], ids[i] + ls, ls, lt};
    }
    tx_batch_alloc(b, n, 4, lt);
    tx_batch_fill(b, ex, n, dec_only);
}

/* Reference for one hypothesis, computed directly from the logits of the
 * whole sequence: Σ log p(tok[i]) (+ log p(EOS) if eos) / len^alpha. */
static double ref_score(const tx_batch *b, int row, const int *tok, int n, int eos,
                        double alpha) {
    int dec_only = model.cfg.kind == TX_DECODER_ONLY, ls = b->src_len[row];
    int P = dec_only ? ls + 1 : 1, seq[32];
    if (dec_only) memcpy(seq, b->tgt_in + (size_t)row * b->Tt, (size_t)P * sizeof *seq);
    else seq[0] = TX_BOS;
    memcpy(seq + P, tok, (size_t)n * sizeof *seq);
    tx_tape_reset(&tape);
    tape.no_grad = 1;
    tx_tensor *mem = dec_only ? NULL
                              : tx_model_encode(&tape, &model, b->src + (size_t)row * b->Ts,
                                                &ls, 1, ls, NULL);
    tx_tensor *lg = tx_model_decode(&tape, &model, mem, NULL, seq, NULL, 1, P + n, NULL);
    double sum = 0;
    for (int i = 0; i < n + eos; i++) {
        const tx_real *x = lg->data + (size_t)(P - 1 + i) * V;
        double z = 0;
        for (int v = 0; v < V; v++) z += exp(x[v]);
        sum += x[i < n ? tok[i] : TX_EOS] - log(z);
    }
    tape.no_grad = 0;
    return sum / pow(n + eos, alpha);
}

static const int kinds[] = {TX_ENCODER_DECODER, TX_DECODER_ONLY};

/* Greedy decoding and beam search of b, with the cache unless no_cache. */
static void greedy(const tx_batch *b, int max_len, int *out, int *len) {
    tx_decode(&tape, &model, b, &(tx_search){.max_len = max_len, .beam = 1},
              &(tx_decoded){.tok = out, .len = len});
}
static void beam(const tx_batch *b, int k, double alpha, int max_len, int *out, int *len,
                 double *score) {
    tx_decode(&tape, &model, b, &(tx_search){.max_len = max_len, .beam = k, .alpha = alpha},
              &(tx_decoded){.tok = out, .len = len, .score = score});
}

START_TEST(test_beam1_is_greedy) {
    build(kinds[_i], TX_POS_SINUSOIDAL, 10 + _i);
    tx_batch b;
    examples(&b, 12, 0, kinds[_i] == TX_DECODER_ONLY, 3);
    int g[12 * 8], gl[12], o[12 * 8], ol[12], stopped_early = 0;
    greedy(&b, 8, g, gl);
    beam(&b, 1, 1.0, 8, o, ol, NULL);
    for (int i = 0; i < 12; i++) {
        ck_assert_int_eq(ol[i], gl[i]);
        ck_assert_mem_eq(o + i * 8, g + i * 8, (size_t)gl[i] * sizeof *o);
        stopped_early += gl[i] < 8;
    }
    ck_assert_int_gt(stopped_early, 0); /* EOS was reached on some rows */
    tx_batch_free(&b);
    unbuild();
}
END_TEST

/* With a beam wider than the number of hypotheses nothing is pruned, so the
 * search must return the best of all sequences, enumerated here. */
START_TEST(test_beam_exhaustive) {
    const double alphas[] = {0, 1};
    build(kinds[_i], TX_POS_SINUSOIDAL, 20 + _i);
    tx_batch b;
    examples(&b, 4, 0, kinds[_i] == TX_DECODER_ONLY, 5);
    enum { L = 3 };
    int out[4 * L], len[4], tok[L];
    double score[4];
    for (int a = 0; a < 2; a++) {
        beam(&b, 300, alphas[a], L, out, len, score);
        for (int row = 0; row < 4; row++) {
            double best = -INFINITY;
            int best_n = -1, best_code = -1;
            /* n tokens then EOS (n < L), or L tokens cut off; tokens skip EOS. */
            for (int n = 0; n <= L; n++) {
                int count = 1;
                for (int i = 0; i < n; i++) count *= V - 1;
                for (int code = 0; code < count; code++) {
                    for (int i = 0, c = code; i < n; i++, c /= V - 1)
                        tok[i] = c % (V - 1) < TX_EOS ? c % (V - 1) : c % (V - 1) + 1;
                    double s = ref_score(&b, row, tok, n, n < L, alphas[a]);
                    if (s > best) best = s, best_n = n, best_code = code;
                }
            }
            for (int i = 0, c = best_code; i < best_n; i++, c /= V - 1)
                tok[i] = c % (V - 1) < TX_EOS ? c % (V - 1) : c % (V - 1) + 1;
            ck_assert_int_eq(len[row], best_n);
            ck_assert_mem_eq(out + row * L, tok, (size_t)best_n * sizeof *tok);
            ck_near(score[row], best, 1e-9);
        }
    }
    tx_batch_free(&b);
    unbuild();
}
END_TEST

START_TEST(test_beam_beats_greedy) {
    build(kinds[_i], TX_POS_SINUSOIDAL, 30 + _i);
    tx_batch b;
    examples(&b, 10, 0, kinds[_i] == TX_DECODER_ONLY, 7);
    enum { L = 6 };
    int g[10 * L], gl[10], o[10 * L], ol[10], better = 0;
    double score[10];
    greedy(&b, L, g, gl);
    for (int k = 2; k <= 5; k += 3) {
        beam(&b, k, 0.0, L, o, ol, score);
        for (int i = 0; i < 10; i++) {
            double gs = ref_score(&b, i, g + i * L, gl[i], gl[i] < L, 0.0);
            /* The beam's own score is the winner's log-likelihood. */
            ck_near(score[i], ref_score(&b, i, o + i * L, ol[i], ol[i] < L, 0.0), 1e-9);
            ck_assert_msg(score[i] >= gs - 1e-12, "row %d beam %d: %g < greedy %g", i, k,
                          score[i], gs);
            better += score[i] > gs + 1e-9;
        }
    }
    ck_assert_int_gt(better, 0); /* the search did something greedy does not */
    tx_batch_free(&b);
    unbuild();
}
END_TEST

/* A learned position table of 6 rows bounds decoding whatever max_len asks. */
START_TEST(test_decode_respects_positions) {
    build(kinds[_i], TX_POS_LEARNED, 40 + _i);
    tx_batch b;
    examples(&b, 6, 0, kinds[_i] == TX_DECODER_ONLY, 9);
    int o[6 * 20], ol[6];
    greedy(&b, 20, o, ol);
    for (int i = 0; i < 6; i++)
        ck_assert_int_le(ol[i], 6 - (kinds[_i] == TX_DECODER_ONLY ? b.src_len[i] : 0));
    beam(&b, 3, 1.0, 20, o, ol, NULL);
    for (int i = 0; i < 6; i++)
        ck_assert_int_le(ol[i], 6 - (kinds[_i] == TX_DECODER_ONLY ? b.src_len[i] : 0));
    tx_batch_free(&b);
    unbuild();
}
END_TEST

/* score's per-token values are the training loss taken apart: their sum is
 * tx_model_loss (mean over target tokens) times the number of tokens. */
START_TEST(test_score_matches_loss) {
    build(kinds[_i], TX_POS_SINUSOIDAL, 50 + _i);
    for (int n = 1; n <= 5; n += 4) {
        tx_batch b;
        examples(&b, n, 3, kinds[_i] == TX_DECODER_ONLY, 11);
        double logp[5 * 16], sum = 0;
        tx_decode_score(&tape, &model, &b, logp);
        int count = 0;
        for (int j = 0; j < b.B * b.Tt; j++) {
            sum -= logp[j];
            count += b.tgt_out[j] != TX_PAD;
            if (b.tgt_out[j] == TX_PAD) ck_assert(logp[j] == 0);
        }
        ck_assert_int_eq(count, n * 4); /* 3 targets and EOS per row */
        tx_tape_reset(&tape);
        tape.no_grad = 1;
        tx_tensor *loss = tx_model_loss(&tape, &model, b.src, b.src_len, b.Ts, b.tgt_in,
                                        b.tgt_out, b.tgt_len, b.Tt, b.B, 0);
        double mean = loss->data[0]; /* the next reset frees it */
        ck_near(sum, mean * count, 1e-9 * count);
        /* The same through the reference: row 0's targets and EOS. */
        int p0 = kinds[_i] == TX_DECODER_ONLY ? b.src_len[0] : 0;
        ck_near(ref_score(&b, 0, ex[0].tgt_ids, 3, 1, 0.0),
                logp[p0] + logp[p0 + 1] + logp[p0 + 2] + logp[p0 + 3], 1e-9);
        tape.no_grad = 0;
        tx_eval_result r = tx_decode_evaluate(&tape, &model, ex, n);
        ck_near(r.loss, mean, 1e-12);
        ck_assert_int_eq(r.tokens, count);
        ck_assert_int_eq(r.n, n);
        tx_batch_free(&b);
    }
    unbuild();
}
END_TEST

/* Exact match: examples whose targets are the model's own greedy outputs
 * (those that ended with EOS) all count; one changed target token makes its
 * example wrong. */
START_TEST(test_evaluate_accuracy) {
    build(kinds[_i], TX_POS_SINUSOIDAL, 61+ _i);
    tx_batch b;
    examples(&b, 16, 0, kinds[_i] == TX_DECODER_ONLY, 13);
    int o[16 * 8], ol[16], n = 0, changed = -1;
    greedy(&b, 8, o, ol);
    tx_example e[16];
    for (int i = 0; i < 16; i++)
        if (ol[i] < 8) {
            e[n] = (tx_example){"", "", ex[i].src_ids, o + i * 8, ex[i].src_len, ol[i]};
            if (ol[i] > 0) changed = i;
            n++;
        }
    ck_assert_int_ge(n, 4); /* the fixture (seed) gives varied outputs */
    ck_assert_int_ge(changed, 0);
    tx_eval_result r = tx_decode_evaluate(&tape, &model, e, n);
    ck_near(r.accuracy, 1.0, 1e-12);
    o[changed * 8] = o[changed * 8] == 4 ? 5 : 4;
    r = tx_decode_evaluate(&tape, &model, e, n);
    ck_near(r.accuracy, (n - 1.0) / n, 1e-12);
    tx_batch_free(&b);
    unbuild();
}
END_TEST

/* The cache changes nothing but the speed: greedy decoding, beam search and
 * sampling give the same tokens and per-token log-probabilities with and
 * without it, on a batch whose rows (prompts, outputs) differ in length, for
 * both kinds of model and both kinds of positions. */
START_TEST(test_cache_matches_recompute) {
    int kind = kinds[_i & 1], positions = _i & 2 ? TX_POS_LEARNED : TX_POS_SINUSOIDAL;
    build(kind, positions, 80 + _i);
    tx_batch b;
    examples(&b, 9, 0, kind == TX_DECODER_ONLY, 17);
    enum { L = 6 };
    for (int mode = 0; mode < 3; mode++) { /* greedy, beam 3, sampling */
        int tok[2][9 * L], len[2][9], eos[2][9], ended = 0;
        double logp[2][9 * L];
        for (int nc = 0; nc < 2; nc++) {
            tx_rng rng[9];
            for (int i = 0; i < 9; i++) tx_rng_seed(&rng[i], 100 + i);
            tx_search s = {.max_len = L, .beam = mode == 1 ? 3 : 1, .alpha = 1, .no_cache = nc,
                           .rng = mode == 2 ? rng : NULL, .temperature = 1.5, .top_k = 5,
                           .top_p = 0.9};
            tx_decode(&tape, &model, &b, &s,
                      &(tx_decoded){.tok = tok[nc], .len = len[nc], .logp = logp[nc], .eos = eos[nc]});
        }
        for (int i = 0; i < 9; i++) {
            ck_assert_msg(len[0][i] == len[1][i] && eos[0][i] == eos[1][i],
                          "mode %d row %d: %d tokens with the cache, %d without", mode, i,
                          len[0][i], len[1][i]);
            ck_assert_mem_eq(tok[0] + i * L, tok[1] + i * L, (size_t)len[0][i] * sizeof(int));
            for (int j = 0; j < len[0][i]; j++)
                ck_near(logp[0][i * L + j], logp[1][i * L + j], 1e-10);
            ended += eos[0][i];
        }
        ck_assert_int_gt(ended, 0); /* rows ended at different steps */
    }
    tx_batch_free(&b);
    unbuild();
}
END_TEST

/* ---- loading ------------------------------------------------------------- */

/* INI text of a run with this model config. */
static void config_text(const tx_model_config *mc, char *buf, size_t n) {
    tx_config c;
    tx_config_defaults(&c);
    c.model = *mc;
    tx_config_write(&c, buf, n);
}

START_TEST(test_load_round_trip) {
    make_dir();
    tx_model_config mc = tiny_config(kinds[_i], TX_POS_LEARNED);
    mc.max_len = 9; /* the stored config says less: the table decides */
    build(kinds[_i], TX_POS_LEARNED, 70);
    char cfg[1 << 14], path[128];
    mc.max_len = 2;
    config_text(&mc, cfg, sizeof cfg);
    snprintf(path, sizeof path, "%s/w.safetensors", test_dir);
    tx_err err;
    ck_assert_int_eq(tx_checkpoint_save(path, &params, NULL, NULL, &(tx_model_info){cfg, VOCAB, 0, 0}, &err), TX_OK);
    tx_trained t;
    ck_assert_msg(tx_trained_load(&t, path, &err) == TX_OK, "%s", err.msg);
    ck_assert_int_eq(t.cfg.model.max_len, 6);
    ck_assert_int_eq(t.vocab.size, V);
    ck_assert_int_eq(t.params.n, params.n);
    for (size_t i = 0; i < params.size; i++) /* exported as float32 */
        ck_assert(t.params.data[i] == (tx_real)(float)params.data[i]);
    ck_assert_int_eq(tx_trained_room(&t, 2), kinds[_i] == TX_DECODER_ONLY ? 4 : 6);
    tx_example e;
    int buf[16];
    ck_assert_int_eq(tx_trained_example(&t, "1 2 9", "3", &e, buf, 16, &err), TX_OK);
    ck_assert_int_eq(e.src_len, 3);
    ck_assert_int_eq(buf[2], TX_UNK);
    ck_assert_int_eq(e.tgt_ids[0], 6);
    ck_assert_int_eq(tx_trained_example(&t, "", NULL, &e, buf, 16, &err), TX_EINPUT);
    ck_assert_int_eq(tx_trained_example(&t, "1 2", "1 1 1 1 1 1", &e, buf, 16, &err), TX_EINPUT);
    ck_assert_ptr_nonnull(strstr(err.msg, "target has 6 tokens"));
    tx_trained_free(&t);
    /* The same weights under a config for another model are refused. */
    mc.d_model = 12;
    config_text(&mc, cfg, sizeof cfg);
    ck_assert_int_eq(tx_checkpoint_save(path, &params, NULL, NULL, &(tx_model_info){cfg, VOCAB, 0, 0}, &err), TX_OK);
    ck_assert_int_eq(tx_trained_load(&t, path, &err), TX_EINPUT);
    ck_assert_msg(!strncmp(err.msg, path, strlen(path)) && strstr(err.msg, "expected shape"),
                  "%s", err.msg);
    unbuild();
    remove_dir();
}
END_TEST

Suite *suite(void) {
    Suite *s = suite_create("decode");
    TCase *tc = tcase_create("decode");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_beam1_is_greedy, 0, 2);
    tcase_add_loop_test(tc, test_beam_exhaustive, 0, 2);
    tcase_add_loop_test(tc, test_beam_beats_greedy, 0, 2);
    tcase_add_loop_test(tc, test_decode_respects_positions, 0, 2);
    tcase_add_loop_test(tc, test_score_matches_loss, 0, 2);
    tcase_add_loop_test(tc, test_evaluate_accuracy, 0, 2);
    tcase_add_loop_test(tc, test_cache_matches_recompute, 0, 4);
    tcase_add_loop_test(tc, test_load_round_trip, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

TX_TEST_MAIN
