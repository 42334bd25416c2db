/* fuzz_config.c: libFuzzer harness of the INI configuration reader. The input
 * is INI text. Properties: no crash; a rejected text gets a one-line message;
 * an accepted one survives validation and writes back to INI text that reads
 * back to the same configuration (what checkpoints rely on). The input is
 * also tried as one --set assignment. */
#include "fuzz.h" /* first: it defines _GNU_SOURCE */

#include <string.h>

#include "../io/config.h"

#define TEXT_CAP (1 << 16)

static char *written(const tx_config *c) {
    char *buf = malloc(TEXT_CAP);
    FUZZ_CHECK(buf && tx_config_write(c, buf, TEXT_CAP) < TEXT_CAP);
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    tx_config c, back;
    tx_err err;
    if (tx_config_load_string(&c, text, "fuzz.ini", &err) == TX_OK) {
        tx_config_validate(&c, &err);
        char *a = written(&c);
        FUZZ_CHECK(tx_config_load_string(&back, a, "fuzz.ini", &err) == TX_OK);
        char *b = written(&back);
        FUZZ_CHECK(!strcmp(a, b));
        free(a);
        free(b);
    } else {
        FUZZ_CHECK(err.msg[0] && !strchr(err.msg, '\n'));
    }
    tx_config_defaults(&c);
    tx_config_set(&c, text, &err);
    free(text);
    return 0;
}
