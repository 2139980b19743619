/* The daemon's option table: which module's group goes where (options.h). */
#include "options.h"

#include <stddef.h>
#include <stdio.h>

#include "common/buf.h"
#include "common/json.h"
#include "config/config.h"

static const struct option_section sections[] = {
    {"server", "Network endpoints, worker threads and request limits."},
    {"server.auth", "Who may call fsd: bearer tokens and their roles (see the README's "
                    "Authentication section)."},
    {"server.tls", "TLS on the gRPC port: its certificate and, for mutual TLS, the CAs of "
                   "the clients' (see the README's TLS section)."},
    {"store", "The in-memory store, its expiry sweeper, and what it keeps on disk."},
    {"materializer", "Snapshot loads: how much of the machine a load may use."},
    {"feast", "Feast's serving API (feast.serving.ServingService) on the gRPC port (see the "
              "README's Coming from Feast)."},
};

#define BIND(group, member) OPTION_BIND(group, struct daemon_options, member)

static const struct option_binding bindings[] = {
    BIND(grpc_option_group, grpc),   BIND(stats_option_group, stats),
    BIND(rpc_option_group, rpc),     BIND(rpc_feast_option_group, feast),
    BIND(log_option_group, log),     BIND(auth_exposure_option_group, exposure),
    BIND(auth_option_group, auth),   BIND(tls_option_group, tls),
    BIND(store_option_group, store), BIND(sweeper_option_group, sweeper),
    BIND(wal_option_group, wal),     BIND(ckpt_option_group, ckpt),
    BIND(mat_option_group, mat),
};

const struct option_table daemon_option_table = {
    .sections = sections,
    .nsections = sizeof sections / sizeof sections[0],
    .bindings = bindings,
    .nbindings = sizeof bindings / sizeof bindings[0],
    .block_size = sizeof(struct daemon_options),
};

const struct daemon_options *daemon_options(const struct fsd_config *config) {
    return config->options;
}

char *daemon_config_summary(const struct fsd_config *config) {
    const struct daemon_options *o = daemon_options(config);
    struct buf b = {0};
    buf_puts(&b, "{\"file\":");
    json_cstring(&b, config->path);
    buf_puts(&b, ",\"grpc_bind\":");
    json_cstring(&b, o->grpc.bind);
    buf_printf(&b, ",\"grpc_port\":%u,\"stats_bind\":", (unsigned)grpc_server_port());
    json_cstring(&b, o->stats.bind);
    buf_printf(&b,
               ",\"stats_port\":%u,\"stats_auth\":%s,\"workers\":%u,\"max_batch\":%u,"
               "\"max_message_bytes\":%llu,\"default_budget_us\":%u,\"log_level\":",
               (unsigned)stats_port(), o->stats.token[0] != '\0' ? "true" : "false",
               o->grpc.workers, o->rpc.max_batch, (unsigned long long)o->grpc.max_message_bytes,
               o->rpc.default_budget_us);
    json_cstring(&b, log_level_name((enum log_level)o->log.level));
    buf_printf(&b,
               ",\"store_shards\":%u,\"sweep_interval_ms\":%u,\"expiry_grace_seconds\":%lld,"
               "\"views\":%zu,\"feature_services\":[",
               o->store.shards, o->sweeper.interval_ms,
               (long long)(o->sweeper.expiry_grace_us / 1000000), config->nviews);
    for (size_t i = 0; i < config->nservices; i++) {
        if (i > 0) {
            buf_puts(&b, ",");
        }
        json_cstring(&b, config->services[i].name);
    }
    buf_puts(&b, "]}");
    if (b.failed) {
        buf_free(&b);
        return NULL;
    }
    return b.data;
}
