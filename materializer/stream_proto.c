/*
 * Protobuf stream entries: an fsd.v1.Row (the message PushRows takes) checked against a view's
 * schema and built into a row, with PushRows' rules and wording. daemon/rpc/row_check.c keeps
 * the same rules for PushRows and PushSnapshot; one copy should serve all three (see
 * stream_internal.h).
 */
#include "stream_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fsd/v1/feature_service.pb-c.h"
#include "store/row.h"

__attribute__((format(printf, 3, 4))) static int _bad(char *err, size_t err_len, const char *fmt,
                                                      ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    return MAT_STREAM_ENTRY_BAD;
}

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

int mat_stream_proto_row_check(const struct store_schema *schema, const Fsd__V1__Row *row,
                               int64_t now_us, struct mat_stream_entry *out, char *err,
                               size_t err_len) {
    int rc = mat_stream_check_event_ts(row->event_timestamp_us, now_us, "event_timestamp_us", err,
                                       err_len);
    if (rc != MAT_STREAM_ENTRY_OK) {
        return rc;
    }
    struct store_key_part parts[STORE_MAX_JOIN_KEYS];
    bool given[STORE_MAX_JOIN_KEYS] = {false};
    for (size_t i = 0; i < row->n_keys; i++) {
        const Fsd__V1__KeyPart *part = row->keys[i];
        uint32_t k = 0;
        while (k < schema->nkeys && strcmp(schema->keys[k].name, part->name) != 0) {
            k++;
        }
        if (k == schema->nkeys) {
            return _bad(err, err_len, "\"%.80s\" is not a join key of view %s", part->name,
                        schema->view);
        }
        if (given[k]) {
            return _bad(err, err_len, "join key %s given twice", part->name);
        }
        given[k] = true;
        if (part->value_case == FSD__V1__KEY_PART__VALUE_INT64_VALUE) {
            parts[k].type = STORE_KEY_INT64;
            parts[k].i64 = part->int64_value;
        } else if (part->value_case == FSD__V1__KEY_PART__VALUE_STRING_VALUE) {
            parts[k].type = STORE_KEY_STRING;
            parts[k].str = (const char *)part->string_value.data;
            parts[k].str_len = (uint32_t)part->string_value.len;
            if (!store_utf8_valid(part->string_value.data, part->string_value.len)) {
                return _bad(err, err_len, "join key %s is not valid UTF-8", part->name);
            }
        } else {
            return _bad(err, err_len, "join key %s has no value", part->name);
        }
    }
    for (uint32_t k = 0; k < schema->nkeys; k++) {
        if (!given[k]) {
            return _bad(err, err_len, "join key %s of view %s is missing", schema->keys[k].name,
                        schema->view);
        }
    }
    char why[256];
    int len = store_key_encode(schema, parts, out->key_buf, sizeof out->key_buf, why, sizeof why);
    if (len < 0) {
        return _bad(err, err_len, "%s", why);
    }
    out->key = (struct store_key){out->key_buf, (uint32_t)len,
                                  store_key_hash(out->key_buf, (uint32_t)len)};
    for (size_t i = 0; i < row->n_values; i++) {
        const Fsd__V1__FeatureValue *fv = row->values[i];
        int f = store_schema_feature_index(schema, fv->name);
        if (f < 0) {
            return _bad(err, err_len, "view %s has no feature \"%.80s\"", schema->view, fv->name);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(row->values[j]->name, fv->name) == 0) {
                return _bad(err, err_len, "feature %s given twice", fv->name);
            }
        }
        enum store_type type = schema->features[f].type;
        Fsd__V1__Value__KindCase kind =
            fv->value != NULL ? fv->value->kind_case : FSD__V1__VALUE__KIND__NOT_SET;
        if (kind != FSD__V1__VALUE__KIND__NOT_SET && kind != kind_of_type[type]) {
            return _bad(err, err_len, "feature %s is %s, got %s", fv->name, store_type_name(type),
                        _kind_name(kind));
        }
        if (!_strings_valid(fv->value)) {
            return _bad(err, err_len, "feature %s is not valid UTF-8", fv->name);
        }
    }
    out->is_delete = row->delete_;
    out->event_ts_us = row->event_timestamp_us;
    out->created_ts_us = row->created_timestamp_us;
    return MAT_STREAM_ENTRY_OK;
}

static int _set_value(struct mat_stream_parser *p, struct store_row_builder *b, uint32_t f,
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
        const char **strs;
        uint32_t *lens;
        if (mat_stream_parser_string_scratch(p, n, &strs, &lens) != 0) {
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

int mat_stream_proto_row_build(struct mat_stream_parser *p, const Fsd__V1__Row *row,
                               struct store_row_builder *b) {
    store_row_builder_reset(b, row->event_timestamp_us, row->created_timestamp_us);
    Fsd__V1__Value null_value = FSD__V1__VALUE__INIT;
    for (size_t i = 0; i < row->n_values; i++) {
        const Fsd__V1__FeatureValue *fv = row->values[i];
        uint32_t f = (uint32_t)store_schema_feature_index(b->schema, fv->name);
        if (_set_value(p, b, f, fv->value != NULL ? fv->value : &null_value) != 0) {
            return MAT_STREAM_ENTRY_OOM;
        }
    }
    return MAT_STREAM_ENTRY_OK;
}
