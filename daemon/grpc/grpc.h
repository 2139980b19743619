#pragma once
/*
 * gRPC server transport: gRPC over HTTP/2 cleartext with prior knowledge ("h2c"), which is what
 * grpcio and the other stock clients speak on insecure channels, or over TLS (ALPN h2). On the
 * same port, a connection whose first bytes are an HTTP/1.1 request line is served as HTTP/1.1
 * (http1.c): JSON clients reach the methods registered with an HTTP/1.1 path.
 *
 * N worker threads, each with its own libevent loop and its own listening socket bound with
 * SO_REUSEPORT to the same address, so the kernel spreads connections over them. A connection
 * stays on the worker that accepted it and a call runs to completion there: no locks and no
 * hand-off between threads on the request path.
 *
 *   worker k:  accept ─▶ read batch ─▶ nghttp2 ─▶ headers checked, message reassembled
 *                                                    │  (calls complete in the batch queue up)
 *              write ◀── nghttp2 ◀── grpc_call_reply/fail ◀── handler ◀┘  deadline checked
 *
 * Calls complete when the whole read batch has been parsed, then run in arrival order, so a
 * call that waited behind a slow one is answered DEADLINE_EXCEEDED without reaching its
 * handler once its grpc-timeout has passed.
 *
 * Lifecycle: grpc_server_options_init, grpc_server_setup (binds, starts the workers),
 * grpc_server_shutdown (graceful, from the main thread), grpc_server_teardown. One server per
 * process.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/metrics.h"
#include "common/options.h"

/* ---- defaults ---------------------------------------------------------------------------- */

/* The bind address, port, workers and message limit are options of the config file: their
 * defaults are in grpc_option_group (server.c). */
#define GRPC_DEFAULT_SHUTDOWN_TIMEOUT_MS 5000

/* Bounds grpc_server_setup() enforces. */
#define GRPC_MAX_WORKERS           256
#define GRPC_MAX_MESSAGE_BYTES_MIN (64u << 10)
#define GRPC_MAX_MESSAGE_BYTES_MAX (1u << 30) /* keeps a stream's window below 2^31 */
#define GRPC_BIND_LEN              256
/*
 * Descriptors left to the rest of the process when max_connections is derived from the
 * open-file limit: the stats port's clients, snapshot files, PostgreSQL and Redis
 * connections, logs. So a flood of gRPC connections never starves /healthz or a load.
 */
#define GRPC_FD_RESERVE 128

/* ---- options ----------------------------------------------------------------------------- */

/* All but the last are options of the config file's server section (grpc_option_group). */
struct grpc_server_options {
    char bind[GRPC_BIND_LEN];   /* numeric IPv4/IPv6 address or host name */
    uint32_t port;              /* 0: the kernel picks one, see grpc_server_port() */
    uint32_t workers;           /* 0: one per online core; at most GRPC_MAX_WORKERS */
    uint64_t max_message_bytes; /* larger request messages: RESOURCE_EXHAUSTED */
    /*
     * The output budget. A connection whose responses not yet written reach
     * max_pending_bytes_per_connection, or a worker whose connections' together reach
     * max_pending_bytes_per_worker, runs no further handler for it until the output drains
     * below the budget; a connection whose output makes no progress for write_timeout_us is
     * closed. A budget is checked before each handler, so it can be passed by one response;
     * a connection with nothing pending always gets its next call, whatever the worker's.
     */
    uint64_t max_pending_bytes_per_connection;
    uint64_t max_pending_bytes_per_worker;
    int64_t write_timeout_us;
    /*
     * Connection lifetimes (0: none). preface_timeout_us: the client's HTTP/2 preface must
     * come within it. idle_timeout_us: a connection with no call for this long is sent
     * GOAWAY and closed. max_connection_age_us: a connection this old (+-10 %, so they do
     * not all go at once) is drained like a shutdown, and closed after
     * max_connection_age_grace_us if calls are still running.
     */
    int64_t preface_timeout_us;
    int64_t idle_timeout_us;
    int64_t max_connection_age_us;
    int64_t max_connection_age_grace_us;
    /* gRPC connections open at once, every worker together; 0: the open-file limit less
     * GRPC_FD_RESERVE. At the limit the workers stop accepting (connections wait in the
     * listen backlog) until one closes. */
    uint32_t max_connections;
    /*
     * HTTP/2 abuse. max_concurrent_streams: SETTINGS_MAX_CONCURRENT_STREAMS; a stream past it
     * is refused alone (RST_STREAM REFUSED_STREAM), not the whole connection.
     * max_header_list_bytes: SETTINGS_MAX_HEADER_LIST_SIZE; a request whose decoded headers
     * pass it is reset. max_header_bytes_per_second: decoded header bytes one connection may
     * send per second (an HPACK bomb decodes to far more than it sends);
     * max_protocol_faults_per_second: refused streams, reset header lists, empty DATA frames
     * and stream errors one connection may cause per second; max_resets_per_second:
     * RST_STREAMs it may send per second. The fault and reset budgets let 10 s worth pass in
     * a burst, the header budget one second's. Past a budget the connection is sent
     * GOAWAY(ENHANCE_YOUR_CALM) and closed.
     */
    uint32_t max_concurrent_streams;
    uint64_t max_header_list_bytes;
    uint64_t max_header_bytes_per_second;
    uint32_t max_protocol_faults_per_second;
    uint32_t max_resets_per_second;
    uint32_t shutdown_timeout_ms; /* grace for calls in flight before connections are cut */
};

/* The config file's options of the transport (section server), declared in server.c. */
extern const struct option_group grpc_option_group;

/* Fills `options` with the defaults: the group's, and the constants above. */
void grpc_server_options_init(struct grpc_server_options *options);

/* ---- metrics ----------------------------------------------------------------------------- */

/* gRPC status codes (grpc/doc/statuscodes.md). */
enum grpc_code {
    GRPC_OK = 0,
    GRPC_CANCELLED = 1,
    GRPC_UNKNOWN = 2,
    GRPC_INVALID_ARGUMENT = 3,
    GRPC_DEADLINE_EXCEEDED = 4,
    GRPC_NOT_FOUND = 5,
    GRPC_ALREADY_EXISTS = 6,
    GRPC_PERMISSION_DENIED = 7,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_FAILED_PRECONDITION = 9,
    GRPC_ABORTED = 10,
    GRPC_OUT_OF_RANGE = 11,
    GRPC_UNIMPLEMENTED = 12,
    GRPC_INTERNAL = 13,
    GRPC_UNAVAILABLE = 14,
    GRPC_DATA_LOSS = 15,
    GRPC_UNAUTHENTICATED = 16,
};
#define GRPC_CODE_COUNT 17

/* "OK", "CANCELLED", ... ; "INVALID_CODE" for a value outside the enum. */
const char *grpc_code_name(enum grpc_code code);

/*
 * The transport's metrics, declared once in grpc_metric_defs (stats.c) and written by the
 * collector grpc_server_setup() registers. Counters are kept per worker (relaxed stores by
 * the one writer) and summed on read.
 */
enum grpc_metric {
    GRPC_M_REQUESTS,                 /* fsd_requests_total{method,code} */
    GRPC_M_CONNECTIONS_OPENED,       /* fsd_grpc_connections_opened_total */
    GRPC_M_CONNECTIONS_OPEN,         /* fsd_grpc_connections_open */
    GRPC_M_PROTOCOL_ERRORS,          /* fsd_grpc_protocol_errors_total */
    GRPC_M_DEADLINE_BEFORE_DISPATCH, /* fsd_grpc_deadline_exceeded_before_dispatch_total */
    GRPC_M_CLOSED_BY_SERVER,         /* fsd_grpc_connections_closed_total{reason} */
    GRPC_M_OUTPUT_WAITS,             /* fsd_grpc_output_budget_waits_total{budget} */
    GRPC_M_PENDING_OUTPUT,           /* fsd_grpc_pending_output_bytes */
    GRPC_M_ACCEPT_PAUSES,            /* fsd_grpc_accept_pauses_total{reason} */
    GRPC_M_MAX_CONNECTIONS,          /* fsd_grpc_max_connections */
    GRPC_M_STREAMS_REFUSED,          /* fsd_grpc_streams_refused_total{reason} */
    GRPC_M_COUNT,
};
extern const struct metric_def grpc_metric_defs[GRPC_M_COUNT];

/* Why the server closed (or, for max_age, began to close) a connection on its own. */
enum grpc_close_reason {
    GRPC_CLOSE_WRITE_TIMEOUT,   /* output waiting and none of it written for write_timeout */
    GRPC_CLOSE_PREFACE_TIMEOUT, /* no HTTP/2 preface within preface_timeout */
    GRPC_CLOSE_IDLE_TIMEOUT,    /* no call for idle_timeout: GOAWAY, then closed */
    GRPC_CLOSE_MAX_AGE,         /* max_connection_age reached: GOAWAY, calls finish */
    GRPC_CLOSE_MAX_AGE_GRACE,   /* ... and still open max_connection_age_grace later */
    GRPC_CLOSE_PROTOCOL_FAULTS, /* past max_protocol_faults_per_second: GOAWAY, closed */
    GRPC_CLOSE_HEADER_FLOOD,    /* past max_header_bytes_per_second: GOAWAY, closed */
    GRPC_CLOSE_REASON_COUNT,
};

/* Why a stream was refused on its own, its connection kept. */
enum grpc_stream_refusal {
    GRPC_REFUSE_MAX_STREAMS, /* past max_concurrent_streams: RST_STREAM(REFUSED_STREAM) */
    GRPC_REFUSE_HEADER_LIST, /* headers past max_header_list_bytes: reset */
    GRPC_REFUSE_REASON_COUNT,
};

/* Why the workers stopped accepting for a moment. */
enum grpc_accept_pause {
    GRPC_PAUSE_MAX_CONNECTIONS, /* max_connections open */
    GRPC_PAUSE_FD_LIMIT,        /* accept(2) failed: no descriptor or memory left */
    GRPC_PAUSE_REASON_COUNT,
};

/* "write_timeout", "preface_timeout", ...: the label fsd_grpc_connections_closed_total uses. */
const char *grpc_close_reason_name(enum grpc_close_reason reason);

struct grpc_server_stats {
    uint64_t connections_opened;
    uint64_t connections_open;
    uint64_t protocol_errors;
    uint64_t closed_by_server[GRPC_CLOSE_REASON_COUNT];
    uint64_t accept_pauses[GRPC_PAUSE_REASON_COUNT];
    uint64_t streams_refused[GRPC_REFUSE_REASON_COUNT];
    uint64_t max_connections;         /* the limit in force (derived when the option is 0) */
    uint64_t output_waits_connection; /* a connection's calls waited: its output budget */
    uint64_t output_waits_worker;     /* ... the worker's output budget */
    uint64_t pending_output_bytes;    /* responses not yet written, every worker */
};

/*
 * Per method: index i is methods[i] as given to setup; index nmethods counts calls to paths
 * no method serves (and requests rejected before their path was known).
 */
struct grpc_method_stats {
    uint64_t calls[GRPC_CODE_COUNT]; /* finished, by status code */
    uint64_t deadline_exceeded_before_dispatch;
};

/* ---- methods ----------------------------------------------------------------------------- */

/* One RPC in progress. Opaque; valid from its first handler callback until it is finished. */
struct grpc_call;

/*
 * Unary: called on the worker once the single request message is complete and the deadline
 * has not passed. The handler must finish the call (reply or fail) before returning; one that
 * does not is answered INTERNAL. `msg` is transport memory valid only during the call.
 */
typedef void (*grpc_unary_fn)(struct grpc_call *call, const uint8_t *msg, size_t len);

/*
 * Client streaming: on_message for each request message in order, as it completes (`msg` valid
 * only during the callback); on_end once the client half-closes, which must finish the call.
 * Any callback may finish the call early (e.g. fail on a bad message); no callback follows.
 * on_abort (optional) is called instead of the rest when the call ends without the handler
 * finishing it: reset by the client, connection lost, deadline passed, a message rejected by
 * the transport. It must not reply. Per-call state hangs off grpc_call_set_user() and is
 * released where the handler finishes the call or in on_abort.
 */
typedef void (*grpc_message_fn)(struct grpc_call *call, const uint8_t *msg, size_t len);
typedef void (*grpc_call_fn)(struct grpc_call *call);

/*
 * Decides whether a call may go on, from its `authorization` header: `value` is the header's
 * value, or NULL (len 0) when the request carries none. Runs on the worker as soon as the
 * header is decoded (or when the headers end without one), before any request message is
 * buffered, so a refused client costs no more than its headers. Returns GRPC_OK, or the code
 * the call is failed with once its headers end, having written why into `message` (room for
 * `message_len` bytes, NUL-terminated; sent as grpc-message). What it established about the
 * client can be kept for the handler with grpc_call_set_auth().
 */
typedef enum grpc_code (*grpc_authorize_fn)(struct grpc_call *call, const uint8_t *value,
                                            size_t len, char *message, size_t message_len);

/*
 * A method is gRPC's ("/package.Service/Method", over HTTP/2) or HTTP/1.1's ("POST /push":
 * the request method, a space, the path; served to connections that open with an HTTP/1.1
 * request line instead of the HTTP/2 preface, on the same port). An HTTP/1.1 method is
 * unary: the request body is `msg`; the handler answers with grpc_call_http_reply (or
 * grpc_call_fail: the status the code maps to and {"detail": message}). The authorizer gets
 * the Authorization header's value, as it gets gRPC's authorization.
 */
struct grpc_method {
    const char *path;            /* "/package.Service/Method" or "POST /path"; copied by setup */
    grpc_authorize_fn authorize; /* NULL: open to every client */
    grpc_unary_fn unary;         /* set for unary methods, NULL for client streaming */
    grpc_message_fn on_message;
    grpc_call_fn on_end;
    grpc_call_fn on_abort;
};

/* Runs on each worker thread at start; what it returns is grpc_call_worker_context(). */
typedef void *(*grpc_worker_init_fn)(unsigned index);
/* Runs on each worker thread before it exits, with what worker_init returned. */
typedef void (*grpc_worker_deinit_fn)(void *ctx);

/* ---- setup / teardown -------------------------------------------------------------------- */

/*
 * Binds one SO_REUSEPORT listener per worker (worker 0 first, so port 0 resolves to one port
 * the others then share), starts the worker threads and returns once every socket listens.
 * Each worker calls store_rcu_thread_online() and then worker_init (may be NULL) on its own
 * thread; worker_deinit and store_rcu_thread_offline() run there on exit. `methods` is copied.
 * Returns 0, or -1 with `err` set ("bind 127.0.0.1:6566: Address already in use"); nothing is
 * left running on failure. Not thread-safe; call from the main thread.
 */
int grpc_server_setup(const struct grpc_server_options *options, const struct grpc_method *methods,
                      size_t nmethods, grpc_worker_init_fn worker_init,
                      grpc_worker_deinit_fn worker_deinit, char *err, size_t err_len);

/*
 * Graceful stop, from the main thread (signals are main's business): every worker closes its
 * listener, sends GOAWAY (a shutdown notice, then after one round trip the final GOAWAY naming
 * the last stream it will serve), lets calls in flight finish and flush, closes connections
 * and exits. After shutdown_timeout_ms, connections still open are closed hard. Returns when
 * every worker thread has exited. Blocks; a second call does nothing.
 */
void grpc_server_shutdown(void);

/* Shuts down if still running, then frees everything. Stats read 0 afterwards. */
void grpc_server_teardown(void);

/* ---- API --------------------------------------------------------------------------------- */

/* The bound port (the kernel's choice when options.port was 0); 0 when not set up. */
uint16_t grpc_server_port(void);

/* Sums every worker's counters. Any thread, any time between setup and teardown. */
void grpc_server_stats(struct grpc_server_stats *out);
/* Sums one method's counters (see struct grpc_method_stats); -1 if the index is too large. */
int grpc_server_method_stats(size_t method_index, struct grpc_method_stats *out);

/*
 * The method's name as metrics label it: the last part of its path ("GetFeatures" for
 * "/fsd.v1.FeatureService/GetFeatures"), "unknown" for the index past the last method (paths
 * no method serves). Valid until teardown.
 */
const char *grpc_server_method_name(size_t method_index);

/* The calls' accessors below are for handlers, on the call's worker thread. */

void *grpc_call_worker_context(const struct grpc_call *call);
unsigned grpc_call_worker_index(const struct grpc_call *call);
/* Index into the methods given to setup. */
size_t grpc_call_method_index(const struct grpc_call *call);
/*
 * The clocks as the call's worker read them at the start of the current read batch (or batch
 * of resumes): every call of the batch sees the same "now" and none pays for a clock call.
 * Use it for what a few microseconds do not change (a TTL's "now"); read clock_mono_us()
 * for what measures waiting.
 */
const struct clock_cache *grpc_call_clock(const struct grpc_call *call);

/* When the call's HEADERS were read (clock_mono_us clock; the read batch's time). */
int64_t grpc_call_start_us(const struct grpc_call *call);
/* When the request arrived whole (END_STREAM; the read batch's time, clock_mono_us clock):
 * where a latency budget starts, so a slow upload does not spend it. */
int64_t grpc_call_ready_us(const struct grpc_call *call);
/* start + grpc-timeout, or INT64_MAX when the client sent none. */
int64_t grpc_call_deadline_us(const struct grpc_call *call);

/* "address:port" of the call's client, for logs. */
const char *grpc_call_peer(const struct grpc_call *call);
/* The subject of the client certificate the TLS handshake verified (mutual TLS), RFC 2253
 * ("CN=ranker,O=acme"); "" on a cleartext port or without one. */
const char *grpc_call_tls_subject(const struct grpc_call *call);

/* What the method's authorizer established about the client (opaque to the transport); 0
 * until set. */
uint64_t grpc_call_auth(const struct grpc_call *call);
void grpc_call_set_auth(struct grpc_call *call, uint64_t auth);

/* The handler's per-call pointer (streaming state); NULL until set. */
void *grpc_call_user(const struct grpc_call *call);
void grpc_call_set_user(struct grpc_call *call, void *user);

/*
 * Finishes the call with `len` bytes of `msg` (copied) as the response message and status OK.
 * Does nothing if the call is already finished. Never blocks: bytes go out when the socket
 * and the client's flow-control window allow.
 */
void grpc_call_reply(struct grpc_call *call, const void *msg, size_t len);

/*
 * Adds a trailing metadata entry to the OK reply the handler is about to send (with
 * grpc_call_reply), after grpc-status: what a client that does not know it ignores. `name`
 * (lowercase ASCII, not grpc-*) must outlive the call, e.g. a literal; `value` (printable
 * ASCII, at most GRPC_CALL_TRAILER_VALUE_MAX - 1 bytes) is copied. At most
 * GRPC_CALL_MAX_TRAILERS per call; returns -1 (nothing added) past that or when too long.
 */
#define GRPC_CALL_MAX_TRAILERS      4
#define GRPC_CALL_TRAILER_VALUE_MAX 96
int grpc_call_add_trailer(struct grpc_call *call, const char *name, const char *value);

/* Whether the call came over HTTP/1.1 (its method's path is "METHOD /path"). */
bool grpc_call_is_http1(const struct grpc_call *call);

/* The HTTP status grpc_call_fail answers an HTTP/1.1 call with for `code`: 422 for
 * INVALID_ARGUMENT, 401, 403, 404, 409 (ALREADY_EXISTS, ABORTED, FAILED_PRECONDITION), 429
 * (RESOURCE_EXHAUSTED), 501, 503, 504; 500 for the rest. */
unsigned grpc_http_status_of(enum grpc_code code);

/*
 * Finishes an HTTP/1.1 call with `status` and `body` (copied) of `content_type`; `code` is
 * what the call counts as in the metrics (GRPC_OK for a 2xx). Trailers added with
 * grpc_call_add_trailer go out as response headers. On an HTTP/2 call it fails INTERNAL.
 */
void grpc_call_http_reply(struct grpc_call *call, enum grpc_code code, unsigned status,
                          const char *content_type, const void *body, size_t len);

/*
 * Zero-copy form of grpc_call_reply: returns `len` bytes of call-owned memory to encode the
 * response into, then grpc_call_reply_send() sends it. NULL when out of memory or finished.
 */
void *grpc_call_reply_reserve(struct grpc_call *call, size_t len);
void grpc_call_reply_send(struct grpc_call *call);

/*
 * Finishes the call with `code` and `message` (UTF-8, may be NULL; percent-encoded into
 * grpc-message, cut at 1 KiB). Does nothing if the call is already finished. Never blocks.
 */
void grpc_call_fail(struct grpc_call *call, enum grpc_code code, const char *message);

/* printf-style grpc_call_fail. */
__attribute__((format(printf, 3, 4))) void
grpc_call_failf(struct grpc_call *call, enum grpc_code code, const char *fmt, ...);

/* ---- finishing a call on another thread ----------------------------------------------------- */

/*
 * A handler whose work must not run on the worker (it would stall every connection there)
 * suspends the call, hands the work to a control thread, and is resumed on the worker when
 * that thread is done, to finish the call there:
 *
 *   worker:   on_end ── r = grpc_call_suspend(call, resume, arg) ──> hand (r, arg) over; return
 *   control:  ... the work ... ── grpc_resume_post(r) ──> eventfd
 *   worker:   resume(call, arg) ── grpc_call_reply / grpc_call_fail
 *
 * Resume functions run in post order, on the call's worker, between read batches. If the call
 * ended meanwhile (the client reset it, the connection was lost or the server shut down hard)
 * resume runs with call NULL, to free `arg`; it may then run on the posting thread, when the
 * worker has already stopped. A resume may suspend the call again (more work to hand over) instead
 * of finishing it. A suspended call is not aborted (on_abort is not called for it)
 * and has no deadline enforced by the transport: the work, once handed over, is the handler's.
 */
struct grpc_resume;
typedef void (*grpc_resume_fn)(struct grpc_call *call, void *arg);

/*
 * Suspends `call` (unfinished; from one of its handler callbacks, on its worker). The handler
 * returns without finishing it; exactly one grpc_resume_post() must follow. Returns the
 * handle, or NULL when out of memory (the call is not suspended: finish it now).
 */
struct grpc_resume *grpc_call_suspend(struct grpc_call *call, grpc_resume_fn resume, void *arg);

/* Queues the resume of a suspended call on its worker. Any thread, once per handle; consumes
 * the handle. Never blocks beyond a short mutex. */
void grpc_resume_post(struct grpc_resume *r);
