/* The expiry sweeper's metrics. */
#include "internal.h"

#include "sweeper.h"

void stats_collect_sweeper(struct stats_writer *w, void *ctx) {
    (void)ctx;
    stats_write_count(w, &stats_metric_defs[STATS_M_SWEEPER_RECLAIMED], NULL, sweeper_reclaimed());
}
