#include "sweeper.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "common/log.h"
#include "store/catalog.h"
#include "store/rcu.h"
#include "store/table.h"
#include "common/clock.h"

static struct {
    struct store_catalog *catalog;
    struct sweeper_options options;
    pthread_t thread;
    bool running;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
    _Atomic uint64_t reclaimed;
} sweeper = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static const struct option_def sweeper_option_defs[] = {
    {
        .name = "sweep_interval_ms",
        .type = OPTION_UINT,
        .default_text = "1000",
        .min = 10,
        .max = 3600000,
        OPTION_UINT_AT(struct sweeper_options, interval_ms),
        .description = "How often, in milliseconds, the sweeper looks for expired rows.",
    },
    {
        .name = "expiry_grace",
        .type = OPTION_DURATION,
        .default_text = "1h",
        .min = 0,
        .max = 365 * 24 * 3600 * 1000000ull,
        OPTION_DURATION_AT(struct sweeper_options, expiry_grace_us),
        .description = "How long a row is kept after its view's ttl has passed before the "
                       "sweeper frees it.",
    },
};

const struct option_group sweeper_option_group = {
    "store", sweeper_option_defs, sizeof sweeper_option_defs / sizeof sweeper_option_defs[0], NULL};

const struct metric_def sweeper_metric_defs[SWEEPER_M_COUNT] = {
    [SWEEPER_M_RECLAIMED] = {"fsd_sweeper_reclaimed_total", METRIC_COUNTER, "",
                             "Expired rows and old tombstones the sweeper freed."},
};

static void _collect_metrics(struct metric_writer *w, void *ctx) {
    (void)ctx;
    metrics_write_count(w, &sweeper_metric_defs[SWEEPER_M_RECLAIMED], NULL, sweeper_reclaimed());
}

static void _sweep_once(void) {
    int64_t now_us = clock_wall_us();
    size_t nviews = store_catalog_count(sweeper.catalog);
    for (size_t i = 0; i < nviews; i++) {
        store_read_lock();
        struct store_view *view = store_catalog_at(sweeper.catalog, i);
        struct store_table *table = store_view_table(view);
        uint64_t removed = store_table_sweep(table, now_us, sweeper.options.expiry_grace_us,
                                             SWEEPER_SLOTS_PER_TICK);
        /* Hand this tick's retired rows to RCU now rather than when a batch fills. */
        store_table_flush_retired(table);
        store_read_unlock();
        if (removed > 0) {
            atomic_fetch_add_explicit(&sweeper.reclaimed, removed, memory_order_relaxed);
            log_debug("expired rows reclaimed", "view=%s rows=%llu", store_view_schema(view)->view,
                      (unsigned long long)removed);
        }
    }
}

static void *_run(void *arg) {
    (void)arg;
    store_rcu_thread_online();
    pthread_mutex_lock(&sweeper.lock);
    while (!sweeper.stop) {
        struct timespec until =
            clock_after(CLOCK_REALTIME, (int64_t)sweeper.options.interval_ms * 1000);
        int rc = 0;
        while (!sweeper.stop && rc != ETIMEDOUT) {
            rc = pthread_cond_timedwait(&sweeper.wake, &sweeper.lock, &until);
        }
        if (sweeper.stop) {
            break;
        }
        pthread_mutex_unlock(&sweeper.lock);
        _sweep_once();
        pthread_mutex_lock(&sweeper.lock);
    }
    pthread_mutex_unlock(&sweeper.lock);
    store_rcu_thread_offline();
    return NULL;
}

int sweeper_setup(struct store_catalog *catalog, const struct sweeper_options *options) {
    sweeper.catalog = catalog;
    sweeper.options = *options;
    sweeper.stop = false;
    if (options->interval_ms == 0) {
        return -1;
    }
    if (metrics_register(_collect_metrics, NULL) != 0) {
        return -1;
    }
    if (pthread_create(&sweeper.thread, NULL, _run, NULL) != 0) {
        metrics_unregister(_collect_metrics, NULL);
        return -1;
    }
    sweeper.running = true;
    return 0;
}

void sweeper_teardown(void) {
    if (!sweeper.running) {
        return;
    }
    metrics_unregister(_collect_metrics, NULL);
    pthread_mutex_lock(&sweeper.lock);
    sweeper.stop = true;
    pthread_cond_signal(&sweeper.wake);
    pthread_mutex_unlock(&sweeper.lock);
    pthread_join(sweeper.thread, NULL);
    sweeper.running = false;
}

uint64_t sweeper_reclaimed(void) {
    return atomic_load_explicit(&sweeper.reclaimed, memory_order_relaxed);
}
