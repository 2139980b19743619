#pragma once
/*
 * A feature view's schema: its join keys, its typed features with their defaults, its TTL,
 * and the row layout derived from them. The config loader builds a schema, the store lays out
 * rows by it, and the server reads values through it.
 *
 * Errors: functions that can fail return 0 on success and -1 on failure, writing a message
 * that names the view and the field into `err` (at most `err_len` bytes, always terminated).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_MAX_NAME      128 /* bytes in a view, feature or join key name */
#define STORE_MAX_JOIN_KEYS 8
#define STORE_MAX_FEATURES  4096
#define STORE_MAX_KEY_BYTES 4096 /* encoded entity key, all parts together */

enum store_type {
    STORE_TYPE_INT32,
    STORE_TYPE_INT64,
    STORE_TYPE_FLOAT,
    STORE_TYPE_DOUBLE,
    STORE_TYPE_BOOL,
    STORE_TYPE_STRING,
    STORE_TYPE_BYTES,
    STORE_TYPE_TIMESTAMP, /* microseconds since the Unix epoch, UTC */
    STORE_TYPE_FLOAT_LIST,
    STORE_TYPE_INT64_LIST,
    STORE_TYPE_STRING_LIST,
    /* Appended, never inserted: the numbers are in checkpoint fingerprints and, plus one, are
     * fsd.v1.FeatureType on the wire. */
    STORE_TYPE_INT32_LIST,
    STORE_TYPE_DOUBLE_LIST,
    STORE_TYPE_BOOL_LIST,
    STORE_TYPE_BYTES_LIST,
    STORE_TYPE_TIMESTAMP_LIST, /* microseconds, as timestamp */
};
#define STORE_TYPE_COUNT (STORE_TYPE_TIMESTAMP_LIST + 1)

enum store_key_type {
    STORE_KEY_INT64,
    STORE_KEY_STRING,
};

enum store_default_kind {
    STORE_DEFAULT_NONE,    /* a value that is not present is reported without a value */
    STORE_DEFAULT_LITERAL, /* a constant from the config */
    STORE_DEFAULT_ZERO,    /* 0, 0.0, false, "", empty list */
    STORE_DEFAULT_MEAN,    /* mean of the present values in the current snapshot (numeric only) */
};

/*
 * A typed value. Variable-width values point into memory someone else owns: the row they were
 * read from (valid while the reader holds its RCU read lock) or the schema (literal defaults).
 *
 *   string, bytes:   var.data = the bytes,                 var.bytes = length, var.count = 0
 *   array lists:     var.data = elements[count] (aligned), var.bytes = element size * count
 *                    int32_list int32_t, int64_list int64_t, float_list float,
 *                    double_list double, bool_list uint8_t (0 or 1), timestamp_list int64_t
 *   packed lists:    var.data = packed block,              var.bytes = its size, var.count = n
 *   (string_list,    packed block: uint32 len[n], then the n items back to back
 *    bytes_list)     (unaligned); read it with store_packed_list_at().
 */
struct store_value {
    enum store_type type;
    union {
        int32_t i32;
        int64_t i64;
        float f32;
        double f64;
        bool b;
        int64_t ts_us;
        struct {
            const void *data;
            uint32_t bytes;
            uint32_t count;
        } var;
    };
};

struct store_join_key {
    char *name;
    enum store_key_type type;
};

struct store_feature {
    char *name;
    enum store_type type;
    enum store_default_kind default_kind;
    struct store_value default_literal; /* STORE_DEFAULT_LITERAL only; var data owned here */
    /* layout, set by store_schema_finalize(): */
    uint32_t
        fixed_offset; /* offset in the row's fixed section; var types keep {u32 off, u32 len} */
};

struct store_schema {
    char *view;
    struct store_join_key keys[STORE_MAX_JOIN_KEYS];
    uint32_t nkeys;
    struct store_feature *features;
    uint32_t nfeatures;
    int64_t ttl_us; /* max age of a row; 0 = never stale */
    /* layout, set by store_schema_finalize(): */
    bool finalized;
    uint32_t fixed_size; /* bytes of the fixed section, a multiple of 8 */
    uint32_t null_bytes; /* bytes of the null bitmap, one bit per feature */
};

/* Type names as they appear in configs: "int32", "float_list", ... */
const char *store_type_name(enum store_type type);
bool store_type_parse(const char *name, enum store_type *out);
const char *store_key_type_name(enum store_key_type type);
bool store_key_type_parse(const char *name, enum store_key_type *out);
bool store_type_is_var(enum store_type type); /* string, bytes and lists */
bool store_type_is_list(enum store_type type);
/* The type of a list's elements (float for float_list, ...); a scalar type itself. */
enum store_type store_type_element(enum store_type type);
/* The list type of element type `type`, or false when there is none. */
bool store_type_list_of(enum store_type element, enum store_type *out);
/* Bytes per element of an array list (see store_value); 0 for packed lists and scalars. */
uint32_t store_type_element_size(enum store_type type);
bool store_type_has_mean(enum store_type type);       /* int32, int64, float, double */
uint32_t store_type_fixed_size(enum store_type type); /* bytes in the fixed section */

/* Returns a new, empty schema, or NULL when out of memory. The caller owns it. */
struct store_schema *store_schema_create(const char *view, int64_t ttl_us);
void store_schema_destroy(struct store_schema *schema);

int store_schema_add_key(struct store_schema *schema, const char *name, enum store_key_type type,
                         char *err, size_t err_len);

/* Returns the new feature's index, or -1 with `err` set (duplicate name, too many). */
int store_schema_add_feature(struct store_schema *schema, const char *name, enum store_type type,
                             char *err, size_t err_len);

/*
 * Sets feature `index`'s default. `literal` is read for STORE_DEFAULT_LITERAL only and must
 * have the feature's type; its variable-width data is copied. Fails for `mean` on a type
 * without a mean.
 */
int store_schema_set_default(struct store_schema *schema, uint32_t index,
                             enum store_default_kind kind, const struct store_value *literal,
                             char *err, size_t err_len);

/* Computes the row layout. Requires at least one join key. Call once, after the last add. */
int store_schema_finalize(struct store_schema *schema, char *err, size_t err_len);

/* Returns the index of the feature named `name`, or -1. */
int store_schema_feature_index(const struct store_schema *schema, const char *name);

/*
 * True when rows laid out for `a` read correctly with `b`: the same join keys and the same
 * features with the same types in the same order. TTL and defaults may differ.
 */
bool store_schema_same_layout(const struct store_schema *a, const struct store_schema *b);

/*
 * A 64-bit hash of what store_schema_same_layout() compares (join keys and features: names,
 * types, order): rows written to disk for one schema are read back only under a schema with
 * the same fingerprint. Stable across versions of fsd as long as the row layout is.
 */
uint64_t store_schema_layout_fingerprint(const struct store_schema *schema);

/* Returns a deep copy (finalized if the original was), or NULL when out of memory. */
struct store_schema *store_schema_clone(const struct store_schema *schema);

/* The zero value of `type` (0, 0.0, false, "", empty list). */
struct store_value store_value_zero(enum store_type type);

/*
 * Element `i` of a list value, as a value of the element type (string and bytes items point
 * into the list). Takes O(i) for string and bytes lists: walk those with store_packed_list_at
 * and a running offset where it matters.
 */
struct store_value store_list_element(const struct store_value *list, uint32_t i);

/* Item `i` of a string or bytes list value. */
void store_packed_list_at(const struct store_value *list, uint32_t i, const char **data,
                          uint32_t *len);
