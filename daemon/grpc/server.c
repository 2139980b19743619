/* The server's lifecycle: options, binding the per-worker listeners, starting and stopping. */
#include "internal.h"

#include "common/errors.h"
#include "common/ports.h"
#include "common/clock.h"

#include <errno.h>
#include <event2/thread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct grpc_server *grpc_server_current;

#define KIB 1024ull
#define GIB (1024ull * 1024 * 1024)

static const struct option_def grpc_option_defs[] = {
    {
        .name = "grpc_bind",
        .type = OPTION_STRING,
        .default_text = FSD_DEFAULT_BIND,
        .min = 1,
        .max = GRPC_BIND_LEN - 1,
        OPTION_STRING_AT(struct grpc_server_options, bind),
        .description = "Address the gRPC server listens on: an IPv4 or IPv6 address or a host "
                       "name; 0.0.0.0 or :: for every interface.",
    },
    {
        .name = "grpc_port",
        .type = OPTION_UINT,
        .default_text = FSD_PORT_TEXT(FSD_GRPC_DEFAULT_PORT),
        .min = 0,
        .max = 65535,
        OPTION_UINT_AT(struct grpc_server_options, port),
        .description = "TCP port of the gRPC server; 0 picks a free port (logged at start).",
    },
    {
        .name = "workers",
        .type = OPTION_UINT,
        .default_text = "0",
        .min = 0,
        .max = GRPC_MAX_WORKERS,
        OPTION_UINT_AT(struct grpc_server_options, workers),
        .description = "Worker threads answering lookups; 0 means one per CPU core.",
    },
    {
        .name = "max_message_bytes",
        .type = OPTION_SIZE,
        .default_text = "4MiB",
        .min = GRPC_MAX_MESSAGE_BYTES_MIN,
        .max = GRPC_MAX_MESSAGE_BYTES_MAX,
        OPTION_SIZE_AT(struct grpc_server_options, max_message_bytes),
        .description = "Largest gRPC message received or sent.",
    },
    {
        .name = "max_pending_bytes_per_connection",
        .type = OPTION_SIZE,
        .default_text = "4MiB",
        .min = 64 * KIB,
        .max = 64 * GIB,
        OPTION_SIZE_AT(struct grpc_server_options, max_pending_bytes_per_connection),
        .description = "Output budget of one gRPC connection: once responses not yet written "
                       "to it reach this, its next requests wait until the client has read "
                       "enough (one response may pass it).",
    },
    {
        .name = "max_pending_bytes_per_worker",
        .type = OPTION_SIZE,
        .default_text = "64MiB",
        .min = 64 * KIB,
        .max = 1024 * GIB,
        OPTION_SIZE_AT(struct grpc_server_options, max_pending_bytes_per_worker),
        .description = "Output budget of one worker thread, its connections together: once "
                       "reached, their next requests wait until clients have read enough.",
    },
    {
        .name = "write_timeout",
        .type = OPTION_DURATION,
        .default_text = "30s",
        .min = 1000000,
        .max = 3600 * 1000000ll,
        OPTION_DURATION_AT(struct grpc_server_options, write_timeout_us),
        .description = "A gRPC connection with responses waiting whose client has read none "
                       "of them for this long is closed.",
    },
    {
        .name = "preface_timeout",
        .type = OPTION_DURATION,
        .default_text = "10s",
        .min = 1000000,
        .max = 3600 * 1000000ll,
        OPTION_DURATION_AT(struct grpc_server_options, preface_timeout_us),
        .description = "A gRPC connection whose client has not sent the HTTP/2 preface this "
                       "long after it connected is closed.",
    },
    {
        .name = "idle_timeout",
        .type = OPTION_DURATION,
        .default_text = "5m",
        .min = 0,
        .max = 30 * 24 * 3600 * 1000000ll,
        OPTION_DURATION_AT(struct grpc_server_options, idle_timeout_us),
        .description = "A gRPC connection with no call for this long is sent GOAWAY and "
                       "closed (clients reconnect on their next call); 0 keeps idle "
                       "connections open.",
    },
    {
        .name = "max_connection_age",
        .type = OPTION_DURATION,
        .default_text = "0",
        .min = 0,
        .max = 30 * 24 * 3600 * 1000000ll,
        OPTION_DURATION_AT(struct grpc_server_options, max_connection_age_us),
        .description = "A gRPC connection this old (+-10 %) is drained with GOAWAY, so that "
                       "clients spread over new servers; calls in flight finish. 0: no limit.",
    },
    {
        .name = "max_connection_age_grace",
        .type = OPTION_DURATION,
        .default_text = "30s",
        .min = 0,
        .max = 24 * 3600 * 1000000ll,
        OPTION_DURATION_AT(struct grpc_server_options, max_connection_age_grace_us),
        .description = "How long calls of a connection drained for max_connection_age may "
                       "still run before it is closed.",
    },
    {
        .name = "max_connections",
        .type = OPTION_UINT,
        .default_text = "0",
        .min = 0,
        .max = 10000000,
        OPTION_UINT_AT(struct grpc_server_options, max_connections),
        .description = "Most gRPC connections open at once; more wait in the listen backlog "
                       "until one closes. 0: the open-file limit less 128 descriptors kept "
                       "for the stats port, snapshot loads and streams.",
    },
    {
        .name = "max_concurrent_streams",
        .type = OPTION_UINT,
        .default_text = "128",
        .min = 1,
        .max = 100000,
        OPTION_UINT_AT(struct grpc_server_options, max_concurrent_streams),
        .description = "Calls one gRPC connection may have open at once (HTTP/2 "
                       "SETTINGS_MAX_CONCURRENT_STREAMS); a stream past it is refused alone "
                       "with RST_STREAM(REFUSED_STREAM), which clients retry.",
    },
    {
        .name = "max_header_list_bytes",
        .type = OPTION_SIZE,
        .default_text = "16KiB",
        .min = 1 * KIB,
        .max = 1024 * KIB,
        OPTION_SIZE_AT(struct grpc_server_options, max_header_list_bytes),
        .description = "Largest decoded header list of a request (HTTP/2 "
                       "SETTINGS_MAX_HEADER_LIST_SIZE: names, values and 32 bytes per field); "
                       "a larger one is reset.",
    },
    {
        .name = "max_header_bytes_per_second",
        .type = OPTION_SIZE,
        /* A plain client decodes ~500 bytes a call (RFC 7541's 32 per field included): one
         * connection at 80k calls/s passed 32MiB and was closed as a flood. */
        .default_text = "256MiB",
        .min = 64 * KIB,
        .max = 64 * GIB,
        OPTION_SIZE_AT(struct grpc_server_options, max_header_bytes_per_second),
        .description = "Decoded request-header bytes one gRPC connection may send per second "
                       "(HPACK lets a few bytes on the wire decode to kilobytes); past it the "
                       "connection is sent GOAWAY and closed. A plain call decodes about 500 "
                       "bytes: the default leaves room for 500k calls/s on one connection.",
    },
    {
        .name = "max_protocol_faults_per_second",
        .type = OPTION_UINT,
        .default_text = "100",
        .min = 1,
        .max = 1000000,
        OPTION_UINT_AT(struct grpc_server_options, max_protocol_faults_per_second),
        .description = "Refused streams, reset header lists, empty DATA frames and HTTP/2 "
                       "stream errors one gRPC connection may cause per second (10 s worth may "
                       "come at once); past it the connection is sent GOAWAY and closed.",
    },
    {
        .name = "max_resets_per_second",
        .type = OPTION_UINT,
        .default_text = "1000",
        .min = 1,
        .max = 1000000,
        OPTION_UINT_AT(struct grpc_server_options, max_resets_per_second),
        .description = "RST_STREAM frames (cancelled calls) one gRPC connection may send per "
                       "second (10 s worth may come at once); past it the connection is sent "
                       "GOAWAY and closed, against rapid-reset floods.",
    },
};

/* What is not an option of the config file. */
static void _init_fixed(void *values) {
    struct grpc_server_options *options = values;
    options->shutdown_timeout_ms = GRPC_DEFAULT_SHUTDOWN_TIMEOUT_MS;
}

const struct option_group grpc_option_group = {
    "server", grpc_option_defs, sizeof grpc_option_defs / sizeof grpc_option_defs[0], _init_fixed};

void grpc_server_options_init(struct grpc_server_options *options) {
    /* The defaults parse: tests/daemon/test_options.c checks every group's. */
    (void)option_group_defaults(&grpc_option_group, options, sizeof(*options), NULL, 0);
}

uint16_t grpc_server_port(void) {
    return grpc_server_current ? grpc_server_current->port : 0;
}

/* "127.0.0.1:6566" or "[::1]:6566", for messages. */
static void _format_addr(const char *bind, uint16_t port, char *buf, size_t len) {
    if (strchr(bind, ':') != NULL) {
        snprintf(buf, len, "[%s]:%u", bind, port);
    } else {
        snprintf(buf, len, "%s:%u", bind, port);
    }
}

static void _set_port(struct sockaddr_storage *ss, uint16_t port) {
    if (ss->ss_family == AF_INET6) {
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
    } else {
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
    }
}

static uint16_t _get_port(const struct sockaddr_storage *ss) {
    if (ss->ss_family == AF_INET6) {
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    }
    return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

/*
 * SO_REUSEPORT lets a second process of the same user join our port silently and take half
 * the connections. A plain bind (SO_REUSEADDR only, so TIME_WAIT leftovers of a restart do
 * not count) fails while anyone listens there: that is the "already in use" we must report.
 */
static int _probe_free(const struct sockaddr_storage *ss, socklen_t ss_len, const char *addr,
                       char *err, size_t err_len) {
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return errors_set(err, err_len, "socket for %s: %s", addr, strerror(errno));
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rv = bind(fd, (const struct sockaddr *)ss, ss_len);
    int saved = errno;
    close(fd);
    if (rv != 0) {
        return errors_set(err, err_len, "bind %s: %s", addr, strerror(saved));
    }
    return 0;
}

static int _listen_one(struct sockaddr_storage *ss, socklen_t ss_len, const char *bind_text,
                       int *fd_out, char *err, size_t err_len) {
    char addr[300];
    _format_addr(bind_text, _get_port(ss), addr, sizeof addr);
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return errors_set(err, err_len, "socket for %s: %s", addr, strerror(errno));
    }
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        int saved = errno;
        close(fd);
        return errors_set(err, err_len, "setsockopt on %s: %s", addr, strerror(saved));
    }
    if (bind(fd, (struct sockaddr *)ss, ss_len) != 0) {
        int saved = errno;
        close(fd);
        return errors_set(err, err_len, "bind %s: %s", addr, strerror(saved));
    }
    if (listen(fd, SOMAXCONN) != 0) {
        int saved = errno;
        close(fd);
        return errors_set(err, err_len, "listen %s: %s", addr, strerror(saved));
    }
    *fd_out = fd;
    return 0;
}

/* Binds every worker's listener: worker 0 first, then the others on the port it got. */
static int _bind_all(struct grpc_server *s, char *err, size_t err_len) {
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_PASSIVE,
    };
    struct addrinfo *res = NULL;
    int rv = getaddrinfo(s->options.bind, NULL, &hints, &res);
    if (rv != 0 || res == NULL) {
        return errors_set(err, err_len, "bind address \"%s\": %s", s->options.bind,
                          gai_strerror(rv));
    }
    struct sockaddr_storage ss = {0};
    socklen_t ss_len = (socklen_t)res->ai_addrlen;
    memcpy(&ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    _set_port(&ss, (uint16_t)s->options.port);

    if (s->options.port != 0) {
        char addr[300];
        _format_addr(s->options.bind, (uint16_t)s->options.port, addr, sizeof addr);
        if (_probe_free(&ss, ss_len, addr, err, err_len) != 0) {
            return -1;
        }
    }
    for (unsigned i = 0; i < s->nworkers; i++) {
        if (_listen_one(&ss, ss_len, s->options.bind, &s->workers[i].listen_fd, err, err_len) !=
            0) {
            return -1;
        }
        if (i == 0) {
            struct sockaddr_storage got = {0};
            socklen_t got_len = sizeof got;
            if (getsockname(s->workers[0].listen_fd, (struct sockaddr *)&got, &got_len) != 0) {
                return errors_set(err, err_len, "getsockname: %s", strerror(errno));
            }
            s->port = _get_port(&got);
            _set_port(&ss, s->port);
        }
    }
    return 0;
}

static int _copy_methods(struct grpc_server *s, const struct grpc_method *methods, size_t nmethods,
                         char *err, size_t err_len) {
    s->methods = calloc(nmethods ? nmethods : 1, sizeof *s->methods);
    if (s->methods == NULL) {
        return errors_set(err, err_len, "out of memory");
    }
    for (size_t i = 0; i < nmethods; i++) {
        const struct grpc_method *m = &methods[i];
        const char *space = m->path != NULL ? strchr(m->path, ' ') : NULL;
        bool http1 = space != NULL && space > m->path && space[1] == '/';
        if (m->path == NULL || (m->path[0] != '/' && !http1)) {
            return errors_set(err, err_len,
                              "method %zu: path must be \"/service/method\" or \"METHOD /path\"",
                              i);
        }
        if (http1 && m->unary == NULL) {
            return errors_set(err, err_len, "method %zu (%s): HTTP/1.1 methods are unary", i,
                              m->path);
        }
        bool unary = m->unary != NULL;
        bool streaming = m->on_message != NULL && m->on_end != NULL;
        if (unary == streaming || (unary && (m->on_message || m->on_end || m->on_abort))) {
            return errors_set(
                err, err_len,
                "method %s: set either unary, or on_message and on_end (and on_abort)", m->path);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(s->methods[j].method.path, m->path) == 0) {
                return errors_set(err, err_len, "method %s: listed twice", m->path);
            }
        }
        s->methods[i].method = *m;
        s->methods[i].method.path = strdup(m->path);
        if (s->methods[i].method.path == NULL) {
            return errors_set(err, err_len, "out of memory");
        }
        s->methods[i].path_len = strlen(m->path);
        s->nmethods = i + 1;
    }
    return 0;
}

/*
 * The limit in force. Derived: the open-file limit less GRPC_FD_RESERVE (half the limit when
 * it is tiny). Asked for more than that: the derived one, with a warning, since past it
 * accept(2) would fail with EMFILE and take the stats port's descriptors with it.
 */
static uint32_t _max_connections(uint32_t asked) {
    struct rlimit rl;
    uint64_t fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                       ? (uint64_t)rl.rlim_cur
                       : UINT32_MAX;
    uint64_t derived = fds > 2 * GRPC_FD_RESERVE ? fds - GRPC_FD_RESERVE : fds / 2;
    if (derived > UINT32_MAX) {
        derived = UINT32_MAX;
    }
    if (asked == 0) {
        return (uint32_t)derived;
    }
    if (asked > derived) {
        log_warn("grpc max_connections lowered to fit the open-file limit",
                 "asked=%u limit=%llu open_file_limit=%llu reserve=%d", asked,
                 (unsigned long long)derived, (unsigned long long)fds, GRPC_FD_RESERVE);
        return (uint32_t)derived;
    }
    return asked;
}

static int _check_options(const struct grpc_server_options *o, char *err, size_t err_len) {
    if (o->bind[0] == '\0') {
        return errors_set(err, err_len, "bind address is empty");
    }
    if (o->port > 65535) {
        return errors_set(err, err_len, "port: %u is not a TCP port", o->port);
    }
    if (o->workers > GRPC_MAX_WORKERS) {
        return errors_set(err, err_len, "workers: %u is above the limit of %u", o->workers,
                          GRPC_MAX_WORKERS);
    }
    if (o->max_message_bytes > GRPC_MAX_MESSAGE_BYTES_MAX) {
        return errors_set(err, err_len, "max_message_bytes: %llu is above the limit of %u",
                          (unsigned long long)o->max_message_bytes, GRPC_MAX_MESSAGE_BYTES_MAX);
    }
    if (o->max_concurrent_streams == 0) {
        return errors_set(err, err_len, "max_concurrent_streams must be at least 1");
    }
    return 0;
}

static void _free_server(struct grpc_server *s) {
    if (s == NULL) {
        return;
    }
    for (unsigned i = 0; i < s->nworkers; i++) {
        grpc_worker_deinit(&s->workers[i]);
    }
    free(s->workers);
    for (size_t i = 0; i < s->nmethods; i++) {
        free((char *)s->methods[i].method.path);
    }
    free(s->methods);
    free(s);
}

/* Asks worker `w` to move to `stop` (never back); its loop wakes on the eventfd. */
static void _signal_worker(struct grpc_worker *w, enum grpc_stop stop) {
    atomic_store_explicit(&w->stop, (int)stop, memory_order_release);
    uint64_t one = 1;
    /* Fails only with EAGAIN when the counter is saturated, which still wakes the loop. */
    ssize_t n = write(w->wake_fd, &one, sizeof one);
    (void)n;
}

/* Stops and joins the threads started so far; the hard way, for a failed setup. */
static void _stop_started(struct grpc_server *s) {
    for (unsigned i = 0; i < s->nworkers; i++) {
        if (s->workers[i].thread_started) {
            _signal_worker(&s->workers[i], GRPC_STOP_HARD);
        }
    }
    for (unsigned i = 0; i < s->nworkers; i++) {
        if (s->workers[i].thread_started) {
            pthread_join(s->workers[i].thread, NULL);
            s->workers[i].thread_started = false;
        }
    }
}

/* The server as setup builds it before binding: options, methods, windows and limits, and the
 * workers with no listener yet. Returns NULL with `err` set. */
static struct grpc_server *_create(const struct grpc_server_options *options,
                                   const struct grpc_method *methods, size_t nmethods,
                                   grpc_worker_init_fn worker_init,
                                   grpc_worker_deinit_fn worker_deinit, char *err, size_t err_len) {
    struct grpc_server *s = calloc(1, sizeof *s);
    if (s == NULL) {
        errors_set(err, err_len, "out of memory");
        return NULL;
    }
    s->options = *options;
    s->worker_init = worker_init;
    s->worker_deinit = worker_deinit;
    if (_copy_methods(s, methods, nmethods, err, err_len) != 0) {
        _free_server(s);
        return NULL;
    }
    unsigned nworkers = options->workers;
    if (nworkers == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        nworkers = cores < 1 ? 1 : cores > GRPC_MAX_WORKERS ? GRPC_MAX_WORKERS : (unsigned)cores;
    }
    /* A whole request fits in a stream's window, so a max-size message never waits on
     * WINDOW_UPDATE round trips; the connection window lets a few of them overlap. */
    uint64_t window = options->max_message_bytes + GRPC_PREFIX_BYTES;
    s->stream_window = window < GRPC_MIN_STREAM_WINDOW ? GRPC_MIN_STREAM_WINDOW : (uint32_t)window;
    uint64_t conn_window = 2 * (uint64_t)s->stream_window;
    s->connection_window = conn_window < GRPC_MIN_CONNECTION_WINDOW ? GRPC_MIN_CONNECTION_WINDOW
                           : conn_window > INT32_MAX                ? INT32_MAX
                                                                    : (uint32_t)conn_window;
    s->conn_buffered_max = 4 * options->max_message_bytes;
    if (s->conn_buffered_max < GRPC_MIN_CONN_BUFFERED_BYTES) {
        s->conn_buffered_max = GRPC_MIN_CONN_BUFFERED_BYTES;
    }
    s->max_connections = _max_connections(options->max_connections);
    s->workers = calloc(nworkers, sizeof *s->workers);
    if (s->workers == NULL) {
        _free_server(s);
        errors_set(err, err_len, "out of memory");
        return NULL;
    }
    s->nworkers = nworkers;
    for (unsigned i = 0; i < nworkers; i++) {
        s->workers[i].server = s;
        s->workers[i].index = i;
        s->workers[i].listen_fd = -1;
        s->workers[i].wake_fd = -1;
        s->workers[i].resume_fd = -1;
    }
    return s;
}

int grpc_server_setup(const struct grpc_server_options *options, const struct grpc_method *methods,
                      size_t nmethods, grpc_worker_init_fn worker_init,
                      grpc_worker_deinit_fn worker_deinit, char *err, size_t err_len) {
    if (grpc_server_current != NULL) {
        return errors_set(err, err_len, "the gRPC server is already set up");
    }
    if (_check_options(options, err, err_len) != 0) {
        return -1;
    }
    /*
     * Process-wide libevent thread support, before any base exists, for whoever shares a base
     * across threads. Our bases are each used by one thread only (stop requests come through
     * an eventfd), so they are created without a lock below.
     */
    if (evthread_use_pthreads() != 0) {
        return errors_set(err, err_len, "libevent: cannot enable pthreads support");
    }
    struct grpc_server *s =
        _create(options, methods, nmethods, worker_init, worker_deinit, err, err_len);
    if (s == NULL) {
        return -1;
    }
    unsigned nworkers = s->nworkers;
    if (_bind_all(s, err, err_len) != 0) {
        _free_server(s);
        return -1;
    }
    for (unsigned i = 0; i < nworkers; i++) {
        if (grpc_worker_init(&s->workers[i], err, err_len) != 0) {
            _free_server(s);
            return -1;
        }
    }
    grpc_server_current = s;
    if (metrics_register(grpc_collect_metrics, NULL) != 0) {
        grpc_server_current = NULL;
        _free_server(s);
        return errors_set(err, err_len, "out of memory");
    }

    /* Workers start with every signal blocked, so process signals reach the main thread. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (unsigned i = 0; i < nworkers; i++) {
        int rv = pthread_create(&s->workers[i].thread, NULL, grpc_worker_main, &s->workers[i]);
        if (rv != 0) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            _stop_started(s);
            metrics_unregister(grpc_collect_metrics, NULL);
            grpc_server_current = NULL;
            _free_server(s);
            return errors_set(err, err_len, "starting worker %u: %s", i, strerror(rv));
        }
        s->workers[i].thread_started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    log_info("grpc listening",
             "bind=%s port=%u workers=%u max_message_bytes=%llu max_connections=%u",
             LOG_QUOTE(s->options.bind), s->port, s->nworkers,
             (unsigned long long)s->options.max_message_bytes, s->max_connections);
    return 0;
}

void grpc_server_shutdown(void) {
    struct grpc_server *s = grpc_server_current;
    if (s == NULL || s->shut_down) {
        return;
    }
    s->shut_down = true;
    int64_t start_us = clock_mono_us();
    for (unsigned i = 0; i < s->nworkers; i++) {
        _signal_worker(&s->workers[i], GRPC_STOP_DRAIN);
    }
    /* pthread_timedjoin_np takes an absolute CLOCK_REALTIME time. */
    struct timespec deadline =
        clock_after(CLOCK_REALTIME, (int64_t)s->options.shutdown_timeout_ms * 1000);
    unsigned hard = 0;
    for (unsigned i = 0; i < s->nworkers; i++) {
        struct grpc_worker *w = &s->workers[i];
        if (!w->thread_started) {
            continue;
        }
        if (pthread_timedjoin_np(w->thread, NULL, &deadline) != 0) {
            hard++;
            _signal_worker(w, GRPC_STOP_HARD);
            pthread_join(w->thread, NULL);
        }
        w->thread_started = false;
    }
    if (hard > 0) {
        log_warn("grpc shutdown timed out; connections closed hard", "workers=%u timeout_ms=%u",
                 hard, s->options.shutdown_timeout_ms);
    }
    log_info("grpc stopped", "took_ms=%lld", (long long)((clock_mono_us() - start_us) / 1000));
}

void grpc_server_teardown(void) {
    struct grpc_server *s = grpc_server_current;
    if (s == NULL) {
        return;
    }
    grpc_server_shutdown();
    metrics_unregister(grpc_collect_metrics, NULL); /* no scrape reads the server after this */
    grpc_server_current = NULL;
    _free_server(s);
}

struct grpc_server *grpc_server_create_unbound(const struct grpc_server_options *options,
                                               const struct grpc_method *methods, size_t nmethods,
                                               char *err, size_t err_len) {
    if (_check_options(options, err, err_len) != 0) {
        return NULL;
    }
    struct grpc_server *s = _create(options, methods, nmethods, NULL, NULL, err, err_len);
    for (unsigned i = 0; s != NULL && i < s->nworkers; i++) {
        if (grpc_worker_init(&s->workers[i], err, err_len) != 0) {
            _free_server(s);
            return NULL;
        }
    }
    return s;
}

void grpc_server_destroy_unbound(struct grpc_server *s) {
    if (s == NULL) {
        return;
    }
    for (unsigned i = 0; i < s->nworkers; i++) {
        grpc_worker_finish(&s->workers[i]);
    }
    _free_server(s);
}
