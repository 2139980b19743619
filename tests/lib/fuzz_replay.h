#pragma once
/*
 * What every libFuzzer target's replay shares: reading a corpus file whole, and the replay's
 * main, which CTest runs over the target's corpus (built with FSD_FUZZ_REPLAY, no libFuzzer).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The whole file at `path`, malloc'd (*len bytes), or NULL when it cannot be read. */
static inline uint8_t *fuzz_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    size_t got;
    while (buf != NULL && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            uint8_t *grown = realloc(buf, cap * 2);
            if (grown == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = grown;
            cap *= 2;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

#ifdef FSD_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The replay's main: runs each file, about 32 of its prefixes and 32 single-byte corruptions
 * of it (each of five values), so a CTest run reaches the error paths near every seed.
 * Returns the exit status.
 */
static inline int fuzz_replay_main(int argc, char **argv) {
    static const uint8_t values[] = {0x00, 0x01, 0x7f, 0x80, 0xff};
    long cases = 0;
    for (int i = 1; i < argc; i++) {
        size_t n;
        uint8_t *buf = fuzz_read_file(argv[i], &n);
        if (buf == NULL) {
            perror(argv[i]);
            return 1;
        }
        uint8_t *mutated = malloc(n ? n : 1);
        LLVMFuzzerTestOneInput(buf, n);
        cases++;
        size_t step = n / 32 + 1;
        for (size_t cut = 0; cut < n; cut += step, cases++) {
            LLVMFuzzerTestOneInput(buf, cut);
        }
        for (size_t at = 0; at < n; at += step) {
            for (size_t v = 0; v < sizeof values; v++, cases++) {
                memcpy(mutated, buf, n);
                mutated[at] = values[v];
                LLVMFuzzerTestOneInput(mutated, n);
            }
        }
        free(mutated);
        free(buf);
    }
    printf("replayed %d files, %ld inputs with their prefixes and byte corruptions\n", argc - 1,
           cases);
    return 0;
}
#endif
