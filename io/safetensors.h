/* safetensors.h: reading and writing the safetensors checkpoint format
 * (github.com/huggingface/safetensors): an 8-byte little-endian header length,
 * a JSON header naming each tensor's dtype, shape and byte range, the data. */
#ifndef TX_SAFETENSORS_H
#define TX_SAFETENSORS_H

#include "../core/base.h"

#define TX_ST_MAXDIM 8

/* One tensor as stored: raw little-endian bytes of `dtype` ("F32", "F64",
 * "I64", "I32", "I16", "I8", "U8", "U16", "U32", "U64", "F16", "BF16",
 * "BOOL", "F8_E4M3", "F8_E5M2"). */
typedef struct tx_st_tensor {
    const char *name;
    const char *dtype;
    int ndim; /* 0 for a scalar */
    int64_t shape[TX_ST_MAXDIM];
    const void *data; /* [nbytes]; when read: not aligned, memcpy */
    size_t nbytes;    /* dtype size · product of shape */
} tx_st_tensor;

/* A file in memory: tensors in file order of their data, their names and
 * data pointing into memory the struct owns. */
typedef struct tx_st_file {
    tx_st_tensor *tensors; /* [n] */
    int n;
    unsigned char *bytes; /* the whole file (mapped, or read when it cannot be) */
    size_t size;
    int mapped;
    void *header; /* the parsed JSON (cJSON *) */
} tx_st_file;

/* Bytes per element of a dtype name, 0 if unknown. */
size_t tx_st_dtype_size(const char *dtype);

/* Writes n tensors (in that order, keys in the header in that order) and
 * nmeta_pairs string pairs meta = {key0, value0, key1, value1, ...} (may be
 * NULL when 0) as "__metadata__". Atomic: writes PATH.tmp, syncs it, renames
 * it to PATH. Returns TX_OK, or TX_EIO with "PATH: reason" in err, having
 * removed the temporary file and left any old PATH untouched. Aborts on
 * programmer errors: unknown dtype, nbytes not matching the shape, a
 * duplicate name or one spelled "__metadata__". */
int tx_st_write(const char *path, const tx_st_tensor *t, int n,
                const char *const *meta, int nmeta_pairs, tx_err *err);

/* Fault injection for the tests: the next tx_st_write SIGKILLs the process
 * once it has written `bytes` bytes of its temporary file, as a crash
 * mid-write would. 0 turns it off. */
void tx_st_crash_after(size_t bytes);

/* Reads and validates the whole file into f. Returns TX_OK (free f with
 * tx_st_free), or TX_EINPUT if it cannot be read ("PATH: cannot ...") or
 * "PATH: byte OFFSET: what was expected" if it breaks the format; on failure
 * f holds nothing to free. */
int tx_st_read(const char *path, tx_st_file *f, tx_err *err);

/* The tensor called name, or NULL. */
const tx_st_tensor *tx_st_get(const tx_st_file *f, const char *name);
/* The metadata value for key, or NULL. */
const char *tx_st_meta(const tx_st_file *f, const char *key);
void tx_st_free(tx_st_file *f);

#endif
