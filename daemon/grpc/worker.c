/* A worker thread: its event loop, its listener, the stop request, and its pool of calls. */
#include "internal.h"

#include "store/rcu.h"
#include "common/clock.h"

#include <errno.h>
#include <event2/event.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static void _stop_listening(struct grpc_worker *w) {
    if (w->accept_ev != NULL) {
        event_del(w->accept_ev);
    }
    if (w->accept_pause_ev != NULL) {
        event_del(w->accept_pause_ev);
    }
    if (w->listen_fd >= 0) {
        close(w->listen_fd);
        w->listen_fd = -1;
    }
}

static void _close_all(struct grpc_worker *w) {
    struct grpc_conn *conn;
    while ((conn = TAILQ_FIRST(&w->conns)) != NULL) {
        grpc_conn_destroy(conn);
    }
}

static void _on_accept_resume(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    struct grpc_worker *w = arg;
    if (w->listen_fd >= 0) {
        event_add(w->accept_ev, NULL);
    }
}

/* "127.0.0.1:40312" or "[::1]:40312". */
static void _format_peer(const struct sockaddr_storage *ss, char *buf, size_t len) {
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
        snprintf(buf, len, "[%s]:%u", host, port);
        return;
    }
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
    }
    snprintf(buf, len, "%s:%u", host, port);
}

/* ---- lingering close --------------------------------------------------------------------- */

struct grpc_linger {
    TAILQ_ENTRY(grpc_linger) link;
    struct grpc_worker *worker;
    int fd;
    struct event *ev;
    int64_t until_us;
};

void grpc_socket_abort(int fd) {
    struct linger reset = {.l_onoff = 1, .l_linger = 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset); /* else a plain close */
    close(fd);
}

/* `timed_out`: the linger ran out rather than the client closing. */
static void _linger_end(struct grpc_linger *l, bool timed_out) {
    struct grpc_worker *w = l->worker;
    TAILQ_REMOVE(&w->lingering, l, link);
    w->nlingering--;
    event_free(l->ev);
    /* Bytes still unsent after the linger: the client is not reading them (its window is
     * shut), and will not. */
    int unsent = 0;
    if (timed_out && ioctl(l->fd, SIOCOUTQNSD, &unsent) == 0 && unsent > 0) {
        grpc_socket_abort(l->fd);
    } else {
        close(l->fd);
    }
    free(l);
}

static void _on_linger_readable(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    struct grpc_linger *l = arg;
    for (int i = 0; i < GRPC_READS_PER_EVENT; i++) {
        ssize_t n = read(fd, l->worker->read_buf, GRPC_READ_BUF_BYTES);
        if (n > 0) {
            continue; /* dropped */
        }
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        break; /* EOF: the client closed too; or an error */
    }
    _linger_end(l, false);
}

void grpc_worker_linger(struct grpc_worker *w, int fd) {
    struct grpc_linger *l = w->nlingering < GRPC_LINGER_MAX ? calloc(1, sizeof *l) : NULL;
    if (l != NULL) {
        l->ev = event_new(w->base, fd, EV_READ | EV_PERSIST, _on_linger_readable, l);
    }
    if (l == NULL || l->ev == NULL || shutdown(fd, SHUT_WR) != 0 || event_add(l->ev, NULL) != 0) {
        if (l != NULL && l->ev != NULL) {
            event_free(l->ev);
        }
        free(l);
        close(fd);
        return;
    }
    l->worker = w;
    l->fd = fd;
    l->until_us = clock_mono_us() + GRPC_LINGER_MS * 1000ll;
    TAILQ_INSERT_TAIL(&w->lingering, l, link);
    w->nlingering++;
}

static void _end_lingering(struct grpc_worker *w, int64_t now_us) {
    struct grpc_linger *l;
    while ((l = TAILQ_FIRST(&w->lingering)) != NULL && l->until_us <= now_us) {
        _linger_end(l, true);
    }
}

/* The connections' timeouts, every GRPC_TICK_MS. */
static void _on_tick(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    struct grpc_worker *w = arg;
    int64_t now = clock_mono_us();
    _end_lingering(w, now);
    struct grpc_conn *conn = TAILQ_FIRST(&w->conns);
    while (conn != NULL) {
        struct grpc_conn *next = TAILQ_NEXT(conn, link);
        grpc_conn_check_timeouts(conn, now); /* may close it: `next` was read before */
        conn = next;
    }
}

/* Stops accepting for GRPC_ACCEPT_PAUSE_MS: the listener is level-triggered and stays
 * readable, so pause instead of spinning. Logged at most once a second per worker. */
static void _pause_accept(struct grpc_worker *w, enum grpc_accept_pause reason, const char *why) {
    grpc_stat_add(&w->stats.accept_pauses[reason], 1);
    if (w->clock.mono_us - w->accept_pause_logged_us >= 1000000) {
        w->accept_pause_logged_us = w->clock.mono_us;
        log_warn("grpc accept paused", "worker=%u reason=%s why=%s pause_ms=%d open=%u limit=%u",
                 w->index, reason == GRPC_PAUSE_MAX_CONNECTIONS ? "max_connections" : "fd_limit",
                 LOG_QUOTE(why), GRPC_ACCEPT_PAUSE_MS,
                 atomic_load_explicit(&w->server->connections, memory_order_relaxed),
                 w->server->max_connections);
    }
    event_del(w->accept_ev);
    struct timeval tv = {0, GRPC_ACCEPT_PAUSE_MS * 1000};
    event_add(w->accept_pause_ev, &tv);
}

static void _on_accept(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    struct grpc_worker *w = arg;
    struct grpc_server *s = w->server;
    clock_cache_update(&w->clock); /* the connections' "accepted at" */
    for (int i = 0; i < GRPC_ACCEPTS_PER_EVENT; i++) {
        /* A slot first, so workers accepting at once cannot pass the limit together. */
        if (atomic_fetch_add_explicit(&s->connections, 1, memory_order_relaxed) >=
            s->max_connections) {
            atomic_fetch_sub_explicit(&s->connections, 1, memory_order_relaxed);
            _pause_accept(w, GRPC_PAUSE_MAX_CONNECTIONS, "max_connections open");
            return;
        }
        struct sockaddr_storage addr;
        socklen_t addr_len = sizeof addr;
        int c = accept4(fd, (struct sockaddr *)&addr, &addr_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) {
            int saved = errno;
            atomic_fetch_sub_explicit(&s->connections, 1, memory_order_relaxed);
            if (saved == EINTR || saved == ECONNABORTED) {
                continue;
            }
            if (saved == EMFILE || saved == ENFILE || saved == ENOBUFS || saved == ENOMEM) {
                _pause_accept(w, GRPC_PAUSE_FD_LIMIT, strerror(saved));
            }
            return;
        }
        int one = 1;
        /* Replies are small and must leave at once, not wait for Nagle's ack. */
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char peer[64];
        _format_peer(&addr, peer, sizeof peer);
        if (grpc_conn_create(w, c, peer) != 0) {
            atomic_fetch_sub_explicit(&s->connections, 1, memory_order_relaxed);
            log_warn("grpc connection dropped: out of memory", "worker=%u", w->index);
        }
    }
}

static void _on_drain_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    struct grpc_worker *w = arg;
    struct grpc_conn *conn = TAILQ_FIRST(&w->conns);
    while (conn != NULL) {
        struct grpc_conn *next = TAILQ_NEXT(conn, link);
        grpc_conn_drain_final(conn);
        grpc_conn_kick(conn);
        conn = next;
    }
}

static void _begin_drain(struct grpc_worker *w) {
    _stop_listening(w);
    struct timeval tv = {GRPC_DRAIN_GOAWAY_DELAY_MS / 1000,
                         (GRPC_DRAIN_GOAWAY_DELAY_MS % 1000) * 1000};
    event_add(w->drain_ev, &tv);
    struct grpc_conn *conn = TAILQ_FIRST(&w->conns);
    while (conn != NULL) {
        struct grpc_conn *next = TAILQ_NEXT(conn, link);
        grpc_conn_drain(conn);
        conn = next;
    }
    if (w->nconns == 0) {
        event_base_loopbreak(w->base);
    }
}

static void _on_wake(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    struct grpc_worker *w = arg;
    uint64_t count;
    ssize_t n = read(fd, &count, sizeof count);
    (void)n;
    int stop = atomic_load_explicit(&w->stop, memory_order_acquire);
    if (stop <= w->stop_seen) {
        return;
    }
    w->stop_seen = stop;
    if (stop == GRPC_STOP_DRAIN) {
        _begin_drain(w);
    } else {
        _stop_listening(w);
        _close_all(w);
        event_base_loopbreak(w->base);
    }
}

static void _on_resume(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    uint64_t count;
    ssize_t n = read(fd, &count, sizeof count);
    (void)n;
    grpc_worker_run_resumes(arg);
}

void grpc_worker_run_resumes(struct grpc_worker *w) {
    pthread_mutex_lock(&w->resume_lock);
    struct grpc_resume *r = w->resume_head;
    w->resume_head = w->resume_tail = NULL;
    pthread_mutex_unlock(&w->resume_lock);
    clock_cache_update(&w->clock);
    while (r != NULL) {
        struct grpc_resume *next = r->next;
        struct grpc_call *call = r->call;
        if (call != NULL) {
            call->suspended = NULL;
        }
        r->fn(call, r->arg);
        if (call != NULL) {
            if (!call->finished && call->suspended == NULL) { /* suspended again: waits on */
                log_warn("grpc resume returned without finishing the call", "worker=%u", w->index);
                grpc_call_fail(call, GRPC_INTERNAL, "handler resumed without finishing the call");
            }
            grpc_conn_kick(call->conn); /* may close the connection: nothing of it after */
        }
        free(r);
        r = next;
    }
}

void grpc_worker_close_resumes(struct grpc_worker *w) {
    pthread_mutex_lock(&w->resume_lock);
    w->resume_closed = true;
    pthread_mutex_unlock(&w->resume_lock);
    grpc_worker_run_resumes(w); /* the calls are gone: each runs with call NULL */
}

uint64_t grpc_worker_random(struct grpc_worker *w) {
    uint64_t x = w->random_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w->random_state = x;
    return x;
}

void grpc_worker_conn_gone(struct grpc_worker *w) {
    w->nconns--;
    if (w->stop_seen != GRPC_RUNNING && w->nconns == 0) {
        event_base_loopbreak(w->base);
    }
}

int grpc_worker_init(struct grpc_worker *w, char *err, size_t err_len) {
    struct grpc_server *s = w->server;
    size_t slots = s->nmethods + 1;
    TAILQ_INIT(&w->conns);
    TAILQ_INIT(&w->parked);
    TAILQ_INIT(&w->lingering);
    w->random_state = ((uint64_t)clock_mono_us() * 2654435761u + w->index) | 1; /* never 0 */
    w->stats.calls = calloc(slots * GRPC_CODE_COUNT, sizeof *w->stats.calls);
    w->stats.deadline_exceeded = calloc(slots, sizeof *w->stats.deadline_exceeded);
    w->read_buf = malloc(GRPC_READ_BUF_BYTES);
    w->callbacks = grpc_conn_callbacks_new();
    if (w->stats.calls == NULL || w->stats.deadline_exceeded == NULL || w->read_buf == NULL ||
        w->callbacks == NULL || nghttp2_option_new(&w->h2_option) != 0) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    /* Closed streams are kept only for priority bookkeeping, which gRPC does not use. */
    nghttp2_option_set_no_closed_streams(w->h2_option, 1);
    /* nghttp2's own rapid-reset guard (GOAWAY past it), at the configured rate. */
    uint64_t resets = s->options.max_resets_per_second;
    nghttp2_option_set_stream_reset_rate_limit(w->h2_option, 10 * resets, resets);

    /* One thread per base, so no base lock: nothing else ever touches it. */
    struct event_config *cfg = event_config_new();
    if (cfg == NULL || event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK) != 0) {
        event_config_free(cfg);
        snprintf(err, err_len, "libevent: cannot create a config");
        return -1;
    }
    w->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (w->base == NULL) {
        snprintf(err, err_len, "libevent: cannot create an event base");
        return -1;
    }
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wake_fd < 0) {
        snprintf(err, err_len, "eventfd: %s", strerror(errno));
        return -1;
    }
    w->resume_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->resume_fd < 0 || pthread_mutex_init(&w->resume_lock, NULL) != 0) {
        snprintf(err, err_len, "eventfd: %s", strerror(errno));
        return -1;
    }
    w->resume_lock_ready = true;
    w->resume_ev = event_new(w->base, w->resume_fd, EV_READ | EV_PERSIST, _on_resume, w);
    w->wake_ev = event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST, _on_wake, w);
    /* No listener: a server made by grpc_server_create_unbound(), given its connections. */
    bool listens = w->listen_fd >= 0;
    if (listens) {
        w->accept_ev = event_new(w->base, w->listen_fd, EV_READ | EV_PERSIST, _on_accept, w);
    }
    w->accept_pause_ev = evtimer_new(w->base, _on_accept_resume, w);
    w->drain_ev = evtimer_new(w->base, _on_drain_timer, w);
    w->tick_ev = event_new(w->base, -1, EV_PERSIST, _on_tick, w);
    struct timeval tick = {GRPC_TICK_MS / 1000, (GRPC_TICK_MS % 1000) * 1000};
    if (w->wake_ev == NULL || w->resume_ev == NULL || (listens && w->accept_ev == NULL) ||
        w->accept_pause_ev == NULL || w->drain_ev == NULL || w->tick_ev == NULL ||
        event_add(w->wake_ev, NULL) != 0 || event_add(w->resume_ev, NULL) != 0 ||
        (listens && event_add(w->accept_ev, NULL) != 0) || event_add(w->tick_ev, &tick) != 0) {
        snprintf(err, err_len, "libevent: cannot create events");
        return -1;
    }
    return 0;
}

void grpc_worker_deinit(struct grpc_worker *w) {
    if (w->accept_ev != NULL) {
        event_free(w->accept_ev);
    }
    if (w->accept_pause_ev != NULL) {
        event_free(w->accept_pause_ev);
    }
    if (w->wake_ev != NULL) {
        event_free(w->wake_ev);
    }
    if (w->resume_ev != NULL) {
        event_free(w->resume_ev);
    }
    if (w->resume_fd >= 0) {
        close(w->resume_fd);
    }
    if (w->resume_lock_ready) {
        /* Posts that came after the loop stopped ran at once; nothing can be queued. */
        pthread_mutex_destroy(&w->resume_lock);
    }
    if (w->drain_ev != NULL) {
        event_free(w->drain_ev);
    }
    if (w->tick_ev != NULL) {
        event_free(w->tick_ev);
    }
    if (w->base != NULL) {
        event_base_free(w->base);
    }
    if (w->listen_fd >= 0) {
        close(w->listen_fd);
    }
    if (w->wake_fd >= 0) {
        close(w->wake_fd);
    }
    while (w->free_calls != NULL) {
        struct grpc_call *call = w->free_calls;
        w->free_calls = call->free_next;
        grpc_call_free(call);
    }
    if (w->callbacks != NULL) {
        nghttp2_session_callbacks_del(w->callbacks);
    }
    if (w->h2_option != NULL) {
        nghttp2_option_del(w->h2_option);
    }
    free(w->read_buf);
    free(w->stats.calls);
    free(w->stats.deadline_exceeded);
    memset(w, 0, sizeof *w);
    w->listen_fd = -1;
    w->wake_fd = -1;
    w->resume_fd = -1;
}

void grpc_worker_finish(struct grpc_worker *w) {
    /* Whatever is still open closes now, and resumes posted for the calls it had (or posted
     * later) only free their arguments. */
    _stop_listening(w);
    _close_all(w);
    _end_lingering(w, INT64_MAX);
    grpc_worker_close_resumes(w);
}

void *grpc_worker_main(void *arg) {
    struct grpc_worker *w = arg;
    struct grpc_server *s = w->server;
    /* Handlers read the store under RCU, so every worker is a registered reader. */
    store_rcu_thread_online();
    if (s->worker_init != NULL) {
        w->ctx = s->worker_init(w->index);
    }
    clock_cache_update(&w->clock);
    event_base_dispatch(w->base);
    /* The loop ends on a stop: drained, or hard. */
    grpc_worker_finish(w);
    if (s->worker_deinit != NULL) {
        s->worker_deinit(w->ctx);
    }
    store_rcu_thread_offline();
    return NULL;
}

struct grpc_call *grpc_worker_call_get(struct grpc_worker *w) {
    struct grpc_call *call = w->free_calls;
    if (call != NULL) {
        w->free_calls = call->free_next;
        w->nfree_calls--;
        return call;
    }
    return calloc(1, sizeof *call);
}

void grpc_worker_call_put(struct grpc_worker *w, struct grpc_call *call) {
    if (w->nfree_calls >= GRPC_CALL_FREELIST_MAX) {
        grpc_call_free(call);
        return;
    }
    grpc_call_recycle(call);
    call->free_next = w->free_calls;
    w->free_calls = call;
    w->nfree_calls++;
}
