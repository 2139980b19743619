/*
 * Feast's feature server API (sdk/python/feast/feature_server.py) over HTTP/1.1 on fsd's gRPC
 * port, so Feast's Python client and its remote online store need only fsd's address:
 *
 *   POST /get-online-features      {"entities": {key: [values]}, "features": ["view:f"] or
 *                                   "feature_service": name, "full_feature_names": bool}
 *   POST /push                     {"push_source_name", "df": {column: [values]}, "to"}
 *   POST /write-to-online-store    {"feature_view_name", "df": {column: [values]}}
 *   POST /materialize              {"start_ts", "end_ts", "feature_views": [names] or null}
 *   POST /materialize-incremental  {"end_ts", "feature_views": [names] or null}
 *   GET  /health                   200 while serving, 503 while draining
 *
 * A lookup's body is read in place by common/json_reader (no tree of objects: 3.5x faster
 * than json-c on a batch of 100, loadtest/json_parse_bench.c); the other bodies are parsed
 * with json-c (Debian's libjson-c: cJSON was faster, but keeps every number as a double,
 * which would silently change int64 entity keys past 2^53; json-c keeps them exact and was
 * 1.3-1.9x faster than jansson). A lookup is decoded into the gRPC request
 * (feast.serving.GetOnlineFeaturesRequest) and served by the same plan and cell rules as
 * Feast's gRPC API (feast.h); only the writer differs. The response is Feast's: what
 * protobuf's MessageToDict makes of the gRPC response with Feast's Value patch (values as
 * plain JSON, statuses by name, event timestamps in RFC 3339), plus an "fsd" object Feast's
 * clients ignore (values not present by status, the oldest row's age). Bytes are base64.
 *
 * Errors are Feast's: the HTTP status Feast's server gives (404 for an unknown view or
 * feature service, 422 for a request it cannot take) and, as the body, a JSON string holding
 * Feast's error detail {"module": "feast.errors", "class": ..., "message": ...}, which Feast's
 * client decodes back into the exception.
 */
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "feast.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/json_reader.h"
#include "materializer/snapshot/snapshot.h"
#include "store/catalog.h"
#include "store/rcu.h"
#include "store/table.h"

/* Nesting a request body may have: Feast's have 3 levels; anything deeper is not Feast's. */
#define _JSON_MAX_DEPTH 16

/* ---- errors ------------------------------------------------------------------------------ */

void feast_http_fail(struct grpc_call *call, enum grpc_code code, const char *feast_class,
                     const char *message) {
    struct buf detail = {0}, body = {0};
    buf_puts(&detail, "{\"module\": \"feast.errors\", \"class\": ");
    json_cstring(&detail, feast_class != NULL ? feast_class : "FeastError");
    buf_puts(&detail, ", \"message\": ");
    json_cstring(&detail, message);
    buf_puts(&detail, "}");
    /* Feast's server returns to_error_detail(), itself a JSON text, as a JSON string. */
    json_string(&body, detail.data != NULL ? detail.data : "", detail.len);
    /* Feast's FeastObjectNotFoundException kinds are 404; its others keep the code's. */
    bool not_found =
        feast_class != NULL && (strcmp(feast_class, "FeatureViewNotFoundException") == 0 ||
                                strcmp(feast_class, "FeatureServiceNotFoundException") == 0);
    unsigned status = not_found ? 404 : grpc_http_status_of(code);
    if (detail.failed || body.failed) {
        grpc_call_http_reply(call, code, status, "application/json", "\"\"", 2);
    } else {
        grpc_call_http_reply(call, code, status, "application/json", body.data, body.len);
    }
    buf_free(&detail);
    buf_free(&body);
}

/* ---- the request ------------------------------------------------------------------------- */

/*
 * Parses a body that must be a JSON object. Returns it (the caller puts it), or NULL having
 * failed the call with 422 and where the JSON broke, as FastAPI's validation does.
 */
static json_object *_parse_body(struct grpc_call *call, const uint8_t *msg, size_t len,
                                const char *what) {
    struct json_tokener *tok = json_tokener_new_ex(_JSON_MAX_DEPTH);
    if (tok == NULL) {
        grpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "out of memory for the JSON parser");
        return NULL;
    }
    json_object *root = json_tokener_parse_ex(tok, (const char *)msg, (int)len);
    enum json_tokener_error err = json_tokener_get_error(tok);
    size_t at = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    char why[256];
    if (len == 0) {
        snprintf(why, sizeof why, "%s: the request has no body; it takes a JSON object", what);
    } else if (root == NULL || err != json_tokener_success) {
        snprintf(why, sizeof why, "%s: the body is not valid JSON: %s at byte %zu", what,
                 json_tokener_error_desc(err == json_tokener_success ? json_tokener_continue : err),
                 at);
    } else if (at < len && strspn((const char *)msg + at, " \t\r\n") != len - at) {
        snprintf(why, sizeof why, "%s: the body has bytes after its JSON value, at byte %zu", what,
                 at);
    } else if (!json_object_is_type(root, json_type_object)) {
        snprintf(why, sizeof why, "%s: the body is JSON but not an object", what);
    } else {
        return root;
    }
    json_object_put(root);
    feast_http_fail(call, GRPC_INVALID_ARGUMENT, NULL, why);
    return NULL;
}

/* An int64 from a JSON integer; false when it is not one or is out of int64's range. */
static bool _int64_of(json_object *v, int64_t *out) {
    if (!json_object_is_type(v, json_type_int)) {
        return false;
    }
    int64_t x = json_object_get_int64(v);
    if (x == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX) {
        return false; /* json-c keeps integers past int64 as uint64 */
    }
    *out = x;
    return true;
}

/* A string's text, NUL-terminated, in the arena; NULL when it is out of memory. */
static char *_text(struct arena *a, const struct json_span *span, size_t *len) {
    char *text = arena_alloc(a, span->raw_len + 1);
    if (text != NULL) {
        *len = json_span_text(span, text);
    }
    return text;
}

/* The elements of the array the reader is before (a copy: the caller's reader stays). */
static size_t _array_length(struct json_reader r) {
    size_t n = 0;
    json_reader_array_begin(&r);
    while (json_reader_element(&r, n) && json_reader_skip(&r)) {
        n++;
    }
    return n;
}

/* One JSON scalar as a Feast Value (what Feast's own JSON patch makes of it): integers that
 * fit int64 as int64_val, other numbers as double_val; null, lists and objects as no value,
 * whose kind the planner then names. */
static int _value_of(struct arena *a, struct json_reader *r, Feast__Types__Value *out) {
    feast__types__value__init(out);
    struct json_number number;
    struct json_span span;
    size_t len;
    switch (json_reader_peek(r)) {
    case JSON_KIND_NUMBER:
        json_reader_number(r, &number);
        if (number.is_integer) {
            out->val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
            out->int64_val = number.integer;
        } else {
            out->val_case = FEAST__TYPES__VALUE__VAL_DOUBLE_VAL;
            out->double_val = number.real;
        }
        return 0;
    case JSON_KIND_STRING:
        json_reader_string(r, &span);
        out->string_val.data = (uint8_t *)_text(a, &span, &len);
        if (out->string_val.data == NULL) {
            return -1;
        }
        out->val_case = FEAST__TYPES__VALUE__VAL_STRING_VAL;
        out->string_val.len = len;
        return 0;
    case JSON_KIND_BOOL: {
        bool b = false;
        json_reader_bool(r, &b);
        out->val_case = FEAST__TYPES__VALUE__VAL_BOOL_VAL;
        out->bool_val = b;
        return 0;
    }
    default:
        json_reader_skip(r);
        return 0;
    }
}

/* The members of Feast's lookup body fsd reads: each a reader before its value (the last of
 * a repeated key, as json-c and Python keep it), with whether the body has it. */
struct lookup_members {
    struct json_reader features, feature_service, entities, full_feature_names;
    bool has_features, has_feature_service, has_entities, has_full_feature_names;
};

/* The body must be one JSON object; checked whole before any of it is used, so a broken
 * document is refused as such whatever it holds before the break. */
static int _check_body(const uint8_t *msg, size_t len, const char *what, struct plan_error *e) {
    struct json_reader r;
    json_reader_init(&r, msg, len, _JSON_MAX_DEPTH);
    if (len == 0) {
        return plan_error(e, GRPC_INVALID_ARGUMENT,
                          "%s: the request has no body; it takes a JSON object", what);
    }
    bool object = json_reader_peek(&r) == JSON_KIND_OBJECT;
    if (!json_reader_skip(&r)) {
        return plan_error(e, GRPC_INVALID_ARGUMENT,
                          "%s: the body is not valid JSON: %s at byte %zu", what, r.error,
                          r.error_at);
    }
    if (!json_reader_at_end(&r)) {
        return plan_error(e, GRPC_INVALID_ARGUMENT,
                          "%s: the body has bytes after its JSON value, at byte %zu", what,
                          (size_t)(r.p - r.start));
    }
    if (!object) {
        return plan_error(e, GRPC_INVALID_ARGUMENT, "%s: the body is JSON but not an object", what);
    }
    return 0;
}

/*
 * Decodes Feast's JSON lookup request into the gRPC message (in the arena, strings
 * included). Returns 0, or -1 with `e` set. The body is read in place (json_reader.h): a
 * lookup builds no tree of JSON objects.
 */
static int _decode_lookup(struct arena *a, const uint8_t *msg, size_t len,
                          Feast__Serving__GetOnlineFeaturesRequest *req, struct plan_error *e) {
    feast__serving__get_online_features_request__init(req);
    if (_check_body(msg, len, "get-online-features", e) != 0) {
        return -1;
    }
    struct json_reader r;
    json_reader_init(&r, msg, len, _JSON_MAX_DEPTH);
    struct lookup_members m = {0};
    struct json_span key, span;
    json_reader_object_begin(&r);
    for (size_t i = 0; json_reader_member(&r, i, &key); i++) {
        if (json_span_is(&key, "features")) {
            m.features = r, m.has_features = true;
        } else if (json_span_is(&key, "feature_service")) {
            m.feature_service = r, m.has_feature_service = true;
        } else if (json_span_is(&key, "entities")) {
            m.entities = r, m.has_entities = true;
        } else if (json_span_is(&key, "full_feature_names")) {
            m.full_feature_names = r, m.has_full_feature_names = true;
        }
        json_reader_skip(&r);
    }
    if (!m.has_entities || json_reader_peek(&m.entities) != JSON_KIND_OBJECT) {
        return plan_error(e, GRPC_INVALID_ARGUMENT,
                          "\"entities\" is required: an object of join key -> list of values");
    }
    bool full = false;
    if (m.has_full_feature_names && !json_reader_bool(&m.full_feature_names, &full)) {
        return plan_error(e, GRPC_INVALID_ARGUMENT, "\"full_feature_names\" must be true or false");
    }
    req->full_feature_names = full;
    enum json_kind service =
        m.has_feature_service ? json_reader_peek(&m.feature_service) : JSON_KIND_NULL;
    enum json_kind features = m.has_features ? json_reader_peek(&m.features) : JSON_KIND_NULL;
    size_t text_len;
    /* As Feast's server: a feature service, when named, wins over a feature list. */
    if (service != JSON_KIND_NULL) {
        if (service != JSON_KIND_STRING) {
            return plan_error(e, GRPC_INVALID_ARGUMENT, "\"feature_service\" must be a string");
        }
        json_reader_string(&m.feature_service, &span);
        req->kind_case = FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURE_SERVICE;
        req->feature_service = _text(a, &span, &text_len);
        if (req->feature_service == NULL) {
            return plan_error(e, GRPC_RESOURCE_EXHAUSTED, "out of memory decoding the request");
        }
    } else if (features == JSON_KIND_ARRAY) {
        size_t n = _array_length(m.features);
        if (n > PLAN_MAX_REFS) {
            return plan_error(e, GRPC_INVALID_ARGUMENT, "%zu feature refs; at most %d are taken", n,
                              PLAN_MAX_REFS);
        }
        Feast__Serving__FeatureList *list = arena_alloc(a, sizeof(*list));
        char **refs = arena_alloc(a, (n + 1) * sizeof(*refs));
        if (list == NULL || refs == NULL) {
            return plan_error(e, GRPC_RESOURCE_EXHAUSTED, "out of memory decoding the request");
        }
        feast__serving__feature_list__init(list);
        json_reader_array_begin(&m.features);
        for (size_t i = 0; json_reader_element(&m.features, i); i++) {
            if (json_reader_peek(&m.features) != JSON_KIND_STRING) {
                return plan_error(e, GRPC_INVALID_ARGUMENT,
                                  "\"features\"[%zu] is not a string (\"view:feature\")", i);
            }
            json_reader_string(&m.features, &span);
            if ((refs[i] = _text(a, &span, &text_len)) == NULL) {
                return plan_error(e, GRPC_RESOURCE_EXHAUSTED, "out of memory decoding the request");
            }
        }
        list->n_val = n;
        list->val = refs;
        req->kind_case = FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURES;
        req->features = list;
    } else if (features != JSON_KIND_NULL) {
        return plan_error(e, GRPC_INVALID_ARGUMENT,
                          "\"features\" must be a list of \"view:feature\" strings");
    }
    /* One entry per join key; a key given twice keeps its first place and its last values. */
    Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry **entries =
        arena_alloc(a, (PLAN_MAX_KEY_COLUMNS + 1) * sizeof(*entries));
    if (entries == NULL) {
        return plan_error(e, GRPC_RESOURCE_EXHAUSTED, "out of memory decoding the request");
    }
    size_t k = 0;
    json_reader_object_begin(&m.entities);
    for (size_t i = 0; json_reader_member(&m.entities, i, &key); i++) {
        char *name = _text(a, &key, &text_len);
        if (name == NULL) {
            return plan_error(e, GRPC_RESOURCE_EXHAUSTED, "out of memory decoding the request");
        }
        size_t slot = 0;
        while (slot < k && strcmp(entries[slot]->key, name) != 0) {
            slot++;
        }
        if (slot == PLAN_MAX_KEY_COLUMNS) {
            return plan_error(e, GRPC_INVALID_ARGUMENT,
                              "more than %d entity columns; at most %d are taken",
                              PLAN_MAX_KEY_COLUMNS, PLAN_MAX_KEY_COLUMNS);
        }
        if (json_reader_peek(&m.entities) != JSON_KIND_ARRAY) {
            return plan_error(e, GRPC_INVALID_ARGUMENT,
                              "entities.%.64s must be a list of values, one per entity", name);
        }
        size_t n = _array_length(m.entities);
        if (n > rpc_state.options.max_batch) {
            return plan_error(e, GRPC_INVALID_ARGUMENT,
                              "batch of %zu entities exceeds the limit of %u (server.max_batch)", n,
                              rpc_state.options.max_batch);
        }
        Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry *entry =
            slot < k ? entries[slot] : arena_alloc(a, sizeof(*entry));
        Feast__Types__RepeatedValue *values = arena_alloc(a, sizeof(*values));
        Feast__Types__Value **val = arena_alloc(a, (n + 1) * sizeof(*val));
        Feast__Types__Value *cells = arena_alloc(a, (n + 1) * sizeof(*cells));
        if (entry == NULL || values == NULL || val == NULL || cells == NULL) {
            return plan_error(e, GRPC_RESOURCE_EXHAUSTED, "out of memory decoding the request");
        }
        feast__types__repeated_value__init(values);
        json_reader_array_begin(&m.entities);
        for (size_t j = 0; json_reader_element(&m.entities, j); j++) {
            if (_value_of(a, &m.entities, &cells[j]) != 0) {
                return plan_error(e, GRPC_RESOURCE_EXHAUSTED, "out of memory decoding the request");
            }
            val[j] = &cells[j];
        }
        values->n_val = n;
        values->val = val;
        if (slot == k) {
            feast__serving__get_online_features_request__entities_entry__init(entry);
            entry->key = name;
            entries[k++] = entry;
        }
        entry->value = values;
    }
    req->n_entities = k;
    req->entities = entries;
    return 0;
}

/* ---- the response ------------------------------------------------------------------------ */

/* Each status with the comma before it (the first of a list skips that byte). */
#define _STATUS(text)                                                                              \
    { ",\"" text "\"", sizeof(",\"" text "\"") - 1 }
static const struct {
    const char *text;
    size_t len;
} _status_names[] = {
    [STORE_PRESENT] = _STATUS("PRESENT"),
    [STORE_NOT_FOUND] = _STATUS("NOT_FOUND"),
    [STORE_NULL] = _STATUS("NULL_VALUE"),
    [STORE_OUTSIDE_MAX_AGE] = _STATUS("OUTSIDE_MAX_AGE"),
};
#undef _STATUS

/* Decimal digits of `x`, without printf (every int value of a response goes through here). */
static void _int(struct buf *b, int64_t x) {
    char text[24], *p = text + sizeof text;
    uint64_t u = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    if (x < 0) {
        *--p = '-';
    }
    buf_add(b, p, (size_t)(text + sizeof text - p));
}

/* `us` since the epoch as protobuf's JSON writes a Timestamp: RFC 3339, UTC, 0/3/6 digits. */
static void _timestamp(struct buf *b, int64_t us) {
    int64_t secs = us / 1000000, frac = us % 1000000;
    if (frac < 0) {
        secs -= 1;
        frac += 1000000;
    }
    int64_t days = secs / 86400, rem = secs % 86400;
    if (rem < 0) {
        days -= 1;
        rem += 86400;
    }
    /* Civil date from days since 1970-01-01 (proleptic Gregorian), by 400-year eras. */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t day = doy - (153 * mp + 2) / 5 + 1;
    int64_t month = mp < 10 ? mp + 3 : mp - 9;
    int64_t year = yoe + era * 400 + (month <= 2);
    char text[40];
    int n;
    if (year < 0 || year > 9999) {
        n = snprintf(text, sizeof text, "\"%04" PRId64 "-%02" PRId64 "-%02" PRId64 "T", year, month,
                     day);
    } else {
        text[0] = '"';
        text[1] = (char)('0' + year / 1000);
        text[2] = (char)('0' + year / 100 % 10);
        text[3] = (char)('0' + year / 10 % 10);
        text[4] = (char)('0' + year % 10);
        text[5] = '-';
        text[6] = (char)('0' + month / 10);
        text[7] = (char)('0' + month % 10);
        text[8] = '-';
        text[9] = (char)('0' + day / 10);
        text[10] = (char)('0' + day % 10);
        text[11] = 'T';
        n = 12;
    }
    int h = (int)(rem / 3600), m = (int)(rem / 60 % 60), s = (int)(rem % 60);
    char *p = text + n;
    *p++ = (char)('0' + h / 10);
    *p++ = (char)('0' + h % 10);
    *p++ = ':';
    *p++ = (char)('0' + m / 10);
    *p++ = (char)('0' + m % 10);
    *p++ = ':';
    *p++ = (char)('0' + s / 10);
    *p++ = (char)('0' + s % 10);
    if (frac != 0) {
        int digits = frac % 1000 == 0 ? 3 : 6;
        int64_t f = digits == 3 ? frac / 1000 : frac;
        *p++ = '.';
        for (int d = digits - 1; d >= 0; d--) {
            p[d] = (char)('0' + f % 10);
            f /= 10;
        }
        p += digits;
    }
    *p++ = 'Z';
    *p++ = '"';
    buf_add(b, text, (size_t)(p - text));
}

/* One value as Feast's JSON has it (null for none). */
static void _value(struct buf *b, enum store_type type, const struct store_value *v) {
    if (v == NULL) {
        buf_add(b, "null", 4);
        return;
    }
    switch (type) {
    case STORE_TYPE_INT32:
        _int(b, v->i32);
        return;
    case STORE_TYPE_INT64:
        _int(b, v->i64);
        return;
    case STORE_TYPE_TIMESTAMP: /* unix_timestamp_val: seconds */
        _int(b, v->ts_us / 1000000 - (v->ts_us % 1000000 < 0));
        return;
    case STORE_TYPE_FLOAT:
        json_real(b, v->f32, true, true);
        return;
    case STORE_TYPE_DOUBLE:
        json_real(b, v->f64, false, true);
        return;
    case STORE_TYPE_BOOL:
        buf_puts(b, v->b ? "true" : "false");
        return;
    case STORE_TYPE_STRING:
        json_string(b, v->var.data, v->var.bytes);
        return;
    case STORE_TYPE_BYTES:
        json_base64(b, v->var.data, v->var.bytes);
        return;
    default: { /* lists: each element as its scalar */
        buf_add(b, "[", 1);
        enum store_type element = store_type_element(type);
        bool packed = store_type_element_size(type) == 0;
        const char *item = (const char *)v->var.data + 4 * (size_t)v->var.count;
        for (uint32_t j = 0; j < v->var.count; j++) {
            if (j > 0) {
                buf_add(b, ",", 1);
            }
            struct store_value x;
            if (packed) { /* walked with a running offset: store_list_element is O(j) */
                x.type = element;
                memcpy(&x.var.bytes, (const uint8_t *)v->var.data + 4 * (size_t)j, 4);
                x.var.data = item;
                item += x.var.bytes;
            } else {
                x = store_list_element(v, j);
            }
            _value(b, element, &x);
        }
        buf_add(b, "]", 1);
        return;
    }
    }
}

/* A join key column, echoed: its values as the request gave them, PRESENT, empty times. */
static void _entity_vector(struct buf *b, const Feast__Types__RepeatedValue *values, size_t n) {
    buf_puts(b, "{\"values\":[");
    for (size_t i = 0; i < n; i++) {
        const Feast__Types__Value *v = values->val[i];
        if (i > 0) {
            buf_add(b, ",", 1);
        }
        if (v->val_case == FEAST__TYPES__VALUE__VAL_STRING_VAL) {
            json_string(b, (const char *)v->string_val.data, v->string_val.len);
        } else {
            _int(b, v->int64_val);
        }
    }
    buf_puts(b, "],\"statuses\":[");
    for (size_t i = 0; i < n; i++) {
        buf_puts(b, i > 0 ? ",\"PRESENT\"" : "\"PRESENT\"");
    }
    buf_puts(b, "],\"event_timestamps\":[");
    for (size_t i = 0; i < n; i++) {
        buf_puts(b, i > 0 ? ",\"1970-01-01T00:00:00Z\"" : "\"1970-01-01T00:00:00Z\"");
    }
    buf_puts(b, "]}");
}

int feast_json_write(struct rpc_worker *wk, const struct plan *p,
                     const Feast__Serving__GetOnlineFeaturesRequest *req, int64_t now_us,
                     struct feast_extras *x) {
    struct buf *b = &wk->json;
    size_t n = p->n;
    struct rpc_view_counters *vc[p->nviews + 1];
    size_t order[PLAN_MAX_KEY_COLUMNS], nkeys;
    uint8_t *status = feast_prepare(wk, p, now_us, x, vc, order, &nkeys);
    if (status == NULL) {
        return -1;
    }
    /* Every column of a view has the same event times: their text is written once. */
    struct text_range {
        size_t offset, len;
    } view_stamps[p->nviews + 1];
    memset(view_stamps, 0, sizeof view_stamps);
    buf_reset(b);
    buf_puts(b, "{\"metadata\":{\"feature_names\":[");
    for (size_t o = 0; o < nkeys; o++) {
        if (o > 0) {
            buf_add(b, ",", 1);
        }
        json_cstring(b, p->keys[order[o]].name);
    }
    for (uint32_t c = 0; c < p->ncolumns; c++) {
        const struct plan_view *vp = &p->views[p->columns[c].view];
        if (nkeys + c > 0) {
            buf_add(b, ",", 1);
        }
        buf_add(b, "\"", 1);
        if (req->full_feature_names) {
            buf_puts(b, vp->schema->view); /* config names: [A-Za-z0-9_], nothing to escape */
            buf_add(b, "__", 2);
        }
        buf_puts(b, vp->schema->features[p->columns[c].feature].name);
        buf_add(b, "\"", 1);
    }
    buf_puts(b, "]},\"results\":[");
    for (size_t o = 0; o < nkeys; o++) {
        if (o > 0) {
            buf_add(b, ",", 1);
        }
        _entity_vector(b, req->entities[order[o]]->value, n);
    }
    for (uint32_t c = 0; c < p->ncolumns; c++) {
        const struct plan_view *vp = &p->views[p->columns[c].view];
        enum store_type type = vp->schema->features[p->columns[c].feature].type;
        buf_puts(b, nkeys + c > 0 ? ",{\"values\":[" : "{\"values\":[");
        for (size_t i = 0; i < n; i++) {
            struct store_value value;
            bool send;
            status[i] = (uint8_t)feast_cell(p, c, i, now_us, vc, x, &value, &send);
            if (i > 0) {
                buf_add(b, ",", 1);
            }
            _value(b, type, send ? &value : NULL);
        }
        buf_puts(b, "],\"statuses\":[");
        for (size_t i = 0; i < n; i++) {
            size_t skip = i == 0 ? 1 : 0;
            buf_add(b, _status_names[status[i]].text + skip, _status_names[status[i]].len - skip);
        }
        buf_puts(b, "],\"event_timestamps\":[");
        struct text_range *stamps = &view_stamps[p->columns[c].view];
        if (stamps->len > 0) { /* the view's rows, written for an earlier column */
            buf_repeat(b, stamps->offset, stamps->len);
        } else {
            stamps->offset = b->len;
            for (size_t i = 0; i < n; i++) {
                if (i > 0) {
                    buf_add(b, ",", 1);
                }
                _timestamp(b, vp->rows[i] != NULL ? vp->rows[i]->event_ts_us : 0);
            }
            stamps->len = b->len - stamps->offset;
        }
        buf_puts(b, "]}");
    }
    buf_puts(b, "],\"fsd\":{\"values_not_present\":{\"not_found\":");
    _int(b, (int64_t)x->missing[STORE_NOT_FOUND]);
    buf_puts(b, ", \"null_value\":");
    _int(b, (int64_t)x->missing[STORE_NULL]);
    buf_puts(b, ", \"outside_max_age\":");
    _int(b, (int64_t)x->missing[STORE_OUTSIDE_MAX_AGE]);
    buf_puts(b, "},\"oldest_row_ms\":");
    _int(b, x->oldest_ms);
    buf_puts(b, "}}");
    return b->failed ? -1 : 0;
}

/* ---- the handlers ------------------------------------------------------------------------ */

void rpc_http_get_online_features(struct grpc_call *call, const uint8_t *msg, size_t len) {
    struct rpc_worker *wk = grpc_call_worker_context(call);
    if (wk == NULL) {
        grpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "worker has no memory for requests");
        return;
    }
    Feast__Serving__GetOnlineFeaturesRequest req;
    struct plan_error e = {GRPC_OK, "", NULL};
    if (_decode_lookup(&wk->arena, msg, len, &req, &e) == 0) {
        feast_serve(call, wk, &req, FEAST_FORMAT_JSON, RPC_HTTP_GET_ONLINE_FEATURES);
    } else {
        feast_http_fail(call, e.code, e.feast_class, e.message);
        rpc_observe_duration(wk, RPC_HTTP_GET_ONLINE_FEATURES, call);
    }
    arena_reset(&wk->arena);
}

void rpc_http_health(struct grpc_call *call, const uint8_t *msg, size_t len) {
    (void)msg, (void)len;
    bool serving = atomic_load_explicit(&rpc_state.serving, memory_order_relaxed);
    /* Feast's /health has an empty body; its status is the answer. */
    grpc_call_http_reply(call, serving ? GRPC_OK : GRPC_UNAVAILABLE, serving ? 200 : 503,
                         "application/json", "", 0);
}

/*
 * /materialize and /materialize-incremental: a load of each named view (every view with a
 * source when feature_views is null or absent), queued as LoadSnapshot queues it. fsd keeps
 * the latest row per entity of the whole source, so the time range is checked for presence
 * only. Answered once queued: {"queued": [...]}; the loads' results are in ListViews and
 * /status. 409 when a view's load is already running or queued, with the views queued
 * before it named.
 */
static void _materialize(struct grpc_call *call, const uint8_t *msg, size_t len, bool incremental,
                         enum rpc_method_id method) {
    struct rpc_worker *wk = grpc_call_worker_context(call);
    if (wk == NULL) {
        grpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "worker has no memory for requests");
        return;
    }
    const char *what = incremental ? "materialize-incremental" : "materialize";
    json_object *root = _parse_body(call, msg, len, what);
    if (root == NULL) {
        rpc_observe_duration(wk, method, call);
        return;
    }
    json_object *start = NULL, *end = NULL, *views = NULL;
    json_object_object_get_ex(root, "start_ts", &start);
    json_object_object_get_ex(root, "end_ts", &end);
    json_object_object_get_ex(root, "feature_views", &views);
    char why[700];
    why[0] = '\0';
    if (end == NULL || !json_object_is_type(end, json_type_string) ||
        (!incremental && (start == NULL || !json_object_is_type(start, json_type_string)))) {
        snprintf(why, sizeof why, "%s: %s required (strings, as Feast's server takes them)", what,
                 incremental ? "\"end_ts\" is" : "\"start_ts\" and \"end_ts\" are");
    } else if (views != NULL && !json_object_is_type(views, json_type_null) &&
               !json_object_is_type(views, json_type_array)) {
        snprintf(why, sizeof why, "%s: \"feature_views\" must be a list of names or null", what);
    }
    if (why[0] != '\0') {
        feast_http_fail(call, GRPC_INVALID_ARGUMENT, NULL, why);
        rpc_observe_duration(wk, method, call);
        json_object_put(root);
        return;
    }
    store_read_lock();
    const struct fsd_config *config = atomic_load_explicit(&rpc_state.config, memory_order_acquire);
    bool all = views == NULL || json_object_is_type(views, json_type_null);
    size_t n = all ? config->nviews : json_object_array_length(views);
    const char *feast_class = NULL;
    enum grpc_code code = GRPC_OK;
    /* Every name is checked before any load is queued: a typo queues nothing. */
    for (size_t i = 0; !all && i < n && code == GRPC_OK; i++) {
        json_object *v = json_object_array_get_idx(views, i);
        const char *name =
            json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
        const struct config_view *cv = name != NULL ? config_find_view(config, name) : NULL;
        if (name == NULL) {
            code = GRPC_INVALID_ARGUMENT;
            snprintf(why, sizeof why, "\"feature_views\"[%zu] is not a string", i);
        } else if (cv == NULL) {
            code = GRPC_NOT_FOUND;
            feast_class = "FeatureViewNotFoundException";
            snprintf(why, sizeof why, "Feature view %.200s does not exist", name);
        } else if (cv->snapshot.source.type == MAT_SOURCE_NONE) {
            code = GRPC_FAILED_PRECONDITION;
            snprintf(why, sizeof why,
                     "view %.200s has no source to materialize from: its rows come from pushes",
                     name);
        }
    }
    struct buf queued = {0};
    buf_puts(&queued, "{\"queued\": [");
    size_t nqueued = 0;
    for (size_t i = 0; i < n && code == GRPC_OK; i++) {
        const char *name = all ? config->views[i].schema->view
                               : json_object_get_string(json_object_array_get_idx(views, i));
        if (all && config->views[i].snapshot.source.type == MAT_SOURCE_NONE) {
            continue;
        }
        struct mat_view_status st;
        bool joined = false;
        enum mat_refusal refusal = MAT_REFUSED_NOT_RUNNING;
        char err[512];
        struct mat_ticket *ticket = NULL;
        if (mat_view_status(name, &st) && st.loading) {
            code = GRPC_ABORTED;
            snprintf(why, sizeof why, "a load of view %.200s is running; retry once it is done",
                     name);
        } else if ((ticket = mat_request_load(name, NULL, NULL, &joined, &refusal, err,
                                              sizeof err)) == NULL ||
                   joined) {
            code = refusal == MAT_REFUSED_NO_MEMORY ? GRPC_RESOURCE_EXHAUSTED : GRPC_ABORTED;
            snprintf(why, sizeof why, "view %.200s: %.400s", name,
                     joined ? "a load is already queued" : err);
        } else {
            buf_puts(&queued, nqueued++ > 0 ? ", " : "");
            json_cstring(&queued, name);
        }
        mat_ticket_release(ticket);
    }
    store_read_unlock();
    buf_puts(&queued, "]}");
    if (code != GRPC_OK) {
        if (nqueued > 0) {
            size_t at = strlen(why);
            snprintf(why + at, sizeof why - at, " (queued before it: %.*s)", (int)(queued.len - 15),
                     queued.data + 12);
        }
        feast_http_fail(call, code, feast_class, why);
    } else if (queued.failed) {
        grpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "out of memory for the response");
    } else {
        grpc_call_http_reply(call, GRPC_OK, 200, "application/json", queued.data, queued.len);
    }
    buf_free(&queued);
    json_object_put(root);
    rpc_observe_duration(wk, method, call);
}

void rpc_http_materialize(struct grpc_call *call, const uint8_t *msg, size_t len) {
    _materialize(call, msg, len, false, RPC_HTTP_MATERIALIZE);
}

void rpc_http_materialize_incremental(struct grpc_call *call, const uint8_t *msg, size_t len) {
    _materialize(call, msg, len, true, RPC_HTTP_MATERIALIZE_INCREMENTAL);
}

/* ---- writes: /push and /write-to-online-store -------------------------------------------- */

/* Views one push source may feed: a bound on the work one request does. */
#define _PUSH_MAX_VIEWS 64
/* The columns of a Feast dataframe fsd reads times from: Feast's push sources' default
 * timestamp field, and the created column Feast's remote online store sends. */
#define _DF_EVENT_COLUMN   "event_timestamp"
#define _DF_CREATED_COLUMN "created"

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t _days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool _digits_at(const char *s, size_t n, int64_t *out) {
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        x = x * 10 + (s[i] - '0');
    }
    *out = x;
    return true;
}

/*
 * A time as Feast's clients send it, in microseconds: ISO 8601 / RFC 3339 text
 * ("2026-12-03T10:00:00", "... 10:00:00.123456+01:00", "...Z"; without a zone it is UTC,
 * as Feast takes it), or a number of seconds since the epoch. False when it is neither.
 */
static bool _time_of(json_object *v, int64_t *us) {
    if (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)) {
        double secs = json_object_get_double(v);
        if (!(secs > -9.2e12 && secs < 9.2e12)) {
            return false;
        }
        *us = (int64_t)(secs * 1e6 + (secs < 0 ? -0.5 : 0.5));
        return true;
    }
    if (!json_object_is_type(v, json_type_string)) {
        return false;
    }
    const char *t = json_object_get_string(v);
    size_t len = (size_t)json_object_get_string_len(v);
    int64_t y, mo, d, h = 0, mi = 0, sec = 0, frac = 0;
    if (len < 10 || !_digits_at(t, 4, &y) || t[4] != '-' || !_digits_at(t + 5, 2, &mo) ||
        t[7] != '-' || !_digits_at(t + 8, 2, &d) || mo < 1 || mo > 12 || d < 1 || d > 31) {
        return false;
    }
    size_t i = 10;
    if (i < len && (t[i] == 'T' || t[i] == ' ')) {
        if (len < i + 9 || !_digits_at(t + i + 1, 2, &h) || t[i + 3] != ':' ||
            !_digits_at(t + i + 4, 2, &mi) || t[i + 6] != ':' || !_digits_at(t + i + 7, 2, &sec) ||
            h > 23 || mi > 59 || sec > 60) {
            return false;
        }
        i += 9;
        if (i < len && t[i] == '.') {
            int digits = 0;
            for (i++; i < len && t[i] >= '0' && t[i] <= '9'; i++, digits++) {
                if (digits < 6) {
                    frac = frac * 10 + (t[i] - '0');
                }
            }
            if (digits == 0) {
                return false;
            }
            for (; digits < 6; digits++) {
                frac *= 10;
            }
        }
    }
    int64_t offset_min = 0;
    if (i < len && (t[i] == 'Z' || t[i] == 'z')) {
        i++;
    } else if (i < len && (t[i] == '+' || t[i] == '-')) {
        int64_t oh, om;
        if (len < i + 6 || !_digits_at(t + i + 1, 2, &oh) || t[i + 3] != ':' ||
            !_digits_at(t + i + 4, 2, &om)) {
            return false;
        }
        offset_min = (t[i] == '-' ? -1 : 1) * (oh * 60 + om);
        i += 6;
    }
    if (i != len) {
        return false;
    }
    int64_t secs = _days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    *us = secs * 1000000 + frac;
    return true;
}

static bool _list_value_of(struct arena *a, json_object *v, enum store_type type,
                           Fsd__V1__Value *out);

/* A Feast dataframe column's value as an fsd Value of the feature's type; false when it is
 * not one (a JSON null is handled by the caller: the feature is left null). */
static bool _feature_value(struct arena *a, json_object *v, enum store_type type,
                           Fsd__V1__Value *out) {
    fsd__v1__value__init(out);
    int64_t i;
    switch (type) {
    case STORE_TYPE_INT32:
        if (!_int64_of(v, &i) || i < INT32_MIN || i > INT32_MAX) {
            return false;
        }
        out->kind_case = FSD__V1__VALUE__KIND_INT32_VALUE;
        out->int32_value = (int32_t)i;
        return true;
    case STORE_TYPE_INT64:
        if (!_int64_of(v, &i)) {
            return false;
        }
        out->kind_case = FSD__V1__VALUE__KIND_INT64_VALUE;
        out->int64_value = i;
        return true;
    case STORE_TYPE_FLOAT:
    case STORE_TYPE_DOUBLE:
        if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)) {
            return false;
        }
        if (type == STORE_TYPE_FLOAT) {
            out->kind_case = FSD__V1__VALUE__KIND_FLOAT_VALUE;
            out->float_value = (float)json_object_get_double(v);
        } else {
            out->kind_case = FSD__V1__VALUE__KIND_DOUBLE_VALUE;
            out->double_value = json_object_get_double(v);
        }
        return true;
    case STORE_TYPE_BOOL:
        if (!json_object_is_type(v, json_type_boolean)) {
            return false;
        }
        out->kind_case = FSD__V1__VALUE__KIND_BOOL_VALUE;
        out->bool_value = json_object_get_boolean(v);
        return true;
    case STORE_TYPE_STRING:
        if (!json_object_is_type(v, json_type_string)) {
            return false;
        }
        out->kind_case = FSD__V1__VALUE__KIND_STRING_VALUE;
        out->string_value.data = (uint8_t *)json_object_get_string(v);
        out->string_value.len = (size_t)json_object_get_string_len(v);
        return true;
    case STORE_TYPE_BYTES: { /* base64, as fsd writes bytes in JSON */
        if (!json_object_is_type(v, json_type_string)) {
            return false;
        }
        const char *text = json_object_get_string(v);
        size_t n = (size_t)json_object_get_string_len(v);
        uint8_t *bytes = arena_alloc(a, n / 4 * 3 + 3);
        size_t len;
        if (bytes == NULL || !json_base64_decode(text, n, bytes, &len)) {
            return false;
        }
        out->kind_case = FSD__V1__VALUE__KIND_BYTES_VALUE;
        out->bytes_value.data = bytes;
        out->bytes_value.len = len;
        return true;
    }
    case STORE_TYPE_TIMESTAMP:
        out->kind_case = FSD__V1__VALUE__KIND_TIMESTAMP_US;
        return _time_of(v, &out->timestamp_us);
    default:
        return _list_value_of(a, v, type, out);
    }
}

/* A JSON array as a list Value: each element as _feature_value reads the element type. */
static bool _list_value_of(struct arena *a, json_object *v, enum store_type type,
                           Fsd__V1__Value *out) {
    if (!json_object_is_type(v, json_type_array)) {
        return false;
    }
    size_t n = json_object_array_length(v);
    enum store_type element = store_type_element(type);
    /* room for n of the widest element, ProtobufCBinaryData */
    void *xs = arena_alloc(a, (n + 1) * sizeof(ProtobufCBinaryData));
    /* every list message is {base, n_values, values}: one allocation fits any of them */
    _Static_assert(sizeof(Fsd__V1__StringList) == sizeof(Fsd__V1__Int32List) &&
                       sizeof(Fsd__V1__StringList) == sizeof(Fsd__V1__BoolList),
                   "list messages differ in size");
    Fsd__V1__StringList *list = arena_alloc(a, sizeof(Fsd__V1__StringList));
    if (xs == NULL || list == NULL) {
        return false;
    }
    for (size_t j = 0; j < n; j++) {
        Fsd__V1__Value x;
        if (!_feature_value(a, json_object_array_get_idx(v, j), element, &x)) {
            return false;
        }
        switch (element) {
        case STORE_TYPE_INT32:
            ((int32_t *)xs)[j] = x.int32_value;
            break;
        case STORE_TYPE_INT64:
            ((int64_t *)xs)[j] = x.int64_value;
            break;
        case STORE_TYPE_TIMESTAMP:
            ((int64_t *)xs)[j] = x.timestamp_us;
            break;
        case STORE_TYPE_FLOAT:
            ((float *)xs)[j] = x.float_value;
            break;
        case STORE_TYPE_DOUBLE:
            ((double *)xs)[j] = x.double_value;
            break;
        case STORE_TYPE_BOOL:
            ((protobuf_c_boolean *)xs)[j] = x.bool_value;
            break;
        case STORE_TYPE_STRING:
            ((ProtobufCBinaryData *)xs)[j] = x.string_value;
            break;
        default: /* bytes */
            ((ProtobufCBinaryData *)xs)[j] = x.bytes_value;
            break;
        }
    }
    switch (type) {
    case STORE_TYPE_FLOAT_LIST:
        fsd__v1__float_list__init((Fsd__V1__FloatList *)list);
        out->float_list = (Fsd__V1__FloatList *)list;
        out->float_list->n_values = n;
        out->float_list->values = xs;
        out->kind_case = FSD__V1__VALUE__KIND_FLOAT_LIST;
        return true;
    case STORE_TYPE_INT64_LIST:
        fsd__v1__int64_list__init((Fsd__V1__Int64List *)list);
        out->int64_list = (Fsd__V1__Int64List *)list;
        out->int64_list->n_values = n;
        out->int64_list->values = xs;
        out->kind_case = FSD__V1__VALUE__KIND_INT64_LIST;
        return true;
    case STORE_TYPE_STRING_LIST:
        fsd__v1__string_list__init(list);
        out->string_list = list;
        out->string_list->n_values = n;
        out->string_list->values = xs;
        out->kind_case = FSD__V1__VALUE__KIND_STRING_LIST;
        return true;
    case STORE_TYPE_INT32_LIST:
        fsd__v1__int32_list__init((Fsd__V1__Int32List *)list);
        out->int32_list = (Fsd__V1__Int32List *)list;
        out->int32_list->n_values = n;
        out->int32_list->values = xs;
        out->kind_case = FSD__V1__VALUE__KIND_INT32_LIST;
        return true;
    case STORE_TYPE_DOUBLE_LIST:
        fsd__v1__double_list__init((Fsd__V1__DoubleList *)list);
        out->double_list = (Fsd__V1__DoubleList *)list;
        out->double_list->n_values = n;
        out->double_list->values = xs;
        out->kind_case = FSD__V1__VALUE__KIND_DOUBLE_LIST;
        return true;
    case STORE_TYPE_BOOL_LIST:
        fsd__v1__bool_list__init((Fsd__V1__BoolList *)list);
        out->bool_list = (Fsd__V1__BoolList *)list;
        out->bool_list->n_values = n;
        out->bool_list->values = xs;
        out->kind_case = FSD__V1__VALUE__KIND_BOOL_LIST;
        return true;
    case STORE_TYPE_BYTES_LIST:
        fsd__v1__bytes_list__init((Fsd__V1__BytesList *)list);
        out->bytes_list = (Fsd__V1__BytesList *)list;
        out->bytes_list->n_values = n;
        out->bytes_list->values = xs;
        out->kind_case = FSD__V1__VALUE__KIND_BYTES_LIST;
        return true;
    case STORE_TYPE_TIMESTAMP_LIST:
        fsd__v1__timestamp_list__init((Fsd__V1__TimestampList *)list);
        out->timestamp_list = (Fsd__V1__TimestampList *)list;
        out->timestamp_list->n_values = n;
        out->timestamp_list->values = xs;
        out->kind_case = FSD__V1__VALUE__KIND_TIMESTAMP_LIST;
        return true;
    default:
        return false;
    }
}

/* The dataframe's column `name`, or NULL. */
static json_object *_column(json_object *df, const char *name) {
    json_object *col = NULL;
    return json_object_object_get_ex(df, name, &col) ? col : NULL;
}

/*
 * The rows of Feast dataframe `df` (columns of equal length) for view `view`, as a PushRows
 * request in the arena: every join key a column; the features that are columns (a JSON null,
 * or a feature without a column, is null); the event time from event_timestamp (or the
 * view's source's event_timestamp_column), created from "created" (or the source's created
 * column) when present. Columns the view does not have are ignored, as Feast does. Returns 0,
 * or -1 with `why` set.
 */
static int _df_rows(struct arena *a, json_object *df, const struct store_schema *schema,
                    const struct config_view *cv, Fsd__V1__PushRowsRequest *req, char *why,
                    size_t why_len) {
    fsd__v1__push_rows_request__init(req);
    req->view = schema->view;
    const char *event_name = cv->snapshot.source.event_timestamp_column != NULL &&
                                     _column(df, cv->snapshot.source.event_timestamp_column) != NULL
                                 ? cv->snapshot.source.event_timestamp_column
                                 : _DF_EVENT_COLUMN;
    const char *created_name = cv->snapshot.source.created_timestamp_column != NULL
                                   ? cv->snapshot.source.created_timestamp_column
                                   : _DF_CREATED_COLUMN;
    json_object *event = _column(df, event_name), *created = _column(df, created_name);
    size_t n = SIZE_MAX;
    json_object_object_foreach(df, name, col) {
        if (!json_object_is_type(col, json_type_array)) {
            snprintf(why, why_len, "df.%.64s must be a list (one value per row)", name);
            return -1;
        }
        size_t len = json_object_array_length(col);
        if (n != SIZE_MAX && len != n) {
            snprintf(why, why_len,
                     "df's columns differ in length: df.%.64s has %zu rows, others %zu", name, len,
                     n);
            return -1;
        }
        n = len;
    }
    if (event == NULL) {
        snprintf(why, why_len, "df has no %s column: each row needs its event time", event_name);
        return -1;
    }
    json_object *keys[STORE_MAX_JOIN_KEYS];
    for (uint32_t k = 0; k < schema->nkeys; k++) {
        if ((keys[k] = _column(df, schema->keys[k].name)) == NULL) {
            snprintf(why, why_len, "df has no column for join key %.64s of view %.64s",
                     schema->keys[k].name, schema->view);
            return -1;
        }
    }
    json_object **features = arena_alloc(a, (schema->nfeatures + 1) * sizeof(*features));
    Fsd__V1__Row **rows = arena_alloc(a, (n + 1) * sizeof(*rows));
    if (features == NULL || rows == NULL) {
        snprintf(why, why_len, "out of memory for %zu rows", n);
        return -1;
    }
    uint32_t nf = 0;
    for (uint32_t f = 0; f < schema->nfeatures; f++) {
        features[f] = _column(df, schema->features[f].name);
        nf += features[f] != NULL;
    }
    for (size_t r = 0; r < n; r++) {
        Fsd__V1__Row *row = arena_alloc(a, sizeof(*row));
        Fsd__V1__KeyPart *parts = arena_alloc(a, (schema->nkeys + 1) * sizeof(*parts));
        Fsd__V1__KeyPart **part_ptrs = arena_alloc(a, (schema->nkeys + 1) * sizeof(*part_ptrs));
        Fsd__V1__FeatureValue *fvs = arena_alloc(a, (nf + 1) * sizeof(*fvs));
        Fsd__V1__FeatureValue **fv_ptrs = arena_alloc(a, (nf + 1) * sizeof(*fv_ptrs));
        Fsd__V1__Value *values = arena_alloc(a, (nf + 1) * sizeof(*values));
        if (row == NULL || parts == NULL || part_ptrs == NULL || fvs == NULL || fv_ptrs == NULL ||
            values == NULL) {
            snprintf(why, why_len, "out of memory for %zu rows", n);
            return -1;
        }
        fsd__v1__row__init(row);
        for (uint32_t k = 0; k < schema->nkeys; k++) {
            json_object *v = json_object_array_get_idx(keys[k], r);
            fsd__v1__key_part__init(&parts[k]);
            parts[k].name = schema->keys[k].name;
            int64_t i;
            if (schema->keys[k].type == STORE_KEY_INT64 && _int64_of(v, &i)) {
                parts[k].value_case = FSD__V1__KEY_PART__VALUE_INT64_VALUE;
                parts[k].int64_value = i;
            } else if (schema->keys[k].type == STORE_KEY_STRING &&
                       json_object_is_type(v, json_type_string)) {
                parts[k].value_case = FSD__V1__KEY_PART__VALUE_STRING_VALUE;
                parts[k].string_value.data = (uint8_t *)json_object_get_string(v);
                parts[k].string_value.len = (size_t)json_object_get_string_len(v);
            } else {
                snprintf(why, why_len, "row %zu: join key %.64s is not %s", r, schema->keys[k].name,
                         schema->keys[k].type == STORE_KEY_INT64 ? "an int64" : "a string");
                return -1;
            }
            part_ptrs[k] = &parts[k];
        }
        if (!_time_of(json_object_array_get_idx(event, r), &row->event_timestamp_us)) {
            snprintf(why, why_len,
                     "row %zu: %s is not a time (ISO 8601 text, or seconds since the epoch)", r,
                     event_name);
            return -1;
        }
        json_object *c = created != NULL ? json_object_array_get_idx(created, r) : NULL;
        if (c != NULL && !json_object_is_type(c, json_type_null) &&
            !_time_of(c, &row->created_timestamp_us)) {
            snprintf(why, why_len, "row %zu: %s is not a time", r, created_name);
            return -1;
        }
        size_t nv = 0;
        for (uint32_t f = 0; f < schema->nfeatures; f++) {
            json_object *v = features[f] != NULL ? json_object_array_get_idx(features[f], r) : NULL;
            if (v == NULL || json_object_is_type(v, json_type_null)) {
                continue; /* null */
            }
            if (!_feature_value(a, v, schema->features[f].type, &values[nv])) {
                snprintf(why, why_len, "row %zu: %.64s is not a %s value", r,
                         schema->features[f].name, store_type_name(schema->features[f].type));
                return -1;
            }
            fsd__v1__feature_value__init(&fvs[nv]);
            fvs[nv].name = schema->features[f].name;
            fvs[nv].value = &values[nv];
            fv_ptrs[nv] = &fvs[nv];
            nv++;
        }
        row->n_keys = schema->nkeys;
        row->keys = part_ptrs;
        row->n_values = nv;
        row->values = fv_ptrs;
        rows[r] = row;
    }
    req->n_rows = n == SIZE_MAX ? 0 : n;
    req->rows = rows;
    return 0;
}

/* A write on its way: the body (its strings back the rows), the views still to write, what
 * the written ones counted. Freed by whoever answers the call. */
struct http_push {
    json_object *root;
    json_object *df;
    enum rpc_method_id method;
    char views[_PUSH_MAX_VIEWS][CONFIG_MAX_NAME + 1];
    size_t nviews;
    size_t next;
    struct buf counts; /* {"view": {"inserted": ...}, ...} so far */
    struct rpc_push_reply reply;
};

static void _push_free(struct http_push *p) {
    json_object_put(p->root);
    buf_free(&p->counts);
    free(p);
}

static void _push_next(struct grpc_call *call, struct rpc_worker *wk, struct http_push *p);

static void _push_done(struct grpc_call *call, struct rpc_worker *wk, const uint64_t counts[4],
                       void *arg) {
    struct http_push *p = arg;
    if (call == NULL) {
        _push_free(p);
        return;
    }
    buf_puts(&p->counts, p->next > 1 ? ", " : "");
    json_cstring(&p->counts, p->views[p->next - 1]);
    buf_printf(&p->counts, ": {\"inserted\": %llu, \"replaced\": %llu, \"not_newer\": %llu}",
               (unsigned long long)counts[0], (unsigned long long)counts[1],
               (unsigned long long)counts[2]);
    _push_next(call, wk, p);
}

static void _push_fail(struct grpc_call *call, enum grpc_code code, const char *message,
                       void *arg) {
    struct http_push *p = arg;
    if (call != NULL) {
        char why[700];
        snprintf(why, sizeof why, "view %s: %s%s", p->views[p->next - 1], message,
                 p->next > 1 ? " (the views before it were written)" : "");
        feast_http_fail(call, code, NULL, why);
        rpc_observe_duration(grpc_call_worker_context(call), p->method, call);
    }
    _push_free(p);
}

/* Writes the next view, or answers once every view is written. */
static void _push_next(struct grpc_call *call, struct rpc_worker *wk, struct http_push *p) {
    if (p->next == p->nviews) {
        buf_puts(&p->counts, "}}");
        if (p->counts.failed) {
            grpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "out of memory for the response");
        } else {
            grpc_call_http_reply(call, GRPC_OK, 200, "application/json", p->counts.data,
                                 p->counts.len);
        }
        rpc_observe_duration(wk, p->method, call);
        _push_free(p);
        return;
    }
    const char *name = p->views[p->next++];
    Fsd__V1__PushRowsRequest req;
    char why[512];
    int rc = -1;
    store_read_lock();
    const struct fsd_config *config = atomic_load_explicit(&rpc_state.config, memory_order_acquire);
    const struct config_view *cv = config_find_view(config, name);
    struct store_view *view = store_catalog_find(rpc_state.catalog, name);
    if (cv == NULL || view == NULL) {
        snprintf(why, sizeof why, "the view is gone (a reload removed it)");
    } else {
        rc = _df_rows(&wk->arena, p->df, store_view_schema(view), cv, &req, why, sizeof why);
    }
    store_read_unlock();
    if (rc != 0) {
        _push_fail(call, GRPC_INVALID_ARGUMENT, why, p);
        return;
    }
    rpc_push_apply(call, wk, &req, p->method, &p->reply); /* answers through _push_done/fail */
}

/* /push and /write-to-online-store: the body checked, the views found, the first written. */
static void _write(struct grpc_call *call, const uint8_t *msg, size_t len, bool push) {
    enum rpc_method_id method = push ? RPC_HTTP_PUSH : RPC_HTTP_WRITE_TO_ONLINE_STORE;
    struct rpc_worker *wk = grpc_call_worker_context(call);
    if (wk == NULL) {
        grpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "worker has no memory for requests");
        return;
    }
    const char *what = push ? "push" : "write-to-online-store";
    json_object *root = _parse_body(call, msg, len, what);
    struct http_push *p = root != NULL ? calloc(1, sizeof(*p)) : NULL;
    if (p == NULL) {
        if (root != NULL) {
            grpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "out of memory for the push");
            json_object_put(root);
        }
        rpc_observe_duration(wk, method, call);
        return;
    }
    p->root = root;
    p->method = method;
    p->reply = (struct rpc_push_reply){_push_done, _push_fail, p};
    json_object *name = NULL, *to = NULL;
    json_object_object_get_ex(root, push ? "push_source_name" : "feature_view_name", &name);
    json_object_object_get_ex(root, "to", &to);
    json_object_object_get_ex(root, "df", &p->df);
    char why[512] = "";
    const char *feast_class = NULL;
    enum grpc_code code = GRPC_INVALID_ARGUMENT;
    const char *to_text = to != NULL ? json_object_get_string(to) : "online";
    if (name == NULL || !json_object_is_type(name, json_type_string)) {
        snprintf(why, sizeof why, "%s: \"%s\" is required (a string)", what,
                 push ? "push_source_name" : "feature_view_name");
    } else if (p->df == NULL || !json_object_is_type(p->df, json_type_object)) {
        snprintf(why, sizeof why, "%s: \"df\" is required: an object of column -> list of values",
                 what);
    } else if (push && (to == NULL ? false : !json_object_is_type(to, json_type_string))) {
        snprintf(why, sizeof why, "push: \"to\" must be a string");
    } else if (push && strcmp(to_text, "online") != 0) {
        snprintf(why, sizeof why,
                 "push: to=\"%.32s\" is not served: fsd is an online store only (to: online); "
                 "write the offline store with your batch engine",
                 to_text);
    }
    if (why[0] == '\0') {
        store_read_lock();
        const struct fsd_config *config =
            atomic_load_explicit(&rpc_state.config, memory_order_acquire);
        const char *wanted = json_object_get_string(name);
        for (size_t v = 0; v < config->nviews; v++) {
            const struct config_view *cv = &config->views[v];
            bool match =
                push ? strcmp(cv->push_source, wanted) == 0 : strcmp(cv->schema->view, wanted) == 0;
            if (match && p->nviews < _PUSH_MAX_VIEWS) {
                snprintf(p->views[p->nviews++], sizeof p->views[0], "%s", cv->schema->view);
            }
        }
        store_read_unlock();
        if (p->nviews == 0 && push) {
            code = GRPC_INVALID_ARGUMENT; /* Feast answers 422 */
            feast_class = "PushSourceNotFoundException";
            snprintf(why, sizeof why, "Unable to find push source '%.128s'.", wanted);
        } else if (p->nviews == 0) {
            code = GRPC_NOT_FOUND;
            feast_class = "FeatureViewNotFoundException";
            snprintf(why, sizeof why, "Feature view %.128s does not exist", wanted);
        }
    }
    if (why[0] != '\0') {
        feast_http_fail(call, code, feast_class, why);
        rpc_observe_duration(wk, method, call);
        _push_free(p);
        return;
    }
    buf_puts(&p->counts, "{\"views\": {");
    _push_next(call, wk, p); /* p belongs to the push now */
    arena_reset(&wk->arena);
}

void rpc_http_push(struct grpc_call *call, const uint8_t *msg, size_t len) {
    _write(call, msg, len, true);
}

void rpc_http_write_to_online_store(struct grpc_call *call, const uint8_t *msg, size_t len) {
    _write(call, msg, len, false);
}
