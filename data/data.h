/* data.h: training data: the generated tasks (copy, reverse, sort, numbers in
 * English or Chinese), user TSV corpora, vocabularies and padded batches. */
#ifndef TX_DATA_H
#define TX_DATA_H

#include "../core/base.h"
#include "spm.h"

enum { TX_TASK_COPY, TX_TASK_REVERSE, TX_TASK_SORT, TX_TASK_NUMBERS_EN,
       TX_TASK_NUMBERS_ZH, TX_TASK_TSV, TX_TASK_TEXT };
enum { TX_TOK_CHAR, TX_TOK_WORD, TX_TOK_BYTE, TX_TOK_SPM /* SentencePiece */ };

typedef struct tx_data_config {
    int task;            /* TX_TASK_* */
    int symbols;         /* symbol tasks: symbols 1..N */
    int min_len, max_len;/* symbol tasks: sequence lengths */
    char train_file[512];/* TSV task */
    char valid_file[512];/* TSV task; empty: hold out part of train_file */
    int tokenize;        /* TX_TOK_* */
    int vocab_size;      /* sentencepiece: pieces, the four specials included */
    int spm_type;        /* sentencepiece: TX_SPM_UNIGRAM or TX_SPM_BPE (spm.h), trained here */
    char spm_model[512]; /* sentencepiece: a .model file to use instead */
    int context;         /* text: tokens a training window predicts from */
    uint64_t seed;
    int valid_examples;  /* K: the validation set holds at most K examples */
} tx_data_config;

/* Limits of the symbol tasks (configuration checks them). */
#define TX_MAX_SYMBOLS 100000
#define TX_MAX_SEQ 1024
#define TX_MAX_CONTEXT 65536
/* Longest TSV line in bytes, line break excluded. */
#define TX_TSV_MAX_LINE 4096

/* ---- text ----------------------------------------------------------------- */

/* Offset of the first byte of s[0..n) that is not well-formed UTF-8 (overlong
 * forms, surrogates, code points above U+10FFFF and, since texts are
 * NUL-terminated, NUL count as malformed), or n. */
size_t tx_utf8_check(const char *s, size_t n);

/* One tokenizer step: finds the next token at *p (char: one UTF-8 code point,
 * a stray byte counting as one; word: a run of non-whitespace), stores it as
 * (*tok, *len), advances *p past it and returns 1; returns 0 at the end. */
int tx_token_next(int mode, const char **p, const char **tok, int *len);

/* ---- vocabulary ----------------------------------------------------------- */

/* One vocabulary shared by source and target. The ids below come first, then
 * every token in strcmp (UTF-8 byte = code point) order. PAD doubles as the
 * loss's ignore index. Each side has its own tokenization mode. */
enum { TX_PAD = 0, TX_BOS = 1, TX_EOS = 2, TX_UNK = 3, TX_NSPECIAL = 4 };
enum { TX_SRC = 0, TX_TGT = 1 };

typedef struct tx_vocab {
    int mode[2];  /* TX_TOK_* of the source [TX_SRC] and target [TX_TGT] */
    int size;     /* V, the specials included */
    char **tok;   /* [V] NUL-terminated; "<pad>" "<bos>" "<eos>" "<unk>" first */
    /* SentencePiece (both modes TX_TOK_SPM): tok holds the pieces, ours in
     * the model's order after the specials; the model does the tokenizing */
    struct tx_spm *spm;
    int *to_spm;       /* [V] the model's id of each of ours (-1: none) */
    int *from_spm;     /* [the model's size] ours of each of the model's */
    char *spm_model;   /* [spm_len] the model's bytes, saved with checkpoints */
    size_t spm_len;
} tx_vocab;

/* A vocabulary from a SentencePiece model's bytes (copied): ours are
 * "<pad>" "<bos>" "<eos>" "<unk>" (the model's own, whatever its ids), then
 * its other pieces in its order; its other control pieces read as UNK.
 * TX_OK, or TX_EINPUT ("not a SentencePiece model: ...") with v empty. */
int tx_vocab_from_spm(tx_vocab *v, const char *model, size_t len, tx_err *err);
/* Trains a SentencePiece model of cfg->vocab_size pieces and cfg->spm_type
 * from the n sentences (or loads cfg->spm_model when set) into v: the same
 * sentences and seed give the same model bytes on any machine. TX_OK, or
 * TX_EINPUT naming the key or file and SentencePiece's reason. */
int tx_vocab_sentencepiece(tx_vocab *v, const tx_data_config *cfg, const char *const *sentences,
                           size_t n, tx_err *err);

/* Tokenizes text by the side's mode (SentencePiece: line by line, each
 * with its line break), writes up to cap ids (unknown tokens
 * become TX_UNK) and returns the number of tokens in text, which may exceed
 * cap (then only the first cap were written). */
int tx_vocab_encode(const tx_vocab *v, int side, const char *text, int *ids,
                    int cap);
/* Number of tokens of text (tokenized by the side's mode) that are not in
 * the vocabulary; the first of them goes to (*first, *first_len). */
int tx_vocab_unknown(const tx_vocab *v, int side, const char *text, const char **first,
                     int *first_len);
/* ids [n] back to text: words joined by single spaces, chars concatenated;
 * PAD and BOS are skipped, EOS ends the text, UNK prints "<unk>". Writes
 * whole tokens while they fit in cap bytes (NUL included) and, like snprintf,
 * returns the length the full text needs. */
size_t tx_vocab_decode(const tx_vocab *v, int side, const int *ids, int n,
                       char *out, size_t cap);
/* Serialises v as text for checkpoint metadata: a header line
 * "tapeformer-vocab <src mode> <tgt mode>" then one token per line (ids from
 * TX_NSPECIAL on); SentencePiece: "tapeformer-vocab sentencepiece
 * sentencepiece" then "model " and the model's bytes in base64 (RFC 4648).
 * Returns a malloc'd string the caller frees. */
char *tx_vocab_to_string(const tx_vocab *v);
/* Parses tx_vocab_to_string's format into v (freed with tx_vocab_free).
 * Returns TX_OK, or TX_EINPUT with "vocabulary:LINE: ..." and v left empty. */
int tx_vocab_from_string(tx_vocab *v, const char *s, tx_err *err);
void tx_vocab_free(tx_vocab *v);

/* ---- tasks ---------------------------------------------------------------- */

#define TX_NUMBER_TEXT 128 /* bytes enough for any tx_number_* output */
/* n in [0, 999999] in words: English "one thousand two hundred four", Chinese
 * "一千二百零四". out has at least TX_NUMBER_TEXT bytes. */
void tx_number_en(int n, char *out);
void tx_number_zh(int n, char *out);

/* The validation rule of the generated tasks and of TSV files without a
 * valid_file: an example is held out iff a seeded hash of its source text
 * falls in a fixed 5% bucket, so a source is either always or never held out. */
int tx_data_held_out(uint64_t seed, const char *src);

/* ---- batches -------------------------------------------------------------- */

/* One example: texts and their tokens (no BOS/EOS). */
typedef struct tx_example {
    const char *src, *tgt;
    const int *src_ids;  /* [src_len] */
    const int *tgt_ids;  /* [tgt_len] */
    int src_len, tgt_len;
} tx_example;

/* B examples padded with PAD to this batch's longest rows. Two layouts:
 * encoder-decoder: src = source tokens (no BOS/EOS), tgt_in = BOS + target,
 *   tgt_out = target + EOS, tgt_len = target tokens + 1.
 * decoder-only: seq = source + BOS + target + EOS, tgt_in = seq[:-1],
 *   tgt_out = seq[1:] with the positions that predict the source and BOS set
 *   to PAD (ignored), tgt_len = Ls + Lt + 1; src is unused (Ts = 0) but
 *   src_len still holds Ls, the prompt length up to BOS exclusive.
 * The caller owns it: allocate once for the largest batch, refill per step. */
typedef struct tx_batch {
    int B;               /* examples in this batch */
    int Ts, Tt;          /* this batch's longest source / decoder row */
    int *src;            /* [B*Ts] */
    int *src_len;        /* [B] */
    int *tgt_in;         /* [B*Tt] */
    int *tgt_out;        /* [B*Tt] */
    int *tgt_len;        /* [B] */
    int decoder_only;
    int cap_b, cap_ts, cap_tt; /* allocated room */
} tx_batch;

/* Room for max_b examples of at most max_src / max_tgt tokens, either layout.
 * Aborts if the heap is exhausted; release with tx_batch_free. */
void tx_batch_alloc(tx_batch *b, int max_b, int max_src, int max_tgt);
void tx_batch_free(tx_batch *b);
/* Fills b with ex [n] (n <= cap_b); asserts that every example fits. */
void tx_batch_fill(tx_batch *b, const tx_example *ex, int n, int decoder_only);

/* ---- the data stream ------------------------------------------------------ */

/* A task's vocabulary, its validation examples and the training stream. The
 * stream's whole position is TX_DATA_POS uint64 values (rng state, epoch,
 * index): restoring them replays exactly the same batches. */
#define TX_DATA_POS 6

typedef struct tx_data {
    tx_data_config cfg;
    tx_vocab vocab;
    int max_src, max_tgt; /* longest source / target of any example, tokens */
    tx_example *valid;    /* [n_valid] fixed, deterministic order */
    int n_valid;
    /* the text task: no examples but token streams; validation is the first
     * valid_windows windows of context + 1 tokens of text_valid, each
     * starting where the previous one's last prediction was */
    const int *text_valid; /* [n_text_valid] validation token ids */
    size_t n_text_valid;
    int valid_windows;
    /* private */
    tx_example *train;    /* [n_train] TSV only */
    int n_train;
    int *order;           /* [n_train] TSV: this epoch's permutation */
    uint64_t epoch, index;
    tx_rng rng;           /* generated tasks: the sampling stream */
    tx_example sample;    /* generated tasks: the example being drawn */
    char *text[2];        /* storage for [0] training, [1] validation texts */
    int *ids[2];          /* storage for their token ids */
    size_t n_text_train;  /* text: training tokens, ids[0] */
} tx_data;

/* Builds the vocabulary and validation set of cfg's task (TSV: reads the
 * files, whose errors come back as "FILE:LINE: ..."). Returns TX_OK or
 * TX_EINPUT (unreadable files too); on failure d holds nothing. Release with
 * tx_data_free. */
int tx_data_open(tx_data *d, const tx_data_config *cfg, tx_err *err);
void tx_data_free(tx_data *d);
/* The next n training examples into b (never a validation example); for the
 * text task n windows of context + 1 tokens at random offsets of the
 * training text (decoder-only layout, no prompt: tgt_in the first context
 * tokens, tgt_out the last). */
void tx_data_next_batch(tx_data *d, tx_batch *b, int n, int decoder_only);
/* b <- n windows of context + 1 tokens starting at tokens + offset[i]. */
void tx_batch_fill_windows(tx_batch *b, const int *tokens, const size_t *offset, int n,
                           int context);
/* Token id's text into out (cap bytes, truncated like snprintf); in a
 * SentencePiece vocabulary its word marker "▁" (U+2581) is written as
 * `space`: ' ' to show the text, '_' for a label. */
void tx_vocab_show(const tx_vocab *v, int id, char space, char *out, size_t cap);
/* Characters a token's text holds (its UTF-8 lead bytes): bits per
 * character divide by their sum, comparable across tokenizations. */
int tx_vocab_chars(const tx_vocab *v, int id);
void tx_data_get_pos(const tx_data *d, uint64_t pos[TX_DATA_POS]);
/* Returns TX_EINPUT (message "data position: ...") if pos cannot come from
 * this data set. */
int tx_data_set_pos(tx_data *d, const uint64_t pos[TX_DATA_POS], tx_err *err);

#endif
