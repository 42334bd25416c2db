/* tsv.c: reading and checking "source<TAB>target" corpora. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static int count_tokens(int mode, const char *s) {
    const char *tok;
    int len, n = 0;
    while (tx_token_next(mode, &s, &tok, &len)) n++;
    return n;
}

/* Checks one line [p, e) and splits it in place at the tab into ex. */
static int parse_line(const char *path, int line, char *p, char *e, int mode,
                      tx_example *ex, tx_err *err) {
    size_t len = (size_t)(e - p), bad = tx_utf8_check(p, len);
    if (len > TX_TSV_MAX_LINE)
        return tx_error(err, TX_EINPUT, "%s:%d: line longer than %d bytes",
                        path, line, TX_TSV_MAX_LINE);
    if (bad < len)
        return tx_error(err, TX_EINPUT, "%s:%d: invalid UTF-8 at byte %zu",
                        path, line, bad + 1);
    char *tab = memchr(p, '\t', len);
    if (!tab)
        return tx_error(err, TX_EINPUT,
                        "%s:%d: expected 'source<TAB>target', found no tab",
                        path, line);
    if (memchr(tab + 1, '\t', (size_t)(e - tab - 1)))
        return tx_error(err, TX_EINPUT,
                        "%s:%d: expected 'source<TAB>target', found more than "
                        "one tab", path, line);
    *tab = *e = 0;
    ex->src = p;
    ex->tgt = tab + 1;
    ex->src_len = count_tokens(mode, ex->src);
    ex->tgt_len = count_tokens(mode, ex->tgt);
    if (!ex->src_len || !ex->tgt_len)
        return tx_error(err, TX_EINPUT, "%s:%d: empty %s", path, line,
                        ex->src_len ? "target" : "source");
    return TX_OK;
}

int tx_tsv_read(const char *path, int mode, char **text, tx_example **ex,
                int *n, tx_err *err) {
    size_t size;
    *ex = NULL;
    *n = 0;
    int rc = tx_read_file(path, text, &size, err), cap = 0, line = 0;
    if (rc) return rc;
    char *p = *text, *end = p + size;
    if (size >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) p += 3; /* byte order mark */
    for (char *next; !rc && p < end; p = next) {
        char *nl = memchr(p, '\n', (size_t)(end - p)), *e = nl ? nl : end;
        next = nl ? nl + 1 : end;
        line++;
        if (e > p && e[-1] == '\r') e--;
        if (e == p) continue; /* blank lines separate nothing */
        if (*n == cap) {
            *ex = tx_realloc(*ex, (size_t)(cap = cap ? 2 * cap : 1024) * sizeof **ex);
        }
        rc = parse_line(path, line, p, e, mode, &(*ex)[*n], err);
        *n += !rc;
    }
    if (!rc && !*n)
        rc = tx_error(err, TX_EINPUT,
                      "%s:%d: empty file: expected 'source<TAB>target' lines",
                      path, line + 1);
    if (rc) {
        free(*ex);
        *ex = NULL;
        *n = 0;
    }
    return rc;
}
