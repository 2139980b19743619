#pragma once
/*
 * Internals of the PostgreSQL source, shared by postgres.c (connection, SQL, the COPY loop)
 * and postgres_decode.c (the binary COPY stream and its values). Not for other modules: the
 * public interface is postgres.h.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "snapshot.h"

struct mat_source;
struct store_schema;
struct mat_sink;

/* Built-in type OIDs (src/include/catalog/pg_type.dat); fixed since PostgreSQL 7. */
enum {
    PG_BOOL = 16,
    PG_BYTEA = 17,
    PG_NAME = 19,
    PG_INT8 = 20,
    PG_INT2 = 21,
    PG_INT4 = 23,
    PG_TEXT = 25,
    PG_FLOAT4 = 700,
    PG_FLOAT8 = 701,
    PG_BPCHAR = 1042,
    PG_VARCHAR = 1043,
    PG_DATE = 1082,
    PG_TIMESTAMP = 1114,
    PG_TIMESTAMPTZ = 1184,
    PG_NUMERIC = 1700,
    PG_NAME_ARRAY = 1003,
    PG_INT2_ARRAY = 1005,
    PG_INT4_ARRAY = 1007,
    PG_TEXT_ARRAY = 1009,
    PG_BPCHAR_ARRAY = 1014,
    PG_VARCHAR_ARRAY = 1015,
    PG_INT8_ARRAY = 1016,
    PG_FLOAT4_ARRAY = 1021,
    PG_FLOAT8_ARRAY = 1022,
    PG_BOOL_ARRAY = 1000,
    PG_BYTEA_ARRAY = 1001,
    PG_TIMESTAMP_ARRAY = 1115,
    PG_DATE_ARRAY = 1182,
    PG_TIMESTAMPTZ_ARRAY = 1185,
    PG_NUMERIC_ARRAY = 1231,
};

#define PG_EPOCH_US INT64_C(946684800000000) /* 2000-01-01 00:00:00 UTC in Unix microseconds */

enum mat_pg_role {
    MAT_PG_EVENT_TS,
    MAT_PG_CREATED_TS,
    MAT_PG_KEY,
    MAT_PG_FEATURE,
};

/* One column of the COPY, in SELECT order: event time, created time, keys, features. */
struct mat_pg_column {
    const char *name; /* the config's name; not owned */
    enum mat_pg_role role;
    uint32_t index; /* key or feature index in the schema */
    Oid oid;        /* the result type; enums are read as text */
};

struct mat_pg_field {
    const uint8_t *data;
    int32_t len; /* -1 = NULL */
};

struct mat_pg_reader {
    const struct mat_source *source;
    const struct store_schema *schema;
    struct mat_sink *sink;
    PGconn *conn;
    char *secret; /* the password, scrubbed from any text we pass on */
    char *from;   /* the FROM item: qualified table or parenthesized query, with an alias */
    struct mat_pg_column *cols;
    uint32_t ncols;
    bool has_created;
    struct mat_pg_field *fields; /* the tuple being decoded */
    uint64_t row;                /* tuples decoded so far, the current one included */

    /* the COPY stream */
    bool header_done;
    bool trailer_seen;
    uint8_t *stage; /* bytes of a tuple split across messages */
    size_t stage_len;
    size_t stage_cap;

    /* scratch for lists and numerics, grown as needed, reused across rows */
    uint8_t *elements; /* an array list's elements, 8 bytes each at most */
    uint32_t element;  /* 1 + the list element being decoded, for messages; 0: none */
    const char **strs;
    uint32_t *lens;
    size_t list_cap;
    char *digits;
    size_t digits_cap;

    /* bounds (postgres.h): the load's deadline, the longest silence, for messages the
     * configured values; gave_up once one ended the read (the first error then stands) */
    struct mat_source_timeouts timeouts; /* the source's, resolved */
    int64_t deadline_us;                 /* monotonic; INT64_MAX: none */
    int64_t load_timeout_us;
    int64_t read_timeout_us; /* 0: none */
    bool gave_up;

    char *err;
    size_t err_len;
};

static inline bool mat_pg_is_text(Oid oid) {
    return oid == PG_TEXT || oid == PG_VARCHAR || oid == PG_BPCHAR || oid == PG_NAME;
}

static inline bool mat_pg_is_int(Oid oid) {
    return oid == PG_INT2 || oid == PG_INT4 || oid == PG_INT8;
}

static inline bool mat_pg_is_time(Oid oid) {
    return oid == PG_TIMESTAMPTZ || oid == PG_TIMESTAMP || oid == PG_DATE;
}

/* The element type of the array types we read, else 0. */
static inline Oid mat_pg_array_elem(Oid oid) {
    switch (oid) {
    case PG_FLOAT4_ARRAY:
        return PG_FLOAT4;
    case PG_FLOAT8_ARRAY:
        return PG_FLOAT8;
    case PG_INT2_ARRAY:
        return PG_INT2;
    case PG_INT4_ARRAY:
        return PG_INT4;
    case PG_INT8_ARRAY:
        return PG_INT8;
    case PG_TEXT_ARRAY:
        return PG_TEXT;
    case PG_VARCHAR_ARRAY:
        return PG_VARCHAR;
    case PG_BPCHAR_ARRAY:
        return PG_BPCHAR;
    case PG_NAME_ARRAY:
        return PG_NAME;
    case PG_BOOL_ARRAY:
        return PG_BOOL;
    case PG_BYTEA_ARRAY:
        return PG_BYTEA;
    case PG_TIMESTAMP_ARRAY:
        return PG_TIMESTAMP;
    case PG_DATE_ARRAY:
        return PG_DATE;
    case PG_TIMESTAMPTZ_ARRAY:
        return PG_TIMESTAMPTZ;
    case PG_NUMERIC_ARRAY:
        return PG_NUMERIC;
    default:
        return 0;
    }
}

/*
 * Writes "view <name>: " and the message into the reader's err (one line, any password
 * scrubbed). Returns -1.
 */
__attribute__((format(printf, 2, 3))) int mat_pg_fail(struct mat_pg_reader *r, const char *fmt,
                                                      ...);

/*
 * Fills r->cols (event time, created time, keys, features: the COPY's column order) from
 * r->source and r->schema; the types (oid) are left for the probe. Returns 0 or -1.
 */
int mat_pg_plan(struct mat_pg_reader *r);

/*
 * Frees what the reader holds and closes its connection. Safe on a reader that failed at any
 * step (what it never allocated is NULL); call it once.
 */
void mat_pg_reader_deinit(struct mat_pg_reader *r);

/*
 * Takes the next piece of the binary COPY stream (any split) and decodes every whole tuple
 * in it into the sink. Returns 0, or -1 with the error set.
 */
int mat_pg_feed(struct mat_pg_reader *r, const uint8_t *data, size_t len);
