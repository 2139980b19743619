/*
 * Feast's online serving API (feast.serving.ServingService) on fsd's gRPC port, so a Feast
 * client needs only fsd's address: GetOnlineFeatures and GetFeastServingInfo.
 *
 *   request: features.val ("view:feature") or feature_service, entities (join key -> values)
 *      ──decode (arena)──> key columns + refs ──plan (plan.h)──> lookups, one batch per view
 *   response: metadata.feature_names = the join keys (in the views' order), then one name per
 * feature
 *             ("feature", or "view__feature" with full_feature_names); results = one
 *             FeatureVector per name: values, statuses, event_timestamps per entity
 *
 * Statuses and values follow Feast's servers: PRESENT with the value; NOT_FOUND and
 * NULL_VALUE with a null Value (no field set) and, for NOT_FOUND, an empty timestamp;
 * OUTSIDE_MAX_AGE with the stored value, as Feast's Go server sends it. With feast.defaults:
 * fsd the three carry the feature's fsd default instead, the status still saying why.
 * Join key vectors echo the request's values, PRESENT, with empty timestamps. fsd's extras
 * go in trailing metadata, which Feast's clients ignore: fsd-values-not-present (counts by
 * status) and fsd-oldest-row-ms (the age of the oldest row served, -1 for none).
 */
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "feast.h"
#include "fields.h"
#include "rpc_internal.h"
#include "store/catalog.h"
#include "store/rcu.h"
#include "store/table.h"
#include "common/clock.h"

#ifndef FSD_VERSION
#define FSD_VERSION "unknown"
#endif

static const char *const _defaults_names[] = {"none", "fsd", NULL};

static const struct option_def _feast_defs[] = {
    {
        .name = "defaults",
        .type = OPTION_ENUM,
        .default_text = "none",
        .choices = _defaults_names,
        OPTION_ENUM_AT(struct rpc_feast_options, defaults),
        .description = "What Feast's GetOnlineFeatures sends for a value that is not found, "
                       "null or older than its view's ttl: none (a Value with nothing set, as "
                       "Feast's servers do; an expired value is sent as stored, as Feast's Go "
                       "server does) or fsd (the feature's default from the config). The "
                       "status says why either way.",
    },
};

const struct option_group rpc_feast_option_group = {
    .section = "feast",
    .defs = _feast_defs,
    .ndefs = sizeof _feast_defs / sizeof _feast_defs[0],
};

/* ---- the request --------------------------------------------------------------------------- */

static const char *_value_kind(Feast__Types__Value__ValCase c) {
    switch (c) {
    case FEAST__TYPES__VALUE__VAL__NOT_SET:
        return "value with nothing set (or of a kind fsd does not know)";
    case FEAST__TYPES__VALUE__VAL_BYTES_VAL:
        return "bytes_val";
    case FEAST__TYPES__VALUE__VAL_DOUBLE_VAL:
        return "double_val";
    case FEAST__TYPES__VALUE__VAL_FLOAT_VAL:
        return "float_val";
    case FEAST__TYPES__VALUE__VAL_BOOL_VAL:
        return "bool_val";
    case FEAST__TYPES__VALUE__VAL_UNIX_TIMESTAMP_VAL:
        return "unix_timestamp_val";
    case FEAST__TYPES__VALUE__VAL_NULL_VAL:
        return "null_val";
    default:
        return "list";
    }
}

/*
 * The request's entities as the plan takes key columns: int64_val, int32_val (widened) or
 * string_val, one kind per column.
 */
static int _key_columns(struct arena *a, const Feast__Serving__GetOnlineFeaturesRequest *req,
                        struct plan_key_column **out, struct plan_error *e) {
    struct plan_key_column *cols = arena_alloc(a, (req->n_entities + 1) * sizeof(*cols));
    if (cols == NULL) {
        return plan_error(e, GRPC_RESOURCE_EXHAUSTED, "out of memory planning the request");
    }
    for (size_t k = 0; k < req->n_entities; k++) {
        const Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry *entry = req->entities[k];
        const Feast__Types__RepeatedValue *values = entry->value;
        size_t n = values != NULL ? values->n_val : 0;
        cols[k] = (struct plan_key_column){.name = entry->key ? entry->key : "", .n = n};
        if (n == 0) {
            continue;
        }
        bool strings = values->val[0]->val_case == FEAST__TYPES__VALUE__VAL_STRING_VAL;
        int64_t *i64 = strings ? NULL : arena_alloc(a, n * sizeof(*i64));
        ProtobufCBinaryData *str = strings ? arena_alloc(a, n * sizeof(*str)) : NULL;
        if (i64 == NULL && str == NULL) {
            return plan_error(e, GRPC_RESOURCE_EXHAUSTED, "out of memory planning the request");
        }
        for (size_t i = 0; i < n; i++) {
            const Feast__Types__Value *v = values->val[i];
            if (strings && v->val_case == FEAST__TYPES__VALUE__VAL_STRING_VAL) {
                str[i] = v->string_val;
            } else if (!strings && v->val_case == FEAST__TYPES__VALUE__VAL_INT64_VAL) {
                i64[i] = v->int64_val;
            } else if (!strings && v->val_case == FEAST__TYPES__VALUE__VAL_INT32_VAL) {
                i64[i] = v->int32_val;
            } else {
                return plan_error(
                    e, GRPC_INVALID_ARGUMENT,
                    "entity %s: value %zu is a %s; join keys take int64_val, int32_val or "
                    "string_val, one kind per entity",
                    cols[k].name, i, _value_kind(v->val_case));
            }
        }
        cols[k].i64 = i64;
        cols[k].str = str;
    }
    *out = cols;
    return 0;
}

/* The name Feast gives a column, written into the response: "feature", or "view__feature"
 * with full_feature_names. */
static void _write_column_name(struct pbw *w, const struct plan *p, uint32_t c, bool full) {
    const struct plan_view *vp = &p->views[p->columns[c].view];
    const char *feature = vp->schema->features[p->columns[c].feature].name;
    size_t flen = strlen(feature), vlen = full ? strlen(vp->schema->view) : 0;
    size_t len = full ? vlen + 2 + flen : flen;
    pbw_tag(w, FEAST_FEATURE_LIST_VAL, PBW_LEN);
    pbw_varint(w, len);
    uint8_t *dst = pbw_reserve(w, len);
    if (dst == NULL) {
        return;
    }
    if (full) {
        memcpy(dst, vp->schema->view, vlen);
        memcpy(dst + vlen, "__", 2);
    }
    memcpy(dst + (full ? vlen + 2 : 0), feature, flen);
    pbw_commit(w, len);
}

/*
 * Feast refuses names that collide (FeatureNameCollisionError): the same feature name from
 * two views, or, with full names, the same ref twice. Its message, so clients match on it.
 */
static int _check_collisions(const Feast__Serving__GetOnlineFeaturesRequest *req,
                             const struct plan *p, struct plan_error *e) {
    bool full = req->full_feature_names;
    char a[2 * CONFIG_MAX_NAME + 3];
    const char *fix = full ? "To resolve this collision, please ensure that the feature views or "
                             "their own features have different names."
                           : "To resolve this collision, either use the full feature name by "
                             "setting 'full_feature_names=True', or ensure that the features in "
                             "question have different names.";
    if (req->kind_case == FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURES) {
        const Feast__Serving__FeatureList *refs = req->features;
        for (size_t i = 0; full && i < refs->n_val; i++) {
            for (size_t j = 0; j < i; j++) {
                if (strcmp(refs->val[i], refs->val[j]) == 0) {
                    const char *colon = strchr(refs->val[i], ':');
                    snprintf(a, sizeof a, "%.*s__%s", (int)(colon - refs->val[i]), refs->val[i],
                             colon + 1);
                    plan_error(e, GRPC_INVALID_ARGUMENT, "Duplicate features named %s found.\n%s",
                               a, fix);
                    return plan_error_feast(e, "FeatureNameCollisionError");
                }
            }
        }
    }
    /* Two columns of one view never share a name (the plan serves a feature once): only
     * columns of different views can collide. */
    for (uint32_t c = 0; !full && p->nviews > 1 && c < p->ncolumns; c++) {
        const struct plan_column *cc = &p->columns[c];
        const char *name = p->views[cc->view].schema->features[cc->feature].name;
        for (uint32_t d = 0; d < c; d++) {
            const struct plan_column *dc = &p->columns[d];
            if (dc->view != cc->view &&
                strcmp(name, p->views[dc->view].schema->features[dc->feature].name) == 0) {
                plan_error(e, GRPC_INVALID_ARGUMENT, "Duplicate features named %s found.\n%s", name,
                           fix);
                return plan_error_feast(e, "FeatureNameCollisionError");
            }
        }
    }
    return 0;
}

/* Every entity must be a join key of a requested view: Feast refuses others. */
static int _check_entities(const struct plan *p, struct plan_error *e) {
    for (size_t k = 0; k < p->nkeys; k++) {
        bool used = false;
        for (uint32_t v = 0; v < p->nviews && !used; v++) {
            const struct store_schema *schema = p->views[v].schema;
            for (uint32_t j = 0; j < schema->nkeys && !used; j++) {
                used = strcmp(schema->keys[j].name, p->keys[k].name) == 0;
            }
        }
        if (!used) {
            return plan_error(e, GRPC_INVALID_ARGUMENT,
                              "Invalid entity join key. key=%s (no requested feature view has "
                              "it)",
                              p->keys[k].name);
        }
    }
    return 0;
}

static int _plan(struct rpc_worker *wk, const Feast__Serving__GetOnlineFeaturesRequest *req,
                 const struct fsd_config *config, struct plan *p, struct plan_error *e) {
    if (req->n_request_context > 0) {
        return plan_error(e, GRPC_INVALID_ARGUMENT,
                          "request_context is for on-demand feature views, which fsd does not "
                          "serve");
    }
    if (req->kind_case == FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURE_SERVICE) {
        if (plan_add_service(&wk->arena, p, config, req->feature_service, e) != 0) {
            return -1;
        }
    } else if (req->kind_case == FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURES) {
        const Feast__Serving__FeatureList *refs = req->features;
        if (refs->n_val > PLAN_MAX_REFS) {
            return plan_error(e, GRPC_INVALID_ARGUMENT, "%zu feature refs; at most %d are taken",
                              refs->n_val, PLAN_MAX_REFS);
        }
        for (size_t i = 0; i < refs->n_val; i++) {
            if (plan_add_ref(&wk->arena, p, refs->val[i], e) != 0) {
                return -1;
            }
        }
    }
    if (p->ncolumns == 0) {
        return plan_error(e, GRPC_INVALID_ARGUMENT,
                          "no features requested: set features.val (view:feature refs) or "
                          "feature_service");
    }
    struct plan_key_column *keys = NULL;
    if (_key_columns(&wk->arena, req, &keys, e) != 0 ||
        plan_set_keys(p, keys, req->n_entities, rpc_state.options.max_batch, e) != 0 ||
        _check_entities(p, e) != 0 || _check_collisions(req, p, e) != 0) {
        return -1;
    }
    return plan_check_ready(p, config, e);
}

/* ---- the response -------------------------------------------------------------------------- */

/*
 * One google.protobuf.Timestamp in a vector's event_timestamps, `us` since the epoch (0: an
 * empty one). Written in one go: its length is known before its body (at most 18 bytes), so
 * no nested-length bookkeeping per value.
 */
static void _timestamp(struct pbw *w, int64_t us) {
    int64_t seconds = us / 1000000, micros = us % 1000000;
    if (micros < 0) { /* Timestamp's nanos are never negative */
        seconds -= 1;
        micros += 1000000;
    }
    uint8_t *p = pbw_reserve(w, 2 + 11 + 6);
    if (p == NULL) {
        return;
    }
    size_t n = 2;
    if (seconds != 0) {
        p[n++] = FEAST_TIMESTAMP_SECONDS << 3 | PBW_VARINT;
        n += pbw_put_varint(p + n, (uint64_t)seconds);
    }
    if (micros != 0) {
        p[n++] = FEAST_TIMESTAMP_NANOS << 3 | PBW_VARINT;
        n += pbw_put_varint(p + n, (uint64_t)(micros * 1000));
    }
    p[0] = FEAST_VECTOR_EVENT_TIMESTAMPS << 3 | PBW_LEN;
    p[1] = (uint8_t)(n - 2);
    pbw_commit(w, n);
}

/* A Value of one scalar field (int, float, bool: at most 11 bytes) written in one go. */
static void _scalar_value(struct pbw *w, uint32_t field, enum pbw_wire wire, uint64_t bits) {
    uint8_t *p = pbw_reserve(w, 2 + 11);
    if (p == NULL) {
        return;
    }
    size_t n = 2;
    p[n++] = (uint8_t)(field << 3 | wire);
    if (wire == PBW_FIXED32) {
        uint32_t b32 = (uint32_t)bits;
        memcpy(p + n, &b32, 4); /* little-endian, as the wire */
        n += 4;
    } else if (wire == PBW_FIXED64) {
        memcpy(p + n, &bits, 8);
        n += 8;
    } else {
        n += pbw_put_varint(p + n, bits);
    }
    p[0] = FEAST_VECTOR_VALUES << 3 | PBW_LEN;
    p[1] = (uint8_t)(n - 2);
    pbw_commit(w, n);
}

/* The feast.types.Value field of each list type. */
static const uint32_t feast_list_field[STORE_TYPE_COUNT] = {
    [STORE_TYPE_BYTES_LIST] = FEAST_VALUE_BYTES_LIST,
    [STORE_TYPE_STRING_LIST] = FEAST_VALUE_STRING_LIST,
    [STORE_TYPE_INT32_LIST] = FEAST_VALUE_INT32_LIST,
    [STORE_TYPE_INT64_LIST] = FEAST_VALUE_INT64_LIST,
    [STORE_TYPE_DOUBLE_LIST] = FEAST_VALUE_DOUBLE_LIST,
    [STORE_TYPE_FLOAT_LIST] = FEAST_VALUE_FLOAT_LIST,
    [STORE_TYPE_BOOL_LIST] = FEAST_VALUE_BOOL_LIST,
    [STORE_TYPE_TIMESTAMP_LIST] = FEAST_VALUE_UNIX_TIMESTAMP_LIST,
};

/* Feast's unix_timestamp_val is in seconds: rounded down, also before 1970. */
static int64_t _feast_seconds(int64_t us) {
    return us / 1000000 - (us % 1000000 < 0);
}

/* A list value's Feast list message (the `val` field), inside the open Value. */
static void _list_value(struct pbw *w, enum store_type type, const struct store_value *v) {
    pbw_begin(w, feast_list_field[type]);
    enum store_type element = store_type_element(type);
    uint32_t size = store_type_element_size(type);
    if (size == 0) { /* string and bytes items: one field each */
        const uint8_t *lens = v->var.data;
        const char *item = (const char *)v->var.data + 4 * (size_t)v->var.count;
        for (uint32_t j = 0; j < v->var.count; j++) {
            uint32_t len;
            memcpy(&len, lens + 4 * (size_t)j, 4);
            pbw_bytes_field(w, FEAST_LIST_VAL, item, len);
            item += len;
        }
        pbw_end(w);
        return;
    }
    pbw_begin(w, FEAST_LIST_VAL); /* packed */
    for (uint32_t j = 0; j < v->var.count; j++) {
        struct store_value x = store_list_element(v, j);
        switch (element) {
        case STORE_TYPE_INT32:
            pbw_varint(w, (uint64_t)(int64_t)x.i32);
            break;
        case STORE_TYPE_FLOAT: {
            uint32_t bits;
            memcpy(&bits, &x.f32, 4);
            pbw_fixed32(w, bits);
            break;
        }
        case STORE_TYPE_DOUBLE: {
            uint64_t bits;
            memcpy(&bits, &x.f64, 8);
            pbw_fixed64(w, bits);
            break;
        }
        case STORE_TYPE_BOOL:
            pbw_varint(w, x.b);
            break;
        case STORE_TYPE_TIMESTAMP:
            pbw_varint(w, (uint64_t)_feast_seconds(x.ts_us));
            break;
        default: /* int64 */
            pbw_varint(w, (uint64_t)x.i64);
            break;
        }
    }
    pbw_end(w);
    pbw_end(w);
}

/* One feast.types.Value (inside its vector): `v` of `type`, or a null Value when NULL. */
static void _value(struct pbw *w, enum store_type type, const struct store_value *v) {
    if (v == NULL) {
        pbw_bytes_field(w, FEAST_VECTOR_VALUES, "", 0); /* a Value with nothing set */
        return;
    }
    switch (type) {
    case STORE_TYPE_INT32:
        _scalar_value(w, FEAST_VALUE_INT32, PBW_VARINT, (uint64_t)(int64_t)v->i32);
        return;
    case STORE_TYPE_INT64:
        _scalar_value(w, FEAST_VALUE_INT64, PBW_VARINT, (uint64_t)v->i64);
        return;
    case STORE_TYPE_TIMESTAMP: { /* Feast's unix_timestamp_val is in seconds */
        _scalar_value(w, FEAST_VALUE_UNIX_TIMESTAMP, PBW_VARINT,
                      (uint64_t)_feast_seconds(v->ts_us));
        return;
    }
    case STORE_TYPE_FLOAT: {
        uint32_t bits;
        memcpy(&bits, &v->f32, 4);
        _scalar_value(w, FEAST_VALUE_FLOAT, PBW_FIXED32, bits);
        return;
    }
    case STORE_TYPE_DOUBLE: {
        uint64_t bits;
        memcpy(&bits, &v->f64, 8);
        _scalar_value(w, FEAST_VALUE_DOUBLE, PBW_FIXED64, bits);
        return;
    }
    case STORE_TYPE_BOOL:
        _scalar_value(w, FEAST_VALUE_BOOL, PBW_VARINT, v->b);
        return;
    default:
        break;
    }
    pbw_begin(w, FEAST_VECTOR_VALUES);
    switch (type) {
    case STORE_TYPE_STRING:
    case STORE_TYPE_BYTES:
        pbw_bytes_field(w, type == STORE_TYPE_STRING ? FEAST_VALUE_STRING : FEAST_VALUE_BYTES,
                        v->var.data, v->var.bytes);
        break;
    default:
        _list_value(w, type, v);
        break;
    }
    pbw_end(w);
}

static const uint8_t _feast_status[] = {
    [STORE_PRESENT] = FEAST_STATUS_PRESENT,
    [STORE_NOT_FOUND] = FEAST_STATUS_NOT_FOUND,
    [STORE_NULL] = FEAST_STATUS_NULL_VALUE,
    [STORE_OUTSIDE_MAX_AGE] = FEAST_STATUS_OUTSIDE_MAX_AGE,
};

/* The join key columns, echoed: PRESENT, empty timestamps. */
static void _write_entity_vector(struct pbw *w, const Feast__Types__RepeatedValue *values,
                                 size_t n) {
    pbw_begin(w, FEAST_RESPONSE_RESULTS);
    for (size_t i = 0; i < n; i++) {
        const Feast__Types__Value *v = values->val[i];
        pbw_begin(w, FEAST_VECTOR_VALUES);
        if (v->val_case == FEAST__TYPES__VALUE__VAL_STRING_VAL) {
            pbw_bytes_field(w, FEAST_VALUE_STRING, v->string_val.data, v->string_val.len);
        } else if (v->val_case == FEAST__TYPES__VALUE__VAL_INT32_VAL) {
            pbw_int_field(w, FEAST_VALUE_INT32, v->int32_val);
        } else {
            pbw_int_field(w, FEAST_VALUE_INT64, v->int64_val);
        }
        pbw_end(w);
    }
    pbw_begin(w, FEAST_VECTOR_STATUSES);
    for (size_t i = 0; i < n; i++) {
        pbw_varint(w, FEAST_STATUS_PRESENT);
    }
    pbw_end(w);
    for (size_t i = 0; i < n; i++) {
        _timestamp(w, 0);
    }
    pbw_end(w);
}

/*
 * The order the join keys are echoed in: the requested views' join keys as their configs
 * declare them, each once (a map's entries arrive in no order a client controls). Fills
 * order[] with indexes into the request's entities; returns how many.
 */
size_t feast_key_order(const struct plan *p, size_t *order) {
    size_t n = 0;
    for (uint32_t v = 0; v < p->nviews; v++) {
        const struct store_schema *schema = p->views[v].schema;
        for (uint32_t j = 0; j < schema->nkeys; j++) {
            for (size_t k = 0; k < p->nkeys; k++) {
                if (strcmp(schema->keys[j].name, p->keys[k].name) != 0) {
                    continue;
                }
                bool seen = false;
                for (size_t o = 0; o < n && !seen; o++) {
                    seen = order[o] == k;
                }
                if (!seen) {
                    order[n++] = k;
                }
            }
        }
    }
    return n;
}

uint8_t *feast_prepare(struct rpc_worker *wk, const struct plan *p, int64_t now_us,
                       struct feast_extras *x, struct rpc_view_counters **vc, size_t *order,
                       size_t *nkeys) {
    uint8_t *status = arena_alloc(&wk->arena, p->n + 1);
    if (status == NULL) {
        return NULL;
    }
    *nkeys = feast_key_order(p, order);
    plan_count_lookups(wk, p, now_us, vc);
    x->oldest_ms = -1;
    for (uint32_t v = 0; v < p->nviews; v++) {
        for (size_t i = 0; i < p->n; i++) {
            if (p->views[v].rows[i] != NULL) {
                int64_t ms = plan_age_us(now_us, p->views[v].rows[i]->event_ts_us) / 1000;
                x->oldest_ms = ms > x->oldest_ms ? ms : x->oldest_ms;
            }
        }
    }
    return status;
}

enum store_status feast_cell(const struct plan *p, uint32_t c, size_t i, int64_t now_us,
                             struct rpc_view_counters *const *vc, struct feast_extras *x,
                             struct store_value *value, bool *send) {
    const struct plan_view *vp = &p->views[p->columns[c].view];
    uint32_t f = p->columns[c].feature;
    const struct store_row *row = vp->rows[i];
    bool fsd_defaults = rpc_state.options.feast_defaults == RPC_FEAST_DEFAULTS_FSD;
    bool has = false;
    enum store_status st = store_table_read(vp->table, row, f, now_us, value, &has);
    x->missing[st] += st != STORE_PRESENT;
    if (st != STORE_PRESENT && has && vc[p->columns[c].view] != NULL && fsd_defaults) {
        rpc_counter_add(
            &vc[p->columns[c].view]->fallbacks[f * RPC_FALLBACK_REASONS + plan_fallback_reason(st)],
            1);
    }
    *send = true;
    if (st == STORE_PRESENT || (fsd_defaults && has)) {
        /* the value, or its default */
    } else if (st == STORE_OUTSIDE_MAX_AGE && !store_row_is_null(vp->schema, row, f)) {
        store_row_get(vp->schema, row, f, value); /* as stored, as Feast's Go server */
    } else {
        *send = false;
    }
    return st;
}

static int _write_response(struct rpc_worker *wk, const struct plan *p,
                           const Feast__Serving__GetOnlineFeaturesRequest *req, int64_t now_us,
                           struct feast_extras *x) {
    struct pbw *w = &wk->out;
    size_t n = p->n;
    struct rpc_view_counters *vc[p->nviews + 1];
    size_t order[PLAN_MAX_KEY_COLUMNS], nkeys;
    uint8_t *status = feast_prepare(wk, p, now_us, x, vc, order, &nkeys);
    if (status == NULL) {
        return -1;
    }
    pbw_reset(w);
    pbw_begin(w, FEAST_RESPONSE_METADATA);
    pbw_begin(w, FEAST_METADATA_FEATURE_NAMES);
    for (size_t o = 0; o < nkeys; o++) {
        const char *key = p->keys[order[o]].name;
        pbw_bytes_field(w, FEAST_FEATURE_LIST_VAL, key, strlen(key));
    }
    for (uint32_t c = 0; c < p->ncolumns; c++) {
        _write_column_name(w, p, c, req->full_feature_names);
    }
    pbw_end(w);
    pbw_end(w);
    for (size_t o = 0; o < nkeys; o++) {
        _write_entity_vector(w, req->entities[order[o]]->value, n);
    }
    for (uint32_t c = 0; c < p->ncolumns; c++) {
        const struct plan_view *vp = &p->views[p->columns[c].view];
        enum store_type type = vp->schema->features[p->columns[c].feature].type;
        pbw_begin(w, FEAST_RESPONSE_RESULTS);
        for (size_t i = 0; i < n; i++) {
            struct store_value value;
            bool send;
            status[i] = _feast_status[feast_cell(p, c, i, now_us, vc, x, &value, &send)];
            _value(w, type, send ? &value : NULL);
        }
        pbw_begin(w, FEAST_VECTOR_STATUSES);
        for (size_t i = 0; i < n; i++) {
            pbw_varint(w, status[i]);
        }
        pbw_end(w);
        for (size_t i = 0; i < n; i++) {
            _timestamp(w, vp->rows[i] != NULL ? vp->rows[i]->event_ts_us : 0);
        }
        pbw_end(w);
    }
    return w->failed ? -1 : 0;
}

/* ---- the handlers -------------------------------------------------------------------------- */

/* Text without printf, on every call: `x` in decimal (a static buffer: one at a time). */
static const char *_digits(uint64_t x) {
    static _Thread_local char buf[24];
    char *p = buf + sizeof buf - 1;
    *p = '\0';
    do {
        *--p = (char)('0' + x % 10);
        x /= 10;
    } while (x > 0);
    return p;
}

/* Copies `s` to `at` with its NUL; returns where the NUL went. The caller sized `at`. */
static char *_append(char *at, const char *s) {
    size_t n = strlen(s);
    memcpy(at, s, n + 1);
    return at + n;
}

void feast_serve(struct grpc_call *call, struct rpc_worker *wk,
                 const Feast__Serving__GetOnlineFeaturesRequest *req, enum feast_format format,
                 enum rpc_method_id method) {
    struct plan_error e = {GRPC_OK, "", NULL};
    store_read_lock();
    const struct fsd_config *config = atomic_load_explicit(&rpc_state.config, memory_order_acquire);
    struct plan plan;
    memset(&plan, 0, sizeof(plan));
    struct feast_extras extras = {{0}, -1};
    int64_t deadline = grpc_call_deadline_us(call);
    /* A JSON client cannot say how long it will wait (HTTP has no grpc-timeout), so the
     * default budget, which stands in for one, is gRPC's only. */
    if (deadline == INT64_MAX && rpc_state.options.default_budget_us > 0 &&
        format == FEAST_FORMAT_PROTO) {
        deadline = grpc_call_ready_us(call) + (int64_t)rpc_state.options.default_budget_us;
    }
    if (_plan(wk, req, config, &plan, &e) != 0) {
        /* e is set */
    } else if (clock_mono_us() > deadline) {
        if (wk->counters != NULL) {
            rpc_counter_add(&wk->counters->budget_exceeded, 1);
        }
        plan_error(&e, GRPC_DEADLINE_EXCEEDED,
                   "the request's time (grpc-timeout, else server.default_budget_us) was spent "
                   "before the lookup started");
    } else if (plan_encode_keys(&wk->arena, &plan, &e) == 0) {
        if (wk->counters != NULL) {
            rpc_histogram_observe(&wk->counters->batch, rpc_batch_bounds, RPC_BATCH_BUCKETS,
                                  (double)plan.n);
        }
        plan_lookup(&plan);
        int64_t now_us = grpc_call_clock(call)->wall_us;
        int rc = format == FEAST_FORMAT_JSON ? feast_json_write(wk, &plan, req, now_us, &extras)
                                             : _write_response(wk, &plan, req, now_us, &extras);
        size_t len = format == FEAST_FORMAT_JSON ? wk->json.len : wk->out.len;
        if (rc != 0 || len > rpc_state.options.max_response_bytes) {
            plan_error(&e, GRPC_RESOURCE_EXHAUSTED,
                       "response of %zu entities x %u features exceeds server.max_message_bytes "
                       "(%llu) or the memory for it; ask for fewer",
                       plan.n, plan.ncolumns,
                       (unsigned long long)rpc_state.options.max_response_bytes);
        }
    }
    store_read_unlock();
    if (e.code != GRPC_OK) {
        if (format == FEAST_FORMAT_JSON) {
            feast_http_fail(call, e.code, e.feast_class, e.message);
        } else {
            grpc_call_fail(call, e.code, e.message);
        }
    } else if (format == FEAST_FORMAT_JSON) {
        grpc_call_http_reply(call, GRPC_OK, 200, "application/json", wk->json.data, wk->json.len);
    } else {
        char text[3 * 20 + 64]; /* three counts of up to 20 digits and their names */
        char *t = text;
        t = _append(_append(t, "not_found="), _digits(extras.missing[STORE_NOT_FOUND]));
        t = _append(_append(t, ",null_value="), _digits(extras.missing[STORE_NULL]));
        _append(_append(t, ",outside_max_age="), _digits(extras.missing[STORE_OUTSIDE_MAX_AGE]));
        grpc_call_add_trailer(call, "fsd-values-not-present", text);
        _append(text, extras.oldest_ms < 0 ? "-1" : _digits((uint64_t)extras.oldest_ms));
        grpc_call_add_trailer(call, "fsd-oldest-row-ms", text);
        grpc_call_reply(call, wk->out.buf, wk->out.len);
    }
    rpc_observe_duration(wk, method, call);
    pbw_trim(&wk->out, RPC_KEEP_RESPONSE_BYTES);
    if (wk->json.cap > RPC_KEEP_RESPONSE_BYTES) {
        buf_free(&wk->json);
    }
}

void rpc_feast_get_online_features(struct grpc_call *call, const uint8_t *msg, size_t len) {
    struct rpc_worker *wk = grpc_call_worker_context(call);
    if (wk == NULL) {
        grpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "worker has no memory for requests");
        return;
    }
    Feast__Serving__GetOnlineFeaturesRequest *req =
        feast__serving__get_online_features_request__unpack(&wk->arena.protobuf, len, msg);
    if (req == NULL) {
        grpc_call_fail(call, GRPC_INVALID_ARGUMENT,
                       "malformed feast.serving.GetOnlineFeaturesRequest: not a valid protobuf "
                       "message");
    } else {
        feast_serve(call, wk, req, FEAST_FORMAT_PROTO, RPC_FEAST_GET_ONLINE_FEATURES);
    }
    arena_reset(&wk->arena);
}

void rpc_feast_serving_info(struct grpc_call *call, const uint8_t *msg, size_t len) {
    (void)msg, (void)len; /* GetFeastServingInfoRequest has no fields */
    struct rpc_worker *wk = grpc_call_worker_context(call);
    if (wk == NULL) {
        grpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "worker has no memory for requests");
        return;
    }
    char version[64];
    snprintf(version, sizeof version, "fsd %s", FSD_VERSION);
    pbw_reset(&wk->out);
    pbw_bytes_field(&wk->out, FEAST_SERVING_INFO_VERSION, version, strlen(version));
    grpc_call_reply(call, wk->out.buf, wk->out.len);
    rpc_observe_duration(wk, RPC_FEAST_SERVING_INFO, call);
}
