#include "metrics.h"

#include <stdlib.h>

#include "catalog.h"
#include "common/clock.h"
#include "rcu.h"
#include "schema.h"
#include "table.h"

const struct metric_def store_metric_defs[STORE_M_COUNT] = {
    [STORE_M_VIEW_ROWS] = {"fsd_view_rows", METRIC_GAUGE, "view",
                           "Live rows (entities) in the view's current table, tombstones "
                           "excluded."},
    [STORE_M_VIEW_TOMBSTONES] = {"fsd_view_tombstones", METRIC_GAUGE, "view",
                                 "Deleted entities remembered so that older updates cannot "
                                 "bring them back."},
    [STORE_M_VIEW_MEMORY] = {"fsd_view_memory_bytes", METRIC_GAUGE, "view",
                             "Bytes held by the view's current table: rows, arenas, indexes "
                             "and the table itself."},
    [STORE_M_VIEW_DEAD_BYTES] = {"fsd_view_dead_bytes", METRIC_GAUGE, "view",
                                 "Snapshot arena bytes of rows since replaced by updates, freed "
                                 "with the snapshot."},
    [STORE_M_VIEW_VERSION] = {"fsd_view_snapshot_version", METRIC_GAUGE, "view",
                              "Version of the view's current snapshot: 0 before the first load, "
                              "then +1 per load."},
    [STORE_M_VIEW_LAST_LOAD] = {"fsd_view_last_load_timestamp_seconds", METRIC_GAUGE, "view",
                                "Unix time the load of the current snapshot started; absent "
                                "before the first load."},
    [STORE_M_VIEW_SINCE_LOAD] = {"fsd_view_seconds_since_last_load", METRIC_GAUGE, "view",
                                 "Seconds since the load of the current snapshot started; absent "
                                 "before the first load (fsd_view_ready is 0 then)."},
    [STORE_M_VIEW_TTL] = {"fsd_view_ttl_seconds", METRIC_GAUGE, "view",
                          "Rows older than this are served as OUTSIDE_MAX_AGE; 0 = never stale."},
};

struct view_sample {
    const char *name; /* the view's, which lives as long as the catalog */
    struct store_table_stats table;
    uint64_t version;
    int64_t loaded_at_us;
    int64_t ttl_us;
};

void store_collect_metrics(struct metric_writer *w, void *ctx) {
    struct store_catalog *catalog = ctx;
    store_read_lock();
    size_t n = store_catalog_count(catalog);
    struct view_sample *views = calloc(n ? n : 1, sizeof(*views));
    if (views == NULL) {
        store_read_unlock();
        metrics_writer_fail(w);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct store_view *view = store_catalog_at(catalog, i);
        struct view_sample *v = &views[i];
        v->name = store_view_name(view);
        store_table_stats(store_view_table(view), &v->table);
        v->version = store_view_version(view);
        v->loaded_at_us = store_view_loaded_at_us(view);
        v->ttl_us = store_view_schema(view)->ttl_us;
    }
    store_read_unlock();

    int64_t now_us = clock_wall_us();
    /* The text format wants each family's samples together: one family at a time. */
    for (int id = 0; id < STORE_M_COUNT; id++) {
        const struct metric_def *def = &store_metric_defs[id];
        metrics_write_family(w, def);
        for (size_t i = 0; i < n; i++) {
            const struct view_sample *v = &views[i];
            const char *labels[] = {v->name};
            switch ((enum store_metric)id) {
            case STORE_M_VIEW_ROWS:
                metrics_write_count(w, def, labels, v->table.rows);
                break;
            case STORE_M_VIEW_TOMBSTONES:
                metrics_write_count(w, def, labels, v->table.tombstones);
                break;
            case STORE_M_VIEW_MEMORY:
                metrics_write_count(w, def, labels, v->table.memory_bytes);
                break;
            case STORE_M_VIEW_DEAD_BYTES:
                metrics_write_count(w, def, labels, v->table.dead_bytes);
                break;
            case STORE_M_VIEW_VERSION:
                metrics_write_count(w, def, labels, v->version);
                break;
            case STORE_M_VIEW_LAST_LOAD:
                /* Absent before the first load: 0 would read as "loaded in 1970". */
                if (v->version > 0) {
                    metrics_write_value(w, def, labels, (double)v->loaded_at_us / 1e6);
                }
                break;
            case STORE_M_VIEW_SINCE_LOAD:
                /* Absent, not NaN, before the first load: NaN compares false, so a "stale
                 * view" alert on it would silently never fire; fsd_view_ready == 0 covers a
                 * view that never loaded. */
                if (v->version > 0) {
                    metrics_write_value(w, def, labels, (double)(now_us - v->loaded_at_us) / 1e6);
                }
                break;
            case STORE_M_VIEW_TTL:
                metrics_write_value(w, def, labels, (double)v->ttl_us / 1e6);
                break;
            case STORE_M_COUNT:
                break;
            }
        }
    }
    free(views);
}
