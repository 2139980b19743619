#pragma once
/*
 * The process's metrics: CPU, memory as the kernel and as jemalloc see it, open descriptors,
 * the build. Read from /proc/self (common/proc.h) and jemalloc's mallctl when scraped; main
 * registers process_collect_metrics.
 */
#include <stdint.h>

#include "common/metrics.h"

enum process_metric {
    PROCESS_M_BUILD_INFO,         /* fsd_build_info{version} */
    PROCESS_M_START_TIME,         /* fsd_process_start_time_seconds */
    PROCESS_M_CPU,                /* fsd_process_cpu_seconds_total */
    PROCESS_M_RESIDENT,           /* fsd_process_resident_memory_bytes */
    PROCESS_M_OPEN_FDS,           /* fsd_process_open_fds */
    PROCESS_M_JEMALLOC_ALLOCATED, /* fsd_jemalloc_allocated_bytes */
    PROCESS_M_JEMALLOC_ACTIVE,    /* fsd_jemalloc_active_bytes */
    PROCESS_M_JEMALLOC_RESIDENT,  /* fsd_jemalloc_resident_bytes */
    PROCESS_M_JEMALLOC_METADATA,  /* fsd_jemalloc_metadata_bytes */
    PROCESS_M_COUNT,
};
extern const struct metric_def process_metric_defs[PROCESS_M_COUNT];

/* The collector (ctx unused). Reads /proc and bumps jemalloc's statistics epoch. */
void process_collect_metrics(struct metric_writer *w, void *ctx);

/*
 * Raises the open-file limit's soft value to its hard one (logged when it changes), as
 * servers that hold many connections do: the gRPC transport derives max_connections from it.
 * Call before the transport is set up.
 */
void process_raise_fd_limit(void);
