/*
 * A client-streaming call on the client library's connection (client.h). The call is a
 * struct client_call like any other, so the library's callbacks decode its response and
 * complete it, its I/O loop moves its bytes and its deadline bookkeeping expires it; only the
 * request body differs: a queue the data source defers on instead of one framed message.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"
#include "common/clock.h"

#define CLIENT_STREAM_POLL_US 100000 /* wake at least this often while waiting */

struct client_stream {
    struct client_conn *conn; /* owns the call (a struct client_call in conn->live) */
    int32_t stream_id;
    bool closed; /* the request is complete: END_STREAM once the queue is sent */
    bool done;   /* the call completed; `result` holds it */
    /* framed request bytes not yet handed to nghttp2: buf[off..len) */
    uint8_t *buf;
    size_t off, len, cap;
    struct client_response result;
};

/* nghttp2's data source: queued bytes, else defer until more are queued or the end. */
static ssize_t _read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                          uint32_t *data_flags, nghttp2_data_source *source, void *user_data) {
    (void)session;
    (void)stream_id;
    (void)user_data;
    struct client_stream *s = source->ptr;
    size_t n = s->len - s->off;
    if (n == 0 && !s->closed) {
        return NGHTTP2_ERR_DEFERRED;
    }
    if (n > length) {
        n = length;
    }
    memcpy(buf, s->buf + s->off, n);
    s->off += n;
    if (s->off == s->len) {
        s->off = s->len = 0;
        if (s->closed) {
            *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        }
    }
    return (ssize_t)n;
}

static char *_strdup(const char *text) {
    size_t n = strlen(text) + 1;
    char *copy = malloc(n);
    if (copy != NULL) {
        memcpy(copy, text, n);
    }
    return copy;
}

/* The library's completion callback: keep the result; the call goes back to its pool. */
static void _on_done(void *user, const struct client_result *result) {
    struct client_stream *s = user;
    s->done = true;
    s->result.status = result->status;
    s->result.latency_us = result->latency_us;
    s->result.message = _strdup(result->message);
    if (result->response != NULL) {
        s->result.data = malloc(result->response_len + 1);
        if (s->result.data != NULL) {
            memcpy(s->result.data, result->response, result->response_len);
            s->result.len = result->response_len;
        }
    }
    if (s->result.message == NULL || (result->response != NULL && s->result.data == NULL)) {
        s->result.status = CLIENT_RESOURCE_EXHAUSTED;
    }
}

static void _destroy(struct client_stream *s) {
    /* The connection first: it frees the call, and nghttp2 must not read `s` any more. */
    client_conn_destroy(s->conn);
    client_response_deinit(&s->result);
    free(s->buf);
    free(s);
}

/* grpc-timeout: at most 8 digits and a unit, rounded up (as the library writes it). */
static void _format_timeout(int64_t timeout_us, char *out, size_t out_len) {
    static const struct {
        int64_t us;
        char unit;
    } units[] = {{1, 'u'}, {1000, 'm'}, {1000000, 'S'}, {60000000, 'M'}, {3600000000LL, 'H'}};
    size_t last = sizeof units / sizeof units[0] - 1;
    for (size_t i = 0; i <= last; i++) {
        int64_t value = (timeout_us + units[i].us - 1) / units[i].us;
        if (value <= 99999999 || i == last) {
            snprintf(out, out_len, "%lld%c", (long long)(value > 99999999 ? 99999999 : value),
                     units[i].unit);
            return;
        }
    }
}

#define _NV(name, value)                                                                           \
    {                                                                                              \
        (uint8_t *)(name), (uint8_t *)(value), sizeof(name) - 1, strlen(value),                    \
            NGHTTP2_NV_FLAG_NO_COPY_NAME                                                           \
    }

struct client_stream *client_stream_open(const char *addr, const char *path, int64_t timeout_us,
                                         const struct client_options *options, char *err,
                                         size_t err_len) {
    char host[256];
    uint16_t port;
    if (client_parse_addr(addr, host, sizeof host, &port, err, err_len) != 0) {
        return NULL;
    }
    struct client_stream *s = calloc(1, sizeof(*s));
    struct client_call *call = calloc(1, sizeof(*call));
    if (s == NULL || call == NULL) {
        snprintf(err, err_len, "out of memory");
        free(s);
        free(call);
        return NULL;
    }
    s->conn = client_conn_create(host, port, options, err, err_len);
    if (s->conn == NULL) {
        free(s);
        free(call);
        return NULL;
    }
    struct client_conn *conn = s->conn;
    /* A call as client_submit() makes one; the connection owns it from here on. */
    int64_t now = clock_mono_us();
    call->conn = conn;
    call->grpc_status = -1;
    call->deadline_us = INT64_MAX;
    call->start_us = call->submit_us = now;
    call->done = _on_done;
    call->user = s;
    call->next = conn->live;
    if (conn->live != NULL) {
        conn->live->prev = call;
    }
    conn->live = call;

    char timeout[24];
    nghttp2_nv nva[9] = {
        _NV(":method", "POST"),
        _NV(":scheme", "http"),
        _NV(":path", path),
        _NV(":authority", conn->authority),
        _NV("content-type", "application/grpc"),
        _NV("te", "trailers"),
        _NV("user-agent", "fsd-materialize/1"),
    };
    size_t nnv = 7;
    if (conn->options.authorization[0] != '\0') {
        nva[nnv++] = (nghttp2_nv)_NV("authorization", conn->options.authorization);
    }
    if (timeout_us > 0) {
        _format_timeout(timeout_us, timeout, sizeof timeout);
        nva[nnv++] = (nghttp2_nv)_NV("grpc-timeout", timeout);
        call->deadline_us = now + timeout_us;
    }
    nghttp2_data_provider body = {.source.ptr = s, .read_callback = _read_body};
    int32_t id = nghttp2_submit_request(conn->session, NULL, nva, nnv, &body, call);
    if (id < 0) {
        snprintf(err, err_len, "cannot start the call: %s", nghttp2_strerror(id));
        call->callback_run = call->stream_closed = true; /* freed with the connection */
        _destroy(s);
        return NULL;
    }
    call->stream_id = s->stream_id = id;
    if (call->deadline_us != INT64_MAX) {
        conn->ndeadlines++;
        if (call->deadline_us < conn->next_deadline_us) {
            conn->next_deadline_us = call->deadline_us;
        }
    }
    conn->inflight++;
    conn->stats.calls_submitted++;
    return s;
}

bool client_stream_poll(struct client_stream *s, int64_t timeout_us) {
    if (!s->done && client_poll(s->conn, timeout_us) < 0 && !s->done) {
        /* poll(2) itself failed: nothing can be waited for any more. */
        client_response_deinit(&s->result);
        s->result.status = CLIENT_INTERNAL;
        s->result.message = _strdup(strerror(errno));
        s->done = true;
    }
    return !s->done;
}

bool client_stream_ended(const struct client_stream *s) {
    return s->done;
}

size_t client_stream_queued(const struct client_stream *s) {
    return s->len - s->off;
}

int client_stream_send(struct client_stream *s, const void *msg, size_t len) {
    if (s->done || s->closed || len > UINT32_MAX) {
        return -1;
    }
    size_t need = s->len + 5 + len;
    if (need > s->cap) {
        if (s->off > 0) { /* reclaim what nghttp2 already took before growing */
            memmove(s->buf, s->buf + s->off, s->len - s->off);
            s->len -= s->off;
            s->off = 0;
            need = s->len + 5 + len;
        }
        if (need > s->cap) {
            size_t cap = s->cap ? s->cap : 1 << 16;
            while (cap < need) {
                cap *= 2;
            }
            uint8_t *grown = realloc(s->buf, cap);
            if (grown == NULL) {
                return -1;
            }
            s->buf = grown;
            s->cap = cap;
        }
    }
    uint8_t *p = s->buf + s->len;
    p[0] = 0;
    p[1] = (uint8_t)(len >> 24);
    p[2] = (uint8_t)(len >> 16);
    p[3] = (uint8_t)(len >> 8);
    p[4] = (uint8_t)len;
    memcpy(p + 5, msg, len);
    s->len += 5 + len;
    nghttp2_session_resume_data(s->conn->session, s->stream_id); /* no-op unless deferred */
    return 0;
}

int client_stream_finish(struct client_stream *s, struct client_response *out) {
    if (!s->done) {
        s->closed = true;
        nghttp2_session_resume_data(s->conn->session, s->stream_id);
        while (client_stream_poll(s, CLIENT_STREAM_POLL_US)) {
        }
    }
    *out = s->result;
    s->result = (struct client_response){0};
    int status = out->status;
    _destroy(s);
    return status;
}

void client_stream_cancel(struct client_stream *s) {
    if (!s->done && s->conn->fd >= 0) {
        nghttp2_submit_rst_stream(s->conn->session, NGHTTP2_FLAG_NONE, s->stream_id,
                                  NGHTTP2_CANCEL);
        client_poll(s->conn, 0); /* sends the reset; closing the connection would do as well */
    }
    _destroy(s);
}
