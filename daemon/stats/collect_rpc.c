/* The RPC handlers' metrics: per-worker counters summed by rpc_stats_*() at scrape time. */
#include "internal.h"

#include "rpc/rpc_stats.h"

void stats_collect_rpc(struct stats_writer *w, void *ctx) {
    (void)ctx;
    const struct stats_metric_def *duration = &stats_metric_defs[STATS_M_REQUEST_DURATION];
    for (int m = 0; m < RPC_METHOD_COUNT; m++) {
        struct rpc_histogram_totals t;
        rpc_stats_duration((enum rpc_method_id)m, &t);
        const char *labels[] = {stats_method_name((size_t)m)};
        stats_write_histogram(w, duration, labels, rpc_duration_bounds_s, RPC_DURATION_BUCKETS,
                              t.buckets, t.sum);
    }

    struct rpc_histogram_totals batch;
    rpc_stats_batch(&batch);
    stats_write_histogram(w, &stats_metric_defs[STATS_M_BATCH_SIZE], NULL, rpc_batch_bounds,
                          RPC_BATCH_BUCKETS, batch.buckets, batch.sum);

    stats_write_count(w, &stats_metric_defs[STATS_M_BUDGET_EXCEEDED], NULL,
                      rpc_stats_budget_exceeded());
}
