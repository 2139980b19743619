/*
 * A WAL record in memory: the bytes as they go to disk (wal.h draws them), built in place so
 * the log writer only fills in the sequence number and the hash.
 */
#include "wal_internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "store/row.h"
#include "store/schema.h"

static size_t _pad8(size_t n) {
    return (n + 7) & ~(size_t)7;
}

static int _reserve(struct wal_batch *b, size_t more) {
    if (b->len + more > WAL_RECORD_HEADER_BYTES + WAL_MAX_RECORD_BYTES) {
        return -1;
    }
    if (b->len + more <= b->cap) {
        return 0;
    }
    size_t cap = b->cap * 2;
    while (cap < b->len + more) {
        cap *= 2;
    }
    uint8_t *grown = realloc(b->buf, cap);
    if (grown == NULL) {
        return -1;
    }
    b->buf = grown;
    b->cap = cap;
    return 0;
}

static int _note_row(struct wal_batch *b, size_t offset) {
    if (b->nrows == b->rows_cap) {
        size_t cap = b->rows_cap ? b->rows_cap * 2 : 64;
        size_t *grown = realloc(b->row_offsets, cap * sizeof(*grown));
        if (grown == NULL) {
            return -1;
        }
        b->row_offsets = grown;
        b->rows_cap = cap;
    }
    b->row_offsets[b->nrows++] = offset;
    return 0;
}

struct wal_batch *wal_batch_create(const char *view, uint64_t fingerprint) {
    size_t name_len = strlen(view);
    if (name_len > STORE_MAX_NAME) {
        return NULL;
    }
    struct wal_batch *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return NULL;
    }
    b->cap = 4096;
    while (b->cap < WAL_RECORD_HEADER_BYTES + WAL_ROWS_HEADER_BYTES + _pad8(name_len)) {
        b->cap *= 2;
    }
    b->buf = calloc(1, b->cap);
    if (b->buf == NULL) {
        free(b);
        return NULL;
    }
    uint8_t *p = b->buf + WAL_RECORD_HEADER_BYTES;
    wal_put_u64(p, fingerprint);
    wal_put_u16(p + 8, (uint16_t)name_len);
    wal_put_u16(p + 10, 0);
    wal_put_u32(p + 12, 0);
    memcpy(p + WAL_ROWS_HEADER_BYTES, view, name_len);
    b->len = WAL_RECORD_HEADER_BYTES + WAL_ROWS_HEADER_BYTES + _pad8(name_len);
    memcpy(b->view, view, name_len);
    b->view[name_len] = '\0';
    b->fingerprint = fingerprint;
    b->type = WAL_RECORD_ROWS;
    return b;
}

struct store_row *wal_batch_add_space(struct wal_batch *b, size_t bytes) {
    if (b->ended || bytes > UINT32_MAX || _reserve(b, 8 + _pad8(bytes)) != 0) {
        return NULL;
    }
    size_t at = b->len;
    if (_note_row(b, at + 8) != 0) {
        return NULL;
    }
    wal_put_u32(b->buf + at, (uint32_t)bytes);
    wal_put_u32(b->buf + at + 4, 0);
    memset(b->buf + at + 8, 0, _pad8(bytes)); /* the padding too: it is hashed */
    b->len = at + 8 + _pad8(bytes);
    wal_put_u32(b->buf + WAL_RECORD_HEADER_BYTES + 12, (uint32_t)b->nrows);
    return (struct store_row *)(void *)(b->buf + at + 8);
}

int wal_batch_add(struct wal_batch *b, const struct store_row *image, size_t bytes) {
    struct store_row *dst = wal_batch_add_space(b, bytes);
    if (dst == NULL) {
        return -1;
    }
    memcpy(dst, image, bytes);
    return 0;
}

int wal_batch_end_at_stream_position(struct wal_batch *b, const char *position) {
    size_t len = strlen(position);
    if (b->ended || len >= STORE_STREAM_POSITION_LEN ||
        _reserve(b, STORE_STREAM_POSITION_LEN) != 0) {
        return -1;
    }
    memset(b->buf + b->len, 0, STORE_STREAM_POSITION_LEN);
    memcpy(b->buf + b->len, position, len);
    b->len += STORE_STREAM_POSITION_LEN;
    wal_put_u16(b->buf + WAL_RECORD_HEADER_BYTES + 10, WAL_ROWS_STREAM_POSITION);
    memcpy(b->stream_position, position, len + 1);
    b->ended = true;
    return 0;
}

const char *wal_batch_stream_position(const struct wal_batch *b) {
    return b->stream_position[0] != '\0' ? b->stream_position : NULL;
}

void wal_batch_destroy(struct wal_batch *b) {
    if (b != NULL) {
        free(b->buf);
        free(b->row_offsets);
        free(b);
    }
}

size_t wal_batch_rows(const struct wal_batch *b) {
    return b->nrows;
}

const struct store_row *wal_batch_row(const struct wal_batch *b, size_t index) {
    return (const struct store_row *)(const void *)(b->buf + b->row_offsets[index]);
}

size_t wal_batch_row_bytes(const struct wal_batch *b, size_t index) {
    return wal_get_u32(b->buf + b->row_offsets[index] - 8);
}

const char *wal_batch_view(const struct wal_batch *b) {
    return b->view;
}

uint64_t wal_batch_fingerprint(const struct wal_batch *b) {
    return b->fingerprint;
}

uint64_t wal_batch_seq(const struct wal_batch *b) {
    return wal_get_u64(b->buf + 8);
}

int wal_batch_parse(struct wal_batch *b, char *err, size_t err_len) {
    /* b->buf holds one whole record whose hash checked; its payload is still to be trusted
     * only as far as its own lengths agree. */
    size_t payload = b->len - WAL_RECORD_HEADER_BYTES;
    const uint8_t *p = b->buf + WAL_RECORD_HEADER_BYTES;
    if (wal_get_u32(b->buf + 4) != WAL_RECORD_ROWS || payload < WAL_ROWS_HEADER_BYTES) {
        errors_set(err, err_len, "record type %u or payload of %zu bytes not understood",
                   wal_get_u32(b->buf + 4), payload);
        return -1;
    }
    b->fingerprint = wal_get_u64(p);
    size_t name_len = wal_get_u16(p + 8);
    uint16_t flags = wal_get_u16(p + 10);
    uint32_t nrows = wal_get_u32(p + 12);
    b->stream_position[0] = '\0';
    if ((flags & ~WAL_ROWS_STREAM_POSITION) != 0) {
        errors_set(err, err_len, "rows flags %#x not understood", flags);
        return -1;
    }
    size_t at = WAL_ROWS_HEADER_BYTES + _pad8(name_len);
    if (name_len == 0 || name_len > STORE_MAX_NAME || at > payload) {
        errors_set(err, err_len, "view name of %zu bytes", name_len);
        return -1;
    }
    memcpy(b->view, p + WAL_ROWS_HEADER_BYTES, name_len);
    b->view[name_len] = '\0';
    for (uint32_t r = 0; r < nrows; r++) {
        if (payload - at < 8) {
            errors_set(err, err_len, "row %u of %u: past the record's end", r, nrows);
            return -1;
        }
        size_t bytes = wal_get_u32(p + at);
        if (bytes < sizeof(struct store_row) || _pad8(bytes) > payload - at - 8) {
            errors_set(err, err_len, "row %u of %u: %zu bytes", r, nrows, bytes);
            return -1;
        }
        if (_note_row(b, WAL_RECORD_HEADER_BYTES + at + 8) != 0) {
            errors_set(err, err_len, "out of memory");
            return -1;
        }
        at += 8 + _pad8(bytes);
    }
    if (flags & WAL_ROWS_STREAM_POSITION) {
        const uint8_t *position = p + at;
        if (payload - at != STORE_STREAM_POSITION_LEN ||
            memchr(position, '\0', STORE_STREAM_POSITION_LEN) == NULL || position[0] == '\0') {
            errors_set(err, err_len, "a stream position that does not end the record");
            return -1;
        }
        memcpy(b->stream_position, position, STORE_STREAM_POSITION_LEN);
        at += STORE_STREAM_POSITION_LEN;
    }
    if (at != payload) {
        errors_set(err, err_len, "%zu bytes after the last row", payload - at);
        return -1;
    }
    return 0;
}
