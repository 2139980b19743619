#pragma once
/*
 * Counters of the RPC handlers, kept per worker and summed when read (the stats port
 * scrapes them): no shared atomics and no locks on a lookup. A worker is the only writer of
 * its counters; it adds with a relaxed load and store (a plain add on x86), readers use
 * relaxed loads, so a scrape may lag by a few increments but never tears a value.
 *
 *   worker ──> methods[m]: duration histogram          (fsd_request_duration_seconds)
 *          ──> batch histogram, budget failures         (fsd_batch_size, fsd_budget_exceeded_total)
 *          ──> views[i] (allocated on first use): lookups, not found, staleness histogram,
 *                          fallbacks[feature][reason]  (fsd_default_fallbacks_total)
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc.h"
#include "daemon/auth/auth.h"

#define RPC_MAX_VIEWS 1024

/* Histogram bucket upper bounds (Prometheus `le`); a final +Inf bucket follows each. */
#define RPC_DURATION_BUCKETS  14
#define RPC_BATCH_BUCKETS     11
#define RPC_STALENESS_BUCKETS 11
extern const double rpc_duration_bounds_s[RPC_DURATION_BUCKETS];
extern const double rpc_batch_bounds[RPC_BATCH_BUCKETS];
extern const double rpc_staleness_bounds_s[RPC_STALENESS_BUCKETS];

/* Fallback reasons, as the `reason` label spells them. */
enum rpc_fallback_reason {
    RPC_FALLBACK_NOT_FOUND,
    RPC_FALLBACK_NULL_VALUE,
    RPC_FALLBACK_OUTSIDE_MAX_AGE,
    RPC_FALLBACK_REASONS,
};
extern const char *const rpc_fallback_reason_names[RPC_FALLBACK_REASONS];

typedef _Atomic uint64_t rpc_counter;

struct rpc_histogram {
    rpc_counter buckets[16]; /* per bucket, not cumulative; index n = +Inf */
    rpc_counter count;
    rpc_counter sum_micro; /* sum of observations x 1e6 (seconds -> microseconds) */
};

struct rpc_view_counters {
    uint32_t nfeatures;
    rpc_counter lookups;   /* entities looked up */
    rpc_counter not_found; /* of them, without a row */
    struct rpc_histogram staleness;
    rpc_counter fallbacks[]; /* [feature * RPC_FALLBACK_REASONS + reason] */
};

struct rpc_worker_counters {
    struct rpc_histogram duration[RPC_METHOD_COUNT];
    struct rpc_histogram batch;
    rpc_counter budget_exceeded;
    rpc_counter auth_failures[RPC_METHOD_COUNT][AUTH_FAIL_COUNT];
    _Atomic(struct rpc_view_counters *) views[RPC_MAX_VIEWS];
};

static inline void rpc_counter_add(rpc_counter *c, uint64_t n) {
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* Adds one observation; `bounds` has `nbounds` entries. Worker only. */
void rpc_histogram_observe(struct rpc_histogram *h, const double *bounds, size_t nbounds,
                           double value);

/* The worker's counters for view `index` (with `nfeatures`), allocated on first use; NULL
 * when out of memory or the index is past RPC_MAX_VIEWS (then nothing is counted). */
struct rpc_view_counters *rpc_worker_view_counters(struct rpc_worker_counters *w, uint32_t index,
                                                   uint32_t nfeatures);

/* ---- reading: sums over every worker (any thread) ---------------------------------------- */

struct rpc_histogram_totals {
    uint64_t buckets[16]; /* cumulative, as Prometheus wants them; index n = +Inf */
    uint64_t count;
    double sum;
};

void rpc_stats_duration(enum rpc_method_id method, struct rpc_histogram_totals *out);
void rpc_stats_batch(struct rpc_histogram_totals *out);
uint64_t rpc_stats_budget_exceeded(void);
/* Calls of `method` refused for `failure`, every worker. */
uint64_t rpc_stats_auth_failures(enum rpc_method_id method, enum auth_failure failure);

/*
 * One view's totals. `fallbacks` has room for nfeatures * RPC_FALLBACK_REASONS counters.
 * Returns 0, or -1 when the index is out of range.
 */
int rpc_stats_view(uint32_t index, uint32_t nfeatures, uint64_t *lookups, uint64_t *not_found,
                   struct rpc_histogram_totals *staleness, uint64_t *fallbacks);
