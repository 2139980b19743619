#include "rpc_stats.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rpc_internal.h"
#include "store/catalog.h"
#include "store/rcu.h"
#include "store/schema.h"

const struct metric_def rpc_metric_defs[RPC_M_COUNT] = {
    [RPC_M_REQUEST_DURATION] = {"fsd_request_duration_seconds", METRIC_HISTOGRAM, "method",
                                "Time from a request's HEADERS being read to its handler "
                                "finishing, by method."},
    [RPC_M_BATCH_SIZE] = {"fsd_batch_size", METRIC_HISTOGRAM, "",
                          "Entities per GetFeatures request that passed validation."},
    [RPC_M_BUDGET_EXCEEDED] = {"fsd_budget_exceeded_total", METRIC_COUNTER, "",
                               "GetFeatures requests failed with DEADLINE_EXCEEDED because their "
                               "latency budget was spent before the lookup started."},
    [RPC_M_VIEW_LOOKUPS] = {"fsd_view_lookups_total", METRIC_COUNTER, "view",
                            "Entities looked up in the view by GetFeatures."},
    [RPC_M_VIEW_NOT_FOUND] = {"fsd_view_not_found_total", METRIC_COUNTER, "view",
                              "Entities looked up in the view that had no row."},
    [RPC_M_STALENESS] = {"fsd_served_row_staleness_seconds", METRIC_HISTOGRAM, "view",
                         "Age (now minus event time) of each row GetFeatures found, rows past "
                         "the view's ttl included; one observation per entity and view."},
    [RPC_M_FALLBACKS] = {"fsd_default_fallbacks_total", METRIC_COUNTER, "view,feature,reason",
                         "Feature values served as the feature's default instead of a stored "
                         "value, by reason: not_found (no row), null_value (the row's value is "
                         "null), outside_max_age (the row is older than the view's ttl). "
                         "Features without a default are not counted."},
    [RPC_M_AUTH_FAILURES] = {"fsd_auth_failures_total", METRIC_COUNTER, "method,reason",
                             "Calls refused by authentication (server.auth.tokens_file), by "
                             "method and reason: missing, malformed or unknown_token "
                             "(UNAUTHENTICATED), role or view (PERMISSION_DENIED)."},
};

const double rpc_duration_bounds_s[RPC_DURATION_BUCKETS] = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
};
const double rpc_batch_bounds[RPC_BATCH_BUCKETS] = {
    1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 100000,
};
const double rpc_staleness_bounds_s[RPC_STALENESS_BUCKETS] = {
    1,
    10,
    60,
    300,
    900,
    3600,
    6 * 3600,
    24 * 3600,
    7 * 24 * 3600,
    30 * 24 * 3600,
    365 * 24 * 3600.0,
};
const char *const rpc_fallback_reason_names[RPC_FALLBACK_REASONS] = {
    [RPC_FALLBACK_NOT_FOUND] = "not_found",
    [RPC_FALLBACK_NULL_VALUE] = "null_value",
    [RPC_FALLBACK_OUTSIDE_MAX_AGE] = "outside_max_age",
};

/* Every worker's counters, kept until rpc_teardown() so a scrape never reads freed memory. */
static struct {
    pthread_mutex_t lock;
    struct rpc_worker_counters *workers[256];
    size_t count;
} registry = {.lock = PTHREAD_MUTEX_INITIALIZER};

struct rpc_worker_counters *rpc_counters_register(void) {
    struct rpc_worker_counters *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    pthread_mutex_lock(&registry.lock);
    if (registry.count == sizeof registry.workers / sizeof registry.workers[0]) {
        pthread_mutex_unlock(&registry.lock);
        free(c);
        return NULL;
    }
    registry.workers[registry.count++] = c;
    pthread_mutex_unlock(&registry.lock);
    return c;
}

void rpc_counters_free_all(void) {
    pthread_mutex_lock(&registry.lock);
    for (size_t i = 0; i < registry.count; i++) {
        for (size_t v = 0; v < RPC_MAX_VIEWS; v++) {
            free(atomic_load_explicit(&registry.workers[i]->views[v], memory_order_relaxed));
        }
        free(registry.workers[i]);
    }
    registry.count = 0;
    pthread_mutex_unlock(&registry.lock);
}

void rpc_histogram_observe(struct rpc_histogram *h, const double *bounds, size_t nbounds,
                           double value) {
    size_t b = 0;
    while (b < nbounds && value > bounds[b]) {
        b++;
    }
    rpc_counter_add(&h->buckets[b], 1);
    rpc_counter_add(&h->count, 1);
    rpc_counter_add(&h->sum_micro, value > 0 ? (uint64_t)(value * 1e6) : 0);
}

struct rpc_view_counters *rpc_worker_view_counters(struct rpc_worker_counters *w, uint32_t index,
                                                   uint32_t nfeatures) {
    if (index >= RPC_MAX_VIEWS) {
        return NULL;
    }
    struct rpc_view_counters *c = atomic_load_explicit(&w->views[index], memory_order_relaxed);
    if (c != NULL) {
        return c;
    }
    size_t n = (size_t)nfeatures * RPC_FALLBACK_REASONS;
    c = calloc(1, sizeof(*c) + n * sizeof(c->fallbacks[0]));
    if (c == NULL) {
        return NULL;
    }
    c->nfeatures = nfeatures;
    /* Release: a scrape that sees the pointer sees nfeatures. */
    atomic_store_explicit(&w->views[index], c, memory_order_release);
    return c;
}

static void _add_histogram(struct rpc_histogram_totals *out, const struct rpc_histogram *h,
                           size_t nbounds) {
    for (size_t b = 0; b <= nbounds; b++) {
        out->buckets[b] += atomic_load_explicit(&h->buckets[b], memory_order_relaxed);
    }
    out->count += atomic_load_explicit(&h->count, memory_order_relaxed);
    out->sum += (double)atomic_load_explicit(&h->sum_micro, memory_order_relaxed) / 1e6;
}

static void _cumulate(struct rpc_histogram_totals *out, size_t nbounds) {
    for (size_t b = 1; b <= nbounds; b++) {
        out->buckets[b] += out->buckets[b - 1];
    }
    /* count is read apart from the buckets; keep the +Inf bucket and count consistent */
    out->count = out->buckets[nbounds];
}

void rpc_stats_duration(enum rpc_method_id method, struct rpc_histogram_totals *out) {
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&registry.lock);
    for (size_t i = 0; i < registry.count; i++) {
        _add_histogram(out, &registry.workers[i]->duration[method], RPC_DURATION_BUCKETS);
    }
    pthread_mutex_unlock(&registry.lock);
    _cumulate(out, RPC_DURATION_BUCKETS);
}

void rpc_stats_batch(struct rpc_histogram_totals *out) {
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&registry.lock);
    for (size_t i = 0; i < registry.count; i++) {
        _add_histogram(out, &registry.workers[i]->batch, RPC_BATCH_BUCKETS);
    }
    pthread_mutex_unlock(&registry.lock);
    _cumulate(out, RPC_BATCH_BUCKETS);
}

uint64_t rpc_stats_budget_exceeded(void) {
    uint64_t total = 0;
    pthread_mutex_lock(&registry.lock);
    for (size_t i = 0; i < registry.count; i++) {
        total += atomic_load_explicit(&registry.workers[i]->budget_exceeded, memory_order_relaxed);
    }
    pthread_mutex_unlock(&registry.lock);
    return total;
}

uint64_t rpc_stats_auth_failures(enum rpc_method_id method, enum auth_failure failure) {
    uint64_t total = 0;
    pthread_mutex_lock(&registry.lock);
    for (size_t i = 0; i < registry.count; i++) {
        total += atomic_load_explicit(&registry.workers[i]->auth_failures[method][failure],
                                      memory_order_relaxed);
    }
    pthread_mutex_unlock(&registry.lock);
    return total;
}

int rpc_stats_view(uint32_t index, uint32_t nfeatures, uint64_t *lookups, uint64_t *not_found,
                   struct rpc_histogram_totals *staleness, uint64_t *fallbacks) {
    if (index >= RPC_MAX_VIEWS) {
        return -1;
    }
    *lookups = *not_found = 0;
    memset(staleness, 0, sizeof(*staleness));
    memset(fallbacks, 0, (size_t)nfeatures * RPC_FALLBACK_REASONS * sizeof(*fallbacks));
    pthread_mutex_lock(&registry.lock);
    for (size_t i = 0; i < registry.count; i++) {
        const struct rpc_view_counters *c =
            atomic_load_explicit(&registry.workers[i]->views[index], memory_order_acquire);
        if (c == NULL) {
            continue;
        }
        *lookups += atomic_load_explicit(&c->lookups, memory_order_relaxed);
        *not_found += atomic_load_explicit(&c->not_found, memory_order_relaxed);
        _add_histogram(staleness, &c->staleness, RPC_STALENESS_BUCKETS);
        uint32_t n = c->nfeatures < nfeatures ? c->nfeatures : nfeatures;
        for (size_t k = 0; k < (size_t)n * RPC_FALLBACK_REASONS; k++) {
            fallbacks[k] += atomic_load_explicit(&c->fallbacks[k], memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&registry.lock);
    _cumulate(staleness, RPC_STALENESS_BUCKETS);
    return 0;
}

/* ---- the collector ------------------------------------------------------------------------ */

/* One view's totals, summed over the workers. */
struct view_totals {
    const struct store_schema *schema;
    uint64_t lookups;
    uint64_t not_found;
    struct rpc_histogram_totals staleness;
    uint64_t *fallbacks; /* [feature * RPC_FALLBACK_REASONS + reason] */
};

/*
 * Per view: lookups, not found and staleness; per feature, fallbacks: every feature with a
 * default (the only ones that fall back), zeros included so rate() has a starting point,
 * plus any feature whose default a reload removed but which has counted before. The text
 * format wants a family's samples together, so the views are summed once (inside one RCU
 * read section, which keeps their schemas alive) and each family then loops over them.
 */
void rpc_collect_metrics(struct metric_writer *w, void *ctx) {
    struct store_catalog *catalog = ctx;
    for (int m = 0; m < RPC_METHOD_COUNT; m++) {
        struct rpc_histogram_totals t;
        rpc_stats_duration((enum rpc_method_id)m, &t);
        const char *labels[] = {rpc_method_name((enum rpc_method_id)m)};
        metrics_write_histogram(w, &rpc_metric_defs[RPC_M_REQUEST_DURATION], labels,
                                rpc_duration_bounds_s, RPC_DURATION_BUCKETS, t.buckets, t.sum);
    }
    struct rpc_histogram_totals batch;
    rpc_stats_batch(&batch);
    metrics_write_histogram(w, &rpc_metric_defs[RPC_M_BATCH_SIZE], NULL, rpc_batch_bounds,
                            RPC_BATCH_BUCKETS, batch.buckets, batch.sum);
    metrics_write_count(w, &rpc_metric_defs[RPC_M_BUDGET_EXCEEDED], NULL,
                        rpc_stats_budget_exceeded());
    /* Only the methods that need a token, and only while authentication is on: the family
     * is there (with zeros) exactly when refusals can happen. */
    for (int m = 0; auth_enabled() && m < RPC_METHOD_COUNT; m++) {
        if (m == RPC_HEALTH_CHECK) {
            continue;
        }
        for (int f = 0; f < AUTH_FAIL_COUNT; f++) {
            const char *labels[] = {rpc_method_name((enum rpc_method_id)m),
                                    auth_failure_name((enum auth_failure)f)};
            metrics_write_count(
                w, &rpc_metric_defs[RPC_M_AUTH_FAILURES], labels,
                rpc_stats_auth_failures((enum rpc_method_id)m, (enum auth_failure)f));
        }
    }
    if (catalog == NULL) {
        return;
    }

    store_read_lock();
    size_t n = store_catalog_count(catalog);
    struct view_totals *views = calloc(n ? n : 1, sizeof(*views));
    bool failed = views == NULL;
    size_t filled = 0; /* views whose fallbacks array was allocated */
    for (size_t i = 0; i < n && !failed; i++, filled++) {
        struct store_view *view = store_catalog_at(catalog, i);
        struct view_totals *v = &views[i];
        v->schema = store_view_schema(view);
        v->fallbacks =
            calloc((size_t)v->schema->nfeatures * RPC_FALLBACK_REASONS + 1, sizeof(*v->fallbacks));
        if (v->fallbacks == NULL) {
            failed = true;
            break;
        }
        rpc_stats_view(store_view_index(view), v->schema->nfeatures, &v->lookups, &v->not_found,
                       &v->staleness, v->fallbacks);
    }
    if (failed) {
        metrics_writer_fail(w);
        n = 0;
    }
    const struct metric_def *lookups = &rpc_metric_defs[RPC_M_VIEW_LOOKUPS];
    const struct metric_def *not_found = &rpc_metric_defs[RPC_M_VIEW_NOT_FOUND];
    const struct metric_def *staleness = &rpc_metric_defs[RPC_M_STALENESS];
    const struct metric_def *fallbacks = &rpc_metric_defs[RPC_M_FALLBACKS];
    metrics_write_family(w, lookups);
    for (size_t i = 0; i < n; i++) {
        metrics_write_count(w, lookups, (const char *[]){views[i].schema->view}, views[i].lookups);
    }
    metrics_write_family(w, not_found);
    for (size_t i = 0; i < n; i++) {
        metrics_write_count(w, not_found, (const char *[]){views[i].schema->view},
                            views[i].not_found);
    }
    metrics_write_family(w, staleness);
    for (size_t i = 0; i < n; i++) {
        metrics_write_histogram(w, staleness, (const char *[]){views[i].schema->view},
                                rpc_staleness_bounds_s, RPC_STALENESS_BUCKETS,
                                views[i].staleness.buckets, views[i].staleness.sum);
    }
    metrics_write_family(w, fallbacks);
    for (size_t i = 0; i < n; i++) {
        const struct store_schema *schema = views[i].schema;
        for (uint32_t f = 0; f < schema->nfeatures; f++) {
            const uint64_t *c = &views[i].fallbacks[(size_t)f * RPC_FALLBACK_REASONS];
            bool counted = false;
            for (int r = 0; r < RPC_FALLBACK_REASONS; r++) {
                counted = counted || c[r] > 0;
            }
            if (schema->features[f].default_kind == STORE_DEFAULT_NONE && !counted) {
                continue;
            }
            for (int r = 0; r < RPC_FALLBACK_REASONS; r++) {
                const char *labels[] = {schema->view, schema->features[f].name,
                                        rpc_fallback_reason_names[r]};
                metrics_write_count(w, fallbacks, labels, c[r]);
            }
        }
    }
    store_read_unlock();
    for (size_t i = 0; i < filled; i++) {
        free(views[i].fallbacks);
    }
    free(views);
}
