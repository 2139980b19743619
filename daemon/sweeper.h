#pragma once
/*
 * The expiry sweeper: a control thread that walks every view's table a slice at a time and
 * reclaims rows older than TTL + grace and tombstones older than the grace, so views fed by
 * streams do not grow without bound. Each tick looks at SWEEPER_SLOTS_PER_TICK slots of each
 * view; the store locks one shard at a time, so lookups never wait and writers wait at most
 * one shard's slice.
 */
#include <stdint.h>

#include "common/metrics.h"
#include "common/options.h"

#define SWEEPER_SLOTS_PER_TICK (1u << 16)

struct store_catalog;

/* The config file's store.sweep_interval_ms and store.expiry_grace. */
struct sweeper_options {
    uint32_t interval_ms;
    int64_t expiry_grace_us;
};
extern const struct option_group sweeper_option_group;

enum sweeper_metric {
    SWEEPER_M_RECLAIMED, /* fsd_sweeper_reclaimed_total */
    SWEEPER_M_COUNT,
};
extern const struct metric_def sweeper_metric_defs[SWEEPER_M_COUNT];

/* Starts the thread and registers its metrics. Returns -1 when it cannot be started. */
int sweeper_setup(struct store_catalog *catalog, const struct sweeper_options *options);

/* Unregisters the metrics, stops the thread and waits for it; safe when setup failed or
 * never ran. */
void sweeper_teardown(void);

/* Rows and tombstones reclaimed since setup. */
uint64_t sweeper_reclaimed(void);
