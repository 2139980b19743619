#pragma once
/*
 * A growable text buffer, for what is written once and sent or printed whole: a /metrics
 * scrape, a /status document, fsctl's JSON. Appends never fail visibly: when memory runs out
 * the buffer stops growing and sets `failed`, so the caller checks once at the end and
 * answers an error instead of sending something cut short.
 *
 *   struct buf b = {0};
 *   buf_printf(&b, "%d views", n);
 *   if (b.failed) { ... } else { send(b.data, b.len); }
 *   buf_free(&b);
 *
 * `data` is NUL-terminated whenever len > 0. A zeroed struct is an empty buffer.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct buf {
    char *data;
    size_t len;
    size_t cap;
    bool failed; /* out of memory: appends do nothing until buf_reset() */
};

/* Empties the buffer, keeping its memory (and forgetting a failure). */
void buf_reset(struct buf *b);
/* Frees the memory; the buffer is empty and usable again. */
void buf_free(struct buf *b);

/* The growing path of buf_add: reserves room (or fails the buffer), then appends. */
void buf_add_growing(struct buf *b, const void *data, size_t len);

/*
 * Inline because responses are written a few bytes at a time (a comma, a number, a quote):
 * the common case is one compare and a copy whose size the compiler often knows.
 */
static inline void buf_add(struct buf *b, const void *data, size_t len) {
    if (b->failed || b->len + len + 1 > b->cap) {
        buf_add_growing(b, data, len);
        return;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

static inline void buf_puts(struct buf *b, const char *s) {
    buf_add(b, s, strlen(s));
}

/*
 * For writers that format in place: room for `len` more bytes (and the NUL) at the end of
 * the buffer, or NULL once it has failed; buf_advance then keeps the `used` (<= len) bytes
 * written there. Text formatted in a scratch array and copied in costs a copy, and a stall
 * when the copy reads bytes just stored a few at a time.
 */
char *buf_room_growing(struct buf *b, size_t len);

static inline char *buf_room(struct buf *b, size_t len) {
    if (b->failed || b->len + len + 1 > b->cap) {
        return buf_room_growing(b, len);
    }
    return b->data + b->len;
}

static inline void buf_advance(struct buf *b, size_t used) {
    b->len += used;
    b->data[b->len] = '\0';
}

/* Appends a copy of `len` bytes the buffer already holds at `offset` (text written once and
 * repeated); safe when the buffer grows, which a pointer into `data` would not be. */
void buf_repeat(struct buf *b, size_t offset, size_t len);

__attribute__((format(printf, 2, 3))) void buf_printf(struct buf *b, const char *fmt, ...);
