/*
 * Fuzz target for fsd-feast-import's conversion: the input is a Feast registry file (a
 * serialized feast.core.Registry, bytes from anyone's repo); whatever protobuf-c decodes from
 * it goes through import_convert(), the config to /dev/null. Checked: no crash, no sanitizer
 * report, no leak, and a conversion that says it wrote a config wrote a "views:" list.
 *
 * Built with libFuzzer when the compiler is Clang (fuzz_feast_import); always built as
 * fuzz_feast_import_replay, whose main() runs the target over the files it is given
 * (feast_import_corpus/, seeded by make_feast_import_corpus.py) and their byte corruptions.
 *
 *   build-fuzz/tests/fuzz_feast_import /tmp/corpus tests/tools/feast_import_corpus \
 *       -max_total_time=300
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/fuzz_replay.h"
#include "import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Feast__Core__Registry *reg = feast__core__registry__unpack(NULL, size, data);
    if (reg == NULL) {
        return 0;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    FILE *log = fopen("/dev/null", "w");
    if (out == NULL || log == NULL) {
        abort();
    }
    struct repo repo = {.project = "", .dir = "/repo", .dsn = "host=127.0.0.1"};
    int rc = import_convert(reg, &repo, out, log);
    fclose(out);
    fclose(log);
    if (rc == 0 && strstr(text, "\nviews:\n  - name: ") == NULL) {
        fprintf(stderr, "a conversion that succeeded wrote no view:\n%s\n", text);
        abort();
    }
    free(text);
    feast__core__registry__free_unpacked(reg, NULL);
    return 0;
}

#ifdef FSD_FUZZ_REPLAY
int main(int argc, char **argv) {
    return fuzz_replay_main(argc, argv);
}
#endif
