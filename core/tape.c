/* tape.c: recording nodes and walking them backwards. */
#include "tape.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

void tx_tape_init(tx_tape *tp) { memset(tp, 0, sizeof *tp); }

void tx_tape_reset(tx_tape *tp) {
    tx_arena_reset(&tp->arena);
    tp->last = NULL;
    tp->nnodes = 0;
    tp->ncalls = 0;
}

void tx_tape_free(tx_tape *tp) {
    tx_arena_free(&tp->arena);
    memset(tp, 0, sizeof *tp);
}

void *tx_tape_alloc(tx_tape *tp, size_t bytes) {
    return tx_arena_alloc(&tp->arena, bytes);
}

size_t tx_tape_mark(const tx_tape *tp) { return tp->arena.inuse; }

void tx_tape_release(tx_tape *tp, size_t mark) {
    TX_ASSERT(tp->no_grad, "tx_tape_release: only in no-grad mode (nodes may "
                           "point into the memory)");
    tx_arena_release(&tp->arena, mark);
}

/* lazy: the gradient of an op output, left uninitialised (tx_grad_add) */
static tx_tensor *new_tensor(tx_tape *tp, int requires_grad, int ndim, const int *shape,
                             int lazy) {
    TX_ASSERT(ndim >= 1 && ndim <= TX_MAXDIM,
              "tx_tensor_new: %d dimensions (1..%d allowed)", ndim, TX_MAXDIM);
    tx_tensor *t = tx_arena_alloc(&tp->arena, sizeof *t);
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    t->size = 1;
    for (int i = 0; i < ndim; i++) {
        TX_ASSERT(shape[i] > 0, "tx_tensor_new: dimension %d is %d", i,
                  shape[i]);
        t->shape[i] = shape[i];
        t->size *= (size_t)shape[i];
    }
    t->data = tx_arena_alloc(&tp->arena, t->size * sizeof(tx_real));
    if (requires_grad && !tp->no_grad) {
        t->grad = tx_arena_alloc(&tp->arena, t->size * sizeof(tx_real));
        if (!lazy) tx_zero(t->grad, t->size);
        t->grad_set = !lazy;
    }
    return t;
}

tx_tensor *tx_tensor_newv(tx_tape *tp, int requires_grad, int ndim, const int *shape) {
    return new_tensor(tp, requires_grad, ndim, shape, 0);
}

void tx_grad_prepare(tx_tensor *x) {
    if (!tx_grad_add(x)) tx_zero(x->grad, x->size);
}

tx_tensor *tx_tensor_new(tx_tape *tp, int requires_grad, int ndim, ...) {
    int shape[TX_MAXDIM] = {0};
    va_list ap;
    va_start(ap, ndim);
    for (int i = 0; i < ndim && i < TX_MAXDIM; i++) shape[i] = va_arg(ap, int);
    va_end(ap);
    return tx_tensor_newv(tp, requires_grad, ndim, shape);
}

tx_tensor *tx_op_output(tx_tape *tp, int ndim, const int *shape,
                        tx_tensor *a, tx_tensor *b, tx_tensor *c) {
    int rg = tx_needs_grad(a) || tx_needs_grad(b) || tx_needs_grad(c);
    return new_tensor(tp, rg, ndim, shape, 1);
}

static int all_finite(const tx_real *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* With detect_anomaly, remembers the first op whose result is not finite. */
static void check_anomaly(tx_tape *tp, const char *op, const tx_real *x,
                          size_t n, int backward) {
    if (tp->detect_anomaly && !tp->anomaly && !all_finite(x, n)) {
        tp->anomaly = op;
        tp->anomaly_backward = backward;
    }
}

tx_node *tx_op_record(tx_tape *tp, const char *op, tx_backward_fn bw,
                      tx_tensor *out, tx_tensor *a, tx_tensor *b,
                      tx_tensor *c) {
    check_anomaly(tp, op, out->data, out->size, 0);
    if (tp->no_grad || !out->grad) return NULL;
    tx_node *n = tx_arena_alloc(&tp->arena, sizeof *n);
    memset(n, 0, sizeof *n);
    n->op = op;
    n->backward = bw;
    n->out = out;
    n->in[0] = a;
    n->in[1] = b;
    n->in[2] = c;
    n->prev = tp->last;
    tp->last = n;
    tp->nnodes++;
    return n;
}

void *tx_op_save(tx_tape *tp, tx_node *n, size_t bytes) {
    return n ? (n->saved = tx_arena_alloc(&tp->arena, bytes)) : NULL;
}

void tx_tape_backward(tx_tape *tp, tx_tensor *loss) {
    TX_ASSERT(loss->size == 1 && loss->grad,
              "tx_tape_backward: loss must be one element with a gradient "
              "(size %zu, grad %s)", loss->size, loss->grad ? "yes" : "no");
    loss->grad[0] = tx_grad_add(loss) ? loss->grad[0] + 1 : 1;
    for (tx_node *n = tp->last; n; n = n->prev) {
        const tx_tensor *o = n->out->base ? n->out->base : n->out;
        if (!o->grad_set) continue; /* no gradient reached it: nothing to pass on */
        n->backward(n);
        for (int k = 0; tp->detect_anomaly && k < 4; k++) {
            const tx_tensor *x = n->in[k];
            if (x && x->grad && (x->base ? x->base : x)->grad_set)
                check_anomaly(tp, n->op, x->grad, x->size, 1);
        }
    }
}
