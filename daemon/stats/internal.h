#pragma once
/* Shared by the files of daemon/stats; not for other modules (they use stats.h). */
#include "stats.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/metrics.h"
#include "materializer/snapshot/snapshot.h"
#include "daemon/rpc/rpc_stats.h"
#include "store/table.h"

/* Text for an HTML element or attribute: & < > " ' escaped. */
void stats_html(struct buf *b, const char *s);

/* ---- what the stats port copies from the config (state.c) ------------------------------- */

/*
 * Guarded by `lock`: setup, teardown and reload write the config summary; the stats thread
 * reads it. The rest is written by setup before the thread starts and read-only afterwards.
 */
struct stats_state {
    pthread_mutex_t lock;
    char *config_json; /* the config summary object for /status (stats_set_config_summary) */
    char grpc_address[300];

    struct store_catalog *catalog;
    char *token; /* NULL when off */
    char bind[256];
    uint16_t port;
    int64_t started_at_us; /* wall clock when the process started */
};

extern struct stats_state stats_state;

void stats_state_free(void);

/* The stats port's own metrics collector (server.c). */
void stats_collect_http(struct metric_writer *w, void *ctx);

/* ---- per-view summaries shared by /status, the page, /readyz and the window ---------------- */

struct stats_view_summary {
    char name[STORE_MAX_NAME + 1];
    uint32_t index; /* store_view_index */
    uint32_t nfeatures;
    bool ready;
    bool known;           /* the materializer knows the view (a reload may not have told it) */
    bool has_source;      /* loaded from a source, not only pushed and streamed */
    char source_type[16]; /* "none", "parquet", "postgres"; "" when not known */
    int64_t refresh_interval_us;
    int64_t ttl_us;
    struct store_table_stats table;
    uint64_t version;
    int64_t loaded_at_us; /* 0 before the first load */
    uint64_t lookups;
    uint64_t not_found;
    uint64_t fallbacks[RPC_FALLBACK_REASONS]; /* summed over the view's features */
    struct rpc_histogram_totals staleness;
    bool load_reported;
    bool load_ok;
    int64_t load_at_us;
    char load_error[MAT_ERROR_LEN];
};

/*
 * Summarizes every view of the catalog into *out (malloc'd; the caller frees it). Returns
 * the count, or -1 when out of memory. Stats thread (RCU online); takes the stats lock.
 */
long stats_views_summarize(struct store_catalog *catalog, struct stats_view_summary **out);

/*
 * The q-quantile (0..1) of a cumulative staleness histogram, interpolated within its bucket
 * as Prometheus' histogram_quantile() does; NaN when it holds no observations. Observations
 * above the last bound report the last bound.
 */
double stats_staleness_quantile(const uint64_t *cumulative, double q);

/* ---- the recent window (status.c) --------------------------------------------------------- */

/* What changed over the last STATS_WINDOW_S seconds for one view. */
struct stats_window {
    double seconds; /* 0 when no sample is old enough yet (then the totals stand in) */
    uint64_t lookups;
    uint64_t not_found;
    uint64_t fallbacks;
    uint64_t staleness[RPC_STALENESS_BUCKETS + 1]; /* cumulative */
};

/* Takes a sample of every view (the tick timer). Stats thread. */
void stats_window_tick(struct store_catalog *catalog);
/* The window for `view` given its current totals. Stats thread. */
void stats_window_get(const struct stats_view_summary *view, struct stats_window *out);
void stats_window_free(void);

/* ---- renderers ----------------------------------------------------------------------------- */

/* /status JSON into `buf`. Stats thread. */
void stats_render_status(struct buf *buf, const struct stats_view_summary *views, size_t nviews);
/* The HTML page into `buf`. Stats thread. */
void stats_render_page(struct buf *buf, const struct stats_view_summary *views, size_t nviews);

/* Formatting helpers shared by the renderers. */
void stats_format_duration(double seconds, char *buf, size_t len); /* "3.2s", "12m", "5h" */
