/*
 * The declaration-driven Prometheus text writer (exposition format 0.0.4), the collector
 * registry, and the stats module's own metric declarations.
 */
#include "internal.h"

#include "common/text.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define M(id, name, type, labels, help) [id] = {name, type, labels, help}

const struct stats_metric_def stats_metric_defs[STATS_M_COUNT] = {
    M(STATS_M_REQUESTS, "fsd_requests_total", STATS_COUNTER, "method,code",
      "gRPC requests finished, by method (\"unknown\" for paths no method serves) and gRPC "
      "status code name (OK, INVALID_ARGUMENT, ...). Requests the client cancelled count as "
      "CANCELLED."),
    M(STATS_M_REQUEST_DURATION, "fsd_request_duration_seconds", STATS_HISTOGRAM, "method",
      "Time from a request's HEADERS being read to its handler finishing, by method."),
    M(STATS_M_BATCH_SIZE, "fsd_batch_size", STATS_HISTOGRAM, "",
      "Entities per GetFeatures request that passed validation."),
    M(STATS_M_BUDGET_EXCEEDED, "fsd_budget_exceeded_total", STATS_COUNTER, "",
      "GetFeatures requests failed with DEADLINE_EXCEEDED because their latency budget was "
      "spent before the lookup started."),
    M(STATS_M_READY, "fsd_ready", STATS_GAUGE, "",
      "1 when every view with a source has loaded its first snapshot (what /readyz reports), "
      "else 0."),
    M(STATS_M_VIEW_READY, "fsd_view_ready", STATS_GAUGE, "view",
      "1 when the view can serve: it has no source, or its first snapshot has loaded."),
    M(STATS_M_VIEW_ROWS, "fsd_view_rows", STATS_GAUGE, "view",
      "Live rows (entities) in the view's current table, tombstones excluded."),
    M(STATS_M_VIEW_TOMBSTONES, "fsd_view_tombstones", STATS_GAUGE, "view",
      "Deleted entities remembered so that older updates cannot bring them back."),
    M(STATS_M_VIEW_MEMORY, "fsd_view_memory_bytes", STATS_GAUGE, "view",
      "Bytes held by the view's current table: rows, arenas, indexes and the table itself."),
    M(STATS_M_VIEW_DEAD_BYTES, "fsd_view_dead_bytes", STATS_GAUGE, "view",
      "Snapshot arena bytes of rows since replaced by updates, freed with the snapshot."),
    M(STATS_M_VIEW_VERSION, "fsd_view_snapshot_version", STATS_GAUGE, "view",
      "Version of the view's current snapshot: 0 before the first load, then +1 per load."),
    M(STATS_M_VIEW_LAST_LOAD, "fsd_view_last_load_timestamp_seconds", STATS_GAUGE, "view",
      "Unix time the load of the current snapshot started; absent before the first load."),
    M(STATS_M_VIEW_SINCE_LOAD, "fsd_view_seconds_since_last_load", STATS_GAUGE, "view",
      "Seconds since the load of the current snapshot started; absent before the first load "
      "(fsd_view_ready is 0 then)."),
    M(STATS_M_VIEW_TTL, "fsd_view_ttl_seconds", STATS_GAUGE, "view",
      "Rows older than this are served as OUTSIDE_MAX_AGE; 0 = never stale."),
    M(STATS_M_VIEW_REFRESH, "fsd_view_refresh_interval_seconds", STATS_GAUGE, "view",
      "Configured refresh_interval of the view's source; 0 = loaded on demand or no source."),
    M(STATS_M_VIEW_LOOKUPS, "fsd_view_lookups_total", STATS_COUNTER, "view",
      "Entities looked up in the view by GetFeatures."),
    M(STATS_M_VIEW_NOT_FOUND, "fsd_view_not_found_total", STATS_COUNTER, "view",
      "Entities looked up in the view that had no row."),
    M(STATS_M_STALENESS, "fsd_served_row_staleness_seconds", STATS_HISTOGRAM, "view",
      "Age (now minus event time) of each row GetFeatures found, rows past the view's ttl "
      "included; one observation per entity and view."),
    M(STATS_M_FALLBACKS, "fsd_default_fallbacks_total", STATS_COUNTER, "view,feature,reason",
      "Feature values served as the feature's default instead of a stored value, by reason: "
      "not_found (no row), null_value (the row's value is null), outside_max_age (the row is "
      "older than the view's ttl). Features without a default are not counted."),
    M(STATS_M_SWEEPER_RECLAIMED, "fsd_sweeper_reclaimed_total", STATS_COUNTER, "",
      "Expired rows and old tombstones the sweeper freed."),
    M(STATS_M_BUILD_INFO, "fsd_build_info", STATS_GAUGE, "version",
      "Always 1; the version label says which fsd build runs."),
    M(STATS_M_START_TIME, "fsd_process_start_time_seconds", STATS_GAUGE, "",
      "Unix time the process started."),
    M(STATS_M_CPU, "fsd_process_cpu_seconds_total", STATS_COUNTER, "",
      "User and system CPU time the process used."),
    M(STATS_M_RESIDENT, "fsd_process_resident_memory_bytes", STATS_GAUGE, "",
      "Resident set size (/proc/self/statm)."),
    M(STATS_M_OPEN_FDS, "fsd_process_open_fds", STATS_GAUGE, "",
      "Open file descriptors: sockets, listeners, event fds, files."),
    M(STATS_M_JEMALLOC_ALLOCATED, "fsd_jemalloc_allocated_bytes", STATS_GAUGE, "",
      "Bytes the application has allocated and not freed (jemalloc stats.allocated)."),
    M(STATS_M_JEMALLOC_ACTIVE, "fsd_jemalloc_active_bytes", STATS_GAUGE, "",
      "Bytes in pages the allocator has handed out (jemalloc stats.active)."),
    M(STATS_M_JEMALLOC_RESIDENT, "fsd_jemalloc_resident_bytes", STATS_GAUGE, "",
      "Bytes in physically resident pages the allocator maps (jemalloc stats.resident)."),
    M(STATS_M_JEMALLOC_METADATA, "fsd_jemalloc_metadata_bytes", STATS_GAUGE, "",
      "Bytes of the allocator's own metadata (jemalloc stats.metadata)."),
    M(STATS_M_STATS_REQUESTS, "fsd_stats_http_requests_total", STATS_COUNTER, "path,code",
      "Requests to the stats port, by route (\"other\" for unknown paths) and HTTP status."),
};

/* ---- writer ------------------------------------------------------------------------------ */

/* A sample value as Prometheus reads it: shortest exact digits, NaN, +Inf, -Inf. */
static void _write_double(struct buf *b, double v) {
    if (isnan(v)) {
        buf_puts(b, "NaN");
    } else if (isinf(v)) {
        buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    } else {
        char text[40];
        text_double(text, sizeof text, v);
        buf_puts(b, text);
    }
}

static const char *_type_name(enum stats_metric_type type) {
    switch (type) {
    case STATS_COUNTER:
        return "counter";
    case STATS_GAUGE:
        return "gauge";
    case STATS_HISTOGRAM:
        return "histogram";
    }
    return "untyped";
}

/* HELP text escapes only backslash and newline (label values also escape the quote). */
static void _escape(struct buf *b, const char *s, bool quote) {
    size_t start = 0, i = 0;
    for (; s[i]; i++) {
        const char *rep = s[i] == '\\'             ? "\\\\"
                          : s[i] == '\n'           ? "\\n"
                          : (quote && s[i] == '"') ? "\\\""
                                                   : NULL;
        if (rep != NULL) {
            buf_add(b, s + start, i - start);
            buf_puts(b, rep);
            start = i + 1;
        }
    }
    buf_add(b, s + start, i - start);
}

void stats_write_family(struct stats_writer *w, const struct stats_metric_def *def) {
    if (w->family != NULL && strcmp(w->family, def->name) == 0) {
        return;
    }
    w->family = def->name;
    buf_printf(w->buf, "# HELP %s ", def->name);
    _escape(w->buf, def->help, false);
    buf_printf(w->buf, "\n# TYPE %s %s\n", def->name, _type_name(def->type));
}

/*
 * Writes `name{l1="v1",...,extra_name="extra_value"} ` — the braces only when there is a
 * label. `suffix` goes after the family name (_bucket, _sum, _count).
 */
static void _series(struct stats_writer *w, const struct stats_metric_def *def, const char *suffix,
                    const char *const *label_values, const char *extra_name,
                    const char *extra_value) {
    struct buf *b = w->buf;
    buf_puts(b, def->name);
    buf_puts(b, suffix);
    const char *names = def->labels;
    bool any = false;
    for (size_t i = 0; names[0] != '\0'; i++) {
        size_t len = strcspn(names, ",");
        buf_add(b, any ? "," : "{", 1);
        buf_add(b, names, len);
        buf_puts(b, "=\"");
        _escape(b, label_values != NULL && label_values[i] != NULL ? label_values[i] : "", true);
        buf_add(b, "\"", 1);
        any = true;
        names += len + (names[len] == ',');
    }
    if (extra_name != NULL) {
        buf_add(b, any ? "," : "{", 1);
        buf_printf(b, "%s=\"%s\"", extra_name, extra_value);
        any = true;
    }
    buf_puts(b, any ? "} " : " ");
}

void stats_write_value(struct stats_writer *w, const struct stats_metric_def *def,
                       const char *const *label_values, double value) {
    stats_write_family(w, def);
    _series(w, def, "", label_values, NULL, NULL);
    _write_double(w->buf, value);
    buf_add(w->buf, "\n", 1);
}

void stats_write_count(struct stats_writer *w, const struct stats_metric_def *def,
                       const char *const *label_values, uint64_t value) {
    stats_write_family(w, def);
    _series(w, def, "", label_values, NULL, NULL);
    buf_printf(w->buf, "%" PRIu64 "\n", value);
}

void stats_write_histogram(struct stats_writer *w, const struct stats_metric_def *def,
                           const char *const *label_values, const double *bounds, size_t nbounds,
                           const uint64_t *cumulative, double sum) {
    stats_write_family(w, def);
    for (size_t i = 0; i <= nbounds; i++) {
        char le[40] = "+Inf";
        if (i < nbounds) {
            text_double(le, sizeof le, bounds[i]);
        }
        _series(w, def, "_bucket", label_values, "le", le);
        buf_printf(w->buf, "%" PRIu64 "\n", cumulative[i]);
    }
    _series(w, def, "_sum", label_values, NULL, NULL);
    _write_double(w->buf, sum);
    buf_add(w->buf, "\n", 1);
    _series(w, def, "_count", label_values, NULL, NULL);
    buf_printf(w->buf, "%" PRIu64 "\n", cumulative[nbounds]);
}

/* ---- collector registry ------------------------------------------------------------------ */

struct collector {
    stats_collector_fn fn;
    void *ctx;
};

/*
 * Not tied to setup: a module may register before the stats port starts or after it stops.
 * The lock is held through a scrape, so unregister returning means the collector is idle.
 */
static struct {
    pthread_mutex_t lock;
    struct collector *list;
    size_t count;
    size_t cap;
} registry = {.lock = PTHREAD_MUTEX_INITIALIZER};

int stats_register_collector(stats_collector_fn fn, void *ctx) {
    pthread_mutex_lock(&registry.lock);
    if (registry.count == registry.cap) {
        size_t cap = registry.cap ? registry.cap * 2 : 16;
        struct collector *list = realloc(registry.list, cap * sizeof(*list));
        if (list == NULL) {
            pthread_mutex_unlock(&registry.lock);
            return -1;
        }
        registry.list = list;
        registry.cap = cap;
    }
    registry.list[registry.count++] = (struct collector){fn, ctx};
    pthread_mutex_unlock(&registry.lock);
    return 0;
}

void stats_unregister_collector(stats_collector_fn fn, void *ctx) {
    pthread_mutex_lock(&registry.lock);
    for (size_t i = 0; i < registry.count; i++) {
        if (registry.list[i].fn == fn && registry.list[i].ctx == ctx) {
            memmove(&registry.list[i], &registry.list[i + 1],
                    (registry.count - i - 1) * sizeof(registry.list[0]));
            registry.count--;
            break;
        }
    }
    if (registry.count == 0) {
        /* Nothing left (teardown): give the memory back so leak checkers stay quiet. */
        free(registry.list);
        registry.list = NULL;
        registry.cap = 0;
    }
    pthread_mutex_unlock(&registry.lock);
}

void stats_collect_all(struct buf *buf) {
    buf_reset(buf);
    struct stats_writer w = {.buf = buf, .family = NULL};
    pthread_mutex_lock(&registry.lock);
    for (size_t i = 0; i < registry.count; i++) {
        registry.list[i].fn(&w, registry.list[i].ctx);
    }
    pthread_mutex_unlock(&registry.lock);
}

int stats_collectors_setup(struct store_catalog *catalog) {
    if (stats_register_collector(stats_collect_grpc, NULL) != 0 ||
        stats_register_collector(stats_collect_rpc, NULL) != 0 ||
        stats_register_collector(stats_collect_store, catalog) != 0 ||
        stats_register_collector(stats_collect_materializer, catalog) != 0 ||
        stats_register_collector(stats_collect_sweeper, NULL) != 0 ||
        stats_register_collector(stats_collect_process, NULL) != 0 ||
        stats_register_collector(stats_collect_http, NULL) != 0) {
        stats_collectors_teardown(catalog);
        return -1;
    }
    return 0;
}

void stats_collectors_teardown(struct store_catalog *catalog) {
    stats_unregister_collector(stats_collect_grpc, NULL);
    stats_unregister_collector(stats_collect_rpc, NULL);
    stats_unregister_collector(stats_collect_store, catalog);
    stats_unregister_collector(stats_collect_materializer, catalog);
    stats_unregister_collector(stats_collect_sweeper, NULL);
    stats_unregister_collector(stats_collect_process, NULL);
    stats_unregister_collector(stats_collect_http, NULL);
}
