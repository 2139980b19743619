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
#include "plan.h"
#include "rpc_internal.h"
#include "store/catalog.h"
#include "store/key.h"
#include "store/rcu.h"
#include "store/table.h"
#include "common/clock.h"

/* The wire enum FeatureType is store_type + 1 (0 is UNSPECIFIED). */
#define WIRE_TYPE(t) ((uint64_t)(t) + 1)

/*
 * The request's key columns as the plan takes them. A column with both int64 and string
 * values is refused here: the plan takes one kind per column.
 */
static int _key_columns(struct arena *a, const Fsd__V1__GetFeaturesRequest *req,
                        struct plan_key_column **out, struct plan_error *e) {
    struct plan_key_column *cols = arena_alloc(a, (req->n_keys + 1) * sizeof(*cols));
    if (cols == NULL) {
        return plan_error(e, GRPC_RESOURCE_EXHAUSTED, "out of memory planning the request");
    }
    for (size_t k = 0; k < req->n_keys; k++) {
        const Fsd__V1__KeyColumn *col = req->keys[k];
        if (col->n_int64_values > 0 && col->n_string_values > 0) {
            return plan_error(e, GRPC_INVALID_ARGUMENT,
                              "key column %s has both int64_values and string_values", col->name);
        }
        cols[k] = (struct plan_key_column){
            .name = col->name,
            .n = col->n_int64_values + col->n_string_values,
            .i64 = col->n_int64_values > 0 ? col->int64_values : NULL,
            .str = col->n_string_values > 0 ? col->string_values : NULL,
        };
    }
    *out = cols;
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

/* The FeatureColumn array that holds values of scalar type `type`, and a list's elements. */
static const uint32_t values_field[STORE_TYPE_COUNT] = {
    [STORE_TYPE_INT32] = FEATURE_COLUMN_INT32_VALUES,
    [STORE_TYPE_INT64] = FEATURE_COLUMN_INT64_VALUES,
    [STORE_TYPE_TIMESTAMP] = FEATURE_COLUMN_INT64_VALUES,
    [STORE_TYPE_FLOAT] = FEATURE_COLUMN_FLOAT_VALUES,
    [STORE_TYPE_DOUBLE] = FEATURE_COLUMN_DOUBLE_VALUES,
    [STORE_TYPE_BOOL] = FEATURE_COLUMN_BOOL_VALUES,
    [STORE_TYPE_STRING] = FEATURE_COLUMN_STRING_VALUES,
    [STORE_TYPE_BYTES] = FEATURE_COLUMN_BYTES_VALUES,
};

/* A list column: every entity's elements back to back in the element type's array. */
static void _write_list_values(struct pbw *w, enum store_type type, const struct column_values *cv,
                               size_t n) {
    enum store_type element = store_type_element(type);
    uint32_t field = values_field[element];
    uint32_t size = store_type_element_size(type);
    if (size == 0) { /* string and bytes lists: one length-delimited field per item */
        for (size_t i = 0; i < n; i++) {
            for (uint32_t j = 0; cv->has[i] && j < cv->value[i].var.count; j++) {
                const char *data;
                uint32_t len;
                store_packed_list_at(&cv->value[i], j, &data, &len);
                pbw_bytes_field(w, field, data, len);
            }
        }
        return;
    }
    pbw_begin(w, field);
    for (size_t i = 0; i < n; i++) {
        if (!cv->has[i]) {
            continue;
        }
        const uint8_t *at = cv->value[i].var.data;
        for (uint32_t j = 0; j < cv->value[i].var.count; j++, at += size) {
            if (size == 4) {
                uint32_t bits;
                memcpy(&bits, at, 4);
                /* int32 is a sign-extended varint, float a fixed32 */
                if (element == STORE_TYPE_INT32) {
                    pbw_varint(w, (uint64_t)(int64_t)(int32_t)bits);
                } else {
                    pbw_fixed32(w, bits);
                }
            } else if (size == 8) {
                uint64_t bits;
                memcpy(&bits, at, 8);
                if (element == STORE_TYPE_DOUBLE) {
                    pbw_fixed64(w, bits);
                } else {
                    pbw_varint(w, bits); /* int64, timestamp */
                }
            } else {
                pbw_varint(w, *at != 0); /* bool */
            }
        }
    }
    pbw_end(w);
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
    default:
        _write_list_values(w, type, cv, n);
        break;
    }
    /* lists: how many elements each entity has */
    pbw_begin(w, FEATURE_COLUMN_LIST_LENGTHS);
    for (size_t i = 0; i < n; i++) {
        pbw_varint(w, cv->has[i] ? cv->value[i].var.count : 0);
    }
    pbw_end(w);
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
    plan_count_lookups(wk, p, now_us, vc);
    pbw_reset(w);
    pbw_uint_field(w, GET_FEATURES_RESPONSE_ENTITIES, n);
    for (uint32_t c = 0; c < p->ncolumns; c++) {
        const struct plan_view *vp = &p->views[p->columns[c].view];
        uint32_t f = p->columns[c].feature;
        const struct store_feature *feature = &vp->schema->features[f];
        for (size_t i = 0; i < n; i++) {
            enum store_status st =
                store_table_read(vp->table, vp->rows[i], f, now_us, &cv.value[i], &cv.has[i]);
            cv.status[i] = (uint8_t)st;
            if (st != STORE_PRESENT && cv.has[i]) {
                fallbacks.by_status[st]++;
                if (vc[p->columns[c].view] != NULL) {
                    rpc_counter_add(&vc[p->columns[c].view]->fallbacks[f * RPC_FALLBACK_REASONS +
                                                                       plan_fallback_reason(st)],
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
        const struct plan_view *vp = &p->views[v];
        pbw_begin(w, GET_FEATURES_RESPONSE_VIEWS);
        pbw_bytes_field(w, VIEW_STALENESS_VIEW, vp->schema->view, strlen(vp->schema->view));
        pbw_begin(w, VIEW_STALENESS_STALENESS_MS);
        for (size_t i = 0; i < n; i++) {
            int64_t ms = vp->rows[i] ? plan_age_us(now_us, vp->rows[i]->event_ts_us) / 1000 : -1;
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
        const struct plan_view *vp = &p->views[p->columns[c].view];
        enum store_type type = vp->schema->features[p->columns[c].feature].type;
        uint64_t value = type == STORE_TYPE_DOUBLE                               ? 8
                         : type == STORE_TYPE_FLOAT                              ? 4
                         : type == STORE_TYPE_STRING || type == STORE_TYPE_BYTES ? 2
                                                                                 : 1;
        per_entity += 1 + value + (timestamps ? 1 : 0);
    }
    return per_entity * (uint64_t)p->n;
}

/* Resolves the refs and the entity count: what the checks before any lookup need. */
static int _plan_columns(struct rpc_worker *wk, const Fsd__V1__GetFeaturesRequest *req,
                         const struct fsd_config *config, struct plan *p, struct plan_error *e) {
    if (req->n_features > PLAN_MAX_REFS) {
        return plan_error(e, GRPC_INVALID_ARGUMENT, "%zu feature refs; at most %d are taken",
                          req->n_features, PLAN_MAX_REFS);
    }
    for (size_t i = 0; i < req->n_features; i++) {
        if (plan_add_ref(&wk->arena, p, req->features[i], e) != 0) {
            return -1;
        }
    }
    if (req->feature_service != NULL && req->feature_service[0] != '\0' &&
        plan_add_service(&wk->arena, p, config, req->feature_service, e) != 0) {
        return -1;
    }
    if (p->ncolumns == 0) {
        return plan_error(e, GRPC_INVALID_ARGUMENT,
                          "no features requested: set features (view:feature refs) or "
                          "feature_service");
    }
    struct plan_key_column *keys = NULL;
    if (_key_columns(&wk->arena, req, &keys, e) != 0 ||
        plan_set_keys(p, keys, req->n_keys, rpc_state.options.max_batch, e) != 0) {
        return -1;
    }
    uint64_t floor = _response_floor(p, req->include_event_timestamps);
    if (floor > rpc_state.options.max_response_bytes) {
        return plan_error(e, GRPC_RESOURCE_EXHAUSTED,
                          "response would take at least %llu bytes (%zu entities x %u features), "
                          "which exceeds server.max_message_bytes (%llu); ask for fewer entities "
                          "or features",
                          (unsigned long long)floor, p->n, p->ncolumns,
                          (unsigned long long)rpc_state.options.max_response_bytes);
    }
    return plan_check_ready(p, config, e);
}

void rpc_get_features(struct grpc_call *call, const uint8_t *msg, size_t len) {
    struct rpc_worker *wk = grpc_call_worker_context(call);
    if (wk == NULL) {
        grpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "worker has no memory for requests");
        return;
    }
    struct plan_error e = {GRPC_OK, "", NULL};
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
        plan_error(&e, GRPC_DEADLINE_EXCEEDED,
                   "latency budget of %lld us (from %s) was spent before the lookup started "
                   "(waited %lld us since the request arrived whole)",
                   (long long)(deadline - ready), budget_origin, (long long)(now_mono - ready));
    } else if (plan_encode_keys(&wk->arena, &plan, &e) == 0) {
        if (wk->counters != NULL) {
            rpc_histogram_observe(&wk->counters->batch, rpc_batch_bounds, RPC_BATCH_BUCKETS,
                                  (double)plan.n);
        }
        plan_lookup(&plan);
        if (_write_response(wk, &plan, req, grpc_call_clock(call)->wall_us, start) != 0) {
            if (wk->out.over_limit) {
                plan_error(&e, GRPC_RESOURCE_EXHAUSTED,
                           "response exceeds server.max_message_bytes (%llu): stopped while "
                           "writing it (%zu entities x %u features); ask for fewer entities or "
                           "features",
                           (unsigned long long)rpc_state.options.max_response_bytes, plan.n,
                           plan.ncolumns);
            } else {
                plan_error(&e, GRPC_RESOURCE_EXHAUSTED, "out of memory encoding the response");
            }
        } else if (wk->out.len > rpc_state.options.max_response_bytes) {
            plan_error(&e, GRPC_RESOURCE_EXHAUSTED,
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
