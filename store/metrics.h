#pragma once
/*
 * The views' metrics the store answers for: each view's table (rows, tombstones, memory) and
 * snapshot (version, when it was loaded), and its TTL. Declared once here; the daemon
 * registers store_collect_metrics with its catalog (the store has no setup of its own).
 */
#include "common/metrics.h"

enum store_metric {
    STORE_M_VIEW_ROWS,       /* fsd_view_rows{view} */
    STORE_M_VIEW_TOMBSTONES, /* fsd_view_tombstones{view} */
    STORE_M_VIEW_MEMORY,     /* fsd_view_memory_bytes{view} */
    STORE_M_VIEW_DEAD_BYTES, /* fsd_view_dead_bytes{view} */
    STORE_M_VIEW_VERSION,    /* fsd_view_snapshot_version{view} */
    STORE_M_VIEW_LAST_LOAD,  /* fsd_view_last_load_timestamp_seconds{view} */
    STORE_M_VIEW_SINCE_LOAD, /* fsd_view_seconds_since_last_load{view} */
    STORE_M_VIEW_TTL,        /* fsd_view_ttl_seconds{view} */
    STORE_M_COUNT,
};
extern const struct metric_def store_metric_defs[STORE_M_COUNT];

/*
 * The collector: `ctx` is the struct store_catalog. Reads every view inside one RCU read
 * section, so the calling thread must be RCU-online (the stats thread is).
 */
void store_collect_metrics(struct metric_writer *w, void *ctx);
