/* seq2seq.c: the Transformer of "Attention Is All You Need" built and trained
 * from C, no config file: an encoder-decoder learns to reverse sequences of
 * digits, then decodes held-out ones greedily.
 * Build: cc seq2seq.c $(pkg-config --cflags --libs tapeformer) -o seq2seq */
#include <stdio.h>
#include <stdlib.h>

#include <tapeformer/tapeformer.h>

int main(void) {
    tx_err err;
    /* The data: the reverse task, symbols 1..9, 1 to 6 of them; 200 held out. */
    tx_data_config dc = {.task = TX_TASK_REVERSE, .symbols = 9, .min_len = 1, .max_len = 6,
                         .tokenize = TX_TOK_WORD, .seed = 1, .valid_examples = 200};
    tx_data data;
    if (tx_data_open(&data, &dc, &err)) return fprintf(stderr, "%s\n", err.msg), 2;

    /* The model: post-LN, 2 + 2 layers of 64, 4 heads, shared vocabulary. */
    tx_model_config mc = {.kind = TX_ENCODER_DECODER, .d_model = 64, .heads = 4,
                          .encoder_layers = 2, .decoder_layers = 2, .d_ff = 256,
                          .activation = TX_ACT_RELU, .positions = TX_POS_SINUSOIDAL,
                          .scale_embeddings = 1, .bias = 1, .src_vocab = data.vocab.size,
                          .tgt_vocab = data.vocab.size, .max_len = 16};
    tx_model model;
    tx_params p = {0};
    if (tx_model_build(&model, &mc, &p, &err)) return fprintf(stderr, "%s\n", err.msg), 2;
    tx_params_alloc(&p);
    tx_rng rng;
    tx_rng_seed(&rng, 1);
    tx_params_init(&p, &rng);
    printf("%zu parameters\n", p.size);

    tx_optim_config oc = {.name = TX_OPT_ADAM, .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.98,
                          .eps = 1e-9, .schedule = TX_SCHED_COSINE, .warmup = 100,
                          .total_steps = 600};
    tx_optim opt;
    tx_optim_init(&opt, &oc, &p);
    tx_tape tp, eval;
    tx_tape_init(&tp);
    tx_tape_init(&eval);
    tx_batch b;
    tx_batch_alloc(&b, 64, data.max_src, data.max_tgt);

    tx_eval_result r = {0}; /* the last evaluation (step 600) decides the exit status */
    for (long step = 1; step <= oc.total_steps; step++) {
        tx_data_next_batch(&data, &b, 64, 0);
        tx_tape_reset(&tp);
        tx_params_zero_grad(&p);
        tx_tensor *loss = tx_model_loss(&tp, &model, b.src, b.src_len, b.Ts, b.tgt_in,
                                        b.tgt_out, b.tgt_len, b.Tt, b.B, 0);
        tx_tape_backward(&tp, loss);
        tx_clip_grad_norm(&p, 1.0);
        tx_optim_step(&opt, &p, tx_schedule_lr(&oc, mc.d_model, step));
        if (step % 200 == 0) {
            r = tx_decode_evaluate(&eval, &model, data.valid, data.n_valid);
            printf("step %4ld  loss %.4f  held-out loss %.4f  exact match %.1f%%\n", step,
                   (double)loss->data[0], r.loss, 100 * r.accuracy);
        }
    }

    /* Greedy decoding of a few held-out sources. */
    enum { n = 5 };
    int max_out = data.max_tgt + 1, len[n];
    int *tok = tx_malloc((size_t)n * max_out * sizeof *tok);
    tx_batch_fill(&b, data.valid, n, 0);
    tx_search s = {.max_len = max_out, .beam = 1};
    tx_decode(&eval, &model, &b, &s, &(tx_decoded){.tok = tok, .len = len});
    for (int i = 0; i < n; i++) {
        char text[128];
        tx_vocab_decode(&data.vocab, TX_TGT, tok + (size_t)i * max_out, len[i], text, sizeof text);
        printf("%-12s -> %s\n", data.valid[i].src, text);
    }
    free(tok);
    tx_batch_free(&b);
    tx_tape_free(&tp);
    tx_tape_free(&eval);
    tx_optim_free(&opt);
    tx_params_free(&p);
    tx_data_free(&data);
    return r.accuracy >= 0.9 ? 0 : 1;
}
