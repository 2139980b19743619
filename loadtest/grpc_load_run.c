/*
 * grpc_load's lookup runs, the same for every target (struct load_target). Each of the T
 * threads owns C/T connections and polls them together; latencies go into per-thread
 * histograms merged at the end.
 *
 * Closed loop: every connection keeps K calls in flight, a new one leaves as one completes.
 * Open loop: each connection sends on a fixed schedule; a call's latency runs from its
 * intended send time, and sends made late are counted.
 *
 * --latency-log keeps one record per measured call in a per-thread array (sized up front for
 * an open loop, so the run does not stop to grow it) and writes them after the run, with
 * each start converted to wall-clock time so a script can line calls up with what a server
 * logged (a snapshot load's start and end, say).
 */
#include "grpc_load_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include <time.h>

#include "histogram.h"
#include "common/clock.h"

uint64_t load_splitmix(uint64_t *state) {
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

const struct load_target *load_target_of(const struct options *o) {
    switch (o->target) {
    case TARGET_REDIS_HASH:
        return &load_target_redis_hash;
    case TARGET_REDIS_PACKED:
        return &load_target_redis_packed;
    case TARGET_FEAST:
        return &load_target_feast;
    case TARGET_FSD:
        break;
    }
    return &load_target_fsd;
}

/* ---- lookups ----------------------------------------------------------------------------- */

volatile sig_atomic_t load_stop_requested;

#define POLL_MAX_WAIT_US 10000 /* the loops look at load_stop_requested at least this often */

struct worker;

/* One measured call, for --latency-log. */
struct call_record {
    int64_t start_us;   /* intended send time (clock_mono_us clock) */
    int64_t latency_us; /* from start_us to the response's end */
    int64_t lag_us;     /* how late it was actually sent: submit - start */
    bool ok;
};

/* Start line: every thread connects, then all start measuring from one t0. A mutex and a
 * condition rather than a barrier, so a run whose threads did not all start can still go. */
struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned connected;
    bool go;
    int64_t t0_us;
};

struct conn_state {
    struct worker *w;
    void *conn;
    double next_send_us; /* open loop: the next intended send time */
    uint32_t inflight;
};

struct worker {
    const struct options *o;
    unsigned index;
    pthread_t thread;
    struct gate *gate;
    const struct load_target *target;
    struct conn_state conns[MAX_CONNECTIONS];
    void *conn_ptrs[MAX_CONNECTIONS];
    uint32_t nconns;
    uint64_t rng;
    uint64_t max_requests;
    uint32_t values_per_entity;
    bool submitting;
    int64_t t0_us; /* the run starts (warm-up first) */
    int64_t measure_from_us, measure_to_us;
    /* results */
    struct histogram hist;      /* from the intended start */
    struct histogram hist_sent; /* from the actual send */
    uint64_t sent, ok, errors, unanswered;
    uint64_t late_sends, backlog;
    int64_t max_lag_us;
    struct call_record *log; /* --latency-log only */
    size_t nlog, log_cap;
    bool log_failed; /* out of memory: the log would be incomplete */
    char error[512];
    int failed; /* could not connect */
};

static void _note_error(struct worker *w, const char *error) {
    if (w->error[0] == '\0') {
        snprintf(w->error, sizeof w->error, "%s", error);
    }
}

static int _submit(struct conn_state *cs, int64_t start_us);

static void _log_call(struct worker *w, const struct load_outcome *r) {
    if (w->nlog == w->log_cap) {
        size_t cap = w->log_cap ? w->log_cap * 2 : 4096;
        struct call_record *grown = w->log_failed ? NULL : realloc(w->log, cap * sizeof(*grown));
        if (grown == NULL) {
            w->log_failed = true;
            return;
        }
        w->log = grown;
        w->log_cap = cap;
    }
    w->log[w->nlog++] = (struct call_record){
        .start_us = r->start_us,
        .latency_us = r->done_us - r->start_us,
        .lag_us = r->submit_us - r->start_us,
        .ok = r->error == NULL,
    };
}

static void _on_done(void *user, const struct load_outcome *r) {
    struct conn_state *cs = user;
    struct worker *w = cs->w;
    cs->inflight--;
    bool measured = r->start_us >= w->measure_from_us && r->start_us < w->measure_to_us;
    if (r->error != NULL) {
        _note_error(w, r->error);
    }
    if (measured) {
        histogram_record(&w->hist, (r->done_us - r->start_us) * 1000);
        histogram_record(&w->hist_sent, (r->done_us - r->submit_us) * 1000);
        if (r->error == NULL) {
            w->ok++;
        } else {
            w->errors++;
        }
        if (w->o->latency_log != NULL) {
            _log_call(w, r);
        }
    }
    /* closed loop: the next call leaves as this one completes. It starts at the time the
     * window was checked against, so a call sent is always a call counted (a clock read
     * after the check could fall past the window's end). */
    int64_t now = clock_mono_us();
    if (w->submitting && w->o->rate == 0 && now < w->measure_to_us && w->sent < w->max_requests) {
        _submit(cs, now);
    }
}

static int _submit(struct conn_state *cs, int64_t start_us) {
    struct worker *w = cs->w;
    if (w->target->submit(cs->conn, &w->rng, start_us) != 0) {
        const char *why = w->target->conn_error(cs->conn);
        _note_error(w, why != NULL ? why : "the connection is broken");
        return -1;
    }
    cs->inflight++;
    w->sent++;
    return 0;
}

/* SIGUSR1: the measurement ends now (not before it began). */
static bool _stop_now(struct worker *w, int64_t now) {
    if (!load_stop_requested) {
        return false;
    }
    if (now < w->measure_to_us) {
        w->measure_to_us = now > w->measure_from_us ? now : w->measure_from_us;
    }
    return true;
}

static void _run_closed(struct worker *w) {
    for (uint32_t c = 0; c < w->nconns; c++) {
        for (uint32_t k = 0; k < w->o->inflight && w->sent < w->max_requests; k++) {
            _submit(&w->conns[c], 0);
        }
    }
    int64_t now;
    while ((now = clock_mono_us()) < w->measure_to_us && w->sent < w->max_requests &&
           !_stop_now(w, now)) {
        int64_t wait = w->measure_to_us - now;
        if (w->target->poll_many(w->conn_ptrs, w->nconns,
                                 wait < POLL_MAX_WAIT_US ? wait : POLL_MAX_WAIT_US) < 0) {
            break;
        }
        bool any = false;
        for (uint32_t c = 0; c < w->nconns; c++) {
            any |= w->target->conn_error(w->conns[c].conn) == NULL;
        }
        if (!any) {
            break;
        }
    }
}

static void _run_open(struct worker *w) {
    double interval_us = 1e6 * (double)w->o->connections / w->o->rate;
    /* stagger the connections over one interval so their sends do not bunch up */
    for (uint32_t c = 0; c < w->nconns; c++) {
        uint32_t global = w->index + c * w->o->threads;
        w->conns[c].next_send_us =
            (double)w->t0_us + interval_us * global / (double)w->o->connections;
    }
    int64_t end = w->measure_to_us;
    for (;;) {
        int64_t now = clock_mono_us();
        if (_stop_now(w, now)) {
            end = w->measure_to_us;
        }
        if (now >= end || w->sent >= w->max_requests) {
            break;
        }
        double soonest = (double)end;
        for (uint32_t c = 0; c < w->nconns; c++) {
            struct conn_state *cs = &w->conns[c];
            while (cs->next_send_us <= (double)now && cs->next_send_us < (double)end &&
                   cs->inflight < w->o->inflight && w->sent < w->max_requests) {
                int64_t intended = (int64_t)cs->next_send_us;
                int64_t lag = now - intended;
                if (lag > LATE_SEND_US && intended >= w->measure_from_us) {
                    w->late_sends++;
                }
                if (lag > w->max_lag_us && intended >= w->measure_from_us) {
                    w->max_lag_us = lag;
                }
                if (_submit(cs, intended) != 0) {
                    break;
                }
                cs->next_send_us += interval_us;
            }
            if (cs->inflight < w->o->inflight && cs->next_send_us < soonest) {
                soonest = cs->next_send_us;
            }
        }
        int64_t wait = (int64_t)soonest - now;
        wait = wait < 0 ? 0 : wait > POLL_MAX_WAIT_US ? POLL_MAX_WAIT_US : wait;
        if (w->target->poll_many(w->conn_ptrs, w->nconns, wait) < 0) {
            break;
        }
    }
    /* sends the schedule wanted before the end but the generator never made */
    for (uint32_t c = 0; c < w->nconns; c++) {
        if (w->conns[c].next_send_us < (double)end) {
            w->backlog += (uint64_t)(((double)end - w->conns[c].next_send_us) / interval_us) + 1;
        }
    }
}

static void *_worker_main(void *arg) {
    struct worker *w = arg;
    const struct options *o = w->o;
    prctl(PR_SET_TIMERSLACK, 1000UL); /* open-loop sends need wake-ups to the microsecond */
    char err[512];
    for (uint32_t c = 0; c < w->nconns && !w->failed; c++) {
        w->conns[c] = (struct conn_state){.w = w};
        void *conn =
            w->target->connect(o, w->values_per_entity, _on_done, &w->conns[c], err, sizeof err);
        if (conn == NULL) {
            snprintf(w->error, sizeof w->error, "%s", err);
            w->failed = 1;
            break;
        }
        w->conns[c].conn = conn;
        w->conn_ptrs[c] = conn;
    }
    pthread_mutex_lock(&w->gate->lock);
    w->gate->connected++;
    pthread_cond_broadcast(&w->gate->cond);
    while (!w->gate->go) {
        pthread_cond_wait(&w->gate->cond, &w->gate->lock);
    }
    w->t0_us = w->gate->t0_us;
    pthread_mutex_unlock(&w->gate->lock);
    if (!w->failed) {
        w->measure_from_us = w->t0_us + (int64_t)(o->warmup_s * 1e6);
        w->measure_to_us = w->measure_from_us + (int64_t)(o->duration_s * 1e6);
        w->submitting = true;
        if (o->rate > 0) {
            _run_open(w);
        } else {
            _run_closed(w);
        }
        w->submitting = false;
        int64_t drain_until = clock_mono_us() + DRAIN_TIMEOUT_US;
        for (;;) {
            size_t inflight = 0;
            for (uint32_t c = 0; c < w->nconns; c++) {
                inflight += w->target->inflight(w->conns[c].conn);
            }
            int64_t now = clock_mono_us();
            if (inflight == 0 || now >= drain_until) {
                w->unanswered = inflight;
                break;
            }
            w->target->poll_many(w->conn_ptrs, w->nconns, drain_until - now);
        }
    }
    for (uint32_t c = 0; c < w->nconns; c++) {
        w->target->disconnect(w->conns[c].conn);
        w->conns[c].conn = NULL;
    }
    return NULL;
}

/* Writes every worker's call records, starts in wall-clock time (`wall_offset_us` added). */
static int _write_latency_log(const struct options *o, const struct worker *workers,
                              unsigned nworkers, int64_t wall_offset_us) {
    for (unsigned t = 0; t < nworkers; t++) {
        if (workers[t].log_failed) {
            fprintf(stderr, "grpc_load: out of memory for the latency log\n");
            return -1;
        }
    }
    FILE *f = fopen(o->latency_log, "w");
    if (f == NULL) {
        fprintf(stderr, "grpc_load: cannot write %s: %s\n", o->latency_log, strerror(errno));
        return -1;
    }
    fprintf(f, "# grpc_load latency log: one measured call a line, in microseconds\n"
               "# start_wall_us latency_us send_lag_us ok\n");
    for (unsigned t = 0; t < nworkers; t++) {
        for (size_t i = 0; i < workers[t].nlog; i++) {
            const struct call_record *c = &workers[t].log[i];
            fprintf(f, "%" PRId64 " %" PRId64 " %" PRId64 " %d\n", c->start_us + wall_offset_us,
                    c->latency_us, c->lag_us, c->ok ? 1 : 0);
        }
    }
    if (ferror(f) | (fclose(f) != 0)) {
        fprintf(stderr, "grpc_load: cannot write %s: %s\n", o->latency_log, strerror(errno));
        return -1;
    }
    return 0;
}

int load_run_once(const struct options *o, uint32_t values_per_entity, unsigned run,
                  struct result *out, struct histogram *all_runs) {
    struct worker *workers = calloc(o->threads, sizeof(*workers));
    if (workers == NULL) {
        return -1;
    }
    /* An open loop's calls are known in advance: size the logs so no run stops to grow one. */
    size_t log_cap = 0;
    if (o->latency_log != NULL && o->rate > 0) {
        double calls = o->rate * o->duration_s / o->threads * 1.05 + 1024;
        double most = (double)(o->max_requests / o->threads + 1);
        log_cap = (size_t)(calls < most ? calls : most);
    }
    struct gate gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false, 0};
    unsigned started = 0;
    for (unsigned t = 0; t < o->threads; t++) {
        struct worker *w = &workers[t];
        w->o = o;
        w->index = t;
        w->gate = &gate;
        w->target = load_target_of(o);
        w->values_per_entity = values_per_entity;
        w->rng = o->seed + (uint64_t)run * 1000003 + t * 7919 + 1;
        w->max_requests = o->max_requests / o->threads + 1;
        for (uint32_t c = t; c < o->connections; c += o->threads) {
            w->nconns++;
        }
        histogram_init(&w->hist);
        histogram_init(&w->hist_sent);
        if (log_cap > 0) {
            w->log = malloc(log_cap * sizeof(*w->log));
            w->log_cap = w->log != NULL ? log_cap : 0;
        }
        if (pthread_create(&w->thread, NULL, _worker_main, w) != 0) {
            break;
        }
        started++;
    }
    int rc = 0;
    if (started < o->threads) {
        fprintf(stderr, "grpc_load: cannot start %u threads\n", o->threads);
        rc = -1;
    }
    pthread_mutex_lock(&gate.lock);
    while (gate.connected < started) {
        pthread_cond_wait(&gate.cond, &gate.lock);
    }
    /* clock_mono_us is monotonic; the log's readers want wall-clock time */
    int64_t mono_before = clock_mono_us();
    int64_t wall_offset_us = clock_wall_us();
    int64_t mono_after = clock_mono_us();
    wall_offset_us -= (mono_before + mono_after) / 2;
    gate.t0_us = clock_mono_us();
    gate.go = true;
    pthread_cond_broadcast(&gate.cond);
    pthread_mutex_unlock(&gate.lock);
    struct histogram all, all_sent;
    histogram_init(&all);
    histogram_init(&all_sent);
    memset(out, 0, sizeof(*out));
    uint64_t ok = 0;
    int64_t measured_us = 0;
    for (unsigned t = 0; t < started; t++) {
        struct worker *w = &workers[t];
        pthread_join(w->thread, NULL);
        if (!w->failed && w->measure_to_us - w->measure_from_us > measured_us) {
            measured_us = w->measure_to_us - w->measure_from_us;
        }
        histogram_merge(&all, &w->hist);
        histogram_merge(&all_sent, &w->hist_sent);
        ok += w->ok;
        out->errors += w->errors + w->unanswered;
        out->late_sends += w->late_sends;
        out->backlog += w->backlog;
        out->sent += w->sent;
        if ((double)w->max_lag_us > out->max_lag_us) {
            out->max_lag_us = (double)w->max_lag_us;
        }
        if (w->failed) {
            fprintf(stderr, "grpc_load: %s\n", w->error);
            rc = -1;
        } else if (w->error[0] && o->verbose) {
            fprintf(stderr, "grpc_load: thread %u: first error: %s\n", t, w->error);
        } else if (w->error[0] && (w->errors > 0 || w->unanswered > 0) && t == 0) {
            fprintf(stderr, "grpc_load: first error: %s\n", w->error);
        }
        if (w->unanswered > 0) {
            fprintf(stderr, "grpc_load: %" PRIu64 " calls had no answer %d s after the run\n",
                    w->unanswered, DRAIN_TIMEOUT_US / 1000000);
        }
    }
    if (rc == 0 && o->latency_log != NULL &&
        _write_latency_log(o, workers, started, wall_offset_us) != 0) {
        rc = -1;
    }
    for (unsigned t = 0; t < o->threads; t++) {
        free(workers[t].log);
    }
    free(workers);
    if (all_runs != NULL) {
        histogram_merge(all_runs, &all);
    }
    out->requests = ok;
    out->measured_s = (double)measured_us / 1e6;
    out->requests_per_s = out->measured_s > 0 ? (double)ok / out->measured_s : 0;
    out->lookups_per_s = out->requests_per_s * o->batch;
    out->values_per_s = out->lookups_per_s * values_per_entity;
    out->p50_us = (double)histogram_percentile(&all, 50) / 1e3;
    out->p99_us = (double)histogram_percentile(&all, 99) / 1e3;
    out->p999_us = (double)histogram_percentile(&all, 99.9) / 1e3;
    out->sent_p50_us = (double)histogram_percentile(&all_sent, 50) / 1e3;
    out->sent_p99_us = (double)histogram_percentile(&all_sent, 99) / 1e3;
    out->sent_p999_us = (double)histogram_percentile(&all_sent, 99.9) / 1e3;
    out->max_us = (double)all.max_ns / 1e3;
    out->mean_us = histogram_mean(&all) / 1e3;
    return rc;
}
