#pragma once
/*
 * The stats port: Prometheus metrics, health, readiness and a status page over HTTP/1.1,
 * served by libevent's evhttp on a control thread of its own (never a gRPC worker), so a slow
 * scrape or a slow browser can never delay a lookup.
 *
 *   GET /metrics ─▶ stats thread ─▶ collectors, in registration order ─▶ writer ─▶ text 0.0.4
 *                                    transport  grpc_server_stats, grpc_server_method_stats
 *                                    rpc        per-worker handler counters, summed (rpc_stats.h)
 *                                    store      views and their tables (RCU read section)
 *                                    sweeper    sweeper_reclaimed()
 *                                    process    /proc/self, jemalloc mallctl, build info
 *                                    ...        collectors later modules register
 *
 *   GET /healthz   200 "ok": the process is alive and the stats thread answers
 *   GET /readyz    200 once every view with a source has its first snapshot, else 503 and
 *                  the views still waiting, one per line
 *   GET /status    JSON: version, uptime, config summary, views, last errors   (token)
 *   GET /          self-contained HTML status page, refreshes itself            (token)
 *   other paths 404; other methods than GET and HEAD on a known path 405
 *
 * With server.stats_token set, /status and / answer 401 unless the request carries
 * "Authorization: Bearer <token>"; /metrics, /healthz and /readyz stay open so that
 * Prometheus and orchestrators' probes need no secret.
 *
 * Adding metrics from another module (the materializer, streams): declare the metrics once
 * as `static const struct stats_metric_def` values, write a collector that reads the module's
 * counters and writes each family with stats_write_*(), and register it:
 *
 *   static const struct stats_metric_def loads = {
 *       "fsd_materialization_loads_total", STATS_COUNTER, "view,result",
 *       "Snapshot loads finished, by view and result (ok, failed, rejected)."};
 *   static void mat_collect(struct stats_writer *w, void *ctx) {
 *       for (each view v) {
 *           stats_write_count(w, &loads, (const char *[]){v->name, "ok"}, v->loads_ok);
 *           stats_write_count(w, &loads, (const char *[]){v->name, "failed"}, v->failed);
 *       }
 *   }
 *   mat_setup():     stats_register_collector(mat_collect, mat);
 *   mat_teardown():  stats_unregister_collector(mat_collect, mat);
 *
 * Registration works before and after stats_setup(). A load's outcome and errors worth a
 * person's attention go to stats_report_load() and stats_report_error(): /status, the page
 * and readiness show them.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fsd_config;
struct store_catalog;

/* ---- defaults ---------------------------------------------------------------------------- */

#define STATS_DEFAULT_BIND "127.0.0.1"
#define STATS_DEFAULT_PORT 9466

#define STATS_TICK_MS        5000 /* how often the status page's 1-minute window is sampled */
#define STATS_WINDOW_S       60   /* the window /status and the page report recent rates over */
#define STATS_PAGE_REFRESH_S 5    /* the HTML page reloads itself this often */
#define STATS_MAX_ERRORS     16   /* last errors kept for /status and the page */
#define STATS_TIMEOUT_S      30   /* an idle or slow HTTP connection is closed after this */

/* ---- options ----------------------------------------------------------------------------- */

/* From server.stats_bind, server.stats_port and server.stats_token (daemon/options.c). */
struct stats_options {
    const char *bind;  /* numeric IPv4/IPv6 address or host name; copied */
    uint16_t port;     /* 0: the kernel picks one, see stats_port() */
    const char *token; /* bearer token for /status and /; NULL or "" = no authentication */
};

/* Fills `options` with the defaults above (no token). */
void stats_options_init(struct stats_options *options);

/* ---- metrics ----------------------------------------------------------------------------- */

enum stats_metric_type {
    STATS_COUNTER,
    STATS_GAUGE,
    STATS_HISTOGRAM,
};

/*
 * One metric family, declared once: the `# HELP` and `# TYPE` lines are written from it.
 * `labels` is the comma-separated label names ("view,feature,reason"), "" for none; every
 * sample of the family gives one value per name, in that order. Names follow Prometheus
 * conventions: fsd_ prefix, base units (seconds, bytes), _total for counters.
 */
struct stats_metric_def {
    const char *name;
    enum stats_metric_type type;
    const char *labels;
    const char *help;
};

/*
 * The stats module's own metrics, rendered by its built-in collectors. The README's metrics
 * reference lists them with the transport's (grpc_metric_defs, daemon/grpc/grpc.h).
 */
enum stats_metric_id {
    /* requests (transport counters + RPC handler counters) */
    STATS_M_REQUESTS,         /* fsd_requests_total{method,code} */
    STATS_M_REQUEST_DURATION, /* fsd_request_duration_seconds{method} */
    STATS_M_BATCH_SIZE,       /* fsd_batch_size */
    STATS_M_BUDGET_EXCEEDED,  /* fsd_budget_exceeded_total */
    /* views */
    STATS_M_READY,           /* fsd_ready */
    STATS_M_VIEW_READY,      /* fsd_view_ready{view} */
    STATS_M_VIEW_ROWS,       /* fsd_view_rows{view} */
    STATS_M_VIEW_TOMBSTONES, /* fsd_view_tombstones{view} */
    STATS_M_VIEW_MEMORY,     /* fsd_view_memory_bytes{view} */
    STATS_M_VIEW_DEAD_BYTES, /* fsd_view_dead_bytes{view} */
    STATS_M_VIEW_VERSION,    /* fsd_view_snapshot_version{view} */
    STATS_M_VIEW_LAST_LOAD,  /* fsd_view_last_load_timestamp_seconds{view} */
    STATS_M_VIEW_SINCE_LOAD, /* fsd_view_seconds_since_last_load{view} */
    STATS_M_VIEW_TTL,        /* fsd_view_ttl_seconds{view} */
    STATS_M_VIEW_REFRESH,    /* fsd_view_refresh_interval_seconds{view} */
    STATS_M_VIEW_LOOKUPS,    /* fsd_view_lookups_total{view} */
    STATS_M_VIEW_NOT_FOUND,  /* fsd_view_not_found_total{view} */
    STATS_M_STALENESS,       /* fsd_served_row_staleness_seconds{view} */
    STATS_M_FALLBACKS,       /* fsd_default_fallbacks_total{view,feature,reason} */
    /* sweeper */
    STATS_M_SWEEPER_RECLAIMED, /* fsd_sweeper_reclaimed_total */
    /* process */
    STATS_M_BUILD_INFO,         /* fsd_build_info{version} */
    STATS_M_START_TIME,         /* fsd_process_start_time_seconds */
    STATS_M_CPU,                /* fsd_process_cpu_seconds_total */
    STATS_M_RESIDENT,           /* fsd_process_resident_memory_bytes */
    STATS_M_OPEN_FDS,           /* fsd_process_open_fds */
    STATS_M_JEMALLOC_ALLOCATED, /* fsd_jemalloc_allocated_bytes */
    STATS_M_JEMALLOC_ACTIVE,    /* fsd_jemalloc_active_bytes */
    STATS_M_JEMALLOC_RESIDENT,  /* fsd_jemalloc_resident_bytes */
    STATS_M_JEMALLOC_METADATA,  /* fsd_jemalloc_metadata_bytes */
    STATS_M_STATS_REQUESTS,     /* fsd_stats_http_requests_total{path,code} */
    STATS_M_COUNT,
};

extern const struct stats_metric_def stats_metric_defs[STATS_M_COUNT];

/* ---- setup / teardown -------------------------------------------------------------------- */

/*
 * Binds the HTTP listener, registers the built-in collectors and starts the stats thread;
 * returns once the socket listens (and logs msg="stats listening" with the port). The thread
 * registers with RCU and reads `catalog` inside read sections; `catalog` must outlive
 * stats_teardown(). From `config` the view sources (for readiness), refresh intervals and a
 * config summary are copied, so the caller may destroy it on reload (see
 * stats_update_config). Returns 0, or -1 with `err` set ("bind 127.0.0.1:9466: Address
 * already in use"); nothing is left running on failure. Main thread; not thread-safe.
 */
int stats_setup(const struct stats_options *options, struct store_catalog *catalog,
                const struct fsd_config *config, char *err, size_t err_len);

/*
 * Stops the thread (a scrape in progress finishes first), closes the listener and frees
 * everything but other modules' collector registrations. Safe when setup failed or never
 * ran. Main thread; blocks until the thread exits.
 */
void stats_teardown(void);

/* ---- API --------------------------------------------------------------------------------- */

/* The bound port (the kernel's choice when options.port was 0); 0 when not running. */
uint16_t stats_port(void);

/*
 * Takes the view sources, refresh intervals and config summary from a reloaded `config`
 * (copied; the caller keeps it). Until this is called after a reload, a view the reload added
 * counts as ready (its source is unknown here). Any thread; takes the stats lock briefly.
 */
void stats_update_config(const struct fsd_config *config);

/*
 * Metric writer: the buffer a collector writes samples into. Opaque; valid only during the
 * collector call. Samples of one family must be written together (the text format requires
 * it): the family's `# HELP`/`# TYPE` lines are written before its first sample.
 */
struct stats_writer;

/*
 * Called on the stats thread for each /metrics request. May read counters and take locks a
 * hot path never waits on; must not block for long, and must not call
 * stats_register_collector() or stats_unregister_collector() (the registry lock is held).
 */
typedef void (*stats_collector_fn)(struct stats_writer *w, void *ctx);

/*
 * Adds a collector, called with `ctx` on every scrape after those registered before it.
 * Returns 0, or -1 when out of memory. Any thread, before or after stats_setup(); blocks
 * while a scrape is in progress.
 */
int stats_register_collector(stats_collector_fn fn, void *ctx);

/*
 * Removes the collector registered with this `fn` and `ctx`. Once it returns, `fn` is not
 * running and will not be called again, so `ctx` may be freed. Any thread; blocks while a
 * scrape is in progress.
 */
void stats_unregister_collector(stats_collector_fn fn, void *ctx);

/* Writes the family's `# HELP` and `# TYPE` lines only (a family without samples yet). */
void stats_write_family(struct stats_writer *w, const struct stats_metric_def *def);

/*
 * Writes one sample of a counter or gauge. `label_values` has one string per name in
 * def->labels (escaped here: backslash, double quote, newline), or NULL when there are none.
 * Gauges may be NaN or infinite.
 */
void stats_write_value(struct stats_writer *w, const struct stats_metric_def *def,
                       const char *const *label_values, double value);

/* As stats_write_value(), for an integer counter or gauge (exact beyond 2^53). */
void stats_write_count(struct stats_writer *w, const struct stats_metric_def *def,
                       const char *const *label_values, uint64_t value);

/*
 * Writes a histogram: `cumulative` has nbounds + 1 counts (observations <= bounds[i], the
 * last is +Inf and is the count), `sum` the sum of the observations. Writes the _bucket
 * series with an `le` label after the def's labels, then _sum and _count.
 */
void stats_write_histogram(struct stats_writer *w, const struct stats_metric_def *def,
                           const char *const *label_values, const double *bounds, size_t nbounds,
                           const uint64_t *cumulative, double sum);

/*
 * A view's latest snapshot load, for /status, the page and the view's "last load" column:
 * `ok` false with `error` (copied, may be NULL) for a failed or rejected load. A failed load
 * is also recorded as an error (stats_report_error). `view` is copied. Control threads; takes
 * the stats lock briefly; never blocks on the network.
 */
void stats_report_load(const char *view, bool ok, int64_t at_us, const char *error);

/*
 * Records an error for /status and the page, which keep the last STATS_MAX_ERRORS.
 * `source` names the module ("materializer", "streams"), `view` may be NULL; both and
 * `message` are copied (cut at a few hundred bytes). Control threads; takes the stats lock
 * briefly.
 */
void stats_report_error(const char *source, const char *view, const char *message);
