/*
 * One call: request headers checked, messages reassembled, the handler run at its turn, and
 * the response (message + trailers, or trailers only) handed to nghttp2.
 */
#include "internal.h"
#include "common/clock.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* grpc-status values as header text, so responses need no formatting. */
static const char *const _status_text[GRPC_CODE_COUNT] = {
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
};

/* The unmatched :path kept for the UNIMPLEMENTED message is cut to this. */
#define _PATH_KEEP 256

#define _NV(name, value, flags)                                                                    \
    { (uint8_t *)(name), (uint8_t *)(value), sizeof(name) - 1, strlen(value), (flags) }
#define _NV_STATIC(name, value)                                                                    \
    {                                                                                              \
        (uint8_t *)(name), (uint8_t *)(value), sizeof(name) - 1, sizeof(value) - 1,                \
            NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE                           \
    }

static struct grpc_worker *_worker(const struct grpc_call *call) {
    return call->conn->worker;
}

static bool _streaming(const struct grpc_call *call) {
    return call->method != NULL && call->method->method.unary == NULL;
}

static bool _buf_reserve(struct grpc_buf *b, size_t need) {
    if (b->cap >= need) {
        return true;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    uint8_t *data = realloc(b->data, cap);
    if (data == NULL) {
        return false;
    }
    b->data = data;
    b->cap = cap;
    return true;
}

static void _count(struct grpc_call *call, enum grpc_code code) {
    struct grpc_worker *w = _worker(call);
    grpc_stat_add(&w->stats.calls[call->method_index * GRPC_CODE_COUNT + code], 1);
}

/* Returns the call's reassembly budget to its connection. */
static void _unbuffer(struct grpc_call *call) {
    call->conn->buffered -= call->buffered;
    call->buffered = 0;
}

/* ---- accessors --------------------------------------------------------------------------- */

void *grpc_call_worker_context(const struct grpc_call *call) {
    return call->conn->worker->ctx;
}

unsigned grpc_call_worker_index(const struct grpc_call *call) {
    return call->conn->worker->index;
}

size_t grpc_call_method_index(const struct grpc_call *call) {
    return call->method_index;
}

const struct clock_cache *grpc_call_clock(const struct grpc_call *call) {
    return &call->conn->worker->clock;
}

int64_t grpc_call_start_us(const struct grpc_call *call) {
    return call->start_us;
}

int64_t grpc_call_ready_us(const struct grpc_call *call) {
    return call->ready_us;
}

const char *grpc_call_peer(const struct grpc_call *call) {
    return call->conn->peer;
}

const char *grpc_call_tls_subject(const struct grpc_call *call) {
    return call->conn->tls_subject;
}

uint64_t grpc_call_auth(const struct grpc_call *call) {
    return call->auth;
}

void grpc_call_set_auth(struct grpc_call *call, uint64_t auth) {
    call->auth = auth;
}

int64_t grpc_call_deadline_us(const struct grpc_call *call) {
    return call->deadline_us;
}

void *grpc_call_user(const struct grpc_call *call) {
    return call->user;
}

void grpc_call_set_user(struct grpc_call *call, void *user) {
    call->user = user;
}

/* ---- responses --------------------------------------------------------------------------- */

/* Submits a response nghttp2 could not take: reset the stream rather than leave it hanging. */
static void _submit_failed(struct grpc_call *call, int rv) {
    log_warn("grpc response not submitted", "stream=%d error=%s", call->stream_id,
             LOG_QUOTE(nghttp2_strerror(rv)));
    nghttp2_submit_rst_stream(call->conn->session, NGHTTP2_FLAG_NONE, call->stream_id,
                              NGHTTP2_INTERNAL_ERROR);
}

/* Trailers-only: the status rides in the response HEADERS, which end the stream. */
static void _finish_trailers_only(struct grpc_call *call, enum grpc_code code, const char *message,
                                  size_t message_len, bool advertise_identity) {
    if (call->finished) {
        return;
    }
    if ((unsigned)code >= GRPC_CODE_COUNT) {
        code = GRPC_UNKNOWN;
    }
    if (call->conn->h1 != NULL) {
        grpc_http1_fail(call, code, grpc_http_status_of(code), message, message_len);
        return;
    }
    call->finished = true;
    _count(call, code);
    char encoded[GRPC_MESSAGE_ENCODED_MAX];
    nghttp2_nv nv[5] = {
        _NV_STATIC(":status", "200"),
        _NV_STATIC("content-type", "application/grpc"),
        _NV("grpc-status", _status_text[code],
            NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE),
    };
    size_t nnv = 3;
    if (message != NULL && message_len > 0) {
        grpc_percent_encode(message, message_len, encoded, sizeof encoded);
        nv[nnv++] = (nghttp2_nv)_NV("grpc-message", encoded, NGHTTP2_NV_FLAG_NO_COPY_NAME);
    }
    if (advertise_identity) {
        nv[nnv++] = (nghttp2_nv)_NV_STATIC("grpc-accept-encoding", "identity");
    }
    int rv = nghttp2_submit_response(call->conn->session, call->stream_id, nv, nnv, NULL);
    if (rv != 0) {
        _submit_failed(call, rv);
    }
}

/* A bare HTTP error (405, 415): the gRPC spec's answer to requests that are not gRPC. */
static void _finish_http(struct grpc_call *call, const char *status) {
    if (call->conn->h1 != NULL) {
        grpc_http1_fail(call, GRPC_UNKNOWN, (unsigned)atoi(status), "not a gRPC request", 18);
        return;
    }
    call->finished = true;
    _count(call, GRPC_UNKNOWN); /* what a gRPC client makes of a non-200 :status */
    nghttp2_nv nv[] = {
        _NV(":status", status, NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE),
    };
    int rv = nghttp2_submit_response(call->conn->session, call->stream_id, nv, 1, NULL);
    if (rv != 0) {
        _submit_failed(call, rv);
    }
}

void grpc_call_fail(struct grpc_call *call, enum grpc_code code, const char *message) {
    _finish_trailers_only(call, code, message, message ? strlen(message) : 0, false);
}

void grpc_call_failf(struct grpc_call *call, enum grpc_code code, const char *fmt, ...) {
    if (call->finished) {
        return;
    }
    char message[GRPC_MESSAGE_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof message ? (size_t)n : sizeof message - 1;
    _finish_trailers_only(call, code, message, len, false);
}

/*
 * The transport ends the call on its own (limit, deadline, bad framing). A streaming handler
 * that has seen the call still holds state for it: on_abort lets it let go.
 */
static void _abort_handler(struct grpc_call *call) {
    if (_streaming(call) && call->handler_called && call->method->method.on_abort != NULL) {
        call->handler_called = false;
        call->method->method.on_abort(call);
    }
}

__attribute__((format(printf, 3, 4))) static void
_transport_fail(struct grpc_call *call, enum grpc_code code, const char *fmt, ...) {
    char message[GRPC_MESSAGE_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    grpc_call_fail(call, code, message);
    _abort_handler(call);
}

void *grpc_call_reply_reserve(struct grpc_call *call, size_t len) {
    if (call->finished || len > UINT32_MAX - GRPC_PREFIX_BYTES ||
        !_buf_reserve(&call->out, GRPC_PREFIX_BYTES + len)) {
        return NULL;
    }
    grpc_frame_prefix_write(call->out.data, (uint32_t)len);
    call->out.len = GRPC_PREFIX_BYTES + len;
    call->out_sent = 0;
    return call->out.data + GRPC_PREFIX_BYTES;
}

void grpc_call_reply_send(struct grpc_call *call) {
    if (call->finished || call->out.len < GRPC_PREFIX_BYTES) {
        return;
    }
    if (call->conn->h1 != NULL) { /* the message as the body, without gRPC's prefix */
        grpc_call_http_reply(call, GRPC_OK, 200, "application/json",
                             call->out.data + GRPC_PREFIX_BYTES, call->out.len - GRPC_PREFIX_BYTES);
        return;
    }
    call->finished = true;
    _count(call, GRPC_OK);
    call->reply_pending = true;
    grpc_conn_pending_add(call->conn, (int64_t)call->out.len);
    nghttp2_nv nv[] = {
        _NV_STATIC(":status", "200"),
        _NV_STATIC("content-type", "application/grpc"),
    };
    nghttp2_data_provider data = {
        .source = {.ptr = call},
        .read_callback = grpc_call_read_response,
    };
    int rv = nghttp2_submit_response(call->conn->session, call->stream_id, nv, 2, &data);
    if (rv != 0) {
        _submit_failed(call, rv);
    }
}

bool grpc_call_is_http1(const struct grpc_call *call) {
    return call->conn->h1 != NULL;
}

void grpc_call_http_reply(struct grpc_call *call, enum grpc_code code, unsigned status,
                          const char *content_type, const void *body, size_t len) {
    if (call->finished) {
        return;
    }
    if (call->conn->h1 == NULL) {
        grpc_call_fail(call, GRPC_INTERNAL, "an HTTP/1.1 response for a gRPC call");
        return;
    }
    call->finished = true;
    _count(call, (unsigned)code < GRPC_CODE_COUNT ? code : GRPC_UNKNOWN);
    grpc_http1_respond(call, status, content_type, body, len);
}

int grpc_call_add_trailer(struct grpc_call *call, const char *name, const char *value) {
    size_t len = strlen(value);
    if (call->ntrailers >= GRPC_CALL_MAX_TRAILERS || len >= GRPC_CALL_TRAILER_VALUE_MAX) {
        return -1;
    }
    call->trailer_names[call->ntrailers] = name;
    memcpy(call->trailer_values[call->ntrailers], value, len + 1);
    call->ntrailers++;
    return 0;
}

void grpc_call_reply(struct grpc_call *call, const void *msg, size_t len) {
    void *dst = grpc_call_reply_reserve(call, len);
    if (dst == NULL) {
        grpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "server out of memory for the response");
        return;
    }
    if (len > 0) {
        memcpy(dst, msg, len);
    }
    grpc_call_reply_send(call);
}

ssize_t grpc_call_read_response(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                                size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                                void *user_data) {
    (void)user_data;
    struct grpc_call *call = source->ptr;
    size_t left = call->out.len - call->out_sent;
    size_t n = left < length ? left : length;
    memcpy(buf, call->out.data + call->out_sent, n);
    call->out_sent += n;
    /* From the call to nghttp2, on its way to `out`, which counts it again when it gets there. */
    grpc_conn_pending_add(call->conn, -(int64_t)n);
    if (call->out_sent == call->out.len) {
        /* The message is out; the status follows as trailers, which end the stream. */
        *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        nghttp2_nv trailers[1 + GRPC_CALL_MAX_TRAILERS] = {_NV_STATIC("grpc-status", "0")};
        size_t ntrailers = 1;
        for (uint8_t t = 0; t < call->ntrailers; t++) {
            trailers[ntrailers++] = (nghttp2_nv){
                (uint8_t *)call->trailer_names[t], (uint8_t *)call->trailer_values[t],
                strlen(call->trailer_names[t]), strlen(call->trailer_values[t]),
                NGHTTP2_NV_FLAG_NO_COPY_NAME}; /* the value is copied: the call is reused */
        }
        int rv = nghttp2_submit_trailer(session, stream_id, trailers, ntrailers);
        if (rv != 0) {
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
    }
    return (ssize_t)n;
}

/* ---- request ----------------------------------------------------------------------------- */

void grpc_call_begin(struct grpc_call *call, struct grpc_conn *conn, int32_t stream_id) {
    call->conn = conn;
    call->stream_id = stream_id;
    call->method = NULL;
    call->method_index = conn->worker->server->nmethods;
    call->start_us = conn->worker->clock.mono_us;
    call->timeout_us = -1;
    call->deadline_us = INT64_MAX;
    TAILQ_INSERT_TAIL(&conn->calls, call, link);
    conn->ncalls++;
    conn->calls_begun++;
}

static void _reject(struct grpc_call *call, enum grpc_call_reject reject) {
    /* Lower values win: a bad :method says more about the request than a bad timeout. */
    if (call->reject == GRPC_REJECT_NONE || reject < call->reject) {
        call->reject = reject;
    }
}

static bool _name_is(const uint8_t *name, size_t len, const char *want) {
    size_t want_len = strlen(want);
    return len == want_len && memcmp(name, want, len) == 0;
}

static void _on_path(struct grpc_call *call, const uint8_t *value, size_t len) {
    struct grpc_server *s = _worker(call)->server;
    for (size_t i = 0; i < s->nmethods; i++) {
        /* gRPC's paths only: an HTTP/1.1 method's ("POST /push") is not reachable over
         * HTTP/2. */
        if (s->methods[i].method.path[0] == '/' && s->methods[i].path_len == len &&
            memcmp(s->methods[i].method.path, value, len) == 0) {
            call->method = &s->methods[i];
            call->method_index = i;
            return;
        }
    }
    _reject(call, GRPC_REJECT_UNKNOWN_PATH);
    size_t keep = len < _PATH_KEEP ? len : _PATH_KEEP;
    if (_buf_reserve(&call->in, keep)) {
        memcpy(call->in.data, value, keep);
        call->in.len = keep;
    }
}

/*
 * Runs the method's authorizer once per call. HTTP/2 puts :path before every regular header,
 * so the method is known by the time `authorization` arrives; a second `authorization` header
 * is refused, not judged by whichever came last.
 */
static void _authorize(struct grpc_call *call, const uint8_t *value, size_t len) {
    if (call->method == NULL || call->method->method.authorize == NULL) {
        return;
    }
    if (call->authorized) {
        if (call->auth_code == GRPC_OK) {
            call->auth_code = GRPC_UNAUTHENTICATED;
            snprintf(call->auth_message, sizeof call->auth_message,
                     "more than one authorization header");
            _reject(call, GRPC_REJECT_UNAUTHORIZED);
        }
        return;
    }
    call->authorized = true;
    call->auth_message[0] = '\0';
    call->auth_code = call->method->method.authorize(call, value, len, call->auth_message,
                                                     sizeof call->auth_message);
    if (call->auth_code != GRPC_OK) {
        _reject(call, GRPC_REJECT_UNAUTHORIZED);
    }
}

void grpc_call_on_header(struct grpc_call *call, const uint8_t *name, size_t name_len,
                         const uint8_t *value, size_t value_len) {
    /* nghttp2 has already checked HTTP/2's rules (pseudo-headers, lower case, te). */
    if (_name_is(name, name_len, ":method")) {
        if (!_name_is(value, value_len, "POST")) {
            _reject(call, GRPC_REJECT_METHOD_NOT_POST);
        }
    } else if (_name_is(name, name_len, ":path")) {
        _on_path(call, value, value_len);
    } else if (_name_is(name, name_len, "content-type")) {
        call->saw_content_type = true;
        if (!grpc_content_type_ok((const char *)value, value_len)) {
            _reject(call, GRPC_REJECT_CONTENT_TYPE);
        }
    } else if (_name_is(name, name_len, "authorization")) {
        _authorize(call, value, value_len);
    } else if (_name_is(name, name_len, "grpc-timeout")) {
        if (grpc_timeout_parse((const char *)value, value_len, &call->timeout_us) != 0) {
            call->timeout_us = -1;
            _reject(call, GRPC_REJECT_BAD_TIMEOUT);
        }
    }
}

void grpc_call_http1_request(struct grpc_call *call, const char *target, size_t len, unsigned nauth,
                             const uint8_t *auth, size_t auth_len) {
    struct grpc_server *s = _worker(call)->server;
    const char *space = memchr(target, ' ', len);
    size_t path_at = space != NULL ? (size_t)(space - target) + 1 : len;
    bool other_method = false;
    for (size_t i = 0; i < s->nmethods; i++) {
        const struct grpc_method_entry *m = &s->methods[i];
        if (m->path_len == len && memcmp(m->method.path, target, len) == 0) {
            call->method = m;
            call->method_index = i;
            break;
        }
        const char *mspace = memchr(m->method.path, ' ', m->path_len);
        if (mspace != NULL &&
            m->path_len - (size_t)(mspace - m->method.path) == len - path_at + 1 &&
            memcmp(mspace + 1, target + path_at, len - path_at) == 0) {
            other_method = true;
        }
    }
    if (call->method == NULL) {
        char why[_PATH_KEEP + 32];
        snprintf(why, sizeof why, "%s: %.*s", other_method ? "Method Not Allowed" : "Not Found",
                 (int)(len < _PATH_KEEP ? len : _PATH_KEEP), target);
        grpc_http1_fail(call, GRPC_UNIMPLEMENTED, other_method ? 405 : 404, why, strlen(why));
        return;
    }
    if (nauth > 1) {
        grpc_http1_fail(call, GRPC_UNAUTHENTICATED, 401, "more than one Authorization header", 34);
        return;
    }
    _authorize(call, auth, auth_len);
    if (call->reject == GRPC_REJECT_UNAUTHORIZED) {
        grpc_call_fail(call, call->auth_code, call->auth_message);
    }
}

void grpc_call_on_headers_end(struct grpc_call *call, bool end_stream) {
    if (!call->saw_content_type) {
        _reject(call, GRPC_REJECT_CONTENT_TYPE);
    }
    if (!call->authorized && call->reject == GRPC_REJECT_NONE) {
        _authorize(call, NULL, 0);
    }
    switch (call->reject) {
    case GRPC_REJECT_NONE:
        break;
    case GRPC_REJECT_METHOD_NOT_POST:
        _finish_http(call, "405");
        return;
    case GRPC_REJECT_CONTENT_TYPE:
        _finish_http(call, "415");
        return;
    case GRPC_REJECT_UNKNOWN_PATH:
        grpc_call_failf(call, GRPC_UNIMPLEMENTED, "unknown method %.*s", (int)call->in.len,
                        (const char *)call->in.data);
        call->in.len = 0;
        return;
    case GRPC_REJECT_BAD_TIMEOUT:
        grpc_call_fail(call, GRPC_INTERNAL,
                       "malformed grpc-timeout header (want 1-8 digits and one of HMSmun)");
        return;
    case GRPC_REJECT_UNAUTHORIZED:
        grpc_call_fail(call, call->auth_code, call->auth_message);
        return;
    }
    if (call->timeout_us >= 0) {
        call->deadline_us = call->timeout_us > INT64_MAX - call->start_us
                                ? INT64_MAX
                                : call->start_us + call->timeout_us;
    }
    if (end_stream) {
        grpc_call_on_request_end(call);
    }
}

/* Streaming: hands one complete message to on_message, unless the deadline has passed. */
static void _deliver(struct grpc_call *call, const uint8_t *msg, size_t len) {
    /* The batch's time, not a fresh clock read per message: close enough for a deadline. */
    if (_worker(call)->clock.mono_us >= call->deadline_us) {
        grpc_stat_add(&_worker(call)->stats.deadline_exceeded[call->method_index], 1);
        _transport_fail(call, GRPC_DEADLINE_EXCEEDED, "deadline exceeded while streaming");
        return;
    }
    call->handler_called = true;
    call->method->method.on_message(call, msg ? msg : (const uint8_t *)"", len);
}

/* A prefix completed: decide on the message before any of its body is kept. */
static bool _accept_prefix(struct grpc_call *call) {
    const struct grpc_frame_reader *r = &call->reader;
    uint64_t limit = _worker(call)->server->options.max_message_bytes;
    if (r->compressed) {
        /* The spec's answer, with grpc-accept-encoding naming what we do take. */
        static const char msg[] = "compression not supported: the request message is "
                                  "compressed but this server accepts only identity";
        _finish_trailers_only(call, GRPC_UNIMPLEMENTED, msg, sizeof msg - 1, true);
        _abort_handler(call);
        return false;
    }
    if (r->msg_len > limit) {
        _transport_fail(call, GRPC_RESOURCE_EXHAUSTED,
                        "request message of %u bytes exceeds the limit of %llu bytes "
                        "(max_message_bytes)",
                        r->msg_len, (unsigned long long)limit);
        return false;
    }
    if (!_streaming(call) && call->nmessages >= 1) {
        _transport_fail(call, GRPC_UNIMPLEMENTED,
                        "unary request must carry exactly one message, got more than one");
        return false;
    }
    struct grpc_conn *conn = call->conn;
    uint64_t budget = _worker(call)->server->conn_buffered_max;
    if (conn->buffered + r->msg_len > budget) {
        _transport_fail(call, GRPC_RESOURCE_EXHAUSTED,
                        "connection has %llu request bytes in flight; a %u-byte message would "
                        "exceed its budget of %llu bytes",
                        (unsigned long long)conn->buffered, r->msg_len, (unsigned long long)budget);
        return false;
    }
    conn->buffered += r->msg_len;
    call->buffered += r->msg_len;
    call->in.len = 0;
    return true;
}

void grpc_call_on_data(struct grpc_call *call, const uint8_t *data, size_t len) {
    /* Finished early (an error, or a reply mid-stream): the rest of the request is dropped;
     * RST_STREAM(NO_ERROR) after our answer stops the client sending it. */
    while (len > 0 && !call->finished) {
        struct grpc_frame_step step;
        size_t used = grpc_frame_read(&call->reader, data, len, &step);
        data += used;
        len -= used;
        if (step.prefix_done && !_accept_prefix(call)) {
            return;
        }
        bool whole = step.message_done && call->in.len == 0;
        if (step.body_len > 0 && !(whole && _streaming(call))) {
            /* Unary messages wait for their turn, so they are copied out of the read buffer;
             * a streamed message that arrived whole is handed over in place. */
            if (!_buf_reserve(&call->in, call->reader.msg_len)) {
                _transport_fail(call, GRPC_RESOURCE_EXHAUSTED,
                                "server out of memory for a %u-byte message", call->reader.msg_len);
                return;
            }
            memcpy(call->in.data + call->in.len, step.body, step.body_len);
            call->in.len += step.body_len;
        }
        if (step.message_done) {
            call->nmessages++;
            if (_streaming(call)) {
                if (whole) {
                    _deliver(call, step.body, step.body_len);
                } else {
                    _deliver(call, call->in.data, call->in.len);
                }
                call->in.len = 0;
                _unbuffer(call);
            }
        }
    }
}

void grpc_call_on_request_end(struct grpc_call *call) {
    if (call->finished || call->queued) {
        return;
    }
    if (!grpc_frame_reader_idle(&call->reader)) {
        const struct grpc_frame_reader *r = &call->reader;
        if (r->prefix_have < GRPC_PREFIX_BYTES) {
            _transport_fail(call, GRPC_INTERNAL,
                            "request ended inside a message prefix (%u of 5 bytes)",
                            r->prefix_have);
        } else {
            _transport_fail(call, GRPC_INTERNAL, "request ended inside a message (%u of %u bytes)",
                            r->body_have, r->msg_len);
        }
        return;
    }
    if (!_streaming(call) && call->nmessages != 1) {
        _transport_fail(call, GRPC_UNIMPLEMENTED,
                        "unary request must carry exactly one message, got none");
        return;
    }
    call->ready_us = _worker(call)->clock.mono_us;
    grpc_conn_enqueue(call->conn, call);
}

void grpc_call_dispatch(struct grpc_call *call) {
    if (call->finished) {
        return;
    }
    struct grpc_worker *w = _worker(call);
    if (call->deadline_us != INT64_MAX) {
        /* The one clock read a call with a deadline costs: it may have waited behind others. */
        int64_t now = clock_mono_us();
        if (now >= call->deadline_us) {
            grpc_stat_add(&w->stats.deadline_exceeded[call->method_index], 1);
            _transport_fail(call, GRPC_DEADLINE_EXCEEDED,
                            "deadline exceeded before the call was dispatched (waited %lld us, "
                            "timeout %lld us)",
                            (long long)(now - call->start_us), (long long)call->timeout_us);
            return;
        }
    }
    const struct grpc_method *m = &call->method->method;
    if (m->unary != NULL) {
        m->unary(call, call->in.data ? call->in.data : (const uint8_t *)"", call->in.len);
    } else {
        call->handler_called = true;
        m->on_end(call);
    }
    _unbuffer(call);
    if (!call->finished && call->suspended == NULL) {
        log_warn("grpc handler returned without finishing the call", "method=%s",
                 LOG_QUOTE(m->path));
        call->handler_called = false; /* it had its chance; no on_abort */
        grpc_call_fail(call, GRPC_INTERNAL, "handler returned without finishing the call");
    }
}

void grpc_call_release(struct grpc_call *call) {
    struct grpc_conn *conn = call->conn;
    _unbuffer(call);
    if (call->reply_pending) {
        /* Reset or cut before the whole response left: what is left of it leaves the budget. */
        grpc_conn_pending_add(conn, -(int64_t)(call->out.len - call->out_sent));
        call->reply_pending = false;
    }
    TAILQ_REMOVE(&conn->calls, call, link);
    conn->ncalls--;
    if (call->queued) {
        TAILQ_REMOVE(&conn->ready, call, ready_link);
        call->queued = false;
    }
    if (!call->finished) {
        /* Reset by the client or cut with the connection before we answered. */
        call->finished = true;
        _count(call, GRPC_CANCELLED);
        if (call->suspended != NULL) {
            /* The handler gave the call up: its resume runs with no call, not on_abort. */
            call->suspended->call = NULL;
            call->suspended = NULL;
        } else {
            _abort_handler(call);
        }
    }
    grpc_worker_call_put(conn->worker, call);
}

struct grpc_resume *grpc_call_suspend(struct grpc_call *call, grpc_resume_fn resume, void *arg) {
    struct grpc_resume *r = calloc(1, sizeof(*r));
    if (r == NULL || call->finished || call->suspended != NULL) {
        free(r);
        return NULL;
    }
    r->worker = _worker(call);
    r->call = call;
    r->fn = resume;
    r->arg = arg;
    call->suspended = r;
    return r;
}

void grpc_resume_post(struct grpc_resume *r) {
    struct grpc_worker *w = r->worker;
    pthread_mutex_lock(&w->resume_lock);
    if (w->resume_closed) {
        /* The worker stopped, and with it every call: nothing to resume but the argument. */
        pthread_mutex_unlock(&w->resume_lock);
        r->fn(NULL, r->arg);
        free(r);
        return;
    }
    r->next = NULL;
    if (w->resume_tail != NULL) {
        w->resume_tail->next = r;
    } else {
        w->resume_head = r;
    }
    w->resume_tail = r;
    pthread_mutex_unlock(&w->resume_lock);
    uint64_t one = 1;
    if (write(w->resume_fd, &one, sizeof one) != sizeof one) {
        /* The eventfd's counter is full (it never is: the worker reads it) or closed. */
        log_warn("grpc resume not signalled", "worker=%u error=%s", w->index,
                 LOG_QUOTE(strerror(errno)));
    }
}

void grpc_call_recycle(struct grpc_call *call) {
    struct grpc_buf in = call->in;
    struct grpc_buf out = call->out;
    if (in.cap > GRPC_CALL_BUF_KEEP) {
        free(in.data);
        in = (struct grpc_buf){0};
    }
    if (out.cap > GRPC_CALL_BUF_KEEP) {
        free(out.data);
        out = (struct grpc_buf){0};
    }
    in.len = 0;
    out.len = 0;
    memset(call, 0, sizeof *call);
    call->in = in;
    call->out = out;
}

void grpc_call_free(struct grpc_call *call) {
    free(call->in.data);
    free(call->out.data);
    free(call);
}
