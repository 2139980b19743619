#include "rpc.h"

#include <stdlib.h>
#include <string.h>

#include "daemon/grpc/grpc.h"
#include "rpc_internal.h"
#include "store/rcu.h"
#include "common/clock.h"

#define ARENA_INITIAL_BYTES (256u << 10) /* fits a 1,000-entity request without overflow */

struct rpc_state rpc_state;

static const struct grpc_method methods[RPC_METHOD_COUNT] = {
    [RPC_GET_FEATURES] = {.path = "/fsd.v1.FeatureService/GetFeatures",
                          .authorize = rpc_authorize,
                          .unary = rpc_get_features},
    [RPC_LIST_VIEWS] = {.path = "/fsd.v1.FeatureService/ListViews",
                        .authorize = rpc_authorize,
                        .unary = rpc_list_views},
    [RPC_PUSH_ROWS] = {.path = "/fsd.v1.FeatureService/PushRows",
                       .authorize = rpc_authorize,
                       .unary = rpc_push_rows},
    [RPC_LOAD_SNAPSHOT] = {.path = "/fsd.v1.FeatureService/LoadSnapshot",
                           .authorize = rpc_authorize,
                           .unary = rpc_load_snapshot},
    /* Open to every client, as load balancers and orchestrators probe without credentials. */
    [RPC_HEALTH_CHECK] = {.path = "/grpc.health.v1.Health/Check", .unary = rpc_health_check},
    [RPC_PUSH_SNAPSHOT] = {.path = "/fsd.v1.FeatureService/PushSnapshot",
                           .authorize = rpc_authorize,
                           .on_message = rpc_push_snapshot_message,
                           .on_end = rpc_push_snapshot_end,
                           .on_abort = rpc_push_snapshot_abort},
    [RPC_FEAST_GET_ONLINE_FEATURES] = {.path = "/feast.serving.ServingService/GetOnlineFeatures",
                                       .authorize = rpc_authorize,
                                       .unary = rpc_feast_get_online_features},
    [RPC_FEAST_SERVING_INFO] = {.path = "/feast.serving.ServingService/GetFeastServingInfo",
                                .authorize = rpc_authorize,
                                .unary = rpc_feast_serving_info},
    /* Feast's feature server over HTTP/1.1 on the same port (its paths and methods). */
    [RPC_HTTP_GET_ONLINE_FEATURES] = {.path = "POST /get-online-features",
                                      .authorize = rpc_authorize,
                                      .unary = rpc_http_get_online_features},
    [RPC_HTTP_PUSH] = {.path = "POST /push", .authorize = rpc_authorize, .unary = rpc_http_push},
    [RPC_HTTP_WRITE_TO_ONLINE_STORE] = {.path = "POST /write-to-online-store",
                                        .authorize = rpc_authorize,
                                        .unary = rpc_http_write_to_online_store},
    [RPC_HTTP_MATERIALIZE] = {.path = "POST /materialize",
                              .authorize = rpc_authorize,
                              .unary = rpc_http_materialize},
    [RPC_HTTP_MATERIALIZE_INCREMENTAL] = {.path = "POST /materialize-incremental",
                                          .authorize = rpc_authorize,
                                          .unary = rpc_http_materialize_incremental},
    [RPC_HTTP_HEALTH] = {.path = "GET /health", .unary = rpc_http_health},
};

static const struct option_def rpc_option_defs[] = {
    {
        .name = "max_batch",
        .type = OPTION_UINT,
        .default_text = "10000",
        .min = 1,
        .max = 1000000,
        OPTION_UINT_AT(struct rpc_options, max_batch),
        .description = "Most entities one request may ask for; larger requests are rejected.",
    },
    {
        .name = "default_budget_us",
        .type = OPTION_UINT,
        .default_text = "1000",
        .min = 1,
        .max = 10000000,
        OPTION_UINT_AT(struct rpc_options, default_budget_us),
        .description = "Time budget, in microseconds, of a request that does not set its own.",
    },
};

const struct option_group rpc_option_group = {
    "server", rpc_option_defs, sizeof rpc_option_defs / sizeof rpc_option_defs[0], NULL};

int rpc_setup(const struct rpc_options *options, const struct fsd_config *config,
              struct store_catalog *catalog) {
    rpc_state.options = *options;
    rpc_state.catalog = catalog;
    atomic_store_explicit(&rpc_state.config, config, memory_order_release);
    atomic_store_explicit(&rpc_state.serving, 1, memory_order_relaxed);
    return metrics_register(rpc_collect_metrics, catalog);
}

const struct fsd_config *rpc_replace_config(const struct fsd_config *config) {
    const struct fsd_config *old =
        atomic_exchange_explicit(&rpc_state.config, config, memory_order_acq_rel);
    store_rcu_synchronize();
    return old;
}

void rpc_set_serving(int serving) {
    atomic_store_explicit(&rpc_state.serving, serving, memory_order_relaxed);
}

const struct grpc_method *rpc_methods(size_t *count) {
    *count = RPC_METHOD_COUNT;
    return methods;
}

void rpc_teardown(void) {
    metrics_unregister(rpc_collect_metrics, rpc_state.catalog);
    rpc_counters_free_all();
}

const char *rpc_method_name(enum rpc_method_id method) {
    if ((unsigned)method >= RPC_METHOD_COUNT) {
        return "unknown";
    }
    /* "/fsd.v1.FeatureService/GetFeatures" -> "GetFeatures", "POST /push" -> "push" */
    return strrchr(methods[method].path, '/') + 1;
}

void rpc_observe_duration(struct rpc_worker *wk, enum rpc_method_id method,
                          struct grpc_call *call) {
    if (wk->counters != NULL) {
        double seconds = (double)(clock_mono_us() - grpc_call_start_us(call)) / 1e6;
        rpc_histogram_observe(&wk->counters->duration[method], rpc_duration_bounds_s,
                              RPC_DURATION_BUCKETS, seconds);
    }
}

void *rpc_worker_create(unsigned index) {
    struct rpc_worker *wk = calloc(1, sizeof(*wk));
    if (wk == NULL) {
        return NULL;
    }
    wk->index = index;
    wk->counters = rpc_counters_register(); /* NULL: this worker counts nothing */
    if (arena_init(&wk->arena, ARENA_INITIAL_BYTES) != 0) {
        free(wk);
        return NULL;
    }
    pbw_init(&wk->out);
    /* A response past the message limit stops being written there (reserves ask for up to
     * 10 bytes more than they use, hence the slack; the exact check is the handler's). */
    wk->out.limit = rpc_state.options.max_response_bytes + 64;
    return wk;
}

void rpc_worker_destroy(void *worker) {
    struct rpc_worker *wk = worker;
    if (wk == NULL) {
        return;
    }
    arena_deinit(&wk->arena);
    pbw_deinit(&wk->out);
    buf_free(&wk->json);
    free(wk);
}
