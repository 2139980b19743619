/*
 * The checks and row building PushRows and PushSnapshot share (row_check.h): one definition of
 * what a valid pushed row is, so both RPCs accept and reject exactly the same rows.
 */
#include "row_check.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "rpc_internal.h"
#include "store/key.h"
#include "store/row.h"
#include "store/schema.h"

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
};

static const char *_kind_name(Fsd__V1__Value__KindCase kind) {
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field(&fsd__v1__value__descriptor, (unsigned)kind);
    return field != NULL ? field->name : "no value";
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

int rpc_row_reject(struct rpc_row_error *e, enum grpc_code code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    e->code = code;
    return -1;
}

/* Strings travel as protobuf `string`: UTF-8, or no client could read them back. */
static bool _strings_valid(const Fsd__V1__Value *v) {
    if (v == NULL) {
        return true;
    }
    if (v->kind_case == FSD__V1__VALUE__KIND_STRING_VALUE) {
        return store_utf8_valid(v->string_value.data, v->string_value.len);
    }
    if (v->kind_case == FSD__V1__VALUE__KIND_STRING_LIST) {
        for (size_t i = 0; i < v->string_list->n_values; i++) {
            if (!store_utf8_valid(v->string_list->values[i].data, v->string_list->values[i].len)) {
                return false;
            }
        }
    }
    return true;
}

int rpc_row_check(const struct store_schema *schema, const Fsd__V1__Row *row, size_t r,
                  struct arena *a, int64_t now_us, struct store_key *key, struct rpc_row_error *e) {
    /* 0 is what a client sends when it forgot the field; far-future rows would shadow every
     * real update until then. */
    if (row->event_timestamp_us <= 0) {
        return rpc_row_reject(
            e, GRPC_INVALID_ARGUMENT,
            "row %zu: event_timestamp_us must be set (microseconds since the Unix "
            "epoch), got %lld",
            r, (long long)row->event_timestamp_us);
    }
    if (row->event_timestamp_us > now_us + RPC_PUSH_MAX_FUTURE_US) {
        return rpc_row_reject(e, GRPC_INVALID_ARGUMENT,
                              "row %zu: event_timestamp_us %lld is more than an hour in the future",
                              r, (long long)row->event_timestamp_us);
    }
    struct store_key_part parts[STORE_MAX_JOIN_KEYS];
    for (uint32_t k = 0; k < schema->nkeys; k++) {
        parts[k].type = (enum store_key_type) - 1; /* not given yet */
    }
    for (size_t i = 0; i < row->n_keys; i++) {
        const Fsd__V1__KeyPart *part = row->keys[i];
        uint32_t k = 0;
        while (k < schema->nkeys && strcmp(schema->keys[k].name, part->name) != 0) {
            k++;
        }
        if (k == schema->nkeys) {
            return rpc_row_reject(e, GRPC_INVALID_ARGUMENT,
                                  "row %zu: \"%s\" is not a join key of view %s", r, part->name,
                                  schema->view);
        }
        if (parts[k].type != (enum store_key_type) - 1) {
            return rpc_row_reject(e, GRPC_INVALID_ARGUMENT, "row %zu: join key %s given twice", r,
                                  part->name);
        }
        if (part->value_case == FSD__V1__KEY_PART__VALUE_INT64_VALUE) {
            parts[k].type = STORE_KEY_INT64;
            parts[k].i64 = part->int64_value;
        } else if (part->value_case == FSD__V1__KEY_PART__VALUE_STRING_VALUE) {
            parts[k].type = STORE_KEY_STRING;
            parts[k].str = (const char *)part->string_value.data;
            parts[k].str_len = (uint32_t)part->string_value.len;
            if (!store_utf8_valid(part->string_value.data, part->string_value.len)) {
                return rpc_row_reject(e, GRPC_INVALID_ARGUMENT,
                                      "row %zu: join key %s is not valid UTF-8", r, part->name);
            }
        } else {
            return rpc_row_reject(e, GRPC_INVALID_ARGUMENT, "row %zu: join key %s has no value", r,
                                  part->name);
        }
    }
    for (uint32_t k = 0; k < schema->nkeys; k++) {
        if (parts[k].type == (enum store_key_type) - 1) {
            return rpc_row_reject(e, GRPC_INVALID_ARGUMENT,
                                  "row %zu: join key %s of view %s is missing", r,
                                  schema->keys[k].name, schema->view);
        }
    }
    char err[256];
    uint8_t encoded[STORE_MAX_KEY_BYTES];
    int len = store_key_encode(schema, parts, encoded, sizeof encoded, err, sizeof err);
    if (len < 0) {
        return rpc_row_reject(e, GRPC_INVALID_ARGUMENT, "row %zu: %s", r, err);
    }
    uint8_t *key_buf = arena_alloc(a, (size_t)len + 1);
    if (key_buf == NULL) {
        return rpc_row_reject(e, GRPC_RESOURCE_EXHAUSTED, "row %zu: out of memory", r);
    }
    memcpy(key_buf, encoded, (size_t)len);
    *key = (struct store_key){key_buf, (uint32_t)len, store_key_hash(key_buf, (uint32_t)len)};
    /* A name maps to one index, so a feature given twice is an index seen twice. */
    uint64_t seen[STORE_MAX_FEATURES / 64];
    memset(seen, 0, ((schema->nfeatures + 63) / 64) * sizeof(seen[0]));
    int f = -1;
    for (size_t i = 0; i < row->n_values; i++) {
        const Fsd__V1__FeatureValue *fv = row->values[i];
        f = _feature_index(schema, fv->name, f + 1);
        if (f < 0) {
            return rpc_row_reject(e, GRPC_INVALID_ARGUMENT,
                                  "row %zu: view %s has no feature \"%s\"", r, schema->view,
                                  fv->name);
        }
        if (seen[f / 64] & (1ull << (f % 64))) {
            return rpc_row_reject(e, GRPC_INVALID_ARGUMENT, "row %zu: feature %s given twice", r,
                                  fv->name);
        }
        seen[f / 64] |= 1ull << (f % 64);
        enum store_type type = schema->features[f].type;
        Fsd__V1__Value__KindCase kind =
            fv->value != NULL ? fv->value->kind_case : FSD__V1__VALUE__KIND__NOT_SET;
        if (kind != FSD__V1__VALUE__KIND__NOT_SET && kind != kind_of_type[type]) {
            return rpc_row_reject(e, GRPC_INVALID_ARGUMENT, "row %zu: feature %s is %s, got %s", r,
                                  fv->name, store_type_name(type), _kind_name(kind));
        }
        if (!_strings_valid(fv->value)) {
            return rpc_row_reject(e, GRPC_INVALID_ARGUMENT,
                                  "row %zu: feature %s is not valid UTF-8", r, fv->name);
        }
    }
    return 0;
}

/* Sets one checked value in the builder. Returns -1 only when out of memory. */
static int _set_value(struct store_row_builder *b, struct arena *a, uint32_t f,
                      const Fsd__V1__Value *v) {
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
        return store_row_set_float_list(b, f, v->float_list->values,
                                        (uint32_t)v->float_list->n_values);
    case FSD__V1__VALUE__KIND_INT64_LIST:
        return store_row_set_int64_list(b, f, v->int64_list->values,
                                        (uint32_t)v->int64_list->n_values);
    case FSD__V1__VALUE__KIND_STRING_LIST: {
        size_t n = v->string_list->n_values;
        uint32_t *lens = arena_alloc(a, (n + 1) * sizeof(*lens));
        const char **strs = arena_alloc(a, (n + 1) * sizeof(*strs));
        if (lens == NULL || strs == NULL) {
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            strs[i] = (const char *)v->string_list->values[i].data;
            lens[i] = (uint32_t)v->string_list->values[i].len;
        }
        return store_row_set_string_list(b, f, strs, lens, (uint32_t)n);
    }
    default:
        return -1;
    }
}

int rpc_row_build(struct store_row_builder *b, struct arena *a, const Fsd__V1__Row *row) {
    store_row_builder_reset(b, row->event_timestamp_us, row->created_timestamp_us);
    int f = -1;
    for (size_t i = 0; i < row->n_values; i++) {
        const Fsd__V1__FeatureValue *fv = row->values[i];
        f = _feature_index(b->schema, fv->name, f + 1);
        Fsd__V1__Value null_value = FSD__V1__VALUE__INIT;
        if (_set_value(b, a, (uint32_t)f, fv->value != NULL ? fv->value : &null_value) != 0) {
            return -1;
        }
    }
    return 0;
}
