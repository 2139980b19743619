/*
 * GetFeatures: resolve the requested refs into columns grouped by view, look up every view's
 * entities in one batch, and write the columnar response straight into the worker's buffer.
 *
 *   request ──decode (arena)──> plan { views: [rows[N]], columns: [view, feature] }
 *                                  └──> statuses + values per column, staleness per view
 *
 * Everything happens inside one RCU read section, so the whole response comes from one
 * snapshot of each view.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "fsd/v1/feature_service.pb-c.h"
#include "daemon/grpc/grpc.h"
#include "fields.h"
#include "rpc_internal.h"
#include "store/catalog.h"
#include "store/key.h"
#include "store/rcu.h"
#include "store/table.h"
#include "common/clock.h"

/* The wire enum FeatureType is store_type + 1 (0 is UNSPECIFIED). */
#define WIRE_TYPE(t) ((uint64_t)(t) + 1)

/* Refs and key columns one request may name: a bound on the work before any lookup. */
#define GET_FEATURES_MAX_REFS        4096
#define GET_FEATURES_MAX_KEY_COLUMNS 64

struct view_plan {
    struct store_view *view;
    const struct store_schema *schema;
    uint8_t *planned; /* [nfeatures]: 1 once a column of the feature is in the plan */
    struct store_table *table;
    const Fsd__V1__KeyColumn *key_columns[STORE_MAX_JOIN_KEYS];
    struct store_key *keys;
    const struct store_row **rows;
};

struct column {
    uint32_t view; /* index into plan.views */
    uint32_t feature;
};

struct plan {
    struct view_plan *views;
    uint32_t nviews;
    uint32_t views_cap;
    struct column *columns;
    uint32_t ncolumns;
    uint32_t columns_cap;
    size_t n; /* entities */
};

struct request_error {
    enum grpc_code code;
    char message[512];
};

static int _error(struct request_error *e, enum grpc_code code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    e->code = code;
    return -1;
}

/* Grows an arena-backed array by doubling; the old copy stays in the arena until reset. */
static void *_grow(struct arena *a, void *old, uint32_t count, uint32_t *cap, size_t elem) {
    if (count < *cap) {
        return old;
    }
    uint32_t next = *cap ? *cap * 2 : 16;
    void *fresh = arena_alloc(a, next * elem);
    if (fresh != NULL && count > 0) {
        memcpy(fresh, old, count * elem);
    }
    *cap = next;
    return fresh;
}

static int _add_column(struct arena *a, struct plan *p, struct store_view *view, uint32_t feature,
                       struct request_error *e) {
    uint32_t v = 0;
    while (v < p->nviews && p->views[v].view != view) {
        v++;
    }
    if (v == p->nviews) {
        p->views = _grow(a, p->views, p->nviews, &p->views_cap, sizeof(*p->views));
        if (p->views == NULL) {
            return _error(e, GRPC_RESOURCE_EXHAUSTED, "out of memory planning the request");
        }
        struct view_plan *vp = &p->views[p->nviews++];
        memset(vp, 0, sizeof(*vp));
        vp->view = view;
        vp->schema = store_view_schema(view);
        vp->table = store_view_table(view);
        vp->planned = arena_alloc(a, vp->schema->nfeatures ? vp->schema->nfeatures : 1);
        if (vp->planned == NULL) {
            return _error(e, GRPC_RESOURCE_EXHAUSTED, "out of memory planning the request");
        }
        memset(vp->planned, 0, vp->schema->nfeatures);
    }
    if (p->views[v].planned[feature]) {
        return 0; /* asked for twice (a ref and a view:*, a service and a ref): served once */
    }
    p->views[v].planned[feature] = 1;
    p->columns = _grow(a, p->columns, p->ncolumns, &p->columns_cap, sizeof(*p->columns));
    if (p->columns == NULL) {
        return _error(e, GRPC_RESOURCE_EXHAUSTED, "out of memory planning the request");
    }
    p->columns[p->ncolumns++] = (struct column){v, feature};
    return 0;
}

/* Adds the columns of one "view:feature" or "view:*" ref. */
static int _add_ref(struct arena *a, struct plan *p, const char *ref, struct request_error *e) {
    const char *colon = strchr(ref, ':');
    if (colon == NULL || colon == ref || colon[1] == '\0') {
        return _error(e, GRPC_INVALID_ARGUMENT,
                      "feature ref \"%s\" is not of the form view:feature or view:*", ref);
    }
    char view_name[CONFIG_MAX_NAME + 1];
    size_t view_len = (size_t)(colon - ref);
    if (view_len > CONFIG_MAX_NAME) {
        return _error(e, GRPC_INVALID_ARGUMENT, "unknown view \"%.*s\"", 64, ref);
    }
    memcpy(view_name, ref, view_len);
    view_name[view_len] = '\0';
    struct store_view *view = store_catalog_find(rpc_state.catalog, view_name);
    if (view == NULL) {
        return _error(e, GRPC_INVALID_ARGUMENT, "unknown view \"%s\" in feature ref \"%s\"",
                      view_name, ref);
    }
    const struct store_schema *schema = store_view_schema(view);
    const char *feature = colon + 1;
    if (strcmp(feature, "*") == 0) {
        for (uint32_t f = 0; f < schema->nfeatures; f++) {
            if (_add_column(a, p, view, f, e) != 0) {
                return -1;
            }
        }
        return 0;
    }
    int f = store_schema_feature_index(schema, feature);
    if (f < 0) {
        return _error(e, GRPC_INVALID_ARGUMENT, "view %s has no feature \"%s\"", view_name,
                      feature);
    }
    return _add_column(a, p, view, (uint32_t)f, e);
}

static int _add_service(struct arena *a, struct plan *p, const struct fsd_config *config,
                        const char *name, struct request_error *e) {
    const struct config_service *service = config_find_service(config, name);
    if (service == NULL) {
        return _error(e, GRPC_NOT_FOUND, "unknown feature service \"%s\"", name);
    }
    for (uint32_t i = 0; i < service->nfeatures; i++) {
        const struct config_feature_ref *ref = &service->features[i];
        const char *view_name = config->views[ref->view].schema->view;
        struct store_view *view = store_catalog_find(rpc_state.catalog, view_name);
        if (view == NULL) {
            return _error(e, GRPC_UNAVAILABLE, "feature service %s: view %s is not loaded", name,
                          view_name);
        }
        if (_add_column(a, p, view, ref->feature, e) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Counts the entities and checks the key columns agree on it. */
static int _count_entities(const Fsd__V1__GetFeaturesRequest *req, uint32_t max_batch,
                           struct plan *p, struct request_error *e) {
    p->n = 0;
    if (req->n_keys > GET_FEATURES_MAX_KEY_COLUMNS) {
        return _error(e, GRPC_INVALID_ARGUMENT, "%zu key columns; at most %d are taken",
                      req->n_keys, GET_FEATURES_MAX_KEY_COLUMNS);
    }
    for (size_t k = 0; k < req->n_keys; k++) {
        const Fsd__V1__KeyColumn *col = req->keys[k];
        if (col->n_int64_values > 0 && col->n_string_values > 0) {
            return _error(e, GRPC_INVALID_ARGUMENT,
                          "key column %s has both int64_values and string_values", col->name);
        }
        for (size_t j = 0; j < k; j++) {
            if (strcmp(req->keys[j]->name, col->name) == 0) {
                return _error(e, GRPC_INVALID_ARGUMENT, "key column %s appears twice", col->name);
            }
        }
        size_t n = col->n_int64_values + col->n_string_values;
        if (k > 0 && n != p->n) {
            return _error(e, GRPC_INVALID_ARGUMENT,
                          "key columns differ in length: %s has %zu entities, %s has %zu",
                          req->keys[0]->name, p->n, col->name, n);
        }
        p->n = n;
    }
    if (p->n > max_batch) {
        return _error(e, GRPC_INVALID_ARGUMENT,
                      "batch of %zu entities exceeds the limit of %u (server.max_batch)", p->n,
                      max_batch);
    }
    return 0;
}

/* Finds each view's join key columns and encodes its N entity keys. */
static int _encode_keys(struct arena *a, const Fsd__V1__GetFeaturesRequest *req,
                        struct view_plan *vp, size_t n, struct request_error *e) {
    const struct store_schema *schema = vp->schema;
    size_t key_bytes = 0;
    for (uint32_t k = 0; k < schema->nkeys; k++) {
        const struct store_join_key *jk = &schema->keys[k];
        const Fsd__V1__KeyColumn *col = NULL;
        for (size_t j = 0; j < req->n_keys && col == NULL; j++) {
            if (strcmp(req->keys[j]->name, jk->name) == 0) {
                col = req->keys[j];
            }
        }
        if (col == NULL) {
            return _error(e, GRPC_INVALID_ARGUMENT,
                          "view %s needs join key %s, which the request does not carry",
                          schema->view, jk->name);
        }
        bool is_int = jk->type == STORE_KEY_INT64;
        if (n > 0 && (is_int ? col->n_int64_values : col->n_string_values) != n) {
            return _error(e, GRPC_INVALID_ARGUMENT, "join key %s of view %s is %s, got %s values",
                          jk->name, schema->view, is_int ? "int64" : "string",
                          is_int ? "string" : "int64");
        }
        vp->key_columns[k] = col;
        if (is_int) {
            key_bytes += 8 * n;
        } else {
            for (size_t i = 0; i < n; i++) {
                key_bytes += col->string_values[i].len + 5; /* + varint length */
            }
        }
    }
    uint8_t *buf = arena_alloc(a, key_bytes + 1);
    vp->keys = arena_alloc(a, (n + 1) * sizeof(*vp->keys));
    vp->rows = arena_alloc(a, (n + 1) * sizeof(*vp->rows));
    if (buf == NULL || vp->keys == NULL || vp->rows == NULL) {
        return _error(e, GRPC_RESOURCE_EXHAUSTED, "out of memory encoding keys");
    }
    struct store_key_part parts[STORE_MAX_JOIN_KEYS];
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        for (uint32_t k = 0; k < schema->nkeys; k++) {
            const Fsd__V1__KeyColumn *col = vp->key_columns[k];
            parts[k].type = schema->keys[k].type;
            if (parts[k].type == STORE_KEY_INT64) {
                parts[k].i64 = col->int64_values[i];
            } else {
                parts[k].str = (const char *)col->string_values[i].data;
                parts[k].str_len = (uint32_t)col->string_values[i].len;
            }
        }
        char err[256];
        int len = store_key_encode(schema, parts, buf + used, key_bytes - used, err, sizeof err);
        if (len < 0) {
            return _error(e, GRPC_INVALID_ARGUMENT, "entity %zu: %s", i, err);
        }
        vp->keys[i] = (struct store_key){buf + used, (uint32_t)len,
                                         store_key_hash(buf + used, (uint32_t)len)};
        used += (size_t)len;
    }
    return 0;
}

/* ---- encoding ------------------------------------------------------------------------------ */

struct column_values {
    uint8_t *status;
    bool *has;
    struct store_value *value;
};

static void _write_packed_varints_status(struct pbw *w, const uint8_t *status, size_t n) {
    pbw_tag(w, FEATURE_COLUMN_STATUSES, PBW_LEN);
    pbw_varint(w, n);
    uint8_t *p = pbw_reserve(w, n);
    if (p != NULL) {
        memcpy(p, status, n); /* every status is below 128: one byte each */
        pbw_commit(w, n);
    }
}

static void _write_values(struct pbw *w, enum store_type type, const struct column_values *cv,
                          size_t n) {
    switch (type) {
    case STORE_TYPE_INT32:
        pbw_begin(w, FEATURE_COLUMN_INT32_VALUES);
        for (size_t i = 0; i < n; i++) {
            pbw_varint(w, cv->has[i] ? (uint64_t)(int64_t)cv->value[i].i32 : 0);
        }
        pbw_end(w);
        return;
    case STORE_TYPE_INT64:
    case STORE_TYPE_TIMESTAMP:
        pbw_begin(w, FEATURE_COLUMN_INT64_VALUES);
        for (size_t i = 0; i < n; i++) {
            pbw_varint(w, cv->has[i] ? (uint64_t)cv->value[i].i64 : 0);
        }
        pbw_end(w);
        return;
    case STORE_TYPE_FLOAT:
        pbw_begin(w, FEATURE_COLUMN_FLOAT_VALUES);
        for (size_t i = 0; i < n; i++) {
            uint32_t bits = 0;
            if (cv->has[i]) {
                memcpy(&bits, &cv->value[i].f32, 4);
            }
            pbw_fixed32(w, bits);
        }
        pbw_end(w);
        return;
    case STORE_TYPE_DOUBLE:
        pbw_begin(w, FEATURE_COLUMN_DOUBLE_VALUES);
        for (size_t i = 0; i < n; i++) {
            uint64_t bits = 0;
            if (cv->has[i]) {
                memcpy(&bits, &cv->value[i].f64, 8);
            }
            pbw_fixed64(w, bits);
        }
        pbw_end(w);
        return;
    case STORE_TYPE_BOOL:
        pbw_begin(w, FEATURE_COLUMN_BOOL_VALUES);
        for (size_t i = 0; i < n; i++) {
            pbw_varint(w, cv->has[i] && cv->value[i].b);
        }
        pbw_end(w);
        return;
    case STORE_TYPE_STRING:
    case STORE_TYPE_BYTES:
        for (size_t i = 0; i < n; i++) {
            const struct store_value *v = &cv->value[i];
            pbw_bytes_field(w,
                            type == STORE_TYPE_STRING ? FEATURE_COLUMN_STRING_VALUES
                                                      : FEATURE_COLUMN_BYTES_VALUES,
                            cv->has[i] ? v->var.data : "", cv->has[i] ? v->var.bytes : 0);
        }
        return;
    case STORE_TYPE_FLOAT_LIST:
    case STORE_TYPE_INT64_LIST:
        pbw_begin(w, type == STORE_TYPE_FLOAT_LIST ? FEATURE_COLUMN_FLOAT_VALUES
                                                   : FEATURE_COLUMN_INT64_VALUES);
        for (size_t i = 0; i < n; i++) {
            if (!cv->has[i]) {
                continue;
            }
            const struct store_value *v = &cv->value[i];
            for (uint32_t j = 0; j < v->var.count; j++) {
                if (type == STORE_TYPE_FLOAT_LIST) {
                    uint32_t bits;
                    memcpy(&bits, (const uint8_t *)v->var.data + 4 * j, 4);
                    pbw_fixed32(w, bits);
                } else {
                    int64_t x;
                    memcpy(&x, (const uint8_t *)v->var.data + 8 * j, 8);
                    pbw_varint(w, (uint64_t)x);
                }
            }
        }
        pbw_end(w);
        break;
    case STORE_TYPE_STRING_LIST:
        for (size_t i = 0; i < n; i++) {
            if (!cv->has[i]) {
                continue;
            }
            for (uint32_t j = 0; j < cv->value[i].var.count; j++) {
                const char *data;
                uint32_t len;
                store_string_list_at(&cv->value[i], j, &data, &len);
                pbw_bytes_field(w, FEATURE_COLUMN_STRING_VALUES, data, len);
            }
        }
        break;
    }
    /* lists: how many elements each entity has */
    pbw_begin(w, FEATURE_COLUMN_LIST_LENGTHS);
    for (size_t i = 0; i < n; i++) {
        pbw_varint(w, cv->has[i] ? cv->value[i].var.count : 0);
    }
    pbw_end(w);
}

/* now - event time without overflow, whatever a source stored (years far from now). */
static int64_t _age_us(int64_t now_us, int64_t event_ts_us) {
    int64_t age;
    if (__builtin_sub_overflow(now_us, event_ts_us, &age)) {
        return event_ts_us < 0 ? INT64_MAX : INT64_MIN;
    }
    return age;
}

static enum rpc_fallback_reason _reason_of(enum store_status status) {
    return status == STORE_NOT_FOUND ? RPC_FALLBACK_NOT_FOUND
           : status == STORE_NULL    ? RPC_FALLBACK_NULL_VALUE
                                     : RPC_FALLBACK_OUTSIDE_MAX_AGE;
}

/* Per view: entities looked up, not found, and the staleness of the rows served. */
static void _count_lookups(struct rpc_worker *wk, const struct plan *p, int64_t now_us,
                           struct rpc_view_counters **vc) {
    for (uint32_t v = 0; v < p->nviews; v++) {
        const struct view_plan *vp = &p->views[v];
        vc[v] = wk->counters != NULL
                    ? rpc_worker_view_counters(wk->counters, store_view_index(vp->view),
                                               vp->schema->nfeatures)
                    : NULL;
        if (vc[v] == NULL) {
            continue;
        }
        uint64_t missing = 0;
        for (size_t i = 0; i < p->n; i++) {
            if (vp->rows[i] == NULL) {
                missing++;
            } else {
                rpc_histogram_observe(&vc[v]->staleness, rpc_staleness_bounds_s,
                                      RPC_STALENESS_BUCKETS,
                                      (double)_age_us(now_us, vp->rows[i]->event_ts_us) / 1e6);
            }
        }
        rpc_counter_add(&vc[v]->lookups, p->n);
        rpc_counter_add(&vc[v]->not_found, missing);
    }
}

struct fallback_counts {
    uint64_t by_status[STORE_OUTSIDE_MAX_AGE + 1];
};

static int _write_response(struct rpc_worker *wk, const struct plan *p,
                           const Fsd__V1__GetFeaturesRequest *req, int64_t now_us,
                           int64_t start_mono_us) {
    struct pbw *w = &wk->out;
    size_t n = p->n;
    struct column_values cv = {
        arena_alloc(&wk->arena, n + 1),
        arena_alloc(&wk->arena, n + 1),
        arena_alloc(&wk->arena, (n + 1) * sizeof(struct store_value)),
    };
    if (cv.status == NULL || cv.has == NULL || cv.value == NULL) {
        return -1;
    }
    struct fallback_counts fallbacks = {{0}};
    struct rpc_view_counters *vc[p->nviews + 1];
    _count_lookups(wk, p, now_us, vc);
    pbw_reset(w);
    pbw_uint_field(w, GET_FEATURES_RESPONSE_ENTITIES, n);
    for (uint32_t c = 0; c < p->ncolumns; c++) {
        const struct view_plan *vp = &p->views[p->columns[c].view];
        uint32_t f = p->columns[c].feature;
        const struct store_feature *feature = &vp->schema->features[f];
        for (size_t i = 0; i < n; i++) {
            enum store_status st =
                store_table_read(vp->table, vp->rows[i], f, now_us, &cv.value[i], &cv.has[i]);
            cv.status[i] = (uint8_t)st;
            if (st != STORE_PRESENT && cv.has[i]) {
                fallbacks.by_status[st]++;
                if (vc[p->columns[c].view] != NULL) {
                    rpc_counter_add(&vc[p->columns[c].view]
                                         ->fallbacks[f * RPC_FALLBACK_REASONS + _reason_of(st)],
                                    1);
                }
            }
        }
        pbw_begin(w, GET_FEATURES_RESPONSE_COLUMNS);
        pbw_tag(w, FEATURE_COLUMN_NAME, PBW_LEN);
        size_t view_len = strlen(vp->schema->view), name_len = strlen(feature->name);
        pbw_varint(w, view_len + 1 + name_len);
        uint8_t *name = pbw_reserve(w, view_len + 1 + name_len);
        if (name != NULL) {
            memcpy(name, vp->schema->view, view_len);
            name[view_len] = ':';
            memcpy(name + view_len + 1, feature->name, name_len);
            pbw_commit(w, view_len + 1 + name_len);
        }
        pbw_uint_field(w, FEATURE_COLUMN_TYPE, WIRE_TYPE(feature->type));
        _write_packed_varints_status(w, cv.status, n);
        _write_values(w, feature->type, &cv, n);
        if (req->include_event_timestamps) {
            pbw_begin(w, FEATURE_COLUMN_EVENT_TIMESTAMPS_US);
            for (size_t i = 0; i < n; i++) {
                pbw_varint(w, vp->rows[i] ? (uint64_t)vp->rows[i]->event_ts_us : 0);
            }
            pbw_end(w);
        }
        struct store_value unused;
        if (store_table_default(vp->table, f, &unused)) {
            pbw_uint_field(w, FEATURE_COLUMN_HAS_DEFAULT, 1);
        }
        pbw_end(w);
    }
    for (uint32_t v = 0; v < p->nviews; v++) {
        const struct view_plan *vp = &p->views[v];
        pbw_begin(w, GET_FEATURES_RESPONSE_VIEWS);
        pbw_bytes_field(w, VIEW_STALENESS_VIEW, vp->schema->view, strlen(vp->schema->view));
        pbw_begin(w, VIEW_STALENESS_STALENESS_MS);
        for (size_t i = 0; i < n; i++) {
            int64_t ms = vp->rows[i] ? _age_us(now_us, vp->rows[i]->event_ts_us) / 1000 : -1;
            pbw_varint(w, (uint64_t)ms);
        }
        pbw_end(w);
        pbw_end(w);
    }
    pbw_uint_field(w, GET_FEATURES_RESPONSE_VALUES_SERVED, (uint64_t)p->ncolumns * n);
    pbw_uint_field(w, GET_FEATURES_RESPONSE_DEFAULTS_NOT_FOUND,
                   fallbacks.by_status[STORE_NOT_FOUND]);
    pbw_uint_field(w, GET_FEATURES_RESPONSE_DEFAULTS_NULL_VALUE, fallbacks.by_status[STORE_NULL]);
    pbw_uint_field(w, GET_FEATURES_RESPONSE_DEFAULTS_OUTSIDE_MAX_AGE,
                   fallbacks.by_status[STORE_OUTSIDE_MAX_AGE]);
    pbw_uint_field(w, GET_FEATURES_RESPONSE_SERVER_TIME_US,
                   (uint64_t)(clock_mono_us() - start_mono_us));
    return w->failed ? -1 : 0;
}

/* ---- the handler --------------------------------------------------------------------------- */

/*
 * The request's deadline: its budget_us, else grpc-timeout, else the configured default. A
 * latency budget counts from when the request message arrived whole, so a slow upload does
 * not spend it; grpc-timeout is the client's deadline and counts from the HEADERS.
 */
static int64_t _deadline_us(struct grpc_call *call, const Fsd__V1__GetFeaturesRequest *req,
                            const char **origin) {
    int64_t start = grpc_call_ready_us(call);
    int64_t deadline = grpc_call_deadline_us(call);
    *origin = "grpc-timeout";
    if (req->budget_us > 0) {
        int64_t budget = start + (int64_t)req->budget_us;
        if (budget < deadline) {
            *origin = "the request's budget_us";
            return budget;
        }
        return deadline;
    }
    if (deadline == INT64_MAX && rpc_state.options.default_budget_us > 0) {
        *origin = "server.default_budget_us; set budget_us or a grpc-timeout to choose another";
        return start + (int64_t)rpc_state.options.default_budget_us;
    }
    return deadline;
}

/*
 * The least the response can take: every column has a status and a value slot per entity
 * (a string at least its tag and length, a list its length), and an event time when asked
 * for. A request whose floor is past the message limit is refused before any lookup.
 */
static uint64_t _response_floor(const struct plan *p, bool timestamps) {
    uint64_t per_entity = 0;
    for (uint32_t c = 0; c < p->ncolumns; c++) {
        const struct view_plan *vp = &p->views[p->columns[c].view];
        enum store_type type = vp->schema->features[p->columns[c].feature].type;
        uint64_t value = type == STORE_TYPE_DOUBLE                               ? 8
                         : type == STORE_TYPE_FLOAT                              ? 4
                         : type == STORE_TYPE_STRING || type == STORE_TYPE_BYTES ? 2
                                                                                 : 1;
        per_entity += 1 + value + (timestamps ? 1 : 0);
    }
    return per_entity * (uint64_t)p->n;
}

/*
 * A view with a source serves nothing until its first snapshot: answering NOT_FOUND (or the
 * defaults) for every entity meanwhile would pass for data. So a request touching one is
 * refused with UNAVAILABLE, which clients retry, unless the view has serve_before_ready.
 * The config is searched only while a view's version is 0.
 */
static int _check_ready(const struct plan *p, const struct fsd_config *config,
                        struct request_error *e) {
    for (uint32_t v = 0; v < p->nviews; v++) {
        if (store_view_version(p->views[v].view) > 0) {
            continue;
        }
        const struct config_view *cv = config_find_view(config, p->views[v].schema->view);
        if (cv != NULL && cv->snapshot.source.type != MAT_SOURCE_NONE &&
            !cv->snapshot.serve_before_ready) {
            return _error(e, GRPC_UNAVAILABLE,
                          "view %s is loading its first snapshot (from its %s source); retry "
                          "later, or set serve_before_ready: true on the view to be answered "
                          "before it",
                          cv->schema->view, mat_source_type_name(cv->snapshot.source.type));
        }
    }
    return 0;
}

/* Resolves the refs and the entity count: what the checks before any lookup need. */
static int _plan_columns(struct rpc_worker *wk, const Fsd__V1__GetFeaturesRequest *req,
                         const struct fsd_config *config, struct plan *p, struct request_error *e) {
    if (req->n_features > GET_FEATURES_MAX_REFS) {
        return _error(e, GRPC_INVALID_ARGUMENT, "%zu feature refs; at most %d are taken",
                      req->n_features, GET_FEATURES_MAX_REFS);
    }
    for (size_t i = 0; i < req->n_features; i++) {
        if (_add_ref(&wk->arena, p, req->features[i], e) != 0) {
            return -1;
        }
    }
    if (req->feature_service != NULL && req->feature_service[0] != '\0' &&
        _add_service(&wk->arena, p, config, req->feature_service, e) != 0) {
        return -1;
    }
    if (p->ncolumns == 0) {
        return _error(e, GRPC_INVALID_ARGUMENT,
                      "no features requested: set features (view:feature refs) or "
                      "feature_service");
    }
    if (_count_entities(req, rpc_state.options.max_batch, p, e) != 0) {
        return -1;
    }
    uint64_t floor = _response_floor(p, req->include_event_timestamps);
    if (floor > rpc_state.options.max_response_bytes) {
        return _error(e, GRPC_RESOURCE_EXHAUSTED,
                      "response would take at least %llu bytes (%zu entities x %u features), "
                      "which exceeds server.max_message_bytes (%llu); ask for fewer entities "
                      "or features",
                      (unsigned long long)floor, p->n, p->ncolumns,
                      (unsigned long long)rpc_state.options.max_response_bytes);
    }
    return _check_ready(p, config, e);
}

/* Encodes each view's keys: the last step before the lookups. */
static int _plan_keys(struct rpc_worker *wk, const Fsd__V1__GetFeaturesRequest *req, struct plan *p,
                      struct request_error *e) {
    for (uint32_t v = 0; v < p->nviews; v++) {
        if (_encode_keys(&wk->arena, req, &p->views[v], p->n, e) != 0) {
            return -1;
        }
    }
    return 0;
}

void rpc_get_features(struct grpc_call *call, const uint8_t *msg, size_t len) {
    struct rpc_worker *wk = grpc_call_worker_context(call);
    if (wk == NULL) {
        grpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "worker has no memory for requests");
        return;
    }
    struct request_error e = {GRPC_OK, ""};
    Fsd__V1__GetFeaturesRequest *req =
        fsd__v1__get_features_request__unpack(&wk->arena.protobuf, len, msg);
    if (req == NULL) {
        grpc_call_fail(call, GRPC_INVALID_ARGUMENT,
                       "malformed GetFeaturesRequest: not a valid protobuf message");
        arena_reset(&wk->arena);
        return;
    }
    store_read_lock();
    const struct fsd_config *config = atomic_load_explicit(&rpc_state.config, memory_order_acquire);
    const char *budget_origin;
    int64_t deadline = _deadline_us(call, req, &budget_origin);
    int64_t start = grpc_call_start_us(call);
    int64_t ready = grpc_call_ready_us(call);
    struct plan plan;
    memset(&plan, 0, sizeof(plan));
    /* What the request asks for is checked first (a bad request is refused whatever its
     * budget), then the budget, then the keys are encoded and looked up. */
    int64_t now_mono = 0;
    if (_plan_columns(wk, req, config, &plan, &e) != 0) {
        /* e is set */
    } else if ((now_mono = clock_mono_us()) > deadline) {
        if (wk->counters != NULL) {
            rpc_counter_add(&wk->counters->budget_exceeded, 1);
        }
        _error(&e, GRPC_DEADLINE_EXCEEDED,
               "latency budget of %lld us (from %s) was spent before the lookup started "
               "(waited %lld us since the request arrived whole)",
               (long long)(deadline - ready), budget_origin, (long long)(now_mono - ready));
    } else if (_plan_keys(wk, req, &plan, &e) == 0) {
        if (wk->counters != NULL) {
            rpc_histogram_observe(&wk->counters->batch, rpc_batch_bounds, RPC_BATCH_BUCKETS,
                                  (double)plan.n);
        }
        for (uint32_t v = 0; v < plan.nviews; v++) {
            store_table_get_batch(plan.views[v].table, plan.views[v].keys, plan.n,
                                  plan.views[v].rows);
        }
        if (_write_response(wk, &plan, req, grpc_call_clock(call)->wall_us, start) != 0) {
            if (wk->out.over_limit) {
                _error(&e, GRPC_RESOURCE_EXHAUSTED,
                       "response exceeds server.max_message_bytes (%llu): stopped while "
                       "writing it (%zu entities x %u features); ask for fewer entities or "
                       "features",
                       (unsigned long long)rpc_state.options.max_response_bytes, plan.n,
                       plan.ncolumns);
            } else {
                _error(&e, GRPC_RESOURCE_EXHAUSTED, "out of memory encoding the response");
            }
        } else if (wk->out.len > rpc_state.options.max_response_bytes) {
            _error(&e, GRPC_RESOURCE_EXHAUSTED,
                   "response of %zu bytes (%zu entities x %u features) exceeds "
                   "server.max_message_bytes (%llu); ask for fewer entities or features",
                   wk->out.len, plan.n, plan.ncolumns,
                   (unsigned long long)rpc_state.options.max_response_bytes);
        }
    }
    store_read_unlock();
    if (e.code == GRPC_OK) {
        grpc_call_reply(call, wk->out.buf, wk->out.len);
    } else {
        grpc_call_fail(call, e.code, e.message);
    }
    rpc_observe_duration(wk, RPC_GET_FEATURES, call);
    pbw_trim(&wk->out, RPC_KEEP_RESPONSE_BYTES);
    arena_reset(&wk->arena);
}
