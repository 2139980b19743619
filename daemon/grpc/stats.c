/* The transport's metrics: declared once here, kept per worker, summed when read. */
#include "internal.h"

#include <string.h>

const struct grpc_metric_def grpc_metric_defs[] = {
    {"fsd_grpc_connections_opened_total", GRPC_METRIC_COUNTER, "", "gRPC connections accepted."},
    {"fsd_grpc_connections_open", GRPC_METRIC_GAUGE, "", "gRPC connections open now."},
    {"fsd_grpc_protocol_errors_total", GRPC_METRIC_COUNTER, "",
     "Connections closed for bytes that are not valid HTTP/2 (or a connection-level HTTP/2 "
     "error)."},
    {"fsd_grpc_calls_total", GRPC_METRIC_COUNTER, "method,code",
     "gRPC calls finished, by method path (\"unknown\" for paths no method serves) and status "
     "code name; calls the client cancelled count as CANCELLED."},
    {"fsd_grpc_deadline_exceeded_before_dispatch_total", GRPC_METRIC_COUNTER, "method",
     "Calls answered DEADLINE_EXCEEDED without running their handler: the client's "
     "grpc-timeout passed while they waited for their turn on the worker."},
};
const size_t grpc_metric_ndefs = sizeof grpc_metric_defs / sizeof grpc_metric_defs[0];

static uint64_t _load(_Atomic uint64_t *counter) {
    return atomic_load_explicit(counter, memory_order_relaxed);
}

void grpc_server_stats(struct grpc_server_stats *out) {
    memset(out, 0, sizeof *out);
    struct grpc_server *s = grpc_server_current;
    if (s == NULL) {
        return;
    }
    uint64_t closed = 0;
    for (unsigned i = 0; i < s->nworkers; i++) {
        struct grpc_worker_stats *ws = &s->workers[i].stats;
        out->connections_opened += _load(&ws->connections_opened);
        closed += _load(&ws->connections_closed);
        out->protocol_errors += _load(&ws->protocol_errors);
    }
    /* Read apart, so a connection may show as closed before it shows as opened. */
    out->connections_open = out->connections_opened > closed ? out->connections_opened - closed : 0;
}

int grpc_server_method_stats(size_t method_index, struct grpc_method_stats *out) {
    memset(out, 0, sizeof *out);
    struct grpc_server *s = grpc_server_current;
    if (s == NULL || method_index > s->nmethods) {
        return -1;
    }
    for (unsigned i = 0; i < s->nworkers; i++) {
        struct grpc_worker_stats *ws = &s->workers[i].stats;
        if (ws->calls == NULL) {
            continue;
        }
        for (int code = 0; code < GRPC_CODE_COUNT; code++) {
            out->calls[code] += _load(&ws->calls[method_index * GRPC_CODE_COUNT + code]);
        }
        out->deadline_exceeded_before_dispatch += _load(&ws->deadline_exceeded[method_index]);
    }
    return 0;
}
