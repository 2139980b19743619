/*
 * The checkpointer: restores views from their checkpoints at start, then keeps the
 * checkpoints current on a thread of its own and lets the log shrink behind them.
 *
 *   start:  VIEW.ckpt (else VIEW.ckpt.prev) ─▶ store_view_restore ─▶ skip_through[view]
 *           (the log's replay then applies only what came after each view's checkpoint)
 *   thread: every CKPT_POLL_MS, each view that is due ─▶ ckpt_write
 *           ─▶ wal_drop_through(the oldest log sequence a kept checkpoint still needs)
 *
 * Two generations are kept per view and the log is kept back to the older one, so a newest
 * checkpoint found damaged at start falls back to the one before it with the log after it
 * (the damaged one is renamed VIEW.ckpt.damaged, so the next write does not make it the
 * previous generation).
 *
 * A view is due when it has no checkpoint, has a new snapshot, or had rows changed by live
 * writes and interval_us passed. A view without changes of its own is still rewritten, once
 * per interval, while its older generation holds back log segments that could otherwise go.
 * A failed write is retried after a backoff (1 s, doubling up to interval_us). Views added by
 * a reload are picked up at the next poll; until one has a checkpoint, no log is deleted. When
 * fsd stops, every view changed since its checkpoint gets a last one, so a clean restart
 * replays next to none of the log.
 */
#include "checkpoint.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <time.h>

#include "common/clock.h"
#include "common/errors.h"
#include "common/log.h"
#include "store/rcu.h"
#include "store/schema.h"
#include "store/table.h"
#include "wal.h"

static const struct option_def _defs[] = {
    {.name = "checkpoint_interval",
     .type = OPTION_DURATION,
     .default_text = "5m",
     .min = 1000000,
     .max = 7 * 86400ll * 1000000,
     OPTION_DURATION_AT(struct ckpt_options, interval_us),
     .description = "With data_dir set, how often a view that had live writes since its last "
                    "checkpoint gets a new one (each new snapshot gets one at once). Shorter: "
                    "a shorter log to replay at start, more disk writes."},
    {.name = "checkpoint_max_rate",
     .type = OPTION_SIZE,
     .default_text = "0",
     .min = 0,
     .max = UINT64_C(1) << 40,
     OPTION_SIZE_AT(struct ckpt_options, max_rate),
     .description = "Bytes a second a checkpoint is written at most; 0: as fast as it goes. "
                    "For a machine where checkpoints slow lookups (memory bandwidth, a small "
                    "disk shared with the log); the checkpoints at stop are not paced."},
};

const struct option_group ckpt_option_group = {
    .section = "store",
    .defs = _defs,
    .ndefs = sizeof(_defs) / sizeof(_defs[0]),
};

const struct metric_def ckpt_metric_defs[CKPT_M_COUNT] = {
    [CKPT_M_WRITES] = {"fsd_checkpoints_total", METRIC_COUNTER, "view,result",
                       "Checkpoints of the view's table written: ok or failed."},
    [CKPT_M_LAST_SUCCESS] = {"fsd_checkpoint_last_success_timestamp_seconds", METRIC_GAUGE, "view",
                             "Unix time the view's newest checkpoint was written."},
    [CKPT_M_DURATION] = {"fsd_checkpoint_last_duration_seconds", METRIC_GAUGE, "view",
                         "How long writing the view's newest checkpoint took."},
    [CKPT_M_BYTES] = {"fsd_checkpoint_bytes", METRIC_GAUGE, "view",
                      "Size of the view's newest checkpoint."},
    [CKPT_M_ROWS] = {"fsd_checkpoint_rows", METRIC_GAUGE, "view",
                     "Rows and tombstones in the view's newest checkpoint."},
    [CKPT_M_RESTORED_ROWS] = {"fsd_checkpoint_restored_rows", METRIC_GAUGE, "view",
                              "Rows and tombstones the view was restored with at start (0: it "
                              "had no usable checkpoint)."},
    [CKPT_M_DAMAGED] = {"fsd_checkpoint_damaged_total", METRIC_COUNTER, "view",
                        "Checkpoints of the view found damaged at start and not used (the "
                        "previous generation, or the source, served instead)."},
    [CKPT_M_RESTORE_SECONDS] = {"fsd_checkpoint_restore_seconds", METRIC_GAUGE, "view",
                                "How long restoring the view from its checkpoint took at start."},
};

/* What the checkpointer knows of one view. Written by the control thread at setup, then by
 * the checkpointer only; the metrics read the atomics. */
struct view_state {
    struct store_view *view;
    bool have;             /* a checkpoint of it exists (restored or written) */
    uint64_t version;      /* the snapshot version it holds */
    uint64_t changes;      /* the view's change count it holds (store_view_capture) */
    uint64_t log_seq;      /* the log sequence it holds */
    uint64_t prev_log_seq; /* the generation before it: what the log must still hold */
    int64_t written_mono_us;
    int64_t retry_at_mono_us, backoff_us; /* after a failed write */
    _Atomic uint64_t ok, failed, damaged, bytes, rows, restored_rows;
    _Atomic int64_t last_success_wall_us, duration_us, restore_us;
    bool failing;         /* logged once per run of failures; under ck.lock */
    char last_error[512]; /* under ck.lock */
};

static struct {
    bool enabled;
    struct ckpt_options options;
    char dir[1100];
    struct store_catalog *catalog;
    struct view_state *views; /* grown by the checkpointer under `lock`, read by _collect */
    size_t nviews;
    uint64_t dropped_through;
    int64_t restore_us; /* every view's, at start */
    pthread_t thread;
    bool running;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
} ck;

static void _collect(struct metric_writer *w, void *ctx);

/* Renames a damaged VIEW.ckpt to VIEW.ckpt.damaged (replacing an older one), kept for a look:
 * the next write would otherwise rename it to VIEW.ckpt.prev over the good generation. */
static void _set_aside(const char *view) {
    char from[1200], to[1300];
    snprintf(from, sizeof from, "%s/%s.ckpt", ck.dir, view);
    snprintf(to, sizeof to, "%s.damaged", from);
    if (rename(from, to) != 0 && errno != ENOENT) {
        log_error("could not set a damaged checkpoint aside", "file=%s error=%s", LOG_QUOTE(from),
                  LOG_QUOTE(strerror(errno)));
    }
}

int ckpt_setup(const struct ckpt_options *options, const char *data_dir,
               struct store_catalog *catalog, uint64_t **skip_through, char *err, size_t err_len) {
    *skip_through = NULL;
    memset(&ck, 0, sizeof ck);
    if (!wal_enabled()) {
        return 0;
    }
    ck.options = *options;
    ck.catalog = catalog;
    snprintf(ck.dir, sizeof ck.dir, "%s/checkpoints", data_dir);
    if (mkdir(ck.dir, 0755) != 0 && errno != EEXIST) {
        return errors_set(err, err_len, "store.data_dir: mkdir %s: %s", ck.dir, strerror(errno));
    }
    int64_t restore_started = clock_mono_us();
    ck.nviews = store_catalog_count(catalog);
    ck.views = calloc(ck.nviews ? ck.nviews : 1, sizeof(*ck.views));
    uint64_t *skip = calloc(ck.nviews ? ck.nviews : 1, sizeof(*skip));
    if (ck.views == NULL || skip == NULL) {
        free(ck.views);
        free(skip);
        return errors_set(err, err_len, "out of memory");
    }
    for (size_t i = 0; i < ck.nviews; i++) {
        struct view_state *v = &ck.views[i];
        v->view = store_catalog_at(catalog, i);
        const char *name = store_view_name(v->view);
        int64_t started = clock_mono_us();
        struct store_table *table = NULL;
        struct ckpt_info info;
        char why[512];
        enum ckpt_load_result r = CKPT_NONE;
        for (int generation = 0; generation < 2 && table == NULL; generation++) {
            store_read_lock();
            const struct store_schema *schema = store_view_schema(v->view);
            r = ckpt_load(ck.dir, schema, generation == 1, store_catalog_shards(catalog), &table,
                          &info, why, sizeof why);
            store_read_unlock();
            if (r == CKPT_DAMAGED) {
                log_error("checkpoint damaged: not used", "view=%s generation=%s error=%s",
                          LOG_QUOTE(name), generation == 0 ? "newest" : "previous", LOG_QUOTE(why));
                errors_record("checkpoint", name, why);
                atomic_fetch_add(&v->damaged, 1);
                if (generation == 0) {
                    _set_aside(name);
                }
            } else if (r == CKPT_LAYOUT_CHANGED) {
                log_warn("checkpoint written for other keys or features: not used; the view "
                         "loads from its source",
                         "view=%s", LOG_QUOTE(name));
                break;
            } else if (r == CKPT_NONE && generation == 0) {
                continue; /* a crash between its renames leaves only .prev */
            }
        }
        if (table == NULL) {
            continue;
        }
        store_view_restore(v->view, table, info.snapshot_version, info.loaded_at_us,
                           info.stream_position);
        store_view_set_stream_applied(v->view, info.stream_applied);
        int64_t took = clock_mono_us() - started;
        v->have = true;
        v->version = info.snapshot_version;
        v->log_seq = info.log_seq;
        v->written_mono_us = clock_mono_us();
        skip[i] = info.log_seq;
        atomic_store(&v->restored_rows, info.rows);
        atomic_store(&v->restore_us, took);
        atomic_store(&v->rows, info.rows);
        atomic_store(&v->bytes, info.bytes);
        atomic_store(&v->last_success_wall_us, info.written_at_us);
        log_info("restored from its checkpoint",
                 "view=%s rows=%" PRIu64 " version=%" PRIu64 " log_seq=%" PRIu64 " ms=%" PRId64,
                 LOG_QUOTE(name), info.rows, info.snapshot_version, info.log_seq, took / 1000);
    }
    ck.restore_us = clock_mono_us() - restore_started;
    pthread_mutex_init(&ck.lock, NULL);
    if (metrics_register(_collect, NULL) != 0) {
        pthread_mutex_destroy(&ck.lock);
        free(ck.views);
        ck.views = NULL;
        ck.nviews = 0;
        free(skip);
        return errors_set(err, err_len, "out of memory");
    }
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&ck.wake, &attr);
    pthread_condattr_destroy(&attr);
    ck.enabled = true;
    *skip_through = skip;
    return 0;
}

/* Writes one view's checkpoint if it is due (`stopping`: if it changed at all since its
 * last one, so the next start replays no log). Returns whether it wrote one. */
static bool _maybe_write(struct view_state *v, int64_t now_us, bool stopping) {
    if (now_us < v->retry_at_mono_us && !stopping) {
        return false;
    }
    uint64_t seq = wal_applied_seq(); /* before the table is read: it holds all up to seq */
    bool interval_passed = stopping || now_us - v->written_mono_us >= ck.options.interval_us;
    bool own_changes = store_view_changes(v->view) != v->changes;
    /* Rewriting moves its older generation up to its newer one's place in the log. */
    bool holds_log_back = v->prev_log_seq < v->log_seq && v->prev_log_seq < wal_segment_first_seq();
    bool due = !v->have || store_view_version(v->view) != v->version ||
               (interval_passed && (own_changes || (holds_log_back && !stopping)));
    if (!due) {
        return false;
    }
    struct store_view_capture now;
    store_view_capture(v->view, &now);
    const char *name = store_view_name(v->view);
    uint64_t changes = now.changes;
    struct ckpt_info info;
    char err[512];
    int64_t started = clock_mono_us();
    uint64_t max_rate = stopping ? 0 : ck.options.max_rate;
    if (ckpt_write_captured(ck.dir, name, &now, seq, max_rate, &info, err, sizeof err) != 0) {
        atomic_fetch_add(&v->failed, 1);
        v->backoff_us = v->backoff_us == 0 ? CKPT_RETRY_FIRST_US : v->backoff_us * 2;
        if (v->backoff_us > ck.options.interval_us) {
            v->backoff_us = ck.options.interval_us;
        }
        v->retry_at_mono_us = now_us + v->backoff_us;
        if (!v->failing) {
            log_error("checkpoint failed; the log keeps everything it holds; retrying",
                      "view=%s error=%s", LOG_QUOTE(name), LOG_QUOTE(err));
            errors_record("checkpoint", name, err);
        }
        pthread_mutex_lock(&ck.lock);
        v->failing = true;
        snprintf(v->last_error, sizeof v->last_error, "%s", err);
        pthread_mutex_unlock(&ck.lock);
        return false;
    }
    int64_t took = clock_mono_us() - started;
    if (v->failing) {
        log_info("checkpoint written again", "view=%s", LOG_QUOTE(name));
        pthread_mutex_lock(&ck.lock);
        v->failing = false;
        pthread_mutex_unlock(&ck.lock);
    }
    v->backoff_us = 0;
    v->retry_at_mono_us = 0;
    v->prev_log_seq = v->have ? v->log_seq : 0;
    v->have = true;
    v->version = info.snapshot_version;
    v->changes = changes;
    v->log_seq = seq;
    v->written_mono_us = now_us;
    atomic_fetch_add(&v->ok, 1);
    atomic_store(&v->rows, info.rows);
    atomic_store(&v->bytes, info.bytes);
    atomic_store(&v->duration_us, took);
    atomic_store(&v->last_success_wall_us, info.written_at_us);
    log_debug("checkpoint written", "view=%s rows=%" PRIu64 " bytes=%" PRIu64 " ms=%" PRId64,
              LOG_QUOTE(name), info.rows, info.bytes, took / 1000);
    return true;
}

/* Takes in views a reload added since the last poll. Returns -1 when out of memory (they are
 * then taken in at a later poll, and no log is deleted meanwhile). */
static int _take_in_new_views(void) {
    store_read_lock(); /* the catalog's list of views is freed through RCU */
    size_t n = store_catalog_count(ck.catalog);
    store_read_unlock();
    if (n <= ck.nviews) {
        return 0;
    }
    pthread_mutex_lock(&ck.lock);
    struct view_state *grown = realloc(ck.views, n * sizeof(*grown));
    if (grown == NULL) {
        pthread_mutex_unlock(&ck.lock);
        return -1;
    }
    memset(grown + ck.nviews, 0, (n - ck.nviews) * sizeof(*grown));
    store_read_lock();
    for (size_t i = ck.nviews; i < n; i++) {
        grown[i].view = store_catalog_at(ck.catalog, i);
    }
    store_read_unlock();
    ck.views = grown;
    ck.nviews = n;
    pthread_mutex_unlock(&ck.lock);
    return 0;
}

static void *_run(void *arg) {
    (void)arg;
    /* Background work: on a busy machine the workers' lookups come first. Linux applies a
     * nice value to one thread when given its thread id. */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), CKPT_NICE) != 0) {
        log_debug("checkpointer: could not lower its priority", "error=%s",
                  LOG_QUOTE(strerror(errno)));
    }
    store_rcu_thread_online();
    pthread_mutex_lock(&ck.lock);
    while (!ck.stopping) {
        pthread_mutex_unlock(&ck.lock);
        int64_t now = clock_mono_us();
        uint64_t keep_from = UINT64_MAX; /* the oldest log sequence a kept checkpoint needs */
        if (_take_in_new_views() != 0) {
            keep_from = 0;
        }
        for (size_t i = 0; i < ck.nviews; i++) {
            _maybe_write(&ck.views[i], now, false);
            uint64_t needs = ck.views[i].have ? ck.views[i].prev_log_seq : 0;
            keep_from = needs < keep_from ? needs : keep_from;
        }
        /* A view added while the views were written may already have rows in the log. Rows
         * logged after this count are numbered past keep_from: only those before matter. */
        store_read_lock();
        bool added = store_catalog_count(ck.catalog) != ck.nviews;
        store_read_unlock();
        if (!added && keep_from != UINT64_MAX && keep_from > ck.dropped_through) {
            char err[256];
            if (wal_drop_through(keep_from, err, sizeof err) >= 0) {
                ck.dropped_through = keep_from;
            } else {
                log_error("could not remove log segments the checkpoints hold", "error=%s",
                          LOG_QUOTE(err));
            }
        }
        pthread_mutex_lock(&ck.lock);
        int64_t until = clock_mono_us() + CKPT_POLL_MS * 1000ll;
        struct timespec ts = {.tv_sec = until / 1000000, .tv_nsec = (until % 1000000) * 1000};
        while (!ck.stopping && clock_mono_us() < until) {
            pthread_cond_timedwait(&ck.wake, &ck.lock, &ts);
        }
    }
    pthread_mutex_unlock(&ck.lock);
    /* Stopping: what changed since each view's checkpoint is written now, so a clean restart
     * replays next to none of the log (calls have stopped; batches the log writer still
     * applies are in the log, and replayed). */
    int64_t started = clock_mono_us();
    size_t written = 0;
    _take_in_new_views();
    for (size_t i = 0; i < ck.nviews; i++) {
        written += _maybe_write(&ck.views[i], clock_mono_us(), true);
    }
    if (written > 0) {
        log_info("checkpoints written before stopping", "views=%zu ms=%" PRId64, written,
                 (clock_mono_us() - started) / 1000);
    }
    store_rcu_thread_offline();
    return NULL;
}

int ckpt_start(char *err, size_t err_len) {
    if (!ck.enabled) {
        return 0;
    }
    if (pthread_create(&ck.thread, NULL, _run, NULL) != 0) {
        return errors_set(err, err_len, "cannot start the checkpointer thread");
    }
    ck.running = true;
    return 0;
}

void ckpt_teardown(void) {
    if (ck.running) {
        pthread_mutex_lock(&ck.lock);
        ck.stopping = true;
        pthread_cond_signal(&ck.wake);
        pthread_mutex_unlock(&ck.lock);
        pthread_join(ck.thread, NULL);
        ck.running = false;
    }
    if (ck.enabled) {
        metrics_unregister(_collect, NULL);
        pthread_cond_destroy(&ck.wake);
        pthread_mutex_destroy(&ck.lock);
    }
    free(ck.views);
    ck.views = NULL;
    ck.enabled = false;
}

bool ckpt_view_status(const char *view, struct ckpt_view_status *out) {
    memset(out, 0, sizeof *out);
    if (!ck.enabled) {
        return false;
    }
    bool found = false;
    pthread_mutex_lock(&ck.lock);
    for (size_t i = 0; i < ck.nviews && !found; i++) {
        struct view_state *v = &ck.views[i];
        if (strcmp(store_view_name(v->view), view) != 0) {
            continue;
        }
        found = true;
        out->ok = atomic_load(&v->ok);
        out->failed = atomic_load(&v->failed);
        out->damaged = atomic_load(&v->damaged);
        out->bytes = atomic_load(&v->bytes);
        out->rows = atomic_load(&v->rows);
        out->written_at_us = atomic_load(&v->last_success_wall_us);
        out->have = out->written_at_us > 0;
        out->duration_us = atomic_load(&v->duration_us);
        out->restored_rows = atomic_load(&v->restored_rows);
        out->restore_us = atomic_load(&v->restore_us);
        out->failing = v->failing;
        snprintf(out->error, sizeof out->error, "%s", v->failing ? v->last_error : "");
    }
    pthread_mutex_unlock(&ck.lock);
    return found;
}

int64_t ckpt_restore_us(void) {
    return ck.restore_us;
}

static void _collect(struct metric_writer *w, void *ctx) {
    (void)ctx;
    pthread_mutex_lock(&ck.lock); /* the checkpointer may grow ck.views */
    const struct metric_def *d = ckpt_metric_defs;
    for (int id = 0; id < CKPT_M_COUNT; id++) {
        metrics_write_family(w, &d[id]);
        for (size_t i = 0; i < ck.nviews; i++) {
            struct view_state *v = &ck.views[i];
            const char *name = store_view_name(v->view);
            switch ((enum ckpt_metric)id) {
            case CKPT_M_WRITES:
                metrics_write_count(w, &d[id], (const char *[]){name, "ok"}, atomic_load(&v->ok));
                metrics_write_count(w, &d[id], (const char *[]){name, "failed"},
                                    atomic_load(&v->failed));
                break;
            case CKPT_M_LAST_SUCCESS:
                if (atomic_load(&v->last_success_wall_us) > 0) {
                    metrics_write_value(w, &d[id], (const char *[]){name},
                                        (double)atomic_load(&v->last_success_wall_us) / 1e6);
                }
                break;
            case CKPT_M_DURATION:
                metrics_write_value(w, &d[id], (const char *[]){name},
                                    (double)atomic_load(&v->duration_us) / 1e6);
                break;
            case CKPT_M_BYTES:
                metrics_write_count(w, &d[id], (const char *[]){name}, atomic_load(&v->bytes));
                break;
            case CKPT_M_ROWS:
                metrics_write_count(w, &d[id], (const char *[]){name}, atomic_load(&v->rows));
                break;
            case CKPT_M_RESTORED_ROWS:
                metrics_write_count(w, &d[id], (const char *[]){name},
                                    atomic_load(&v->restored_rows));
                break;
            case CKPT_M_RESTORE_SECONDS:
                metrics_write_value(w, &d[id], (const char *[]){name},
                                    (double)atomic_load(&v->restore_us) / 1e6);
                break;
            case CKPT_M_DAMAGED:
                metrics_write_count(w, &d[id], (const char *[]){name}, atomic_load(&v->damaged));
                break;
            case CKPT_M_COUNT:
                break;
            }
        }
    }
    pthread_mutex_unlock(&ck.lock);
}
