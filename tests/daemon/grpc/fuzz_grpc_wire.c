/*
 * Fuzz target for the bytes a gRPC client controls before any handler runs: the message
 * framing of DATA payloads, grpc-timeout, content-type, and grpc-message encoding of text a
 * handler may have copied from the request. Built with libFuzzer when the compiler is Clang
 * (fuzz_grpc_wire); always built as fuzz_grpc_wire_replay, whose main() runs the target over
 * the files it is given plus a fixed pseudo-random set, so CTest runs it under every build.
 *
 * Input layout: byte 0 picks the split size for the framing pass; the rest is used whole as
 * each parser's input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/grpc/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Frames `in` whole and in `piece`-byte chunks; both must see the same messages. */
static void _check_framing(const uint8_t *in, size_t len, size_t piece) {
    struct grpc_frame_reader whole = {0}, split = {0};
    uint64_t whole_sum = 0, split_sum = 0, whole_msgs = 0, split_msgs = 0;
    size_t off = 0;
    while (off < len) {
        struct grpc_frame_step step;
        size_t used = grpc_frame_read(&whole, in + off, len - off, &step);
        if (used == 0 || used > len - off) {
            abort();
        }
        whole_sum += step.body_len;
        whole_msgs += step.message_done;
        off += used;
    }
    for (off = 0; off < len;) {
        size_t chunk = len - off < piece ? len - off : piece;
        size_t left = chunk;
        while (left > 0) {
            struct grpc_frame_step step;
            size_t used = grpc_frame_read(&split, in + off, left, &step);
            if (used == 0 || used > left || (step.body_len && step.body != in + off)) {
                abort();
            }
            split_sum += step.body_len;
            split_msgs += step.message_done;
            off += used;
            left -= used;
        }
    }
    if (whole_sum != split_sum || whole_msgs != split_msgs ||
        whole.prefix_have != split.prefix_have || whole.body_have != split.body_have) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) {
        return 0;
    }
    size_t piece = (size_t)data[0] % 17 + 1;
    const uint8_t *in = data + 1;
    size_t len = size - 1;
    _check_framing(in, len, piece);

    int64_t us;
    if (grpc_timeout_parse((const char *)in, len, &us) == 0 && (us < 0 || len > 9)) {
        abort();
    }
    (void)grpc_content_type_ok((const char *)in, len);

    char out[GRPC_MESSAGE_ENCODED_MAX];
    size_t n = grpc_percent_encode((const char *)in, len, out, sizeof out);
    if (n != strlen(out)) {
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c < 0x20 || c > 0x7E) {
            abort();
        }
    }
    char small[7];
    if (grpc_percent_encode((const char *)in, len, small, sizeof small) >= sizeof small) {
        abort();
    }
    return 0;
}

#ifdef FSD_FUZZ_REPLAY
int main(int argc, char **argv) {
    static uint8_t buf[1 << 16];
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (f == NULL) {
            perror(argv[i]);
            return 1;
        }
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
    }
    /* Fixed pseudo-random inputs (xorshift), biased toward small lengths and prefix bytes. */
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int round = 0; round < 20000; round++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t n = (size_t)(x % 64);
        for (size_t j = 0; j < n; j++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            uint8_t b = (uint8_t)x;
            /* Small bytes make short, completable message lengths likely. */
            buf[j] = (x >> 8) % 3 == 0 ? (uint8_t)(b % 4) : b;
        }
        LLVMFuzzerTestOneInput(buf, n);
    }
    printf("replayed %d files and 20000 generated inputs\n", argc - 1);
    return 0;
}
#endif
