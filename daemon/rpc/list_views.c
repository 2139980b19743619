/*
 * ListViews: every view's schema and current snapshot, and the feature services. Small and
 * rare, so it builds protobuf-c structs in the worker's arena and packs them.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "fsd/v1/feature_service.pb-c.h"
#include "daemon/grpc/grpc.h"
#include "materializer/snapshot/snapshot.h"
#include "rpc_internal.h"
#include "store/catalog.h"
#include "store/rcu.h"
#include "store/table.h"

static const char *const default_kind_names[] = {
    [STORE_DEFAULT_NONE] = "none",
    [STORE_DEFAULT_LITERAL] = "literal",
    [STORE_DEFAULT_ZERO] = "zero",
    [STORE_DEFAULT_MEAN] = "mean",
};

/* Appends to buf[*used..cap), keeping it terminated; output past the end is dropped. */
static void _append(char *buf, size_t cap, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void _append(char *buf, size_t cap, size_t *used, const char *fmt, ...) {
    if (*used >= cap) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *used, cap - *used, fmt, ap);
    va_end(ap);
    if (n > 0) {
        *used += (size_t)n < cap - *used ? (size_t)n : cap - *used - 1;
    }
}

/* A value as text for people: numbers exactly, strings as they are, lists in brackets. */
static void _format_value(const struct store_value *v, char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = '\0';
    switch (v->type) {
    case STORE_TYPE_INT32:
        _append(buf, cap, &used, "%" PRId32, v->i32);
        return;
    case STORE_TYPE_INT64:
    case STORE_TYPE_TIMESTAMP:
        _append(buf, cap, &used, "%" PRId64, v->i64);
        return;
    case STORE_TYPE_FLOAT:
        _append(buf, cap, &used, "%.9g", (double)v->f32);
        return;
    case STORE_TYPE_DOUBLE:
        _append(buf, cap, &used, "%.17g", v->f64);
        return;
    case STORE_TYPE_BOOL:
        _append(buf, cap, &used, "%s", v->b ? "true" : "false");
        return;
    case STORE_TYPE_STRING:
        _append(buf, cap, &used, "%.*s", (int)v->var.bytes, (const char *)v->var.data);
        return;
    case STORE_TYPE_BYTES:
        _append(buf, cap, &used, "(%" PRIu32 " bytes)", v->var.bytes);
        return;
    default: /* lists */
        _append(buf, cap, &used, "[");
        for (uint32_t i = 0; i < v->var.count && used + 1 < cap; i++) {
            struct store_value element = store_list_element(v, i);
            char text[64];
            _format_value(&element, text, sizeof text);
            _append(buf, cap, &used, "%s%s", i ? ", " : "", text);
        }
        _append(buf, cap, &used, "]");
        return;
    }
}

static char *_arena_strdup(struct arena *a, const char *s) {
    size_t n = strlen(s) + 1;
    char *copy = arena_alloc(a, n);
    if (copy != NULL) {
        memcpy(copy, s, n);
    }
    return copy;
}

static Fsd__V1__ViewInfo *_view_info(struct arena *a, struct store_view *view) {
    const struct store_schema *schema = store_view_schema(view);
    struct store_table *table = store_view_table(view);
    Fsd__V1__ViewInfo *info = arena_alloc(a, sizeof(*info));
    Fsd__V1__JoinKeyInfo *keys = arena_alloc(a, schema->nkeys * sizeof(*keys));
    Fsd__V1__JoinKeyInfo **key_ptrs = arena_alloc(a, schema->nkeys * sizeof(*key_ptrs));
    Fsd__V1__FeatureInfo *features = arena_alloc(a, (schema->nfeatures + 1) * sizeof(*features));
    Fsd__V1__FeatureInfo **feature_ptrs =
        arena_alloc(a, (schema->nfeatures + 1) * sizeof(*feature_ptrs));
    if (info == NULL || keys == NULL || key_ptrs == NULL || features == NULL ||
        feature_ptrs == NULL) {
        return NULL;
    }
    fsd__v1__view_info__init(info);
    info->name = schema->view;
    info->ttl_seconds = schema->ttl_us / 1000000;
    for (uint32_t k = 0; k < schema->nkeys; k++) {
        fsd__v1__join_key_info__init(&keys[k]);
        keys[k].name = schema->keys[k].name;
        keys[k].type = schema->keys[k].type == STORE_KEY_INT64 ? FSD__V1__KEY_TYPE__KEY_INT64
                                                               : FSD__V1__KEY_TYPE__KEY_STRING;
        key_ptrs[k] = &keys[k];
    }
    info->n_join_keys = schema->nkeys;
    info->join_keys = key_ptrs;
    for (uint32_t f = 0; f < schema->nfeatures; f++) {
        const struct store_feature *feature = &schema->features[f];
        fsd__v1__feature_info__init(&features[f]);
        features[f].name = feature->name;
        features[f].type = (Fsd__V1__FeatureType)(feature->type + 1);
        features[f].default_kind = (char *)default_kind_names[feature->default_kind];
        struct store_value value;
        if (store_table_default(table, f, &value)) {
            char text[1024];
            _format_value(&value, text, sizeof text);
            features[f].default_value = _arena_strdup(a, text);
            if (features[f].default_value == NULL) {
                return NULL;
            }
        }
        feature_ptrs[f] = &features[f];
    }
    info->n_features = schema->nfeatures;
    info->features = feature_ptrs;
    struct store_table_stats stats;
    store_table_stats(table, &stats);
    info->snapshot_version = store_view_version(view);
    info->rows = stats.rows;
    info->memory_bytes = stats.memory_bytes;
    info->last_load_time_us = store_view_loaded_at_us(view);
    char position[STORE_STREAM_POSITION_LEN];
    if (store_view_stream_position(view, position, sizeof position)) {
        info->snapshot_stream_position = _arena_strdup(a, position);
        if (info->snapshot_stream_position == NULL) {
            return NULL;
        }
    }
    struct mat_view_status *status = arena_alloc(a, sizeof(*status));
    if (status != NULL && mat_view_status(schema->view, status) && status->has_source) {
        const struct mat_load_result *last = &status->last;
        info->source = _arena_strdup(a, last->source[0] ? last->source : status->last_ok.source);
        info->loading = status->loading;
        info->last_load_result = (char *)mat_outcome_name(last->outcome);
        info->last_error = _arena_strdup(a, last->error);
        info->loads_completed = status->loads_completed;
        info->loads_failed = status->loads_failed;
        info->rows_read = last->rows_read;
        info->rows_kept = last->rows_kept;
        info->rows_skipped = last->rows_skipped;
        info->load_duration_us = last->duration_us;
        /* INT64_MIN means none yet; the API says 0 */
        info->watermark_us =
            status->last_ok.watermark_us == INT64_MIN ? 0 : status->last_ok.watermark_us;
        info->max_event_time_us =
            status->last_ok.max_event_ts_us == INT64_MIN ? 0 : status->last_ok.max_event_ts_us;
        info->next_load_time_us = status->next_load_us;
        if (info->source == NULL || info->last_error == NULL) {
            return NULL;
        }
    }
    return info;
}

static Fsd__V1__FeatureServiceInfo *_service_info(struct arena *a, const struct fsd_config *config,
                                                  const struct config_service *service) {
    Fsd__V1__FeatureServiceInfo *info = arena_alloc(a, sizeof(*info));
    char **refs = arena_alloc(a, (service->nfeatures + 1) * sizeof(*refs));
    if (info == NULL || refs == NULL) {
        return NULL;
    }
    fsd__v1__feature_service_info__init(info);
    info->name = service->name;
    for (uint32_t i = 0; i < service->nfeatures; i++) {
        const struct store_schema *schema = config->views[service->features[i].view].schema;
        const char *feature = schema->features[service->features[i].feature].name;
        size_t len = strlen(schema->view) + 1 + strlen(feature) + 1;
        refs[i] = arena_alloc(a, len);
        if (refs[i] == NULL) {
            return NULL;
        }
        snprintf(refs[i], len, "%s:%s", schema->view, feature);
    }
    info->n_features = service->nfeatures;
    info->features = refs;
    return info;
}

void rpc_list_views(struct grpc_call *call, const uint8_t *msg, size_t len) {
    struct rpc_worker *wk = grpc_call_worker_context(call);
    if (wk == NULL) {
        grpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "worker has no memory for requests");
        return;
    }
    struct arena *a = &wk->arena;
    Fsd__V1__ListViewsRequest *req = fsd__v1__list_views_request__unpack(&a->protobuf, len, msg);
    if (req == NULL) {
        grpc_call_fail(call, GRPC_INVALID_ARGUMENT,
                       "malformed ListViewsRequest: not a valid protobuf message");
        arena_reset(a);
        return;
    }
    Fsd__V1__ListViewsResponse resp = FSD__V1__LIST_VIEWS_RESPONSE__INIT;
    bool ok = true;
    store_read_lock();
    const struct fsd_config *config = atomic_load_explicit(&rpc_state.config, memory_order_acquire);
    size_t nviews = store_catalog_count(rpc_state.catalog);
    resp.views = arena_alloc(a, (nviews + 1) * sizeof(*resp.views));
    resp.feature_services =
        arena_alloc(a, (config->nservices + 1) * sizeof(*resp.feature_services));
    ok = resp.views != NULL && resp.feature_services != NULL;
    for (size_t v = 0; ok && v < nviews; v++) {
        resp.views[v] = _view_info(a, store_catalog_at(rpc_state.catalog, v));
        ok = resp.views[v] != NULL;
        resp.n_views = v + 1;
    }
    for (size_t s = 0; ok && s < config->nservices; s++) {
        resp.feature_services[s] = _service_info(a, config, &config->services[s]);
        ok = resp.feature_services[s] != NULL;
        resp.n_feature_services = s + 1;
    }
    size_t size = ok ? fsd__v1__list_views_response__get_packed_size(&resp) : 0;
    uint8_t *out = ok ? arena_alloc(a, size + 1) : NULL;
    if (out != NULL) {
        fsd__v1__list_views_response__pack(&resp, out);
    }
    store_read_unlock();
    if (out == NULL) {
        grpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "out of memory listing views");
    } else {
        grpc_call_reply(call, out, size);
    }
    rpc_observe_duration(wk, RPC_LIST_VIEWS, call);
    arena_reset(a);
}
