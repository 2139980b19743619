/*
 * One client connection: socket I/O, the nghttp2 server session, and the queue of calls
 * whose request is complete. Reads parse a whole batch before any handler runs, and writes
 * go out once per batch.
 *
 * The output budget: every response byte from grpc_call_reply_send() until it is written to
 * the socket counts in `pending` (and in the worker's). A handler runs only while both are
 * below their budgets; otherwise the connection is parked and its ready calls wait. The socket
 * is still read while parked: the client's WINDOW_UPDATEs are what lets the output drain, and
 * what it can send meanwhile is bounded by max_concurrent_streams and the reassembly budget.
 */
#include "internal.h"
#include "common/clock.h"
#include "daemon/tls/tls.h"

#include <errno.h>
#include <stdio.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* Opaque data of the drain PING; its ack means the client has seen the shutdown notice. */
static const uint8_t _drain_ping[8] = {'f', 's', 'd', 'd', 'r', 'a', 'i', 'n'};

/* iovecs gathered per sendmsg(2). */
#define _MAX_IOV 64

static struct grpc_call *_call_of(nghttp2_session *session, int32_t stream_id) {
    return nghttp2_session_get_stream_user_data(session, stream_id);
}

/* ---- abuse budgets ----------------------------------------------------------------------- */

/* Per-field overhead RFC 9113 6.5.2 counts in SETTINGS_MAX_HEADER_LIST_SIZE. */
#define _HEADER_FIELD_OVERHEAD 32

/* Takes `cost` from a bucket refilled at `rate` a second up to `burst`. False when it has
 * not that much left: the budget is spent. */
static bool _bucket_take(struct grpc_bucket *b, int64_t now_us, uint64_t rate, uint64_t burst,
                         uint64_t cost) {
    int64_t elapsed = now_us - b->updated_us;
    if (elapsed > 0) {
        /* Past the time a refill from empty takes, it is full; the bound keeps the product
         * below 2^63 for any rate the options allow. */
        uint64_t add = elapsed >= 100000000 ? burst : (uint64_t)elapsed * rate / 1000000;
        uint64_t tokens = (uint64_t)b->tokens + add;
        b->tokens = (int64_t)(tokens < burst ? tokens : burst);
        b->updated_us = now_us;
    }
    if ((uint64_t)b->tokens < cost) {
        return false;
    }
    b->tokens -= (int64_t)cost;
    return true;
}

/* One protocol fault (a refused stream, a reset header list, an empty DATA frame, a stream
 * error). Returns 0, or NGHTTP2_ERR_CALLBACK_FAILURE when the budget is spent: the
 * callback returns it, nghttp2 stops, and the read path sends GOAWAY(ENHANCE_YOUR_CALM). */
static int _fault(struct grpc_conn *conn) {
    const struct grpc_server_options *o = &conn->worker->server->options;
    uint64_t rate = o->max_protocol_faults_per_second;
    if (_bucket_take(&conn->faults, conn->worker->clock.mono_us, rate, 10 * rate, 1)) {
        return 0;
    }
    conn->abused = true;
    conn->abuse = GRPC_CLOSE_PROTOCOL_FAULTS;
    return NGHTTP2_ERR_CALLBACK_FAILURE;
}

/*
 * nghttp2 1.52 treats a stream past SETTINGS_MAX_CONCURRENT_STREAMS as a connection error,
 * where RFC 9113 5.1.2 makes it a stream error: one client's mistake would cut every call
 * of its connection. So nghttp2 is given no limit (it enforces none), the limit is written
 * into the first SETTINGS frame it sends, and _on_begin_headers refuses each stream past it
 * with REFUSED_STREAM. Returns false when `frame` is not that SETTINGS frame as expected;
 * the limit is then still enforced, only not advertised.
 */
static bool _add_stream_limit(struct grpc_conn *conn, const uint8_t *frame, size_t n) {
    enum { HEADER = 9, ENTRY = 6, MAX_ENTRIES = 16 };
    if (n < HEADER) {
        return false;
    }
    size_t len = (size_t)frame[0] << 16 | (size_t)frame[1] << 8 | frame[2];
    bool settings = frame[3] == NGHTTP2_SETTINGS && frame[4] == 0 &&
                    (frame[5] | frame[6] | frame[7] | frame[8]) == 0;
    if (!settings || n != HEADER + len || len % ENTRY != 0 || len / ENTRY >= MAX_ENTRIES) {
        return false;
    }
    uint8_t out[HEADER + MAX_ENTRIES * ENTRY];
    memcpy(out, frame, n);
    size_t new_len = len + ENTRY;
    out[0] = (uint8_t)(new_len >> 16);
    out[1] = (uint8_t)(new_len >> 8);
    out[2] = (uint8_t)new_len;
    uint32_t limit = conn->worker->server->options.max_concurrent_streams;
    uint8_t *e = out + n;
    e[0] = 0;
    e[1] = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS;
    e[2] = (uint8_t)(limit >> 24);
    e[3] = (uint8_t)(limit >> 16);
    e[4] = (uint8_t)(limit >> 8);
    e[5] = (uint8_t)limit;
    return evbuffer_add(conn->out, out, HEADER + new_len) == 0;
}

/* ---- nghttp2 callbacks ------------------------------------------------------------------- */

static int _on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame,
                             void *user_data) {
    struct grpc_conn *conn = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0;
    }
    if (conn->ncalls >= conn->worker->server->options.max_concurrent_streams) {
        /* Refused alone; its headers then find no call and are dropped. */
        grpc_stat_add(&conn->worker->stats.streams_refused[GRPC_REFUSE_MAX_STREAMS], 1);
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_REFUSED_STREAM);
        return _fault(conn);
    }
    struct grpc_call *call = grpc_worker_call_get(conn->worker);
    if (call == NULL) {
        /* nghttp2 resets just this stream. */
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    grpc_call_begin(call, conn, frame->hd.stream_id);
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, call);
    return 0;
}

static int _on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                      size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                      void *user_data) {
    (void)flags;
    struct grpc_conn *conn = user_data;
    const struct grpc_server_options *o = &conn->worker->server->options;
    uint64_t size = namelen + valuelen + _HEADER_FIELD_OVERHEAD;
    /* Every decoded header counts, trailers and refused streams' too: HPACK lets a byte on
     * the wire stand for a 4 KiB table entry. */
    if (!_bucket_take(&conn->header_bytes, conn->worker->clock.mono_us,
                      o->max_header_bytes_per_second, o->max_header_bytes_per_second, size)) {
        conn->abused = true;
        conn->abuse = GRPC_CLOSE_HEADER_FLOOD;
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0; /* request trailers carry nothing gRPC defines */
    }
    struct grpc_call *call = _call_of(session, frame->hd.stream_id);
    if (call == NULL) {
        return 0;
    }
    call->header_bytes += size;
    if (call->header_bytes > o->max_header_list_bytes) {
        /* nghttp2 resets the stream and decodes the rest of the block without callbacks. */
        grpc_stat_add(&conn->worker->stats.streams_refused[GRPC_REFUSE_HEADER_LIST], 1);
        int rv = _fault(conn);
        return rv != 0 ? rv : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    grpc_call_on_header(call, name, namelen, value, valuelen);
    return 0;
}

static int _on_invalid_frame_recv(nghttp2_session *session, const nghttp2_frame *frame,
                                  int lib_error_code, void *user_data) {
    (void)session;
    (void)frame;
    (void)lib_error_code;
    return _fault(user_data); /* nghttp2 has answered it (RST_STREAM or GOAWAY) */
}

static int _on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
    struct grpc_conn *conn = user_data;
    conn->got_preface = true; /* nghttp2 checked the magic; this is the first frame or later */
    bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    struct grpc_call *call;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        /* May come after the stream closed (nghttp2 docs); the lookup then finds nothing. */
        call = _call_of(session, frame->hd.stream_id);
        if (call == NULL) {
            break;
        }
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
            grpc_call_on_headers_end(call, end_stream);
        } else if (end_stream) {
            grpc_call_on_request_end(call);
        }
        break;
    case NGHTTP2_DATA:
        if (end_stream && (call = _call_of(session, frame->hd.stream_id)) != NULL) {
            grpc_call_on_request_end(call);
        }
        if (!end_stream && frame->hd.length == 0) {
            return _fault(conn); /* carries nothing: a flood of them is only work for us */
        }
        break;
    case NGHTTP2_PING:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) && conn->notice_sent &&
            memcmp(frame->ping.opaque_data, _drain_ping, sizeof _drain_ping) == 0) {
            grpc_conn_drain_final(conn);
        }
        break;
    default:
        break;
    }
    return 0;
}

static int _on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                               const uint8_t *data, size_t len, void *user_data) {
    (void)flags;
    (void)user_data;
    struct grpc_call *call = _call_of(session, stream_id);
    if (call != NULL) {
        grpc_call_on_data(call, data, len);
    }
    return 0;
}

static int _on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                            void *user_data) {
    (void)error_code;
    (void)user_data;
    struct grpc_call *call = _call_of(session, stream_id);
    if (call != NULL) {
        nghttp2_session_set_stream_user_data(session, stream_id, NULL);
        grpc_call_release(call);
    }
    return 0;
}

static int _on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
    struct grpc_conn *conn = user_data;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        /*
         * We answered before the client finished sending (an early error, or a handler that
         * replied mid-stream). RFC 9113 8.1: RST_STREAM(NO_ERROR) tells it to stop sending
         * without turning the answer it already has into an error.
         */
        if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
            nghttp2_session_get_stream_remote_close(session, frame->hd.stream_id) == 0) {
            nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                      NGHTTP2_NO_ERROR);
        }
        break;
    case NGHTTP2_GOAWAY:
        /* Ours (a drain, an idle close) or nghttp2's (a flood it caught): either way the
         * client should get to read it before the socket closes. */
        conn->linger = true;
        if (frame->goaway.error_code != NGHTTP2_NO_ERROR) {
            grpc_conn_protocol_error(conn);
        }
        break;
    default:
        break;
    }
    return 0;
}

static int _on_error(nghttp2_session *session, int lib_error_code, const char *msg, size_t len,
                     void *user_data) {
    (void)session;
    struct grpc_conn *conn = user_data;
    if (log_enabled(LOG_DEBUG)) {
        char text[256];
        snprintf(text, sizeof text, "%.*s", (int)(len < 255 ? len : 255), msg);
        log_debug("grpc http2 error", "worker=%u fd=%d code=%d error=%s", conn->worker->index,
                  conn->fd, lib_error_code, LOG_QUOTE(text));
    }
    return 0;
}

nghttp2_session_callbacks *grpc_conn_callbacks_new(void) {
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0) {
        return NULL;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, _on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, _on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, _on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, _on_data_chunk_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, _on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, _on_frame_send);
    nghttp2_session_callbacks_set_error_callback2(cb, _on_error);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, _on_invalid_frame_recv);
    return cb;
}

/* ---- output ------------------------------------------------------------------------------ */

/* ---- TLS --------------------------------------------------------------------------------- */

/* One TLS record's worth: what a write hands OpenSSL at a time. */
#define GRPC_TLS_WRITE_BYTES (16 * 1024)

/* The handshake just ended, if it had not: counted, and the client's name noted. */
static void _tls_check_ready(struct grpc_conn *conn) {
    if (conn->tls_ready || !SSL_is_init_finished(conn->ssl)) {
        return;
    }
    conn->tls_ready = true;
    tls_count_handshake(true);
    tls_peer_subject(conn->ssl, conn->tls_subject, sizeof conn->tls_subject);
    log_debug("tls handshake done", "worker=%u peer=%s version=%s client=%s", conn->worker->index,
              LOG_QUOTE(conn->peer), SSL_get_version(conn->ssl), LOG_QUOTE(conn->tls_subject));
}

/* A TLS read or write failed for good (`ssl_error` from SSL_get_error): the connection ends;
 * a handshake that fails is counted and logged with OpenSSL's reason. */
static void _tls_failed(struct grpc_conn *conn, int ssl_error) {
    struct grpc_worker *w = conn->worker;
    char why[320];
    tls_error_reason(conn->ssl, ssl_error, why, sizeof why);
    conn->dead = true;
    if (conn->tls_ready) {
        log_debug("grpc connection closed: tls error", "worker=%u peer=%s error=%s", w->index,
                  LOG_QUOTE(conn->peer), LOG_QUOTE(why));
        return;
    }
    tls_count_handshake(false);
    uint64_t left_out;
    if (log_limit_allow(&w->tls_log, clock_mono_us(), 100000, &left_out)) {
        log_warn("tls handshake failed", "worker=%u peer=%s error=%s not_logged_before=%llu",
                 w->index, LOG_QUOTE(conn->peer), LOG_QUOTE(why), (unsigned long long)left_out);
    }
}

/* As _write_out(), through TLS; 2: the handshake waits for the client's bytes first (the read
 * event continues it), so the socket's writability does not matter yet. */
static int _write_out_tls(struct grpc_conn *conn) {
    while (evbuffer_get_length(conn->out) > 0) {
        size_t len = evbuffer_get_length(conn->out);
        len = len < GRPC_TLS_WRITE_BYTES ? len : GRPC_TLS_WRITE_BYTES;
        unsigned char *data = evbuffer_pullup(conn->out, (ssize_t)len);
        if (data == NULL) {
            return -1;
        }
        ERR_clear_error();
        int n = SSL_write(conn->ssl, data, (int)len);
        if (n > 0) {
            _tls_check_ready(conn);
            evbuffer_drain(conn->out, (size_t)n);
            conn->bytes_written += (uint64_t)n;
            continue;
        }
        int e = SSL_get_error(conn->ssl, n);
        if (e == SSL_ERROR_WANT_WRITE) {
            return 0;
        }
        if (e == SSL_ERROR_WANT_READ) {
            return 2;
        }
        _tls_failed(conn, e);
        return -1;
    }
    return 1;
}

/*
 * Reads what the client sent into `buf`: > 0 bytes, 0 when the connection ended (conn->dead
 * set: closed, reset, a TLS failure), -1 when nothing is there now.
 */
static ssize_t _read_in(struct grpc_conn *conn, uint8_t *buf, size_t len) {
    if (conn->ssl != NULL) {
        ERR_clear_error();
        int n = SSL_read(conn->ssl, buf, (int)len);
        if (n > 0) {
            _tls_check_ready(conn);
            return n;
        }
        int e = SSL_get_error(conn->ssl, n);
        if (e == SSL_ERROR_WANT_READ) {
            return -1;
        }
        if (e == SSL_ERROR_WANT_WRITE) {
            /* the handshake's reply did not fit the socket: read again once it is writable */
            conn->tls_read_wants_write = true;
            if (!conn->write_blocked) {
                event_add(conn->write_ev, NULL);
                conn->write_blocked = true;
            }
            return -1;
        }
        if (e == SSL_ERROR_ZERO_RETURN) {
            conn->dead = true; /* close_notify: the client is done */
            return 0;
        }
        _tls_failed(conn, e);
        return 0;
    }
    for (;;) {
        ssize_t n = read(conn->fd, buf, len);
        if (n > 0) {
            return n;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return -1;
        }
        conn->dead = true; /* closed or reset by the client */
        return 0;
    }
}

/* ---- output (cont.) ---------------------------------------------------------------------- */

/* Writes what `out` holds. Returns 1 when all of it went, 0 when the socket is full, 2 when a
 * TLS handshake waits for input, -1 on error. sendmsg with MSG_NOSIGNAL: a library must not
 * depend on SIGPIPE being ignored. */
static int _write_out(struct grpc_conn *conn) {
    if (conn->ssl != NULL) {
        return _write_out_tls(conn);
    }
    while (evbuffer_get_length(conn->out) > 0) {
        struct evbuffer_iovec vec[_MAX_IOV];
        int n = evbuffer_peek(conn->out, -1, NULL, vec, _MAX_IOV);
        if (n > _MAX_IOV) {
            n = _MAX_IOV;
        }
        struct iovec iov[_MAX_IOV];
        for (int i = 0; i < n; i++) {
            iov[i].iov_base = vec[i].iov_base;
            iov[i].iov_len = vec[i].iov_len;
        }
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t sent = sendmsg(conn->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return 0;
            }
            return -1;
        }
        evbuffer_drain(conn->out, (size_t)sent);
        conn->bytes_written += (uint64_t)sent;
    }
    return 1;
}

void grpc_conn_pending_add(struct grpc_conn *conn, int64_t delta) {
    struct grpc_worker *w = conn->worker;
    conn->pending += (uint64_t)delta;
    w->pending += (uint64_t)delta;
    atomic_store_explicit(&w->stats.pending_bytes, w->pending, memory_order_relaxed);
}

/* `out` grew or shrank since it was last counted: bring `pending` up to date. */
static void _count_out(struct grpc_conn *conn) {
    size_t len = evbuffer_get_length(conn->out);
    if (len != conn->out_counted) {
        grpc_conn_pending_add(conn, (int64_t)len - (int64_t)conn->out_counted);
        conn->out_counted = len;
    }
}

/* Moves frames from nghttp2 to the socket until either runs dry. */
static void _flush(struct grpc_conn *conn) {
    for (;;) {
        /* HTTP/1.1 writes its responses into `out` itself; an undecided connection waits
         * for the client's first bytes before HTTP/2 sends its SETTINGS. */
        while (conn->proto == GRPC_PROTO_H2 &&
               evbuffer_get_length(conn->out) < GRPC_OUT_HIGH_WATER) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(conn->session, &data);
            if (n < 0) {
                log_warn("grpc nghttp2 send failed", "worker=%u error=%s", conn->worker->index,
                         LOG_QUOTE(nghttp2_strerror((int)n)));
                conn->dead = true;
                return;
            }
            if (n == 0) {
                break;
            }
            if (conn->advertise_streams) {
                conn->advertise_streams = false;
                if (_add_stream_limit(conn, data, (size_t)n)) {
                    continue;
                }
                log_warn("grpc max_concurrent_streams not advertised: unexpected first frame",
                         "worker=%u", conn->worker->index);
            }
            if (evbuffer_add(conn->out, data, (size_t)n) != 0) {
                conn->dead = true;
                return;
            }
        }
        if (evbuffer_get_length(conn->out) == 0) {
            break;
        }
        int rv = _write_out(conn);
        if (rv < 0) {
            conn->dead = true;
            return;
        }
        if (rv == 2) {
            break; /* the next read continues the handshake, and kicks */
        }
        if (rv == 0) {
            if (!conn->write_blocked) {
                event_add(conn->write_ev, NULL);
                conn->write_blocked = true;
            }
            return;
        }
    }
    if (conn->write_blocked && !conn->tls_read_wants_write) {
        event_del(conn->write_ev);
        conn->write_blocked = false;
    }
}

/* Which budget the connection's next handler would pass, or GRPC_BUDGET_COUNT for none. */
static enum grpc_budget _over_budget(const struct grpc_conn *conn) {
    const struct grpc_server_options *o = &conn->worker->server->options;
    if (conn->pending >= o->max_pending_bytes_per_connection) {
        return GRPC_BUDGET_CONNECTION;
    }
    /* A connection whose output is all written always gets its next call: clients that
     * read are served even while stalled ones fill the worker's budget (each of those holds
     * one response at most beyond it, until write_timeout closes it). */
    if (conn->pending > 0 && conn->worker->pending >= o->max_pending_bytes_per_worker) {
        return GRPC_BUDGET_WORKER;
    }
    return GRPC_BUDGET_COUNT;
}

static void _park(struct grpc_conn *conn, enum grpc_budget budget) {
    struct grpc_worker *w = conn->worker;
    if (conn->parked) {
        return;
    }
    conn->parked = true;
    TAILQ_INSERT_TAIL(&w->parked, conn, parked_link);
    w->nparked++;
    grpc_stat_add(&w->stats.output_waits[budget], 1);
}

static void _unpark(struct grpc_conn *conn) {
    struct grpc_worker *w = conn->worker;
    if (!conn->parked) {
        return;
    }
    conn->parked = false;
    TAILQ_REMOVE(&w->parked, conn, parked_link);
    w->nparked--;
}

void grpc_conn_kick(struct grpc_conn *conn) {
    if (conn->proto == GRPC_PROTO_HTTP1) {
        /* One request at a time: each round lets the answered one go, runs the next (held
         * bytes parsed), and writes; again while the output drained below the budget. */
        for (int i = 0; i < 16 && !conn->dead; i++) {
            grpc_http1_advance(conn);
            if (conn->dead) {
                break;
            }
            _flush(conn);
            _count_out(conn);
            if (!conn->parked || _over_budget(conn) != GRPC_BUDGET_COUNT) {
                break;
            }
        }
        if (!conn->dead && grpc_http1_finished(conn)) {
            conn->dead = true;
            conn->linger = true; /* unread input must not turn the close into a reset */
        }
    } else if (!conn->dead) {
        _flush(conn);
        _count_out(conn);
        /* Output drained below the budget: the calls that waited for it run now, and again
         * as long as the socket takes what they answer (no later event would wake them). */
        while (!conn->dead && conn->parked && _over_budget(conn) == GRPC_BUDGET_COUNT) {
            grpc_conn_run_ready(conn);
            if (!conn->dead) {
                _flush(conn);
                _count_out(conn);
            }
        }
    }
    if (!conn->dead && conn->proto == GRPC_PROTO_H2 && !nghttp2_session_want_read(conn->session) &&
        !nghttp2_session_want_write(conn->session) && evbuffer_get_length(conn->out) == 0) {
        conn->dead = true; /* finished: GOAWAY exchanged and no stream left */
    }
    struct grpc_worker *w = conn->worker;
    if (conn->dead) {
        grpc_conn_destroy(conn); /* wakes the parked itself */
    } else if (w->nparked > 0) {
        grpc_conn_wake_parked(w);
    }
}

void grpc_conn_wake_parked(struct grpc_worker *w) {
    if (w->waking || w->stop_seen == GRPC_STOP_HARD) {
        return;
    }
    w->waking = true;
    /* Each parked connection once, oldest first; one still over its own budget goes to the
     * back and stays parked. Kicking may close a connection, so the next is read after. */
    size_t n = w->nparked;
    struct grpc_conn *conn;
    while (n-- > 0 && w->pending < w->server->options.max_pending_bytes_per_worker &&
           (conn = TAILQ_FIRST(&w->parked)) != NULL) {
        TAILQ_REMOVE(&w->parked, conn, parked_link);
        TAILQ_INSERT_TAIL(&w->parked, conn, parked_link);
        grpc_conn_kick(conn);
    }
    w->waking = false;
}

/* ---- input ------------------------------------------------------------------------------- */

void grpc_conn_enqueue(struct grpc_conn *conn, struct grpc_call *call) {
    TAILQ_INSERT_TAIL(&conn->ready, call, ready_link);
    call->queued = true;
}

void grpc_conn_run_ready(struct grpc_conn *conn) {
    struct grpc_call *call;
    while (!conn->dead && (call = TAILQ_FIRST(&conn->ready)) != NULL) {
        enum grpc_budget over = _over_budget(conn);
        if (over != GRPC_BUDGET_COUNT) {
            _park(conn, over);
            return;
        }
        TAILQ_REMOVE(&conn->ready, call, ready_link);
        call->queued = false;
        grpc_call_dispatch(call);
    }
    _unpark(conn);
}

void grpc_conn_protocol_error(struct grpc_conn *conn) {
    if (!conn->protocol_error) {
        conn->protocol_error = true;
        grpc_stat_add(&conn->worker->stats.protocol_errors, 1);
    }
}

/* nghttp2 refused the input (not HTTP/2 at all, or a flood): GOAWAY if it can, then close. */
/*
 * "grpc connection closed" with the client's address and why. Ten lines a second per worker
 * at most: a flood of bad connections must not become a flood of log lines; the next line
 * says how many were left out.
 */
static void _log_close(struct grpc_conn *conn, enum grpc_close_reason reason, const char *why) {
    struct grpc_worker *w = conn->worker;
    uint64_t left_out;
    if (!log_limit_allow(&w->close_log, clock_mono_us(), 100000, &left_out)) {
        return;
    }
    log_info("grpc connection closed",
             "worker=%u peer=%s reason=%s why=%s pending_bytes=%llu not_logged_before=%llu",
             w->index, LOG_QUOTE(conn->peer), grpc_close_reason_name(reason), LOG_QUOTE(why),
             (unsigned long long)conn->pending, (unsigned long long)left_out);
}

static void _fail_session(struct grpc_conn *conn, ssize_t rv) {
    if (conn->abused) {
        /* A budget spent (a callback said so): the client is told to calm down. */
        grpc_stat_add(&conn->worker->stats.closed_by_server[conn->abuse], 1);
        _log_close(conn, conn->abuse,
                   conn->abuse == GRPC_CLOSE_HEADER_FLOOD
                       ? "decoded headers past max_header_bytes_per_second"
                       : "protocol faults past max_protocol_faults_per_second");
        nghttp2_session_terminate_session(conn->session, NGHTTP2_ENHANCE_YOUR_CALM);
        _flush(conn);
        conn->dead = true;
        conn->linger = true;
        return;
    }
    grpc_conn_protocol_error(conn);
    log_debug("grpc connection closed: protocol error", "worker=%u fd=%d error=%s",
              conn->worker->index, conn->fd, LOG_QUOTE(nghttp2_strerror((int)rv)));
    nghttp2_session_terminate_session(conn->session, NGHTTP2_PROTOCOL_ERROR);
    _flush(conn);
    conn->dead = true;
    conn->linger = true;
}

/*
 * The connection's first bytes decide what it speaks: the HTTP/2 preface, or else (the bytes
 * part from it) HTTP/1.1. Returns how many of `data` were taken into `sniff` while too few
 * have come to tell; the caller hands the rest (and the sniffed bytes, once decided) on.
 */
static size_t _sniff(struct grpc_conn *conn, const uint8_t *data, size_t len) {
    size_t take = GRPC_H2_PREFACE_LEN - conn->nsniff;
    take = take < len ? take : len;
    memcpy(conn->sniff + conn->nsniff, data, take);
    conn->nsniff += take;
    if (memcmp(conn->sniff, GRPC_H2_PREFACE, conn->nsniff) == 0) {
        if (conn->nsniff == GRPC_H2_PREFACE_LEN) {
            conn->proto = GRPC_PROTO_H2;
        }
    } else if (grpc_http1_start(conn) != 0) {
        conn->dead = true;
    }
    return take;
}

/* Input of an HTTP/2 connection, to nghttp2. Returns -1 when the session failed. */
static int _h2_input(struct grpc_conn *conn, const uint8_t *data, size_t len) {
    ssize_t rv = nghttp2_session_mem_recv(conn->session, data, len);
    if (rv < 0) {
        _fail_session(conn, rv);
        return -1;
    }
    return 0;
}

static void _on_readable(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    struct grpc_conn *conn = arg;
    struct grpc_worker *w = conn->worker;
    /* The batch's one clock read: every HEADERS in it arrived "now". */
    clock_cache_update(&w->clock);
    (void)fd;
    for (int i = 0; i < GRPC_READS_PER_EVENT && !conn->dead; i++) {
        if (conn->proto == GRPC_PROTO_HTTP1 && grpc_http1_reading_paused(conn)) {
            break; /* a request is being served: the next waits in the kernel */
        }
        ssize_t n = _read_in(conn, w->read_buf, GRPC_READ_BUF_BYTES);
        if (n <= 0) {
            if (n == 0 && conn->proto == GRPC_PROTO_HTTP1 && grpc_http1_eof(conn)) {
                conn->dead = false; /* done sending, and a request it sent is still answered */
            }
            break;
        }
        const uint8_t *data = w->read_buf;
        size_t len = (size_t)n;
        if (conn->proto == GRPC_PROTO_UNDECIDED) {
            size_t taken = _sniff(conn, data, len);
            data += taken;
            len -= taken;
            if (conn->proto == GRPC_PROTO_H2) {
                if (_h2_input(conn, conn->sniff, conn->nsniff) != 0) {
                    break;
                }
            } else if (conn->proto == GRPC_PROTO_HTTP1) {
                grpc_http1_input(conn, conn->sniff, conn->nsniff);
            }
        }
        if (len > 0 && conn->proto == GRPC_PROTO_H2 && _h2_input(conn, data, len) != 0) {
            break;
        }
        if (len > 0 && conn->proto == GRPC_PROTO_HTTP1) {
            grpc_http1_input(conn, data, len);
        }
        /* Cleartext: a short read most likely drained the socket, and level-triggered polling
         * says if not. TLS hands out a record at a time, and what OpenSSL holds decrypted
         * polling cannot see: read on until it says there is nothing. */
        if (conn->ssl == NULL && n < GRPC_READ_BUF_BYTES) {
            break;
        }
    }
    if (!conn->dead && conn->ssl != NULL && SSL_pending(conn->ssl) > 0) {
        event_active(conn->read_ev, EV_READ, 0); /* the batch ended with bytes decrypted */
    }
    grpc_conn_run_ready(conn);
    grpc_conn_kick(conn);
}

static void _on_writable(evutil_socket_t fd, short what, void *arg) {
    struct grpc_conn *conn = arg;
    if (conn->tls_read_wants_write) {
        conn->tls_read_wants_write = false;
        _on_readable(fd, what, conn); /* reads, then kicks */
        return;
    }
    grpc_conn_kick(conn);
}

/* ---- lifecycle --------------------------------------------------------------------------- */

int grpc_conn_create(struct grpc_worker *w, int fd, const char *peer) {
    struct grpc_server *s = w->server;
    struct grpc_conn *conn = calloc(1, sizeof *conn);
    if (conn == NULL) {
        close(fd);
        return -1;
    }
    conn->worker = w;
    conn->fd = fd;
    snprintf(conn->peer, sizeof conn->peer, "%s", peer);
    conn->created_us = w->clock.mono_us;
    conn->stall_since_us = conn->created_us;
    conn->idle_since_us = conn->created_us;
    conn->age_limit_us = INT64_MAX;
    if (s->options.max_connection_age_us > 0) {
        /* 90 % to 110 % of the age: connections opened together do not all go together. */
        int64_t age = s->options.max_connection_age_us;
        int64_t spread = age / 5;
        int64_t jitter = spread > 0 ? (int64_t)(grpc_worker_random(w) % (uint64_t)spread) : 0;
        conn->age_limit_us = conn->created_us + age - spread / 2 + jitter;
    }
    TAILQ_INIT(&conn->calls);
    TAILQ_INIT(&conn->ready);
    if (tls_enabled() && (conn->ssl = tls_session_new(fd)) == NULL) {
        goto fail;
    }
    conn->out = evbuffer_new();
    conn->read_ev = event_new(w->base, fd, EV_READ | EV_PERSIST, _on_readable, conn);
    conn->write_ev = event_new(w->base, fd, EV_WRITE | EV_PERSIST, _on_writable, conn);
    if (conn->out == NULL || conn->read_ev == NULL || conn->write_ev == NULL ||
        nghttp2_session_server_new2(&conn->session, w->callbacks, conn, w->h2_option) != 0) {
        goto fail;
    }
    /* MAX_CONCURRENT_STREAMS is added to this frame on its way out: _add_stream_limit. */
    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, s->stream_window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)s->options.max_header_list_bytes},
    };
    conn->advertise_streams = true;
    uint64_t faults = s->options.max_protocol_faults_per_second;
    conn->faults = (struct grpc_bucket){(int64_t)(10 * faults), conn->created_us};
    conn->header_bytes =
        (struct grpc_bucket){(int64_t)s->options.max_header_bytes_per_second, conn->created_us};
    if (nghttp2_submit_settings(conn->session, NGHTTP2_FLAG_NONE, settings,
                                sizeof settings / sizeof settings[0]) != 0 ||
        nghttp2_session_set_local_window_size(conn->session, NGHTTP2_FLAG_NONE, 0,
                                              (int32_t)s->connection_window) != 0 ||
        event_add(conn->read_ev, NULL) != 0) {
        goto fail;
    }
    TAILQ_INSERT_TAIL(&w->conns, conn, link);
    w->nconns++;
    grpc_stat_add(&w->stats.connections_opened, 1);
    /* Our SETTINGS wait for the client's first bytes: an HTTP/1.1 client must not get HTTP/2
     * frames. A gRPC client sends its preface without waiting for ours, so this costs it no
     * round trip. */
    return 0;

fail:
    if (conn->session != NULL) {
        nghttp2_session_del(conn->session);
    }
    if (conn->read_ev != NULL) {
        event_free(conn->read_ev);
    }
    if (conn->write_ev != NULL) {
        event_free(conn->write_ev);
    }
    if (conn->out != NULL) {
        evbuffer_free(conn->out);
    }
    SSL_free(conn->ssl);
    close(fd);
    free(conn);
    return -1;
}

void grpc_conn_drain(struct grpc_conn *conn) {
    if (conn->notice_sent) {
        return;
    }
    conn->notice_sent = true;
    if (conn->proto == GRPC_PROTO_HTTP1) {
        grpc_http1_drain(conn); /* closes after the request in progress */
        return;
    }
    /* GOAWAY(2^31-1) says "no new streams soon"; the PING's ack says the client saw it, so
     * the final GOAWAY sent then cannot race requests the client had already sent. */
    nghttp2_submit_shutdown_notice(conn->session);
    nghttp2_submit_ping(conn->session, NGHTTP2_FLAG_NONE, _drain_ping);
    grpc_conn_kick(conn);
}

void grpc_conn_drain_final(struct grpc_conn *conn) {
    if (conn->goaway_sent) {
        return;
    }
    conn->goaway_sent = true;
    if (conn->proto != GRPC_PROTO_H2) {
        /* HTTP/1.1 has no GOAWAY (its drain closes after the request), and a connection that
         * sent nothing yet has nothing to be told: it closes. */
        if (conn->proto == GRPC_PROTO_UNDECIDED) {
            conn->dead = true;
        }
        return;
    }
    nghttp2_submit_goaway(conn->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(conn->session), NGHTTP2_NO_ERROR,
                          NULL, 0);
}

void grpc_conn_destroy(struct grpc_conn *conn) {
    struct grpc_worker *w = conn->worker;
    TAILQ_REMOVE(&w->conns, conn, link);
    _unpark(conn);
    event_free(conn->read_ev);
    event_free(conn->write_ev);
    /* The session goes first so no nghttp2 callback can see a released call. */
    if (conn->session != NULL) {
        nghttp2_session_del(conn->session);
    }
    struct grpc_call *call;
    while ((call = TAILQ_FIRST(&conn->calls)) != NULL) {
        grpc_call_release(call);
    }
    grpc_conn_pending_add(conn, -(int64_t)conn->pending); /* what `out` still held */
    grpc_http1_free(conn);
    evbuffer_free(conn->out);
    SSL_free(conn->ssl); /* not the socket: SSL_set_fd leaves it to us */
    if (conn->reset_on_close) {
        grpc_socket_abort(conn->fd);
    } else if (conn->linger) {
        grpc_worker_linger(w, conn->fd);
    } else {
        close(conn->fd);
    }
    free(conn);
    grpc_stat_add(&w->stats.connections_closed, 1);
    atomic_fetch_sub_explicit(&w->server->connections, 1, memory_order_relaxed);
    grpc_worker_conn_gone(w);
    if (w->nparked > 0) {
        grpc_conn_wake_parked(w);
    }
}

void grpc_conn_close_for(struct grpc_conn *conn, enum grpc_close_reason reason, const char *why) {
    struct grpc_worker *w = conn->worker;
    _log_close(conn, reason, why);
    grpc_conn_destroy(conn);
    /* Counted once the connection's memory is given back: a scrape that sees the close also
     * sees the pending output it held gone. */
    grpc_stat_add(&w->stats.closed_by_server[reason], 1);
}

void grpc_conn_check_timeouts(struct grpc_conn *conn, int64_t now_us) {
    const struct grpc_server_options *o = &conn->worker->server->options;
    /* Write stall: output waiting, and the byte count it has written unchanged. */
    if (conn->pending == 0 || conn->bytes_written != conn->stall_mark) {
        conn->stall_mark = conn->bytes_written;
        conn->stall_since_us = now_us;
    } else if (now_us - conn->stall_since_us >= o->write_timeout_us) {
        conn->reset_on_close = true;
        grpc_conn_close_for(conn, GRPC_CLOSE_WRITE_TIMEOUT,
                            "the client read none of its responses for write_timeout");
        return;
    }
    if (!conn->got_preface) {
        if (o->preface_timeout_us > 0 && now_us - conn->created_us >= o->preface_timeout_us) {
            grpc_conn_close_for(conn, GRPC_CLOSE_PREFACE_TIMEOUT,
                                conn->proto == GRPC_PROTO_HTTP1
                                    ? "no complete HTTP/1.1 request line and headers within "
                                      "preface_timeout"
                                    : "no HTTP/2 preface within preface_timeout");
        }
        return;
    }
    if (conn->proto == GRPC_PROTO_HTTP1) {
        grpc_http1_check_timeouts(conn, now_us); /* may close it */
        return;
    }
    /* Idle: no call open, none begun since the last tick, nothing left to write. */
    if (conn->ncalls > 0 || conn->calls_begun != conn->idle_mark || conn->pending > 0) {
        conn->idle_mark = conn->calls_begun;
        conn->idle_since_us = now_us;
    } else if (o->idle_timeout_us > 0 && !conn->goaway_sent &&
               now_us - conn->idle_since_us >= o->idle_timeout_us) {
        struct grpc_worker *w = conn->worker;
        grpc_stat_add(&w->stats.closed_by_server[GRPC_CLOSE_IDLE_TIMEOUT], 1);
        log_debug("grpc connection idle: GOAWAY", "worker=%u peer=%s", w->index,
                  LOG_QUOTE(conn->peer));
        /* No stream is open, so nothing can be cut: GOAWAY, then close once it is out. */
        conn->goaway_sent = true;
        nghttp2_session_terminate_session(conn->session, NGHTTP2_NO_ERROR);
        grpc_conn_kick(conn);
        return;
    }
    /* Age: drained as at shutdown (notice, PING, final GOAWAY), closed after the grace. */
    if (now_us >= conn->age_limit_us) {
        if (!conn->notice_sent) {
            struct grpc_worker *w = conn->worker;
            grpc_stat_add(&w->stats.closed_by_server[GRPC_CLOSE_MAX_AGE], 1);
            log_debug("grpc connection at max_connection_age: draining", "worker=%u peer=%s",
                      w->index, LOG_QUOTE(conn->peer));
            conn->drain_started_us = now_us;
            grpc_conn_drain(conn); /* may close it */
            return;
        }
        int64_t draining = now_us - conn->drain_started_us;
        if (draining >= o->max_connection_age_grace_us) {
            grpc_conn_close_for(conn, GRPC_CLOSE_MAX_AGE_GRACE,
                                "calls still running at the end of max_connection_age_grace");
            return;
        }
        if (!conn->goaway_sent && draining >= GRPC_DRAIN_GOAWAY_DELAY_MS * 1000ll) {
            grpc_conn_drain_final(conn); /* the client never acked the PING */
            grpc_conn_kick(conn);
        }
    }
}
