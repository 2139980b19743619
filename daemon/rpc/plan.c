/* A lookup's plan (plan.h): refs to columns, key columns to encoded keys, one batch per view. */
#include "plan.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "rpc_internal.h"
#include "store/catalog.h"
#include "store/key.h"
#include "store/row.h"
#include "store/table.h"

int plan_error(struct plan_error *e, enum grpc_code code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    e->code = code;
    e->feast_class = NULL;
    return -1;
}

int plan_error_feast(struct plan_error *e, const char *feast_class) {
    e->feast_class = feast_class;
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
                       struct plan_error *e) {
    uint32_t v = 0;
    while (v < p->nviews && p->views[v].view != view) {
        v++;
    }
    if (v == p->nviews) {
        p->views = _grow(a, p->views, p->nviews, &p->views_cap, sizeof(*p->views));
        if (p->views == NULL) {
            return plan_error(e, GRPC_RESOURCE_EXHAUSTED, "out of memory planning the request");
        }
        struct plan_view *vp = &p->views[p->nviews++];
        memset(vp, 0, sizeof(*vp));
        vp->view = view;
        vp->schema = store_view_schema(view);
        vp->table = store_view_table(view);
        vp->planned = arena_alloc(a, vp->schema->nfeatures ? vp->schema->nfeatures : 1);
        if (vp->planned == NULL) {
            return plan_error(e, GRPC_RESOURCE_EXHAUSTED, "out of memory planning the request");
        }
        memset(vp->planned, 0, vp->schema->nfeatures);
    }
    if (p->views[v].planned[feature]) {
        return 0; /* asked for twice (a ref and a view:*, a service and a ref): served once */
    }
    p->views[v].planned[feature] = 1;
    p->columns = _grow(a, p->columns, p->ncolumns, &p->columns_cap, sizeof(*p->columns));
    if (p->columns == NULL) {
        return plan_error(e, GRPC_RESOURCE_EXHAUSTED, "out of memory planning the request");
    }
    p->columns[p->ncolumns++] = (struct plan_column){v, feature};
    return 0;
}

int plan_add_ref(struct arena *a, struct plan *p, const char *ref, struct plan_error *e) {
    const char *colon = strchr(ref, ':');
    if (colon == NULL || colon == ref || colon[1] == '\0') {
        return plan_error(e, GRPC_INVALID_ARGUMENT,
                          "feature ref \"%s\" is not of the form view:feature or view:*", ref);
    }
    char view_name[CONFIG_MAX_NAME + 1];
    size_t view_len = (size_t)(colon - ref);
    if (view_len > CONFIG_MAX_NAME) {
        plan_error(e, GRPC_INVALID_ARGUMENT, "unknown view \"%.*s\"", 64, ref);
        return plan_error_feast(e, "FeatureViewNotFoundException");
    }
    memcpy(view_name, ref, view_len);
    view_name[view_len] = '\0';
    struct store_view *view = store_catalog_find(rpc_state.catalog, view_name);
    if (view == NULL) {
        plan_error(e, GRPC_INVALID_ARGUMENT, "unknown view \"%s\" in feature ref \"%s\"", view_name,
                   ref);
        return plan_error_feast(e, "FeatureViewNotFoundException");
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
        return plan_error(e, GRPC_INVALID_ARGUMENT, "view %s has no feature \"%s\"", view_name,
                          feature);
    }
    return _add_column(a, p, view, (uint32_t)f, e);
}

int plan_add_service(struct arena *a, struct plan *p, const struct fsd_config *config,
                     const char *name, struct plan_error *e) {
    const struct config_service *service = config_find_service(config, name);
    if (service == NULL) {
        plan_error(e, GRPC_NOT_FOUND, "unknown feature service \"%s\"", name);
        return plan_error_feast(e, "FeatureServiceNotFoundException");
    }
    for (uint32_t i = 0; i < service->nfeatures; i++) {
        const struct config_feature_ref *ref = &service->features[i];
        const char *view_name = config->views[ref->view].schema->view;
        struct store_view *view = store_catalog_find(rpc_state.catalog, view_name);
        if (view == NULL) {
            return plan_error(e, GRPC_UNAVAILABLE, "feature service %s: view %s is not loaded",
                              name, view_name);
        }
        if (_add_column(a, p, view, ref->feature, e) != 0) {
            return -1;
        }
    }
    return 0;
}

int plan_set_keys(struct plan *p, const struct plan_key_column *keys, size_t nkeys,
                  uint32_t max_batch, struct plan_error *e) {
    p->n = 0;
    p->keys = keys;
    p->nkeys = nkeys;
    if (nkeys > PLAN_MAX_KEY_COLUMNS) {
        return plan_error(e, GRPC_INVALID_ARGUMENT, "%zu key columns; at most %d are taken", nkeys,
                          PLAN_MAX_KEY_COLUMNS);
    }
    for (size_t k = 0; k < nkeys; k++) {
        for (size_t j = 0; j < k; j++) {
            if (strcmp(keys[j].name, keys[k].name) == 0) {
                return plan_error(e, GRPC_INVALID_ARGUMENT, "key column %s appears twice",
                                  keys[k].name);
            }
        }
        if (k > 0 && keys[k].n != p->n) {
            return plan_error(e, GRPC_INVALID_ARGUMENT,
                              "key columns differ in length: %s has %zu entities, %s has %zu",
                              keys[0].name, p->n, keys[k].name, keys[k].n);
        }
        p->n = keys[k].n;
    }
    if (p->n > max_batch) {
        return plan_error(e, GRPC_INVALID_ARGUMENT,
                          "batch of %zu entities exceeds the limit of %u (server.max_batch)", p->n,
                          max_batch);
    }
    return 0;
}

/*
 * A view with a source serves nothing until its first snapshot: answering NOT_FOUND (or the
 * defaults) for every entity meanwhile would pass for data. So a request touching one is
 * refused with UNAVAILABLE, which clients retry, unless the view has serve_before_ready.
 * The config is searched only while a view's version is 0.
 */
int plan_check_ready(const struct plan *p, const struct fsd_config *config, struct plan_error *e) {
    for (uint32_t v = 0; v < p->nviews; v++) {
        if (store_view_version(p->views[v].view) > 0) {
            continue;
        }
        const struct config_view *cv = config_find_view(config, p->views[v].schema->view);
        if (cv != NULL && cv->snapshot.source.type != MAT_SOURCE_NONE &&
            !cv->snapshot.serve_before_ready) {
            return plan_error(e, GRPC_UNAVAILABLE,
                              "view %s is loading its first snapshot (from its %s source); retry "
                              "later, or set serve_before_ready: true on the view to be answered "
                              "before it",
                              cv->schema->view, mat_source_type_name(cv->snapshot.source.type));
        }
    }
    return 0;
}

/* Finds the view's join key columns and encodes its N entity keys. */
static int _encode_view_keys(struct arena *a, const struct plan *p, struct plan_view *vp,
                             struct plan_error *e) {
    const struct store_schema *schema = vp->schema;
    const struct plan_key_column *cols[STORE_MAX_JOIN_KEYS];
    size_t n = p->n, key_bytes = 0;
    for (uint32_t k = 0; k < schema->nkeys; k++) {
        const struct store_join_key *jk = &schema->keys[k];
        const struct plan_key_column *col = NULL;
        for (size_t j = 0; j < p->nkeys && col == NULL; j++) {
            if (strcmp(p->keys[j].name, jk->name) == 0) {
                col = &p->keys[j];
            }
        }
        if (col == NULL) {
            return plan_error(e, GRPC_INVALID_ARGUMENT,
                              "view %s needs join key %s, which the request does not carry",
                              schema->view, jk->name);
        }
        bool is_int = jk->type == STORE_KEY_INT64;
        if (n > 0 && (is_int ? col->i64 == NULL : col->str == NULL)) {
            return plan_error(e, GRPC_INVALID_ARGUMENT,
                              "join key %s of view %s is %s, got %s values", jk->name, schema->view,
                              is_int ? "int64" : "string", is_int ? "string" : "int64");
        }
        cols[k] = col;
        if (is_int) {
            key_bytes += 8 * n;
        } else {
            for (size_t i = 0; i < n; i++) {
                key_bytes += col->str[i].len + 5; /* + varint length */
            }
        }
    }
    uint8_t *buf = arena_alloc(a, key_bytes + 1);
    vp->keys = arena_alloc(a, (n + 1) * sizeof(*vp->keys));
    vp->rows = arena_alloc(a, (n + 1) * sizeof(*vp->rows));
    if (buf == NULL || vp->keys == NULL || vp->rows == NULL) {
        return plan_error(e, GRPC_RESOURCE_EXHAUSTED, "out of memory encoding keys");
    }
    struct store_key_part parts[STORE_MAX_JOIN_KEYS];
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        for (uint32_t k = 0; k < schema->nkeys; k++) {
            parts[k].type = schema->keys[k].type;
            if (parts[k].type == STORE_KEY_INT64) {
                parts[k].i64 = cols[k]->i64[i];
            } else {
                parts[k].str = (const char *)cols[k]->str[i].data;
                parts[k].str_len = (uint32_t)cols[k]->str[i].len;
            }
        }
        char err[256];
        int len = store_key_encode(schema, parts, buf + used, key_bytes - used, err, sizeof err);
        if (len < 0) {
            return plan_error(e, GRPC_INVALID_ARGUMENT, "entity %zu: %s", i, err);
        }
        vp->keys[i] = (struct store_key){buf + used, (uint32_t)len,
                                         store_key_hash(buf + used, (uint32_t)len)};
        used += (size_t)len;
    }
    return 0;
}

int plan_encode_keys(struct arena *a, struct plan *p, struct plan_error *e) {
    for (uint32_t v = 0; v < p->nviews; v++) {
        if (_encode_view_keys(a, p, &p->views[v], e) != 0) {
            return -1;
        }
    }
    return 0;
}

void plan_lookup(struct plan *p) {
    for (uint32_t v = 0; v < p->nviews; v++) {
        store_table_get_batch(p->views[v].table, p->views[v].keys, p->n, p->views[v].rows);
    }
}

int64_t plan_age_us(int64_t now_us, int64_t event_ts_us) {
    int64_t age;
    if (__builtin_sub_overflow(now_us, event_ts_us, &age)) {
        return event_ts_us < 0 ? INT64_MAX : INT64_MIN;
    }
    return age;
}

enum rpc_fallback_reason plan_fallback_reason(enum store_status status) {
    return status == STORE_NOT_FOUND ? RPC_FALLBACK_NOT_FOUND
           : status == STORE_NULL    ? RPC_FALLBACK_NULL_VALUE
                                     : RPC_FALLBACK_OUTSIDE_MAX_AGE;
}

void plan_count_lookups(struct rpc_worker *wk, const struct plan *p, int64_t now_us,
                        struct rpc_view_counters **vc) {
    for (uint32_t v = 0; v < p->nviews; v++) {
        const struct plan_view *vp = &p->views[v];
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
                                      (double)plan_age_us(now_us, vp->rows[i]->event_ts_us) / 1e6);
            }
        }
        rpc_counter_add(&vc[v]->lookups, p->n);
        rpc_counter_add(&vc[v]->not_found, missing);
    }
}
