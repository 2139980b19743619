/*
 * The views' metrics: table sizes and snapshot state from the catalog, and the RPC handlers'
 * per-view counters (lookups, not found, staleness, default fallbacks per feature).
 *
 * The text format wants each family's samples together, so the views are summarized once and
 * each family then loops over them.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>

#include "store/catalog.h"
#include "store/rcu.h"
#include "store/schema.h"
#include "common/clock.h"

static const struct stats_metric_def *_def(enum stats_metric_id id) {
    return &stats_metric_defs[id];
}

/*
 * fsd_default_fallbacks_total: every feature with a default (the only ones that fall back),
 * zeros included so rate() has a starting point, plus any feature whose default a reload
 * removed but which has counted before. Schemas are read inside one RCU read section.
 */
static void _write_fallbacks(struct stats_writer *w, struct store_catalog *catalog) {
    const struct stats_metric_def *def = _def(STATS_M_FALLBACKS);
    stats_write_family(w, def);
    uint64_t *counts = NULL;
    size_t cap = 0;
    store_read_lock();
    size_t n = store_catalog_count(catalog);
    for (size_t i = 0; i < n; i++) {
        struct store_view *view = store_catalog_at(catalog, i);
        if (view == NULL) {
            break;
        }
        const struct store_schema *schema = store_view_schema(view);
        size_t need = (size_t)schema->nfeatures * RPC_FALLBACK_REASONS;
        if (need > cap) {
            uint64_t *grown = realloc(counts, need * sizeof(*counts));
            if (grown == NULL) {
                w->buf->failed = true;
                break;
            }
            counts = grown;
            cap = need;
        }
        uint64_t lookups, not_found;
        struct rpc_histogram_totals staleness;
        if (rpc_stats_view(store_view_index(view), schema->nfeatures, &lookups, &not_found,
                           &staleness, counts) != 0) {
            continue;
        }
        for (uint32_t f = 0; f < schema->nfeatures; f++) {
            const uint64_t *c = &counts[(size_t)f * RPC_FALLBACK_REASONS];
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
                stats_write_count(w, def, labels, c[r]);
            }
        }
    }
    store_read_unlock();
    free(counts);
}

void stats_collect_store(struct stats_writer *w, void *ctx) {
    struct store_catalog *catalog = ctx;
    struct stats_view_summary *views;
    long n = stats_views_summarize(catalog, &views);
    if (n < 0) {
        w->buf->failed = true;
        return;
    }
    int64_t now_us = clock_wall_us();

    bool ready = true;
    for (long i = 0; i < n; i++) {
        ready = ready && views[i].ready;
    }
    stats_write_count(w, _def(STATS_M_READY), NULL, ready ? 1 : 0);

    /* Families with one sample per view, in declaration order. */
    for (int id = STATS_M_VIEW_READY; id <= STATS_M_VIEW_NOT_FOUND; id++) {
        const struct stats_metric_def *def = _def((enum stats_metric_id)id);
        stats_write_family(w, def);
        for (long i = 0; i < n; i++) {
            const struct stats_view_summary *v = &views[i];
            const char *labels[] = {v->name};
            switch ((enum stats_metric_id)id) {
            case STATS_M_VIEW_READY:
                stats_write_count(w, def, labels, v->ready ? 1 : 0);
                break;
            case STATS_M_VIEW_ROWS:
                stats_write_count(w, def, labels, v->table.rows);
                break;
            case STATS_M_VIEW_TOMBSTONES:
                stats_write_count(w, def, labels, v->table.tombstones);
                break;
            case STATS_M_VIEW_MEMORY:
                stats_write_count(w, def, labels, v->table.memory_bytes);
                break;
            case STATS_M_VIEW_DEAD_BYTES:
                stats_write_count(w, def, labels, v->table.dead_bytes);
                break;
            case STATS_M_VIEW_VERSION:
                stats_write_count(w, def, labels, v->version);
                break;
            case STATS_M_VIEW_LAST_LOAD:
                /* Absent before the first load: 0 would read as "loaded in 1970". */
                if (v->version > 0) {
                    stats_write_value(w, def, labels, (double)v->loaded_at_us / 1e6);
                }
                break;
            case STATS_M_VIEW_SINCE_LOAD:
                /*
                 * Absent, not NaN, before the first load: NaN compares false, so a
                 * "stale view" alert on it would silently never fire; fsd_view_ready == 0
                 * covers a view that never loaded.
                 */
                if (v->version > 0) {
                    stats_write_value(w, def, labels, (double)(now_us - v->loaded_at_us) / 1e6);
                }
                break;
            case STATS_M_VIEW_TTL:
                stats_write_value(w, def, labels, (double)v->ttl_us / 1e6);
                break;
            case STATS_M_VIEW_REFRESH:
                stats_write_value(w, def, labels, (double)v->refresh_interval_us / 1e6);
                break;
            case STATS_M_VIEW_LOOKUPS:
                stats_write_count(w, def, labels, v->lookups);
                break;
            case STATS_M_VIEW_NOT_FOUND:
                stats_write_count(w, def, labels, v->not_found);
                break;
            default:
                break;
            }
        }
    }

    const struct stats_metric_def *staleness = _def(STATS_M_STALENESS);
    stats_write_family(w, staleness);
    for (long i = 0; i < n; i++) {
        const char *labels[] = {views[i].name};
        stats_write_histogram(w, staleness, labels, rpc_staleness_bounds_s, RPC_STALENESS_BUCKETS,
                              views[i].staleness.buckets, views[i].staleness.sum);
    }
    free(views);

    _write_fallbacks(w, catalog);
}
