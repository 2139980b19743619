/* The transport's metrics: declared once here, kept per worker, summed when read. */
#include "internal.h"

#include <stddef.h>
#include <string.h>

const struct metric_def grpc_metric_defs[GRPC_M_COUNT] = {
    [GRPC_M_REQUESTS] = {"fsd_requests_total", METRIC_COUNTER, "method,code",
                         "gRPC requests finished, by method (\"unknown\" for paths no method "
                         "serves) and gRPC status code name (OK, INVALID_ARGUMENT, ...). "
                         "Requests the client cancelled count as CANCELLED."},
    [GRPC_M_CONNECTIONS_OPENED] = {"fsd_grpc_connections_opened_total", METRIC_COUNTER, "",
                                   "gRPC connections accepted."},
    [GRPC_M_CONNECTIONS_OPEN] = {"fsd_grpc_connections_open", METRIC_GAUGE, "",
                                 "gRPC connections open now."},
    [GRPC_M_PROTOCOL_ERRORS] = {"fsd_grpc_protocol_errors_total", METRIC_COUNTER, "",
                                "Connections closed for bytes that are not valid HTTP/2 (or a "
                                "connection-level HTTP/2 error)."},
    [GRPC_M_DEADLINE_BEFORE_DISPATCH] = {"fsd_grpc_deadline_exceeded_before_dispatch_total",
                                         METRIC_COUNTER, "method",
                                         "Calls answered DEADLINE_EXCEEDED without running their "
                                         "handler: the client's grpc-timeout passed while they "
                                         "waited for their turn on the worker."},
    [GRPC_M_CLOSED_BY_SERVER] = {"fsd_grpc_connections_closed_total", METRIC_COUNTER, "reason",
                                 "gRPC connections the server closed on its own, by reason: "
                                 "write_timeout (responses waiting and none of them written "
                                 "for server.write_timeout), preface_timeout (no HTTP/2 "
                                 "preface within server.preface_timeout), idle_timeout (no "
                                 "call for server.idle_timeout; sent GOAWAY), max_age "
                                 "(server.max_connection_age reached; drained with GOAWAY), "
                                 "max_age_grace (still open at the end of the drain's grace), "
                                 "protocol_faults (past server.max_protocol_faults_per_second), "
                                 "header_flood (past server.max_header_bytes_per_second)."},
    [GRPC_M_OUTPUT_WAITS] = {"fsd_grpc_output_budget_waits_total", METRIC_COUNTER, "budget",
                             "Times a connection's requests had to wait for their handler "
                             "because responses not yet written filled a budget: connection "
                             "(server.max_pending_bytes_per_connection) or worker "
                             "(server.max_pending_bytes_per_worker)."},
    [GRPC_M_PENDING_OUTPUT] = {"fsd_grpc_pending_output_bytes", METRIC_GAUGE, "",
                               "Response bytes handed to the transport and not yet written to "
                               "a socket, every connection together."},
    [GRPC_M_ACCEPT_PAUSES] = {"fsd_grpc_accept_pauses_total", METRIC_COUNTER, "reason",
                              "Times a worker stopped accepting gRPC connections for 100 ms: "
                              "max_connections (server.max_connections open) or fd_limit "
                              "(accept failed: no file descriptor or memory left). Waiting "
                              "clients stay in the listen backlog."},
    [GRPC_M_STREAMS_REFUSED] = {"fsd_grpc_streams_refused_total", METRIC_COUNTER, "reason",
                                "Requests refused on their own, their connection kept: "
                                "max_concurrent_streams (RST_STREAM REFUSED_STREAM, which "
                                "clients retry) or header_list_too_large (headers past "
                                "server.max_header_list_bytes)."},
    [GRPC_M_MAX_CONNECTIONS] = {"fsd_grpc_max_connections", METRIC_GAUGE, "",
                                "The limit on gRPC connections open at once "
                                "(server.max_connections, or the open-file limit less a "
                                "reserve)."},
};

/* Label values of enum grpc_close_reason and enum grpc_budget. */
static const char *const _close_reason_names[GRPC_CLOSE_REASON_COUNT] = {
    [GRPC_CLOSE_WRITE_TIMEOUT] = "write_timeout", [GRPC_CLOSE_PREFACE_TIMEOUT] = "preface_timeout",
    [GRPC_CLOSE_IDLE_TIMEOUT] = "idle_timeout",   [GRPC_CLOSE_MAX_AGE] = "max_age",
    [GRPC_CLOSE_MAX_AGE_GRACE] = "max_age_grace", [GRPC_CLOSE_PROTOCOL_FAULTS] = "protocol_faults",
    [GRPC_CLOSE_HEADER_FLOOD] = "header_flood",
};
static const char *const _refusal_names[GRPC_REFUSE_REASON_COUNT] = {
    [GRPC_REFUSE_MAX_STREAMS] = "max_concurrent_streams",
    [GRPC_REFUSE_HEADER_LIST] = "header_list_too_large",
};

static const char *const _pause_names[GRPC_PAUSE_REASON_COUNT] = {
    [GRPC_PAUSE_MAX_CONNECTIONS] = "max_connections",
    [GRPC_PAUSE_FD_LIMIT] = "fd_limit",
};

const char *grpc_close_reason_name(enum grpc_close_reason reason) {
    return (unsigned)reason < GRPC_CLOSE_REASON_COUNT ? _close_reason_names[reason] : "unknown";
}
static const char *const _budget_names[GRPC_BUDGET_COUNT] = {
    [GRPC_BUDGET_CONNECTION] = "connection",
    [GRPC_BUDGET_WORKER] = "worker",
};

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
        for (int r = 0; r < GRPC_CLOSE_REASON_COUNT; r++) {
            out->closed_by_server[r] += _load(&ws->closed_by_server[r]);
        }
        for (int r = 0; r < GRPC_PAUSE_REASON_COUNT; r++) {
            out->accept_pauses[r] += _load(&ws->accept_pauses[r]);
        }
        for (int r = 0; r < GRPC_REFUSE_REASON_COUNT; r++) {
            out->streams_refused[r] += _load(&ws->streams_refused[r]);
        }
        out->output_waits_connection += _load(&ws->output_waits[GRPC_BUDGET_CONNECTION]);
        out->output_waits_worker += _load(&ws->output_waits[GRPC_BUDGET_WORKER]);
        out->pending_output_bytes += _load(&ws->pending_bytes);
    }
    out->max_connections = s->max_connections;
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

const char *grpc_server_method_name(size_t method_index) {
    struct grpc_server *s = grpc_server_current;
    if (s == NULL || method_index >= s->nmethods) {
        return "unknown";
    }
    const char *path = s->methods[method_index].method.path;
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

static void _write_requests(struct metric_writer *w, size_t nmethods) {
    const struct metric_def *def = &grpc_metric_defs[GRPC_M_REQUESTS];
    metrics_write_family(w, def);
    for (size_t m = 0; m <= nmethods; m++) {
        struct grpc_method_stats ms;
        if (grpc_server_method_stats(m, &ms) != 0) {
            continue;
        }
        for (int code = 0; code < GRPC_CODE_COUNT; code++) {
            /* OK always, so rate() has a starting point; other codes once they occurred
             * (17 codes x every method would be mostly zeros). Unknown paths once seen. */
            if ((code != GRPC_OK || m == nmethods) && ms.calls[code] == 0) {
                continue;
            }
            const char *labels[] = {grpc_server_method_name(m),
                                    grpc_code_name((enum grpc_code)code)};
            metrics_write_count(w, def, labels, ms.calls[code]);
        }
    }
}

/* A family with one sample per label value: the array of counters at `offset` in each
 * worker's stats, summed over the workers. */
static void _write_labelled(struct metric_writer *w, const struct metric_def *def,
                            struct grpc_server *s, size_t n, const char *const *names,
                            size_t offset) {
    metrics_write_family(w, def);
    for (size_t i = 0; i < n; i++) {
        uint64_t sum = 0;
        for (unsigned k = 0; k < s->nworkers; k++) {
            _Atomic uint64_t *counters =
                (_Atomic uint64_t *)((char *)&s->workers[k].stats + offset);
            sum += _load(&counters[i]);
        }
        const char *labels[] = {names[i]};
        metrics_write_count(w, def, labels, sum);
    }
}

/* Registered by grpc_server_setup, unregistered before the server is freed. */
void grpc_collect_metrics(struct metric_writer *w, void *ctx) {
    (void)ctx;
    struct grpc_server *s = grpc_server_current;
    if (s == NULL) {
        return;
    }
    _write_requests(w, s->nmethods);
    struct grpc_server_stats st;
    grpc_server_stats(&st);
    metrics_write_count(w, &grpc_metric_defs[GRPC_M_CONNECTIONS_OPENED], NULL,
                        st.connections_opened);
    metrics_write_count(w, &grpc_metric_defs[GRPC_M_CONNECTIONS_OPEN], NULL, st.connections_open);
    metrics_write_count(w, &grpc_metric_defs[GRPC_M_PROTOCOL_ERRORS], NULL, st.protocol_errors);
    _write_labelled(w, &grpc_metric_defs[GRPC_M_CLOSED_BY_SERVER], s, GRPC_CLOSE_REASON_COUNT,
                    _close_reason_names, offsetof(struct grpc_worker_stats, closed_by_server));
    _write_labelled(w, &grpc_metric_defs[GRPC_M_OUTPUT_WAITS], s, GRPC_BUDGET_COUNT, _budget_names,
                    offsetof(struct grpc_worker_stats, output_waits));
    metrics_write_count(w, &grpc_metric_defs[GRPC_M_PENDING_OUTPUT], NULL, st.pending_output_bytes);
    _write_labelled(w, &grpc_metric_defs[GRPC_M_ACCEPT_PAUSES], s, GRPC_PAUSE_REASON_COUNT,
                    _pause_names, offsetof(struct grpc_worker_stats, accept_pauses));
    metrics_write_count(w, &grpc_metric_defs[GRPC_M_MAX_CONNECTIONS], NULL, st.max_connections);
    _write_labelled(w, &grpc_metric_defs[GRPC_M_STREAMS_REFUSED], s, GRPC_REFUSE_REASON_COUNT,
                    _refusal_names, offsetof(struct grpc_worker_stats, streams_refused));
    const struct metric_def *late = &grpc_metric_defs[GRPC_M_DEADLINE_BEFORE_DISPATCH];
    metrics_write_family(w, late);
    for (size_t m = 0; m <= s->nmethods; m++) {
        struct grpc_method_stats ms;
        if (grpc_server_method_stats(m, &ms) == 0) {
            const char *labels[] = {grpc_server_method_name(m)};
            metrics_write_count(w, late, labels, ms.deadline_exceeded_before_dispatch);
        }
    }
}
