/*
 * fsctl: fsd's command-line client for people (and scripts, with --json).
 *
 *   fsctl [--addr HOST:PORT] [--timeout MS] [--token-file FILE] [--tls-ca FILE ...]
 *         COMMAND [ARGS]
 *
 * Commands are rows of one table: name, synopsis, what it does, and its function. Each
 * command parses its own options. Exit status: 0 done, 1 failed (cannot connect, the RPC
 * failed, the server does not know a name), 2 usage.
 */
#include "fsctl_internal.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "grpc/health/v1/health.pb-c.h"

#define _SERVICE "/fsd.v1.FeatureService/"

struct command {
    const char *name;
    const char *synopsis;
    const char *summary;
    int (*run)(struct fsctl *ctx, int argc, char **argv);
};

static int _cmd_views(struct fsctl *ctx, int argc, char **argv);
static int _cmd_health(struct fsctl *ctx, int argc, char **argv);

static const struct command _commands[] = {
    {"views", "[--json]",
     "list the views: join keys, TTL, rows, memory, snapshot, features, defaults", _cmd_views},
    {"get", "(--view VIEW | --service NAME) --key NAME=VALUE ... [--features a,b] [--json]",
     "look entities up: values, statuses, staleness (see fsctl get --help)", fsctl_cmd_get},
    {"health", "[--service NAME]", "the gRPC health check: SERVING (exit 0) or NOT_SERVING",
     _cmd_health},
    {"load", "--view V [--path P] [--stream-position ID] [--wait S]",
     "load a view's snapshot now and wait for the result", fsctl_cmd_load},
};

static void _usage(FILE *out) {
    fprintf(out,
            "usage: fsctl [--addr HOST:PORT] [--timeout MS] [--token-file FILE]\n"
            "             [--tls-ca FILE [--tls-cert FILE --tls-key FILE]] COMMAND [ARGS]\n\n"
            "options:\n"
            "  --addr HOST:PORT  fsd's gRPC address (default " FSCTL_DEFAULT_ADDR ")\n"
            "  --timeout MS      deadline of each call in milliseconds (default %d)\n"
            "  --token-file FILE send the token on FILE's first line with every call\n"
            "                    (default: the file $FSD_TOKEN_FILE names, if set)\n"
            "  --tls-ca FILE     connect with TLS; FILE: the CAs of fsd's certificate (PEM),\n"
            "                    which must name HOST\n"
            "  --tls-cert FILE, --tls-key FILE  a client certificate and its key (mutual TLS)\n"
            "  --help            this text; COMMAND --help for one command\n\n"
            "commands:\n",
            FSCTL_DEFAULT_TIMEOUT_MS);
    for (size_t i = 0; i < sizeof _commands / sizeof _commands[0]; i++) {
        fprintf(out, "  %-7s %s\n          %s\n", _commands[i].name, _commands[i].synopsis,
                _commands[i].summary);
    }
    fprintf(out, "\nexit status: 0 ok, 1 failed (connection, RPC error, unknown name), 2 usage\n");
}

static void _command_usage(FILE *out, const char *name) {
    for (size_t i = 0; i < sizeof _commands / sizeof _commands[0]; i++) {
        if (strcmp(_commands[i].name, name) == 0) {
            fprintf(out, "usage: fsctl [--addr HOST:PORT] %s %s\n  %s\n", name,
                    _commands[i].synopsis, _commands[i].summary);
        }
    }
}

int fsctl_usage_error(const char *command, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("fsctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see fsctl %s%s--help)\n", command ? command : "", command ? " " : "");
    return FSCTL_USAGE;
}

/* ---- calling fsd ------------------------------------------------------------------------- */

int fsctl_call(struct fsctl *ctx, const char *method, const uint8_t *msg, size_t len,
               uint8_t **resp, size_t *resp_len) {
    char err[512];
    if (ctx->conn == NULL) {
        char host[256];
        uint16_t port;
        if (client_parse_addr(ctx->addr, host, sizeof host, &port, err, sizeof err) != 0) {
            fprintf(stderr, "fsctl: %s\n", err);
            return FSCTL_USAGE;
        }
        struct client_options options;
        client_options_init(&options);
        options.connect_timeout_ms = ctx->timeout_ms;
        if (client_options_token_file(&options, ctx->token_file, err, sizeof err) != 0 ||
            client_options_tls(&options, ctx->tls_ca, ctx->tls_cert, ctx->tls_key, err,
                               sizeof err) != 0) {
            fprintf(stderr, "fsctl: %s\n", err);
            return FSCTL_USAGE;
        }
        ctx->conn = client_conn_create(host, port, &options, err, sizeof err);
        if (ctx->conn == NULL) {
            fprintf(stderr, "fsctl: %s\n", err);
            return FSCTL_FAILED;
        }
    }
    struct client_request req = {
        .path = method,
        .msg = msg,
        .len = len,
        .timeout_us = (int64_t)ctx->timeout_ms * 1000,
    };
    struct client_response out;
    client_call(ctx->conn, &req, &out);
    const char *name = strrchr(method, '/') + 1;
    if (out.status != CLIENT_OK) {
        fprintf(stderr, "fsctl: %s: %s: %s\n", name, client_code_name(out.status),
                out.message && out.message[0] ? out.message : "(no message)");
        client_response_deinit(&out);
        return FSCTL_FAILED;
    }
    *resp = out.data; /* ownership passes to the caller */
    *resp_len = out.len;
    out.data = NULL;
    client_response_deinit(&out);
    return FSCTL_OK;
}

Fsd__V1__ListViewsResponse *fsctl_list_views(struct fsctl *ctx) {
    uint8_t *resp;
    size_t len;
    if (fsctl_call(ctx, _SERVICE "ListViews", (const uint8_t *)"", 0, &resp, &len) != FSCTL_OK) {
        return NULL;
    }
    Fsd__V1__ListViewsResponse *views = fsd__v1__list_views_response__unpack(NULL, len, resp);
    free(resp);
    if (views == NULL) {
        fprintf(stderr, "fsctl: ListViews: the response is not a valid ListViewsResponse\n");
    }
    return views;
}

/* ---- views ------------------------------------------------------------------------------- */

static const char *_key_type_name(Fsd__V1__KeyType type) {
    return type == FSD__V1__KEY_TYPE__KEY_INT64    ? "int64"
           : type == FSD__V1__KEY_TYPE__KEY_STRING ? "string"
                                                   : "unknown";
}

static void _views_json(const Fsd__V1__ListViewsResponse *resp, struct buf *b) {
    buf_printf(b, "{\"views\": [");
    for (size_t v = 0; v < resp->n_views; v++) {
        const Fsd__V1__ViewInfo *view = resp->views[v];
        buf_printf(b, "%s\n  {\"name\": ", v ? "," : "");
        json_string(b, view->name, strlen(view->name));
        buf_printf(b, ", \"join_keys\": [");
        for (size_t k = 0; k < view->n_join_keys; k++) {
            buf_printf(b, "%s{\"name\": ", k ? ", " : "");
            json_string(b, view->join_keys[k]->name, strlen(view->join_keys[k]->name));
            buf_printf(b, ", \"type\": \"%s\"}", _key_type_name(view->join_keys[k]->type));
        }
        buf_printf(b,
                   "], \"ttl_seconds\": %" PRId64 ", \"rows\": %" PRIu64
                   ", \"memory_bytes\": %" PRIu64 ", \"snapshot_version\": %" PRIu64
                   ", \"last_load_time_us\": %" PRId64 ", \"snapshot_stream_position\": ",
                   view->ttl_seconds, view->rows, view->memory_bytes, view->snapshot_version,
                   view->last_load_time_us);
        json_string(b, view->snapshot_stream_position, strlen(view->snapshot_stream_position));
        buf_printf(b, ",\n   \"source\": ");
        /* the materializer's side: "" and zeros for a view without a source */
        json_string(b, view->source, strlen(view->source));
        buf_printf(b,
                   ", \"loading\": %s, \"last_load_result\": ", view->loading ? "true" : "false");
        json_string(b, view->last_load_result, strlen(view->last_load_result));
        buf_printf(b, ", \"last_error\": ");
        json_string(b, view->last_error, strlen(view->last_error));
        buf_printf(b,
                   ", \"loads_completed\": %" PRIu64 ", \"loads_failed\": %" PRIu64
                   ", \"rows_read\": %" PRIu64 ", \"rows_kept\": %" PRIu64
                   ", \"rows_skipped\": %" PRIu64 ", \"load_duration_us\": %" PRId64
                   ",\n   \"features\": [",
                   view->loads_completed, view->loads_failed, view->rows_read, view->rows_kept,
                   view->rows_skipped, view->load_duration_us);
        for (size_t f = 0; f < view->n_features; f++) {
            const Fsd__V1__FeatureInfo *feature = view->features[f];
            buf_printf(b, "%s\n    {\"name\": ", f ? "," : "");
            json_string(b, feature->name, strlen(feature->name));
            buf_printf(b, ", \"type\": \"%s\", \"default_kind\": ", fsctl_type_name(feature->type));
            json_string(b, feature->default_kind, strlen(feature->default_kind));
            buf_printf(b, ", \"default_value\": ");
            if (strcmp(feature->default_kind, "none") == 0) {
                buf_printf(b, "null");
            } else {
                json_string(b, feature->default_value, strlen(feature->default_value));
            }
            buf_printf(b, "}");
        }
        buf_printf(b, "]}");
    }
    buf_printf(b, "],\n \"feature_services\": [");
    for (size_t s = 0; s < resp->n_feature_services; s++) {
        const Fsd__V1__FeatureServiceInfo *service = resp->feature_services[s];
        buf_printf(b, "%s\n  {\"name\": ", s ? "," : "");
        json_string(b, service->name, strlen(service->name));
        buf_printf(b, ", \"features\": [");
        for (size_t f = 0; f < service->n_features; f++) {
            if (f) {
                buf_printf(b, ", ");
            }
            json_string(b, service->features[f], strlen(service->features[f]));
        }
        buf_printf(b, "]}");
    }
    buf_printf(b, "]}\n");
}

static void _views_text(const Fsd__V1__ListViewsResponse *resp, FILE *out) {
    if (resp->n_views == 0) {
        fprintf(out, "no views\n");
    }
    for (size_t v = 0; v < resp->n_views; v++) {
        const Fsd__V1__ViewInfo *view = resp->views[v];
        char ttl[32], memory[32], loaded[32];
        format_duration_s(ttl, sizeof ttl, view->ttl_seconds);
        text_bytes(memory, sizeof memory, view->memory_bytes);
        format_time_us(loaded, sizeof loaded, view->last_load_time_us);
        fprintf(out, "%sview %s\n  join keys: ", v ? "\n" : "", view->name);
        for (size_t k = 0; k < view->n_join_keys; k++) {
            fprintf(out, "%s%s (%s)", k ? ", " : "", view->join_keys[k]->name,
                    _key_type_name(view->join_keys[k]->type));
        }
        fprintf(out, "\n  ttl: %s   rows: %" PRIu64 "   memory: %s\n", ttl, view->rows, memory);
        if (view->snapshot_version == 0) {
            fprintf(out, "  snapshot: none loaded\n");
        } else {
            fprintf(out, "  snapshot: version %" PRIu64 ", loaded %s\n", view->snapshot_version,
                    loaded);
        }
        struct table *t = table_create(3);
        table_add(t, "feature");
        table_add(t, "type");
        table_add(t, "default");
        for (size_t f = 0; f < view->n_features; f++) {
            const Fsd__V1__FeatureInfo *feature = view->features[f];
            table_add(t, feature->name);
            table_add(t, fsctl_type_name(feature->type));
            struct buf d = {0};
            if (strcmp(feature->default_kind, "none") == 0) {
                buf_printf(&d, "-");
            } else if (strcmp(feature->default_kind, "literal") == 0) {
                buf_printf(&d, "%s", feature->default_value);
            } else {
                buf_printf(&d, "%s (%s)", feature->default_kind, feature->default_value);
            }
            table_add(t, d.data ? d.data : "");
            buf_free(&d);
        }
        table_print(t, out, "  ");
        table_destroy(t);
    }
    if (resp->n_feature_services > 0) {
        fprintf(out, "\nfeature services\n");
    }
    for (size_t s = 0; s < resp->n_feature_services; s++) {
        const Fsd__V1__FeatureServiceInfo *service = resp->feature_services[s];
        fprintf(out, "  %s:", service->name);
        for (size_t f = 0; f < service->n_features; f++) {
            fprintf(out, "%s %s", f ? "," : "", service->features[f]);
        }
        fprintf(out, "\n");
    }
}

static int _cmd_views(struct fsctl *ctx, int argc, char **argv) {
    static const struct option options[] = {
        {"json", no_argument, NULL, 'j'},
        {"addr", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool json = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
        switch (opt) {
        case 'j':
            json = true;
            break;
        case 'a':
            ctx->addr = optarg;
            break;
        case 'h':
            _command_usage(stdout, "views");
            return FSCTL_OK;
        default:
            return fsctl_usage_error("views", "invalid option");
        }
    }
    if (optind < argc) {
        return fsctl_usage_error("views", "unexpected argument \"%s\"", argv[optind]);
    }
    Fsd__V1__ListViewsResponse *resp = fsctl_list_views(ctx);
    if (resp == NULL) {
        return FSCTL_FAILED;
    }
    if (json) {
        struct buf b = {0};
        _views_json(resp, &b);
        fputs(b.data ? b.data : "", stdout);
        buf_free(&b);
    } else {
        _views_text(resp, stdout);
    }
    fsd__v1__list_views_response__free_unpacked(resp, NULL);
    return FSCTL_OK;
}

/* ---- health ------------------------------------------------------------------------------ */

static int _cmd_health(struct fsctl *ctx, int argc, char **argv) {
    static const struct option options[] = {
        {"service", required_argument, NULL, 's'},
        {"addr", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *service = "";
    int opt;
    while ((opt = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
        switch (opt) {
        case 's':
            service = optarg;
            break;
        case 'a':
            ctx->addr = optarg;
            break;
        case 'h':
            _command_usage(stdout, "health");
            return FSCTL_OK;
        default:
            return fsctl_usage_error("health", "invalid option");
        }
    }
    if (optind < argc) {
        return fsctl_usage_error("health", "unexpected argument \"%s\"", argv[optind]);
    }
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)service;
    size_t len = grpc__health__v1__health_check_request__get_packed_size(&req);
    uint8_t *msg = malloc(len + 1);
    if (msg == NULL) {
        fprintf(stderr, "fsctl: out of memory\n");
        return FSCTL_FAILED;
    }
    grpc__health__v1__health_check_request__pack(&req, msg);
    uint8_t *resp_bytes;
    size_t resp_len;
    int rc = fsctl_call(ctx, "/grpc.health.v1.Health/Check", msg, len, &resp_bytes, &resp_len);
    free(msg);
    if (rc != FSCTL_OK) {
        return rc;
    }
    Grpc__Health__V1__HealthCheckResponse *resp =
        grpc__health__v1__health_check_response__unpack(NULL, resp_len, resp_bytes);
    free(resp_bytes);
    if (resp == NULL) {
        fprintf(stderr, "fsctl: Check: the response is not a valid HealthCheckResponse\n");
        return FSCTL_FAILED;
    }
    const ProtobufCEnumValue *value = protobuf_c_enum_descriptor_get_value(
        &grpc__health__v1__health_check_response__serving_status__descriptor, resp->status);
    printf("%s\n", value != NULL ? value->name : "UNKNOWN");
    rc = resp->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
             ? FSCTL_OK
             : FSCTL_FAILED;
    grpc__health__v1__health_check_response__free_unpacked(resp, NULL);
    return rc;
}

/* ---- main -------------------------------------------------------------------------------- */

static int _parse_timeout(const char *text, uint32_t *out) {
    char *end;
    errno = 0;
    unsigned long ms = strtoul(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0 || ms == 0 ||
        ms > 3600 * 1000) {
        return -1;
    }
    *out = (uint32_t)ms;
    return 0;
}

int main(int argc, char **argv) {
    static const struct option options[] = {
        {"addr", required_argument, NULL, 'a'},
        {"timeout", required_argument, NULL, 't'},
        {"token-file", required_argument, NULL, 'k'},
        {"tls-ca", required_argument, NULL, 'C'},
        {"tls-cert", required_argument, NULL, 'E'},
        {"tls-key", required_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct fsctl ctx = {.addr = FSCTL_DEFAULT_ADDR, .timeout_ms = FSCTL_DEFAULT_TIMEOUT_MS};
    int opt;
    /* "+": stop at the command name; what follows is the command's to parse. */
    while ((opt = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
        switch (opt) {
        case 'a':
            ctx.addr = optarg;
            break;
        case 'k':
            ctx.token_file = optarg;
            break;
        case 'C':
            ctx.tls_ca = optarg;
            break;
        case 'E':
            ctx.tls_cert = optarg;
            break;
        case 'K':
            ctx.tls_key = optarg;
            break;
        case 't':
            if (_parse_timeout(optarg, &ctx.timeout_ms) != 0) {
                return fsctl_usage_error(NULL, "--timeout takes milliseconds, 1..3600000");
            }
            break;
        case 'h':
            _usage(stdout);
            return FSCTL_OK;
        default:
            _usage(stderr);
            return FSCTL_USAGE;
        }
    }
    if (optind >= argc) {
        _usage(stderr);
        return FSCTL_USAGE;
    }
    const char *name = argv[optind];
    for (size_t i = 0; i < sizeof _commands / sizeof _commands[0]; i++) {
        if (strcmp(_commands[i].name, name) == 0) {
            int sub_argc = argc - optind;
            char **sub_argv = argv + optind;
            optind = 1; /* the command parses its own options from its name on */
            int rc = _commands[i].run(&ctx, sub_argc, sub_argv);
            client_conn_destroy(ctx.conn);
            return rc;
        }
    }
    return fsctl_usage_error(NULL, "unknown command \"%s\"", name);
}
