/*
 * The stats port's HTTP server: one thread with its own libevent base and evhttp, bound to
 * server.stats_bind:server.stats_port. Handlers, the window timer and the stop event all run
 * on that thread, so the state they share (reply buffer, window, HTTP counters) needs no
 * lock; what other threads write (stats_state, the collector registry) has its own.
 *
 *   main ── stats_setup: bind, listen ──▶ stats thread: event loop ◀── eventfd ── teardown
 *                                           ├─ evhttp: /metrics /healthz /readyz /status /
 *                                           ├─ timer every STATS_TICK_MS: window sample
 *                                           └─ timer every STATS_SWEEP_MS: request deadlines
 */
#include "internal.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/auth/auth.h"
#include "daemon/tls/tls.h"
#include "durability/wal.h"
#include "common/ports.h"
#include "common/proc.h"
#include "store/rcu.h"
#include "common/clock.h"

#define MAX_HEADERS_BYTES 8192
#define MAX_BODY_BYTES    4096 /* no route takes a body */
/* A connection's unparsed input stops being read past this: evhttp refuses a request above
 * the two limits anyway, and a connection evhttp has let go of may still receive bytes until
 * the next sweep (see struct stats_conn). */
#define MAX_INPUT_BYTES (2 * (MAX_HEADERS_BYTES + MAX_BODY_BYTES))

enum route {
    ROUTE_METRICS,
    ROUTE_HEALTHZ,
    ROUTE_READYZ,
    ROUTE_STATUS,
    ROUTE_PAGE,
    ROUTE_OTHER,
    ROUTE_COUNT,
};

static const struct {
    const char *path;
    bool needs_token;
} routes[ROUTE_OTHER] = {
    [ROUTE_METRICS] = {"/metrics", false},
    [ROUTE_HEALTHZ] = {"/healthz", false},
    [ROUTE_READYZ] = {"/readyz", false},
    [ROUTE_STATUS] = {"/status", true},
    [ROUTE_PAGE] = {"/", true},
};

/* HTTP statuses the server answers with, for fsd_stats_http_requests_total. */
static const int codes[] = {200, 401, 404, 405, 500, 503};
#define NCODES (sizeof codes / sizeof codes[0])

/*
 * Every open connection, for its request deadline. libevent 2.1's evhttp offers no hook when
 * a request starts or a connection closes, so the server creates each connection's
 * bufferevent itself (evhttp_set_bevcb) and holds a reference on it: evhttp's free then only
 * clears the callbacks, and the socket (BEV_OPT_CLOSE_ON_FREE) stays open until the sweep
 * sees that and drops the reference. A file descriptor therefore cannot be reused under a
 * record, and the sweep can shut down a late connection's socket, which evhttp then sees as
 * the client going away and frees the connection through its own path.
 */
struct stats_conn {
    struct bufferevent *bev;
    int64_t deadline_us; /* the whole next request must have arrived by then */
    struct stats_conn *next;
};

static struct {
    bool running;
    pthread_t thread;
    struct event_base *base;
    struct evhttp *http;
    struct event *stop;
    struct event *tick;
    struct event *sweep;
    int stop_fd;
    int64_t request_timeout_us;
    struct stats_conn *conns;
    uint64_t timeouts;
    struct log_limit timeout_log;
    struct buf reply; /* reused across requests */
    uint64_t requests[ROUTE_COUNT][NCODES];
} server = {.stop_fd = -1};

static const struct option_def stats_option_defs[] = {
    {
        .name = "stats_bind",
        .type = OPTION_STRING,
        .default_text = FSD_DEFAULT_BIND,
        .min = 1,
        .max = STATS_BIND_LEN - 1,
        OPTION_STRING_AT(struct stats_options, bind),
        .description = "Address of the HTTP stats endpoint (Prometheus metrics, health).",
    },
    {
        .name = "stats_port",
        .type = OPTION_UINT,
        .default_text = FSD_PORT_TEXT(FSD_STATS_DEFAULT_PORT),
        .min = 0,
        .max = 65535,
        OPTION_UINT_AT(struct stats_options, port),
        .description =
            "TCP port of the HTTP stats endpoint; 0 picks a free port (logged at start).",
    },
    {
        .name = "stats_token",
        .type = OPTION_STRING,
        .default_text = "",
        .min = 0,
        .max = STATS_TOKEN_LEN - 1,
        OPTION_STRING_AT(struct stats_options, token),
        .description = "Bearer token the stats endpoint's /status and / pages require "
                       "(Authorization: Bearer <token>); empty means no token. /metrics, "
                       "/healthz and /readyz stay open.",
    },
    {
        .name = "stats_request_timeout",
        .type = OPTION_DURATION,
        .default_text = "30s",
        .min = 100000,
        .max = 3600 * 1000000ll,
        OPTION_DURATION_AT(struct stats_options, request_timeout_us),
        .description = "A stats-port connection must send its whole next request within this "
                       "(from accept, or from the previous reply), however slowly its bytes "
                       "trickle in; otherwise it is closed. Idle keep-alive connections are "
                       "closed after it too.",
    },
};

const struct option_group stats_option_group = {
    "server", stats_option_defs, sizeof stats_option_defs / sizeof stats_option_defs[0], NULL};

void stats_options_init(struct stats_options *options) {
    (void)option_group_defaults(&stats_option_group, options, sizeof(*options), NULL, 0);
}

const struct metric_def stats_metric_defs[STATS_M_COUNT] = {
    [STATS_M_HTTP_REQUESTS] = {"fsd_stats_http_requests_total", METRIC_COUNTER, "path,code",
                               "Requests to the stats port, by route (\"other\" for unknown "
                               "paths) and HTTP status."},
    [STATS_M_HTTP_TIMEOUTS] = {"fsd_stats_http_timeouts_total", METRIC_COUNTER, "",
                               "Stats-port connections closed because their whole next request "
                               "had not arrived within server.stats_request_timeout."},
};

uint16_t stats_port(void) {
    return server.running ? stats_state.port : 0;
}

/* ---- replies ------------------------------------------------------------------------------- */

static void _count_request(enum route route, int code) {
    for (size_t i = 0; i < NCODES; i++) {
        if (codes[i] == code) {
            server.requests[route][i]++;
        }
    }
}

static void _reply(struct evhttp_request *req, enum route route, int code, const char *reason,
                   const char *content_type, const char *body, size_t len) {
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    evhttp_add_header(headers, "Content-Type", content_type);
    evhttp_add_header(headers, "Cache-Control", "no-store");
    evhttp_add_header(headers, "X-Content-Type-Options", "nosniff");
    struct evbuffer *out = evbuffer_new();
    if (out != NULL) {
        evbuffer_add(out, body, len);
    }
    _count_request(route, code);
    evhttp_send_reply(req, code, reason, out);
    if (out != NULL) {
        evbuffer_free(out);
    }
}

static void _reply_text(struct evhttp_request *req, enum route route, int code, const char *reason,
                        const char *text) {
    _reply(req, route, code, reason, "text/plain; charset=utf-8", text, strlen(text));
}

/* Sends server.reply, or 500 when building it ran out of memory. */
static void _reply_buffer(struct evhttp_request *req, enum route route, int code,
                          const char *reason, const char *content_type) {
    if (server.reply.failed) {
        _reply_text(req, route, 500, "Internal Server Error", "out of memory\n");
        return;
    }
    _reply(req, route, code, reason, content_type, server.reply.data ? server.reply.data : "",
           server.reply.len);
}

/* ---- routes -------------------------------------------------------------------------------- */

static void _metrics(struct evhttp_request *req) {
    metrics_collect_all(&server.reply); /* a failure leaves reply.failed set: 500 below */
    _reply_buffer(req, ROUTE_METRICS, 200, "OK", "text/plain; version=0.0.4; charset=utf-8");
}

static void _readyz(struct evhttp_request *req) {
    struct stats_view_summary *views;
    long n = stats_views_summarize(stats_state.catalog, &views);
    if (n < 0) {
        _reply_text(req, ROUTE_READYZ, 500, "Internal Server Error", "out of memory\n");
        return;
    }
    struct buf *b = &server.reply;
    buf_reset(b);
    size_t waiting = 0;
    for (long i = 0; i < n; i++) {
        if (views[i].ready) {
            continue;
        }
        if (waiting++ == 0) {
            buf_puts(b, "not ready\n");
        }
        buf_printf(b, "view %s: waiting for its first snapshot (%s source)\n", views[i].name,
                   views[i].source_type);
    }
    free(views);
    char why[256];
    if (wal_write_failing(why, sizeof why)) {
        /* Lookups go on, so still ready; the writes that are refused are said here. */
        buf_printf(b, "%swrites refused: the log of live writes cannot be written (%s)\n",
                   waiting == 0 ? "ready\n" : "", why);
    }
    if (waiting == 0) {
        if (b->len > 0) {
            _reply_buffer(req, ROUTE_READYZ, 200, "OK", "text/plain; charset=utf-8");
        } else {
            _reply_text(req, ROUTE_READYZ, 200, "OK", "ready\n");
        }
        return;
    }
    _reply_buffer(req, ROUTE_READYZ, 503, "Service Unavailable", "text/plain; charset=utf-8");
}

static void _status_or_page(struct evhttp_request *req, enum route route) {
    struct stats_view_summary *views;
    long n = stats_views_summarize(stats_state.catalog, &views);
    if (n < 0) {
        _reply_text(req, route, 500, "Internal Server Error", "out of memory\n");
        return;
    }
    if (route == ROUTE_STATUS) {
        stats_render_status(&server.reply, views, (size_t)n);
        _reply_buffer(req, route, 200, "OK", "application/json");
    } else {
        stats_render_page(&server.reply, views, (size_t)n);
        /* Inline style and nothing else: no script, no fetches, nothing framing it. */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Security-Policy",
                          "default-src 'none'; style-src 'unsafe-inline'; "
                          "frame-ancestors 'none'");
        _reply_buffer(req, route, 200, "OK", "text/html; charset=utf-8");
    }
    free(views);
}

/* Compares without an early exit, so the time taken does not reveal the token's prefix. */
static bool _token_matches(const char *given, size_t given_len, const char *token) {
    size_t len = strlen(token);
    unsigned char diff = given_len != len;
    for (size_t i = 0; i < len; i++) {
        diff |= (unsigned char)(token[i] ^ (i < given_len ? given[i] : 0));
    }
    return diff == 0;
}

/*
 * server.stats_token, or any token of the tokens file (server.auth.tokens_file), whatever its
 * role: the pages show what a read token's ListViews does, and more of the server's state.
 */
static bool _authorized(struct evhttp_request *req) {
    if (stats_state.token == NULL && !auth_enabled()) {
        return true;
    }
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (auth == NULL) {
        return false;
    }
    static struct auth_cache cache; /* the stats thread's own */
    struct auth_grant grant;
    enum auth_failure failure;
    if (auth_enabled() &&
        auth_authenticate(&cache, (const uint8_t *)auth, strlen(auth), &grant, &failure) == 0) {
        return true;
    }
    if (stats_state.token == NULL || strncasecmp(auth, "Bearer ", 7) != 0) {
        return false;
    }
    const char *given = auth + 7;
    given += strspn(given, " ");
    size_t len = strlen(given);
    while (len > 0 && given[len - 1] == ' ') {
        len--;
    }
    return _token_matches(given, len, stats_state.token);
}

static struct stats_conn *_conn_of(struct evhttp_request *req) {
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
    for (struct stats_conn *c = server.conns; c != NULL && bev != NULL; c = c->next) {
        if (c->bev == bev) {
            return c;
        }
    }
    return NULL;
}

static void _handle(struct evhttp_request *req, void *arg) {
    (void)arg;
    struct stats_conn *conn = _conn_of(req);
    if (conn != NULL) { /* this request arrived in time; the clock starts for the next one */
        conn->deadline_us = clock_mono_us() + server.request_timeout_us;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    if (path == NULL || path[0] == '\0') {
        path = "/";
    }
    enum route route = ROUTE_OTHER;
    for (int r = 0; r < ROUTE_OTHER; r++) {
        if (strcmp(path, routes[r].path) == 0) {
            route = (enum route)r;
        }
    }
    if (route == ROUTE_OTHER) {
        _reply_text(req, route, 404, "Not Found",
                    "not found; try /metrics, /healthz, /readyz, /status or /\n");
        return;
    }
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        _reply_text(req, route, 405, "Method Not Allowed", "method not allowed; use GET\n");
        return;
    }
    if (routes[route].needs_token && !_authorized(req)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Bearer realm=\"fsd\"");
        _reply_text(
            req, route, 401, "Unauthorized",
            "unauthorized: send Authorization: Bearer <token> (server.stats_token, or a token "
            "of server.auth.tokens_file)\n");
        return;
    }
    switch (route) {
    case ROUTE_METRICS:
        _metrics(req);
        break;
    case ROUTE_HEALTHZ:
        _reply_text(req, route, 200, "OK", "ok\n");
        break;
    case ROUTE_READYZ:
        _readyz(req);
        break;
    case ROUTE_STATUS:
    case ROUTE_PAGE:
        _status_or_page(req, route);
        break;
    default:
        break;
    }
}

void stats_collect_http(struct metric_writer *w, void *ctx) {
    (void)ctx;
    const struct metric_def *def = &stats_metric_defs[STATS_M_HTTP_REQUESTS];
    metrics_write_family(w, def);
    for (int r = 0; r < ROUTE_COUNT; r++) {
        for (size_t c = 0; c < NCODES; c++) {
            if (server.requests[r][c] == 0) {
                continue;
            }
            char code[8];
            snprintf(code, sizeof code, "%d", codes[c]);
            const char *labels[] = {r == ROUTE_OTHER ? "other" : routes[r].path, code};
            metrics_write_count(w, def, labels, server.requests[r][c]);
        }
    }
    def = &stats_metric_defs[STATS_M_HTTP_TIMEOUTS];
    metrics_write_family(w, def);
    metrics_write_count(w, def, NULL, server.timeouts);
}

/* ---- the thread ---------------------------------------------------------------------------- */

/*
 * A new connection's bufferevent, before evhttp gives it the socket: an OpenSSL one,
 * accepting, with TLS on, else a plain one; recorded with its first deadline (struct
 * stats_conn). NULL (out of memory) makes evhttp drop the connection.
 */
static struct bufferevent *_new_bufferevent(struct event_base *base, void *arg) {
    (void)arg;
    struct stats_conn *conn = calloc(1, sizeof *conn);
    if (conn == NULL) {
        return NULL;
    }
    struct bufferevent *bev = NULL;
    if (tls_enabled()) {
        SSL *ssl = tls_http_session_new();
        if (ssl != NULL) {
            bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                 BEV_OPT_CLOSE_ON_FREE);
            if (bev == NULL) {
                SSL_free(ssl);
            }
        }
    } else {
        bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    }
    if (bev == NULL) {
        free(conn);
        return NULL;
    }
    bufferevent_setwatermark(bev, EV_READ, 0, MAX_INPUT_BYTES);
    bufferevent_incref(bev);
    conn->bev = bev;
    conn->deadline_us = clock_mono_us() + server.request_timeout_us;
    conn->next = server.conns;
    server.conns = conn;
    return bev;
}

/* Whether evhttp has freed the connection: bufferevent_free clears every callback, and evhttp
 * keeps an event callback on an incoming connection for as long as it uses it. */
static bool _conn_released(const struct stats_conn *conn) {
    bufferevent_event_cb event_cb;
    bufferevent_getcb(conn->bev, NULL, NULL, &event_cb, NULL);
    return event_cb == NULL;
}

/* Drops the records of connections evhttp has let go of (closing their sockets) and shuts down
 * the socket of every connection past its deadline. */
static void _on_sweep(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    (void)arg;
    int64_t now = clock_mono_us();
    for (struct stats_conn **at = &server.conns; *at != NULL;) {
        struct stats_conn *conn = *at;
        if (_conn_released(conn)) {
            *at = conn->next;
            bufferevent_decref(conn->bev);
            free(conn);
            continue;
        }
        if (now >= conn->deadline_us) {
            evutil_socket_t sock = bufferevent_getfd(conn->bev);
            if (sock >= 0 && shutdown(sock, SHUT_RDWR) == 0) {
                server.timeouts++;
                uint64_t left_out;
                if (log_limit_allow(&server.timeout_log, now, 100000, &left_out))
                    log_warn("stats: connection closed, its request did not arrive in time",
                             "timeout_ms=%llu not_logged_before=%llu",
                             (unsigned long long)(server.request_timeout_us / 1000),
                             (unsigned long long)left_out);
            }
            conn->deadline_us = INT64_MAX; /* evhttp frees it once it sees the shutdown */
        }
        at = &conn->next;
    }
}

static void _on_stop(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    (void)arg;
    uint64_t v;
    if (read(fd, &v, sizeof v) < 0) {
        /* nothing to do: the loop stops either way */
    }
    event_base_loopbreak(server.base);
}

static void _on_tick(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    (void)arg;
    stats_window_tick(stats_state.catalog);
}

static void *_run(void *arg) {
    (void)arg;
    store_rcu_thread_online(); /* the handlers read the catalog in RCU read sections */
    stats_window_tick(stats_state.catalog);
    event_base_dispatch(server.base);
    stats_window_free();
    store_rcu_thread_offline();
    return NULL;
}

/* ---- setup / teardown ---------------------------------------------------------------------- */

/* A listening socket on bind:port (the first address that binds), or -1 with `err` set. */
static int _listen(const char *bind_addr, uint16_t port, char *err, size_t err_len) {
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai;
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    int rc = getaddrinfo(bind_addr, service, &hints, &ai);
    if (rc != 0) {
        snprintf(err, err_len, "resolve %s:%u: %s", bind_addr, (unsigned)port, gai_strerror(rc));
        return -1;
    }
    int fd = -1, last_errno = 0;
    for (struct addrinfo *a = ai; a != NULL && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        int one = 1;
        /* A restarted daemon must rebind while old connections sit in TIME_WAIT. */
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 64) != 0) {
            last_errno = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        snprintf(err, err_len, "bind %s:%u: %s", bind_addr, (unsigned)port, strerror(last_errno));
        return -1;
    }
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    if (getsockname(fd, (struct sockaddr *)&addr, &len) == 0) {
        stats_state.port =
            ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                             : ((struct sockaddr_in *)&addr)->sin_port);
    }
    return fd;
}

static void _free_server(void) {
    if (server.tick != NULL) {
        event_free(server.tick);
    }
    if (server.sweep != NULL) {
        event_free(server.sweep);
    }
    if (server.stop != NULL) {
        event_free(server.stop);
    }
    if (server.http != NULL) {
        evhttp_free(server.http); /* closes the listener and open connections */
    }
    while (server.conns != NULL) { /* evhttp let go of them all: their sockets close now */
        struct stats_conn *conn = server.conns;
        server.conns = conn->next;
        bufferevent_decref(conn->bev);
        free(conn);
    }
    if (server.base != NULL) {
        event_base_free(server.base);
    }
    if (server.stop_fd >= 0) {
        close(server.stop_fd);
    }
    buf_free(&server.reply);
    memset(&server, 0, sizeof server);
    server.stop_fd = -1;
}

int stats_setup(const struct stats_options *options, struct store_catalog *catalog, char *err,
                size_t err_len) {
    if (server.running) {
        snprintf(err, err_len, "the stats port is already set up");
        return -1;
    }
    pthread_mutex_lock(&stats_state.lock);
    stats_state.catalog = catalog;
    snprintf(stats_state.bind, sizeof stats_state.bind, "%s", options->bind);
    stats_state.token = options->token[0] != '\0' ? strdup(options->token) : NULL;
    bool oom = options->token[0] != '\0' && stats_state.token == NULL;
    pthread_mutex_unlock(&stats_state.lock);
    stats_state.started_at_us = proc_start_us();
    if (stats_state.started_at_us == 0) {
        stats_state.started_at_us = clock_wall_us();
    }
    if (oom) {
        snprintf(err, err_len, "out of memory");
        stats_state_free();
        return -1;
    }

    int fd = _listen(options->bind, (uint16_t)options->port, err, err_len);
    if (fd < 0) {
        stats_state_free();
        return -1;
    }
    /* One thread uses this base (stops come through an eventfd): no locking needed. */
    struct event_config *cfg = event_config_new();
    if (cfg != NULL) {
        event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
        server.base = event_base_new_with_config(cfg);
        event_config_free(cfg);
    }
    server.stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    server.http = server.base ? evhttp_new(server.base) : NULL;
    server.request_timeout_us = options->request_timeout_us;
    struct timeval every = {.tv_sec = STATS_TICK_MS / 1000,
                            .tv_usec = (STATS_TICK_MS % 1000) * 1000};
    struct timeval sweep_every = {.tv_sec = STATS_SWEEP_MS / 1000,
                                  .tv_usec = (STATS_SWEEP_MS % 1000) * 1000};
    if (server.base == NULL || server.http == NULL || server.stop_fd < 0 ||
        (server.stop = event_new(server.base, server.stop_fd, EV_READ | EV_PERSIST, _on_stop,
                                 NULL)) == NULL ||
        (server.tick = event_new(server.base, -1, EV_PERSIST, _on_tick, NULL)) == NULL ||
        (server.sweep = event_new(server.base, -1, EV_PERSIST, _on_sweep, NULL)) == NULL ||
        event_add(server.stop, NULL) != 0 || event_add(server.tick, &every) != 0 ||
        event_add(server.sweep, &sweep_every) != 0 ||
        evhttp_accept_socket_with_handle(server.http, fd) == NULL) {
        close(fd); /* evhttp did not take it */
        snprintf(err, err_len, "libevent: cannot set up the HTTP server");
        _free_server();
        stats_state_free();
        return -1;
    }
    /* Every method reaches _handle, which answers 405 itself (evhttp would say 501). */
    evhttp_set_allowed_methods(server.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                                EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                                EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                                EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_max_headers_size(server.http, MAX_HEADERS_BYTES);
    evhttp_set_max_body_size(server.http, MAX_BODY_BYTES);
    struct timeval idle = {.tv_sec = (time_t)(options->request_timeout_us / 1000000),
                           .tv_usec = (suseconds_t)(options->request_timeout_us % 1000000)};
    evhttp_set_timeout_tv(server.http, &idle); /* reading or writing nothing for this long */
    evhttp_set_gencb(server.http, _handle, NULL);
    evhttp_set_bevcb(server.http, _new_bufferevent, NULL);

    if (metrics_register(stats_collect_http, NULL) != 0) {
        snprintf(err, err_len, "out of memory");
        _free_server();
        stats_state_free();
        return -1;
    }
    int rc = pthread_create(&server.thread, NULL, _run, NULL);
    if (rc != 0) {
        snprintf(err, err_len, "cannot start the stats thread: %s", strerror(rc));
        metrics_unregister(stats_collect_http, NULL);
        _free_server();
        stats_state_free();
        return -1;
    }
    server.running = true;
    log_info("stats listening", "addr=%s port=%u auth=%s", options->bind,
             (unsigned)stats_state.port, stats_state.token || auth_enabled() ? "bearer" : "none");
    return 0;
}

void stats_teardown(void) {
    if (!server.running) {
        return;
    }
    uint64_t one = 1;
    if (write(server.stop_fd, &one, sizeof one) != sizeof one) {
        log_error("stats: cannot wake the stats thread to stop it", "error=%s",
                  LOG_QUOTE(strerror(errno)));
    }
    pthread_join(server.thread, NULL);
    metrics_unregister(stats_collect_http, NULL);
    _free_server();
    stats_state_free();
}
