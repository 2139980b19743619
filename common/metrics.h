#pragma once
/*
 * Metrics: how a module declares its metrics, and the registry the stats port walks to
 * answer a scrape (Prometheus text format 0.0.4).
 *
 * A module declares each of its metric families once, in one table indexed by an enum of its
 * header, and registers one collector that writes its families from its own counters:
 *
 *   enum sweeper_metric { SWEEPER_M_RECLAIMED, SWEEPER_M_COUNT };            (sweeper.h)
 *   const struct metric_def sweeper_metric_defs[SWEEPER_M_COUNT] = {         (sweeper.c)
 *       [SWEEPER_M_RECLAIMED] = {"fsd_sweeper_reclaimed_total", METRIC_COUNTER, "",
 *                                "Expired rows and old tombstones the sweeper freed."},
 *   };
 *   static void _collect(struct metric_writer *w, void *ctx) {
 *       metrics_write_count(w, &sweeper_metric_defs[SWEEPER_M_RECLAIMED], NULL, reclaimed);
 *   }
 *   setup: metrics_register(_collect, NULL);   teardown: metrics_unregister(_collect, NULL);
 *
 *   GET /metrics ─▶ metrics_collect_all ─▶ each collector, in registration order ─▶ text
 *
 * The `# HELP` and `# TYPE` lines come from the declaration. A family belongs to one module
 * and one collector, which writes its samples together (the text format requires that).
 * Hot-path counters stay where they are counted (per worker thread) and are summed by the
 * collector at scrape time; nothing here is touched on a lookup.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

enum metric_type {
    METRIC_COUNTER,
    METRIC_GAUGE,
    METRIC_HISTOGRAM,
};

/*
 * One metric family. `labels` is the comma-separated label names ("view,feature,reason"), ""
 * for none; every sample gives one value per name, in that order. Names follow Prometheus
 * conventions: the fsd_ prefix, base units (seconds, bytes), _total for counters.
 */
struct metric_def {
    const char *name;
    enum metric_type type;
    const char *labels;
    const char *help;
};

/* The text being written for one scrape. Opaque; valid only during a collector call. */
struct metric_writer;

/*
 * Called on the stats thread for each scrape. May read counters and take locks a hot path
 * never waits on; must not block for long, and must not register or unregister collectors.
 */
typedef void (*metric_collector_fn)(struct metric_writer *w, void *ctx);

/* ---- the registry -------------------------------------------------------------------------- */

/*
 * Adds a collector, called with `ctx` on every scrape after those registered before it.
 * Returns 0, or -1 when out of memory. Any thread; blocks while a scrape is in progress.
 */
int metrics_register(metric_collector_fn fn, void *ctx);

/*
 * Removes the collector registered with this `fn` and `ctx` (nothing if there is none). Once
 * it returns, `fn` is not running and will not be called again, so `ctx` may be freed. Any
 * thread; blocks while a scrape is in progress.
 */
void metrics_unregister(metric_collector_fn fn, void *ctx);

/*
 * Runs every collector into `out` (reset first). Returns 0, or -1 when memory ran out or a
 * collector said it failed: the scrape should then be answered with an error, not cut short.
 */
int metrics_collect_all(struct buf *out);

/* ---- writing, from a collector ------------------------------------------------------------ */

/* Writes the family's `# HELP` and `# TYPE` lines only (a family without samples yet); the
 * sample writers below write them before a family's first sample. */
void metrics_write_family(struct metric_writer *w, const struct metric_def *def);

/*
 * One sample of a counter or gauge. `label_values` has one string per name in def->labels
 * (escaped here), or is NULL when there are none. Gauges may be NaN or infinite.
 */
void metrics_write_value(struct metric_writer *w, const struct metric_def *def,
                         const char *const *label_values, double value);

/* As metrics_write_value(), for an integer (exact beyond 2^53). */
void metrics_write_count(struct metric_writer *w, const struct metric_def *def,
                         const char *const *label_values, uint64_t value);

/*
 * A histogram: `cumulative` has nbounds + 1 counts (observations <= bounds[i]; the last is
 * +Inf and is the count), `sum` the sum of the observations. Writes the _bucket series with
 * an `le` label after the def's labels, then _sum and _count.
 */
void metrics_write_histogram(struct metric_writer *w, const struct metric_def *def,
                             const char *const *label_values, const double *bounds, size_t nbounds,
                             const uint64_t *cumulative, double sum);

/* A collector could not produce its samples (out of memory): the scrape fails as a whole. */
void metrics_writer_fail(struct metric_writer *w);
