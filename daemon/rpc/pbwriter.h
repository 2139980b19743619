#pragma once
/*
 * A protobuf wire-format writer into one growable buffer, for responses the hot path builds
 * field by field: no intermediate structs, no allocation per value, and the buffer is reused
 * across requests.
 *
 * Nested messages and packed arrays are written between pbw_begin() and pbw_end():
 *
 *   pbw_begin(w, 2)         [tag][5 bytes reserved][body ...........]
 *   pbw_end(w)              [tag][len][body ...........]   body moved back by 5 - len bytes
 *
 * so nothing needs its size up front. Out of memory sets `failed` and turns later calls into
 * no-ops; check it once at the end.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PBW_MAX_DEPTH 8

enum pbw_wire {
    PBW_VARINT = 0,
    PBW_FIXED64 = 1,
    PBW_LEN = 2,
    PBW_FIXED32 = 5,
};

struct pbw {
    uint8_t *buf;
    size_t len;
    size_t cap;
    /* 0, or the most bytes the buffer may grow to: past it the writer fails with
     * over_limit set, so a response too big to send stops being built early. */
    size_t limit;
    bool failed;
    bool over_limit;
    int depth;
    size_t open[PBW_MAX_DEPTH]; /* offsets of the reserved length bytes */
};

void pbw_init(struct pbw *w);
void pbw_deinit(struct pbw *w);
/* Empties the buffer (keeping its memory and limit) and clears `failed` and `over_limit`. */
void pbw_reset(struct pbw *w);

/* Frees the buffer when it grew past `keep` bytes, so one huge response does not pin it. */
void pbw_trim(struct pbw *w, size_t keep);

/* Makes room for `n` more bytes; returns where they go (advance with pbw_commit), or NULL. */
uint8_t *pbw_reserve(struct pbw *w, size_t n);
static inline void pbw_commit(struct pbw *w, size_t n) {
    w->len += n;
}

void pbw_varint(struct pbw *w, uint64_t v);
void pbw_tag(struct pbw *w, uint32_t field, enum pbw_wire wire);

/* Whole fields. Zero values are written too: readers treat them like absent ones. */
void pbw_uint_field(struct pbw *w, uint32_t field, uint64_t v); /* uint32/uint64/enum/bool */
void pbw_int_field(struct pbw *w, uint32_t field, int64_t v);   /* int32/int64 */
void pbw_bytes_field(struct pbw *w, uint32_t field, const void *data, size_t len); /* also string */

/* Raw little-endian values, for packed fixed32/fixed64 arrays. */
void pbw_fixed32(struct pbw *w, uint32_t v);
void pbw_fixed64(struct pbw *w, uint64_t v);

/* Opens a length-delimited field (nested message or packed array) ... */
void pbw_begin(struct pbw *w, uint32_t field);
/* ... and closes the innermost one. */
void pbw_end(struct pbw *w);

/* Writes a varint at p (room for 10 bytes); returns the bytes it took. For writers that
 * reserve once and fill several fields. */
static inline size_t pbw_put_varint(uint8_t *p, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Bytes a varint takes. */
static inline size_t pbw_varint_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}
