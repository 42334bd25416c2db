/* sample.c: `tapeformer sample CHECKPOINT [--prompt TEXT] [--tokens N]
 * [--temperature T] [--top-k K] [--top-p P] [--seed S] [--count C]`: text
 * drawn from a decoder-only model, printed as it is made. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../decode/decode.h"
#include "cli.h"
#include "commands.h"

static const char usage[] =
    "usage: tapeformer sample CHECKPOINT [options]\n"
    "Continues a prompt with tokens drawn from a decoder-only model and prints them as\n"
    "they come. A model of the text task continues the prompt's text (printed first); a\n"
    "model of a pair task reads the prompt as a source and prints its output, up to EOS.\n"
    "  --prompt TEXT      the prompt (default: all of stdin; empty: a newline)\n"
    "  --tokens N         tokens to draw per sample (default 200)\n"
    "  --temperature T    divides the logits (default 1; 0: always the likeliest token)\n"
    "  --top-k K          draw among the K likeliest tokens only (default 0: all)\n"
    "  --top-p P          and among the fewest whose probability reaches P (default 1)\n"
    "  --seed S           the same seed gives the same samples (default 1)\n"
    "  --count C          samples, one after the other, separated by a line '---' (default 1)\n"
    "  --strict           a prompt token outside the vocabulary is an error\n"
    "  --no-cache         recompute every step in full (slower; for testing)\n"
    "Past the model's context (its positions), the last half of the text so far\n"
    "becomes the prompt. Exit status 2 on a bad file, option or prompt.\n";

typedef struct printer {
    const tx_vocab *v;
    int words;  /* tokens printed so far (word vocabularies need spaces) */
    int flush;  /* a terminal: show each token at once */
} printer;

static void emit(void *ctx, int row, int tok) {
    printer *p = ctx;
    (void)row;
    if (tok < TX_NSPECIAL) return; /* BOS, PAD, UNK: nothing to show */
    if (p->v->mode[TX_TGT] == TX_TOK_WORD && p->words++) putchar(' ');
    char text[256];
    tx_vocab_show(p->v, tok, ' ', text, sizeof text);
    fputs(text, stdout);
    if (p->flush) fflush(stdout);
}

/* All of stdin as one string (malloc'd), or NULL on a read error. */
static char *read_all(FILE *f) {
    size_t cap = 4096, n = 0, got;
    char *s = tx_malloc(cap);
    while ((got = fread(s + n, 1, cap - n - 1, f)) > 0)
        if ((n += got) == cap - 1) s = tx_realloc(s, cap *= 2);
    s[n] = 0;
    return s;
}

/* One sample: tokens ids [n] (the prompt) continued for `want` tokens. */
static void one(tx_tool *tool, const int *prompt, int n, int want, tx_search *s) {
    const tx_model_config *mc = &tool->t.cfg.model;
    int text = tool->t.cfg.data.task == TX_TASK_TEXT, W = mc->max_len;
    int cap = n + want + 1, *all = tx_malloc((size_t)cap * sizeof *all), len = n;
    memcpy(all, prompt, (size_t)n * sizeof *all);
    int *out = tx_malloc(((size_t)want + 1) * sizeof *out), got, eos = 0;
    /* the prompt: all of it if it fits the window, else its end */
    int start = n > W - 1 ? n - (W - 1) : 0;
    while (want > 0 && !eos) {
        int plen = len - start, room = W - plen + 1;
        s->max_len = want < room ? want : room;
        const int *p = all + start;
        tx_decode_prompts(&tool->tp, &tool->t.model, &p, &plen, 1, s,
                          &(tx_decoded){.tok = out, .len = &got, .eos = &eos});
        tx_tape_reset(&tool->tp);
        memcpy(all + len, out, (size_t)got * sizeof *out);
        len += got;
        want -= got;
        if (!text) break; /* a pair task's output ends at EOS or the positions' end */
        start = len - W / 2 > 0 ? len - W / 2 : 0;
        if (got == 0) break;
    }
    free(all);
    free(out);
}

int tx_cmd_sample(int argc, char **argv) {
    const char *path = NULL, *prompt = NULL;
    int tokens = 200, top_k = 0, count = 1, strict = 0, no_cache = 0;
    long seed = 1;
    double temperature = 1, top_p = 1;
    const tx_arg args[] = {{"prompt", TX_ARG_STR, &prompt, 0, 0},
                           {"tokens", TX_ARG_INT, &tokens, 0, 1 << 24},
                           {"temperature", TX_ARG_REAL, &temperature, 0, 100},
                           {"top-k", TX_ARG_INT, &top_k, 0, 1 << 24},
                           {"top-p", TX_ARG_REAL, &top_p, 1e-9, 1},
                           {"seed", TX_ARG_LONG, &seed, 0, 1e15},
                           {"count", TX_ARG_INT, &count, 1, 1 << 20},
                           {"strict", TX_ARG_FLAG, &strict, 0, 0},
                           {"no-cache", TX_ARG_FLAG, &no_cache, 0, 0}};
    const char **pos[] = {&path};
    int rc = tx_cli_parse(usage, argc, argv, args, 9, pos, 1);
    if (rc) return rc < 0 ? 0 : rc;
    tx_tool tool;
    if (tx_tool_open(&tool, "sample", path)) return 2;
    tool.strict = strict;
    const tx_trained *t = &tool.t;
    int text = t->cfg.data.task == TX_TASK_TEXT;
    char *input = NULL;
    if (t->cfg.model.kind != TX_DECODER_ONLY) {
        fprintf(stderr, "sample: %s: an encoder-decoder model maps sources to targets: "
                        "use 'tapeformer generate'\n", path);
        rc = 2;
    } else if (!prompt && !(input = read_all(stdin))) {
        rc = 2;
    }
    const char *ptext = prompt ? prompt : input;
    if (!rc && !*ptext) ptext = "\n";
    int cap = rc ? 0 : (int)strlen(ptext) + 2, *ids = tx_malloc(((size_t)cap + 1) * sizeof *ids), n = 0;
    tx_err err;
    const char *where = prompt ? "--prompt" : "stdin";
    if (!rc && (n = tx_tool_encode(&tool, where, TX_SRC, ptext, ids, cap, &err)) < 0) {
        fprintf(stderr, "sample: %s: %s\n", where, err.msg);
        rc = 2;
    }
    /* a pair task's prompt is a source: then BOS, as training laid them out */
    if (!rc && !text) {
        if (t->cfg.model.positions == TX_POS_LEARNED && n + 1 > t->cfg.model.max_len) {
            fprintf(stderr, "sample: %s: the source has %d tokens, the model's positions allow "
                            "at most %d\n", where, n, t->cfg.model.max_len - 1);
            rc = 2;
        }
        ids[n++] = TX_BOS;
    }
    printer pr = {&t->vocab, 0, isatty(1)};
    for (int c = 0; !rc && c < count; c++) {
        if (c) puts("\n---");
        tx_rng rng;
        tx_rng_seed(&rng, (uint64_t)seed * 0x9e3779b97f4a7c15ULL + (uint64_t)c);
        tx_search s = {.beam = 1, .no_cache = no_cache, .rng = &rng,
                       .temperature = temperature, .top_k = top_k, .top_p = top_p,
                       .emit = emit, .ctx = &pr};
        pr.words = 0;
        if (text)
            for (int i = 0; i < n; i++) emit(&pr, 0, ids[i]);
        one(&tool, ids, n, tokens, &s);
    }
    if (!rc) putchar('\n');
    if (fflush(stdout) && !rc) rc = 1;
    free(ids);
    free(input);
    tx_tool_close(&tool);
    return rc;
}
