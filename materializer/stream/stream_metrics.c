/* The stream consumers' metrics: their declarations, per-view counters and the collector. */
#include "stream_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Fine below 10 ms, where the freshness target is; coarse up to minutes for a backlog. */
const double mat_stream_lag_bounds_s[MAT_STREAM_LAG_BOUNDS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025,
    0.05,   0.1,     0.25,   0.5,   1,     2.5,   5,     10,     60,   300,
};

const struct metric_def mat_stream_metric_defs[MAT_STREAM_M_COUNT] = {
    [MAT_STREAM_M_APPLIED] = {"fsd_stream_updates_applied_total", METRIC_COUNTER, "view",
                              "Valid stream entries applied to the view's live table with "
                              "upsert-if-newer (tombstones included; see "
                              "fsd_stream_updates_not_newer_total for those that changed "
                              "nothing)."},
    [MAT_STREAM_M_NOT_NEWER] = {"fsd_stream_updates_not_newer_total", METRIC_COUNTER, "view",
                                "Stream entries as old as or older than the entity's stored row: "
                                "ignored."},
    [MAT_STREAM_M_BAD] = {"fsd_stream_bad_entries_total", METRIC_COUNTER, "view",
                          "Stream entries skipped because they do not fit the view (logged with "
                          "their ID and why)."},
    [MAT_STREAM_M_RECONNECTS] = {"fsd_stream_reconnects_total", METRIC_COUNTER, "view",
                                 "Connections to Redis made after the first (the consumer "
                                 "resumes after its last applied entry)."},
    [MAT_STREAM_M_CONNECTED] = {"fsd_stream_connected", METRIC_GAUGE, "view",
                                "1 while the view's stream consumer is connected to Redis and "
                                "reading."},
    [MAT_STREAM_M_WAITING_SNAPSHOT] = {"fsd_stream_waiting_for_snapshot", METRIC_GAUGE, "view",
                                       "1 while the view's consumer (stream.start: snapshot) "
                                       "waits for a snapshot with a stream position before it "
                                       "reads anything."},
    [MAT_STREAM_M_VISIBLE_LAG] = {"fsd_stream_update_visible_lag_seconds", METRIC_HISTOGRAM, "view",
                                  "From a stream entry's event time to its row being visible to "
                                  "lookups."},
    [MAT_STREAM_M_LAG_ENTRIES] = {"fsd_stream_lag_entries", METRIC_GAUGE, "view",
                                  "Entries in the stream after the last one applied, sampled "
                                  "about once a second (XINFO STREAM; absent while unknown)."},
    [MAT_STREAM_M_LAST_ID] = {"fsd_stream_last_id_info", METRIC_GAUGE, "view,id",
                              "Always 1; the id label is the last stream entry ID the view "
                              "applied (or skipped)."},
};

void mat_stream_metrics_init(struct mat_stream_metrics *m, const char *view) {
    memset(m, 0, sizeof(*m));
    m->view = view;
    atomic_init(&m->lag_entries, -1);
    pthread_mutex_init(&m->id_lock, NULL);
}

void mat_stream_metrics_deinit(struct mat_stream_metrics *m) {
    pthread_mutex_destroy(&m->id_lock);
}

void mat_stream_metrics_observe_lag(struct mat_stream_metrics *m, int64_t lag_us) {
    if (lag_us < 0) {
        lag_us = 0;
    }
    double s = (double)lag_us / 1e6;
    size_t b = 0;
    while (b < MAT_STREAM_LAG_BOUNDS && s > mat_stream_lag_bounds_s[b]) {
        b++;
    }
    atomic_fetch_add_explicit(&m->lag_buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->lag_sum_us, (uint64_t)lag_us, memory_order_relaxed);
}

void mat_stream_metrics_set_last_id(struct mat_stream_metrics *m, struct mat_stream_id id) {
    char text[MAT_STREAM_ID_LEN];
    snprintf(text, sizeof text, "%" PRIu64 "-%" PRIu64, id.ms, id.seq);
    pthread_mutex_lock(&m->id_lock);
    memcpy(m->last_id, text, sizeof text);
    pthread_mutex_unlock(&m->id_lock);
}

static uint64_t _load(_Atomic uint64_t *v) {
    return atomic_load_explicit(v, memory_order_relaxed);
}

static const struct metric_def *_def(enum mat_stream_metric id) {
    return &mat_stream_metric_defs[id];
}

void mat_stream_collect(struct metric_writer *w, void *ctx) {
    const struct mat_stream_metrics_set *set = ctx;
    static const enum mat_stream_metric counters[] = {MAT_STREAM_M_APPLIED, MAT_STREAM_M_NOT_NEWER,
                                                      MAT_STREAM_M_BAD, MAT_STREAM_M_RECONNECTS};
    for (size_t c = 0; c < sizeof counters / sizeof counters[0]; c++) {
        metrics_write_family(w, _def(counters[c]));
        for (size_t i = 0; i < set->n; i++) {
            struct mat_stream_metrics *m = set->views[i];
            _Atomic uint64_t *v = counters[c] == MAT_STREAM_M_APPLIED     ? &m->applied
                                  : counters[c] == MAT_STREAM_M_NOT_NEWER ? &m->not_newer
                                  : counters[c] == MAT_STREAM_M_BAD       ? &m->bad
                                                                          : &m->reconnects;
            metrics_write_count(w, _def(counters[c]), (const char *[]){m->view}, _load(v));
        }
    }
    metrics_write_family(w, _def(MAT_STREAM_M_CONNECTED));
    for (size_t i = 0; i < set->n; i++) {
        struct mat_stream_metrics *m = set->views[i];
        metrics_write_count(w, _def(MAT_STREAM_M_CONNECTED), (const char *[]){m->view},
                            (uint64_t)atomic_load_explicit(&m->connected, memory_order_relaxed));
    }
    metrics_write_family(w, _def(MAT_STREAM_M_WAITING_SNAPSHOT));
    for (size_t i = 0; i < set->n; i++) {
        struct mat_stream_metrics *m = set->views[i];
        metrics_write_count(
            w, _def(MAT_STREAM_M_WAITING_SNAPSHOT), (const char *[]){m->view},
            (uint64_t)atomic_load_explicit(&m->waiting_snapshot, memory_order_relaxed));
    }
    metrics_write_family(w, _def(MAT_STREAM_M_VISIBLE_LAG));
    for (size_t i = 0; i < set->n; i++) {
        struct mat_stream_metrics *m = set->views[i];
        uint64_t cumulative[MAT_STREAM_LAG_BOUNDS + 1];
        uint64_t total = 0;
        for (size_t b = 0; b <= MAT_STREAM_LAG_BOUNDS; b++) {
            total += _load(&m->lag_buckets[b]);
            cumulative[b] = total;
        }
        metrics_write_histogram(w, _def(MAT_STREAM_M_VISIBLE_LAG), (const char *[]){m->view},
                                mat_stream_lag_bounds_s, MAT_STREAM_LAG_BOUNDS, cumulative,
                                (double)_load(&m->lag_sum_us) / 1e6);
    }
    metrics_write_family(w, _def(MAT_STREAM_M_LAG_ENTRIES));
    for (size_t i = 0; i < set->n; i++) {
        struct mat_stream_metrics *m = set->views[i];
        int64_t lag = atomic_load_explicit(&m->lag_entries, memory_order_relaxed);
        if (lag >= 0) {
            metrics_write_count(w, _def(MAT_STREAM_M_LAG_ENTRIES), (const char *[]){m->view},
                                (uint64_t)lag);
        }
    }
    metrics_write_family(w, _def(MAT_STREAM_M_LAST_ID));
    for (size_t i = 0; i < set->n; i++) {
        struct mat_stream_metrics *m = set->views[i];
        char id[MAT_STREAM_ID_LEN];
        pthread_mutex_lock(&m->id_lock);
        memcpy(id, m->last_id, sizeof id);
        pthread_mutex_unlock(&m->id_lock);
        if (id[0] != '\0') {
            metrics_write_count(w, _def(MAT_STREAM_M_LAST_ID), (const char *[]){m->view, id}, 1);
        }
    }
}
