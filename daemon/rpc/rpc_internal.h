#pragma once
/* Shared by the handlers of daemon/rpc; not for other modules. */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "daemon/auth/auth.h"
#include "daemon/grpc/grpc.h"
#include "fsd/v1/feature_service.pb-c.h"
#include "common/buf.h"
#include "common/log.h"
#include "pbwriter.h"
#include "rpc.h"
#include "rpc_stats.h"

struct grpc_call;
struct store_key;
struct store_row;
struct store_value;

/* What the handlers serve; swapped whole on reload. */
struct rpc_state {
    struct rpc_options options; /* set at setup, read-only afterwards */
    _Atomic(const struct fsd_config *) config;
    struct store_catalog *catalog;
    atomic_int serving;
};

extern struct rpc_state rpc_state;

#define RPC_KEEP_RESPONSE_BYTES (8u << 20) /* a bigger response buffer is freed after use */

/* Per-worker memory, sized for the largest batch the config allows. */
struct rpc_worker {
    unsigned index;
    struct arena arena;                   /* the decoded request and per-request scratch */
    struct pbw out;                       /* the encoded response */
    struct buf json;                      /* ... when it is JSON (HTTP/1.1) */
    struct rpc_worker_counters *counters; /* registered; outlives the worker (rpc_teardown) */
    struct auth_cache auth_cache;         /* tokens this worker has recently seen */
    struct log_limit auth_log;            /* "call refused" lines */
    struct log_limit load_log;            /* "load refused" lines */
};

/* Registers a worker's counters for the scrapes; freed by rpc_counters_free_all(). */
struct rpc_worker_counters *rpc_counters_register(void);
void rpc_counters_free_all(void);

/* The handlers' metrics collector (rpc_stats.c); ctx: the catalog. */
void rpc_collect_metrics(struct metric_writer *w, void *ctx);

/* Records how long a call of `method` took, from its HEADERS to now. */
void rpc_observe_duration(struct rpc_worker *wk, enum rpc_method_id method, struct grpc_call *call);

/*
 * The transport's authorizer for every method but the health check (grpc_authorize_fn):
 * GRPC_OK when authentication is off or the call's token has the role its method needs;
 * UNAUTHENTICATED or PERMISSION_DENIED, counted and logged, otherwise.
 */
enum grpc_code rpc_authorize(struct grpc_call *call, const uint8_t *value, size_t len,
                             char *message, size_t message_len);
/* Whether the call's token may write `view` (PushRows, PushSnapshot): GRPC_OK, or the code
 * to fail the call with and why in `message`. Counted and logged like rpc_authorize. */
enum grpc_code rpc_authorize_view(struct grpc_call *call, enum rpc_method_id method,
                                  const char *view, char *message, size_t message_len);

void rpc_get_features(struct grpc_call *call, const uint8_t *msg, size_t len);
void rpc_list_views(struct grpc_call *call, const uint8_t *msg, size_t len);
void rpc_feast_get_online_features(struct grpc_call *call, const uint8_t *msg, size_t len);
void rpc_feast_serving_info(struct grpc_call *call, const uint8_t *msg, size_t len);
/* Feast's feature server API over HTTP/1.1 (feast_http.c). */
void rpc_http_get_online_features(struct grpc_call *call, const uint8_t *msg, size_t len);
void rpc_http_push(struct grpc_call *call, const uint8_t *msg, size_t len);
void rpc_http_write_to_online_store(struct grpc_call *call, const uint8_t *msg, size_t len);
void rpc_http_materialize(struct grpc_call *call, const uint8_t *msg, size_t len);
void rpc_http_materialize_incremental(struct grpc_call *call, const uint8_t *msg, size_t len);
void rpc_http_health(struct grpc_call *call, const uint8_t *msg, size_t len);
void rpc_push_rows(struct grpc_call *call, const uint8_t *msg, size_t len);

/*
 * How a push is answered (push_rows.c): done with the counts (inserted, replaced, not newer,
 * deleted), or fail with a status. Either runs on the call's worker, at once or when the log
 * has made the rows durable; `call` is NULL when it ended meanwhile (the callee frees what
 * `arg` holds either way). `done` may push again (the next view of a Feast push).
 */
struct rpc_push_reply {
    void (*done)(struct grpc_call *call, struct rpc_worker *wk, const uint64_t counts[4],
                 void *arg);
    void (*fail)(struct grpc_call *call, enum grpc_code code, const char *message, void *arg);
    void *arg;
};

/*
 * PushRows' rule for `req` (arena memory of wk): the token may write the view (`method`
 * counts a refusal), every row is checked before any is applied, and with a log the rows are
 * applied once durable (the call is suspended until then). Answers through `reply`, exactly
 * once.
 */
void rpc_push_apply(struct grpc_call *call, struct rpc_worker *wk,
                    const Fsd__V1__PushRowsRequest *req, enum rpc_method_id method,
                    const struct rpc_push_reply *reply);
void rpc_load_snapshot(struct grpc_call *call, const uint8_t *msg, size_t len);
void rpc_health_check(struct grpc_call *call, const uint8_t *msg, size_t len);
/* PushSnapshot, client streaming: per message, at the client's half-close, on an abort. */
void rpc_push_snapshot_message(struct grpc_call *call, const uint8_t *msg, size_t len);
void rpc_push_snapshot_end(struct grpc_call *call);
void rpc_push_snapshot_abort(struct grpc_call *call);
