#pragma once
/*
 * A small gRPC client: unary calls over HTTP/2 cleartext ("h2c" with prior knowledge) on one
 * TCP connection, driven by nghttp2's client session and poll(2). fsctl and grpc_load use it;
 * it knows nothing of fsd's messages (callers bring protobuf bytes) and nothing of the server.
 *
 * Two ways to call:
 *   - blocking:  client_call() sends one request and drives the connection until its status
 *     arrives or its deadline passes;
 *   - pipelined: client_submit() queues a call and returns at once; client_poll() does the
 *     I/O and runs each call's completion callback with its status, response and latency.
 *     Any number of calls may be in flight on one connection (nghttp2 holds back those over
 *     the server's SETTINGS_MAX_CONCURRENT_STREAMS until a stream frees up).
 *
 * On the wire, per call:
 *   HEADERS  :method POST  :scheme http  :path /pkg.Service/Method  :authority host:port
 *            content-type application/grpc  te trailers  [grpc-timeout 250000u]
 *   DATA     [0][len: 4 bytes big-endian][protobuf message]           END_STREAM
 * and back: HEADERS :status 200, DATA (one framed message), trailers grpc-status and
 * grpc-message (percent-decoded here), or a trailers-only HEADERS frame for errors.
 *
 * A connection belongs to one thread at a time; nothing here locks. Nothing calls exit().
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- defaults ---------------------------------------------------------------------------- */

#define CLIENT_DEFAULT_CONNECT_TIMEOUT_MS 5000
/* Receive windows, per stream and per connection: large, so a 1 MB response never waits for
 * a WINDOW_UPDATE round trip and many such responses can be in flight at once. */
#define CLIENT_DEFAULT_STREAM_WINDOW_BYTES     (16u << 20)
#define CLIENT_DEFAULT_CONNECTION_WINDOW_BYTES (256u << 20)
/* Responses larger than this fail with RESOURCE_EXHAUSTED instead of eating memory. */
#define CLIENT_DEFAULT_MAX_RESPONSE_BYTES (64u << 20)

/* ---- options ----------------------------------------------------------------------------- */

#define CLIENT_AUTHORIZATION_MAX 1100 /* "Bearer " and the longest token fsd accepts */
#define CLIENT_PATH_MAX          1024
#define CLIENT_TOKEN_FILE_ENV    "FSD_TOKEN_FILE"

struct client_options {
    uint32_t connect_timeout_ms;
    uint32_t stream_window_bytes;     /* SETTINGS_INITIAL_WINDOW_SIZE; < 2^31 */
    uint32_t connection_window_bytes; /* < 2^31 */
    uint64_t max_response_bytes;
    char authorization[CLIENT_AUTHORIZATION_MAX]; /* sent with every call; "": none */
    /* TLS: set tls_ca_file (PEM of the CAs that sign the server's certificate, which must
     * name the host connected to) and the connection is TLS with ALPN h2; a client
     * certificate and its key too for mutual TLS. "": cleartext. */
    char tls_ca_file[CLIENT_PATH_MAX];
    char tls_cert_file[CLIENT_PATH_MAX];
    char tls_key_file[CLIENT_PATH_MAX];
};

/* Fills `options` with the defaults above. */
void client_options_init(struct client_options *options);

/*
 * The token every call should carry, from the file `path` names (its first line; surrounding
 * blanks are not part of it), or when `path` is NULL or "" from the file the environment's
 * FSD_TOKEN_FILE names; neither set: no token, 0. A token never comes from the command line,
 * where every user of the machine can read it (ps). Returns 0, or -1 with `err` set.
 */
int client_options_token_file(struct client_options *options, const char *path, char *err,
                              size_t err_len);

/*
 * TLS from a tool's --tls-ca, --tls-cert and --tls-key (each may be NULL): a CA turns TLS on; a
 * certificate needs its key and a CA. Returns 0 (also when all are NULL), or -1 with `err`
 * saying which is missing or too long.
 */
int client_options_tls(struct client_options *options, const char *ca_file, const char *cert_file,
                       const char *key_file, char *err, size_t err_len);

/* ---- metrics ----------------------------------------------------------------------------- */

struct client_stats {
    uint64_t calls_submitted;
    uint64_t calls_completed; /* callbacks run, whatever the status */
    uint64_t calls_ok;        /* status OK */
    uint64_t bytes_sent;      /* on the socket, HTTP/2 framing included */
    uint64_t bytes_received;
};

/* ---- status codes ------------------------------------------------------------------------ */

/* gRPC status codes (grpc/doc/statuscodes.md). Failures of the transport are mapped onto
 * them as gRPC libraries do: connection lost or stream refused is UNAVAILABLE, a malformed
 * response INTERNAL, a deadline that passed on this side DEADLINE_EXCEEDED. */
enum client_code {
    CLIENT_OK = 0,
    CLIENT_CANCELLED = 1,
    CLIENT_UNKNOWN = 2,
    CLIENT_INVALID_ARGUMENT = 3,
    CLIENT_DEADLINE_EXCEEDED = 4,
    CLIENT_NOT_FOUND = 5,
    CLIENT_ALREADY_EXISTS = 6,
    CLIENT_PERMISSION_DENIED = 7,
    CLIENT_RESOURCE_EXHAUSTED = 8,
    CLIENT_FAILED_PRECONDITION = 9,
    CLIENT_ABORTED = 10,
    CLIENT_OUT_OF_RANGE = 11,
    CLIENT_UNIMPLEMENTED = 12,
    CLIENT_INTERNAL = 13,
    CLIENT_UNAVAILABLE = 14,
    CLIENT_DATA_LOSS = 15,
    CLIENT_UNAUTHENTICATED = 16,
};

/* "OK", "INVALID_ARGUMENT", ...; "INVALID_CODE" for a value outside the enum. */
const char *client_code_name(int code);

/* ---- create / destroy -------------------------------------------------------------------- */

struct client_conn;

/*
 * Resolves `host` (numeric address or name), connects with a timeout, and queues the HTTP/2
 * preface and SETTINGS (sent by the first poll or call). Blocks for at most
 * options->connect_timeout_ms (options may be NULL: defaults). Returns the connection, or NULL
 * with `err` set, e.g. "cannot connect to 127.0.0.1:6566: Connection refused".
 */
struct client_conn *client_conn_create(const char *host, uint16_t port,
                                       const struct client_options *options, char *err,
                                       size_t err_len);

/* Closes the socket and frees the connection. Calls still in flight are dropped without
 * their callbacks. Must not be called from a completion callback. NULL is fine. */
void client_conn_destroy(struct client_conn *conn);

/* ---- API --------------------------------------------------------------------------------- */

/* What a completed call returns. Every pointer is valid only during the callback. */
struct client_result {
    int status;              /* grpc-status (enum client_code) */
    const char *message;     /* grpc-message, percent-decoded; "" when none */
    const uint8_t *response; /* the response message without its 5-byte frame; NULL if none */
    size_t response_len;
    int64_t start_us;   /* the request's start_us, else the time of client_submit */
    int64_t submit_us;  /* when client_submit queued it (later than start_us if behind) */
    int64_t latency_us; /* completion - start_us */
};

/* Runs once per submitted call, from client_poll()/client_call() on the caller's thread. It
 * may submit more calls on any connection, but must not destroy one. */
typedef void (*client_done_fn)(void *user, const struct client_result *result);

struct client_request {
    const char *path;   /* "/fsd.v1.FeatureService/GetFeatures"; copied */
    const void *msg;    /* the protobuf message; copied */
    size_t len;         /* < 4 GiB */
    int64_t timeout_us; /* 0: none; else sent as grpc-timeout and enforced here as well */
    /* When the call should have started (clock_mono_us clock), 0 for now. A load generator
     * on a schedule passes the intended send time, so latency includes any time the call
     * waited because the generator or the connection fell behind. */
    int64_t start_us;
};

/*
 * Queues one unary call; `done` (may be NULL) runs once when it completes. Never blocks: the
 * bytes go out on the next client_poll(). Returns 0, or -1 with client_conn_error() set when
 * the connection is broken or out of stream ids (then `done` is not called).
 */
int client_submit(struct client_conn *conn, const struct client_request *req, client_done_fn done,
                  void *user);

/*
 * Drives the I/O of `n` (at most 256) connections: writes what is queued, waits up to `timeout_us`
 * (0: do not wait; < 0: until something happens) for the sockets or the nearest call deadline,
 * reads what arrived and runs the completion callbacks. Returns the number of callbacks run.
 * A connection that fails (reset, closed by the server, protocol error) completes each of its
 * calls in flight with UNAVAILABLE or INTERNAL and stays broken: see client_conn_error().
 */
int client_poll_many(struct client_conn *const *conns, size_t n, int64_t timeout_us);

/* client_poll_many() of one connection. */
int client_poll(struct client_conn *conn, int64_t timeout_us);

/* Calls submitted on `conn` whose callbacks have not run yet. */
size_t client_inflight(const struct client_conn *conn);

/* Why the connection is broken, or NULL while it is usable. Owned by the connection. */
const char *client_conn_error(const struct client_conn *conn);

/* Adds the connection's counters to `out`. */
void client_conn_stats(const struct client_conn *conn, struct client_stats *out);

/* The result of a blocking call; client_response_deinit() frees what it holds. */
struct client_response {
    int status;
    char *message; /* percent-decoded grpc-message, never NULL after client_call */
    uint8_t *data; /* the response message; NULL when there is none */
    size_t len;
    int64_t latency_us;
};

/*
 * One blocking unary call: submits `req` and drives `conn` (running the callbacks of any
 * other calls in flight on it) until the call completes; req->timeout_us bounds the wait
 * when set. Fills `out` (caller memory; deinit it afterwards) and returns its status.
 */
int client_call(struct client_conn *conn, const struct client_request *req,
                struct client_response *out);

void client_response_deinit(struct client_response *response);

/*
 * Splits "HOST:PORT" or "[V6ADDR]:PORT" into host (copied into `host`, `host_len` bytes) and
 * port. Returns 0, or -1 with `err` set.
 */
int client_parse_addr(const char *addr, char *host, size_t host_len, uint16_t *port, char *err,
                      size_t err_len);

/*
 * Percent-decodes a grpc-message value (%XX sequences; others are kept as they are) into
 * `out` (`out_len` > 0 bytes, always terminated, cut if short). Returns the decoded length.
 */
size_t client_percent_decode(const char *in, size_t in_len, char *out, size_t out_len);

/* ---- client streaming --------------------------------------------------------------------- */

/*
 * One client-streaming call (PushSnapshot) on a connection of its own: the same connection,
 * HTTP/2 session, response decoding, deadlines and I/O loop as unary calls (streaming.c).
 *
 *   client_stream_open ──HEADERS──> client_stream_send (framed message queued) +
 *   client_stream_poll (DATA as the windows allow) ... ──> client_stream_finish (END_STREAM,
 *   then the response and status) or client_stream_cancel (RST_STREAM CANCEL)
 *
 * The body is a queue of framed messages that the data source hands to nghttp2 and defers on
 * when it runs dry, so a message goes out as soon as the connection is driven; the caller
 * bounds the queue (client_stream_queued) to bound its memory.
 */
struct client_stream;

/*
 * Connects to `addr` (HOST:PORT; `options` as for client_conn_create, NULL for the defaults)
 * and starts a call of `path` ("/pkg.Service/Method"); with `timeout_us` > 0 the call has that
 * deadline (grpc-timeout, and enforced here). Returns the
 * stream, or NULL with `err` set ("cannot connect to 127.0.0.1:1: Connection refused").
 * Blocks for the connect.
 */
struct client_stream *client_stream_open(const char *addr, const char *path, int64_t timeout_us,
                                         const struct client_options *options, char *err,
                                         size_t err_len);

/*
 * Queues one request message (copied, framed); it goes out as the connection is driven
 * (client_stream_poll, client_stream_finish). Returns 0, or -1 when the call has already ended (the
 * server answered early, the deadline passed, the connection broke; client_stream_finish() tells
 * the status) or when out of memory.
 */
int client_stream_send(struct client_stream *stream, const void *msg, size_t len);

/* True once the call has ended (answered, expired or cut); client_stream_finish() tells how. */
bool client_stream_ended(const struct client_stream *stream);

/* Request bytes queued that nghttp2 has not taken yet (flow control holds them back). */
size_t client_stream_queued(const struct client_stream *stream);

/*
 * Drives the connection: sends what the windows allow, reads what arrived, waiting up to
 * `timeout_us`. Returns false once the call has ended (then client_stream_finish() it).
 */
bool client_stream_poll(struct client_stream *stream, int64_t timeout_us);

/*
 * Half-closes the request (END_STREAM) unless the call already ended, waits for the status
 * and fills `out` (caller memory; client_response_deinit() it): the status, the server's
 * message, the response message. Frees the stream and its connection. Returns the status.
 */
int client_stream_finish(struct client_stream *stream, struct client_response *out);

/* Resets the call (the server discards what it received) and frees stream and connection. */
void client_stream_cancel(struct client_stream *stream);
