#pragma once
/*
 * Rows: one entity's feature values at one event time, packed into a single allocation.
 *
 *   0        8        12   14  15  16
 *   ┌────────┬────────┬────┬───┬───┬──────────┬──────────────┬───────────────┬────────┬───────┐
 *   │event_ts│var_    │key_│fl-│ - │[created_ │ key bytes,   │ fixed section │ null   │ var   │
 *   │_us     │bytes   │len │ags│   │ ts_us]   │ padded to 8  │ (schema order │ bitmap │ data  │
 *   └────────┴────────┴────┴───┴───┴──────────┴──────────────┴ by width)─────┴────────┴───────┘
 *
 * The created timestamp only breaks ties between rows of equal event time, and most sources
 * have none: it takes 8 bytes only when it is neither 0 (a push without one) nor
 * STORE_CREATED_NONE (a snapshot without a created column), which two flags encode.
 * The fixed section holds int32/int64/float/double/bool/timestamp values at the offsets the
 * schema assigned (8-byte values first, so none needs padding), and for each variable-width
 * feature a {u32 offset from the row start, u32 bytes} reference into the var data. Strings
 * are stored back to back; lists start at an 8-byte boundary so readers can use them in place.
 * A set null bit means the value is null. With one int64 key and 8 doubles, 1 int64 and a
 * 10-byte string a row is 116 bytes.
 *
 * A row never changes once a table has published it: an update writes a new row and retires
 * the old one, so readers need no locks.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "schema.h"

#define STORE_ROW_TOMBSTONE 0x01 /* a delete: the key has no values as of event_ts_us */
/*
 * Written through the live path (PushRows, a stream), not read from a snapshot: a snapshot
 * swap keeps the row when it is newer than the snapshot's row for its entity, or the snapshot
 * has none (store_view_load_commit). Copies of the row (reloads, swaps) keep the mark.
 */
#define STORE_ROW_LIVE         0x02
#define STORE_ROW_CREATED      0x04 /* created_ts_us is stored, in the 8 bytes before the key */
#define STORE_ROW_CREATED_NONE 0x08 /* not stored, and STORE_CREATED_NONE rather than 0 */
/* A table's own mark (where it allocated the row): copies out of a table may carry it, and a
 * table sets or clears it on every row it takes. */
#define STORE_ROW_TABLE_PRIVATE 0x80

/* The created time of a row read from a source without a created column: older than any. */
#define STORE_CREATED_NONE INT64_MIN

struct store_row {
    int64_t event_ts_us;
    uint32_t var_bytes;
    uint16_t key_len;
    uint8_t flags;
    uint8_t reserved;
    uint8_t data[];
};

/* Per value: what a lookup found. */
enum store_status {
    STORE_PRESENT,
    STORE_NOT_FOUND,       /* no row for the entity */
    STORE_NULL,            /* the row exists, the value is null */
    STORE_OUTSIDE_MAX_AGE, /* the row is older than the view's TTL */
};

const char *store_status_name(enum store_status status);

/*
 * A row under construction, in caller memory (init/deinit). Reset it, set values (unset
 * features stay null), then hand it to store_table_upsert(), which copies it. Setters copy
 * their input. Builders are not thread-safe; use one per thread.
 */
struct store_row_builder {
    const struct store_schema *schema;
    int64_t event_ts_us;
    int64_t created_ts_us;
    uint8_t *fixed; /* fixed_size bytes; var features hold {offset, bytes} into `var` */
    uint8_t *nulls; /* null_bytes bytes */
    uint8_t *var;   /* staged variable-width values */
    uint32_t var_len;
    uint32_t var_cap;
};

int store_row_builder_init(struct store_row_builder *b, const struct store_schema *schema);
void store_row_builder_deinit(struct store_row_builder *b);

/* Starts a new row: every feature null. */
void store_row_builder_reset(struct store_row_builder *b, int64_t event_ts_us,
                             int64_t created_ts_us);

/*
 * Setters. `index` must name a feature of the setter's type (checked with assert in debug
 * builds; store_row_set_value() checks and returns -1 on a mismatch). Var setters return -1
 * when out of memory or when the row would exceed 4 GiB.
 */
void store_row_set_null(struct store_row_builder *b, uint32_t index);
void store_row_set_int32(struct store_row_builder *b, uint32_t index, int32_t v);
void store_row_set_int64(struct store_row_builder *b, uint32_t index, int64_t v);
void store_row_set_float(struct store_row_builder *b, uint32_t index, float v);
void store_row_set_double(struct store_row_builder *b, uint32_t index, double v);
void store_row_set_bool(struct store_row_builder *b, uint32_t index, bool v);
void store_row_set_timestamp(struct store_row_builder *b, uint32_t index, int64_t ts_us);
int store_row_set_bytes(struct store_row_builder *b, uint32_t index, const void *data,
                        uint32_t len); /* string or bytes */
/* An array list (int32, int64, float, double, bool or timestamp list): `n` elements laid out
 * as store_value describes; bool elements are bytes, 0 or 1. */
int store_row_set_list(struct store_row_builder *b, uint32_t index, const void *elements,
                       uint32_t n);
/* A string or bytes list: `n` items of lens[i] bytes each. */
int store_row_set_packed_list(struct store_row_builder *b, uint32_t index, const char *const *items,
                              const uint32_t *lens, uint32_t n);
int store_row_set_value(struct store_row_builder *b, uint32_t index,
                        const struct store_value *value);

/* Bytes the finished row takes with a key of `key_len` bytes (a multiple of 8). */
size_t store_row_size(const struct store_row_builder *b, uint32_t key_len);

/* Writes the finished row into `dst` (store_row_size bytes, 8-byte aligned). */
void store_row_write(const struct store_row_builder *b, const uint8_t *key, uint32_t key_len,
                     struct store_row *dst);

/* Writes a tombstone row for `key` (store_row_size_tombstone bytes). */
size_t store_row_size_tombstone(uint32_t key_len, int64_t created_ts_us);
void store_row_write_tombstone(struct store_row *dst, const uint8_t *key, uint32_t key_len,
                               int64_t event_ts_us, int64_t created_ts_us);

/*
 * Whether `bytes` bytes at `row` (8-byte aligned) are a row image of `schema`'s layout that
 * can be read safely: known flags, a key of 1..STORE_MAX_KEY_BYTES bytes, a total size of
 * `bytes`, and every variable-width value inside the row (lists aligned, a string list's
 * lengths within its block). For rows read back from disk; 0, or -1 with `why` set.
 */
int store_row_check(const struct store_schema *schema, const struct store_row *row, size_t bytes,
                    char *why, size_t why_len);

/* The row's total size in bytes, as store_row_size() gave it when it was written. */
size_t store_row_total_size(const struct store_schema *schema, const struct store_row *row);

/* Bytes between the header and the key: the created time, when stored. */
static inline size_t store_row_created_bytes(const struct store_row *row) {
    return (row->flags & STORE_ROW_CREATED) ? 8 : 0;
}

static inline int64_t store_row_created_us(const struct store_row *row) {
    if (row->flags & STORE_ROW_CREATED) {
        int64_t created;
        memcpy(&created, row->data, 8);
        return created;
    }
    return (row->flags & STORE_ROW_CREATED_NONE) ? STORE_CREATED_NONE : 0;
}

/* True when (event_ts_us, created_ts_us) is strictly newer than the row's. */
static inline bool store_row_is_older_than(const struct store_row *row, int64_t event_ts_us,
                                           int64_t created_ts_us) {
    return row->event_ts_us < event_ts_us ||
           (row->event_ts_us == event_ts_us && store_row_created_us(row) < created_ts_us);
}

static inline const uint8_t *store_row_key(const struct store_row *row) {
    return row->data + store_row_created_bytes(row);
}

/* Row-level status at `now_us`: present, or outside max age when now - event_ts > ttl. */
static inline enum store_status store_row_status(const struct store_schema *schema,
                                                 const struct store_row *row, int64_t now_us) {
    /* Written so that no event time, however far from now, overflows. */
    if (schema->ttl_us > 0 && row->event_ts_us < now_us - schema->ttl_us) {
        return STORE_OUTSIDE_MAX_AGE;
    }
    return STORE_PRESENT;
}

static inline const uint8_t *store_row_fixed(const struct store_row *row) {
    return row->data + store_row_created_bytes(row) + ((row->key_len + 7u) & ~7u);
}

static inline bool store_row_is_null(const struct store_schema *schema, const struct store_row *row,
                                     uint32_t index) {
    const uint8_t *nulls = store_row_fixed(row) + schema->fixed_size;
    return (nulls[index >> 3] >> (index & 7)) & 1;
}

/* Reads feature `index` of a row where it is not null. Var values point into the row. */
void store_row_get(const struct store_schema *schema, const struct store_row *row, uint32_t index,
                   struct store_value *out);
