/* fuzz.h: what the libFuzzer harnesses of fuzz/ share: a file in memory
 * (memfd) that readers open by path, since the loaders under test read files,
 * and a check that aborts so libFuzzer records the input. */
#ifndef TX_FUZZ_H
#define TX_FUZZ_H

#define _GNU_SOURCE /* memfd_create; include this header first */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Replaces the memory file's contents with data [size] and returns a path
 * that opens it ("/proc/self/fd/N"), valid for the process's lifetime. */
static inline const char *fuzz_file(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("tx_fuzz", 0);
        if (fd < 0) perror("memfd_create"), abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size)
        perror("fuzz_file"), abort();
    return path;
}

/* A property of a successful load that must hold for every input. */
#define FUZZ_CHECK(cond)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__,         \
                    __LINE__, #cond);                                          \
            abort();                                                           \
        }                                                                      \
    } while (0)

#endif
