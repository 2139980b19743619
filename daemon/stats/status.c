/*
 * GET /status (JSON) and the 1-minute window behind it and the page: counters are totals
 * since start, but "is this view failing now?" needs recent rates, so a timer on the stats
 * thread samples every view's counters every STATS_TICK_MS into a ring, and the window is
 * the current totals minus the oldest sample (about STATS_WINDOW_S seconds old).
 *
 *   ring: [t-60s][t-55s] ... [t-5s]  ──  now: totals  →  window = now - oldest
 */
#include "internal.h"

#include "common/json.h"
#include "common/text.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/grpc/grpc.h"
#include "daemon/rpc/rpc.h"
#include "common/clock.h"
#include "common/errors.h"
#include "durability/checkpoint.h"
#include "durability/wal.h"

#ifndef FSD_VERSION
#define FSD_VERSION "unknown"
#endif

#define WINDOW_SAMPLES (STATS_WINDOW_S * 1000 / STATS_TICK_MS + 1)

struct sample_view {
    uint64_t lookups;
    uint64_t not_found;
    uint64_t fallbacks;
    uint64_t staleness[RPC_STALENESS_BUCKETS + 1];
};

struct sample {
    int64_t at_us;             /* monotonic */
    size_t nviews;             /* views[i] is the view with store_view_index i */
    struct sample_view *views; /* NULL for an empty slot */
};

/* The stats thread alone touches the ring (the timer and the handlers share its loop). */
static struct {
    struct sample ring[WINDOW_SAMPLES];
    size_t next;
} window;

static uint64_t _fallbacks(const struct stats_view_summary *v) {
    uint64_t total = 0;
    for (int r = 0; r < RPC_FALLBACK_REASONS; r++) {
        total += v->fallbacks[r];
    }
    return total;
}

void stats_window_tick(struct store_catalog *catalog) {
    struct stats_view_summary *views;
    long n = stats_views_summarize(catalog, &views);
    if (n < 0) {
        return; /* out of memory: the window just gets older */
    }
    size_t nslots = 0;
    for (long i = 0; i < n; i++) {
        nslots = views[i].index + 1 > nslots ? views[i].index + 1 : nslots;
    }
    struct sample_view *sv = calloc(nslots ? nslots : 1, sizeof(*sv));
    if (sv == NULL) {
        free(views);
        return;
    }
    for (long i = 0; i < n; i++) {
        struct sample_view *s = &sv[views[i].index];
        s->lookups = views[i].lookups;
        s->not_found = views[i].not_found;
        s->fallbacks = _fallbacks(&views[i]);
        memcpy(s->staleness, views[i].staleness.buckets, sizeof s->staleness);
    }
    free(views);
    struct sample *slot = &window.ring[window.next];
    free(slot->views);
    *slot = (struct sample){.at_us = clock_mono_us(), .nviews = nslots, .views = sv};
    window.next = (window.next + 1) % WINDOW_SAMPLES;
}

void stats_window_get(const struct stats_view_summary *view, struct stats_window *out) {
    memset(out, 0, sizeof(*out));
    int64_t now = clock_mono_us();
    /* Oldest first: the slot after the newest. */
    for (size_t k = 0; k < WINDOW_SAMPLES; k++) {
        const struct sample *s = &window.ring[(window.next + k) % WINDOW_SAMPLES];
        if (s->views == NULL || view->index >= s->nviews) {
            continue;
        }
        if (now - s->at_us < STATS_TICK_MS * 1000 / 2) {
            break; /* too recent to say anything; keep the totals */
        }
        const struct sample_view *old = &s->views[view->index];
        out->seconds = (double)(now - s->at_us) / 1e6;
        out->lookups = view->lookups - old->lookups;
        out->not_found = view->not_found - old->not_found;
        out->fallbacks = _fallbacks(view) - old->fallbacks;
        for (size_t b = 0; b <= RPC_STALENESS_BUCKETS; b++) {
            out->staleness[b] = view->staleness.buckets[b] - old->staleness[b];
        }
        return;
    }
    out->lookups = view->lookups;
    out->not_found = view->not_found;
    out->fallbacks = _fallbacks(view);
    memcpy(out->staleness, view->staleness.buckets, sizeof out->staleness);
}

void stats_window_free(void) {
    for (size_t k = 0; k < WINDOW_SAMPLES; k++) {
        free(window.ring[k].views);
    }
    memset(&window, 0, sizeof window);
}

/* ---- /status ------------------------------------------------------------------------------ */

/* A number, or null when it is NaN or infinite (JSON has neither). */
static void _json_number(struct buf *b, double v) {
    if (isnan(v) || isinf(v)) {
        buf_puts(b, "null");
    } else {
        json_double(b, v);
    }
}

static void _staleness_json(struct buf *b, const uint64_t *cumulative) {
    buf_printf(b, "{\"count\":%llu,\"p50_seconds\":",
               (unsigned long long)cumulative[RPC_STALENESS_BUCKETS]);
    _json_number(b, stats_staleness_quantile(cumulative, 0.5));
    buf_puts(b, ",\"p90_seconds\":");
    _json_number(b, stats_staleness_quantile(cumulative, 0.9));
    buf_puts(b, ",\"p99_seconds\":");
    _json_number(b, stats_staleness_quantile(cumulative, 0.99));
    buf_puts(b, "}");
}

/* The view's checkpoints, or null without a data_dir. */
static void _checkpoint_json(struct buf *b, const char *view, int64_t now_us) {
    struct ckpt_view_status c;
    if (!ckpt_view_status(view, &c)) {
        buf_puts(b, "null");
        return;
    }
    buf_printf(b, "{\"on_disk\":%s,\"written_at\":", c.have ? "true" : "false");
    if (c.have) {
        char at[40];
        text_time_utc(at, sizeof at, c.written_at_us);
        json_cstring(b, at);
        buf_puts(b, ",\"age_seconds\":");
        _json_number(b, (double)(now_us - c.written_at_us) / 1e6);
    } else {
        buf_puts(b, "null,\"age_seconds\":null");
    }
    buf_printf(b,
               ",\"bytes\":%llu,\"rows\":%llu,\"duration_seconds\":", (unsigned long long)c.bytes,
               (unsigned long long)c.rows);
    _json_number(b, (double)c.duration_us / 1e6);
    buf_printf(b,
               ",\"written\":%llu,\"failed\":%llu,\"damaged_at_start\":%llu,"
               "\"restored_rows\":%llu,\"restore_seconds\":",
               (unsigned long long)c.ok, (unsigned long long)c.failed,
               (unsigned long long)c.damaged, (unsigned long long)c.restored_rows);
    _json_number(b, (double)c.restore_us / 1e6);
    buf_printf(b, ",\"failing\":%s,\"error\":", c.failing ? "true" : "false");
    json_cstring(b, c.failing ? c.error : NULL);
    buf_puts(b, "}");
}

/* The log and the start from store.data_dir, or null without one. */
static void _durability_json(struct buf *b) {
    if (!wal_enabled()) {
        buf_puts(b, "null");
        return;
    }
    static const char *const modes[] = {"none", "group", "always"};
    struct wal_status w;
    wal_status(&w);
    buf_puts(b, "{\"durability\":");
    json_cstring(b, modes[w.durability]);
    buf_printf(b,
               ",\"log\":{\"segments\":%llu,\"disk_bytes\":%llu,\"records\":%llu,"
               "\"fsyncs\":%llu,\"fsync_p99_seconds_at_most\":",
               (unsigned long long)w.segments, (unsigned long long)w.disk_bytes,
               (unsigned long long)w.records, (unsigned long long)w.fsyncs);
    _json_number(b, w.fsyncs > 0 ? w.fsync_p99_s : NAN);
    buf_printf(b, ",\"writes_failing\":%s,\"error\":", w.failing ? "true" : "false");
    json_cstring(b, w.failing ? w.error : NULL);
    buf_puts(b, "},\"start\":{\"restore_checkpoints_seconds\":");
    _json_number(b, (double)ckpt_restore_us() / 1e6);
    buf_puts(b, ",\"replay_log_seconds\":");
    _json_number(b, (double)w.replay_us / 1e6);
    buf_printf(b, ",\"replayed_batches\":%llu}}", (unsigned long long)w.replayed);
}

static void _view_json(struct buf *b, const struct stats_view_summary *v, int64_t now_us) {
    buf_puts(b, "{\"name\":");
    json_cstring(b, v->name);
    buf_printf(b, ",\"ready\":%s,\"source\":", v->ready ? "true" : "false");
    json_cstring(b, v->known ? v->source_type : NULL);
    buf_puts(b, ",\"ttl_seconds\":");
    _json_number(b, (double)v->ttl_us / 1e6);
    buf_puts(b, ",\"refresh_interval_seconds\":");
    _json_number(b, (double)v->refresh_interval_us / 1e6);
    buf_printf(b,
               ",\"rows\":%llu,\"tombstones\":%llu,\"memory_bytes\":%llu,"
               "\"snapshot_version\":%llu,\"last_load_time\":",
               (unsigned long long)v->table.rows, (unsigned long long)v->table.tombstones,
               (unsigned long long)v->table.memory_bytes, (unsigned long long)v->version);
    if (v->version > 0) {
        char at[40];
        text_time_utc(at, sizeof at, v->loaded_at_us);
        json_cstring(b, at);
        buf_puts(b, ",\"seconds_since_last_load\":");
        _json_number(b, (double)(now_us - v->loaded_at_us) / 1e6);
    } else {
        buf_puts(b, "null,\"seconds_since_last_load\":null");
    }
    buf_puts(b, ",\"last_load\":");
    if (v->load_reported) {
        char at[40];
        text_time_utc(at, sizeof at, v->load_at_us);
        buf_printf(b, "{\"result\":\"%s\",\"time\":", v->load_ok ? "ok" : "failed");
        json_cstring(b, at);
        buf_puts(b, ",\"error\":");
        json_cstring(b, v->load_ok ? NULL : v->load_error);
        buf_puts(b, "}");
    } else {
        buf_puts(b, "null");
    }
    uint64_t fallbacks = _fallbacks(v);
    buf_printf(b,
               ",\"lookups\":%llu,\"not_found\":%llu,\"fallbacks_total\":%llu,"
               "\"fallbacks\":{\"not_found\":%llu,\"null_value\":%llu,"
               "\"outside_max_age\":%llu},\"staleness\":",
               (unsigned long long)v->lookups, (unsigned long long)v->not_found,
               (unsigned long long)fallbacks,
               (unsigned long long)v->fallbacks[RPC_FALLBACK_NOT_FOUND],
               (unsigned long long)v->fallbacks[RPC_FALLBACK_NULL_VALUE],
               (unsigned long long)v->fallbacks[RPC_FALLBACK_OUTSIDE_MAX_AGE]);
    _staleness_json(b, v->staleness.buckets);
    struct stats_window w;
    stats_window_get(v, &w);
    buf_puts(b, ",\"recent\":{\"window_seconds\":");
    _json_number(b, round(w.seconds * 10) / 10);
    buf_printf(b, ",\"lookups\":%llu,\"not_found\":%llu,\"fallbacks\":%llu,\"staleness\":",
               (unsigned long long)w.lookups, (unsigned long long)w.not_found,
               (unsigned long long)w.fallbacks);
    _staleness_json(b, w.staleness);
    buf_puts(b, "},\"checkpoint\":");
    _checkpoint_json(b, v->name, now_us);
    buf_puts(b, "}");
}

static void _requests_json(struct buf *b) {
    size_t nmethods;
    rpc_methods(&nmethods);
    buf_puts(b, "{");
    for (size_t m = 0; m <= nmethods; m++) {
        struct grpc_method_stats ms;
        if (grpc_server_method_stats(m, &ms) != 0) {
            ms = (struct grpc_method_stats){0};
        }
        if (m == nmethods) {
            uint64_t any = 0;
            for (int c = 0; c < GRPC_CODE_COUNT; c++) {
                any += ms.calls[c];
            }
            if (any == 0) {
                break;
            }
        }
        if (m > 0) {
            buf_puts(b, ",");
        }
        json_cstring(b, grpc_server_method_name(m));
        buf_puts(b, ":{");
        bool first = true;
        for (int c = 0; c < GRPC_CODE_COUNT; c++) {
            if (ms.calls[c] == 0) {
                continue;
            }
            buf_printf(b, "%s\"%s\":%llu", first ? "" : ",", grpc_code_name((enum grpc_code)c),
                       (unsigned long long)ms.calls[c]);
            first = false;
        }
        buf_puts(b, "}");
    }
    buf_puts(b, "}");
}

static void _errors_json(struct buf *b) {
    buf_puts(b, "[");
    struct error_entry errors[ERRORS_KEPT];
    size_t kept = errors_recent(errors, ERRORS_KEPT, NULL); /* newest first */
    for (size_t k = 0; k < kept; k++) {
        const struct error_entry *e = &errors[k];
        char at[40];
        text_time_utc(at, sizeof at, e->at_us);
        buf_puts(b, k ? ",{\"time\":" : "{\"time\":");
        json_cstring(b, at);
        buf_puts(b, ",\"source\":");
        json_cstring(b, e->source);
        buf_puts(b, ",\"view\":");
        json_cstring(b, e->view[0] ? e->view : NULL);
        buf_puts(b, ",\"message\":");
        json_cstring(b, e->message);
        buf_puts(b, "}");
    }
    buf_puts(b, "]");
}

void stats_render_status(struct buf *b, const struct stats_view_summary *views, size_t nviews) {
    int64_t now_us = clock_wall_us();
    bool ready = true;
    for (size_t i = 0; i < nviews; i++) {
        ready = ready && views[i].ready;
    }
    char started[40], now[40];
    text_time_utc(started, sizeof started, stats_state.started_at_us);
    text_time_utc(now, sizeof now, now_us);
    buf_reset(b);
    buf_puts(b, "{\"version\":");
    json_cstring(b, FSD_VERSION);
    buf_puts(b, ",\"time\":");
    json_cstring(b, now);
    buf_puts(b, ",\"started_at\":");
    json_cstring(b, started);
    buf_puts(b, ",\"uptime_seconds\":");
    _json_number(b, round((double)(now_us - stats_state.started_at_us) / 1e5) / 10);
    buf_printf(b, ",\"ready\":%s,\"config\":", ready ? "true" : "false");
    pthread_mutex_lock(&stats_state.lock);
    buf_puts(b, stats_state.config_json ? stats_state.config_json : "null");
    pthread_mutex_unlock(&stats_state.lock);
    buf_puts(b, ",\"data_dir\":");
    _durability_json(b);
    buf_puts(b, ",\"requests\":");
    _requests_json(b);
    buf_puts(b, ",\"views\":[");
    for (size_t i = 0; i < nviews; i++) {
        if (i > 0) {
            buf_puts(b, ",");
        }
        _view_json(b, &views[i], now_us);
    }
    buf_puts(b, "],\"last_errors\":");
    _errors_json(b);
    buf_puts(b, "}\n");
}
