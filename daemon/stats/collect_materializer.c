/* Snapshot loads: what the materializer's scheduler last saw of each view. */
#include <math.h>

#include "internal.h"
#include "materializer/materializer.h"
#include "stats.h"
#include "store/catalog.h"
#include "store/rcu.h"
#include "store/schema.h"

static const struct stats_metric_def loads = {
    "fsd_materialization_loads_total", STATS_COUNTER, "view,result",
    "Snapshot loads finished, by view and result: ok (full or incremental) or failed (the "
    "source could not be read, or the data contract rejected the snapshot)."};
static const struct stats_metric_def failing = {
    "fsd_materialization_consecutive_failures", STATS_GAUGE, "view,reason",
    "Loads failed in a row since the last success (the live snapshot keeps serving), by the "
    "last one's reason: source (could not be read) or contract (rejected); see /status."};
static const struct stats_metric_def rows = {
    "fsd_materialization_last_rows", STATS_GAUGE, "view,kind",
    "Rows of the view's last finished load: read from the source, kept, skipped (future, "
    "expired or null key)."};
static const struct stats_metric_def duration = {"fsd_materialization_last_duration_seconds",
                                                 STATS_GAUGE, "view",
                                                 "How long the view's last finished load took."};
static const struct stats_metric_def loading = {"fsd_materialization_loading", STATS_GAUGE, "view",
                                                "1 while a load of the view runs."};
static const struct stats_metric_def newest = {
    "fsd_view_newest_event_timestamp_seconds", STATS_GAUGE, "view",
    "Newest event time loaded into the view by its last successful load (Unix time)."};

void stats_collect_materializer(struct stats_writer *w, void *ctx) {
    struct store_catalog *catalog = ctx;
    struct mat_view_status st[1];
    size_t n = store_catalog_count(catalog);
    const struct stats_metric_def *families[] = {&loads,    &failing, &rows,
                                                 &duration, &loading, &newest};
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
        stats_write_family(w, families[f]);
        for (size_t i = 0; i < n; i++) {
            store_read_lock();
            const char *name = store_view_schema(store_catalog_at(catalog, i))->view;
            bool known = mat_view_status(name, st) && st->has_source;
            store_read_unlock();
            if (!known) {
                continue;
            }
            const char *view = st->view;
            const struct mat_load_result *last = &st->last;
            if (families[f] == &loads) {
                stats_write_count(w, &loads, (const char *[]){view, "ok"}, st->loads_completed);
                stats_write_count(w, &loads, (const char *[]){view, "failed"}, st->loads_failed);
            } else if (families[f] == &failing) {
                bool rejected = last->outcome == MAT_REJECTED;
                stats_write_count(w, &failing, (const char *[]){view, "source"},
                                  rejected ? 0 : st->consecutive_failures);
                stats_write_count(w, &failing, (const char *[]){view, "contract"},
                                  rejected ? st->consecutive_failures : 0);
            } else if (families[f] == &rows && last->outcome != MAT_NEVER_LOADED) {
                stats_write_count(w, &rows, (const char *[]){view, "read"}, last->rows_read);
                stats_write_count(w, &rows, (const char *[]){view, "kept"}, last->rows_kept);
                stats_write_count(w, &rows, (const char *[]){view, "skipped"}, last->rows_skipped);
            } else if (families[f] == &duration && last->outcome != MAT_NEVER_LOADED) {
                stats_write_value(w, &duration, (const char *[]){view},
                                  (double)last->duration_us / 1e6);
            } else if (families[f] == &loading) {
                stats_write_count(w, &loading, (const char *[]){view}, st->loading);
            } else if (families[f] == &newest && st->last_ok.outcome != MAT_NEVER_LOADED &&
                       st->last_ok.max_event_ts_us != INT64_MIN) {
                stats_write_value(w, &newest, (const char *[]){view},
                                  (double)st->last_ok.max_event_ts_us / 1e6);
            }
        }
    }
}
