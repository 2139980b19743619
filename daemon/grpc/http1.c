/*
 * HTTP/1.1 on the gRPC port, for clients that speak JSON (Feast's feature server API): the
 * same workers, budgets, authorizers and handlers as gRPC, framed by a real HTTP/1.1 parser
 * (http_parser, from Node.js; Debian's libhttp-parser).
 *
 *   bytes ──http_parser──> request line, headers ──> a call (method "POST /path")
 *                          body (Content-Length or chunked) ──> call->in
 *                          message complete ──> parser paused, call queued ──> handler
 *   handler ──grpc_call_http_reply / grpc_call_fail──> status line + headers + body ──> out
 *   answered ──> call released, held bytes parsed: the next pipelined request
 *
 * One request at a time per connection: while one is served the socket is not read, so a
 * pipelining client parks its requests in the kernel's buffer, not in ours, and responses
 * leave in request order without any bookkeeping. Keep-alive follows HTTP/1.1's rules
 * (http_should_keep_alive): "Connection: close", or HTTP/1.0 without keep-alive, closes the
 * connection once its response is out.
 *
 * Limits, as for HTTP/2: a body past server.max_message_bytes is 413 and the connection
 * closes (its remaining bytes are never read); headers past server.max_header_list_bytes are
 * 431 and close; a request whose headers do not arrive within server.preface_timeout is
 * closed (slow headers hold a connection without ever making a call); idle_timeout closes a
 * connection with no request; drains (shutdown, max_connection_age) close it after the
 * request in progress, whose response says "Connection: close".
 */
#include "internal.h"
#include "common/buf.h"
#include "common/json.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Request line and header field names kept for matching; longer ones match nothing. */
#define _TARGET_MAX 512
#define _FIELD_MAX  32

/* The header being read: which one it is, so only the values fsd reads are kept. */
enum _field {
    _FIELD_OTHER = 0,
    _FIELD_AUTHORIZATION,
    _FIELD_EXPECT,
};

struct grpc_http1 {
    http_parser parser;
    struct grpc_conn *conn;
    struct grpc_call *call; /* the request being read or served; NULL between requests */
    bool in_message;        /* the parser is inside a request (its first byte came) */
    bool headers_done;
    bool closing;          /* close once the response in progress is out */
    bool discard;          /* the call was answered early (401, 404, 413): drop its body */
    int64_t begun_us;      /* when the request's first byte came (the headers' clock) */
    uint64_t header_bytes; /* the request line and headers so far */
    /* Bytes read past the request in progress, parsed once it is answered. */
    struct grpc_buf held;
    size_t held_off;
    char target[_TARGET_MAX]; /* "METHOD /path" once the URL is complete */
    size_t target_len;
    bool target_long;
    char field[_FIELD_MAX];
    size_t field_len;
    enum _field current;
    bool in_value;
    struct grpc_buf auth; /* Authorization's value */
    unsigned nauth;
    bool expect_continue;
};

static struct grpc_server *_server(const struct grpc_http1 *h) {
    return h->conn->worker->server;
}

static bool _append(struct grpc_buf *b, const char *data, size_t len, size_t limit) {
    if (len == 0) {
        return true; /* an empty value: nothing to copy, and maybe no buffer yet */
    }
    if (b->len + len > limit) {
        return false;
    }
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len) {
            cap *= 2;
        }
        uint8_t *d = realloc(b->data, cap);
        if (d == NULL) {
            return false;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return true;
}

static const char *_reason(unsigned status) {
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return status < 500 ? "Client Error" : "Server Error";
    }
}

/* A response the transport writes on its own: {"detail": why}, FastAPI's shape for errors. */
static void _respond_detail(struct grpc_http1 *h, unsigned status, const char *why) {
    struct buf b = {0};
    buf_puts(&b, "{\"detail\": ");
    json_cstring(&b, why);
    buf_puts(&b, "}");
    struct evbuffer *out = h->conn->out;
    evbuffer_add_printf(out,
                        "HTTP/1.1 %u %s\r\nContent-Type: application/json\r\nContent-Length: "
                        "%zu\r\nConnection: close\r\n\r\n",
                        status, _reason(status), b.failed ? 0 : b.len);
    if (!b.failed) {
        evbuffer_add(out, b.data, b.len);
    }
    buf_free(&b);
}

void grpc_http1_fail(struct grpc_call *call, enum grpc_code code, unsigned status,
                     const char *message, size_t len) {
    struct buf b = {0};
    buf_puts(&b, "{\"detail\": ");
    json_string(&b, message != NULL ? message : "", message != NULL ? len : 0);
    buf_puts(&b, "}");
    grpc_call_http_reply(call, code, status, "application/json", b.failed ? "" : b.data,
                         b.failed ? 0 : b.len);
    buf_free(&b);
}

/* The request cannot go on (unparsable, over a limit): answer `status` and close after. */
static int _refuse(struct grpc_http1 *h, unsigned status, const char *why) {
    h->closing = true;
    if (h->call != NULL && !h->call->finished) {
        grpc_http1_fail(h->call,
                        status == 413 || status == 431 ? GRPC_RESOURCE_EXHAUSTED
                                                       : GRPC_INVALID_ARGUMENT,
                        status, why, strlen(why));
    } else if (h->call == NULL) {
        _respond_detail(h, status, why);
    }
    grpc_conn_protocol_error(h->conn);
    return -1; /* stops the parser */
}

void grpc_http1_respond(struct grpc_call *call, unsigned status, const char *content_type,
                        const void *body, size_t len) {
    struct grpc_conn *conn = call->conn;
    struct grpc_http1 *h = conn->h1;
    bool keep = !h->closing && conn->worker->stop_seen == GRPC_RUNNING &&
                conn->worker->clock.mono_us < conn->age_limit_us &&
                http_should_keep_alive(&h->parser);
    if (!keep) {
        h->closing = true;
    }
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %u %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s", status,
                     _reason(status), content_type, len, keep ? "" : "Connection: close\r\n");
    evbuffer_add(conn->out, head, (size_t)n);
    /* fsd's extras (grpc_call_add_trailer) ride as headers, which JSON clients ignore. */
    for (uint8_t t = 0; t < call->ntrailers; t++) {
        evbuffer_add_printf(conn->out, "%s: %s\r\n", call->trailer_names[t],
                            call->trailer_values[t]);
    }
    evbuffer_add(conn->out, "\r\n", 2);
    if (len > 0) {
        evbuffer_add(conn->out, body, len);
    }
}

/* ---- the parser's callbacks -------------------------------------------------------------- */

static bool _header_budget(struct grpc_http1 *h, size_t len) {
    h->header_bytes += len;
    return h->header_bytes <= _server(h)->options.max_header_list_bytes;
}

static int _on_message_begin(http_parser *p) {
    struct grpc_http1 *h = p->data;
    struct grpc_conn *conn = h->conn;
    struct grpc_call *call = grpc_worker_call_get(conn->worker);
    if (call == NULL) {
        return _refuse(h, 503, "server out of memory for a call");
    }
    h->in_message = true;
    h->headers_done = false;
    h->discard = false;
    h->begun_us = conn->worker->clock.mono_us;
    h->header_bytes = 0;
    h->target_len = 0;
    h->target_long = false;
    h->field_len = 0;
    h->current = _FIELD_OTHER;
    h->in_value = false;
    h->auth.len = 0;
    h->nauth = 0;
    h->expect_continue = false;
    grpc_call_begin(call, conn, 0);
    h->call = call;
    return 0;
}

static int _on_url(http_parser *p, const char *at, size_t len) {
    struct grpc_http1 *h = p->data;
    if (!_header_budget(h, len)) {
        return _refuse(h, 431, "request line past server.max_header_list_bytes");
    }
    if (h->target_len == 0) {
        const char *m = http_method_str((enum http_method)p->method);
        size_t mlen = strlen(m);
        memcpy(h->target, m, mlen);
        h->target[mlen] = ' ';
        h->target_len = mlen + 1;
    }
    if (h->target_len + len >= sizeof h->target) {
        h->target_long = true;
        return 0;
    }
    memcpy(h->target + h->target_len, at, len);
    h->target_len += len;
    return 0;
}

static int _on_header_field(http_parser *p, const char *at, size_t len) {
    struct grpc_http1 *h = p->data;
    if (!_header_budget(h, len + 32)) { /* + 32 per field, as HTTP/2 counts a header */
        return _refuse(h, 431, "request headers past server.max_header_list_bytes");
    }
    if (h->in_value) {
        h->in_value = false;
        h->field_len = 0;
    }
    if (h->field_len + len < sizeof h->field) {
        memcpy(h->field + h->field_len, at, len);
    }
    h->field_len += len;
    return 0;
}

static int _on_header_value(http_parser *p, const char *at, size_t len) {
    struct grpc_http1 *h = p->data;
    if (!_header_budget(h, len)) {
        return _refuse(h, 431, "request headers past server.max_header_list_bytes");
    }
    if (!h->in_value) {
        h->in_value = true;
        h->current = _FIELD_OTHER;
        if (h->field_len == 13 && strncasecmp(h->field, "authorization", 13) == 0) {
            h->current = _FIELD_AUTHORIZATION;
            h->nauth++;
            h->auth.len = 0;
        } else if (h->field_len == 6 && strncasecmp(h->field, "expect", 6) == 0) {
            h->current = _FIELD_EXPECT;
        }
    }
    if (h->current == _FIELD_AUTHORIZATION) {
        _append(&h->auth, at, len, _server(h)->options.max_header_list_bytes);
    } else if (h->current == _FIELD_EXPECT) {
        h->expect_continue = len >= 12 && strncasecmp(at, "100-continue", 12) == 0;
    }
    return 0;
}

static int _on_headers_complete(http_parser *p) {
    struct grpc_http1 *h = p->data;
    struct grpc_conn *conn = h->conn;
    struct grpc_call *call = h->call;
    h->headers_done = true;
    conn->got_preface = true; /* a request came: the preface timeout is done with */
    if (h->target_long) {
        return _refuse(h, 414, "request target too long");
    }
    /* The path without its query: "POST /get-online-features?x=1" is the method's. */
    char *q = memchr(h->target, '?', h->target_len);
    size_t len = q != NULL ? (size_t)(q - h->target) : h->target_len;
    /* An empty Authorization is a header all the same (malformed), not a missing one. */
    const uint8_t *auth = h->nauth == 0     ? NULL
                          : h->auth.len > 0 ? h->auth.data
                                            : (const uint8_t *)"";
    grpc_call_http1_request(call, h->target, len, h->nauth, auth, h->nauth > 0 ? h->auth.len : 0);
    if (call->finished) {
        h->discard = true; /* answered (404, 405, 401): the body is read and dropped */
        return 0;
    }
    uint64_t limit = _server(h)->options.max_message_bytes;
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > limit) {
        return _refuse(h, 413, "request body past server.max_message_bytes");
    }
    if (h->expect_continue) {
        evbuffer_add(conn->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
    return 0;
}

static int _on_body(http_parser *p, const char *at, size_t len) {
    struct grpc_http1 *h = p->data;
    if (h->discard) {
        return 0;
    }
    if (!_append(&h->call->in, at, len, _server(h)->options.max_message_bytes)) {
        return _refuse(h, 413, "request body past server.max_message_bytes");
    }
    return 0;
}

static int _on_message_complete(http_parser *p) {
    struct grpc_http1 *h = p->data;
    struct grpc_call *call = h->call;
    h->in_message = false;
    call->ready_us = h->conn->worker->clock.mono_us;
    if (!call->finished) {
        call->nmessages = 1;
        grpc_conn_enqueue(h->conn, call);
    }
    /* One request at a time: the next waits, unparsed, until this one is answered. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings _settings = {
    .on_message_begin = _on_message_begin,
    .on_url = _on_url,
    .on_header_field = _on_header_field,
    .on_header_value = _on_header_value,
    .on_headers_complete = _on_headers_complete,
    .on_body = _on_body,
    .on_message_complete = _on_message_complete,
};

/* ---- the connection ---------------------------------------------------------------------- */

int grpc_http1_start(struct grpc_conn *conn) {
    struct grpc_http1 *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return -1;
    }
    http_parser_init(&h->parser, HTTP_REQUEST);
    h->parser.data = h;
    h->conn = conn;
    conn->h1 = h;
    conn->proto = GRPC_PROTO_HTTP1;
    nghttp2_session_del(conn->session); /* its SETTINGS never went out */
    conn->session = NULL;
    return 0;
}

/* Parses `data` as far as the request in progress allows; returns the bytes taken. */
static size_t _parse(struct grpc_http1 *h, const uint8_t *data, size_t len) {
    size_t n = http_parser_execute(&h->parser, &_settings, (const char *)data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);
    if (e == HPE_PAUSED || e == HPE_OK) {
        return n;
    }
    if (!h->closing) {
        /* Refused by the parser itself: not HTTP/1.1. */
        char why[160];
        snprintf(why, sizeof why, "malformed HTTP/1.1 request: %s", http_errno_description(e));
        _refuse(h, 400, why);
    }
    return len; /* nothing more is read from a connection that closes */
}

void grpc_http1_input(struct grpc_conn *conn, const uint8_t *data, size_t len) {
    struct grpc_http1 *h = conn->h1;
    if (h->closing) {
        return; /* what follows a refused request is not read */
    }
    size_t n = 0;
    if (h->held.len == h->held_off && (h->call == NULL || h->in_message)) {
        n = _parse(h, data, len);
    }
    if (n < len && !h->closing && !_append(&h->held, (const char *)data + n, len - n, SIZE_MAX)) {
        _refuse(h, 503, "server out of memory for the request");
    }
}

bool grpc_http1_reading_paused(const struct grpc_conn *conn) {
    const struct grpc_http1 *h = conn->h1;
    return h->closing || (h->call != NULL && !h->in_message) || h->held.len > h->held_off;
}

void grpc_http1_advance(struct grpc_conn *conn) {
    struct grpc_http1 *h = conn->h1;
    for (int round = 0; round < 64 && !conn->dead; round++) {
        grpc_conn_run_ready(conn); /* the request queued, if the budgets allow */
        if (h->call != NULL && h->call->finished && !h->in_message) {
            /* Answered: the call goes, and the next request may be parsed. */
            grpc_call_release(h->call);
            h->call = NULL;
        }
        if (h->closing || h->call != NULL || h->held.len == h->held_off) {
            break;
        }
        http_parser_pause(&h->parser, 0);
        size_t n = _parse(h, h->held.data + h->held_off, h->held.len - h->held_off);
        h->held_off += n;
        if (h->held_off == h->held.len) {
            h->held.len = h->held_off = 0;
        }
    }
    if (h->call == NULL && !h->closing) {
        http_parser_pause(&h->parser, 0);
    }
    if (conn->dead) {
        return;
    }
    /* event_add of an added event costs nothing; a delete happens only while a call waits
     * (suspended, or over a budget) or requests are held. */
    if (grpc_http1_reading_paused(conn)) {
        event_del(conn->read_ev);
    } else {
        event_add(conn->read_ev, NULL);
    }
}

bool grpc_http1_finished(const struct grpc_conn *conn) {
    const struct grpc_http1 *h = conn->h1;
    return h->closing && (h->call == NULL || h->call->finished) &&
           evbuffer_get_length(conn->out) == 0;
}

bool grpc_http1_eof(struct grpc_conn *conn) {
    struct grpc_http1 *h = conn->h1;
    h->closing = true; /* read nothing more */
    /* A whole request still to answer keeps the connection until it is; a request cut off
     * in the middle can never complete. */
    return h->call != NULL && !h->in_message && !h->call->finished;
}

void grpc_http1_drain(struct grpc_conn *conn) {
    struct grpc_http1 *h = conn->h1;
    if (h->call == NULL || (!h->in_message && h->call->finished)) {
        h->closing = true; /* no request in progress: nothing to wait for */
    }
    /* else the response in progress says Connection: close (grpc_http1_respond) */
    grpc_conn_kick(conn);
}

bool grpc_http1_check_timeouts(struct grpc_conn *conn, int64_t now_us) {
    struct grpc_http1 *h = conn->h1;
    const struct grpc_server_options *o = &conn->worker->server->options;
    if (h->in_message && !h->headers_done && o->preface_timeout_us > 0 &&
        now_us - h->begun_us >= o->preface_timeout_us) {
        grpc_conn_close_for(conn, GRPC_CLOSE_PREFACE_TIMEOUT,
                            "HTTP/1.1 request headers not complete within preface_timeout");
        return true;
    }
    if (h->call != NULL || conn->pending > 0 || conn->calls_begun != conn->idle_mark) {
        conn->idle_mark = conn->calls_begun;
        conn->idle_since_us = now_us;
    } else if (o->idle_timeout_us > 0 && now_us - conn->idle_since_us >= o->idle_timeout_us) {
        grpc_conn_close_for(conn, GRPC_CLOSE_IDLE_TIMEOUT, "no HTTP/1.1 request for idle_timeout");
        return true;
    }
    if (conn->age_limit_us == INT64_MAX || now_us < conn->age_limit_us) {
        return false; /* no max_connection_age, or not reached */
    }
    if (h->call == NULL) {
        grpc_conn_close_for(conn, GRPC_CLOSE_MAX_AGE,
                            "max_connection_age reached between requests");
        return true;
    }
    if (now_us - conn->age_limit_us >= o->max_connection_age_grace_us) {
        grpc_conn_close_for(conn, GRPC_CLOSE_MAX_AGE_GRACE,
                            "request still running at the end of max_connection_age_grace");
        return true;
    }
    return false;
}

void grpc_http1_free(struct grpc_conn *conn) {
    struct grpc_http1 *h = conn->h1;
    if (h == NULL) {
        return;
    }
    free(h->held.data);
    free(h->auth.data);
    free(h);
    conn->h1 = NULL;
}
