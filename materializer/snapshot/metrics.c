/*
 * The materializer's metrics: readiness, each view's refresh interval, and what the
 * scheduler last saw of each view's loads.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot_internal.h"
#include "snapshot.h"
#include "store/catalog.h"
#include "store/rcu.h"

const struct metric_def mat_metric_defs[MAT_M_COUNT] = {
    [MAT_M_READY] = {"fsd_ready", METRIC_GAUGE, "",
                     "1 when every view with a source has loaded its first snapshot (what "
                     "/readyz reports), else 0."},
    [MAT_M_VIEW_READY] = {"fsd_view_ready", METRIC_GAUGE, "view",
                          "1 when the view can serve: it has no source, or its first snapshot "
                          "has loaded."},
    [MAT_M_VIEW_REFRESH] = {"fsd_view_refresh_interval_seconds", METRIC_GAUGE, "view",
                            "Configured refresh_interval of the view's source; 0 = loaded on "
                            "demand or no source."},
    [MAT_M_LOADS] = {"fsd_materialization_loads_total", METRIC_COUNTER, "view,result",
                     "Snapshot loads finished, by view and result: ok (full or incremental) or "
                     "failed (the source could not be read, or the data contract rejected the "
                     "snapshot)."},
    [MAT_M_FAILING] = {"fsd_materialization_consecutive_failures", METRIC_GAUGE, "view,reason",
                       "Loads failed in a row since the last success (the live snapshot keeps "
                       "serving), by the last one's reason: source (could not be read) or "
                       "contract (rejected); see /status."},
    [MAT_M_LAST_ROWS] = {"fsd_materialization_last_rows", METRIC_GAUGE, "view,kind",
                         "Rows of the view's last finished load: read from the source, kept, "
                         "skipped (future, expired or null key)."},
    [MAT_M_LAST_DURATION] = {"fsd_materialization_last_duration_seconds", METRIC_GAUGE, "view",
                             "How long the view's last finished load took."},
    [MAT_M_LOADING] = {"fsd_materialization_loading", METRIC_GAUGE, "view",
                       "1 while a load of the view runs."},
    [MAT_M_NEWEST_EVENT_TIME] = {"fsd_view_newest_event_timestamp_seconds", METRIC_GAUGE, "view",
                                 "Newest event time loaded into the view by its last successful "
                                 "load (Unix time)."},
};

/* Per catalog view: its name, whether it is ready and its refresh interval. */
struct view_state {
    const char *name;
    bool ready;
    int64_t refresh_interval_us;
};

static const struct mat_view_status *_status_of(const struct mat_view_status *all, size_t n,
                                                const char *view) {
    for (size_t i = 0; i < n; i++) {
        if (strcmp(all[i].view, view) == 0) {
            return &all[i];
        }
    }
    return NULL;
}

static void _write_readiness(struct metric_writer *w, const struct mat_view_status *all, size_t n) {
    struct store_catalog *catalog = mat_catalog();
    size_t nviews = catalog != NULL ? store_catalog_count(catalog) : 0;
    struct view_state *views = calloc(nviews + 1, sizeof(*views));
    if (views == NULL) {
        metrics_writer_fail(w);
        return;
    }
    bool ready = true;
    store_read_lock();
    for (size_t i = 0; i < nviews; i++) {
        struct store_view *view = store_catalog_at(catalog, i);
        const struct mat_view_status *st = _status_of(all, n, store_view_name(view));
        views[i].name = store_view_name(view);
        views[i].ready = st == NULL || !st->has_source || store_view_version(view) > 0;
        views[i].refresh_interval_us = st != NULL ? st->refresh_interval_us : 0;
        ready = ready && views[i].ready;
    }
    store_read_unlock();
    metrics_write_count(w, &mat_metric_defs[MAT_M_READY], NULL, ready ? 1 : 0);
    metrics_write_family(w, &mat_metric_defs[MAT_M_VIEW_READY]);
    for (size_t i = 0; i < nviews; i++) {
        metrics_write_count(w, &mat_metric_defs[MAT_M_VIEW_READY], (const char *[]){views[i].name},
                            views[i].ready ? 1 : 0);
    }
    metrics_write_family(w, &mat_metric_defs[MAT_M_VIEW_REFRESH]);
    for (size_t i = 0; i < nviews; i++) {
        metrics_write_value(w, &mat_metric_defs[MAT_M_VIEW_REFRESH],
                            (const char *[]){views[i].name},
                            (double)views[i].refresh_interval_us / 1e6);
    }
    free(views);
}

static void _write_loads(struct metric_writer *w, enum mat_metric id,
                         const struct mat_view_status *st) {
    const struct metric_def *def = &mat_metric_defs[id];
    const char *view = st->view;
    const struct mat_load_result *last = &st->last;
    switch (id) {
    case MAT_M_LOADS:
        metrics_write_count(w, def, (const char *[]){view, "ok"}, st->loads_completed);
        metrics_write_count(w, def, (const char *[]){view, "failed"}, st->loads_failed);
        break;
    case MAT_M_FAILING: {
        bool rejected = last->outcome == MAT_REJECTED;
        metrics_write_count(w, def, (const char *[]){view, "source"},
                            rejected ? 0 : st->consecutive_failures);
        metrics_write_count(w, def, (const char *[]){view, "contract"},
                            rejected ? st->consecutive_failures : 0);
        break;
    }
    case MAT_M_LAST_ROWS:
        if (last->outcome != MAT_NEVER_LOADED) {
            metrics_write_count(w, def, (const char *[]){view, "read"}, last->rows_read);
            metrics_write_count(w, def, (const char *[]){view, "kept"}, last->rows_kept);
            metrics_write_count(w, def, (const char *[]){view, "skipped"}, last->rows_skipped);
        }
        break;
    case MAT_M_LAST_DURATION:
        if (last->outcome != MAT_NEVER_LOADED) {
            metrics_write_value(w, def, (const char *[]){view}, (double)last->duration_us / 1e6);
        }
        break;
    case MAT_M_LOADING:
        metrics_write_count(w, def, (const char *[]){view}, st->loading);
        break;
    case MAT_M_NEWEST_EVENT_TIME:
        if (st->last_ok.outcome != MAT_NEVER_LOADED && st->last_ok.max_event_ts_us != INT64_MIN) {
            metrics_write_value(w, def, (const char *[]){view},
                                (double)st->last_ok.max_event_ts_us / 1e6);
        }
        break;
    default:
        break;
    }
}

void mat_collect_metrics(struct metric_writer *w, void *ctx) {
    (void)ctx;
    size_t n;
    struct mat_view_status *all = mat_view_statuses(&n);
    if (all == NULL) {
        metrics_writer_fail(w);
        return;
    }
    _write_readiness(w, all, n);
    for (int id = MAT_M_LOADS; id < MAT_M_COUNT; id++) {
        metrics_write_family(w, &mat_metric_defs[id]);
        for (size_t i = 0; i < n; i++) {
            if (all[i].has_source) {
                _write_loads(w, (enum mat_metric)id, &all[i]);
            }
        }
    }
    free(all);
}
