/* fsd: parses the command line and wires the modules together; the work happens in them. */
#include "config/config.h"
#include "common/log.h"
#include "daemon/grpc/grpc.h"
#include "materializer/snapshot/snapshot.h"
#include "materializer/stream/stream.h"
#include "options.h"
#include "process.h"
#include "reload.h"
#include "daemon/rpc/rpc.h"
#include "daemon/stats/stats.h"
#include "durability/checkpoint.h"
#include "durability/wal.h"
#include "sweeper.h"
#include "store/catalog.h"
#include "store/metrics.h"
#include "store/rcu.h"
#include "store/schema.h"
#include "common/clock.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef FSD_VERSION
#define FSD_VERSION "unknown"
#endif

enum {
    EXIT_OK = 0,
    EXIT_FAILED = 1, /* bad config, or the daemon could not start */
    EXIT_USAGE = 2,
};

static void _usage(FILE *out) {
    fprintf(out, "usage: fsd --config FILE                run the daemon\n"
                 "       fsd --check-config FILE          check a config file and exit\n"
                 "       fsd --help-config                describe every config option\n"
                 "       fsd --print-reference-config     print configs/reference.yaml\n"
                 "       fsd --version | --help\n");
}

/* Logs each line of a config error report (config_load joins them with newlines). */
static void _log_config_errors(const char *errors) {
    while (*errors) {
        size_t len = strcspn(errors, "\n");
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)len, errors);
        log_error("invalid config", "error=%s", LOG_QUOTE(line));
        errors += len + (errors[len] == '\n');
    }
}

static int _check_config(const char *path) {
    static char err[CONFIG_ERR_LEN];
    struct fsd_config *config;
    if (config_load(path, &daemon_option_table, &config, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return EXIT_FAILED;
    }
    printf("%s: ok (%zu views, %zu feature services)\n", path, config->nviews, config->nservices);
    config_destroy(config);
    return EXIT_OK;
}

/* Adds every configured view to `catalog`, each with its own copy of the schema. */
static int _add_views(struct store_catalog *catalog, const struct fsd_config *config) {
    for (size_t i = 0; i < config->nviews; i++) {
        const struct config_view *view = &config->views[i];
        char err[512];
        struct store_schema *schema = store_schema_clone(view->schema);
        if (schema == NULL) {
            log_error("cannot add view", "view=%s error=\"out of memory\"", view->schema->view);
            return -1;
        }
        if (store_catalog_add_view(catalog, schema, err, sizeof err) != 0) {
            log_error("cannot add view", "view=%s error=%s", view->schema->view, LOG_QUOTE(err));
            return -1;
        }
        char ttl[32], refresh[32];
        option_format_duration(view->schema->ttl_us, ttl, sizeof ttl);
        option_format_duration(view->snapshot.refresh_interval_us, refresh, sizeof refresh);
        log_info("view added", "view=%s join_keys=%u features=%u ttl=%s source=%s refresh=%s",
                 view->schema->view, view->schema->nkeys, view->schema->nfeatures, ttl,
                 mat_source_type_name(view->snapshot.source.type), refresh);
    }
    return 0;
}

/* Serves until SIGINT or SIGTERM; SIGHUP reloads the config. Returns the config in force. */
static struct fsd_config *_serve(const sigset_t *signals, const char *path,
                                 struct fsd_config *config, struct store_catalog *catalog) {
    for (;;) {
        int sig;
        if (sigwait(signals, &sig) != 0) {
            continue;
        }
        if (sig == SIGHUP) {
            log_info("reloading config", "signal=SIGHUP file=%s", LOG_QUOTE(path));
            config = reload_config(path, config, catalog);
            continue;
        }
        log_info("shutting down: finishing calls in flight", "signal=%s",
                 sig == SIGINT ? "SIGINT" : "SIGTERM");
        return config;
    }
}

/*
 * Tokens first, so no call is ever served unauthenticated; and no listener open to the
 * network without authentication unless the config says so (server.allow_insecure).
 */
static int _start_auth(const struct daemon_options *o) {
    char err[1024];
    bool tokens = o->auth.tokens_file[0] != '\0';
    if (auth_check_exposure(&o->exposure, "server.grpc_bind", o->grpc.bind, tokens, err,
                            sizeof err) != 0 ||
        auth_check_exposure(&o->exposure, "server.stats_bind", o->stats.bind,
                            tokens || o->stats.token[0] != '\0', err, sizeof err) != 0) {
        log_error("refusing to listen without authentication", "error=%s", LOG_QUOTE(err));
        return -1;
    }
    if (o->exposure.allow_insecure && !tokens) {
        log_warn("server.allow_insecure is set: every client may call every method", NULL);
    }
    if (auth_setup(&o->auth, err, sizeof err) != 0) {
        log_error("cannot read the tokens file", "error=%s", LOG_QUOTE(err));
        return -1;
    }
    return 0;
}

static int _start_server(const struct daemon_options *o) {
    process_raise_fd_limit(); /* max_connections' default follows it */
    size_t nmethods;
    const struct grpc_method *methods = rpc_methods(&nmethods);
    char err[1200];
    /* The certificate before the port: a port that should be TLS never opens as cleartext. */
    if (tls_setup(&o->tls, err, sizeof err) != 0) {
        log_error("cannot set up TLS", "error=%s", LOG_QUOTE(err));
        return -1;
    }
    if (tls_enabled()) {
        log_info("tls on the grpc port", "cert_file=%s mutual=%s", LOG_QUOTE(o->tls.cert_file),
                 o->tls.client_ca_file[0] != '\0' ? "true" : "false");
    }
    if (grpc_server_setup(&o->grpc, methods, nmethods, rpc_worker_create, rpc_worker_destroy, err,
                          sizeof err) != 0) {
        log_error("cannot start the gRPC server", "error=%s", LOG_QUOTE(err));
        return -1;
    }
    return 0;
}

/*
 * materializer.duckdb_threads 0: the cores the workers leave, less one for the thread that
 * builds the table from DuckDB's chunks; at least one. On 2 cores with 1 worker, one DuckDB
 * thread loaded 10M rows faster (1.64M against 1.37M rows/s) and cost lookups less latency than
 * one per core (loadtest/swap_latency_bench.sh): more threads only fight the builder and the
 * workers.
 */
static uint32_t _duckdb_threads(const struct daemon_options *o) {
    uint32_t threads = o->mat.duckdb_threads;
    if (threads > 0) {
        return threads;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long workers = o->grpc.workers > 0 ? o->grpc.workers : cores;
    long left = cores - workers - 1;
    return left > 1 ? (uint32_t)left : 1;
}

/* Loads every view with a source now and on its refresh interval, on a thread of its own. */
/* Restores what store.data_dir holds (each view's checkpoint, then the log after it) before
 * anything is served, and starts keeping it. */
static int _replay_log(const struct daemon_options *o, struct store_catalog *catalog) {
    char err[512];
    uint64_t *skip_through = NULL;
    int rc = wal_setup(&o->wal, err, sizeof err);
    if (rc == 0) {
        rc = ckpt_setup(&o->ckpt, o->wal.data_dir, catalog, &skip_through, err, sizeof err);
    }
    if (rc == 0 && wal_replay_into_catalog(catalog, skip_through, err, sizeof err) < 0) {
        rc = -1;
    }
    free(skip_through);
    if (rc == 0) {
        rc = ckpt_start(err, sizeof err);
    }
    if (rc != 0) {
        log_error("cannot restore or keep store.data_dir", "error=%s", LOG_QUOTE(err));
        return -1;
    }
    if (o->wal.data_dir[0] != '\0' && !wal_enabled()) {
        log_warn("store.durability is none: live writes are not logged in store.data_dir",
                 "data_dir=%s", LOG_QUOTE(o->wal.data_dir));
    }
    return 0;
}

static int _start_materializer(const struct fsd_config *config, struct store_catalog *catalog) {
    const struct daemon_options *o = daemon_options(config);
    struct mat_options options = o->mat;
    options.duckdb_threads = _duckdb_threads(o);
    char err[512];
    if (mat_setup(catalog, config->snapshots, config->nviews, &options, err, sizeof err) != 0) {
        log_error("cannot start the materializer", "error=%s", LOG_QUOTE(err));
        return -1;
    }
    return 0;
}

/* Follows every view's Redis stream, if it has one, on a thread of its own. */
static int _start_streams(const struct fsd_config *config, struct store_catalog *catalog) {
    char err[512];
    if (mat_stream_setup(catalog, config->streams, config->nviews, NULL, err, sizeof err) != 0) {
        log_error("cannot start the stream consumers", "error=%s", LOG_QUOTE(err));
        return -1;
    }
    return 0;
}

/*
 * Not fatal: serving lookups does not need the stats port, and an orchestrator probing
 * /healthz or /readyz on it notices that it is missing.
 */
static void _start_stats(const struct fsd_config *config, struct store_catalog *catalog) {
    char err[512];
    if (stats_setup(&daemon_options(config)->stats, catalog, err, sizeof err) != 0) {
        log_error("cannot start the stats port; serving without it", "error=%s", LOG_QUOTE(err));
        return;
    }
    reload_show_config(config);
}

static int _run(const char *path) {
    /* Block before any thread exists, so every thread inherits the mask and these signals
     * reach only sigwait() in _serve(). */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN); /* a client that goes away must not kill the daemon */
    signal(SIGXFSZ, SIG_IGN); /* past the file-size limit a log write fails (EFBIG), no more */

    static char err[CONFIG_ERR_LEN];
    struct fsd_config *config;
    if (config_load(path, &daemon_option_table, &config, err, sizeof err) != 0) {
        _log_config_errors(err);
        return EXIT_FAILED;
    }
    /* A copy: a reload replaces the config, and these options need a restart to change. */
    const struct daemon_options options = *daemon_options(config);
    log_set_level((enum log_level)options.log.level);
    log_info("loaded config", "file=%s views=%zu feature_services=%zu", LOG_QUOTE(path),
             config->nviews, config->nservices);
    if (config->nviews == 0) {
        log_warn("no views configured; every lookup will find nothing", NULL);
    }

    store_rcu_thread_online(); /* the control thread publishes and retires through RCU */
    struct store_catalog *catalog = store_catalog_create(options.store.shards);
    if (catalog == NULL) {
        log_error("cannot create the store catalog", "error=\"out of memory\"");
        config_destroy(config);
        return EXIT_FAILED;
    }
    int rc = EXIT_FAILED;
    struct rpc_options rpc = options.rpc;
    rpc.max_response_bytes = options.grpc.max_message_bytes;
    rpc.feast_defaults = options.feast.defaults;
    /* The process's and the store's metrics: neither module has a setup to register them. */
    if (metrics_register(process_collect_metrics, NULL) != 0 ||
        metrics_register(store_collect_metrics, catalog) != 0) {
        log_error("cannot register the metrics", "error=\"out of memory\"");
    } else if (_add_views(catalog, config) != 0) {
        /* logged */
    } else if (_replay_log(&options, catalog) != 0) {
        /* logged */
    } else if (sweeper_setup(catalog, &options.sweeper) != 0) {
        log_error("cannot start the expiry sweeper thread", NULL);
    } else {
        if (rpc_setup(&rpc, config, catalog) != 0) {
            log_error("cannot set up the RPC handlers", "error=\"out of memory\"");
        } else if (_start_auth(&options) == 0 && _start_server(&options) == 0 &&
                   _start_materializer(config, catalog) == 0 &&
                   _start_streams(config, catalog) == 0) {
            _start_stats(config, catalog);
            char stats[300] = "off";
            if (stats_port() != 0) {
                snprintf(stats, sizeof stats, "%s:%u", options.stats.bind, stats_port());
            }
            log_info("fsd ready", "version=%s grpc=%s:%u stats=%s views=%zu feature_services=%zu",
                     FSD_VERSION, options.grpc.bind, grpc_server_port(), stats, config->nviews,
                     config->nservices);
            config = _serve(&signals, path, config, catalog);
            rpc_set_serving(0);
            grpc_server_shutdown();
            log_info("stopped serving", NULL);
            rc = EXIT_OK;
        }
        stats_teardown();
        mat_stream_teardown();
        mat_teardown();
        /* The log writer resumes calls on the workers: it finishes before they are freed. */
        grpc_server_shutdown();
        ckpt_teardown();
        wal_teardown();
        grpc_server_teardown();
        tls_teardown();
        auth_teardown();
        rpc_teardown();
    }
    sweeper_teardown();
    ckpt_teardown(); /* again, for the paths that never started the server */
    wal_teardown();
    metrics_unregister(store_collect_metrics, catalog);
    metrics_unregister(process_collect_metrics, NULL);
    store_catalog_destroy(catalog);
    config_destroy(config);
    store_rcu_thread_offline();
    return rc;
}

int main(int argc, char **argv) {
    enum { RUN = 1, CHECK, HELP, HELP_CONFIG, PRINT_REFERENCE, VERSION };
    static const struct option long_options[] = {
        {"config", required_argument, NULL, RUN},
        {"check-config", required_argument, NULL, CHECK},
        {"help", no_argument, NULL, HELP},
        {"help-config", no_argument, NULL, HELP_CONFIG},
        {"print-reference-config", no_argument, NULL, PRINT_REFERENCE},
        {"version", no_argument, NULL, VERSION},
        {NULL, 0, NULL, 0},
    };
    int mode = 0;
    const char *path = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:h", long_options, NULL)) != -1) {
        if (opt == 'c') {
            opt = RUN;
        } else if (opt == 'h') {
            opt = HELP;
        } else if (opt == '?') {
            _usage(stderr);
            return EXIT_USAGE;
        }
        if (mode != 0) {
            fprintf(stderr, "fsd: give one of --config, --check-config, --help-config, ...\n");
            return EXIT_USAGE;
        }
        mode = opt;
        path = optarg;
    }
    if (optind < argc) {
        fprintf(stderr, "fsd: unexpected argument \"%s\"\n", argv[optind]);
        _usage(stderr);
        return EXIT_USAGE;
    }
    switch (mode) {
    case RUN:
        return _run(path);
    case CHECK:
        return _check_config(path);
    case HELP:
        _usage(stdout);
        return EXIT_OK;
    case HELP_CONFIG:
        option_print_help(&daemon_option_table, stdout);
        return EXIT_OK;
    case PRINT_REFERENCE:
        config_print_reference(&daemon_option_table, stdout);
        return EXIT_OK;
    case VERSION:
        printf("fsd %s\n", FSD_VERSION);
        return EXIT_OK;
    default:
        _usage(stderr);
        return EXIT_USAGE;
    }
}
