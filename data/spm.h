/* spm.h: SentencePiece (Google's subword tokenizer, a C++ library) behind a
 * small C interface: train a BPE or unigram model from sentences, load one
 * from its bytes, encode text to its ids and decode them back. The one C++
 * file of the project (spm.cc): no C++ exception crosses this interface;
 * every failure comes back as TX_EINPUT with SentencePiece's message. */
#ifndef TX_SPM_H
#define TX_SPM_H

#include <stddef.h>

#include "../core/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tx_spm tx_spm;
enum { TX_SPM_UNIGRAM, TX_SPM_BPE };

/* Trains a model of vocab_size pieces (its specials included: <pad> 0,
 * <bos> 1, <eos> 2, <unk> 3, our ids) from the n sentences, on one thread
 * and with the given seed, so the same sentences give the same bytes. The
 * text is kept as it is (no normalization, spaces as they are, no space
 * added in front): decoding gives back exactly what was encoded. *model
 * gets the model's bytes (malloc'd, the caller frees), *len their count.
 * TX_OK, or TX_EINPUT with SentencePiece's reason (e.g. a vocabulary larger
 * than the text allows) and *model NULL. */
int tx_spm_train(const char *const *sentences, size_t n, int vocab_size, int type, unsigned seed,
                 char **model, size_t *len, tx_err *err);

/* Loads a model from its bytes (a .model file's content). *s is freed with
 * tx_spm_free. TX_OK, or TX_EINPUT ("not a SentencePiece model: ...") and
 * *s NULL. */
int tx_spm_load(tx_spm **s, const char *model, size_t len, tx_err *err);
void tx_spm_free(tx_spm *s);

/* Pieces, SentencePiece's ids 0 .. size-1. */
int tx_spm_size(const tx_spm *s);
/* Piece id's text ("▁the"); valid while s lives. */
const char *tx_spm_piece(const tx_spm *s, int id);
/* Whether piece id is a control symbol (<s>, </s>, padding) or the unknown. */
int tx_spm_is_special(const tx_spm *s, int id);
/* The ids of the unknown piece, BOS, EOS and padding (-1: the model has none). */
void tx_spm_specials(const tx_spm *s, int *unk, int *bos, int *eos, int *pad);

/* Encodes the n bytes at text and writes up to cap of its ids; returns
 * their number, which may exceed cap (then only the first cap were written). */
int tx_spm_encode(const tx_spm *s, const char *text, size_t n, int *ids, int cap);
/* ids [n] back to text, like snprintf: writes what fits in cap bytes (NUL
 * included, never a cut code point) and returns the full length. */
size_t tx_spm_decode(const tx_spm *s, const int *ids, int n, char *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
