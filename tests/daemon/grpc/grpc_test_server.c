/*
 * A server on the gRPC transport with test methods, for test_grpc_transport.py. Binds port 0
 * unless told otherwise, prints "port=<n>" once listening, and on SIGTERM/SIGINT shuts down
 * gracefully, prints its counters and exits 0.
 *
 *   grpc_test_server [--workers N] [--port P] [--max-message-bytes B]
 *                    [--shutdown-timeout-ms T] [--max-concurrent-streams S]
 *                    [--max-pending-bytes B] [--max-pending-worker-bytes B]
 *                    [--write-timeout-ms T] [--preface-timeout-ms T] [--idle-timeout-ms T]
 *                    [--max-connection-age-ms T] [--max-connection-age-grace-ms T]
 *                    [--max-connections N] [--max-header-list-bytes B]
 *                    [--max-header-bytes-per-second B] [--max-faults-per-second N]
 *                    [--max-resets-per-second N]
 *
 * Methods (messages are raw bytes, no protobuf):
 *   /test.Echo/Echo        replies with the request
 *   /test.Echo/Big         replies with the ASCII decimal number of bytes ('x' each)
 *   /test.Echo/Fail        fails with code = first byte, message = the remaining bytes
 *   /test.Echo/Sleep       busy-waits the ASCII decimal number of milliseconds, replies "slept"
 *   /test.Echo/NoReply     returns without finishing the call (the transport must answer)
 *   /test.Echo/WorkerInfo  replies "worker=<index> calls=<calls this worker's context saw>"
 *   /test.Echo/Stats       replies with the transport's counters, one "name value" per line
 *   /test.Echo/Sum         client streaming: each message an ASCII integer; replies "sum=<s>
 *                          count=<n>"; a message "fail" fails INVALID_ARGUMENT at once
 *   /test.Echo/LaterSum    as Sum, but at the end the call is suspended (grpc_call_suspend)
 *                          and finished only when another thread resumes it: "Release" wakes
 *                          that thread, which posts every call waiting (grpc_resume_post); the
 *                          reply then also says on which worker it was resumed
 *   /test.Echo/Release     releases the suspended LaterSum calls; replies "released=<n>"
 * Stats also reports later_waiting (suspended, not released) and later_orphans (resumed after
 * the call had ended: the client reset it, or the server stopped first).
 */
#include "daemon/grpc/grpc.h"
#include "common/clock.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    M_ECHO,
    M_BIG,
    M_FAIL,
    M_SLEEP,
    M_NOREPLY,
    M_WORKER_INFO,
    M_STATS,
    M_SUM,
    M_LATER_SUM,
    M_RELEASE,
    M_COUNT,
};

static const char *const _method_names[M_COUNT] = {
    "Echo", "Big", "Fail", "Sleep", "NoReply", "WorkerInfo", "Stats", "Sum", "LaterSum", "Release",
};

/* Per-worker context: proves worker_init/deinit ran on the worker and reach handlers. */
struct worker_ctx {
    unsigned index;
    uint64_t calls;
};

static _Atomic uint64_t _workers_inited;
static _Atomic uint64_t _workers_deinited;
static _Atomic uint64_t _sum_aborts;
static _Atomic uint64_t _sum_live; /* Sum calls holding state: must be 0 at exit */
static _Atomic uint64_t _later_orphans;

/* LaterSum calls suspended and waiting for the releaser thread. */
struct later {
    struct later *next;
    struct grpc_resume *resume;
    unsigned worker; /* the call's, to check it is resumed there */
    int64_t sum;
    uint64_t count;
};
static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct later *waiting;
    uint64_t nwaiting;
    bool release; /* Release asked: post everything waiting */
    bool stop;
} _later = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, false, false};

static void *_worker_init(unsigned index) {
    struct worker_ctx *ctx = calloc(1, sizeof *ctx);
    if (ctx != NULL) {
        ctx->index = index;
    }
    atomic_fetch_add(&_workers_inited, 1);
    return ctx;
}

static void _worker_deinit(void *arg) {
    free(arg);
    atomic_fetch_add(&_workers_deinited, 1);
}

static void _count_call(struct grpc_call *call) {
    struct worker_ctx *ctx = grpc_call_worker_context(call);
    if (ctx != NULL) {
        ctx->calls++;
    }
}

static void _echo(struct grpc_call *call, const uint8_t *msg, size_t len) {
    _count_call(call);
    grpc_call_reply(call, msg, len);
}

/* The ASCII decimal number in `msg` (at most 31 digits read). */
static unsigned long long _number(const uint8_t *msg, size_t len) {
    char text[32];
    size_t n = len < sizeof text - 1 ? len : sizeof text - 1;
    memcpy(text, msg, n);
    text[n] = '\0';
    return strtoull(text, NULL, 10);
}

static void _big(struct grpc_call *call, const uint8_t *msg, size_t len) {
    _count_call(call);
    size_t n = (size_t)_number(msg, len);
    void *out = grpc_call_reply_reserve(call, n);
    if (out == NULL) {
        grpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "no memory for the reply");
        return;
    }
    memset(out, 'x', n);
    grpc_call_reply_send(call);
}

static void _fail(struct grpc_call *call, const uint8_t *msg, size_t len) {
    _count_call(call);
    if (len == 0) {
        grpc_call_fail(call, GRPC_INVALID_ARGUMENT, "Fail wants a code byte");
        return;
    }
    char text[2048];
    size_t n = len - 1 < sizeof text - 1 ? len - 1 : sizeof text - 1;
    memcpy(text, msg + 1, n);
    text[n] = '\0';
    grpc_call_fail(call, (enum grpc_code)msg[0], text);
}

static void _sleep(struct grpc_call *call, const uint8_t *msg, size_t len) {
    _count_call(call);
    long ms = (long)_number(msg, len);
    /* Busy-wait: the worker is really occupied, as a slow handler would keep it. */
    int64_t until = clock_mono_us() + (int64_t)ms * 1000;
    while (clock_mono_us() < until) {
    }
    grpc_call_reply(call, "slept", 5);
}

static void _noreply(struct grpc_call *call, const uint8_t *msg, size_t len) {
    (void)call;
    (void)msg;
    (void)len;
}

static void _worker_info(struct grpc_call *call, const uint8_t *msg, size_t len) {
    (void)msg;
    (void)len;
    _count_call(call);
    struct worker_ctx *ctx = grpc_call_worker_context(call);
    char text[64];
    int n = snprintf(text, sizeof text, "worker=%u calls=%" PRIu64, grpc_call_worker_index(call),
                     ctx ? ctx->calls : 0);
    if (ctx == NULL || ctx->index != grpc_call_worker_index(call)) {
        grpc_call_fail(call, GRPC_INTERNAL, "worker context does not match the worker");
        return;
    }
    grpc_call_reply(call, text, (size_t)n);
}

/* Writes the counters as "name value" lines; returns the length. */
static size_t _format_stats(char *buf, size_t len) {
    struct grpc_server_stats st;
    grpc_server_stats(&st);
    size_t o = 0;
    o += (size_t)snprintf(buf + o, len - o,
                          "connections_opened %" PRIu64 "\nconnections_open %" PRIu64
                          "\nprotocol_errors %" PRIu64 "\nsum_aborts %" PRIu64 "\nsum_live %" PRIu64
                          "\nlater_orphans %" PRIu64 "\noutput_waits_connection %" PRIu64
                          "\noutput_waits_worker %" PRIu64 "\npending_output_bytes %" PRIu64 "\n",
                          st.connections_opened, st.connections_open, st.protocol_errors,
                          atomic_load(&_sum_aborts), atomic_load(&_sum_live),
                          atomic_load(&_later_orphans), st.output_waits_connection,
                          st.output_waits_worker, st.pending_output_bytes);
    o +=
        (size_t)snprintf(buf + o, len - o,
                         "max_connections %" PRIu64 "\naccept_paused_max_connections %" PRIu64 "\n",
                         st.max_connections, st.accept_pauses[GRPC_PAUSE_MAX_CONNECTIONS]);
    o += (size_t)snprintf(
        buf + o, len - o, "refused_max_streams %" PRIu64 "\nrefused_header_list %" PRIu64 "\n",
        st.streams_refused[GRPC_REFUSE_MAX_STREAMS], st.streams_refused[GRPC_REFUSE_HEADER_LIST]);
    for (int r = 0; r < GRPC_CLOSE_REASON_COUNT && o < len; r++) {
        o += (size_t)snprintf(buf + o, len - o, "closed_%s %" PRIu64 "\n",
                              grpc_close_reason_name((enum grpc_close_reason)r),
                              st.closed_by_server[r]);
    }
    pthread_mutex_lock(&_later.lock);
    o += (size_t)snprintf(buf + o, len - o, "later_waiting %" PRIu64 "\n", _later.nwaiting);
    pthread_mutex_unlock(&_later.lock);
    for (size_t m = 0; m <= M_COUNT && o < len; m++) {
        struct grpc_method_stats ms;
        if (grpc_server_method_stats(m, &ms) != 0) {
            break;
        }
        const char *name = m < M_COUNT ? _method_names[m] : "unknown";
        o += (size_t)snprintf(buf + o, len - o, "%s.deadline_before_dispatch %" PRIu64 "\n", name,
                              ms.deadline_exceeded_before_dispatch);
        for (int code = 0; code < GRPC_CODE_COUNT && o < len; code++) {
            if (ms.calls[code] > 0) {
                o += (size_t)snprintf(buf + o, len - o, "%s.%s %" PRIu64 "\n", name,
                                      grpc_code_name((enum grpc_code)code), ms.calls[code]);
            }
        }
    }
    return o < len ? o : len - 1;
}

static void _stats(struct grpc_call *call, const uint8_t *msg, size_t len) {
    (void)msg;
    (void)len;
    char buf[8192];
    size_t n = _format_stats(buf, sizeof buf);
    grpc_call_reply(call, buf, n);
}

struct sum_state {
    int64_t sum;
    uint64_t count;
};

static void _sum_free(struct grpc_call *call) {
    struct sum_state *st = grpc_call_user(call);
    if (st != NULL) {
        free(st);
        grpc_call_set_user(call, NULL);
        atomic_fetch_sub(&_sum_live, 1);
    }
}

static void _sum_message(struct grpc_call *call, const uint8_t *msg, size_t len) {
    struct sum_state *st = grpc_call_user(call);
    if (st == NULL) {
        st = calloc(1, sizeof *st);
        if (st == NULL) {
            grpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
        atomic_fetch_add(&_sum_live, 1);
        grpc_call_set_user(call, st);
    }
    if (len == 4 && memcmp(msg, "fail", 4) == 0) {
        grpc_call_failf(call, GRPC_INVALID_ARGUMENT, "told to fail after %" PRIu64 " messages",
                        st->count);
        _sum_free(call);
        return;
    }
    char text[32];
    size_t n = len < sizeof text - 1 ? len : sizeof text - 1;
    memcpy(text, msg, n);
    text[n] = '\0';
    st->sum += strtoll(text, NULL, 10);
    st->count++;
}

static void _sum_end(struct grpc_call *call) {
    _count_call(call);
    struct sum_state *st = grpc_call_user(call);
    char text[64];
    int n = snprintf(text, sizeof text, "sum=%" PRId64 " count=%" PRIu64, st ? st->sum : 0,
                     st ? st->count : 0);
    grpc_call_reply(call, text, (size_t)n);
    _sum_free(call);
}

static void _sum_abort(struct grpc_call *call) {
    atomic_fetch_add(&_sum_aborts, 1);
    _sum_free(call);
}

/* On the call's worker, after the releaser posted it; call NULL when it ended meanwhile. */
static void _later_resume(struct grpc_call *call, void *arg) {
    struct later *l = arg;
    if (call == NULL) {
        atomic_fetch_add(&_later_orphans, 1);
    } else {
        _count_call(call);
        char text[96];
        int n =
            snprintf(text, sizeof text, "sum=%" PRId64 " count=%" PRIu64 " same_worker=%s", l->sum,
                     l->count, grpc_call_worker_index(call) == l->worker ? "yes" : "no");
        grpc_call_reply(call, text, (size_t)n);
    }
    free(l);
    atomic_fetch_sub(&_sum_live, 1);
}

static void _later_end(struct grpc_call *call) {
    struct sum_state *st = grpc_call_user(call);
    struct later *l = calloc(1, sizeof *l);
    if (l == NULL) {
        grpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
        _sum_free(call);
        return;
    }
    l->sum = st ? st->sum : 0;
    l->count = st ? st->count : 0;
    l->worker = grpc_call_worker_index(call);
    _sum_free(call);
    atomic_fetch_add(&_sum_live, 1); /* the later state, until resumed */
    l->resume = grpc_call_suspend(call, _later_resume, l);
    if (l->resume == NULL) {
        free(l);
        atomic_fetch_sub(&_sum_live, 1);
        grpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "cannot suspend the call");
        return;
    }
    pthread_mutex_lock(&_later.lock);
    l->next = _later.waiting;
    _later.waiting = l;
    _later.nwaiting++;
    pthread_mutex_unlock(&_later.lock);
}

static void _release(struct grpc_call *call, const uint8_t *msg, size_t len) {
    (void)msg;
    (void)len;
    pthread_mutex_lock(&_later.lock);
    uint64_t n = _later.nwaiting;
    _later.release = true;
    pthread_cond_signal(&_later.wake);
    pthread_mutex_unlock(&_later.lock);
    char text[32];
    int m = snprintf(text, sizeof text, "released=%" PRIu64, n);
    grpc_call_reply(call, text, (size_t)m);
}

/* Posts every waiting LaterSum when asked to: the resumes cross from this thread. */
static void _post_waiting(void) {
    struct later *l = _later.waiting;
    _later.waiting = NULL;
    _later.nwaiting = 0;
    while (l != NULL) {
        struct later *next = l->next;
        grpc_resume_post(l->resume); /* may free l (a stopped worker runs it at once) */
        l = next;
    }
}

static void *_releaser(void *arg) {
    (void)arg;
    pthread_mutex_lock(&_later.lock);
    while (!_later.stop) {
        if (_later.release) {
            _later.release = false;
            _post_waiting();
            continue;
        }
        pthread_cond_wait(&_later.wake, &_later.lock);
    }
    _post_waiting(); /* after the server stopped: the resumes only free their state */
    pthread_mutex_unlock(&_later.lock);
    return NULL;
}

int main(int argc, char **argv) {
    struct grpc_server_options options;
    grpc_server_options_init(&options);
    options.port = 0;
    options.workers = 2;
    static const struct option longopts[] = {
        {"workers", required_argument, NULL, 'w'},
        {"port", required_argument, NULL, 'p'},
        {"max-message-bytes", required_argument, NULL, 'm'},
        {"shutdown-timeout-ms", required_argument, NULL, 't'},
        {"max-concurrent-streams", required_argument, NULL, 's'},
        {"max-pending-bytes", required_argument, NULL, 'b'},
        {"max-pending-worker-bytes", required_argument, NULL, 'B'},
        {"write-timeout-ms", required_argument, NULL, 'W'},
        {"preface-timeout-ms", required_argument, NULL, 'P'},
        {"idle-timeout-ms", required_argument, NULL, 'I'},
        {"max-connection-age-ms", required_argument, NULL, 'A'},
        {"max-connection-age-grace-ms", required_argument, NULL, 'G'},
        {"max-connections", required_argument, NULL, 'C'},
        {"max-header-list-bytes", required_argument, NULL, 'L'},
        {"max-header-bytes-per-second", required_argument, NULL, 'H'},
        {"max-faults-per-second", required_argument, NULL, 'F'},
        {"max-resets-per-second", required_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'w':
            options.workers = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'p':
            options.port = (uint16_t)strtoul(optarg, NULL, 10);
            break;
        case 'm':
            options.max_message_bytes = strtoull(optarg, NULL, 10);
            break;
        case 't':
            options.shutdown_timeout_ms = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 's':
            options.max_concurrent_streams = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'b':
            options.max_pending_bytes_per_connection = strtoull(optarg, NULL, 10);
            break;
        case 'B':
            options.max_pending_bytes_per_worker = strtoull(optarg, NULL, 10);
            break;
        case 'W':
            options.write_timeout_us = (int64_t)strtoll(optarg, NULL, 10) * 1000;
            break;
        case 'P':
            options.preface_timeout_us = (int64_t)strtoll(optarg, NULL, 10) * 1000;
            break;
        case 'I':
            options.idle_timeout_us = (int64_t)strtoll(optarg, NULL, 10) * 1000;
            break;
        case 'A':
            options.max_connection_age_us = (int64_t)strtoll(optarg, NULL, 10) * 1000;
            break;
        case 'G':
            options.max_connection_age_grace_us = (int64_t)strtoll(optarg, NULL, 10) * 1000;
            break;
        case 'C':
            options.max_connections = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'L':
            options.max_header_list_bytes = strtoull(optarg, NULL, 10);
            break;
        case 'H':
            options.max_header_bytes_per_second = strtoull(optarg, NULL, 10);
            break;
        case 'F':
            options.max_protocol_faults_per_second = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'R':
            options.max_resets_per_second = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        default:
            fprintf(stderr,
                    "usage: %s [--workers N] [--port P] [--max-message-bytes B] "
                    "[--shutdown-timeout-ms T] [--max-concurrent-streams S] "
                    "[--max-pending-bytes B] [--max-pending-worker-bytes B] "
                    "[--write-timeout-ms T] [--preface-timeout-ms T] [--idle-timeout-ms T] "
                    "[--max-connection-age-ms T] [--max-connection-age-grace-ms T] "
                    "[--max-connections N] [--max-header-list-bytes B] "
                    "[--max-header-bytes-per-second B] [--max-faults-per-second N] "
                    "[--max-resets-per-second N]\n",
                    argv[0]);
            return 2;
        }
    }

    static const struct grpc_method methods[M_COUNT] = {
        [M_ECHO] = {.path = "/test.Echo/Echo", .unary = _echo},
        [M_BIG] = {.path = "/test.Echo/Big", .unary = _big},
        [M_FAIL] = {.path = "/test.Echo/Fail", .unary = _fail},
        [M_SLEEP] = {.path = "/test.Echo/Sleep", .unary = _sleep},
        [M_NOREPLY] = {.path = "/test.Echo/NoReply", .unary = _noreply},
        [M_WORKER_INFO] = {.path = "/test.Echo/WorkerInfo", .unary = _worker_info},
        [M_STATS] = {.path = "/test.Echo/Stats", .unary = _stats},
        [M_SUM] = {.path = "/test.Echo/Sum",
                   .on_message = _sum_message,
                   .on_end = _sum_end,
                   .on_abort = _sum_abort},
        [M_LATER_SUM] = {.path = "/test.Echo/LaterSum",
                         .on_message = _sum_message,
                         .on_end = _later_end,
                         .on_abort = _sum_abort},
        [M_RELEASE] = {.path = "/test.Echo/Release", .unary = _release},
    };

    /* Blocked before the workers start so only this thread takes them, in sigwait. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    pthread_t releaser;
    if (pthread_create(&releaser, NULL, _releaser, NULL) != 0) {
        fprintf(stderr, "grpc_test_server: cannot start the releaser thread\n");
        return 1;
    }
    char err[256];
    if (grpc_server_setup(&options, methods, M_COUNT, _worker_init, _worker_deinit, err,
                          sizeof err) != 0) {
        fprintf(stderr, "grpc_test_server: %s\n", err);
        return 1;
    }
    printf("port=%u\n", grpc_server_port());
    fflush(stdout);

    int sig = 0;
    while (sigwait(&stop, &sig) != 0) {
    }
    grpc_server_shutdown();
    /* Calls still suspended were cut with their connections: their resumes, posted now that
     * the workers stopped, only free what they hold. */
    pthread_mutex_lock(&_later.lock);
    _later.stop = true;
    pthread_cond_signal(&_later.wake);
    pthread_mutex_unlock(&_later.lock);
    pthread_join(releaser, NULL);

    char buf[8192];
    size_t n = _format_stats(buf, sizeof buf);
    printf("stopped signal=%d workers_inited=%" PRIu64 " workers_deinited=%" PRIu64 "\n%.*s", sig,
           atomic_load(&_workers_inited), atomic_load(&_workers_deinited), (int)n, buf);
    fflush(stdout);
    int rc = atomic_load(&_sum_live) == 0 ? 0 : 3; /* a leaked Sum state is a transport bug */
    grpc_server_teardown();
    return rc;
}
