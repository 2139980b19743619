/* Protobuf rows against a view's schema (proto_row.h). */
#include "proto_row.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/utf8.h"
#include "fsd/v1/feature_service.pb-c.h"
#include "store/key.h"
#include "store/row.h"
#include "store/schema.h"

/* Names from the wire are shown up to this many bytes: enough for any valid name. */
#define NAME_SHOWN 128

/* Value.kind case for each store type (the oneof's field numbers). */
static const Fsd__V1__Value__KindCase kind_of_type[STORE_TYPE_COUNT] = {
    [STORE_TYPE_INT32] = FSD__V1__VALUE__KIND_INT32_VALUE,
    [STORE_TYPE_INT64] = FSD__V1__VALUE__KIND_INT64_VALUE,
    [STORE_TYPE_FLOAT] = FSD__V1__VALUE__KIND_FLOAT_VALUE,
    [STORE_TYPE_DOUBLE] = FSD__V1__VALUE__KIND_DOUBLE_VALUE,
    [STORE_TYPE_BOOL] = FSD__V1__VALUE__KIND_BOOL_VALUE,
    [STORE_TYPE_STRING] = FSD__V1__VALUE__KIND_STRING_VALUE,
    [STORE_TYPE_BYTES] = FSD__V1__VALUE__KIND_BYTES_VALUE,
    [STORE_TYPE_TIMESTAMP] = FSD__V1__VALUE__KIND_TIMESTAMP_US,
    [STORE_TYPE_FLOAT_LIST] = FSD__V1__VALUE__KIND_FLOAT_LIST,
    [STORE_TYPE_INT64_LIST] = FSD__V1__VALUE__KIND_INT64_LIST,
    [STORE_TYPE_STRING_LIST] = FSD__V1__VALUE__KIND_STRING_LIST,
    [STORE_TYPE_INT32_LIST] = FSD__V1__VALUE__KIND_INT32_LIST,
    [STORE_TYPE_DOUBLE_LIST] = FSD__V1__VALUE__KIND_DOUBLE_LIST,
    [STORE_TYPE_BOOL_LIST] = FSD__V1__VALUE__KIND_BOOL_LIST,
    [STORE_TYPE_BYTES_LIST] = FSD__V1__VALUE__KIND_BYTES_LIST,
    [STORE_TYPE_TIMESTAMP_LIST] = FSD__V1__VALUE__KIND_TIMESTAMP_LIST,
};

static const char *_kind_name(Fsd__V1__Value__KindCase kind) {
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field(&fsd__v1__value__descriptor, (unsigned)kind);
    return field != NULL ? field->name : "no value";
}

/* Writes "row <index>: " and the reason into `err`; returns -1. */
__attribute__((format(printf, 4, 5))) static int _bad(char *err, size_t err_len, size_t index,
                                                      const char *fmt, ...) {
    int n = 0;
    if (index != MAT_PROTO_ROW_UNNAMED) {
        n = snprintf(err, err_len, "row %zu: ", index);
    }
    if (n >= 0 && (size_t)n < err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, err_len - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/*
 * The index of feature `name`, or -1. Producers mostly send features in schema order, so the
 * one after the previous value's is tried first: a row then costs one comparison per value
 * instead of a scan of the schema per value.
 */
static int _feature_index(const struct store_schema *schema, const char *name, int hint) {
    if (hint >= 0 && (uint32_t)hint < schema->nfeatures &&
        strcmp(schema->features[hint].name, name) == 0) {
        return hint;
    }
    return store_schema_feature_index(schema, name);
}

/* Strings travel as protobuf `string`: UTF-8, or no client could read them back. */
static bool _strings_valid(const Fsd__V1__Value *v) {
    if (v == NULL) {
        return true;
    }
    if (v->kind_case == FSD__V1__VALUE__KIND_STRING_VALUE) {
        return utf8_valid(v->string_value.data, v->string_value.len);
    }
    if (v->kind_case == FSD__V1__VALUE__KIND_STRING_LIST) {
        for (size_t i = 0; i < v->string_list->n_values; i++) {
            if (!utf8_valid(v->string_list->values[i].data, v->string_list->values[i].len)) {
                return false;
            }
        }
    }
    return true;
}

/* The entity key: every join key once, typed, encoded into `key_buf`. Returns its length. */
static int _check_keys(const struct store_schema *schema, const Fsd__V1__Row *row, size_t index,
                       uint8_t *key_buf, char *err, size_t err_len) {
    struct store_key_part parts[STORE_MAX_JOIN_KEYS];
    bool given[STORE_MAX_JOIN_KEYS] = {false};
    for (size_t i = 0; i < row->n_keys; i++) {
        const Fsd__V1__KeyPart *part = row->keys[i];
        uint32_t k = 0;
        while (k < schema->nkeys && strcmp(schema->keys[k].name, part->name) != 0) {
            k++;
        }
        if (k == schema->nkeys) {
            return _bad(err, err_len, index, "\"%.*s\" is not a join key of view %s", NAME_SHOWN,
                        part->name, schema->view);
        }
        if (given[k]) {
            return _bad(err, err_len, index, "join key %s given twice", part->name);
        }
        given[k] = true;
        if (part->value_case == FSD__V1__KEY_PART__VALUE_INT64_VALUE) {
            parts[k].type = STORE_KEY_INT64;
            parts[k].i64 = part->int64_value;
        } else if (part->value_case == FSD__V1__KEY_PART__VALUE_STRING_VALUE) {
            if (!utf8_valid(part->string_value.data, part->string_value.len)) {
                return _bad(err, err_len, index, "join key %s is not valid UTF-8", part->name);
            }
            parts[k].type = STORE_KEY_STRING;
            parts[k].str = (const char *)part->string_value.data;
            parts[k].str_len = (uint32_t)part->string_value.len;
        } else {
            return _bad(err, err_len, index, "join key %s has no value", part->name);
        }
    }
    for (uint32_t k = 0; k < schema->nkeys; k++) {
        if (!given[k]) {
            return _bad(err, err_len, index, "join key %s of view %s is missing",
                        schema->keys[k].name, schema->view);
        }
    }
    char why[256];
    int len = store_key_encode(schema, parts, key_buf, STORE_MAX_KEY_BYTES, why, sizeof why);
    if (len < 0) {
        return _bad(err, err_len, index, "%s", why);
    }
    return len;
}

int mat_proto_row_check(const struct store_schema *schema, const Fsd__V1__Row *row, size_t index,
                        int64_t now_us, uint8_t *key_buf, char *err, size_t err_len) {
    /* 0 is what a client sends when it forgot the field; far-future rows would shadow every
     * real update until then. */
    if (row->event_timestamp_us <= 0) {
        return _bad(err, err_len, index,
                    "event_timestamp_us must be set (microseconds since the Unix epoch), got %lld",
                    (long long)row->event_timestamp_us);
    }
    if (row->event_timestamp_us > now_us &&
        row->event_timestamp_us - now_us > MAT_PROTO_ROW_MAX_FUTURE_US) {
        return _bad(err, err_len, index,
                    "event_timestamp_us %lld is more than an hour in the future",
                    (long long)row->event_timestamp_us);
    }
    int key_len = _check_keys(schema, row, index, key_buf, err, err_len);
    if (key_len < 0) {
        return -1;
    }
    /* A name maps to one index, so a feature given twice is an index seen twice. */
    uint64_t seen[STORE_MAX_FEATURES / 64];
    memset(seen, 0, ((schema->nfeatures + 63) / 64) * sizeof(seen[0]));
    int f = -1;
    for (size_t i = 0; i < row->n_values; i++) {
        const Fsd__V1__FeatureValue *fv = row->values[i];
        f = _feature_index(schema, fv->name, f + 1);
        if (f < 0) {
            return _bad(err, err_len, index, "view %s has no feature \"%.*s\"", schema->view,
                        NAME_SHOWN, fv->name);
        }
        if (seen[f / 64] & (1ull << (f % 64))) {
            return _bad(err, err_len, index, "feature %s given twice", fv->name);
        }
        seen[f / 64] |= 1ull << (f % 64);
        enum store_type type = schema->features[f].type;
        Fsd__V1__Value__KindCase kind =
            fv->value != NULL ? fv->value->kind_case : FSD__V1__VALUE__KIND__NOT_SET;
        if (kind != FSD__V1__VALUE__KIND__NOT_SET && kind != kind_of_type[type]) {
            return _bad(err, err_len, index, "feature %s is %s, got %s", fv->name,
                        store_type_name(type), _kind_name(kind));
        }
        if (!_strings_valid(fv->value)) {
            return _bad(err, err_len, index, "feature %s is not valid UTF-8", fv->name);
        }
    }
    return key_len;
}

/* Sets one checked value in the builder. Returns -1 only when out of memory. */
static int _set_value(struct store_row_builder *b, uint32_t f, const Fsd__V1__Value *v,
                      mat_proto_row_scratch_fn scratch, void *ctx) {
    switch (v->kind_case) {
    case FSD__V1__VALUE__KIND__NOT_SET:
        store_row_set_null(b, f);
        return 0;
    case FSD__V1__VALUE__KIND_INT32_VALUE:
        store_row_set_int32(b, f, v->int32_value);
        return 0;
    case FSD__V1__VALUE__KIND_INT64_VALUE:
        store_row_set_int64(b, f, v->int64_value);
        return 0;
    case FSD__V1__VALUE__KIND_FLOAT_VALUE:
        store_row_set_float(b, f, v->float_value);
        return 0;
    case FSD__V1__VALUE__KIND_DOUBLE_VALUE:
        store_row_set_double(b, f, v->double_value);
        return 0;
    case FSD__V1__VALUE__KIND_BOOL_VALUE:
        store_row_set_bool(b, f, v->bool_value);
        return 0;
    case FSD__V1__VALUE__KIND_TIMESTAMP_US:
        store_row_set_timestamp(b, f, v->timestamp_us);
        return 0;
    case FSD__V1__VALUE__KIND_STRING_VALUE:
        return store_row_set_bytes(b, f, v->string_value.data, (uint32_t)v->string_value.len);
    case FSD__V1__VALUE__KIND_BYTES_VALUE:
        return store_row_set_bytes(b, f, v->bytes_value.data, (uint32_t)v->bytes_value.len);
    case FSD__V1__VALUE__KIND_FLOAT_LIST:
        return store_row_set_list(b, f, v->float_list->values, (uint32_t)v->float_list->n_values);
    case FSD__V1__VALUE__KIND_INT64_LIST:
        return store_row_set_list(b, f, v->int64_list->values, (uint32_t)v->int64_list->n_values);
    case FSD__V1__VALUE__KIND_INT32_LIST:
        return store_row_set_list(b, f, v->int32_list->values, (uint32_t)v->int32_list->n_values);
    case FSD__V1__VALUE__KIND_DOUBLE_LIST:
        return store_row_set_list(b, f, v->double_list->values, (uint32_t)v->double_list->n_values);
    case FSD__V1__VALUE__KIND_TIMESTAMP_LIST:
        return store_row_set_list(b, f, v->timestamp_list->values,
                                  (uint32_t)v->timestamp_list->n_values);
    case FSD__V1__VALUE__KIND_BOOL_LIST: {
        /* protobuf-c's booleans are ints; the row keeps one byte each */
        size_t n = v->bool_list->n_values;
        uint8_t *bytes = scratch(ctx, n + 1);
        if (bytes == NULL) {
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            bytes[i] = v->bool_list->values[i] ? 1 : 0;
        }
        return store_row_set_list(b, f, bytes, (uint32_t)n);
    }
    case FSD__V1__VALUE__KIND_STRING_LIST:
    case FSD__V1__VALUE__KIND_BYTES_LIST: {
        /* the two lists are the same message shape: repeated bytes as protobuf-c sees it */
        size_t n = v->kind_case == FSD__V1__VALUE__KIND_STRING_LIST ? v->string_list->n_values
                                                                    : v->bytes_list->n_values;
        const ProtobufCBinaryData *items = v->kind_case == FSD__V1__VALUE__KIND_STRING_LIST
                                               ? v->string_list->values
                                               : v->bytes_list->values;
        uint8_t *mem = scratch(ctx, (n + 1) * (sizeof(const char *) + sizeof(uint32_t)));
        if (mem == NULL) {
            return -1;
        }
        const char **strs = (const char **)(void *)mem;
        uint32_t *lens = (uint32_t *)(void *)(mem + (n + 1) * sizeof(const char *));
        for (size_t i = 0; i < n; i++) {
            strs[i] = (const char *)items[i].data;
            lens[i] = (uint32_t)items[i].len;
        }
        return store_row_set_packed_list(b, f, strs, lens, (uint32_t)n);
    }
    default:
        return -1;
    }
}

int mat_proto_row_build(struct store_row_builder *b, const Fsd__V1__Row *row,
                        mat_proto_row_scratch_fn scratch, void *ctx) {
    store_row_builder_reset(b, row->event_timestamp_us, row->created_timestamp_us);
    Fsd__V1__Value null_value = FSD__V1__VALUE__INIT;
    int f = -1;
    for (size_t i = 0; i < row->n_values; i++) {
        const Fsd__V1__FeatureValue *fv = row->values[i];
        f = _feature_index(b->schema, fv->name, f + 1);
        if (_set_value(b, (uint32_t)f, fv->value != NULL ? fv->value : &null_value, scratch, ctx) !=
            0) {
            return -1;
        }
    }
    return 0;
}
