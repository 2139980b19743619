#pragma once
/*
 * The gRPC-over-HTTP/2 wire details that are plain byte parsing: the message prefix, the
 * grpc-timeout header, the content-type check and grpc-message percent-encoding. No I/O, no
 * nghttp2, no allocation, so the unit tests and the fuzz target call these directly.
 * Internal to daemon/grpc/: other modules use grpc.h.
 *
 * A length-prefixed message (one or more DATA frames carry a stream of these):
 *
 *   0        1                 5
 *   +--------+-----------------+------------------------+
 *   | flags  | length (uint32, | message                |
 *   | bit 0: | big-endian)     | (length bytes)         |
 *   | compr. |                 |                        |
 *   +--------+-----------------+------------------------+
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GRPC_PREFIX_BYTES 5

/* grpc-timeout is at most 8 ASCII digits and a unit (gRPC over HTTP/2, "Timeout"). */
#define GRPC_TIMEOUT_MAX_DIGITS 8

/*
 * Longest grpc-message we send, in bytes before percent-encoding; longer messages are cut.
 * Percent-encoding at most triples it, hence the buffer size callers need.
 */
#define GRPC_MESSAGE_MAX         1024
#define GRPC_MESSAGE_ENCODED_MAX (3 * GRPC_MESSAGE_MAX + 1)

/* ---- message framing --------------------------------------------------------------------- */

/* Reassembles length-prefixed messages from DATA chunks split anywhere. Zero it to init. */
struct grpc_frame_reader {
    uint8_t prefix[GRPC_PREFIX_BYTES];
    uint8_t prefix_have; /* 0..5; 5 means the body is being read */
    bool compressed;     /* valid once the prefix is complete */
    uint32_t msg_len;    /* valid once the prefix is complete */
    uint32_t body_have;
};

/* What one call of grpc_frame_read() consumed. */
struct grpc_frame_step {
    const uint8_t *body; /* body bytes consumed in this step: a slice of `in`, or NULL */
    size_t body_len;
    bool prefix_done;  /* the prefix completed: r->compressed and r->msg_len are valid */
    bool message_done; /* the message completed (possibly in the same step as its prefix) */
};

/*
 * Consumes bytes of `in` and returns how many. A step stops right after a prefix completes
 * (so the caller can check the length before taking any body byte), after a message
 * completes, or at the end of `in`. Call it in a loop until `len` bytes are consumed; it
 * consumes at least one byte whenever len > 0.
 */
size_t grpc_frame_read(struct grpc_frame_reader *r, const uint8_t *in, size_t len,
                       struct grpc_frame_step *step);

/* True between messages: no prefix byte or body byte of an unfinished message is held. */
static inline bool grpc_frame_reader_idle(const struct grpc_frame_reader *r) {
    return r->prefix_have == 0;
}

/* Writes the 5-byte prefix of an uncompressed message of `len` bytes. */
void grpc_frame_prefix_write(uint8_t out[GRPC_PREFIX_BYTES], uint32_t len);

/* ---- headers ----------------------------------------------------------------------------- */

/*
 * Parses a grpc-timeout value strictly: 1 to 8 ASCII digits, then one unit of H M S m u n,
 * nothing else. Stores microseconds in *us (nanoseconds round up, so 1n is 1 us, never 0).
 * Returns 0, or -1 when the value is malformed.
 */
int grpc_timeout_parse(const char *value, size_t len, int64_t *us);

/*
 * True for "application/grpc", optionally followed by "+proto" or ";parameters"
 * ("application/grpc+proto;charset=utf-8"). Other subtypes (+json) are not ours to decode.
 */
bool grpc_content_type_ok(const char *value, size_t len);

/*
 * Percent-encodes `msg` for grpc-message: bytes outside 0x20..0x7E and '%' become %XX. Reads
 * at most `msg_len` bytes, cut to GRPC_MESSAGE_MAX; writes a NUL-terminated string into `out`
 * (at most out_len bytes, GRPC_MESSAGE_ENCODED_MAX always suffices) and returns its length.
 */
size_t grpc_percent_encode(const char *msg, size_t msg_len, char *out, size_t out_len);
