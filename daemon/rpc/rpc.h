#pragma once
/*
 * The RPC handlers: fsd's API, Feast's serving API and the gRPC health check, run by the gRPC
 * transport (daemon/grpc) on its worker threads. They read the store without locks and keep
 * their scratch memory and counters per worker.
 *
 *   transport worker ──call──> rpc handler ──RCU read──> catalog → view → table → rows
 *                                   └── per-worker arena (request), pbw (response), counters
 *
 * The config the handlers use (feature services, limits, default budget) is published with
 * RCU too, so a reload swaps it without stopping lookups.
 */
#include <stddef.h>
#include <stdint.h>

#include "common/metrics.h"
#include "common/options.h"

struct fsd_config;
struct store_catalog;
struct grpc_method;

/* Methods, in the order their counters are kept. */
enum rpc_method_id {
    RPC_GET_FEATURES,
    RPC_LIST_VIEWS,
    RPC_PUSH_ROWS,
    RPC_LOAD_SNAPSHOT,
    RPC_HEALTH_CHECK,
    RPC_PUSH_SNAPSHOT,
    RPC_FEAST_GET_ONLINE_FEATURES, /* feast.serving.ServingService */
    RPC_FEAST_SERVING_INFO,
    RPC_HTTP_GET_ONLINE_FEATURES, /* Feast's feature server, HTTP/1.1 JSON */
    RPC_HTTP_PUSH,
    RPC_HTTP_WRITE_TO_ONLINE_STORE,
    RPC_HTTP_MATERIALIZE,
    RPC_HTTP_MATERIALIZE_INCREMENTAL,
    RPC_HTTP_HEALTH,
    RPC_METHOD_COUNT,
};

/* ---- options ----------------------------------------------------------------------------- */

enum rpc_feast_defaults {
    RPC_FEAST_DEFAULTS_NONE, /* a missing value is a null Value, as Feast's servers send it */
    RPC_FEAST_DEFAULTS_FSD,  /* the feature's fsd default */
};

/* The config file's server.max_batch, server.default_budget_us and feast.defaults, and one
 * set by the daemon. */
struct rpc_options {
    uint32_t max_batch;          /* entities per GetFeatures request */
    uint32_t default_budget_us;  /* a request's time budget when it sets none */
    uint64_t max_response_bytes; /* not in the file: the transport's max_message_bytes */
    int feast_defaults;          /* not in this group: rpc_feast_options.defaults */
};
extern const struct option_group rpc_option_group;

/* The config file's feast section. */
struct rpc_feast_options {
    int defaults; /* enum rpc_feast_defaults */
};
extern const struct option_group rpc_feast_option_group;

/* ---- metrics: per-worker counters summed at scrape time (rpc_stats.h) ---------------------- */

enum rpc_metric {
    RPC_M_REQUEST_DURATION, /* fsd_request_duration_seconds{method} */
    RPC_M_BATCH_SIZE,       /* fsd_batch_size */
    RPC_M_BUDGET_EXCEEDED,  /* fsd_budget_exceeded_total */
    RPC_M_VIEW_LOOKUPS,     /* fsd_view_lookups_total{view} */
    RPC_M_VIEW_NOT_FOUND,   /* fsd_view_not_found_total{view} */
    RPC_M_STALENESS,        /* fsd_served_row_staleness_seconds{view} */
    RPC_M_FALLBACKS,        /* fsd_default_fallbacks_total{view,feature,reason} */
    RPC_M_AUTH_FAILURES,    /* fsd_auth_failures_total{method,reason} */
    RPC_M_COUNT,
};
extern const struct metric_def rpc_metric_defs[RPC_M_COUNT];

/* ---- setup / teardown -------------------------------------------------------------------- */

/*
 * Publishes the config and catalog the handlers serve and registers the handlers' metrics.
 * `options` is copied (its values need a restart to change); `config` must stay valid until
 * it is replaced and a grace period has passed; the caller keeps ownership of both. Returns
 * 0, or -1 when out of memory. Control thread.
 */
int rpc_setup(const struct rpc_options *options, const struct fsd_config *config,
              struct store_catalog *catalog);

/*
 * Replaces the config (SIGHUP) and returns the old one, which no handler uses any more once
 * this returns (it waits for a grace period). Control thread; blocks briefly.
 */
const struct fsd_config *rpc_replace_config(const struct fsd_config *config);

/* Unregisters the metrics and frees what the handlers keep after the workers stopped (their
 * counters). Control thread. */
void rpc_teardown(void);

/* ---- API --------------------------------------------------------------------------------- */

/* The method's name as metrics label it ("GetFeatures"); "unknown" past RPC_METHOD_COUNT. */
const char *rpc_method_name(enum rpc_method_id method);

/* Marks the service as serving or not, as the health check reports it. */
void rpc_set_serving(int serving);

/* The method table for grpc_server_setup(). */
const struct grpc_method *rpc_methods(size_t *count);

/* Per-worker state: created and destroyed on the worker thread by the transport. */
void *rpc_worker_create(unsigned index);
void rpc_worker_destroy(void *worker);
