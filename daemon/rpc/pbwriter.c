#include "pbwriter.h"

#include <stdlib.h>
#include <string.h>

#define RESERVED_LEN 5 /* a varint of up to 2^35 - 1: every message length we allow */

void pbw_init(struct pbw *w) {
    memset(w, 0, sizeof(*w));
}

void pbw_deinit(struct pbw *w) {
    free(w->buf);
    memset(w, 0, sizeof(*w));
}

void pbw_reset(struct pbw *w) {
    w->len = 0;
    w->failed = false;
    w->over_limit = false;
    w->depth = 0;
}

void pbw_trim(struct pbw *w, size_t keep) {
    if (w->cap > keep) {
        size_t limit = w->limit;
        pbw_deinit(w);
        w->limit = limit;
    }
}

uint8_t *pbw_reserve(struct pbw *w, size_t n) {
    if (w->failed) {
        return NULL;
    }
    if (w->cap - w->len < n) {
        /* Checked only when growing: the buffer kept between calls is below the limit. */
        if (w->limit > 0 && w->len + n > w->limit) {
            w->failed = true;
            w->over_limit = true;
            return NULL;
        }
        size_t cap = w->cap ? w->cap : 4096;
        while (cap - w->len < n) {
            cap *= 2;
        }
        uint8_t *grown = realloc(w->buf, cap);
        if (grown == NULL) {
            w->failed = true;
            return NULL;
        }
        w->buf = grown;
        w->cap = cap;
    }
    return w->buf + w->len;
}

void pbw_varint(struct pbw *w, uint64_t v) {
    uint8_t *p = pbw_reserve(w, 10);
    if (p != NULL) {
        pbw_commit(w, pbw_put_varint(p, v));
    }
}

void pbw_tag(struct pbw *w, uint32_t field, enum pbw_wire wire) {
    pbw_varint(w, (uint64_t)field << 3 | wire);
}

void pbw_uint_field(struct pbw *w, uint32_t field, uint64_t v) {
    pbw_tag(w, field, PBW_VARINT);
    pbw_varint(w, v);
}

void pbw_int_field(struct pbw *w, uint32_t field, int64_t v) {
    /* int32 and int64 both travel as the 64-bit two's complement varint. */
    pbw_uint_field(w, field, (uint64_t)v);
}

void pbw_bytes_field(struct pbw *w, uint32_t field, const void *data, size_t len) {
    pbw_tag(w, field, PBW_LEN);
    pbw_varint(w, len);
    uint8_t *p = pbw_reserve(w, len);
    if (p != NULL && len > 0) {
        memcpy(p, data, len);
        pbw_commit(w, len);
    }
}

void pbw_fixed32(struct pbw *w, uint32_t v) {
    uint8_t *p = pbw_reserve(w, 4);
    if (p != NULL) {
        for (int i = 0; i < 4; i++) {
            p[i] = (uint8_t)(v >> (8 * i));
        }
        pbw_commit(w, 4);
    }
}

void pbw_fixed64(struct pbw *w, uint64_t v) {
    uint8_t *p = pbw_reserve(w, 8);
    if (p != NULL) {
        for (int i = 0; i < 8; i++) {
            p[i] = (uint8_t)(v >> (8 * i));
        }
        pbw_commit(w, 8);
    }
}

void pbw_begin(struct pbw *w, uint32_t field) {
    if (w->depth == PBW_MAX_DEPTH) {
        w->failed = true;
        return;
    }
    pbw_tag(w, field, PBW_LEN);
    if (pbw_reserve(w, RESERVED_LEN) == NULL) {
        return;
    }
    w->open[w->depth++] = w->len;
    pbw_commit(w, RESERVED_LEN);
}

void pbw_end(struct pbw *w) {
    if (w->failed || w->depth == 0) {
        w->failed = true;
        return;
    }
    size_t at = w->open[--w->depth];
    size_t body = w->len - at - RESERVED_LEN;
    uint8_t len[10];
    size_t n = pbw_put_varint(len, body);
    memmove(w->buf + at + n, w->buf + at + RESERVED_LEN, body);
    memcpy(w->buf + at, len, n);
    w->len = at + n + body;
}
