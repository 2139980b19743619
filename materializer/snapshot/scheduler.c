/*
 * The load threads (snapshot.h): load every view with a source at start-up, again on its
 * refresh interval, retry failures with backoff, run on-demand loads and commit pushed
 * snapshots first.
 *
 *   pushed snapshots' commits (FIFO) ──┐
 *   requests (tickets, FIFO) ──────────┼──> options.load_threads threads, each taking the first
 *   per view: next_due_us ─────────────┘    job whose view is not busy ──> status, log line
 *
 * Jobs of different views run at once, on different threads, so a view whose source hangs
 * holds one thread (until its timeouts end the load) and the other views keep loading; a view
 * is busy while a job of its runs, so its own loads and commits never overlap. Everything
 * shared lives under one mutex; loads run without it, each with a private copy of its view's
 * config, so status reads and requests never wait for a load.
 */
#include "snapshot.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/log.h"
#include "snapshot_internal.h"
#include "store/catalog.h"
#include "store/rcu.h"
#include "store/schema.h"
#include "common/clock.h"

/* A pushed snapshot waiting for its commit (mat_request_commit). */
struct commit_job {
    struct commit_job *next;
    struct store_view *view;
    struct store_table *table;
    char stream_position[STORE_STREAM_POSITION_LEN];
    mat_commit_done_fn done;
    void *ctx;
};

struct mat_ticket {
    struct mat_ticket *next; /* in the queue */
    char view[MAT_VIEW_NAME_LEN];
    char *path_override;
    char *stream_position;
    int refs; /* one per caller holding it (requests joined to it too), one for the queue */
    bool done;
    struct mat_load_result result;
};

struct entry {
    struct mat_view_config config; /* a deep copy: the scheduler owns its strings */
    struct mat_view_status status;
    int64_t next_due_us; /* monotonic; INT64_MAX: nothing scheduled */
    int64_t watermark_us;
    bool busy; /* a load or a commit of the view runs on a load thread */
};

static struct {
    bool running;
    pthread_t *threads;
    uint32_t nthreads; /* started */
    uint32_t alive;    /* still in their loop; the last one out ends what is queued */
    pthread_mutex_t lock;
    pthread_cond_t wake; /* the load threads: a request, a job done, a reconfigure, or stop */
    pthread_cond_t done; /* waiters on tickets */
    bool stop;
    struct store_catalog *catalog;
    struct mat_options options;
    struct entry *entries;
    size_t nentries;
    struct mat_ticket *queue_head, *queue_tail;
    struct commit_job *commits_head, *commits_tail; /* before any ticket or scheduled load */
    size_t queued;
} mat = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Set by mat_teardown() before it waits for the threads: the sources give up (mat_stopping). */
static atomic_bool stopping;

bool mat_stopping(void) {
    return atomic_load_explicit(&stopping, memory_order_relaxed);
}

/* ---- config copies -------------------------------------------------------------------------- */

static int _copy_view(struct mat_view_config *dst, const struct mat_view_config *src) {
    *dst = *src;
    return mat_source_copy(&dst->source, &src->source);
}

static struct entry *_find(const char *view) {
    for (size_t i = 0; i < mat.nentries; i++) {
        if (strcmp(mat.entries[i].status.view, view) == 0) {
            return &mat.entries[i];
        }
    }
    return NULL;
}

/* Adds or updates the entries for `views`. Lock held. */
static int _apply_config(const struct mat_view_config *const *views, size_t nviews,
                         int64_t now_mono) {
    struct entry *grown = realloc(mat.entries, (mat.nentries + nviews + 1) * sizeof(*mat.entries));
    if (grown == NULL) {
        return -1;
    }
    mat.entries = grown;
    for (size_t i = 0; i < nviews; i++) {
        const struct mat_view_config *cv = views[i];
        struct mat_view_config copy;
        if (_copy_view(&copy, cv) != 0) {
            return -1;
        }
        struct entry *e = _find(cv->name);
        if (e != NULL) {
            mat_source_deinit(&e->config.source);
            e->config = copy;
            e->status.has_source = copy.source.type != MAT_SOURCE_NONE;
            e->status.refresh_interval_us = copy.refresh_interval_us;
            snprintf(e->status.source_type, sizeof e->status.source_type, "%s",
                     mat_source_type_name(copy.source.type));
            continue;
        }
        e = &mat.entries[mat.nentries++];
        memset(e, 0, sizeof(*e));
        e->config = copy;
        snprintf(e->status.view, sizeof e->status.view, "%s", cv->name);
        e->status.has_source = copy.source.type != MAT_SOURCE_NONE;
        e->status.refresh_interval_us = copy.refresh_interval_us;
        snprintf(e->status.source_type, sizeof e->status.source_type, "%s",
                 mat_source_type_name(copy.source.type));
        e->status.last.watermark_us = INT64_MIN;
        e->status.last.max_event_ts_us = INT64_MIN;
        e->status.last_ok = e->status.last;
        e->watermark_us = INT64_MIN;
        e->next_due_us = e->status.has_source && mat.options.load_at_start ? now_mono : INT64_MAX;
    }
    return 0;
}

/* ---- the thread ------------------------------------------------------------------------------ */

static int64_t _backoff_us(const struct entry *e) {
    int64_t delay = mat.options.retry_first_us;
    for (uint32_t i = 1; i < e->status.consecutive_failures && delay < mat.options.retry_max_us;
         i++) {
        delay *= 2;
    }
    int64_t cap = mat.options.retry_max_us;
    int64_t refresh = e->config.refresh_interval_us;
    if (refresh > 0 && refresh < cap) {
        cap = refresh;
    }
    return delay < cap ? delay : cap;
}

static void _log_result(const char *view, const struct mat_load_result *r, bool on_demand) {
    char when[32];
    snprintf(when, sizeof when, "%s", on_demand ? "request" : "schedule");
    if (r->outcome == MAT_LOADED || r->outcome == MAT_LOADED_INCREMENTAL) {
        log_info(r->outcome == MAT_LOADED ? "snapshot loaded" : "incremental load applied",
                 "view=%s version=%llu rows_read=%llu kept=%llu superseded=%llu skipped=%llu "
                 "skipped_future=%llu skipped_expired=%llu null_keys=%llu table_rows=%llu "
                 "updates_replayed=%llu duration_ms=%.1f watermark_us=%lld source=%s trigger=%s",
                 view, (unsigned long long)r->version, (unsigned long long)r->rows_read,
                 (unsigned long long)r->rows_kept, (unsigned long long)r->rows_superseded,
                 (unsigned long long)r->rows_skipped, (unsigned long long)r->skipped_future,
                 (unsigned long long)r->skipped_expired, (unsigned long long)r->null_keys,
                 (unsigned long long)r->table_rows, (unsigned long long)r->updates_replayed,
                 (double)r->duration_us / 1000.0, (long long)r->watermark_us, LOG_QUOTE(r->source),
                 when);
    } else {
        log_warn(r->outcome == MAT_REJECTED ? "snapshot rejected: live snapshot kept"
                                            : "snapshot load failed: live snapshot kept",
                 "view=%s version=%llu rows_read=%llu duration_ms=%.1f source=%s trigger=%s "
                 "error=%s",
                 view, (unsigned long long)r->version, (unsigned long long)r->rows_read,
                 (double)r->duration_us / 1000.0, LOG_QUOTE(r->source), when, LOG_QUOTE(r->error));
    }
}

/* Runs one load of `e` (lock held on entry and exit; released during the load). */
static void _run_load(struct entry *e, struct mat_ticket *ticket) {
    char view[MAT_VIEW_NAME_LEN];
    snprintf(view, sizeof view, "%s", e->status.view);
    struct mat_view_config config;
    struct mat_load_result *result = malloc(sizeof(*result));
    int copied = _copy_view(&config, &e->config);
    if (copied == 0) {
        mat_source_timeouts_resolve(&config.source.timeouts, &mat.options.timeouts);
    }
    struct mat_load_params params = {
        .shards = store_catalog_shards(mat.catalog),
        .path_override = ticket != NULL ? ticket->path_override : NULL,
        .stream_position = ticket != NULL ? ticket->stream_position : NULL,
        .incremental = ticket == NULL && e->config.incremental,
        .watermark_us = e->watermark_us,
        .duckdb_threads = mat.options.duckdb_threads,
    };
    e->status.loading = true;
    e->busy = true;
    pthread_mutex_unlock(&mat.lock);

    struct store_view *sv = store_catalog_find(mat.catalog, view);
    if (result == NULL || copied != 0 || sv == NULL) {
        if (result != NULL) {
            memset(result, 0, sizeof(*result));
            result->outcome = MAT_SOURCE_FAILED;
            result->watermark_us = params.watermark_us;
            snprintf(result->error, sizeof result->error, "view %s: %s", view,
                     sv == NULL ? "not in the catalog" : "out of memory");
        }
    } else {
        mat_load_view(sv, &config, &params, result);
    }
    if (copied == 0) {
        mat_source_deinit(&config.source);
    }
    if (result != NULL) {
        _log_result(view, result, ticket != NULL);
        if (result->outcome == MAT_SOURCE_FAILED || result->outcome == MAT_REJECTED) {
            errors_record("load", view, result->error);
        }
    }

    pthread_mutex_lock(&mat.lock);
    /* `mat.entries` may have moved (reconfigure): find the entry again. */
    e = _find(view);
    int64_t now_mono = clock_mono_us();
    int64_t now_wall = clock_wall_us();
    if (e != NULL) {
        e->busy = false;
    }
    if (e != NULL && result != NULL) {
        bool ok = result->outcome == MAT_LOADED || result->outcome == MAT_LOADED_INCREMENTAL;
        e->status.loading = false;
        e->status.last = *result;
        e->status.last_load_end_us = now_wall;
        int64_t delay;
        if (ok) {
            e->status.last_ok = *result;
            e->status.loads_completed++;
            e->status.consecutive_failures = 0;
            e->watermark_us = result->watermark_us;
            delay = e->config.refresh_interval_us > 0 ? e->config.refresh_interval_us : -1;
        } else {
            e->status.loads_failed++;
            e->status.consecutive_failures++;
            delay = e->status.has_source ? _backoff_us(e) : -1;
        }
        /* A failed on-demand load of another path says nothing about the configured source. */
        if (ok || ticket == NULL || ticket->path_override == NULL) {
            e->next_due_us = delay >= 0 ? now_mono + delay : INT64_MAX;
            e->status.next_load_us = delay >= 0 ? now_wall + delay : 0;
        }
    } else if (e != NULL) {
        e->status.loading = false;
    }
    if (ticket != NULL) {
        if (result != NULL) {
            ticket->result = *result;
        } else {
            ticket->result.outcome = MAT_SOURCE_FAILED;
            snprintf(ticket->result.error, sizeof ticket->result.error, "out of memory");
        }
        ticket->done = true;
        pthread_cond_broadcast(&mat.done);
    }
    free(result);
    pthread_cond_broadcast(&mat.wake); /* the view is free: its queued jobs may run */
}

/* Commits a pushed snapshot with the view's contract (lock held on entry and exit; released
 * during the commit). */
static void _run_commit(struct commit_job *job) {
    struct entry *e = _find(store_view_name(job->view));
    struct mat_contract contract;
    bool have_contract = e != NULL;
    if (have_contract) {
        contract = e->config.contract; /* a copy: a reconfigure may replace it meanwhile */
        e->busy = true;
    }
    pthread_mutex_unlock(&mat.lock);
    struct mat_commit_result result;
    mat_commit_snapshot(job->view, job->table, have_contract ? &contract : NULL, 0,
                        job->stream_position, clock_wall_us(), &result);
    job->done(&result, job->ctx);
    pthread_mutex_lock(&mat.lock);
    if (have_contract && (e = _find(store_view_name(job->view))) != NULL) {
        e->busy = false;
    }
    free(job);
    pthread_cond_broadcast(&mat.wake);
}

/* Whether a job for view `name` may start now: none of the view's runs (lock held). */
static bool _view_idle(const char *name) {
    const struct entry *e = _find(name);
    return e == NULL || !e->busy;
}

/* Unlinks and returns the first queued commit whose view is free, or NULL (lock held). */
static struct commit_job *_take_commit(void) {
    struct commit_job *prev = NULL;
    for (struct commit_job *job = mat.commits_head; job != NULL; prev = job, job = job->next) {
        if (_view_idle(store_view_name(job->view))) {
            *(prev != NULL ? &prev->next : &mat.commits_head) = job->next;
            if (mat.commits_tail == job) {
                mat.commits_tail = prev;
            }
            return job;
        }
    }
    return NULL;
}

/* Unlinks and returns the first queued ticket whose view is free (or unknown), or NULL. */
static struct mat_ticket *_take_ticket(void) {
    struct mat_ticket *prev = NULL;
    for (struct mat_ticket *t = mat.queue_head; t != NULL; prev = t, t = t->next) {
        if (_view_idle(t->view)) {
            *(prev != NULL ? &prev->next : &mat.queue_head) = t->next;
            if (mat.queue_tail == t) {
                mat.queue_tail = prev;
            }
            mat.queued--;
            return t;
        }
    }
    return NULL;
}

static void _ticket_put(struct mat_ticket *t) {
    if (--t->refs == 0) {
        free(t->path_override);
        free(t->stream_position);
        free(t);
    }
}

/* Ends what is still queued at teardown: commits unswapped, tickets failed (lock held). */
static void _drain(void) {
    while (mat.commits_head != NULL) {
        struct commit_job *job = mat.commits_head;
        mat.commits_head = job->next;
        pthread_mutex_unlock(&mat.lock);
        struct mat_commit_result result = {.outcome = MAT_SOURCE_FAILED};
        snprintf(result.error, sizeof result.error, "view %s: shutting down; snapshot not swapped",
                 store_view_name(job->view));
        store_view_load_abort(job->view);
        store_table_destroy(job->table);
        job->done(&result, job->ctx);
        free(job);
        pthread_mutex_lock(&mat.lock);
    }
    mat.commits_tail = NULL;
    while (mat.queue_head != NULL) {
        struct mat_ticket *t = mat.queue_head;
        mat.queue_head = t->next;
        t->result.outcome = MAT_SOURCE_FAILED;
        snprintf(t->result.error, sizeof t->result.error, "view %s: shutting down", t->view);
        t->done = true;
        _ticket_put(t);
    }
    mat.queue_tail = NULL;
    mat.queued = 0;
    pthread_cond_broadcast(&mat.done);
}

static void *_thread(void *arg) {
    (void)arg;
    /* Linux gives each thread its own name and nice value; the threads DuckDB creates from
     * here inherit both, so `top -H` shows them as the loads they are. */
    pthread_setname_np(pthread_self(), "fsd-loads");
    if (mat.options.nice > 0 &&
        setpriority(PRIO_PROCESS, (id_t)gettid(), (int)mat.options.nice) != 0) {
        log_warn("materializer cannot lower its priority", "nice=%u error=%s", mat.options.nice,
                 LOG_QUOTE(strerror(errno)));
    }
    store_rcu_thread_online();
    pthread_mutex_lock(&mat.lock);
    while (!mat.stop) {
        struct commit_job *job = _take_commit();
        if (job != NULL) {
            _run_commit(job);
            continue;
        }
        struct mat_ticket *ticket = _take_ticket();
        if (ticket != NULL) {
            struct entry *e = _find(ticket->view);
            if (e != NULL) {
                _run_load(e, ticket);
            } else {
                ticket->result.outcome = MAT_SOURCE_FAILED;
                snprintf(ticket->result.error, sizeof ticket->result.error, "view %s: unknown view",
                         ticket->view);
                ticket->done = true;
                pthread_cond_broadcast(&mat.done);
            }
            _ticket_put(ticket);
            continue;
        }
        int64_t now = clock_mono_us();
        struct entry *due = NULL;
        int64_t earliest = INT64_MAX;
        for (size_t i = 0; i < mat.nentries; i++) {
            if (!mat.entries[i].busy && mat.entries[i].next_due_us < earliest) {
                earliest = mat.entries[i].next_due_us;
                due = &mat.entries[i];
            }
        }
        if (due != NULL && earliest <= now) {
            _run_load(due, NULL);
            continue;
        }
        /* Sleep until the next due load or a signal; CLOCK_MONOTONIC as the cond is set up. */
        if (earliest == INT64_MAX) {
            pthread_cond_wait(&mat.wake, &mat.lock);
        } else {
            struct timespec ts = {.tv_sec = earliest / 1000000,
                                  .tv_nsec = (long)(earliest % 1000000) * 1000};
            pthread_cond_timedwait(&mat.wake, &mat.lock, &ts);
        }
    }
    if (--mat.alive == 0) {
        _drain();
    }
    pthread_mutex_unlock(&mat.lock);
    store_rcu_thread_offline();
    return NULL;
}

/* ---- setup / teardown ---------------------------------------------------------------------- */

int mat_setup(struct store_catalog *catalog, const struct mat_view_config *const *views,
              size_t nviews, const struct mat_options *options, char *err, size_t err_len) {
    pthread_mutex_lock(&mat.lock);
    if (mat.running) {
        pthread_mutex_unlock(&mat.lock);
        snprintf(err, err_len, "the materializer is already running");
        return -1;
    }
    if (options != NULL) {
        mat.options = *options;
    } else {
        mat_options_init(&mat.options);
    }
    mat.catalog = catalog;
    mat.stop = false;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&mat.wake, &attr);
    pthread_condattr_destroy(&attr);
    pthread_cond_init(&mat.done, NULL);
    if (_apply_config(views, nviews, clock_mono_us()) != 0) {
        pthread_mutex_unlock(&mat.lock);
        snprintf(err, err_len, "materializer: out of memory");
        mat_teardown();
        return -1;
    }
    uint32_t want = mat.options.load_threads > 0 ? mat.options.load_threads : 1;
    mat.threads = calloc(want, sizeof(*mat.threads));
    if (mat.threads == NULL) {
        pthread_mutex_unlock(&mat.lock);
        snprintf(err, err_len, "materializer: out of memory");
        mat_teardown();
        return -1;
    }
    atomic_store(&stopping, false);
    mat.running = true; /* from the first thread on: teardown joins what started */
    for (uint32_t i = 0; i < want; i++) {
        int rc = pthread_create(&mat.threads[i], NULL, _thread, NULL);
        if (rc != 0) {
            pthread_mutex_unlock(&mat.lock);
            snprintf(err, err_len, "materializer: cannot start load thread %u of %u: %s", i + 1,
                     want, strerror(rc));
            mat_teardown();
            return -1;
        }
        mat.nthreads++;
        mat.alive++;
    }
    pthread_mutex_unlock(&mat.lock);
    /* Outside mat.lock: a scrape holds the registry's lock and then takes mat.lock. */
    if (metrics_register(mat_collect_metrics, NULL) != 0) {
        snprintf(err, err_len, "materializer: out of memory");
        mat_teardown();
        return -1;
    }
    return 0;
}

void mat_teardown(void) {
    metrics_unregister(mat_collect_metrics, NULL); /* before the entries it reads are freed */
    atomic_store(&stopping, true);                 /* the loads running give up their reads */
    pthread_mutex_lock(&mat.lock);
    mat.stop = true;
    pthread_cond_broadcast(&mat.wake);
    uint32_t nthreads = mat.nthreads;
    pthread_mutex_unlock(&mat.lock);
    for (uint32_t i = 0; i < nthreads; i++) {
        pthread_join(mat.threads[i], NULL);
    }
    atomic_store(&stopping, false); /* sources read outside the scheduler read on */
    pthread_mutex_lock(&mat.lock);
    if (mat.catalog != NULL) {
        _drain(); /* the last thread out did; not when none started (a failed setup) */
    }
    free(mat.threads);
    mat.threads = NULL;
    mat.nthreads = 0;
    mat.alive = 0;
    for (size_t i = 0; i < mat.nentries; i++) {
        mat_source_deinit(&mat.entries[i].config.source);
    }
    free(mat.entries);
    mat.entries = NULL;
    mat.nentries = 0;
    bool initialized = mat.catalog != NULL;
    mat.running = false;
    mat.catalog = NULL;
    pthread_mutex_unlock(&mat.lock);
    if (initialized) {
        pthread_cond_destroy(&mat.wake);
        pthread_cond_destroy(&mat.done);
    }
}

void mat_reconfigure(const struct mat_view_config *const *views, size_t nviews) {
    pthread_mutex_lock(&mat.lock);
    if (mat.running && _apply_config(views, nviews, clock_mono_us()) != 0) {
        log_error("materializer: out of memory applying the new config", NULL);
    }
    pthread_cond_broadcast(&mat.wake);
    pthread_mutex_unlock(&mat.lock);
}

/* ---- API ----------------------------------------------------------------------------------- */

/* Whether two optional strings are the same (both NULL, or equal). */
static bool _same(const char *a, const char *b) {
    return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/* The queued request of view `name`, or NULL (lock held). */
static struct mat_ticket *_queued_for(const char *name) {
    for (struct mat_ticket *t = mat.queue_head; t != NULL; t = t->next) {
        if (strcmp(t->view, name) == 0) {
            return t;
        }
    }
    return NULL;
}

struct mat_ticket *mat_request_load(const char *view, const char *path_override,
                                    const char *stream_position, bool *joined,
                                    enum mat_refusal *refusal, char *err, size_t err_len) {
    enum mat_refusal unused;
    refusal = refusal != NULL ? refusal : &unused;
    if (joined != NULL) {
        *joined = false;
    }
    pthread_mutex_lock(&mat.lock);
    struct mat_ticket *t = NULL;
    struct entry *e = NULL;
    char why[400];
    if (!mat.running || mat.stop) {
        *refusal = MAT_REFUSED_NOT_RUNNING;
        snprintf(err, err_len, "the materializer is not running");
    } else if ((e = _find(view)) == NULL) {
        *refusal = MAT_REFUSED_UNKNOWN_VIEW;
        snprintf(err, err_len, "view %s: unknown view", view);
    } else if (e->config.source.type == MAT_SOURCE_NONE) {
        /* Refused here rather than queued to fail: the caller learns it from the call. */
        *refusal = MAT_REFUSED_NO_SOURCE;
        snprintf(err, err_len,
                 "view %s has no source to load from; its snapshots come from PushSnapshot", view);
    } else if (path_override != NULL &&
               !mat_source_path_allowed(&e->config.source, path_override, why, sizeof why)) {
        *refusal = MAT_REFUSED_PATH;
        snprintf(err, err_len, "view %s: %s", view, why);
    } else if ((t = _queued_for(view)) != NULL) {
        /* One request per view in the queue: a flood of them cannot fill it. */
        if (_same(t->path_override, path_override) && _same(t->stream_position, stream_position)) {
            t->refs++;
            if (joined != NULL) {
                *joined = true;
            }
        } else {
            t = NULL;
            *refusal = MAT_REFUSED_BUSY;
            snprintf(err, err_len,
                     "view %s: a load with another path or stream_position is already queued; "
                     "ask again once it has started (ListViews: loading)",
                     view);
        }
    } else if (mat.queued >= MAT_REQUEST_QUEUE_MAX) {
        *refusal = MAT_REFUSED_BUSY;
        snprintf(err, err_len, "view %s: too many loads queued (%d); try again later", view,
                 MAT_REQUEST_QUEUE_MAX);
    } else if ((t = calloc(1, sizeof(*t))) == NULL ||
               (path_override != NULL && (t->path_override = strdup(path_override)) == NULL) ||
               (stream_position != NULL &&
                (t->stream_position = strdup(stream_position)) == NULL)) {
        if (t != NULL) {
            free(t->path_override);
        }
        free(t);
        t = NULL;
        *refusal = MAT_REFUSED_NO_MEMORY;
        snprintf(err, err_len, "out of memory");
    } else {
        snprintf(t->view, sizeof t->view, "%s", view);
        t->refs = 2;
        if (mat.queue_tail != NULL) {
            mat.queue_tail->next = t;
        } else {
            mat.queue_head = t;
        }
        mat.queue_tail = t;
        mat.queued++;
        pthread_cond_broadcast(&mat.wake);
    }
    pthread_mutex_unlock(&mat.lock);
    return t;
}

int mat_request_commit(struct store_view *view, struct store_table *table,
                       const char *stream_position, mat_commit_done_fn done, void *ctx, char *err,
                       size_t err_len) {
    if (stream_position != NULL && strlen(stream_position) >= STORE_STREAM_POSITION_LEN) {
        snprintf(err, err_len, "view %s: stream position longer than %d bytes",
                 store_view_name(view), STORE_STREAM_POSITION_LEN - 1);
        return -1;
    }
    struct commit_job *job = calloc(1, sizeof(*job));
    if (job == NULL) {
        snprintf(err, err_len, "view %s: out of memory", store_view_name(view));
        return -1;
    }
    *job = (struct commit_job){.view = view, .table = table, .done = done, .ctx = ctx};
    snprintf(job->stream_position, sizeof job->stream_position, "%s",
             stream_position != NULL ? stream_position : "");
    pthread_mutex_lock(&mat.lock);
    if (!mat.running || mat.stop) {
        pthread_mutex_unlock(&mat.lock);
        free(job);
        snprintf(err, err_len, "view %s: the materializer is not running", store_view_name(view));
        return -1;
    }
    if (mat.commits_tail != NULL) {
        mat.commits_tail->next = job;
    } else {
        mat.commits_head = job;
    }
    mat.commits_tail = job;
    pthread_cond_broadcast(&mat.wake);
    pthread_mutex_unlock(&mat.lock);
    return 0;
}

bool mat_ticket_wait(struct mat_ticket *t, int64_t timeout_us, struct mat_load_result *result) {
    struct timespec deadline = clock_after(CLOCK_REALTIME, timeout_us);
    pthread_mutex_lock(&mat.lock);
    while (!t->done && timeout_us != 0) {
        if (timeout_us < 0) {
            pthread_cond_wait(&mat.done, &mat.lock);
        } else if (pthread_cond_timedwait(&mat.done, &mat.lock, &deadline) == ETIMEDOUT) {
            break;
        }
    }
    bool done = t->done;
    if (done && result != NULL) {
        *result = t->result;
    }
    pthread_mutex_unlock(&mat.lock);
    return done;
}

void mat_ticket_release(struct mat_ticket *t) {
    if (t == NULL) {
        return;
    }
    pthread_mutex_lock(&mat.lock);
    _ticket_put(t);
    pthread_mutex_unlock(&mat.lock);
}

bool mat_view_status(const char *view, struct mat_view_status *out) {
    pthread_mutex_lock(&mat.lock);
    struct entry *e = _find(view);
    if (e != NULL) {
        *out = e->status;
    }
    pthread_mutex_unlock(&mat.lock);
    return e != NULL;
}

bool mat_view_ready(const char *view) {
    pthread_mutex_lock(&mat.lock);
    struct entry *e = _find(view);
    bool has_source = e != NULL && e->status.has_source;
    struct store_catalog *catalog = mat.catalog;
    pthread_mutex_unlock(&mat.lock);
    if (!has_source || catalog == NULL) {
        return true;
    }
    struct store_view *sv = store_catalog_find(catalog, view);
    return sv == NULL || store_view_version(sv) > 0;
}

struct mat_view_status *mat_view_statuses(size_t *count) {
    pthread_mutex_lock(&mat.lock);
    struct mat_view_status *out = malloc((mat.nentries + 1) * sizeof(*out));
    *count = 0;
    if (out != NULL) {
        for (size_t i = 0; i < mat.nentries; i++) {
            out[i] = mat.entries[i].status;
        }
        *count = mat.nentries;
    }
    pthread_mutex_unlock(&mat.lock);
    return out;
}

struct store_catalog *mat_catalog(void) {
    pthread_mutex_lock(&mat.lock);
    struct store_catalog *catalog = mat.catalog;
    pthread_mutex_unlock(&mat.lock);
    return catalog;
}
