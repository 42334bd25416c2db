/* internal.h: what the files of data/ share and nobody else uses: checked
 * allocation, token spans for building vocabularies, the generated tasks'
 * sampler and the TSV reader. */
#ifndef TX_DATA_INTERNAL_H
#define TX_DATA_INTERNAL_H

#include <stdlib.h>

#include "data.h"

/* A token that is not NUL-terminated (a piece of a line). */
typedef struct tx_span {
    const char *s;
    int n;
} tx_span;

/* v from the tokens t [n] (duplicates allowed; t is reordered: its first
 * entries become the distinct tokens, sorted). */
void tx_vocab_build(tx_vocab *v, int src_mode, int tgt_mode, tx_span *t,
                    size_t n);

/* The held-out rule: a source is held out iff its score is below TX_HOLD_OUT. */
#define TX_HOLD_OUT 0.05
uint64_t tx_hash_bytes(const char *s, size_t n); /* FNV-1a of n bytes */
uint64_t tx_text_hash(const char *s); /* FNV-1a of a NUL-terminated text */
double tx_held_out_score(uint64_t seed, const char *src); /* in [0, 1) */

/* Filling a batch row by row: begin, add each example, end (which packs the
 * rows to this batch's longest). tx_batch_fill is the three in one. */
void tx_batch_begin(tx_batch *b, int decoder_only);
void tx_batch_add(tx_batch *b, const tx_example *e);
void tx_batch_end(tx_batch *b);

/* Generated tasks (every TX_TASK_* but TSV). */
/* Buffer bytes for one source or target text; longest sides in tokens. */
size_t tx_task_text_cap(const tx_data_config *c);
void tx_task_max_tokens(const tx_data_config *c, int *max_src, int *max_tgt);
/* Draws one example from the task's training distribution (held-out
 * examples included) into src and tgt of tx_task_text_cap bytes each. */
void tx_task_sample(const tx_data_config *c, tx_rng *r, char *src, char *tgt);
/* Fills v with every token the task can produce. */
void tx_task_vocab(const tx_data_config *c, tx_vocab *v);
/* Number of distinct sources (symbol tasks can be tiny). */
double tx_task_sources(const tx_data_config *c);

/* Reads a TSV file into *text (owned by the caller, also on failure) and the
 * examples *ex [*n] (malloc'd; texts point into *text, ids unset, lengths
 * counted under mode). Returns TX_OK or TX_EINPUT "FILE:LINE: ...". */
int tx_tsv_read(const char *path, int mode, char **text, tx_example **ex,
                int *n, tx_err *err);

/* The text task (lm.c): reads, tokenizes and splits the corpus into d. */
int tx_text_open(tx_data *d, tx_err *err);
void tx_text_next_batch(tx_data *d, tx_batch *b, int n);

#endif
