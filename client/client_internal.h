#pragma once
/*
 * What the client's files share: the connection and call structs, and the few functions one
 * file calls in another. Not part of the API (client.h is).
 *
 *   conn.c    socket, connect, the I/O loop (client_poll_many), blocking calls
 *   stream.c  calls: nghttp2 session and callbacks, submit, completion, deadlines
 */
#include "client.h"

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <stdbool.h>

#define CLIENT_READ_BYTES        (256 * 1024)
#define CLIENT_WRITE_BATCH_BYTES (64 * 1024) /* gathered from nghttp2 per send(2) */
#define CLIENT_POOL_MAX          4096        /* idle calls kept for reuse */
#define CLIENT_MESSAGE_MAX       2048        /* decoded grpc-message kept per call */
#define CLIENT_FRAME_HEADER      5           /* compressed flag + 4-byte big-endian length */
#define CLIENT_POLL_MAX          256         /* connections per client_poll_many() */

struct client_call {
    struct client_conn *conn;
    struct client_call *prev, *next; /* conn->live: every call not yet back in the pool */
    struct client_call *done_next;   /* conn->done_head: completed, callback not yet run */
    int32_t stream_id;
    bool completed;     /* the result is decided */
    bool callback_run;  /* ... and handed to the caller */
    bool stream_closed; /* nghttp2 no longer refers to this call */
    client_done_fn done;
    void *user;
    int64_t start_us;
    int64_t submit_us;
    int64_t deadline_us; /* INT64_MAX: none */
    int64_t end_us;
    /* request: the framed message */
    uint8_t *req;
    size_t req_len, req_off, req_cap;
    /* response */
    uint8_t *resp;
    size_t resp_len, resp_cap;
    int http_status; /* 0 until :status */
    int grpc_status; /* -1 until grpc-status */
    /* result */
    int status;
    const uint8_t *msg;
    size_t msg_len;
    char message[CLIENT_MESSAGE_MAX];
};

struct client_conn {
    int fd;   /* -1 once broken */
    SSL *ssl; /* TLS (options.tls_ca_file set); NULL: cleartext */
    nghttp2_session *session;
    struct client_options options;
    char authority[300];
    char error[512]; /* "" while usable */
    bool destroying;
    /* output nghttp2 produced that the socket has not taken yet */
    uint8_t *out;
    size_t out_len, out_off, out_cap;
    uint8_t *in;
    struct client_call *live;
    struct client_call *done_head, *done_tail;
    struct client_call *pool;
    size_t pool_len;
    size_t inflight;   /* submitted, callback not yet run */
    size_t ndeadlines; /* not completed and with a deadline */
    int64_t next_deadline_us;
    struct client_stats stats;
};

/* stream.c */

/* Creates conn->session with our callbacks, SETTINGS and connection window. -1: no memory. */
int client_session_create(struct client_conn *conn);
/* Decides the call's result and queues its callback; the first decision wins. */
void client_call_complete(struct client_call *call, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void client_call_free(struct client_call *call);
/* Completes the calls whose deadline passed and resets their streams. */
void client_expire_calls(struct client_conn *conn, int64_t now);
/* Runs the callbacks of completed calls; returns how many ran. */
int client_run_callbacks(struct client_conn *conn);
