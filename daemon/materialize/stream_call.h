#pragma once
/*
 * One client-streaming gRPC call (PushSnapshot) on a connection of the project's client
 * library (daemon/client). The library makes unary calls only; this adds the one other call
 * shape fsd-materialize needs, on top of the library's own connection, HTTP/2 session and
 * callbacks, response decoding, deadlines and I/O loop (client_internal.h), so there is still
 * one gRPC client in the tree.
 *
 *   fm_stream_open ──HEADERS──> fm_stream_send (framed message queued) + fm_stream_poll
 *   (DATA as the windows allow) ... ──> fm_stream_finish (END_STREAM, then the response and
 *   status) or fm_stream_cancel (RST_STREAM CANCEL)
 *
 * The body is a queue of framed messages that the data source hands to nghttp2 and defers on
 * when it runs dry, so a message goes out as soon as the connection is driven; the caller
 * bounds the queue (fm_stream_queued) to bound its memory. A stream owns its connection (one
 * call per connection).
 *
 * TODO: move into daemon/client as client_stream_* once the client library takes client
 * streaming; until then this file depends on the library's internals (client_internal.h).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct client_response;
struct fm_stream;

/*
 * Connects to `addr` (HOST:PORT) and starts a call of `path` ("/pkg.Service/Method"); with
 * `timeout_us` > 0 the call has that deadline (grpc-timeout, and enforced here). Returns the
 * stream, or NULL with `err` set ("cannot connect to 127.0.0.1:1: Connection refused").
 * Blocks for the connect.
 */
struct fm_stream *fm_stream_open(const char *addr, const char *path, int64_t timeout_us, char *err,
                                 size_t err_len);

/*
 * Queues one request message (copied, framed); it goes out as the connection is driven
 * (fm_stream_poll, fm_stream_finish). Returns 0, or -1 when the call has already ended (the
 * server answered early, the deadline passed, the connection broke; fm_stream_finish() tells
 * the status) or when out of memory.
 */
int fm_stream_send(struct fm_stream *stream, const void *msg, size_t len);

/* True once the call has ended (answered, expired or cut); fm_stream_finish() tells how. */
bool fm_stream_ended(const struct fm_stream *stream);

/* Request bytes queued that nghttp2 has not taken yet (flow control holds them back). */
size_t fm_stream_queued(const struct fm_stream *stream);

/*
 * Drives the connection: sends what the windows allow, reads what arrived, waiting up to
 * `timeout_us`. Returns false once the call has ended (then fm_stream_finish() it).
 */
bool fm_stream_poll(struct fm_stream *stream, int64_t timeout_us);

/*
 * Half-closes the request (END_STREAM) unless the call already ended, waits for the status
 * and fills `out` (caller memory; client_response_deinit() it): the status, the server's
 * message, the response message. Frees the stream and its connection. Returns the status.
 */
int fm_stream_finish(struct fm_stream *stream, struct client_response *out);

/* Resets the call (the server discards what it received) and frees stream and connection. */
void fm_stream_cancel(struct fm_stream *stream);
