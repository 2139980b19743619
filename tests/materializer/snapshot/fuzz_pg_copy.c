/*
 * Fuzz target for the PostgreSQL source's decoder: bytes from the server (a binary COPY
 * stream) go through the stream parser, every value decoder (integers, numerics, times,
 * arrays, text) and the sink. The reader is set up as mat_pg_read() would set it up for a
 * view with one column of each decoded kind, so no server is needed.
 *
 * Built with libFuzzer when the compiler is Clang (fuzz_pg_copy); always built as
 * fuzz_pg_copy_replay, whose main() runs the target over a valid stream encoded here, every
 * prefix of it and every single-byte corruption of it, plus any files it is given, so CTest
 * exercises the decoder's error paths under every build, sanitizers too.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "materializer/snapshot/postgres_internal.h"
#include "materializer/snapshot/sink.h"
#include "store/rcu.h"
#include "store/schema.h"
#include "store/table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Column order as mat_pg_plan() lays it out: event time, created time, keys, features. */
static const struct {
    const char *name;
    int type; /* enum store_type; -1 = int64 key, -2 = string key, -3 = a time column */
    Oid oid;
} COLUMNS[] = {
    {"ts", -3, PG_TIMESTAMPTZ},
    {"created", -3, PG_DATE},
    {"k", -1, PG_INT8},
    {"s", -2, PG_TEXT},
    {"f_i32", STORE_TYPE_INT32, PG_INT8},
    {"f_i64", STORE_TYPE_INT64, PG_INT2},
    {"f_f", STORE_TYPE_FLOAT, PG_NUMERIC},
    {"f_d", STORE_TYPE_DOUBLE, PG_FLOAT8},
    {"f_dn", STORE_TYPE_DOUBLE, PG_NUMERIC},
    {"f_b", STORE_TYPE_BOOL, PG_BOOL},
    {"f_s", STORE_TYPE_STRING, PG_TEXT},
    {"f_by", STORE_TYPE_BYTES, PG_BYTEA},
    {"f_t", STORE_TYPE_TIMESTAMP, PG_TIMESTAMP},
    {"f_fl", STORE_TYPE_FLOAT_LIST, PG_FLOAT8_ARRAY},
    {"f_il", STORE_TYPE_INT64_LIST, PG_INT4_ARRAY},
    {"f_sl", STORE_TYPE_STRING_LIST, PG_TEXT_ARRAY},
    {"f_i32l", STORE_TYPE_INT32_LIST, PG_INT2_ARRAY},
    {"f_dl", STORE_TYPE_DOUBLE_LIST, PG_NUMERIC_ARRAY},
    {"f_bl", STORE_TYPE_BOOL_LIST, PG_BOOL_ARRAY},
    {"f_byl", STORE_TYPE_BYTES_LIST, PG_BYTEA_ARRAY},
    {"f_tl", STORE_TYPE_TIMESTAMP_LIST, PG_DATE_ARRAY},
};
#define NCOLUMNS (sizeof COLUMNS / sizeof COLUMNS[0])

static struct store_schema *g_schema;

static struct store_schema *_schema(void) {
    char err[256];
    struct store_schema *s = store_schema_create("fuzz", 0);
    for (size_t i = 0; i < NCOLUMNS; i++) {
        if (COLUMNS[i].type == -1 || COLUMNS[i].type == -2) {
            store_schema_add_key(s, COLUMNS[i].name,
                                 COLUMNS[i].type == -1 ? STORE_KEY_INT64 : STORE_KEY_STRING, err,
                                 sizeof err);
        } else if (COLUMNS[i].type >= 0) {
            store_schema_add_feature(s, COLUMNS[i].name, (enum store_type)COLUMNS[i].type, err,
                                     sizeof err);
        }
    }
    if (store_schema_finalize(s, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_pg_copy: %s\n", err);
        abort();
    }
    return s;
}

/* Decodes `data` fed in pieces of `piece` bytes; returns what the last feed returned. */
static int _decode(const uint8_t *data, size_t size, size_t piece) {
    char err[512];
    struct store_table_options opts = {.shards = 1};
    struct store_table *table = store_table_create(g_schema, &opts, err, sizeof err);
    struct mat_sink *sink = mat_sink_create(g_schema, table, INT64_MAX);
    struct mat_source src = {
        .type = MAT_SOURCE_POSTGRES,
        .table = "fuzz",
        .event_timestamp_column = "ts",
        .created_timestamp_column = "created",
    };
    struct mat_pg_reader r = {
        .source = &src, .schema = g_schema, .sink = sink, .err = err, .err_len = sizeof err};
    int rc = mat_pg_plan(&r);
    for (uint32_t i = 0; rc == 0 && i < r.ncols; i++) {
        r.cols[i].oid = COLUMNS[i].oid;
    }
    for (size_t at = 0; rc == 0 && at < size; at += piece) {
        rc = mat_pg_feed(&r, data + at, size - at < piece ? size - at : piece);
    }
    mat_pg_reader_deinit(&r);
    mat_sink_destroy(sink);
    store_table_destroy(table);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (g_schema == NULL) {
        store_rcu_thread_online();
        g_schema = _schema();
    }
    _decode(data, size, size > 0 ? size : 1);
    _decode(data, size, 7);
    return 0;
}

#ifdef FSD_FUZZ_REPLAY
/* ---- a valid stream, encoded by hand -------------------------------------------------- */

struct enc {
    uint8_t buf[8192];
    size_t len;
};

static void _put(struct enc *e, const void *p, size_t n) {
    memcpy(e->buf + e->len, p, n);
    e->len += n;
}

static void _u16(struct enc *e, uint16_t v) {
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    _put(e, b, 2);
}

static void _u32(struct enc *e, uint32_t v) {
    _u16(e, (uint16_t)(v >> 16));
    _u16(e, (uint16_t)v);
}

static void _u64(struct enc *e, uint64_t v) {
    _u32(e, (uint32_t)(v >> 32));
    _u32(e, (uint32_t)v);
}

static void _null(struct enc *e) {
    _u32(e, UINT32_MAX);
}

static void _int(struct enc *e, int bytes, int64_t v) {
    _u32(e, (uint32_t)bytes);
    if (bytes == 2) {
        _u16(e, (uint16_t)v);
    } else if (bytes == 4) {
        _u32(e, (uint32_t)v);
    } else {
        _u64(e, (uint64_t)v);
    }
}

static void _double(struct enc *e, double d) {
    uint64_t bits;
    memcpy(&bits, &d, 8);
    _u32(e, 8);
    _u64(e, bits);
}

static void _text(struct enc *e, const char *s) {
    _u32(e, (uint32_t)strlen(s));
    _put(e, s, strlen(s));
}

/* numeric with base-10000 digits: value = sum digits[i] * 10000^(weight - i) */
static void _numeric(struct enc *e, int16_t weight, uint16_t sign, int n, const uint16_t *digits) {
    _u32(e, (uint32_t)(8 + 2 * n));
    _u16(e, (uint16_t)n);
    _u16(e, (uint16_t)weight);
    _u16(e, sign);
    _u16(e, 4);
    for (int i = 0; i < n; i++) {
        _u16(e, digits[i]);
    }
}

/* A one-dimensional array header; the caller writes `n` elements, then _array_end(). */
static size_t _array(struct enc *e, Oid elem, int n) {
    size_t at = e->len;
    _u32(e, 0); /* length, patched by _array_end */
    _u32(e, n > 0 ? 1 : 0);
    _u32(e, 0);
    _u32(e, elem);
    if (n > 0) {
        _u32(e, (uint32_t)n);
        _u32(e, 1);
    }
    return at;
}

static void _array_end(struct enc *e, size_t at) {
    uint32_t len = (uint32_t)(e->len - at - 4);
    uint8_t b[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
    memcpy(e->buf + at, b, 4);
}

static void _tuple(struct enc *e, int64_t key, bool nulls, bool edges) {
    _u16(e, (uint16_t)NCOLUMNS);
    _int(e, 8, edges ? INT64_MAX : 631152000000000 + key); /* timestamptz */
    if (nulls) {
        _null(e);
    } else {
        _int(e, 4, edges ? INT32_MIN : 8000); /* date */
    }
    _int(e, 8, key);
    _text(e, edges ? "" : "user");
    if (nulls) {
        for (size_t i = 4; i < NCOLUMNS; i++) {
            _null(e);
        }
        return;
    }
    _int(e, 8, edges ? INT32_MIN : 42);                      /* f_i32 from bigint */
    _int(e, 2, edges ? -32768 : 7);                          /* f_i64 from smallint */
    _numeric(e, 0, 0x0000, 2, (const uint16_t[]){12, 3400}); /* 12.34 */
    _double(e, edges ? -0.0 : 0.1);
    if (edges) {
        _numeric(e, 0, 0xC000, 0, NULL); /* NaN */
    } else {
        _numeric(e, -1, 0x4000, 1, (const uint16_t[]){5000}); /* -0.5 */
    }
    _u32(e, 1);
    uint8_t b = 1;
    _put(e, &b, 1);
    _text(e, "héllo");
    _text(e, edges ? "" : "\x01\x02");
    _int(e, 8, edges ? INT64_MIN : 0); /* timestamp */
    size_t at = _array(e, PG_FLOAT8, edges ? 0 : 2);
    if (!edges) {
        _double(e, 1.5);
        _double(e, 1e30);
    }
    _array_end(e, at);
    at = _array(e, PG_INT4, 3);
    _int(e, 4, -1);
    _int(e, 4, 0);
    _int(e, 4, INT32_MAX);
    _array_end(e, at);
    at = _array(e, PG_TEXT, 2);
    _text(e, "a");
    _text(e, "");
    _array_end(e, at);
    at = _array(e, PG_INT2, 2);
    _int(e, 2, -32768);
    _int(e, 2, 32767);
    _array_end(e, at);
    at = _array(e, PG_NUMERIC, edges ? 0 : 1);
    if (!edges) {
        _numeric(e, 0, 0x0000, 2, (const uint16_t[]){12, 3400}); /* 12.34 */
    }
    _array_end(e, at);
    at = _array(e, PG_BOOL, 2);
    _u32(e, 1);
    _put(e, &b, 1);
    _u32(e, 1);
    _put(e, &(uint8_t){0}, 1);
    _array_end(e, at);
    at = _array(e, PG_BYTEA, 1);
    _text(e, "\xff");
    _array_end(e, at);
    at = _array(e, PG_DATE, 1);
    _int(e, 4, edges ? INT32_MAX : 8000); /* 'infinity' at the edge */
    _array_end(e, at);
}

static size_t _valid_stream(uint8_t *out) {
    static struct enc e;
    e.len = 0;
    _put(&e, "PGCOPY\n\377\r\n\0", 11);
    _u32(&e, 0);
    _u32(&e, 0);
    _tuple(&e, 1, false, false);
    _tuple(&e, 2, true, false);
    _tuple(&e, 3, false, true);
    _u16(&e, UINT16_MAX);
    memcpy(out, e.buf, e.len);
    return e.len;
}

int main(int argc, char **argv) {
    static uint8_t seed[8192], mutated[8192];
    size_t n = _valid_stream(seed);
    LLVMFuzzerTestOneInput(seed, n);
    if (_decode(seed, n, n) != 0) {
        fprintf(stderr, "fuzz_pg_copy_replay: the valid stream did not decode\n");
        return 1;
    }
    int cases = 1;
    for (size_t cut = 0; cut < n; cut++, cases++) {
        LLVMFuzzerTestOneInput(seed, cut);
    }
    static const uint8_t values[] = {0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff};
    for (size_t at = 0; at < n; at++) {
        for (size_t v = 0; v < sizeof values; v++, cases++) {
            memcpy(mutated, seed, n);
            mutated[at] = values[v];
            LLVMFuzzerTestOneInput(mutated, n);
        }
    }
    for (int i = 1; i < argc; i++, cases++) {
        FILE *f = fopen(argv[i], "rb");
        if (f == NULL) {
            perror(argv[i]);
            return 1;
        }
        static uint8_t buf[1 << 20];
        size_t len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, len);
    }
    store_schema_destroy(g_schema);
    store_rcu_barrier();
    store_rcu_thread_offline();
    printf("replayed %d inputs (a %zu-byte stream, its prefixes and byte corruptions)\n", cases, n);
    return 0;
}
#endif
