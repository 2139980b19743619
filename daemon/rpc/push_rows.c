/*
 * PushRows: upsert-if-newer a batch of rows into a view's live table.
 *
 * All or nothing on validation: every row is checked against the view's schema first, and one
 * bad row rejects the batch with a message naming the row and the field, so a producer never
 * has to work out which half of its batch landed. Valid batches are applied row by row through
 * store_view_upsert (so a snapshot load in progress keeps them); each row is visible to
 * lookups before the reply is sent.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fsd/v1/feature_service.pb-c.h"
#include "grpc/grpc.h"
#include "rpc_internal.h"
#include "store/catalog.h"
#include "store/key.h"
#include "store/rcu.h"
#include "store/row.h"
#include "store/table.h"

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

#define RPC_PUSH_MAX_FUTURE_US (3600LL * 1000000) /* allowed clock skew of a producer */

struct push_error {
    enum grpc_code code;
    char message[512];
};

static int _reject(struct push_error *e, enum grpc_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int _reject(struct push_error *e, enum grpc_code code, const char *fmt, ...) {
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
        return rpc_utf8_valid(v->string_value.data, v->string_value.len);
    }
    if (v->kind_case == FSD__V1__VALUE__KIND_STRING_LIST) {
        for (size_t i = 0; i < v->string_list->n_values; i++) {
            if (!rpc_utf8_valid(v->string_list->values[i].data, v->string_list->values[i].len)) {
                return false;
            }
        }
    }
    return true;
}

/* Checks row `r` against the schema and encodes its key into the arena. */
static int _check_row(const struct store_schema *schema, const Fsd__V1__Row *row, size_t r,
                      struct arena *a, int64_t now_us, struct store_key *key,
                      struct push_error *e) {
    /* 0 is what a client sends when it forgot the field; far-future rows would shadow every
     * real update until then. */
    if (row->event_timestamp_us <= 0) {
        return _reject(e, GRPC_INVALID_ARGUMENT,
                       "row %zu: event_timestamp_us must be set (microseconds since the Unix "
                       "epoch), got %lld",
                       r, (long long)row->event_timestamp_us);
    }
    if (row->event_timestamp_us > now_us + RPC_PUSH_MAX_FUTURE_US) {
        return _reject(e, GRPC_INVALID_ARGUMENT,
                       "row %zu: event_timestamp_us %lld is more than an hour in the future", r,
                       (long long)row->event_timestamp_us);
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
            return _reject(e, GRPC_INVALID_ARGUMENT, "row %zu: \"%s\" is not a join key of view %s",
                           r, part->name, schema->view);
        }
        if (parts[k].type != (enum store_key_type) - 1) {
            return _reject(e, GRPC_INVALID_ARGUMENT, "row %zu: join key %s given twice", r,
                           part->name);
        }
        if (part->value_case == FSD__V1__KEY_PART__VALUE_INT64_VALUE) {
            parts[k].type = STORE_KEY_INT64;
            parts[k].i64 = part->int64_value;
        } else if (part->value_case == FSD__V1__KEY_PART__VALUE_STRING_VALUE) {
            parts[k].type = STORE_KEY_STRING;
            parts[k].str = (const char *)part->string_value.data;
            parts[k].str_len = (uint32_t)part->string_value.len;
            if (!rpc_utf8_valid(part->string_value.data, part->string_value.len)) {
                return _reject(e, GRPC_INVALID_ARGUMENT, "row %zu: join key %s is not valid UTF-8",
                               r, part->name);
            }
        } else {
            return _reject(e, GRPC_INVALID_ARGUMENT, "row %zu: join key %s has no value", r,
                           part->name);
        }
    }
    for (uint32_t k = 0; k < schema->nkeys; k++) {
        if (parts[k].type == (enum store_key_type) - 1) {
            return _reject(e, GRPC_INVALID_ARGUMENT, "row %zu: join key %s of view %s is missing",
                           r, schema->keys[k].name, schema->view);
        }
    }
    char err[256];
    uint8_t encoded[STORE_MAX_KEY_BYTES];
    int len = store_key_encode(schema, parts, encoded, sizeof encoded, err, sizeof err);
    if (len < 0) {
        return _reject(e, GRPC_INVALID_ARGUMENT, "row %zu: %s", r, err);
    }
    uint8_t *key_buf = arena_alloc(a, (size_t)len + 1);
    if (key_buf == NULL) {
        return _reject(e, GRPC_RESOURCE_EXHAUSTED, "row %zu: out of memory", r);
    }
    memcpy(key_buf, encoded, (size_t)len);
    *key = (struct store_key){key_buf, (uint32_t)len, store_key_hash(key_buf, (uint32_t)len)};
    for (size_t i = 0; i < row->n_values; i++) {
        const Fsd__V1__FeatureValue *fv = row->values[i];
        int f = store_schema_feature_index(schema, fv->name);
        if (f < 0) {
            return _reject(e, GRPC_INVALID_ARGUMENT, "row %zu: view %s has no feature \"%s\"", r,
                           schema->view, fv->name);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(row->values[j]->name, fv->name) == 0) {
                return _reject(e, GRPC_INVALID_ARGUMENT, "row %zu: feature %s given twice", r,
                               fv->name);
            }
        }
        enum store_type type = schema->features[f].type;
        Fsd__V1__Value__KindCase kind =
            fv->value != NULL ? fv->value->kind_case : FSD__V1__VALUE__KIND__NOT_SET;
        if (kind != FSD__V1__VALUE__KIND__NOT_SET && kind != kind_of_type[type]) {
            return _reject(e, GRPC_INVALID_ARGUMENT, "row %zu: feature %s is %s, got %s", r,
                           fv->name, store_type_name(type), _kind_name(kind));
        }
        if (!_strings_valid(fv->value)) {
            return _reject(e, GRPC_INVALID_ARGUMENT, "row %zu: feature %s is not valid UTF-8", r,
                           fv->name);
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

static void _write_response(struct pbw *w, const uint64_t counts[4]) {
    pbw_reset(w);
    for (uint32_t field = 1; field <= 4; field++) {
        if (counts[field - 1] > 0) {
            pbw_uint_field(w, field, counts[field - 1]);
        }
    }
}

void rpc_push_rows(struct grpc_call *call, const uint8_t *msg, size_t len) {
    struct rpc_worker *wk = grpc_call_worker_context(call);
    if (wk == NULL) {
        grpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "worker has no memory for requests");
        return;
    }
    struct arena *a = &wk->arena;
    struct push_error e = {GRPC_OK, ""};
    uint64_t counts[4] = {0}; /* inserted, replaced, not_newer, deleted */
    Fsd__V1__PushRowsRequest *req = fsd__v1__push_rows_request__unpack(&a->protobuf, len, msg);
    if (req == NULL) {
        grpc_call_fail(call, GRPC_INVALID_ARGUMENT,
                       "malformed PushRowsRequest: not a valid protobuf message");
        arena_reset(a);
        return;
    }
    int64_t now_us = rpc_wall_clock_us();
    store_read_lock();
    struct store_view *view = store_catalog_find(rpc_state.catalog, req->view);
    struct store_key *keys = arena_alloc(a, (req->n_rows + 1) * sizeof(*keys));
    struct store_row_builder b;
    bool have_builder = false;
    if (view == NULL) {
        _reject(&e, GRPC_INVALID_ARGUMENT, "unknown view \"%s\"", req->view);
    } else if (keys == NULL) {
        _reject(&e, GRPC_RESOURCE_EXHAUSTED, "out of memory for %zu rows", req->n_rows);
    } else {
        const struct store_schema *schema = store_view_schema(view);
        for (size_t r = 0; r < req->n_rows && e.code == GRPC_OK; r++) {
            _check_row(schema, req->rows[r], r, a, now_us, &keys[r], &e);
        }
        if (e.code == GRPC_OK && store_row_builder_init(&b, schema) != 0) {
            _reject(&e, GRPC_RESOURCE_EXHAUSTED, "out of memory building rows");
        }
        have_builder = e.code == GRPC_OK;
    }
    for (size_t r = 0; e.code == GRPC_OK && r < req->n_rows; r++) {
        const Fsd__V1__Row *row = req->rows[r];
        enum store_upsert_result result;
        if (row->delete_) {
            result = store_view_delete(view, &keys[r], row->event_timestamp_us,
                                       row->created_timestamp_us);
        } else {
            store_row_builder_reset(&b, row->event_timestamp_us, row->created_timestamp_us);
            for (size_t i = 0; i < row->n_values && e.code == GRPC_OK; i++) {
                const Fsd__V1__FeatureValue *fv = row->values[i];
                uint32_t f = (uint32_t)store_schema_feature_index(b.schema, fv->name);
                Fsd__V1__Value null_value = FSD__V1__VALUE__INIT;
                if (_set_value(&b, a, f, fv->value != NULL ? fv->value : &null_value) != 0) {
                    _reject(&e, GRPC_RESOURCE_EXHAUSTED, "row %zu: out of memory", r);
                }
            }
            result = e.code == GRPC_OK ? store_view_upsert(view, &keys[r], &b) : STORE_UPSERT_ERROR;
        }
        if (result == STORE_UPSERT_ERROR) {
            if (e.code == GRPC_OK) {
                _reject(&e, GRPC_RESOURCE_EXHAUSTED,
                        "row %zu: could not be stored (out of memory); rows before it were "
                        "applied",
                        r);
            }
        } else if (result == STORE_UPSERT_NOT_NEWER) {
            counts[2]++;
        } else if (row->delete_) {
            counts[3]++;
        } else {
            counts[result == STORE_UPSERT_INSERTED ? 0 : 1]++;
        }
    }
    store_read_unlock();
    if (have_builder) {
        store_row_builder_deinit(&b);
    }
    if (e.code == GRPC_OK) {
        _write_response(&wk->out, counts);
        grpc_call_reply(call, wk->out.buf, wk->out.len);
    } else {
        grpc_call_fail(call, e.code, e.message);
    }
    rpc_observe_duration(wk, RPC_PUSH_ROWS, call);
    arena_reset(a);
}
