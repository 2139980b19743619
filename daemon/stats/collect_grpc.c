/*
 * The transport's metrics: requests by method and status code, and the declarations in
 * grpc_metric_defs (connections, protocol errors, deadlines missed before dispatch), read
 * from the per-worker counters grpc_server_*_stats() sum.
 */
#include "internal.h"

#include <string.h>

#include "grpc/grpc.h"
#include "rpc/rpc.h"

const char *stats_method_name(size_t id) {
    size_t count;
    const struct grpc_method *methods = rpc_methods(&count);
    if (id >= count) {
        return "unknown";
    }
    /* "/fsd.v1.FeatureService/GetFeatures" -> "GetFeatures" */
    const char *slash = strrchr(methods[id].path, '/');
    return slash != NULL ? slash + 1 : methods[id].path;
}

static struct stats_metric_def _def_of(const struct grpc_metric_def *g) {
    return (struct stats_metric_def){
        .name = g->name,
        .type = g->type == GRPC_METRIC_COUNTER ? STATS_COUNTER : STATS_GAUGE,
        .labels = g->labels,
        .help = g->help,
    };
}

static void _write_requests(struct stats_writer *w, size_t nmethods) {
    const struct stats_metric_def *def = &stats_metric_defs[STATS_M_REQUESTS];
    stats_write_family(w, def);
    for (size_t m = 0; m <= nmethods; m++) {
        struct grpc_method_stats ms;
        if (grpc_server_method_stats(m, &ms) != 0) {
            continue;
        }
        for (int code = 0; code < GRPC_CODE_COUNT; code++) {
            /* OK always, so rate() has a starting point; other codes once they occurred
             * (17 codes x every method would be mostly zeros). */
            if (code != GRPC_OK && ms.calls[code] == 0) {
                continue;
            }
            if (m == nmethods && ms.calls[code] == 0) {
                continue;
            }
            const char *labels[] = {stats_method_name(m), grpc_code_name((enum grpc_code)code)};
            stats_write_count(w, def, labels, ms.calls[code]);
        }
    }
}

void stats_collect_grpc(struct stats_writer *w, void *ctx) {
    (void)ctx;
    size_t nmethods;
    rpc_methods(&nmethods);
    _write_requests(w, nmethods);

    struct grpc_server_stats s;
    grpc_server_stats(&s);
    for (size_t i = 0; i < grpc_metric_ndefs; i++) {
        const struct grpc_metric_def *g = &grpc_metric_defs[i];
        struct stats_metric_def def = _def_of(g);
        if (strcmp(g->name, "fsd_grpc_connections_opened_total") == 0) {
            stats_write_count(w, &def, NULL, s.connections_opened);
        } else if (strcmp(g->name, "fsd_grpc_connections_open") == 0) {
            stats_write_count(w, &def, NULL, s.connections_open);
        } else if (strcmp(g->name, "fsd_grpc_protocol_errors_total") == 0) {
            stats_write_count(w, &def, NULL, s.protocol_errors);
        } else if (strcmp(g->name, "fsd_grpc_deadline_exceeded_before_dispatch_total") == 0) {
            for (size_t m = 0; m <= nmethods; m++) {
                struct grpc_method_stats ms;
                if (grpc_server_method_stats(m, &ms) == 0) {
                    const char *labels[] = {stats_method_name(m)};
                    stats_write_count(w, &def, labels, ms.deadline_exceeded_before_dispatch);
                }
            }
        }
        /*
         * fsd_grpc_calls_total holds the same counters as fsd_requests_total above (method
         * path instead of method name); exposing both would double the series for nothing.
         * A def added to the transport later is skipped until it is mapped here.
         */
    }
}
