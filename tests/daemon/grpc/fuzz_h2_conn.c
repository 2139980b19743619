/*
 * Fuzz target for a whole gRPC connection: the bytes a client sends go through the real
 * transport (nghttp2, the header checks, message reassembly, the budgets, the calls and their
 * responses) on one worker whose loop this thread runs. The server is made by
 * grpc_server_create_unbound() (no listener, no thread); each input gets a socketpair whose one
 * end the worker takes as an accepted connection, while the input is written to the other end
 * in chunks, the loop turned after each so the worker reads them one by one, what it sends
 * drained and dropped, and the loop run until the worker goes idle. Then the client goes away
 * and the loop runs until the connection is closed.
 *
 * Methods (messages are raw bytes):
 *   /t/echo   unary: replies with the request
 *   /t/fail   unary: fails with code = first byte % 17, message = the rest (any bytes)
 *   /t/sum    client streaming: counts messages and bytes (per-call state), replies the count
 *   /t/later  as /t/sum, but the end suspends the call and resumes it through the worker's
 *             queue (grpc_resume_post) before replying
 *   POST /h/echo   HTTP/1.1 (a connection whose first bytes are not the preface): replies
 *                  200 with the body
 *   POST /h/later  HTTP/1.1: suspends the call, resumes it through the queue, replies 202
 *
 * Checked after each input: the connection is gone within a bounded number of loop turns
 * once the client has closed (no hang), the worker's counts are back to zero (connections,
 * the connection slot, pending output, parked connections, lingering sockets), every
 * streaming call's state was released (by the handler, on_abort, or a resume with no call),
 * and, under ASan, nothing leaks.
 *
 * Input layout:
 *
 *   byte 0    bits 0-3: chunk size, 1 << n bytes (1 .. 32 KiB), at least a 256th of the input
 *             bit 4: the client preface is written first (the rest of the input are frames)
 *             bit 5: the client half-closes (shutdown SHUT_WR) and reads to the end before
 *                    it closes; else it closes as soon as the worker is idle
 *             bit 6: a stalled client: 4 KiB socket buffers, nothing read until the end
 *   then      the bytes the client sends
 *
 * Corpus: h2_corpus/ (seeded by make_h2_corpus.py: requests to every method, split and
 * interleaved, plus malformed ones). Built with libFuzzer when the compiler is Clang
 * (fuzz_h2_conn); always built as fuzz_h2_conn_replay, whose main() runs the target over the
 * files it is given, so CTest replays the corpus under every build, sanitizers too.
 *
 *   mkdir -p /tmp/corpus && build/tests/fuzz_h2_conn /tmp/corpus tests/daemon/grpc/h2_corpus \
 *       -max_total_time=300    (new inputs go to the first folder)
 */
#include <errno.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "daemon/grpc/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FLAG_PREFACE    0x10
#define FLAG_HALF_CLOSE 0x20
#define FLAG_STALLED    0x40
#define STALLED_BUF     4096
#define IDLE_TURNS      2    /* turns with nothing sent back: the worker is idle */
#define MAX_TURNS       4096 /* per settle; more is a connection that never settles */
#define MAX_CHUNKS      256  /* per input: a long input comes in bigger chunks */

static const char PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static void _die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void _die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz_h2_conn: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* ---- the methods ------------------------------------------------------------------------- */

static long live_states; /* streaming calls' state not yet released */

struct sum {
    uint64_t messages;
    uint64_t bytes;
};

static void _echo(struct grpc_call *call, const uint8_t *msg, size_t len) {
    grpc_call_reply(call, msg, len);
}

static void _fail(struct grpc_call *call, const uint8_t *msg, size_t len) {
    char text[GRPC_MESSAGE_MAX + 1];
    size_t n = len > 1 ? len - 1 : 0;
    n = n < sizeof text - 1 ? n : sizeof text - 1;
    memcpy(text, msg + (len > 0), n);
    text[n] = '\0';
    grpc_call_fail(call, len > 0 ? (enum grpc_code)(msg[0] % GRPC_CODE_COUNT) : GRPC_UNKNOWN, text);
}

static void _sum_message(struct grpc_call *call, const uint8_t *msg, size_t len) {
    (void)msg;
    struct sum *s = grpc_call_user(call);
    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        if (s == NULL) {
            grpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
        live_states++;
        grpc_call_set_user(call, s);
    }
    s->messages++;
    s->bytes += len;
}

static void _sum_release(struct grpc_call *call) {
    struct sum *s = grpc_call_user(call);
    if (s != NULL) {
        free(s);
        live_states--;
        grpc_call_set_user(call, NULL);
    }
}

static void _sum_reply(struct grpc_call *call, const struct sum *s) {
    char text[64];
    int n = snprintf(text, sizeof text, "messages=%llu bytes=%llu",
                     s ? (unsigned long long)s->messages : 0ull,
                     s ? (unsigned long long)s->bytes : 0ull);
    grpc_call_reply(call, text, (size_t)n);
}

static void _sum_end(struct grpc_call *call) {
    _sum_reply(call, grpc_call_user(call));
    _sum_release(call);
}

/* /t/later: the state moves from the call to the resume. */
static void _later_resume(struct grpc_call *call, void *arg) {
    struct sum *s = arg;
    if (call != NULL) {
        _sum_reply(call, s);
    }
    if (s != NULL) {
        free(s);
        live_states--;
    }
}

static void _later_end(struct grpc_call *call) {
    struct sum *s = grpc_call_user(call);
    struct grpc_resume *r = grpc_call_suspend(call, _later_resume, s);
    if (r == NULL) {
        _sum_end(call);
        return;
    }
    grpc_call_set_user(call, NULL);
    grpc_resume_post(r); /* any thread may post; the worker runs it after this callback */
}

static void _http_echo(struct grpc_call *call, const uint8_t *msg, size_t len) {
    grpc_call_http_reply(call, GRPC_OK, 200, "application/json", msg, len);
}

static void _http_later_resume(struct grpc_call *call, void *arg) {
    (void)arg;
    if (call != NULL) {
        grpc_call_http_reply(call, GRPC_OK, 202, "application/json", "{}", 2);
    }
}

static void _http_later(struct grpc_call *call, const uint8_t *msg, size_t len) {
    (void)msg, (void)len;
    struct grpc_resume *r = grpc_call_suspend(call, _http_later_resume, NULL);
    if (r == NULL) {
        grpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    grpc_resume_post(r);
}

static const struct grpc_method METHODS[] = {
    {.path = "/t/echo", .unary = _echo},
    {.path = "/t/fail", .unary = _fail},
    {.path = "/t/sum", .on_message = _sum_message, .on_end = _sum_end, .on_abort = _sum_release},
    {.path = "/t/later",
     .on_message = _sum_message,
     .on_end = _later_end,
     .on_abort = _sum_release},
    {.path = "POST /h/echo", .unary = _http_echo},
    {.path = "POST /h/later", .unary = _http_later},
};

/* ---- the worker and the client ----------------------------------------------------------- */

static struct {
    struct grpc_server *server;
    struct grpc_worker *worker;
    uint8_t drain_buf[64 * 1024];
    uint64_t sent_back; /* bytes the server sent, every input (the replay reports them) */
} g;

static void _setup(void) {
    log_set_level(LOG_ERROR); /* every closed connection is a log line */
    struct grpc_server_options o;
    grpc_server_options_init(&o);
    o.workers = 1;
    /* Limits low enough that short inputs reach them; all within the options' bounds. */
    o.max_message_bytes = GRPC_MAX_MESSAGE_BYTES_MIN;
    o.max_pending_bytes_per_connection = 64 * 1024;
    o.max_pending_bytes_per_worker = 64 * 1024;
    o.max_concurrent_streams = 4;
    o.max_header_list_bytes = 1024;
    o.max_header_bytes_per_second = 64 * 1024;
    o.max_protocol_faults_per_second = 2;
    o.max_resets_per_second = 2;
    char err[256];
    g.server = grpc_server_create_unbound(&o, METHODS, sizeof METHODS / sizeof METHODS[0], err,
                                          sizeof err);
    if (g.server == NULL) {
        _die("%s", err);
    }
    g.worker = &g.server->workers[0];
}

/* Reads and drops what the server sent; returns how much. */
static size_t _drain(int fd) {
    size_t total = 0;
    for (;;) {
        ssize_t n = recv(fd, g.drain_buf, sizeof g.drain_buf, MSG_DONTWAIT);
        if (n > 0) {
            total += (size_t)n;
            g.sent_back += (uint64_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        return total;
    }
}

/* One turn of the worker's loop: whatever is ready runs, nothing waits. */
static void _turn(void) {
    event_base_loop(g.worker->base, EVLOOP_NONBLOCK);
}

/* Runs the loop until it sends nothing for IDLE_TURNS turns (reading what it sends unless
 * the client is stalled). */
static void _settle(int fd, bool stalled) {
    int quiet = 0;
    for (int i = 0; i < MAX_TURNS && quiet < IDLE_TURNS; i++) {
        _turn();
        quiet = !stalled && _drain(fd) > 0 ? 0 : quiet + 1;
    }
}

/* Writes `len` bytes, turning the loop while the socket is full. Returns false once the
 * server has closed its end (or not read for MAX_TURNS turns). */
static bool _send(int fd, const uint8_t *p, size_t len) {
    for (int turns = 0; len > 0;) {
        ssize_t n = send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && turns++ < MAX_TURNS) {
            _turn(); /* the worker reads what fills the socket, parked or not */
            continue;
        }
        return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (g.server == NULL) {
        _setup();
    }
    if (size == 0) {
        return 0;
    }
    uint8_t flags = data[0];
    size_t piece = (size_t)1 << (flags & 0x0f);
    piece = piece < size / MAX_CHUNKS ? size / MAX_CHUNKS : piece;
    bool stalled = flags & FLAG_STALLED;
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
        _die("socketpair: %s", strerror(errno));
    }
    if (stalled) {
        int buf = STALLED_BUF;
        for (int i = 0; i < 2; i++) {
            setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
            setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
        }
    }
    struct grpc_worker *w = g.worker;
    clock_cache_update(&w->clock); /* the connection's "accepted at", as an accept reads it */
    atomic_fetch_add_explicit(&g.server->connections, 1, memory_order_relaxed);
    if (grpc_conn_create(w, fds[0], "fuzz:0") != 0) {
        _die("grpc_conn_create failed");
    }
    int client = fds[1];
    bool open =
        !(flags & FLAG_PREFACE) || _send(client, (const uint8_t *)PREFACE, sizeof PREFACE - 1);
    for (size_t at = 1; open && at < size; at += piece) {
        size_t n = size - at < piece ? size - at : piece;
        open = _send(client, data + at, n);
        _turn(); /* the worker reads this chunk before the next is written */
        if (!stalled) {
            _drain(client);
        }
    }
    _settle(client, stalled);
    if (flags & FLAG_HALF_CLOSE) {
        shutdown(client, SHUT_WR);
        _settle(client, false);
    }
    close(client);
    for (int i = 0; i < MAX_TURNS && (w->nconns > 0 || w->nlingering > 0); i++) {
        _turn();
    }
    if (w->nconns != 0 || w->nlingering != 0) {
        _die("%zu connections and %zu lingering sockets left %d turns after the client closed",
             w->nconns, w->nlingering, MAX_TURNS);
    }
    uint32_t slots = atomic_load_explicit(&g.server->connections, memory_order_relaxed);
    if (slots != 0 || w->pending != 0 || w->nparked != 0 || live_states != 0) {
        _die("after the connection closed: %u slots taken, %llu bytes pending, %zu parked, "
             "%ld streaming states not released",
             slots, (unsigned long long)w->pending, w->nparked, live_states);
    }
    return 0;
}

#ifdef FSD_FUZZ_REPLAY
int main(int argc, char **argv) {
    static uint8_t buf[1 << 20];
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (f == NULL) {
            perror(argv[i]);
            return 1;
        }
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
    }
    printf("replayed %d files, %llu bytes sent back\n", argc - 1, (unsigned long long)g.sent_back);
    for (size_t m = 0; g.server != NULL && m <= g.server->nmethods; m++) {
        printf("  %-8s", m < g.server->nmethods ? METHODS[m].path : "unknown");
        for (int c = 0; c < GRPC_CODE_COUNT; c++) {
            uint64_t n = g.worker->stats.calls[m * GRPC_CODE_COUNT + (size_t)c];
            if (n > 0) {
                printf(" %s=%llu", grpc_code_name((enum grpc_code)c), (unsigned long long)n);
            }
        }
        printf("\n");
    }
    if (g.server != NULL) {
        const struct grpc_worker_stats *st = &g.worker->stats;
        printf("  protocol errors %llu, streams refused %llu + %llu, closed for faults %llu, "
               "for header floods %llu, output waits %llu\n",
               (unsigned long long)st->protocol_errors,
               (unsigned long long)st->streams_refused[GRPC_REFUSE_MAX_STREAMS],
               (unsigned long long)st->streams_refused[GRPC_REFUSE_HEADER_LIST],
               (unsigned long long)st->closed_by_server[GRPC_CLOSE_PROTOCOL_FAULTS],
               (unsigned long long)st->closed_by_server[GRPC_CLOSE_HEADER_FLOOD],
               (unsigned long long)(st->output_waits[GRPC_BUDGET_CONNECTION] +
                                    st->output_waits[GRPC_BUDGET_WORKER]));
    }
    grpc_server_destroy_unbound(g.server);
    return 0;
}
#endif
