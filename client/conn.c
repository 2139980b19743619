/*
 * One client connection: a non-blocking TCP socket and the I/O loop that feeds nghttp2.
 *
 *   client_submit ─▶ nghttp2_submit_request ─▶ (poll) mem_send ─▶ out buffer ─▶ send(2)
 *   recv(2) ─▶ mem_recv ─▶ callbacks: headers / data / END_STREAM ─▶ done queue
 *   done queue ─▶ completion callbacks (after mem_recv returns, so they may submit freely)
 */
#include "client_internal.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include "common/clock.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

void client_options_init(struct client_options *options) {
    *options = (struct client_options){
        .connect_timeout_ms = CLIENT_DEFAULT_CONNECT_TIMEOUT_MS,
        .stream_window_bytes = CLIENT_DEFAULT_STREAM_WINDOW_BYTES,
        .connection_window_bytes = CLIENT_DEFAULT_CONNECTION_WINDOW_BYTES,
        .max_response_bytes = CLIENT_DEFAULT_MAX_RESPONSE_BYTES,
    }; /* no token, cleartext */
}

int client_options_token_file(struct client_options *options, const char *path, char *err,
                              size_t err_len) {
    const char *from = "--token-file";
    if (path == NULL || path[0] == '\0') {
        path = getenv(CLIENT_TOKEN_FILE_ENV);
        from = CLIENT_TOKEN_FILE_ENV;
        if (path == NULL || path[0] == '\0') {
            return 0;
        }
    }
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        snprintf(err, err_len, "%s %s: %s", from, path, strerror(errno));
        return -1;
    }
    char line[CLIENT_AUTHORIZATION_MAX];
    bool got = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    char *token = line + (got ? strspn(line, " \t") : 0);
    size_t len = got ? strcspn(token, " \t\r\n") : 0;
    token[len] = '\0';
    if (len == 0) {
        snprintf(err, err_len, "%s %s: no token on its first line", from, path);
        return -1;
    }
    if (len + sizeof "Bearer " > sizeof options->authorization) {
        snprintf(err, err_len, "%s %s: the token is longer than %zu bytes", from, path,
                 sizeof options->authorization - sizeof "Bearer ");
        return -1;
    }
    snprintf(options->authorization, sizeof options->authorization, "Bearer %s", token);
    return 0;
}

/* ---- connection -------------------------------------------------------------------------- */

/* The connection is unusable: every call in flight completes with `status`. */
static void _fail(struct client_conn *conn, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void _fail(struct client_conn *conn, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(conn->error, sizeof conn->error, fmt, ap);
    va_end(ap);
    if (conn->fd >= 0) {
        close(conn->fd);
        conn->fd = -1;
    }
    for (struct client_call *call = conn->live; call != NULL; call = call->next) {
        client_call_complete(call, status, "%s", conn->error);
        /* nghttp2 will never be driven again: its references no longer matter. */
        call->stream_closed = true;
    }
}

static void _set_error(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void _set_error(char *err, size_t err_len, const char *fmt, ...) {
    if (err == NULL || err_len == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

/* Non-blocking connect to one address, waiting at most until `deadline_us`. Returns the
 * socket or -1 with errno set (ETIMEDOUT when the deadline passed). */
static int _connect_one(const struct addrinfo *ai, int64_t deadline_us) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
        return fd;
    }
    if (errno != EINPROGRESS) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    for (;;) {
        int64_t left_us = deadline_us - clock_mono_us();
        if (left_us <= 0) {
            close(fd);
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd pfd = {fd, POLLOUT, 0};
        int rc = poll(&pfd, 1, (int)((left_us + 999) / 1000));
        if (rc < 0 && errno == EINTR) {
            continue;
        }
        if (rc < 0) {
            int saved = errno;
            close(fd);
            errno = saved;
            return -1;
        }
        if (rc == 0) {
            continue;
        }
        int so_error = 0;
        socklen_t len = sizeof so_error;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) {
            so_error = errno;
        }
        if (so_error != 0) {
            close(fd);
            errno = so_error;
            return -1;
        }
        return fd;
    }
}

/* ---- TLS --------------------------------------------------------------------------------- */

/* OpenSSL's reason for the oldest queued error (the queue cleared), or `fallback`. */
static const char *_tls_reason(char *out, size_t out_len, const char *fallback) {
    unsigned long e = ERR_get_error();
    const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;
    snprintf(out, out_len, "%s", reason != NULL ? reason : fallback);
    ERR_clear_error();
    return out;
}

/*
 * The TLS handshake on connected socket `fd`, waiting at most until `deadline_us`: the server's
 * certificate must chain to tls_ca_file and name `host`, and the server must speak h2. Returns
 * the session, or NULL with `err` set.
 */
static SSL *_tls_handshake(int fd, const char *host, const struct client_options *o,
                           int64_t deadline_us, char *err, size_t err_len) {
    char why[256];
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = NULL;
    static const unsigned char h2[] = {2, 'h', '2'};
    if (ctx == NULL) {
        _set_error(err, err_len, "TLS: out of memory");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_load_verify_locations(ctx, o->tls_ca_file, NULL) != 1) {
        _set_error(err, err_len, "TLS: CA file %s: %s", o->tls_ca_file,
                   _tls_reason(why, sizeof why, "cannot read it"));
        goto fail;
    }
    if (o->tls_cert_file[0] != '\0' &&
        (SSL_CTX_use_certificate_chain_file(ctx, o->tls_cert_file) != 1 ||
         SSL_CTX_use_PrivateKey_file(ctx, o->tls_key_file, SSL_FILETYPE_PEM) != 1)) {
        _set_error(err, err_len, "TLS: client certificate %s / key %s: %s", o->tls_cert_file,
                   o->tls_key_file, _tls_reason(why, sizeof why, "cannot read them"));
        goto fail;
    }
    SSL_CTX_set_alpn_protos(ctx, h2, sizeof h2);
    ssl = SSL_new(ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        _set_error(err, err_len, "TLS: out of memory");
        goto fail;
    }
    /* The name the certificate must carry: an address as an IP, else a DNS name (and SNI). */
    struct in6_addr ip;
    bool is_ip = inet_pton(AF_INET, host, &ip) == 1 || inet_pton(AF_INET6, host, &ip) == 1;
    if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) != 1
              : (SSL_set_tlsext_host_name(ssl, host) != 1 || SSL_set1_host(ssl, host) != 1)) {
        _set_error(err, err_len, "TLS: cannot check the server's name %s", host);
        goto fail;
    }
    for (;;) {
        int rc = SSL_connect(ssl);
        if (rc == 1) {
            break;
        }
        int e = SSL_get_error(ssl, rc);
        int64_t left_us = deadline_us - clock_mono_us();
        if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) || left_us <= 0) {
            long verify = SSL_get_verify_result(ssl);
            _set_error(err, err_len, "TLS handshake with %s failed: %s%s%s", host,
                       left_us <= 0 ? "timed out" : _tls_reason(why, sizeof why, "TLS error"),
                       verify != X509_V_OK ? ": " : "",
                       verify != X509_V_OK ? X509_verify_cert_error_string(verify) : "");
            goto fail;
        }
        struct pollfd pfd = {fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, 0};
        poll(&pfd, 1, (int)((left_us + 999) / 1000));
    }
    const unsigned char *proto = NULL;
    unsigned proto_len = 0;
    SSL_get0_alpn_selected(ssl, &proto, &proto_len);
    if (proto_len != 2 || memcmp(proto, "h2", 2) != 0) {
        _set_error(err, err_len, "TLS: the server at %s did not agree to HTTP/2 (ALPN h2)", host);
        goto fail;
    }
    SSL_CTX_free(ctx); /* the session holds its own reference */
    return ssl;

fail:
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return NULL;
}

struct client_conn *client_conn_create(const char *host, uint16_t port,
                                       const struct client_options *options, char *err,
                                       size_t err_len) {
    struct client_options defaults;
    if (options == NULL) {
        client_options_init(&defaults);
        options = &defaults;
    }
    if (options->stream_window_bytes > INT32_MAX || options->connection_window_bytes > INT32_MAX) {
        _set_error(err, err_len, "HTTP/2 windows must be below 2^31 bytes");
        return NULL;
    }
    char port_text[8];
    snprintf(port_text, sizeof port_text, "%u", port);
    bool v6 = strchr(host, ':') != NULL;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *addrs;
    int gai = getaddrinfo(host, port_text, &hints, &addrs);
    if (gai != 0) {
        _set_error(err, err_len, "cannot resolve %s: %s", host,
                   gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
        return NULL;
    }
    int64_t deadline_us = clock_mono_us() + (int64_t)options->connect_timeout_ms * 1000;
    int fd = -1, last_errno = ECONNREFUSED;
    for (struct addrinfo *ai = addrs; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = _connect_one(ai, deadline_us);
        if (fd < 0) {
            last_errno = errno;
        }
    }
    freeaddrinfo(addrs);
    if (fd < 0) {
        if (last_errno == ETIMEDOUT) {
            _set_error(err, err_len, "cannot connect to %s%s%s:%u: timed out after %u ms",
                       v6 ? "[" : "", host, v6 ? "]" : "", port, options->connect_timeout_ms);
        } else {
            _set_error(err, err_len, "cannot connect to %s%s%s:%u: %s", v6 ? "[" : "", host,
                       v6 ? "]" : "", port, strerror(last_errno));
        }
        return NULL;
    }
    /* Requests are small and latency-bound: send each batch at once. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    struct client_conn *conn = calloc(1, sizeof(*conn));
    if (conn == NULL || (conn->in = malloc(CLIENT_READ_BYTES)) == NULL) {
        _set_error(err, err_len, "out of memory");
        close(fd);
        free(conn);
        return NULL;
    }
    conn->fd = fd;
    if (options->tls_ca_file[0] != '\0' &&
        (conn->ssl = _tls_handshake(fd, host, options, deadline_us, err, err_len)) == NULL) {
        client_conn_destroy(conn);
        return NULL;
    }
    conn->options = *options;
    conn->next_deadline_us = INT64_MAX;
    snprintf(conn->authority, sizeof conn->authority, "%s%s%s:%u", v6 ? "[" : "", host,
             v6 ? "]" : "", port);
    if (client_session_create(conn) != 0) {
        _set_error(err, err_len, "cannot set up the HTTP/2 session (out of memory)");
        client_conn_destroy(conn);
        return NULL;
    }
    return conn;
}

void client_conn_destroy(struct client_conn *conn) {
    if (conn == NULL) {
        return;
    }
    conn->destroying = true;
    if (conn->session != NULL) {
        nghttp2_session_del(conn->session);
    }
    SSL_free(conn->ssl);
    if (conn->fd >= 0) {
        close(conn->fd);
    }
    for (struct client_call *call = conn->live, *next; call != NULL; call = next) {
        next = call->next;
        client_call_free(call);
    }
    for (struct client_call *call = conn->pool, *next; call != NULL; call = next) {
        next = call->next;
        client_call_free(call);
    }
    free(conn->in);
    free(conn->out);
    free(conn);
}

const char *client_conn_error(const struct client_conn *conn) {
    return conn->error[0] ? conn->error : NULL;
}

size_t client_inflight(const struct client_conn *conn) {
    return conn->inflight;
}

void client_conn_stats(const struct client_conn *conn, struct client_stats *out) {
    out->calls_submitted += conn->stats.calls_submitted;
    out->calls_completed += conn->stats.calls_completed;
    out->calls_ok += conn->stats.calls_ok;
    out->bytes_sent += conn->stats.bytes_sent;
    out->bytes_received += conn->stats.bytes_received;
}

/* ---- I/O --------------------------------------------------------------------------------- */

/* Sends what nghttp2 has queued until the socket would block. Returns -1 if the connection
 * broke. */
static int _flush(struct client_conn *conn) {
    while (conn->fd >= 0) {
        if (conn->out_off < conn->out_len) {
            /* MSG_NOSIGNAL: a server that hung up gives EPIPE, not a SIGPIPE that would kill
             * a program that never asked for one */
            ssize_t n;
            if (conn->ssl != NULL) {
                ERR_clear_error();
                int w = SSL_write(conn->ssl, conn->out + conn->out_off,
                                  (int)(conn->out_len - conn->out_off));
                int e = w > 0 ? SSL_ERROR_NONE : SSL_get_error(conn->ssl, w);
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                    return 0;
                }
                n = w > 0 ? w : -1;
                errno = w > 0 ? 0 : EPIPE;
            } else {
                n = send(conn->fd, conn->out + conn->out_off, conn->out_len - conn->out_off,
                         MSG_NOSIGNAL);
            }
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    return 0;
                }
                _fail(conn, CLIENT_UNAVAILABLE, "connection to %s lost: %s", conn->authority,
                      strerror(errno));
                return -1;
            }
            conn->out_off += (size_t)n;
            conn->stats.bytes_sent += (uint64_t)n;
            continue;
        }
        conn->out_off = conn->out_len = 0;
        while (conn->out_len < CLIENT_WRITE_BATCH_BYTES) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(conn->session, &data);
            if (n < 0) {
                _fail(conn, CLIENT_INTERNAL, "HTTP/2 error on %s: %s", conn->authority,
                      nghttp2_strerror((int)n));
                return -1;
            }
            if (n == 0) {
                break;
            }
            if (conn->out_len + (size_t)n > conn->out_cap) {
                size_t cap = conn->out_cap ? conn->out_cap : CLIENT_WRITE_BATCH_BYTES * 2;
                while (cap < conn->out_len + (size_t)n) {
                    cap *= 2;
                }
                uint8_t *grown = realloc(conn->out, cap);
                if (grown == NULL) {
                    _fail(conn, CLIENT_RESOURCE_EXHAUSTED, "out of memory sending to %s",
                          conn->authority);
                    return -1;
                }
                conn->out = grown;
                conn->out_cap = cap;
            }
            memcpy(conn->out + conn->out_len, data, (size_t)n);
            conn->out_len += (size_t)n;
        }
        if (conn->out_len == 0) {
            if (!nghttp2_session_want_read(conn->session) &&
                !nghttp2_session_want_write(conn->session)) {
                _fail(conn, CLIENT_UNAVAILABLE, "the server at %s closed the connection (GOAWAY)",
                      conn->authority);
                return -1;
            }
            return 0;
        }
    }
    return -1;
}

/* Reads what the socket has (a bounded number of times, so one busy connection cannot starve
 * the others) and feeds it to nghttp2. Returns -1 if the connection broke. */
static int _read(struct client_conn *conn) {
    /* TLS: what OpenSSL holds decrypted, poll(2) cannot see: read it all before returning. */
    for (int i = 0; conn->fd >= 0 && (i < 8 || (conn->ssl != NULL && SSL_pending(conn->ssl) > 0));
         i++) {
        ssize_t n;
        if (conn->ssl != NULL) {
            ERR_clear_error();
            int r = SSL_read(conn->ssl, conn->in, CLIENT_READ_BYTES);
            int e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(conn->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                return 0;
            }
            n = r > 0 ? r : e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
            errno = n < 0 ? ECONNRESET : 0;
        } else {
            n = recv(conn->fd, conn->in, CLIENT_READ_BYTES, 0);
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return 0;
            }
            _fail(conn, CLIENT_UNAVAILABLE, "connection to %s lost: %s", conn->authority,
                  strerror(errno));
            return -1;
        }
        if (n == 0) {
            _fail(conn, CLIENT_UNAVAILABLE, "the server at %s closed the connection",
                  conn->authority);
            return -1;
        }
        conn->stats.bytes_received += (uint64_t)n;
        ssize_t rc = nghttp2_session_mem_recv(conn->session, conn->in, (size_t)n);
        if (rc < 0) {
            _fail(conn, CLIENT_INTERNAL, "HTTP/2 protocol error from %s: %s", conn->authority,
                  nghttp2_strerror((int)rc));
            return -1;
        }
        if (n < CLIENT_READ_BYTES) {
            return 0;
        }
    }
    return conn->fd >= 0 ? 0 : -1;
}

int client_poll_many(struct client_conn *const *conns, size_t n, int64_t timeout_us) {
    if (n > CLIENT_POLL_MAX) {
        n = CLIENT_POLL_MAX;
    }
    struct pollfd pfds[CLIENT_POLL_MAX];
    size_t which[CLIENT_POLL_MAX];
    int ran = 0;
    int64_t now = clock_mono_us();
    int64_t wait_until = timeout_us < 0 ? INT64_MAX : now + timeout_us;
    size_t npfd = 0;
    for (size_t i = 0; i < n; i++) {
        struct client_conn *conn = conns[i];
        client_expire_calls(conn, now);
        ran += client_run_callbacks(conn);
        if (conn->fd >= 0) {
            _flush(conn);
        }
        ran += client_run_callbacks(conn); /* a broken connection completes its calls */
        if (conn->fd < 0) {
            continue;
        }
        if (conn->ndeadlines > 0 && conn->next_deadline_us < wait_until) {
            wait_until = conn->next_deadline_us;
        }
        pfds[npfd] = (struct pollfd){conn->fd, POLLIN, 0};
        if (conn->out_off < conn->out_len) {
            pfds[npfd].events |= POLLOUT;
        }
        which[npfd++] = i;
    }
    if (npfd == 0) {
        return ran;
    }
    /* Callbacks already ran: return promptly so the caller can act on them. */
    int64_t wait_us = ran > 0                   ? 0
                      : wait_until == INT64_MAX ? -1
                      : wait_until > now        ? wait_until - now
                                                : 0;
    struct timespec ts, *tsp = NULL;
    if (wait_us >= 0) {
        ts.tv_sec = wait_us / 1000000;
        ts.tv_nsec = (wait_us % 1000000) * 1000;
        tsp = &ts;
    }
    int rc = ppoll(pfds, npfd, tsp, NULL);
    if (rc < 0) {
        return errno == EINTR ? ran : -1;
    }
    now = clock_mono_us();
    for (size_t k = 0; k < npfd; k++) {
        struct client_conn *conn = conns[which[k]];
        short revents = pfds[k].revents;
        if (revents & (POLLIN | POLLHUP | POLLERR)) {
            _read(conn);
        }
        client_expire_calls(conn, now);
        ran += client_run_callbacks(conn);
        if (conn->fd >= 0 && (revents != 0 || conn->out_off < conn->out_len ||
                              nghttp2_session_want_write(conn->session))) {
            _flush(conn);
        }
        ran += client_run_callbacks(conn);
    }
    return ran;
}

int client_poll(struct client_conn *conn, int64_t timeout_us) {
    return client_poll_many(&conn, 1, timeout_us);
}

/* ---- blocking calls ---------------------------------------------------------------------- */

struct _sync {
    bool done;
    struct client_response *out;
};

static char *_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy != NULL) {
        memcpy(copy, s, n);
    }
    return copy;
}

static void _sync_done(void *user, const struct client_result *result) {
    struct _sync *sync = user;
    struct client_response *out = sync->out;
    sync->done = true;
    out->status = result->status;
    out->latency_us = result->latency_us;
    out->message = _strdup(result->message);
    if (result->response != NULL) {
        out->data = malloc(result->response_len + 1);
        if (out->data != NULL) {
            memcpy(out->data, result->response, result->response_len);
            out->len = result->response_len;
        }
    }
    if (out->message == NULL || (result->response != NULL && out->data == NULL)) {
        out->status = CLIENT_RESOURCE_EXHAUSTED;
    }
}

int client_call(struct client_conn *conn, const struct client_request *req,
                struct client_response *out) {
    memset(out, 0, sizeof(*out));
    struct _sync sync = {false, out};
    if (client_submit(conn, req, _sync_done, &sync) != 0) {
        out->status = CLIENT_UNAVAILABLE;
        out->message = _strdup(conn->error);
        return out->status;
    }
    while (!sync.done) {
        if (client_poll(conn, -1) < 0) {
            /* ppoll itself failed, which leaves no way to wait: give the connection up
             * rather than spin, which completes this call too. */
            _fail(conn, CLIENT_INTERNAL, "poll: %s", strerror(errno));
            client_run_callbacks(conn);
        }
    }
    return out->status;
}

void client_response_deinit(struct client_response *response) {
    free(response->message);
    free(response->data);
    memset(response, 0, sizeof(*response));
}
