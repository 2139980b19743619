#pragma once
/*
 * What the files of daemon/grpc/ share: the server, its workers, their connections and calls.
 * Internal: other modules use grpc.h.
 *
 *   grpc_server ── workers[0..n) ── conns (list) ── calls (list, one per open stream)
 *                      │                 └── ready (calls whose request is complete, FIFO)
 *                      └── call freelist, read buffer, counters
 *
 * Everything below a worker is touched only by that worker's thread. Across threads there are
 * only: the counters (single-writer relaxed atomics), the stop request (an atomic plus an
 * eventfd the worker's loop watches), and setup/join on the main thread.
 */
#include "grpc.h"
#include "wire.h"

#include "common/clock.h"

/* The few log lines the transport writes: setup, stop, protocol errors at debug, surprises. */
#include "common/log.h"

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

struct event;
struct event_base;
struct evbuffer;

/* Bytes read per read(2); also the most a single nghttp2_session_mem_recv call gets. */
#define GRPC_READ_BUF_BYTES (64 * 1024)
/* Reads per readiness event before the loop serves other connections. */
#define GRPC_READS_PER_EVENT 16
/* Above this much unsent output, stop asking nghttp2 for frames until the socket drains. */
#define GRPC_OUT_HIGH_WATER (1024 * 1024)
/*
 * How often a worker looks over its connections for the timeouts (write stall, ...). Each
 * timeout fires between its value and its value plus one tick: the options' minimum is a
 * second, so a quarter second is close enough and costs one walk of the list.
 */
#define GRPC_TICK_MS 250
/* Calls kept for reuse per worker; request/response buffers above this capacity are freed. */
#define GRPC_CALL_FREELIST_MAX 4096
#define GRPC_CALL_BUF_KEEP     (64 * 1024)
/* Accepts per readiness event, so a connection storm cannot starve served connections. */
#define GRPC_ACCEPTS_PER_EVENT 32
/*
 * A connection closed after a GOAWAY for an error lingers: its write side is shut and what
 * the client still sends is read and dropped for up to GRPC_LINGER_MS, so the kernel does not
 * answer that unread input with a RST that destroys the GOAWAY before the client reads it.
 * At most GRPC_LINGER_MAX per worker; past that they close at once.
 */
#define GRPC_LINGER_MS  1000
#define GRPC_LINGER_MAX 64
/* On EMFILE/ENFILE, stop accepting for this long instead of spinning on the listener. */
#define GRPC_ACCEPT_PAUSE_MS 100
/*
 * Drain: the final GOAWAY goes out on the PING ack, or after this if no ack comes (an idle
 * grpcio channel does not read its socket, so it never acks). Long enough for any request
 * already in flight on a same-datacenter link to arrive and be served.
 */
#define GRPC_DRAIN_GOAWAY_DELAY_MS 250
/* Per-connection stream receive window floor, and the connection window. */
#define GRPC_MIN_STREAM_WINDOW     65535
#define GRPC_MIN_CONNECTION_WINDOW (16 * 1024 * 1024)
/*
 * Request bytes one connection may have in reassembly (declared lengths of messages begun and
 * not yet handled). nghttp2 replenishes flow-control windows as bytes arrive, so without this
 * a client could park max_concurrent_streams x max_message_bytes (4 GB by default) on us.
 * The budget is the larger of this and 4 x max_message_bytes.
 */
#define GRPC_MIN_CONN_BUFFERED_BYTES (64ull * 1024 * 1024)

/* A token bucket: `tokens` as of `updated_us`. */
struct grpc_bucket {
    int64_t tokens;
    int64_t updated_us;
};

/* A growable byte buffer whose capacity is kept across reuse. */
struct grpc_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
};

enum grpc_stop {
    GRPC_RUNNING = 0,
    GRPC_STOP_DRAIN = 1, /* graceful: GOAWAY, finish calls in flight */
    GRPC_STOP_HARD = 2,  /* the shutdown timeout passed: close everything now */
};

/* Why calls of a connection waited before their handler: its output budget or the worker's. */
enum grpc_budget {
    GRPC_BUDGET_CONNECTION,
    GRPC_BUDGET_WORKER,
    GRPC_BUDGET_COUNT,
};

struct grpc_worker_stats {
    _Atomic uint64_t connections_opened;
    _Atomic uint64_t connections_closed;
    _Atomic uint64_t protocol_errors;
    _Atomic uint64_t closed_by_server[GRPC_CLOSE_REASON_COUNT];
    _Atomic uint64_t accept_pauses[GRPC_PAUSE_REASON_COUNT];
    _Atomic uint64_t streams_refused[GRPC_REFUSE_REASON_COUNT];
    _Atomic uint64_t output_waits[GRPC_BUDGET_COUNT]; /* a connection parked over a budget */
    _Atomic uint64_t pending_bytes;                   /* the worker's output budget in use */
    _Atomic uint64_t *calls;                          /* [(nmethods + 1) * GRPC_CODE_COUNT] */
    _Atomic uint64_t *deadline_exceeded;              /* [nmethods + 1] */
};

struct grpc_conn;
struct grpc_call;
struct grpc_linger;
TAILQ_HEAD(grpc_conn_list, grpc_conn);
TAILQ_HEAD(grpc_linger_list, grpc_linger);
TAILQ_HEAD(grpc_call_list, grpc_call);

struct grpc_worker {
    struct grpc_server *server;
    unsigned index;
    pthread_t thread;
    bool thread_started;

    struct event_base *base;
    int listen_fd;
    struct event *accept_ev;
    struct event *accept_pause_ev;  /* timer re-enabling accept after a pause */
    int64_t accept_pause_logged_us; /* the last pause's log line (one a second at most) */
    struct log_limit close_log;     /* "connection closed" lines: ten a second at most */
    struct log_limit tls_log;       /* "tls handshake failed" lines, likewise */
    int wake_fd;                    /* eventfd: the main thread's stop request */
    struct event *wake_ev;
    struct event *drain_ev; /* timer: final GOAWAY for connections that never acked */
    _Atomic int stop;       /* enum grpc_stop, written by the main thread */
    int stop_seen;          /* the worker's own copy, acted upon */

    void *ctx; /* worker_init's result */
    nghttp2_session_callbacks *callbacks;
    nghttp2_option *h2_option;

    /* Resumes posted by other threads (grpc_resume_post), run in order by _on_resume. */
    pthread_mutex_t resume_lock;
    struct grpc_resume *resume_head, *resume_tail;
    bool resume_closed; /* the loop has stopped: posts run their function at once */
    bool resume_lock_ready;
    int resume_fd; /* eventfd the posting thread writes */
    struct event *resume_ev;

    struct grpc_conn_list conns;
    size_t nconns;
    /*
     * Output not yet on the wire, summed over the connections (struct grpc_conn's
     * `pending`), and the connections whose calls wait because it or their own is over its
     * budget, oldest first. waking: _wake_parked() is running (it is not re-entered).
     */
    uint64_t pending;
    struct grpc_conn_list parked;
    size_t nparked;
    bool waking;
    struct event *tick_ev;             /* every GRPC_TICK_MS: the connections' timeouts */
    struct grpc_linger_list lingering; /* closed sockets draining, oldest first */
    size_t nlingering;
    struct grpc_call *free_calls;
    size_t nfree_calls;
    uint8_t *read_buf;
    struct clock_cache clock; /* read once per read batch (and per resume batch) */
    uint64_t random_state;    /* grpc_worker_random() */

    struct grpc_worker_stats stats;
};

struct grpc_method_entry {
    struct grpc_method method; /* path points to the copy below */
    size_t path_len;
};

struct grpc_server {
    struct grpc_server_options options;
    struct grpc_method_entry *methods;
    size_t nmethods;
    grpc_worker_init_fn worker_init;
    grpc_worker_deinit_fn worker_deinit;
    uint16_t port;
    uint32_t stream_window;
    uint32_t connection_window;
    uint64_t conn_buffered_max;   /* see GRPC_MIN_CONN_BUFFERED_BYTES */
    uint32_t max_connections;     /* in force: the option, or derived from the fd limit */
    _Atomic uint32_t connections; /* open (or being accepted), every worker */
    struct grpc_worker *workers;
    unsigned nworkers;
    bool shut_down;
};

/*
 * What a connection speaks, decided by its first bytes: the HTTP/2 client preface, or an
 * HTTP/1.1 request line (Feast's JSON API, http1.c).
 */
enum grpc_proto {
    GRPC_PROTO_UNDECIDED = 0, /* fewer bytes than tell them apart */
    GRPC_PROTO_H2,
    GRPC_PROTO_HTTP1,
};

/* The HTTP/2 client preface (RFC 9113 3.4), whose first bytes tell HTTP/2 from HTTP/1.1. */
#define GRPC_H2_PREFACE     "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define GRPC_H2_PREFACE_LEN 24

struct grpc_http1;

struct grpc_conn {
    TAILQ_ENTRY(grpc_conn) link;
    TAILQ_ENTRY(grpc_conn) parked_link; /* worker->parked while `parked` */
    struct grpc_worker *worker;
    int fd;
    /*
     * proto: what it speaks. sniff: the first bytes while they could still be either (a
     * prefix of the preface). session: HTTP/2's, made at accept and deleted when the client
     * speaks HTTP/1.1; its SETTINGS go out once the preface came. h1: HTTP/1.1's state.
     */
    enum grpc_proto proto;
    uint8_t sniff[GRPC_H2_PREFACE_LEN];
    size_t nsniff;
    nghttp2_session *session;
    struct grpc_http1 *h1;
    struct event *read_ev;
    struct event *write_ev;
    struct evbuffer *out;
    struct grpc_call_list calls; /* every call with an open stream */
    struct grpc_call_list ready; /* requests complete, waiting for their handler */
    uint64_t buffered;           /* request bytes in reassembly, summed over calls */
    /*
     * The output budget: response bytes handed to the transport and not yet written to the
     * socket, whether they wait in a call (for the client's flow-control window) or in `out`
     * (for the socket). out_counted: the part of `pending` that is `out`'s length.
     */
    uint64_t pending;
    size_t out_counted;
    bool parked; /* over a budget: ready calls wait until the output drains */
    /* Write-stall watch (the tick): bytes_written as last seen, and since when unchanged
     * while output was pending. */
    uint64_t bytes_written;
    uint64_t stall_mark;
    int64_t stall_since_us;
    /* The other timeouts: when it was accepted; whether the client's preface came; calls
     * begun (idle_mark: as the tick last saw it, idle_since: since when unchanged with no
     * call open); when max_connection_age starts its drain, and when the drain began. */
    int64_t created_us;
    bool got_preface;
    uint64_t calls_begun;
    uint64_t idle_mark;
    int64_t idle_since_us;
    int64_t age_limit_us; /* INT64_MAX: no max_connection_age */
    int64_t drain_started_us;
    size_t ncalls; /* open streams: `calls`' length, what max_concurrent_streams bounds */
    /* HTTP/2 abuse budgets (token buckets, refilled by the read batch's clock). */
    struct grpc_bucket faults;
    struct grpc_bucket header_bytes;
    enum grpc_close_reason abuse; /* set by the callback that found a budget spent */
    bool abused;
    bool advertise_streams; /* the first SETTINGS still to be given max_concurrent_streams */
    bool linger;            /* closed after a GOAWAY for an error: see GRPC_LINGER_MS */
    bool reset_on_close;    /* closed with a reset: the client reads nothing (write_timeout) */
    char peer[64];          /* "address:port" of the client, for logs */
    bool dead;              /* close at the end of the current event */
    bool write_blocked;     /* write_ev is armed */
    bool protocol_error;    /* counted once per connection */
    bool notice_sent;       /* drain: shutdown notice and PING sent */
    bool goaway_sent;       /* drain: final GOAWAY submitted */
    /* TLS (daemon/tls): the session, NULL on a cleartext port; whether its handshake ended;
     * whether a read waits for the socket to take the handshake's (or an alert's) bytes. */
    SSL *ssl;
    bool tls_ready;
    bool tls_read_wants_write;
    char tls_subject[256]; /* the verified client certificate's subject; "" without one */
};

enum grpc_call_reject {
    GRPC_REJECT_NONE = 0,
    GRPC_REJECT_METHOD_NOT_POST,
    GRPC_REJECT_CONTENT_TYPE,
    GRPC_REJECT_UNKNOWN_PATH,
    GRPC_REJECT_BAD_TIMEOUT,
    GRPC_REJECT_UNAUTHORIZED, /* the method's authorizer said no: auth_code, auth_message */
};

#define GRPC_AUTH_MESSAGE_MAX 192

struct grpc_call {
    TAILQ_ENTRY(grpc_call) link;       /* conn->calls */
    TAILQ_ENTRY(grpc_call) ready_link; /* conn->ready while queued */
    struct grpc_call *free_next;
    struct grpc_conn *conn;
    const struct grpc_method_entry *method; /* NULL until :path matched */
    size_t method_index;                    /* nmethods when unmatched */
    int32_t stream_id;
    int64_t start_us;
    int64_t ready_us;   /* the request complete (END_STREAM) */
    int64_t timeout_us; /* -1: none */
    int64_t deadline_us;

    enum grpc_call_reject reject;
    bool authorized; /* the method's authorizer has run (it runs once) */
    enum grpc_code auth_code;
    uint64_t auth; /* grpc_call_set_auth() */
    char auth_message[GRPC_AUTH_MESSAGE_MAX];
    bool saw_method;
    bool saw_content_type;
    bool queued;
    bool finished;                 /* reply or fail submitted: no more handler callbacks */
    struct grpc_resume *suspended; /* grpc_call_suspend()ed and not resumed yet */
    bool handler_called;           /* streaming: a callback ran, so on_abort is owed */
    bool reply_pending;            /* out's unsent bytes are in conn->pending */

    struct grpc_frame_reader reader;
    uint32_t nmessages;
    uint32_t buffered;     /* this call's share of conn->buffered */
    uint64_t header_bytes; /* the request's decoded header list so far (RFC 9113 sizes) */
    struct grpc_buf in;    /* the request message being reassembled; :path while rejected */
    struct grpc_buf out;   /* prefix + response message */
    size_t out_sent;
    void *user;
    /* grpc_call_add_trailer(): sent after grpc-status on an OK reply */
    const char *trailer_names[GRPC_CALL_MAX_TRAILERS];
    char trailer_values[GRPC_CALL_MAX_TRAILERS][GRPC_CALL_TRAILER_VALUE_MAX];
    uint8_t ntrailers;
};

/* ---- server.c ---------------------------------------------------------------------------- */

extern struct grpc_server *grpc_server_current;

/* The transport's metrics collector (stats.c), registered while the server is set up. */
void grpc_collect_metrics(struct metric_writer *w, void *ctx);

/*
 * The server grpc_server_setup() builds, with no listener and no thread: each worker's base
 * and events are made (grpc_worker_init), and the caller runs a worker's loop on its own
 * thread and hands it connections (grpc_conn_create, after taking a slot in `connections` as
 * an accept does). For tests that drive the transport step by step (fuzz_h2_conn); not
 * grpc_server_current, no worker_init/deinit, no metrics. Returns NULL with `err` set.
 * grpc_server_destroy_unbound() closes what the workers still have and frees it all.
 */
struct grpc_server *grpc_server_create_unbound(const struct grpc_server_options *options,
                                               const struct grpc_method *methods, size_t nmethods,
                                               char *err, size_t err_len);
void grpc_server_destroy_unbound(struct grpc_server *s);

/* ---- worker.c ---------------------------------------------------------------------------- */

/* Creates the worker's base and events (main thread, before its thread starts). */
int grpc_worker_init(struct grpc_worker *w, char *err, size_t err_len);
/* Frees what grpc_worker_init made and is still there (main thread, after the join). */
void grpc_worker_deinit(struct grpc_worker *w);
void *grpc_worker_main(void *arg);
/* The worker's loop has stopped: closes its listener, its connections (calls aborted) and the
 * sockets lingering, and runs the resumes still queued with call NULL (later posts at once). */
void grpc_worker_finish(struct grpc_worker *w);
/* A call from the freelist, or a new one; NULL when out of memory. */
struct grpc_call *grpc_worker_call_get(struct grpc_worker *w);
void grpc_worker_call_put(struct grpc_worker *w, struct grpc_call *call);
/* The connection has been destroyed; the worker may now be done draining. */
void grpc_worker_conn_gone(struct grpc_worker *w);
/* Takes over `fd` of a closed connection: write side shut, input dropped until EOF or
 * GRPC_LINGER_MS, then closed (at once when GRPC_LINGER_MAX are lingering already). */
void grpc_worker_linger(struct grpc_worker *w, int fd);
/*
 * Closes `fd` with a reset (SO_LINGER 0): what the kernel still holds for the client is
 * dropped at once. For a client that stopped reading: a plain close() would leave the socket
 * in FIN-WAIT-1 behind its unsent bytes (megabytes per connection), probing a zero window
 * for minutes after fsd let go of it, and the client would never see the close.
 */
void grpc_socket_abort(int fd);
/* A pseudo-random number (xorshift; spreads timeouts, nothing secret). */
uint64_t grpc_worker_random(struct grpc_worker *w);

static inline void grpc_stat_add(_Atomic uint64_t *counter, uint64_t n) {
    /* One writer per counter: a relaxed load and store, no locked read-modify-write. */
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* A suspended call's way back to its worker (grpc_call_suspend). */
struct grpc_resume {
    struct grpc_resume *next; /* in the worker's queue */
    struct grpc_worker *worker;
    struct grpc_call *call; /* worker thread only; NULL once the call ended */
    grpc_resume_fn fn;
    void *arg;
};

/* Runs every posted resume (the worker's loop, or its exit with the calls gone). */
void grpc_worker_run_resumes(struct grpc_worker *w);
/* The worker's loop has stopped: resumes still queued run with call NULL, and later posts
 * run their function at once. */
void grpc_worker_close_resumes(struct grpc_worker *w);

/* ---- conn.c ------------------------------------------------------------------------------ */

/* The nghttp2 callbacks every session of a worker shares; NULL when out of memory. */
nghttp2_session_callbacks *grpc_conn_callbacks_new(void);

/* Takes ownership of `fd` (non-blocking, accepted; `peer` its address, for logs). Returns -1
 * when out of memory. */
int grpc_conn_create(struct grpc_worker *w, int fd, const char *peer);
/* Drain: shutdown notice + PING now; the final GOAWAY follows on the ack or the drain timer. */
void grpc_conn_drain(struct grpc_conn *conn);
void grpc_conn_drain_final(struct grpc_conn *conn);
/* Sends what nghttp2 has queued and closes the connection if it is finished. */
void grpc_conn_kick(struct grpc_conn *conn);
/* Closes now, aborting calls in flight; gives its max_connections slot back. */
void grpc_conn_destroy(struct grpc_conn *conn);
void grpc_conn_protocol_error(struct grpc_conn *conn);
/* Queues a call whose request is complete; conn runs the queue after the read batch. */
void grpc_conn_enqueue(struct grpc_conn *conn, struct grpc_call *call);
/* Runs the ready calls in order while the output budgets allow; parks the connection when
 * they do not. */
void grpc_conn_run_ready(struct grpc_conn *conn);
/* Logs and counts a close for `reason` and destroys the connection. */
void grpc_conn_close_for(struct grpc_conn *conn, enum grpc_close_reason reason, const char *why);
/* Output entered (delta > 0) or left (< 0) the connection's budget (and its worker's). */
void grpc_conn_pending_add(struct grpc_conn *conn, int64_t delta);
/* Output left the worker's budget: connections parked over it may go on (not re-entered). */
void grpc_conn_wake_parked(struct grpc_worker *w);
/*
 * The tick's look at one connection: closes it when its output has made no progress for
 * write_timeout, the client sent no preface within preface_timeout or it was idle for
 * idle_timeout; drains it (GOAWAY) at max_connection_age and closes it at the grace's end.
 * May close the connection: nothing of it may be used after.
 */
void grpc_conn_check_timeouts(struct grpc_conn *conn, int64_t now_us);

/* ---- call.c ------------------------------------------------------------------------------ */

/* A stream opened: binds a fresh call to it. */
void grpc_call_begin(struct grpc_call *call, struct grpc_conn *conn, int32_t stream_id);
void grpc_call_on_header(struct grpc_call *call, const uint8_t *name, size_t name_len,
                         const uint8_t *value, size_t value_len);
/* The request HEADERS are complete; end_stream when they also ended the request. */
void grpc_call_on_headers_end(struct grpc_call *call, bool end_stream);
void grpc_call_on_data(struct grpc_call *call, const uint8_t *data, size_t len);
/* The client half-closed the stream (END_STREAM on DATA or trailers). */
void grpc_call_on_request_end(struct grpc_call *call);
/*
 * An HTTP/1.1 request's line and headers are in: `target` ("POST /push", no query) picks the
 * method (404 when no method has the path, 405 when another method does), the authorizer
 * judges `auth` (the Authorization value, NULL without one; more than one is refused). The
 * call is finished on a refusal.
 */
void grpc_call_http1_request(struct grpc_call *call, const char *target, size_t len, unsigned nauth,
                             const uint8_t *auth, size_t auth_len);
/* The call's turn: deadline check, then the handler (unary) or on_end (streaming). */
void grpc_call_dispatch(struct grpc_call *call);
/* The stream closed (or the connection went): aborts if unfinished, returns it to the pool. */
void grpc_call_release(struct grpc_call *call);
/* nghttp2 data source for the response message. */
ssize_t grpc_call_read_response(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                                size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                                void *user_data);
/* Frees a call's buffers (the freelist and teardown). */
void grpc_call_free(struct grpc_call *call);
/* Drops big buffers and resets state so a reused call starts clean. */
void grpc_call_recycle(struct grpc_call *call);

/* ---- http1.c ----------------------------------------------------------------------------- */

/*
 * HTTP/1.1 on the gRPC port: a connection whose first bytes are a request line is served by
 * the same worker, one request at a time in arrival order (pipelined requests wait, unparsed,
 * until the one before is answered), each request a call of the method whose path is
 * "METHOD /target" (struct grpc_method).
 */

/* The connection speaks HTTP/1.1 from now on: its HTTP/2 session is dropped. -1: no memory. */
int grpc_http1_start(struct grpc_conn *conn);
/* Bytes the client sent. Parses as far as the request in progress allows; the rest is held. */
void grpc_http1_input(struct grpc_conn *conn, const uint8_t *data, size_t len);
/* After calls ran or resumed: lets the answered request go, parses what was held behind it,
 * runs the next, and sets conn->dead once a connection that must close has sent everything. */
void grpc_http1_advance(struct grpc_conn *conn);
/* Whether reading the socket waits: a request is being served (its successors wait in the
 * kernel's buffer, which bounds what a pipelining client can park on us). */
bool grpc_http1_reading_paused(const struct grpc_conn *conn);
/* Closing, with the request in progress answered and every byte out. */
bool grpc_http1_finished(const struct grpc_conn *conn);
/* The client closed its side: nothing more is read. Returns true when a whole request is
 * still to be answered (the connection closes after it), false when it may close now. */
bool grpc_http1_eof(struct grpc_conn *conn);
/* Drain (shutdown, max_connection_age): close once the request in progress is answered. */
void grpc_http1_drain(struct grpc_conn *conn);
/* The tick: closes a connection whose request headers took longer than preface_timeout, or
 * one idle for idle_timeout. Returns true when it closed it. */
bool grpc_http1_check_timeouts(struct grpc_conn *conn, int64_t now_us);
void grpc_http1_free(struct grpc_conn *conn);

/* Fails an HTTP/1.1 call with `status` and {"detail": message} (FastAPI's error shape). */
void grpc_http1_fail(struct grpc_call *call, enum grpc_code code, unsigned status,
                     const char *message, size_t len);
/* Writes the call's response (status line, headers, body) to the connection's output. */
void grpc_http1_respond(struct grpc_call *call, unsigned status, const char *content_type,
                        const void *body, size_t len);
