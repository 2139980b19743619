/*
 * fsd-materialize: reads a view's source and pushes it to a running fsd as one snapshot.
 *
 *   fsd-materialize --addr HOST:PORT --config fsd.yaml --view V [--path P] [--batch N]
 *                   [--stream-position ID]
 *
 * main() parses the command line and runs the three steps (materialize.h); exit status 0 done,
 * 1 failed, 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "materialize.h"
#include "materializer/stream/stream.h"
#include "store/rcu.h"
#include "store/table.h"
#include "common/clock.h"

static void _usage(FILE *out) {
    fprintf(out,
            "usage: fsd-materialize [--addr HOST:PORT] --config FILE --view VIEW [--path PATH]\n"
            "                       [--batch N] [--max-message-bytes N] [--timeout SECONDS]\n"
            "                       [--stream-position ID]\n"
            "\n"
            "Reads VIEW's source as FILE describes it (Parquet or PostgreSQL) and pushes every\n"
            "row to a running fsd as one new snapshot (PushSnapshot): the snapshot replaces\n"
            "the view's only if the whole stream arrives and passes the view's data contract.\n"
            "\n"
            "options:\n"
            "  --addr HOST:PORT         fsd's gRPC address (default " FM_DEFAULT_ADDR ")\n"
            "  --config FILE            the fsd config naming the view and its source\n"
            "  --view VIEW              the view to push\n"
            "  --path PATH              read this Parquet file, glob or directory instead\n"
            "  --batch N                rows per message, at most (default %d)\n"
            "  --max-message-bytes N    bytes per message, at most: fsd's\n"
            "                           server.max_message_bytes (default %u)\n"
            "  --timeout SECONDS        give up on the push after this long (default: never)\n"
            "  --stream-position ID     the stream entry ID (<ms>-<seq> or <ms>) the data covers,\n"
            "                           recorded with the snapshot (stream.start: snapshot)\n"
            "  --token-file FILE        send the token on FILE's first line with every call\n"
            "                           (default: the file $FSD_TOKEN_FILE names, if set)\n"
            "  --tls-ca FILE            connect with TLS; FILE: the CAs of fsd's certificate\n"
            "  --tls-cert FILE, --tls-key FILE\n"
            "                           a client certificate and its key (mutual TLS)\n"
            "  --help                   this text\n"
            "\n"
            "Progress goes to stderr: a bar on a terminal, else a line every 2 s. The result\n"
            "goes to stdout: view=V version=N rows_sent=N rows_kept=N updates_replayed=N\n"
            "seconds=S\n"
            "\n"
            "exit status: 0 pushed, 1 failed (source, connection, or refused by fsd), 2 usage\n",
            FM_DEFAULT_BATCH_ROWS, FM_DEFAULT_MAX_MESSAGE_BYTES);
}

__attribute__((format(printf, 1, 2))) static int _usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("fsd-materialize: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(see fsd-materialize --help)\n", stderr);
    return FM_EXIT_USAGE;
}

/* A whole decimal number in [min, max]; -1 otherwise. */
static int _parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out) {
    char *end;
    errno = 0;
    if (text[0] < '0' || text[0] > '9') {
        return -1;
    }
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

static int _parse_args(int argc, char **argv, struct fm_options *o) {
    enum {
        OPT_MAX_MESSAGE_BYTES = 256,
        OPT_TIMEOUT,
        OPT_STREAM_POSITION,
        OPT_TOKEN_FILE,
        OPT_TLS_CA,
        OPT_TLS_CERT,
        OPT_TLS_KEY,
    };
    static const struct option longopts[] = {
        {"addr", required_argument, NULL, 'a'},
        {"config", required_argument, NULL, 'c'},
        {"view", required_argument, NULL, 'v'},
        {"path", required_argument, NULL, 'p'},
        {"batch", required_argument, NULL, 'b'},
        {"max-message-bytes", required_argument, NULL, OPT_MAX_MESSAGE_BYTES},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"stream-position", required_argument, NULL, OPT_STREAM_POSITION},
        {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
        {"tls-ca", required_argument, NULL, OPT_TLS_CA},
        {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
        {"tls-key", required_argument, NULL, OPT_TLS_KEY},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct fm_options){
        .addr = FM_DEFAULT_ADDR,
        .batch_rows = FM_DEFAULT_BATCH_ROWS,
        .max_message_bytes = FM_DEFAULT_MAX_MESSAGE_BYTES,
    };
    if (argc <= 1) {
        _usage(stderr);
        return FM_EXIT_USAGE;
    }
    client_options_init(&o->client);
    const char *token_file = NULL;
    const char *tls_ca = NULL, *tls_cert = NULL, *tls_key = NULL;
    opterr = 0;
    int c;
    uint64_t n;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'a':
            o->addr = optarg;
            break;
        case OPT_TOKEN_FILE:
            token_file = optarg;
            break;
        case OPT_TLS_CA:
            tls_ca = optarg;
            break;
        case OPT_TLS_CERT:
            tls_cert = optarg;
            break;
        case OPT_TLS_KEY:
            tls_key = optarg;
            break;
        case 'c':
            o->config_path = optarg;
            break;
        case 'v':
            o->view = optarg;
            break;
        case 'p':
            o->path = optarg;
            break;
        case 'b':
            if (_parse_uint(optarg, 1, FM_MAX_BATCH_ROWS, &n) != 0) {
                return _usage_error("--batch wants rows per message, 1 to 1000000; got \"%s\"",
                                    optarg);
            }
            o->batch_rows = (uint32_t)n;
            break;
        case OPT_MAX_MESSAGE_BYTES:
            if (_parse_uint(optarg, FM_MIN_MESSAGE_BYTES, 1u << 30, &n) != 0) {
                return _usage_error("--max-message-bytes wants 65536 to 1073741824; got \"%s\"",
                                    optarg);
            }
            o->max_message_bytes = n;
            break;
        case OPT_TIMEOUT:
            if (_parse_uint(optarg, 1, 30 * 86400, &n) != 0) {
                return _usage_error("--timeout wants whole seconds, 1 or more; got \"%s\"", optarg);
            }
            o->timeout_ms = (int64_t)n * 1000;
            break;
        case OPT_STREAM_POSITION: {
            char id[MAT_STREAM_ID_LEN];
            if (!mat_stream_position_normalize(optarg, id)) {
                return _usage_error(
                    "--stream-position wants a stream entry ID, <ms>-<seq> or <ms>; got \"%s\"",
                    optarg);
            }
            o->stream_position = optarg;
            break;
        }
        case 'h':
            _usage(stdout);
            return -1;
        default:
            return _usage_error("unknown option or missing value: %s", argv[optind - 1]);
        }
    }
    if (optind < argc) {
        return _usage_error("unexpected argument \"%s\"", argv[optind]);
    }
    if (o->config_path == NULL) {
        return _usage_error("--config is required");
    }
    if (o->view == NULL) {
        return _usage_error("--view is required");
    }
    char err[512];
    if (client_options_token_file(&o->client, token_file, err, sizeof err) != 0 ||
        client_options_tls(&o->client, tls_ca, tls_cert, tls_key, err, sizeof err) != 0) {
        return _usage_error("%s", err);
    }
    return FM_EXIT_OK;
}

static int _run(const struct fm_options *o) {
    char err[CONFIG_ERR_LEN];
    struct fsd_config *config;
    /* NULL: the option sections are the daemon's; only the views are read. */
    if (config_load(o->config_path, NULL, &config, err, sizeof err) != 0) {
        fprintf(stderr, "fsd-materialize: %s: invalid config:\n%s", o->config_path, err);
        return FM_EXIT_FAILED;
    }
    const struct config_view *view = config_find_view(config, o->view);
    if (view == NULL) {
        fprintf(stderr, "fsd-materialize: view \"%s\" is not in %s\n", o->view, o->config_path);
        config_destroy(config);
        return FM_EXIT_FAILED;
    }

    /* Seconds now rather than after a read that may take minutes. */
    if (fm_preflight(o, view->schema, err, sizeof err) != 0) {
        fprintf(stderr, "fsd-materialize: %s\n", err);
        config_destroy(config);
        return FM_EXIT_FAILED;
    }
    int64_t started = clock_mono_us();
    struct fm_local local;
    if (fm_read_source(view, o->path, &local, err, sizeof err) != 0) {
        fprintf(stderr, "fsd-materialize: reading the source failed: %s\n", err);
        config_destroy(config);
        return FM_EXIT_FAILED;
    }
    fprintf(stderr,
            "fsd-materialize: read %" PRIu64 " rows from %s in %.2f s: %" PRIu64
            " entities to push (%" PRIu64 " rows skipped: in the future or past the TTL)\n",
            local.rows_read, local.source, (double)local.read_us / 1e6, local.rows,
            local.rows_skipped);

    struct fm_progress progress;
    fm_progress_init(&progress, o->view, local.rows, isatty(STDERR_FILENO) == 1);
    struct fm_result result;
    int rc = fm_push(o, view->schema, &local, &progress, &result, err, sizeof err);
    if (rc != 0) {
        fm_progress_break(&progress);
        fprintf(stderr, "fsd-materialize: push to %s failed: %s\n", o->addr, err);
    } else {
        printf("view=%s version=%" PRIu64 " rows_sent=%" PRIu64 " rows_kept=%" PRIu64
               " updates_replayed=%" PRIu64 " seconds=%.2f\n",
               o->view, result.version, result.rows_sent, result.rows_kept, result.updates_replayed,
               (double)(clock_mono_us() - started) / 1e6);
        fflush(stdout);
    }
    store_table_destroy(local.table);
    config_destroy(config);
    return rc == 0 ? FM_EXIT_OK : FM_EXIT_FAILED;
}

int main(int argc, char **argv) {
    struct fm_options options;
    int rc = _parse_args(argc, argv, &options);
    if (rc != FM_EXIT_OK) {
        return rc < 0 ? FM_EXIT_OK : rc;
    }
    /* The local table is the store's; its growth hands old indexes to RCU. */
    store_rcu_thread_online();
    rc = _run(&options);
    store_rcu_barrier();
    store_rcu_thread_offline();
    return rc;
}
