/*
 * The binary COPY stream of the PostgreSQL source (postgres_internal.h) and its values.
 *
 * Binary COPY stream, all integers big-endian (PostgreSQL docs, "Binary Format"):
 *
 *   header:  "PGCOPY\n\377\r\n\0" (11) | flags i32 | extension length i32 | extension bytes
 *   tuple:   field count i16 | per field: length i32 (-1 = NULL) | that many bytes
 *   trailer: field count -1 (i16)
 *
 * The server sends one CopyData message per tuple, but nothing in the protocol promises that,
 * so the decoder takes the stream in arbitrary pieces: a piece that holds whole tuples is
 * decoded in place; a partial tuple is staged until the rest arrives.
 */
#include "postgres_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink.h"
#include "store/row.h"
#include "store/schema.h"

#define US_PER_DAY   INT64_C(86400000000)
#define COPY_SIG_LEN 11
static const char COPY_SIGNATURE[COPY_SIG_LEN] = "PGCOPY\n\377\r\n";

/* numeric's sign word */
#define NUMERIC_POS  0x0000
#define NUMERIC_NEG  0x4000
#define NUMERIC_NAN  0xC000
#define NUMERIC_PINF 0xD000
#define NUMERIC_NINF 0xF000

/* ---- byte order ----------------------------------------------------------------------- */

static inline uint16_t _be16(const uint8_t *p) {
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t _be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t _be64(const uint8_t *p) {
    return (uint64_t)_be32(p) << 32 | _be32(p + 4);
}

/* ---- decoding values ------------------------------------------------------------------ */

/* Writes "key=value, ..." for the current tuple's keys, for row errors. */
static void _describe_keys(const struct mat_pg_reader *r, char *out, size_t out_len) {
    size_t used = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < r->ncols && used < out_len; i++) {
        const struct mat_pg_column *c = &r->cols[i];
        const struct mat_pg_field *f = &r->fields[i];
        if (c->role != MAT_PG_KEY) {
            continue;
        }
        int w;
        const char *sep = used > 0 ? ", " : "";
        if (f->len < 0) {
            w = snprintf(out + used, out_len - used, "%s%s=NULL", sep, c->name);
        } else if (mat_pg_is_int(c->oid)) {
            int64_t v = f->len == 2   ? (int16_t)_be16(f->data)
                        : f->len == 4 ? (int32_t)_be32(f->data)
                        : f->len == 8 ? (int64_t)_be64(f->data)
                                      : 0;
            w = snprintf(out + used, out_len - used, "%s%s=%" PRId64, sep, c->name, v);
        } else {
            char text[48];
            size_t n = (size_t)f->len < sizeof text - 1 ? (size_t)f->len : sizeof text - 1;
            for (size_t k = 0; k < n; k++) {
                uint8_t ch = f->data[k];
                text[k] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
            }
            text[n] = '\0';
            w = snprintf(out + used, out_len - used, "%s%s=\"%s%s\"", sep, c->name, text,
                         (size_t)f->len > n ? "..." : "");
        }
        used += w > 0 ? (size_t)w : 0;
    }
}

/* A bad value: names the column, the row and its key. */
__attribute__((format(printf, 3, 4))) static int
_fail_value(struct mat_pg_reader *r, const struct mat_pg_column *c, const char *fmt, ...) {
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    char keys[256];
    _describe_keys(r, keys, sizeof keys);
    char element[32] = "";
    if (r->element > 0) {
        snprintf(element, sizeof element, "element %" PRIu32 ": ", r->element);
    }
    return mat_pg_fail(r, "column %s, row %" PRIu64 " (%s): %s%s", c->name, r->row, keys, element,
                       what);
}

static int _bad_length(struct mat_pg_reader *r, const struct mat_pg_column *c, int32_t len) {
    return _fail_value(r, c, "malformed binary value (%" PRId32 " bytes for type %u)", len, c->oid);
}

/* An integer column's value, whatever its width. */
static int _int_value(struct mat_pg_reader *r, const struct mat_pg_column *c,
                      const struct mat_pg_field *f, int64_t *out) {
    int32_t want = c->oid == PG_INT2 ? 2 : c->oid == PG_INT4 ? 4 : 8;
    if (f->len != want) {
        return _bad_length(r, c, f->len);
    }
    *out = want == 2   ? (int16_t)_be16(f->data)
           : want == 4 ? (int32_t)_be32(f->data)
                       : (int64_t)_be64(f->data);
    return 0;
}

/* PostgreSQL's timestamp, timestamptz or date as Unix microseconds. */
static int _time_value(struct mat_pg_reader *r, const struct mat_pg_column *c,
                       const struct mat_pg_field *f, int64_t *out) {
    if (c->oid == PG_DATE) {
        if (f->len != 4) {
            return _bad_length(r, c, f->len);
        }
        int32_t days = (int32_t)_be32(f->data);
        if (days == INT32_MAX || days == INT32_MIN) {
            *out = days == INT32_MAX ? INT64_MAX : INT64_MIN; /* 'infinity', '-infinity' */
            return 0;
        }
        /* |days| < 2^31, so days * US_PER_DAY fits in int64 only within about ±106M days */
        if (days > (INT64_MAX - PG_EPOCH_US) / US_PER_DAY ||
            days < (INT64_MIN + PG_EPOCH_US) / US_PER_DAY) {
            return _fail_value(r, c, "date out of the microsecond range");
        }
        *out = (int64_t)days * US_PER_DAY + PG_EPOCH_US;
        return 0;
    }
    if (f->len != 8) {
        return _bad_length(r, c, f->len);
    }
    int64_t pg = (int64_t)_be64(f->data);
    if (pg == INT64_MAX || pg == INT64_MIN) {
        *out = pg; /* 'infinity', '-infinity' */
        return 0;
    }
    if (pg > INT64_MAX - PG_EPOCH_US) {
        return _fail_value(r, c, "timestamp out of the microsecond range");
    }
    *out = pg + PG_EPOCH_US;
    return 0;
}

/*
 * numeric -> double or float, the nearest one: the base-10000 digits are written out as a
 * decimal string and rounded once by strtod/strtof (correctly rounded in glibc), so no
 * intermediate double rounds twice.
 *
 *   ndigits i16 | weight i16 | sign u16 | dscale i16 | ndigits x u16 (0..9999)
 *   value = sum digit[i] * 10000^(weight - i)
 */
static int _numeric_value(struct mat_pg_reader *r, const struct mat_pg_column *c,
                          const struct mat_pg_field *f, bool as_float, double *out_d,
                          float *out_f) {
    if (f->len < 8) {
        return _bad_length(r, c, f->len);
    }
    int ndigits = (int16_t)_be16(f->data);
    int weight = (int16_t)_be16(f->data + 2);
    unsigned sign = _be16(f->data + 4);
    if (ndigits < 0 || f->len != 8 + 2 * ndigits) {
        return _bad_length(r, c, f->len);
    }
    if (sign == NUMERIC_NAN || sign == NUMERIC_PINF || sign == NUMERIC_NINF) {
        double v = sign == NUMERIC_NAN ? NAN : sign == NUMERIC_PINF ? INFINITY : -INFINITY;
        *out_d = v;
        *out_f = (float)v;
        return 0;
    }
    if (sign != NUMERIC_POS && sign != NUMERIC_NEG) {
        return _fail_value(r, c, "malformed numeric (sign 0x%04x)", sign);
    }
    size_t need = 1 + 4 * (size_t)ndigits + 16;
    if (need > r->digits_cap) {
        char *grown = realloc(r->digits, need);
        if (grown == NULL) {
            return mat_pg_fail(r, "out of memory");
        }
        r->digits = grown;
        r->digits_cap = need;
    }
    char *p = r->digits;
    if (sign == NUMERIC_NEG) {
        *p++ = '-';
    }
    *p++ = '0'; /* so zero digits still parse */
    for (int i = 0; i < ndigits; i++) {
        unsigned d = _be16(f->data + 8 + 2 * i);
        if (d > 9999) {
            return _fail_value(r, c, "malformed numeric (digit %u)", d);
        }
        p[0] = (char)('0' + d / 1000);
        p[1] = (char)('0' + d / 100 % 10);
        p[2] = (char)('0' + d / 10 % 10);
        p[3] = (char)('0' + d % 10);
        p += 4;
    }
    sprintf(p, "e%d", (weight - ndigits + 1) * 4);
    if (as_float) {
        *out_f = strtof(r->digits, NULL);
        if (isinf(*out_f)) {
            return _fail_value(r, c, "numeric too large for a float");
        }
    } else {
        *out_d = strtod(r->digits, NULL);
        if (isinf(*out_d)) {
            return _fail_value(r, c, "numeric too large for a double");
        }
    }
    return 0;
}

static int _grow_lists(struct mat_pg_reader *r, size_t n) {
    if (n <= r->list_cap) {
        return 0;
    }
    size_t cap = r->list_cap > 0 ? r->list_cap : 16;
    while (cap < n) {
        cap *= 2;
    }
    uint8_t *elements = realloc(r->elements, cap * 8);
    if (elements != NULL) {
        r->elements = elements;
    }
    const char **strs = realloc(r->strs, cap * sizeof *strs);
    if (strs != NULL) {
        r->strs = strs;
    }
    uint32_t *lens = realloc(r->lens, cap * sizeof *lens);
    if (lens != NULL) {
        r->lens = lens;
    }
    if (elements == NULL || strs == NULL || lens == NULL) {
        return mat_pg_fail(r, "out of memory");
    }
    r->list_cap = cap;
    return 0;
}

/*
 * A scalar of view type `type` from field `f`, whose PostgreSQL type is c->oid (checked by the
 * probe to map to `type`). Strings and bytes point into the field.
 */
static int _scalar_value(struct mat_pg_reader *r, const struct mat_pg_column *c,
                         const struct mat_pg_field *f, enum store_type type,
                         struct store_value *out) {
    int64_t i64;
    out->type = type;
    switch (type) {
    case STORE_TYPE_INT32:
        if (_int_value(r, c, f, &i64) != 0) {
            return -1;
        }
        if (i64 < INT32_MIN || i64 > INT32_MAX) {
            return _fail_value(r, c, "%" PRId64 " does not fit int32", i64);
        }
        out->i32 = (int32_t)i64;
        return 0;
    case STORE_TYPE_INT64:
        return _int_value(r, c, f, &out->i64);
    case STORE_TYPE_FLOAT:
        if (c->oid == PG_FLOAT4) {
            if (f->len != 4) {
                return _bad_length(r, c, f->len);
            }
            uint32_t bits = _be32(f->data);
            memcpy(&out->f32, &bits, 4);
        } else if (c->oid == PG_FLOAT8) { /* a float_list element only (see _maps) */
            if (f->len != 8) {
                return _bad_length(r, c, f->len);
            }
            uint64_t bits = _be64(f->data);
            double d;
            memcpy(&d, &bits, 8);
            out->f32 = (float)d;
            if (isinf(out->f32) && !isinf(d)) {
                return _fail_value(r, c, "%g is beyond float range", d);
            }
        } else if (c->oid == PG_NUMERIC) {
            double unused;
            return _numeric_value(r, c, f, true, &unused, &out->f32);
        } else {
            if (_int_value(r, c, f, &i64) != 0) {
                return -1;
            }
            out->f32 = (float)i64; /* smallint only: exact */
        }
        return 0;
    case STORE_TYPE_DOUBLE:
        if (c->oid == PG_FLOAT8) {
            if (f->len != 8) {
                return _bad_length(r, c, f->len);
            }
            uint64_t bits = _be64(f->data);
            memcpy(&out->f64, &bits, 8);
        } else if (c->oid == PG_FLOAT4) {
            if (f->len != 4) {
                return _bad_length(r, c, f->len);
            }
            uint32_t bits = _be32(f->data);
            float fv;
            memcpy(&fv, &bits, 4);
            out->f64 = fv;
        } else if (c->oid == PG_NUMERIC) {
            float unused;
            return _numeric_value(r, c, f, false, &out->f64, &unused);
        } else {
            if (_int_value(r, c, f, &i64) != 0) {
                return -1;
            }
            out->f64 = (double)i64; /* smallint or integer only: exact */
        }
        return 0;
    case STORE_TYPE_BOOL:
        if (f->len != 1) {
            return _bad_length(r, c, f->len);
        }
        out->b = f->data[0] != 0;
        return 0;
    case STORE_TYPE_STRING:
    case STORE_TYPE_BYTES:
        out->var.data = f->data;
        out->var.bytes = (uint32_t)f->len;
        out->var.count = 0;
        return 0;
    case STORE_TYPE_TIMESTAMP:
        return _time_value(r, c, f, &out->ts_us);
    default:
        return _fail_value(r, c, "unknown view type");
    }
}

/*
 * A one-dimensional array into the feature's list type, each element read as a scalar of the
 * list's element type.
 *
 *   ndim i32 | has-nulls i32 | element type oid | (dim size i32 | lower bound i32) x ndim
 *   then per element: length i32 (-1 = NULL) | bytes
 */
static int _list_value(struct mat_pg_reader *r, const struct mat_pg_column *c,
                       const struct mat_pg_field *f, struct store_row_builder *b, uint32_t index,
                       enum store_type type) {
    const uint8_t *p = f->data;
    const uint8_t *end = f->data + f->len;
    if (f->len < 12) {
        return _bad_length(r, c, f->len);
    }
    int32_t ndim = (int32_t)_be32(p);
    Oid elem = _be32(p + 8);
    p += 12;
    uint32_t n = 0;
    if (ndim > 1) {
        return _fail_value(r, c, "a %" PRId32 "-dimensional array; lists have one dimension", ndim);
    }
    if (ndim == 1) {
        if (end - p < 8) {
            return _bad_length(r, c, f->len);
        }
        int32_t dim = (int32_t)_be32(p);
        p += 8;
        /* every element takes at least its 4-byte length: bounds n before allocating */
        if (dim < 0 || (size_t)dim > (size_t)(end - p) / 4) {
            return _bad_length(r, c, f->len);
        }
        n = (uint32_t)dim;
    } else if (ndim != 0) {
        return _bad_length(r, c, f->len);
    }
    if (elem != mat_pg_array_elem(c->oid)) {
        return _fail_value(r, c, "array elements of type %u, expected %u", elem,
                           mat_pg_array_elem(c->oid));
    }
    if (_grow_lists(r, n) != 0) {
        return -1;
    }
    struct mat_pg_column elem_col = *c;
    elem_col.oid = elem;
    enum store_type elem_type = store_type_element(type);
    uint32_t size = store_type_element_size(type); /* 0: string or bytes items */
    for (uint32_t i = 0; i < n; i++) {
        if (end - p < 4) {
            return _bad_length(r, c, f->len);
        }
        int32_t len = (int32_t)_be32(p);
        p += 4;
        if (len < 0) {
            return _fail_value(r, c, "element %" PRIu32 " is NULL; a %s cannot hold NULLs", i + 1,
                               store_type_name(type));
        }
        if (end - p < len) {
            return _bad_length(r, c, f->len);
        }
        struct mat_pg_field item = {.data = p, .len = len};
        struct store_value v;
        r->element = i + 1;
        int rc = _scalar_value(r, &elem_col, &item, elem_type, &v);
        r->element = 0;
        if (rc != 0) {
            return -1;
        }
        if (size == 0) {
            r->strs[i] = (const char *)p;
            r->lens[i] = (uint32_t)len;
        } else if (elem_type == STORE_TYPE_BOOL) {
            r->elements[i] = v.b ? 1 : 0;
        } else if (size == 4) {
            memcpy(r->elements + 4 * (size_t)i,
                   elem_type == STORE_TYPE_INT32 ? (void *)&v.i32 : &v.f32, 4);
        } else {
            memcpy(r->elements + 8 * (size_t)i, &v.i64, 8); /* int64, double, timestamp */
        }
        p += len;
    }
    if (p != end) {
        return _bad_length(r, c, f->len);
    }
    int rc = size == 0 ? store_row_set_packed_list(b, index, r->strs, r->lens, n)
                       : store_row_set_list(b, index, r->elements, n);
    if (rc != 0) {
        return _fail_value(r, c, "out of memory or row too large");
    }
    return 0;
}

static int _feature_value(struct mat_pg_reader *r, const struct mat_pg_column *c,
                          const struct mat_pg_field *f, struct store_row_builder *b) {
    uint32_t index = c->index;
    enum store_type type = r->schema->features[index].type;
    if (f->len < 0) {
        store_row_set_null(b, index);
        return 0;
    }
    if (store_type_is_list(type)) {
        return _list_value(r, c, f, b, index, type);
    }
    struct store_value v;
    if (_scalar_value(r, c, f, type, &v) != 0) {
        return -1;
    }
    if (store_row_set_value(b, index, &v) != 0) {
        return _fail_value(r, c, "out of memory or row too large");
    }
    return 0;
}

/* One complete tuple, its fields in r->fields, into the sink. */
static int _decode_tuple(struct mat_pg_reader *r) {
    r->row++;
    const struct mat_pg_column *cols = r->cols;
    const struct mat_pg_field *f = r->fields;
    int64_t event_ts_us;
    int64_t created_ts_us = STORE_CREATED_NONE;
    if (f[0].len < 0) {
        return _fail_value(r, &cols[0], "the event time is NULL");
    }
    if (_time_value(r, &cols[0], &f[0], &event_ts_us) != 0) {
        return -1;
    }
    uint32_t i = 1;
    if (r->has_created) {
        if (f[1].len >= 0 && _time_value(r, &cols[1], &f[1], &created_ts_us) != 0) {
            return -1;
        }
        i = 2;
    }
    mat_sink_begin_row(r->sink, event_ts_us, created_ts_us);
    for (; i < r->ncols && cols[i].role == MAT_PG_KEY; i++) {
        if (f[i].len < 0) {
            mat_sink_key_null(r->sink, cols[i].index);
        } else if (mat_pg_is_int(cols[i].oid)) {
            int64_t v;
            if (_int_value(r, &cols[i], &f[i], &v) != 0) {
                return -1;
            }
            mat_sink_key_int64(r->sink, cols[i].index, v);
        } else {
            mat_sink_key_string(r->sink, cols[i].index, (const char *)f[i].data,
                                (uint32_t)f[i].len);
        }
    }
    struct store_row_builder *b = mat_sink_values(r->sink);
    for (; i < r->ncols; i++) {
        if (_feature_value(r, &cols[i], &f[i], b) != 0) {
            return -1;
        }
    }
    if (mat_sink_end_row(r->sink) != 0) {
        /* the sink's message already names the view */
        if (r->err_len > 0) {
            snprintf(r->err, r->err_len, "%s (row %" PRIu64 " of the result)",
                     mat_sink_error(r->sink), r->row);
        }
        return -1;
    }
    return 0;
}

/* ---- the COPY stream ------------------------------------------------------------------ */

/*
 * Decodes what it can of `data`: the header, then whole tuples. Returns the bytes consumed
 * (the rest is an incomplete tuple, to be retried with more bytes), or -1.
 */
static ptrdiff_t _parse(struct mat_pg_reader *r, const uint8_t *data, size_t len) {
    size_t at = 0;
    if (!r->header_done) {
        if (len < COPY_SIG_LEN + 8) {
            return 0;
        }
        if (memcmp(data, COPY_SIGNATURE, COPY_SIG_LEN) != 0) {
            return mat_pg_fail(r, "postgres: COPY data does not start with the binary signature");
        }
        uint32_t flags = _be32(data + COPY_SIG_LEN);
        uint32_t ext = _be32(data + COPY_SIG_LEN + 4);
        /* bit 16: OIDs included; bits 17-31: critical flags a reader must understand */
        if ((flags & 0xffff0000u) != 0) {
            return mat_pg_fail(r, "postgres: COPY header has unsupported flags 0x%08x", flags);
        }
        if (ext > (1u << 20)) {
            return mat_pg_fail(r, "postgres: COPY header extension too long (%" PRIu32 " bytes)",
                               ext);
        }
        if (ext > len - COPY_SIG_LEN - 8) {
            return 0;
        }
        at = COPY_SIG_LEN + 8 + ext;
        r->header_done = true;
    }
    while (at < len) {
        if (r->trailer_seen) {
            return mat_pg_fail(r, "postgres: data after the end of the COPY");
        }
        if (len - at < 2) {
            break;
        }
        int16_t count = (int16_t)_be16(data + at);
        if (count == -1) {
            r->trailer_seen = true;
            at += 2;
            continue;
        }
        if (count != (int16_t)r->ncols) {
            return mat_pg_fail(r, "postgres: COPY tuple has %d fields, expected %" PRIu32, count,
                               r->ncols);
        }
        /* first check the whole tuple is here, recording where each field is */
        size_t p = at + 2;
        bool complete = true;
        for (uint32_t i = 0; i < r->ncols; i++) {
            if (len - p < 4) {
                complete = false;
                break;
            }
            int32_t flen = (int32_t)_be32(data + p);
            p += 4;
            if (flen < -1) {
                return mat_pg_fail(r, "postgres: COPY field with length %" PRId32, flen);
            }
            r->fields[i].data = data + p;
            r->fields[i].len = flen;
            if (flen > 0) {
                if (len - p < (size_t)flen) {
                    complete = false;
                    break;
                }
                p += (size_t)flen;
            }
        }
        if (!complete) {
            break;
        }
        if (_decode_tuple(r) != 0) {
            return -1;
        }
        at = p;
    }
    return (ptrdiff_t)at;
}

static int _stage(struct mat_pg_reader *r, const uint8_t *data, size_t len) {
    if (len == 0) {
        return 0;
    }
    if (r->stage_len + len > r->stage_cap) {
        size_t cap = r->stage_cap > 0 ? r->stage_cap : 4096;
        while (cap < r->stage_len + len) {
            cap *= 2;
        }
        uint8_t *grown = realloc(r->stage, cap);
        if (grown == NULL) {
            return mat_pg_fail(r, "out of memory");
        }
        r->stage = grown;
        r->stage_cap = cap;
    }
    memcpy(r->stage + r->stage_len, data, len);
    r->stage_len += len;
    return 0;
}

/* Takes the next piece of the COPY stream. */
int mat_pg_feed(struct mat_pg_reader *r, const uint8_t *data, size_t len) {
    if (r->stage_len == 0) {
        /* the usual case: whole tuples, decoded where libpq put them */
        ptrdiff_t used = _parse(r, data, len);
        if (used < 0) {
            return -1;
        }
        /* a tuple split across messages: keep its start until the rest arrives */
        return _stage(r, data + used, len - (size_t)used);
    }
    if (_stage(r, data, len) != 0) {
        return -1;
    }
    ptrdiff_t used = _parse(r, r->stage, r->stage_len);
    if (used < 0) {
        return -1;
    }
    memmove(r->stage, r->stage + used, r->stage_len - (size_t)used);
    r->stage_len -= (size_t)used;
    return 0;
}
