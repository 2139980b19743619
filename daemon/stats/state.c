/*
 * What the stats port knows beyond metrics: the config summary the daemon gives it, and the
 * per-view summaries
 * /status, the page and /readyz are rendered from: the store's tables, the handlers'
 * counters and what the materializer last saw of each view's loads.
 */
#include "internal.h"

#include "common/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/grpc/grpc.h"
#include "materializer/snapshot/snapshot.h"
#include "common/log.h"
#include "store/catalog.h"
#include "store/rcu.h"
#include "store/schema.h"
#include "common/clock.h"

struct stats_state stats_state = {.lock = PTHREAD_MUTEX_INITIALIZER};

int stats_set_config_summary(const char *json, const char *grpc_address) {
    char *copy = strdup(json);
    if (copy == NULL) {
        return -1;
    }
    pthread_mutex_lock(&stats_state.lock);
    free(stats_state.config_json);
    stats_state.config_json = copy;
    snprintf(stats_state.grpc_address, sizeof stats_state.grpc_address, "%s", grpc_address);
    pthread_mutex_unlock(&stats_state.lock);
    return 0;
}

void stats_state_free(void) {
    pthread_mutex_lock(&stats_state.lock);
    free(stats_state.config_json);
    free(stats_state.token);
    stats_state.config_json = NULL;
    stats_state.token = NULL;
    stats_state.catalog = NULL;
    stats_state.port = 0;
    pthread_mutex_unlock(&stats_state.lock);
}

long stats_views_summarize(struct store_catalog *catalog, struct stats_view_summary **out) {
    *out = NULL;
    store_read_lock();
    size_t n = store_catalog_count(catalog);
    struct stats_view_summary *views = calloc(n ? n : 1, sizeof(*views));
    uint64_t *fallbacks = NULL;
    size_t fallbacks_cap = 0;
    bool failed = views == NULL;
    for (size_t i = 0; i < n && !failed; i++) {
        struct store_view *view = store_catalog_at(catalog, i);
        if (view == NULL) {
            n = i;
            break;
        }
        struct stats_view_summary *s = &views[i];
        const struct store_schema *schema = store_view_schema(view);
        snprintf(s->name, sizeof s->name, "%s", schema->view);
        s->index = store_view_index(view);
        s->nfeatures = schema->nfeatures;
        s->ttl_us = schema->ttl_us;
        store_table_stats(store_view_table(view), &s->table);
        s->version = store_view_version(view);
        s->loaded_at_us = s->version > 0 ? store_view_loaded_at_us(view) : 0;
        size_t need = (size_t)s->nfeatures * RPC_FALLBACK_REASONS;
        if (need > fallbacks_cap) {
            uint64_t *grown = realloc(fallbacks, need * sizeof(*fallbacks));
            if (grown == NULL) {
                failed = true;
                break;
            }
            fallbacks = grown;
            fallbacks_cap = need;
        }
        if (rpc_stats_view(s->index, s->nfeatures, &s->lookups, &s->not_found, &s->staleness,
                           fallbacks) == 0) {
            for (size_t k = 0; k < need; k++) {
                s->fallbacks[k % RPC_FALLBACK_REASONS] += fallbacks[k];
            }
        }
    }
    store_read_unlock();
    free(fallbacks);
    if (failed) {
        free(views);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        struct stats_view_summary *s = &views[i];
        struct mat_view_status st;
        s->known = mat_view_status(s->name, &st);
        if (s->known) {
            s->has_source = st.has_source;
            snprintf(s->source_type, sizeof s->source_type, "%s", st.source_type);
            s->refresh_interval_us = st.refresh_interval_us;
            s->load_reported = st.last.outcome != MAT_NEVER_LOADED;
            s->load_ok = st.last.outcome == MAT_LOADED || st.last.outcome == MAT_LOADED_INCREMENTAL;
            s->load_at_us = st.last_load_end_us;
            snprintf(s->load_error, sizeof s->load_error, "%s", s->load_ok ? "" : st.last.error);
        }
        /* As mat_view_ready(), from the copy: a view the materializer does not know yet (a
         * reload added it) does not hold readiness back. */
        s->ready = !s->known || !s->has_source || s->version > 0;
    }
    *out = views;
    return (long)n;
}

double stats_staleness_quantile(const uint64_t *cumulative, double q) {
    uint64_t count = cumulative[RPC_STALENESS_BUCKETS];
    if (count == 0) {
        return NAN;
    }
    double rank = q * (double)count;
    for (size_t b = 0; b < RPC_STALENESS_BUCKETS; b++) {
        if ((double)cumulative[b] >= rank) {
            double lower = b == 0 ? 0 : rpc_staleness_bounds_s[b - 1];
            uint64_t below = b == 0 ? 0 : cumulative[b - 1];
            uint64_t in = cumulative[b] - below;
            double frac = in > 0 ? (rank - (double)below) / (double)in : 1.0;
            return lower + (rpc_staleness_bounds_s[b] - lower) * frac;
        }
    }
    return rpc_staleness_bounds_s[RPC_STALENESS_BUCKETS - 1];
}

/* ---- formatting ------------------------------------------------------------------------------ */

void stats_format_duration(double seconds, char *buf, size_t len) {
    if (isnan(seconds)) {
        snprintf(buf, len, "-");
    } else if (seconds < 1) {
        snprintf(buf, len, "%.0fms", seconds * 1000);
    } else if (seconds < 60) {
        snprintf(buf, len, "%.1fs", seconds);
    } else if (seconds < 3600) {
        snprintf(buf, len, "%.1fm", seconds / 60);
    } else if (seconds < 86400 * 2) {
        snprintf(buf, len, "%.1fh", seconds / 3600);
    } else {
        snprintf(buf, len, "%.1fd", seconds / 86400);
    }
}
