#pragma once
/*
 * The stats port: Prometheus metrics, health, readiness and a status page over HTTP/1.1,
 * served by libevent's evhttp on a control thread of its own (never a gRPC worker), so a slow
 * scrape or a slow browser can never delay a lookup.
 *
 *   GET /metrics   every collector in the registry (common/metrics.h), in registration
 *                  order: the modules declare and collect their own metrics; this module
 *                  only walks the registry and adds its own request counter
 *   GET /healthz   200 "ok": the process is alive and the stats thread answers
 *   GET /readyz    200 once every view with a source has its first snapshot (the
 *                  materializer says which, mat_view_ready), else 503 and the views still
 *                  waiting, one per line
 *   GET /status    JSON: version, uptime, config summary, views, last errors   (token)
 *   GET /          self-contained HTML status page, refreshes itself            (token)
 *   other paths 404; other methods than GET and HEAD on a known path 405
 *
 * With server.stats_token set, /status and / answer 401 unless the request carries
 * "Authorization: Bearer <token>"; /metrics, /healthz and /readyz stay open so that
 * Prometheus and orchestrators' probes need no secret. The last errors come from
 * common/errors.h, where any module records them.
 *
 * Each connection has server.stats_request_timeout to deliver its whole next request, counted
 * from accept or from the previous reply: a client that trickles a byte at a time (which
 * libevent's own timeout, reset by every byte, would let stay forever) is closed and counted.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/metrics.h"
#include "common/options.h"

struct store_catalog;

/* ---- defaults ---------------------------------------------------------------------------- */

#define STATS_BIND_LEN       256
#define STATS_TOKEN_LEN      256
#define STATS_TICK_MS        5000 /* how often the status page's 1-minute window is sampled */
#define STATS_WINDOW_S       60   /* the window /status and the page report recent rates over */
#define STATS_PAGE_REFRESH_S 5    /* the HTML page reloads itself this often */
#define STATS_SWEEP_MS       1000 /* how often connections are checked against their deadline */

/* ---- options ----------------------------------------------------------------------------- */

/* The config file's server.stats_bind, stats_port, stats_token and stats_request_timeout. */
struct stats_options {
    char bind[STATS_BIND_LEN];   /* numeric IPv4/IPv6 address or host name */
    uint32_t port;               /* 0: the kernel picks one, see stats_port() */
    char token[STATS_TOKEN_LEN]; /* bearer token for /status and /; "" = no authentication */
    int64_t request_timeout_us;  /* a connection's whole next request must arrive within this */
};
extern const struct option_group stats_option_group;

/* Fills `options` with the defaults (the group's: no token). */
void stats_options_init(struct stats_options *options);

/* ---- metrics ----------------------------------------------------------------------------- */

enum stats_metric {
    STATS_M_HTTP_REQUESTS, /* fsd_stats_http_requests_total{path,code} */
    STATS_M_HTTP_TIMEOUTS, /* fsd_stats_http_timeouts_total */
    STATS_M_COUNT,
};
extern const struct metric_def stats_metric_defs[STATS_M_COUNT];

/* ---- setup / teardown -------------------------------------------------------------------- */

/*
 * Binds the HTTP listener, registers its own metrics and starts the stats thread; returns
 * once the socket listens (and logs msg="stats listening" with the port). The thread
 * registers with RCU and reads `catalog` inside read sections; `catalog` must outlive
 * stats_teardown(). Returns 0, or -1 with `err` set ("bind 127.0.0.1:9466: Address already
 * in use"); nothing is left running on failure. Main thread; not thread-safe.
 */
int stats_setup(const struct stats_options *options, struct store_catalog *catalog, char *err,
                size_t err_len);

/*
 * Stops the thread (a scrape in progress finishes first), closes the listener and frees
 * everything. Safe when setup failed or never ran. Main thread; blocks until the thread exits.
 */
void stats_teardown(void);

/* ---- API --------------------------------------------------------------------------------- */

/* The bound port (the kernel's choice when options.port was 0); 0 when not running. */
uint16_t stats_port(void);

/*
 * What /status shows as "config" (a JSON object, copied) and the page as the gRPC address;
 * the daemon renders both from its config, at start and after each reload. Returns -1 when
 * out of memory (the old summary stays). Any thread; takes the stats lock briefly.
 */
int stats_set_config_summary(const char *json, const char *grpc_address);
