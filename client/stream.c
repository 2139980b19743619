/*
 * The calls of a connection: nghttp2's client session and its callbacks, submitting, turning
 * what the server sent into a result, deadlines, and running the completion callbacks.
 *
 * A call lives from client_submit until both its callback has run and nghttp2 has let go of
 * its stream (closed, or its HEADERS never sent); then it goes back to a small pool, buffers
 * and all, so a load generator does not allocate per call once warm.
 */
#include "client_internal.h"
#include "common/clock.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- calls ----------------------------------------------------------------------------- */

static struct client_call *_call_get(struct client_conn *conn) {
    struct client_call *call = conn->pool;
    if (call != NULL) {
        conn->pool = call->next;
        conn->pool_len--;
    } else {
        call = calloc(1, sizeof(*call));
        if (call == NULL) {
            return NULL;
        }
    }
    uint8_t *req = call->req, *resp = call->resp;
    size_t req_cap = call->req_cap, resp_cap = call->resp_cap;
    memset(call, 0, offsetof(struct client_call, message));
    call->message[0] = '\0';
    call->req = req;
    call->req_cap = req_cap;
    call->resp = resp;
    call->resp_cap = resp_cap;
    call->conn = conn;
    call->grpc_status = -1;
    call->deadline_us = INT64_MAX;
    call->next = conn->live;
    if (conn->live != NULL) {
        conn->live->prev = call;
    }
    conn->live = call;
    return call;
}

void client_call_free(struct client_call *call) {
    free(call->req);
    free(call->resp);
    free(call);
}

/* Back to the pool once neither the caller nor nghttp2 will touch it again. */
static void _call_put_if_idle(struct client_call *call) {
    if (!call->callback_run || !call->stream_closed) {
        return;
    }
    struct client_conn *conn = call->conn;
    if (call->prev != NULL) {
        call->prev->next = call->next;
    } else {
        conn->live = call->next;
    }
    if (call->next != NULL) {
        call->next->prev = call->prev;
    }
    if (conn->pool_len >= CLIENT_POOL_MAX) {
        client_call_free(call);
        return;
    }
    call->prev = NULL;
    call->next = conn->pool;
    conn->pool = call;
    conn->pool_len++;
}

void client_call_complete(struct client_call *call, int status, const char *fmt, ...) {
    if (call->completed) {
        return;
    }
    struct client_conn *conn = call->conn;
    call->completed = true;
    call->end_us = clock_mono_us();
    call->status = status;
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(call->message, sizeof call->message, fmt, ap);
        va_end(ap);
    }
    if (call->deadline_us != INT64_MAX) {
        conn->ndeadlines--;
    }
    call->done_next = NULL;
    if (conn->done_tail != NULL) {
        conn->done_tail->done_next = call;
    } else {
        conn->done_head = call;
    }
    conn->done_tail = call;
}

/* HTTP status to gRPC code, for responses without grpc-status (grpc's
 * doc/http-grpc-status-mapping.md). */
static int _code_of_http(int http_status) {
    switch (http_status) {
    case 400:
        return CLIENT_INTERNAL;
    case 401:
        return CLIENT_UNAUTHENTICATED;
    case 403:
        return CLIENT_PERMISSION_DENIED;
    case 404:
        return CLIENT_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return CLIENT_UNAVAILABLE;
    default:
        return CLIENT_UNKNOWN;
    }
}

/* RST_STREAM error code to gRPC code (grpc's doc/PROTOCOL-HTTP2.md, "Errors"). */
static int _code_of_reset(uint32_t error_code) {
    switch (error_code) {
    case NGHTTP2_REFUSED_STREAM:
        return CLIENT_UNAVAILABLE;
    case NGHTTP2_CANCEL:
        return CLIENT_CANCELLED;
    case NGHTTP2_ENHANCE_YOUR_CALM:
        return CLIENT_RESOURCE_EXHAUSTED;
    case NGHTTP2_INADEQUATE_SECURITY:
        return CLIENT_PERMISSION_DENIED;
    default:
        return CLIENT_INTERNAL;
    }
}

/* The server ended the stream: turn its headers and body into the result. */
static void _complete_from_response(struct client_call *call) {
    if (call->grpc_status < 0) {
        if (call->http_status != 200 && call->http_status != 0) {
            client_call_complete(call, _code_of_http(call->http_status),
                                 "HTTP status %d without grpc-status", call->http_status);
        } else {
            client_call_complete(call, CLIENT_INTERNAL, "the response ended without grpc-status");
        }
        return;
    }
    if (call->grpc_status != CLIENT_OK) {
        client_call_complete(call, call->grpc_status,
                             NULL); /* message: grpc-message, already decoded */
        return;
    }
    if (call->resp_len < CLIENT_FRAME_HEADER) {
        client_call_complete(call, CLIENT_INTERNAL, "%s",
                             call->resp_len == 0 ? "status OK but no response message"
                                                 : "the response message frame is truncated");
        return;
    }
    const uint8_t *p = call->resp;
    if (p[0] & 1) {
        client_call_complete(
            call, CLIENT_INTERNAL,
            "the response message is compressed, but no compression was negotiated");
        return;
    }
    size_t len = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
    if (CLIENT_FRAME_HEADER + len != call->resp_len) {
        client_call_complete(
            call, CLIENT_INTERNAL,
            "the response frame says %zu bytes but the body has %zu (a unary call has "
            "exactly one message)",
            len, call->resp_len - CLIENT_FRAME_HEADER);
        return;
    }
    call->msg = p + CLIENT_FRAME_HEADER;
    call->msg_len = len;
    client_call_complete(call, CLIENT_OK, NULL);
}

static struct client_call *_call_of_stream(struct client_conn *conn, int32_t stream_id) {
    if (conn->destroying) {
        return NULL;
    }
    return nghttp2_session_get_stream_user_data(conn->session, stream_id);
}

/* ---- nghttp2 callbacks ------------------------------------------------------------------- */

static ssize_t _read_request(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                             size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                             void *user_data) {
    (void)session;
    (void)stream_id;
    (void)user_data;
    struct client_call *call = source->ptr;
    size_t left = call->req_len - call->req_off;
    size_t n = left < length ? left : length;
    memcpy(buf, call->req + call->req_off, n);
    call->req_off += n;
    if (call->req_off == call->req_len) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return (ssize_t)n;
}

static bool _name_is(const uint8_t *name, size_t len, const char *want) {
    return len == strlen(want) && memcmp(name, want, len) == 0;
}

static int _on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                      size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                      void *user_data) {
    (void)session;
    (void)flags;
    struct client_conn *conn = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS) {
        return 0;
    }
    struct client_call *call = _call_of_stream(conn, frame->hd.stream_id);
    if (call == NULL || call->completed) {
        return 0;
    }
    if (_name_is(name, namelen, ":status")) {
        int status = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++) {
            status = status * 10 + (value[i] - '0');
        }
        call->http_status = status;
    } else if (_name_is(name, namelen, "grpc-status")) {
        int status = 0;
        bool ok = valuelen > 0 && valuelen <= 3;
        for (size_t i = 0; ok && i < valuelen; i++) {
            ok = value[i] >= '0' && value[i] <= '9';
            status = status * 10 + (value[i] - '0');
        }
        call->grpc_status = ok ? status : CLIENT_UNKNOWN;
    } else if (_name_is(name, namelen, "grpc-message")) {
        client_percent_decode((const char *)value, valuelen, call->message, sizeof call->message);
    }
    return 0;
}

static int _on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                          const uint8_t *data, size_t len, void *user_data) {
    (void)flags;
    struct client_conn *conn = user_data;
    struct client_call *call = _call_of_stream(conn, stream_id);
    if (call == NULL || call->completed) {
        return 0;
    }
    size_t need = call->resp_len + len;
    if (need > conn->options.max_response_bytes + CLIENT_FRAME_HEADER) {
        client_call_complete(call, CLIENT_RESOURCE_EXHAUSTED,
                             "the response is larger than %llu bytes",
                             (unsigned long long)conn->options.max_response_bytes);
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
        return 0;
    }
    if (need > call->resp_cap) {
        size_t cap = call->resp_cap ? call->resp_cap : 4096;
        while (cap < need) {
            cap *= 2;
        }
        uint8_t *grown = realloc(call->resp, cap);
        if (grown == NULL) {
            client_call_complete(call, CLIENT_RESOURCE_EXHAUSTED,
                                 "out of memory receiving the response");
            nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
            return 0;
        }
        call->resp = grown;
        call->resp_cap = cap;
    }
    memcpy(call->resp + call->resp_len, data, len);
    call->resp_len += len;
    return 0;
}

static int _on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
    (void)session;
    struct client_conn *conn = user_data;
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        /* Complete on the server's END_STREAM rather than on stream close: the latency is
         * then the response's, whatever happens to our half of the stream. */
        struct client_call *call = _call_of_stream(conn, frame->hd.stream_id);
        if (call != NULL && !call->completed) {
            _complete_from_response(call);
        }
    }
    return 0;
}

static int _on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                            void *user_data) {
    struct client_conn *conn = user_data;
    struct client_call *call = _call_of_stream(conn, stream_id);
    if (call == NULL) {
        return 0;
    }
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    if (!call->completed) {
        if (error_code == NGHTTP2_NO_ERROR && call->grpc_status >= 0) {
            _complete_from_response(call);
        } else {
            client_call_complete(call, _code_of_reset(error_code),
                                 "the server closed the stream before the response was complete "
                                 "(HTTP/2 %s)",
                                 nghttp2_http2_strerror(error_code));
        }
    }
    call->stream_closed = true;
    _call_put_if_idle(call);
    return 0;
}

/* HEADERS that could not go out: the server sent GOAWAY first, or the call was reset while
 * still waiting for a free stream. */
static int _on_frame_not_send(nghttp2_session *session, const nghttp2_frame *frame,
                              int lib_error_code, void *user_data) {
    struct client_conn *conn = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || conn->destroying) {
        return 0;
    }
    struct client_call *call = conn->live;
    while (call != NULL && call->stream_id != frame->hd.stream_id) {
        call = call->next;
    }
    if (call == NULL) {
        return 0;
    }
    client_call_complete(call, CLIENT_UNAVAILABLE, "the request could not be sent: %s",
                         nghttp2_strerror(lib_error_code));
    if (nghttp2_session_find_stream(session, frame->hd.stream_id) == NULL) {
        call->stream_closed = true; /* never opened: no close callback will come */
        _call_put_if_idle(call);
    }
    return 0;
}

int client_session_create(struct client_conn *conn) {
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        return -1;
    }
    nghttp2_session_callbacks_set_on_header_callback(cbs, _on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, _on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, _on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, _on_stream_close);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, _on_frame_not_send);
    int rc = nghttp2_session_client_new(&conn->session, cbs, conn);
    nghttp2_session_callbacks_del(cbs);
    if (rc != 0) {
        return -1;
    }
    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, conn->options.stream_window_bytes},
    };
    if (nghttp2_submit_settings(conn->session, NGHTTP2_FLAG_NONE, settings,
                                sizeof settings / sizeof settings[0]) != 0 ||
        nghttp2_session_set_local_window_size(conn->session, NGHTTP2_FLAG_NONE, 0,
                                              (int32_t)conn->options.connection_window_bytes) !=
            0) {
        return -1;
    }
    return 0;
}

/* ---- submit ------------------------------------------------------------------------------ */

/* grpc-timeout: at most 8 digits and a unit; rounds up so the server never sees less time. */
static void _format_timeout(int64_t timeout_us, char *out, size_t out_len) {
    static const struct {
        int64_t us;
        char unit;
    } units[] = {{1, 'u'}, {1000, 'm'}, {1000000, 'S'}, {60000000, 'M'}, {3600000000LL, 'H'}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        int64_t value = (timeout_us + units[i].us - 1) / units[i].us;
        if (value <= 99999999 || i + 1 == sizeof units / sizeof units[0]) {
            snprintf(out, out_len, "%lld%c", (long long)(value > 99999999 ? 99999999 : value),
                     units[i].unit);
            return;
        }
    }
}

#define _NV(name, value, flags)                                                                    \
    { (uint8_t *)(name), (uint8_t *)(value), sizeof(name) - 1, strlen(value), (flags) }

int client_submit(struct client_conn *conn, const struct client_request *req, client_done_fn done,
                  void *user) {
    if (conn->error[0]) {
        return -1;
    }
    if (req->len > UINT32_MAX) {
        snprintf(conn->error, sizeof conn->error, "a request message must be below 4 GiB");
        return -1;
    }
    struct client_call *call = _call_get(conn);
    if (call == NULL) {
        snprintf(conn->error, sizeof conn->error, "out of memory");
        return -1;
    }
    size_t framed = CLIENT_FRAME_HEADER + req->len;
    if (framed > call->req_cap) {
        uint8_t *grown = realloc(call->req, framed);
        if (grown == NULL) {
            call->callback_run = call->stream_closed = true;
            _call_put_if_idle(call);
            snprintf(conn->error, sizeof conn->error, "out of memory");
            return -1;
        }
        call->req = grown;
        call->req_cap = framed;
    }
    call->req[0] = 0;
    call->req[1] = (uint8_t)(req->len >> 24);
    call->req[2] = (uint8_t)(req->len >> 16);
    call->req[3] = (uint8_t)(req->len >> 8);
    call->req[4] = (uint8_t)req->len;
    if (req->len > 0) {
        memcpy(call->req + CLIENT_FRAME_HEADER, req->msg, req->len);
    }
    call->req_len = framed;
    call->done = done;
    call->user = user;
    int64_t now = clock_mono_us();
    call->start_us = req->start_us > 0 ? req->start_us : now;
    call->submit_us = now;

    const uint8_t nc = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
    char timeout[24];
    nghttp2_nv nva[9] = {
        _NV(":method", "POST", nc),
        _NV(":scheme", "http", nc),
        _NV(":path", req->path, NGHTTP2_NV_FLAG_NO_COPY_NAME),
        _NV(":authority", conn->authority, NGHTTP2_NV_FLAG_NO_COPY_NAME),
        _NV("content-type", "application/grpc", nc),
        _NV("te", "trailers", nc),
        _NV("user-agent", "fsd-client/1", nc),
    };
    size_t nnv = 7;
    if (conn->options.authorization[0] != '\0') {
        nva[nnv++] = (nghttp2_nv)_NV("authorization", conn->options.authorization, nc);
    }
    if (req->timeout_us > 0) {
        _format_timeout(req->timeout_us, timeout, sizeof timeout);
        nva[nnv++] = (nghttp2_nv)_NV("grpc-timeout", timeout, NGHTTP2_NV_FLAG_NO_COPY_NAME);
        call->deadline_us = now + req->timeout_us;
    }
    nghttp2_data_provider body = {.source.ptr = call, .read_callback = _read_request};
    int32_t id = nghttp2_submit_request(conn->session, NULL, nva, nnv, &body, call);
    if (id < 0) {
        call->callback_run = call->stream_closed = true;
        _call_put_if_idle(call);
        snprintf(conn->error, sizeof conn->error, "%s",
                 id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE
                     ? "no stream ids left on this connection; open a new one"
                     : nghttp2_strerror(id));
        return -1;
    }
    call->stream_id = id;
    if (call->deadline_us != INT64_MAX) {
        conn->ndeadlines++;
        if (call->deadline_us < conn->next_deadline_us) {
            conn->next_deadline_us = call->deadline_us;
        }
    }
    conn->inflight++;
    conn->stats.calls_submitted++;
    return 0;
}

void client_expire_calls(struct client_conn *conn, int64_t now) {
    if (conn->ndeadlines == 0 || now < conn->next_deadline_us) {
        return;
    }
    int64_t next = INT64_MAX;
    for (struct client_call *call = conn->live; call != NULL; call = call->next) {
        if (call->completed || call->deadline_us == INT64_MAX) {
            continue;
        }
        if (call->deadline_us <= now) {
            client_call_complete(call, CLIENT_DEADLINE_EXCEEDED, "deadline of %lld us exceeded",
                                 (long long)(call->deadline_us - call->start_us));
            if (conn->fd >= 0) {
                nghttp2_submit_rst_stream(conn->session, NGHTTP2_FLAG_NONE, call->stream_id,
                                          NGHTTP2_CANCEL);
            }
        } else if (call->deadline_us < next) {
            next = call->deadline_us;
        }
    }
    conn->next_deadline_us = next;
}

int client_run_callbacks(struct client_conn *conn) {
    int ran = 0;
    while (conn->done_head != NULL) {
        struct client_call *call = conn->done_head;
        conn->done_head = call->done_next;
        if (conn->done_head == NULL) {
            conn->done_tail = NULL;
        }
        conn->inflight--;
        conn->stats.calls_completed++;
        conn->stats.calls_ok += call->status == CLIENT_OK;
        if (call->done != NULL) {
            struct client_result result = {
                .status = call->status,
                .message = call->message,
                .response = call->status == CLIENT_OK ? call->msg : NULL,
                .response_len = call->status == CLIENT_OK ? call->msg_len : 0,
                .start_us = call->start_us,
                .submit_us = call->submit_us,
                .latency_us = call->end_us - call->start_us,
            };
            call->done(call->user, &result);
        }
        call->callback_run = true;
        _call_put_if_idle(call);
        ran++;
    }
    return ran;
}
