#pragma once
/*
 * The RPC handlers: GetFeatures, ListViews and the gRPC health check, run by the gRPC
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
    RPC_METHOD_COUNT,
};

/*
 * Publishes the config and catalog the handlers serve. `config` must stay valid until it is
 * replaced and a grace period has passed; the caller keeps ownership of both. Control thread.
 */
void rpc_setup(const struct fsd_config *config, struct store_catalog *catalog);

/*
 * Replaces the config (SIGHUP) and returns the old one, which no handler uses any more once
 * this returns (it waits for a grace period). Control thread; blocks briefly.
 */
const struct fsd_config *rpc_replace_config(const struct fsd_config *config);

/* Frees what the handlers keep after the workers stopped (their counters). Control thread. */
void rpc_teardown(void);

/* Marks the service as serving or not, as the health check reports it. */
void rpc_set_serving(int serving);

/* The method table for grpc_server_setup(). */
const struct grpc_method *rpc_methods(size_t *count);

/* Per-worker state: created and destroyed on the worker thread by the transport. */
void *rpc_worker_create(unsigned index);
void rpc_worker_destroy(void *worker);
