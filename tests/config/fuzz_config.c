/*
 * Fuzz target for the config loader: YAML bytes from outside go through libyaml and every
 * check in config*.c. Built with libFuzzer when the compiler is Clang (fuzz_config); always
 * built as fuzz_config_replay, whose main() runs the target over the files it is given, so
 * CTest replays the configs in configs/ and configs/bad/ under every build, sanitizers too.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "config/config.h"
#include "daemon/options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char err[CONFIG_ERR_LEN];
    struct fsd_config *config = NULL;
    if (config_parse("fuzz.yaml", (const char *)data, size, &daemon_option_table, &config, err,
                     sizeof err) == 0) {
        config_destroy(config);
    }
    return 0;
}

#ifdef FSD_FUZZ_REPLAY
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (f == NULL) {
            perror(argv[i]);
            return 1;
        }
        static uint8_t buf[1 << 20];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
        /* Every prefix too: truncated files reach the parser's error paths. */
        for (size_t cut = 0; cut < n; cut += 7) {
            LLVMFuzzerTestOneInput(buf, cut);
        }
    }
    printf("replayed %d files\n", argc - 1);
    return 0;
}
#endif
