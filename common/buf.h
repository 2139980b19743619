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

void buf_add(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
__attribute__((format(printf, 2, 3))) void buf_printf(struct buf *b, const char *fmt, ...);
