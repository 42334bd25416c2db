/* check_layers.c: the layers and models: forward values against PyTorch,
 * attention masking (causal, padding), permutation equivariance without
 * positions, cross-attention shapes, parameter names, configuration errors,
 * and every gradcheck case in tx_gc_layer_cases. */
#include <stdio.h>
#include <string.h>

#include "../gradcheck/cases.h"
#include "testutil.h"

static tx_tape tp;
static tx_params p;
static tx_model m; /* static: the layer arrays make it large */

static void setup(void) {
    tx_tape_init(&tp);
    tp.no_grad = 1;
    memset(&p, 0, sizeof p);
}
static void teardown(void) {
    tx_tape_free(&tp);
    tx_params_free(&p);
}

/* A small model, randomly initialised. */
static tx_model_config small(int kind, int positions) {
    return (tx_model_config){.kind = kind, .d_model = 8, .heads = 2, .bias = 1,
                             .encoder_layers = 2, .decoder_layers = 2,
                             .d_ff = 12, .positions = positions,
                             .src_vocab = 9, .tgt_vocab = 7, .max_len = 8};
}
static void build(tx_model_config cfg) {
    tx_err err;
    ck_assert_int_eq(tx_model_build(&m, &cfg, &p, &err), TX_OK);
    tx_params_alloc(&p);
    tx_rng rng;
    tx_rng_seed(&rng, 5);
    tx_params_init(&p, &rng);
}

static void expect(const tx_tensor *t, const double *want, size_t n, double tol) {
    ck_assert_uint_eq(t->size, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabs(t->data[i] - want[i]) <= tol,
                      "element %zu: got %.12f, expected %.12f", i,
                      (double)t->data[i], want[i]);
}

static void expect_shape(const tx_tensor *t, int ndim, const int *shape) {
    ck_assert_int_eq(t->ndim, ndim);
    for (int i = 0; i < ndim; i++) ck_assert_int_eq(t->shape[i], shape[i]);
}

/* ---- values against PyTorch ---------------------------------------------------
 * Every parameter (in declaration order), then the inputs, is filled from one
 * running index i with 0.5·sin(0.7·i + 0.3). Reference: PyTorch 1.13, float64,
 * this script (its printed arrays are pasted below):
 *
 * import math, torch
 * torch.set_default_dtype(torch.float64)
 * f = lambda n, off: torch.tensor([0.5 * math.sin(0.7 * (off + i) + 0.3) for i in range(n)])
 * def fill(tensors, off=0):  # in our declaration order, one running index
 *     for t in tensors: t.data.copy_(f(t.numel(), off).view_as(t)); off += t.numel()
 *     return off
 * show = lambda name, t: print(name, "= {" + ", ".join("%.12g" % v for v in t.flatten().tolist()) + "};")
 * lens = lambda L, T: torch.arange(T)[None] >= torch.tensor(L)[:, None]  # key padding
 * causal = lambda T: torch.triu(torch.full((T, T), float('-inf')), 1)
 * def pe(T, C):
 *     t, i = torch.arange(T)[:, None], torch.arange(C)[None, :]
 *     a = t / 10000 ** ((i - i % 2) / C)
 *     return torch.where(i % 2 == 0, torch.sin(a), torch.cos(a))
 * # MHA cross-attention: E 4, H 2, B 2, Tq 2, Tk 3, key lengths {3, 2}
 * mha = torch.nn.MultiheadAttention(4, 2, batch_first=True)
 * n = fill(mha.parameters())
 * x, mem = f(16, n).view(2, 2, 4), f(24, n + 16).view(2, 3, 4)
 * out, probs = mha(x, mem, mem, key_padding_mask=lens([3, 2], 3), average_attn_weights=False)
 * show("mha_out", out); show("mha_probs", probs)
 * # Encoder-decoder: C 4, H 2, d_ff 6, 1 + 2 layers, GELU, sinusoidal, x sqrt(C)
 * src = torch.tensor([[3, 1, 4, 6], [5, 2, 0, 0]]); tgt = torch.tensor([[1, 2, 3], [1, 5, 0]])
 * sp, tp = lens([4, 2], 4), lens([3, 2], 3)
 * for nf in (False, True):
 *     tr = torch.nn.Transformer(4, 2, 1, 2, 6, 0.0, 'gelu', batch_first=True, norm_first=nf)
 *     se, te, gen = torch.nn.Embedding(7, 4), torch.nn.Embedding(6, 4), torch.nn.Linear(4, 6)
 *     fill([se.weight, te.weight] + list(tr.state_dict().values()) + list(gen.parameters()))
 *     m = tr.encoder(se(src) * 2 + pe(4, 4), src_key_padding_mask=sp)
 *     y = tr.decoder(te(tgt) * 2 + pe(3, 4), m, tgt_mask=causal(3), tgt_key_padding_mask=tp,
 *                    memory_key_padding_mask=sp)
 *     show("encdec_pre" if nf else "encdec_post", gen(y))
 * # Decoder-only: C 6, H 3, d_ff 5, 2 layers, ReLU, post-LN, learned positions, tied
 * dec = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(6, 3, 5, 0.0, batch_first=True),
 *                                   2, norm=torch.nn.LayerNorm(6), enable_nested_tensor=False)
 * emb, pos, bias = torch.zeros(6, 6), torch.zeros(5, 6), torch.zeros(6)
 * fill([emb, pos] + list(dec.state_dict().values()) + [bias])
 * y = dec(emb[tgt] + pos[:3], mask=causal(3), src_key_padding_mask=tp)
 * show("gpt", y @ emb.T + bias)
 */
static const double mha_out[] = {-0.552247130629, 0.0742588133039, -0.803817458346, -0.261400635848, -0.49650385945, 0.02182997694, -0.760761487691, -0.290108394385, -0.52159996531, 0.0556935307599, -0.799479375718, -0.25101023004, -0.462993263235, -0.00455941962735, -0.744542725901, -0.294282357211};
static const double mha_probs[] = {0.424908907661, 0.217341682461, 0.357749409878, 0.300302079871, 0.3866879971, 0.313009923029, 0.394097171434, 0.190603797148, 0.415299031418, 0.270906406326, 0.453505686767, 0.275587906907, 0.499219790111, 0.500780209889, 0, 0.51256649106, 0.48743350894, 0, 0.358429321614, 0.641570678386, 0, 0.540435725729, 0.459564274271, 0};
static const double encdec_post[] = {0.217374407837, 0.112444129628, -0.293525949416, -0.551727364144, -0.320601794742, -0.381533635034, 0.21759228529, 0.111924450172, -0.292764519681, -0.552642556902, -0.319638594352, -0.382433540129, 0.216956280937, 0.113566047053, -0.29522201384, -0.549653141987, -0.322814487231, -0.379438160599, 0.2175296598, 0.111845728661, -0.292553547859, -0.552961400121, -0.319248723768, -0.382849386459, 0.217585935842, 0.111804384738, -0.292531913567, -0.552960824825, -0.319271442172, -0.382807150177, 0.217423435109, 0.112206031831, -0.293126294561, -0.552242393815, -0.320030904675, -0.382094416114};
static const double encdec_pre[] = {-0.0881849193745, 0.386527286621, -0.504461169644, -0.428314767272, -0.342230786299, -0.464187593803, -0.0593895240853, 0.338375113705, -0.442516458787, -0.496893975268, -0.274941773399, -0.52241080828, 0.13296056347, 0.183145223389, -0.342344405153, -0.530432778643, -0.311911807395, -0.419204020972, -0.0859758765774, 0.381708929023, -0.497590284094, -0.436444213407, -0.33378218032, -0.471979078271, 0.12428599452, 0.152169925429, -0.275298600708, -0.625801590273, -0.199240361997, -0.53615831536, 0.0882951272686, 0.185302334021, -0.301743924607, -0.609099248897, -0.20426967647, -0.543383191827};
static const double gpt[] = {-0.409726631737, 1.01223591293, -0.193931176483, -1.2934380209, 0.352288099161, -0.278409139442, -0.408847689858, 0.999558661814, -0.182379799269, -1.29208714514, 0.339412159028, -0.267134877232, -0.426624564092, 0.997075962945, -0.162168585062, -1.30942197922, 0.336198124815, -0.246648613039, -0.409726631737, 1.01223591293, -0.193931176483, -1.2934380209, 0.352288099161, -0.278409139442, -0.408137040302, 0.999246272511, -0.182784144353, -1.29137828673, 0.339121453101, -0.267558692188, -0.425167393995, 1.00070124791, -0.167180425528, -1.30813304614, 0.339946138499, -0.251612554655};

static void fill_sin(tx_params *q) {
    for (size_t i = 0; i < q->size; i++)
        q->data[i] = (tx_real)(0.5 * sin(0.7 * (double)i + 0.3));
}

/* The tokens of the script: B 2, Ts 4, Tt 3, second rows padded. */
static const int src[] = {3, 1, 4, 6, 5, 2, 0, 0}, src_len[] = {4, 2};
static const int tgt[] = {1, 2, 3, 1, 5, 0}, tgt_len[] = {3, 2};

START_TEST(test_mha_torch) {
    tx_mha a;
    tx_mha_declare(&a, &p, "attn", 4, 2, 1, 0);
    tx_tensor *x = tx_params_new(&p, "x", TX_INIT_ZERO, 3, 2, 2, 4);
    tx_tensor *mem = tx_params_new(&p, "mem", TX_INIT_ZERO, 3, 2, 3, 4);
    tx_params_alloc(&p);
    fill_sin(&p);
    tx_tensor *probs;
    static const int len[] = {3, 2};
    tx_tensor *out = tx_mha_forward(&tp, &a, x, mem,
                                    tx_mask_padding(&tp, len, 2, 3), &probs, NULL);
    expect(out, mha_out, 16, 1e-10);
    expect(probs, mha_probs, 24, 1e-10);
}
END_TEST

static void check_model_torch(tx_model_config cfg, const double *want) {
    tx_err err;
    ck_assert_int_eq(tx_model_build(&m, &cfg, &p, &err), TX_OK);
    tx_params_alloc(&p);
    fill_sin(&p);
    tx_tensor *memory = cfg.kind == TX_ENCODER_DECODER
                            ? tx_model_encode(&tp, &m, src, src_len, 2, 4, NULL)
                            : NULL;
    expect(tx_model_decode(&tp, &m, memory, src_len, tgt, tgt_len, 2, 3, NULL),
           want, 36, 1e-9);
}

START_TEST(test_model_torch) {
    tx_model_config cfg = {.kind = TX_ENCODER_DECODER, .d_model = 4, .heads = 2, .bias = 1,
                           .encoder_layers = 1, .decoder_layers = 2, .d_ff = 6,
                           .activation = TX_ACT_GELU, .norm_first = _i,
                           .positions = TX_POS_SINUSOIDAL,
                           .scale_embeddings = 1, .src_vocab = 7, .tgt_vocab = 6};
    check_model_torch(cfg, _i ? encdec_pre : encdec_post);
}
END_TEST

START_TEST(test_gpt_torch) {
    tx_model_config cfg = {.kind = TX_DECODER_ONLY, .d_model = 6, .heads = 3, .bias = 1,
                           .decoder_layers = 2, .d_ff = 5,
                           .positions = TX_POS_LEARNED, .tie_embeddings = 1,
                           .tgt_vocab = 6, .max_len = 5};
    check_model_torch(cfg, gpt);
}
END_TEST

/* ---- positions ------------------------------------------------------------ */

START_TEST(test_sinusoid_values) {
    tx_positions pos;
    tx_positions_declare(&pos, &p, "pos", TX_POS_SINUSOIDAL, 0, 5);
    tx_tensor *x = tx_tensor_new(&tp, 0, 3, 1, 4, 5);
    memset(x->data, 0, x->size * sizeof *x->data);
    tx_tensor *pe = tx_positions_forward(&tp, &pos, x);
    /* PE[t, 2i] = sin(t / 10000^(2i/5)), PE[t, 2i+1] = cos(same). */
    ck_near(pe->data[0 * 5 + 0], 0, 1e-15);
    ck_near(pe->data[0 * 5 + 1], 1, 1e-15);
    ck_near(pe->data[1 * 5 + 0], sin(1.0), 1e-15);
    ck_near(pe->data[1 * 5 + 1], cos(1.0), 1e-15);
    ck_near(pe->data[3 * 5 + 2], sin(3 / pow(10000, 0.4)), 1e-15);
    ck_near(pe->data[3 * 5 + 3], cos(3 / pow(10000, 0.4)), 1e-15);
    ck_near(pe->data[2 * 5 + 4], sin(2 / pow(10000, 0.8)), 1e-15);
}
END_TEST

/* ---- attention masking ---------------------------------------------------- */

/* Logits of the positions up to t do not move when later tokens change. */
START_TEST(test_causal) {
    int kind = _i ? TX_DECODER_ONLY : TX_ENCODER_DECODER;
    build(small(kind, TX_POS_LEARNED));
    static const int src5[] = {1, 2, 3, 4, 5, 6, 7, 8, 1, 2};
    int a[12] = {1, 2, 3, 4, 5, 6, 6, 5, 4, 3, 2, 1}, b[12];
    memcpy(b, a, sizeof a);
    const int t = 2; /* change positions 3..5 of both rows */
    for (int r = 0; r < 2; r++)
        for (int j = t + 1; j < 6; j++) b[r * 6 + j] = (a[r * 6 + j] + 3) % 7;
    tx_tensor *mem = kind == TX_ENCODER_DECODER
                         ? tx_model_encode(&tp, &m, src5, NULL, 2, 5, NULL)
                         : NULL;
    tx_tensor *la = tx_model_decode(&tp, &m, mem, NULL, a, NULL, 2, 6, NULL);
    tx_tensor *lb = tx_model_decode(&tp, &m, mem, NULL, b, NULL, 2, 6, NULL);
    double later = 0;
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < 6; j++)
            for (int v = 0; v < 7; v++) {
                size_t k = ((size_t)r * 6 + j) * 7 + v;
                if (j <= t) ck_near(la->data[k], lb->data[k], 1e-12);
                else later = fmax(later, fabs(la->data[k] - lb->data[k]));
            }
    ck_assert_msg(later > 1e-3, "later logits moved by only %g", later);
}
END_TEST

static void check_rows(const tx_tensor *probs, const int *len, int causal) {
    int B = probs->shape[0], H = probs->shape[1], Tq = probs->shape[2],
        Tk = probs->shape[3];
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < Tq; i++) {
                const tx_real *row = probs->data + (((size_t)b * H + h) * Tq + i) * Tk;
                double sum = 0;
                for (int j = 0; j < Tk; j++) {
                    int hidden = (len && j >= len[b]) || (causal && j > i);
                    if (hidden)
                        ck_assert_msg(row[j] == 0, "p[%d,%d,%d,%d] = %g", b, h,
                                      i, j, (double)row[j]);
                    else
                        ck_assert_msg(row[j] > 0, "p[%d,%d,%d,%d] = %g", b, h,
                                      i, j, (double)row[j]);
                    sum += row[j];
                }
                ck_near(sum, 1, 1e-12);
            }
}

START_TEST(test_padding_probs) {
    build(small(TX_ENCODER_DECODER, TX_POS_SINUSOIDAL));
    static const int s[] = {1, 2, 3, 4, 5, 6, 7, 0, 0, 0}, slen[] = {5, 2};
    static const int g[] = {1, 2, 3, 4, 5, 6, 0, 0}, glen[] = {4, 2};
    tx_attn_maps maps = {0};
    tx_tensor *mem = tx_model_encode(&tp, &m, s, slen, 2, 5, &maps);
    tx_model_decode(&tp, &m, mem, slen, g, glen, 2, 4, &maps);
    for (int l = 0; l < 2; l++) {
        check_rows(maps.enc_self[l], slen, 0);
        check_rows(maps.cross[l], slen, 0);
        check_rows(maps.dec_self[l], glen, 1);
    }
    ck_assert_ptr_null(maps.enc_self[2]);
}
END_TEST

/* Without positions, permuting the source tokens permutes the memory rows;
 * sinusoidal positions break that symmetry. */
START_TEST(test_permutation) {
    build(small(TX_ENCODER_DECODER, _i ? TX_POS_SINUSOIDAL : TX_POS_NONE));
    static const int s[] = {1, 5, 2, 8, 3}, perm[] = {3, 0, 4, 1, 2};
    int sp[5];
    for (int j = 0; j < 5; j++) sp[j] = s[perm[j]];
    tx_tensor *ma = tx_model_encode(&tp, &m, s, NULL, 1, 5, NULL);
    tx_tensor *mb = tx_model_encode(&tp, &m, sp, NULL, 1, 5, NULL);
    double diff = 0;
    for (int j = 0; j < 5; j++)
        for (int c = 0; c < 8; c++)
            diff = fmax(diff, fabs(mb->data[j * 8 + c] - ma->data[perm[j] * 8 + c]));
    if (_i) ck_assert_msg(diff > 1e-3, "with positions: max diff %g", diff);
    else ck_assert_msg(diff < 1e-10, "without positions: max diff %g", diff);
}
END_TEST

START_TEST(test_cross_shapes) {
    build(small(TX_ENCODER_DECODER, TX_POS_SINUSOIDAL));
    static const int s[] = {1, 2, 3, 4, 5, 6, 7, 8, 0, 0}, slen[] = {5, 3};
    static const int g[] = {1, 2, 3, 4, 5, 0}, glen[] = {3, 2};
    tx_attn_maps maps = {0};
    tx_tensor *mem = tx_model_encode(&tp, &m, s, slen, 2, 5, &maps);
    tx_tensor *logits = tx_model_decode(&tp, &m, mem, slen, g, glen, 2, 3, &maps);
    expect_shape(mem, 3, (int[]){2, 5, 8});
    expect_shape(logits, 3, (int[]){2, 3, 7});
    expect_shape(maps.enc_self[1], 4, (int[]){2, 2, 5, 5});
    expect_shape(maps.dec_self[1], 4, (int[]){2, 2, 3, 3});
    expect_shape(maps.cross[1], 4, (int[]){2, 2, 3, 5});
}
END_TEST

/* ---- parameters and configuration ------------------------------------------ */

typedef struct pshape {
    const char *name;
    int d0, d1; /* d1 0: one dimension */
} pshape;

static void expect_params(const pshape *want, int n) {
    ck_assert_int_eq(p.n, n);
    for (int i = 0; i < n; i++) {
        const tx_tensor *t = p.list[i];
        ck_assert_str_eq(t->name, want[i].name);
        ck_assert_int_eq(t->ndim, want[i].d1 ? 2 : 1);
        ck_assert_int_eq(t->shape[0], want[i].d0);
        if (want[i].d1) ck_assert_int_eq(t->shape[1], want[i].d1);
    }
}

START_TEST(test_param_names_encdec) {
    /* C 8, d_ff 12, src V 9, tgt V 7, max_len 8, 1 encoder and 2 decoder layers. */
    static const pshape want[] = {
        {"src_embed.weight", 9, 8}, {"src_pos.weight", 8, 8},
        {"tgt_embed.weight", 7, 8}, {"tgt_pos.weight", 8, 8},
        {"encoder.layers.0.self_attn.in_proj_weight", 24, 8},
        {"encoder.layers.0.self_attn.in_proj_bias", 24, 0},
        {"encoder.layers.0.self_attn.out_proj.weight", 8, 8},
        {"encoder.layers.0.self_attn.out_proj.bias", 8, 0},
        {"encoder.layers.0.linear1.weight", 12, 8},
        {"encoder.layers.0.linear1.bias", 12, 0},
        {"encoder.layers.0.linear2.weight", 8, 12},
        {"encoder.layers.0.linear2.bias", 8, 0},
        {"encoder.layers.0.norm1.weight", 8, 0}, {"encoder.layers.0.norm1.bias", 8, 0},
        {"encoder.layers.0.norm2.weight", 8, 0}, {"encoder.layers.0.norm2.bias", 8, 0},
        {"encoder.norm.weight", 8, 0}, {"encoder.norm.bias", 8, 0},
        {"decoder.layers.0.self_attn.in_proj_weight", 24, 8},
        {"decoder.layers.0.self_attn.in_proj_bias", 24, 0},
        {"decoder.layers.0.self_attn.out_proj.weight", 8, 8},
        {"decoder.layers.0.self_attn.out_proj.bias", 8, 0},
        {"decoder.layers.0.multihead_attn.in_proj_weight", 24, 8},
        {"decoder.layers.0.multihead_attn.in_proj_bias", 24, 0},
        {"decoder.layers.0.multihead_attn.out_proj.weight", 8, 8},
        {"decoder.layers.0.multihead_attn.out_proj.bias", 8, 0},
        {"decoder.layers.0.linear1.weight", 12, 8},
        {"decoder.layers.0.linear1.bias", 12, 0},
        {"decoder.layers.0.linear2.weight", 8, 12},
        {"decoder.layers.0.linear2.bias", 8, 0},
        {"decoder.layers.0.norm1.weight", 8, 0}, {"decoder.layers.0.norm1.bias", 8, 0},
        {"decoder.layers.0.norm2.weight", 8, 0}, {"decoder.layers.0.norm2.bias", 8, 0},
        {"decoder.layers.0.norm3.weight", 8, 0}, {"decoder.layers.0.norm3.bias", 8, 0},
        {"decoder.layers.1.self_attn.in_proj_weight", 24, 8},
        {"decoder.layers.1.self_attn.in_proj_bias", 24, 0},
        {"decoder.layers.1.self_attn.out_proj.weight", 8, 8},
        {"decoder.layers.1.self_attn.out_proj.bias", 8, 0},
        {"decoder.layers.1.multihead_attn.in_proj_weight", 24, 8},
        {"decoder.layers.1.multihead_attn.in_proj_bias", 24, 0},
        {"decoder.layers.1.multihead_attn.out_proj.weight", 8, 8},
        {"decoder.layers.1.multihead_attn.out_proj.bias", 8, 0},
        {"decoder.layers.1.linear1.weight", 12, 8},
        {"decoder.layers.1.linear1.bias", 12, 0},
        {"decoder.layers.1.linear2.weight", 8, 12},
        {"decoder.layers.1.linear2.bias", 8, 0},
        {"decoder.layers.1.norm1.weight", 8, 0}, {"decoder.layers.1.norm1.bias", 8, 0},
        {"decoder.layers.1.norm2.weight", 8, 0}, {"decoder.layers.1.norm2.bias", 8, 0},
        {"decoder.layers.1.norm3.weight", 8, 0}, {"decoder.layers.1.norm3.bias", 8, 0},
        {"decoder.norm.weight", 8, 0}, {"decoder.norm.bias", 8, 0},
        {"generator.weight", 7, 8}, {"generator.bias", 7, 0},
    };
    tx_model_config cfg = small(TX_ENCODER_DECODER, TX_POS_LEARNED);
    cfg.encoder_layers = 1;
    build(cfg);
    expect_params(want, (int)(sizeof want / sizeof *want));
    /* Initialisation: norm weights ones, biases zeros, matrices in ±sqrt(6/(fan_in+fan_out)). */
    tx_tensor *w = tx_params_find(&p, "decoder.layers.1.linear2.weight");
    double bound = sqrt(6.0 / (12 + 8)), wmax = 0;
    for (size_t i = 0; i < w->size; i++) wmax = fmax(wmax, fabs(w->data[i]));
    ck_assert(wmax > 0.5 * bound && wmax <= bound);
    ck_assert(tx_params_find(&p, "encoder.norm.weight")->data[3] == 1);
    ck_assert(tx_params_find(&p, "decoder.layers.0.multihead_attn.in_proj_bias")->data[20] == 0);
}
END_TEST

START_TEST(test_param_names_decoder_only) {
    /* Tied, sinusoidal: no position table, no generator.weight, no cross-attention. */
    static const pshape want[] = {
        {"tgt_embed.weight", 7, 8},
        {"decoder.layers.0.self_attn.in_proj_weight", 24, 8},
        {"decoder.layers.0.self_attn.in_proj_bias", 24, 0},
        {"decoder.layers.0.self_attn.out_proj.weight", 8, 8},
        {"decoder.layers.0.self_attn.out_proj.bias", 8, 0},
        {"decoder.layers.0.linear1.weight", 12, 8},
        {"decoder.layers.0.linear1.bias", 12, 0},
        {"decoder.layers.0.linear2.weight", 8, 12},
        {"decoder.layers.0.linear2.bias", 8, 0},
        {"decoder.layers.0.norm1.weight", 8, 0}, {"decoder.layers.0.norm1.bias", 8, 0},
        {"decoder.layers.0.norm2.weight", 8, 0}, {"decoder.layers.0.norm2.bias", 8, 0},
        {"decoder.norm.weight", 8, 0}, {"decoder.norm.bias", 8, 0},
        {"generator.bias", 7, 0},
    };
    tx_model_config cfg = small(TX_DECODER_ONLY, TX_POS_SINUSOIDAL);
    cfg.decoder_layers = 1;
    cfg.tie_embeddings = 1;
    build(cfg);
    expect_params(want, (int)(sizeof want / sizeof *want));
    ck_assert_ptr_eq(m.generator.weight, m.tgt_embed.weight);
}
END_TEST

START_TEST(test_config_errors) {
    tx_model_config bad[5];
    for (int i = 0; i < 5; i++) bad[i] = small(TX_ENCODER_DECODER, TX_POS_LEARNED);
    bad[0].heads = 3;                  /* does not divide 8 */
    bad[1].dropout = 1;                /* [0, 1) */
    bad[2].decoder_layers = 0;
    bad[3].max_len = 0;                /* learned positions need a table */
    bad[4].encoder_layers = TX_MAX_LAYERS + 1;
    static const char *words[] = {"heads", "dropout", "decoder_layers", "max_len",
                                  "encoder_layers"};
    for (int i = 0; i < 5; i++) {
        tx_err err = {{0}};
        ck_assert_int_eq(tx_model_build(&m, &bad[i], &p, &err), TX_EINPUT);
        ck_assert_msg(strstr(err.msg, words[i]), "message \"%s\"", err.msg);
        ck_assert_int_eq(p.n, 0); /* nothing declared */
    }
}
END_TEST

/* ---- gradients -------------------------------------------------------------- */

START_TEST(test_gradcheck) {
    ck_gradcheck(tx_gc_case_name(tx_gc_layer_rows, _i));
}
END_TEST

Suite *suite(void) {
    Suite *s = suite_create("layers");
    TCase *tc = tcase_create("layers");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_mha_torch);
    tcase_add_loop_test(tc, test_model_torch, 0, 2);
    tcase_add_test(tc, test_gpt_torch);
    tcase_add_test(tc, test_sinusoid_values);
    tcase_add_loop_test(tc, test_causal, 0, 2);
    tcase_add_test(tc, test_padding_probs);
    tcase_add_loop_test(tc, test_permutation, 0, 2);
    tcase_add_test(tc, test_cross_shapes);
    tcase_add_test(tc, test_param_names_encdec);
    tcase_add_test(tc, test_param_names_decoder_only);
    tcase_add_test(tc, test_config_errors);
    int ncases = 0;
    while (tx_gc_case_name(tx_gc_layer_rows, ncases)) ncases++;
    tcase_add_loop_test(tc, test_gradcheck, 0, ncases);
    suite_add_tcase(s, tc);
    return s;
}

TX_TEST_MAIN
