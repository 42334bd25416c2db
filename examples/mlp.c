/* mlp.c: a multi-layer perceptron learns two interleaved spirals, the classic
 * problem no straight line separates, with the tape and Adam.
 * Prints the loss and the accuracy on fresh points from the same spirals.
 * Build: cc mlp.c $(pkg-config --cflags --libs tapeformer) -lm -o mlp */
#include <math.h>
#include <stdio.h>

#include <tapeformer/tapeformer.h>

#define N 400 /* points, half on each spiral */
#define H 32  /* hidden units */

/* Point i: spiral i % 2 at angle t, radius t, with a little noise. */
static void spirals(tx_rng *r, tx_real *xy, int *label) {
    for (int i = 0; i < N; i++) {
        double t = 0.5 + 3.0 * M_PI * (i / 2) / (N / 2), s = i % 2 ? -1 : 1;
        xy[2 * i] = (tx_real)(s * t * cos(t) / 10 + 0.02 * tx_rng_normal(r));
        xy[2 * i + 1] = (tx_real)(s * t * sin(t) / 10 + 0.02 * tx_rng_normal(r));
        label[i] = i % 2;
    }
}

typedef struct mlp {
    tx_tensor *w1, *b1, *w2, *b2, *w3, *b3; /* [H, 2] [H] [H, H] [H] [2, H] [2] */
} mlp;

/* Logits [N, 2] of the points xy [N, 2]: two ReLU layers and a linear one. */
static tx_tensor *forward(tx_tape *tp, const mlp *m, const tx_real *xy) {
    tx_tensor *x = tx_tensor_new(tp, 0, 2, N, 2); /* an input: no gradient */
    for (int i = 0; i < 2 * N; i++) x->data[i] = xy[i];
    tx_tensor *h = tx_relu(tp, tx_affine(tp, x, m->w1, m->b1));
    h = tx_relu(tp, tx_affine(tp, h, m->w2, m->b2));
    return tx_affine(tp, h, m->w3, m->b3);
}

int main(void) {
    tx_rng rng;
    tx_rng_seed(&rng, 42);
    static tx_real xy[2 * N], test_xy[2 * N];
    static int label[N], test_label[N];
    spirals(&rng, xy, label);
    spirals(&rng, test_xy, test_label); /* the same spirals, other noise */

    /* Parameters: declare every tensor, then one block holds them all. */
    tx_params p = {0};
    mlp m = {tx_params_new(&p, "w1", TX_INIT_XAVIER, 2, H, 2),
             tx_params_new(&p, "b1", TX_INIT_ZERO, 1, H),
             tx_params_new(&p, "w2", TX_INIT_XAVIER, 2, H, H),
             tx_params_new(&p, "b2", TX_INIT_ZERO, 1, H),
             tx_params_new(&p, "w3", TX_INIT_XAVIER, 2, 2, H),
             tx_params_new(&p, "b3", TX_INIT_ZERO, 1, 2)};
    tx_params_alloc(&p);
    tx_params_init(&p, &rng);

    tx_optim_config oc = {.name = TX_OPT_ADAM, .lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999,
                          .eps = 1e-8};
    tx_optim opt;
    tx_optim_init(&opt, &oc, &p);
    tx_tape tp;
    tx_tape_init(&tp);

    for (int step = 1; step <= 600; step++) {
        tx_tape_reset(&tp); /* the last step's activations go back to the arena */
        tx_params_zero_grad(&p);
        tx_tensor *logits = forward(&tp, &m, xy);
        tx_tensor *loss = tx_cross_entropy(&tp, logits, label, -1, 0);
        tx_tape_backward(&tp, loss);
        tx_optim_step(&opt, &p, oc.lr);
        if (step % 100 == 0) printf("step %3d  loss %.4f\n", step, (double)loss->data[0]);
    }
    tx_tape_reset(&tp);
    tp.no_grad = 1; /* evaluation: nothing recorded */
    tx_tensor *logits = forward(&tp, &m, test_xy);
    int right = 0;
    for (int i = 0; i < N; i++)
        right += (logits->data[2 * i + 1] > logits->data[2 * i]) == test_label[i];
    double accuracy = (double)right / N;
    printf("accuracy on %d fresh points: %.1f%%\n", N, 100 * accuracy);
    tx_tape_free(&tp);
    tx_optim_free(&opt);
    tx_params_free(&p);
    return accuracy >= 0.95 ? 0 : 1;
}
