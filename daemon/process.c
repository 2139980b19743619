/* The process's metrics: memory (kernel and allocator views), CPU, descriptors, build. */
#include "process.h"

#include <jemalloc/jemalloc.h>
#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#include "common/log.h"
#include "common/proc.h"

#ifndef FSD_VERSION
#define FSD_VERSION "unknown"
#endif

const struct metric_def process_metric_defs[PROCESS_M_COUNT] = {
    [PROCESS_M_BUILD_INFO] = {"fsd_build_info", METRIC_GAUGE, "version",
                              "Always 1; the version label says which fsd build runs."},
    [PROCESS_M_START_TIME] = {"fsd_process_start_time_seconds", METRIC_GAUGE, "",
                              "Unix time the process started."},
    [PROCESS_M_CPU] = {"fsd_process_cpu_seconds_total", METRIC_COUNTER, "",
                       "User and system CPU time the process used."},
    [PROCESS_M_RESIDENT] = {"fsd_process_resident_memory_bytes", METRIC_GAUGE, "",
                            "Resident set size (/proc/self/statm)."},
    [PROCESS_M_OPEN_FDS] = {"fsd_process_open_fds", METRIC_GAUGE, "",
                            "Open file descriptors: sockets, listeners, event fds, files."},
    [PROCESS_M_JEMALLOC_ALLOCATED] = {"fsd_jemalloc_allocated_bytes", METRIC_GAUGE, "",
                                      "Bytes the application has allocated and not freed "
                                      "(jemalloc stats.allocated)."},
    [PROCESS_M_JEMALLOC_ACTIVE] = {"fsd_jemalloc_active_bytes", METRIC_GAUGE, "",
                                   "Bytes in pages the allocator has handed out (jemalloc "
                                   "stats.active)."},
    [PROCESS_M_JEMALLOC_RESIDENT] = {"fsd_jemalloc_resident_bytes", METRIC_GAUGE, "",
                                     "Bytes in physically resident pages the allocator maps "
                                     "(jemalloc stats.resident)."},
    [PROCESS_M_JEMALLOC_METADATA] = {"fsd_jemalloc_metadata_bytes", METRIC_GAUGE, "",
                                     "Bytes of the allocator's own metadata (jemalloc "
                                     "stats.metadata)."},
};

static const struct metric_def *_def(enum process_metric id) {
    return &process_metric_defs[id];
}

static uint64_t _jemalloc_stat(const char *name) {
    size_t value = 0, len = sizeof value;
    return mallctl(name, &value, &len, NULL, 0) == 0 ? value : 0;
}

void process_collect_metrics(struct metric_writer *w, void *ctx) {
    (void)ctx;
    metrics_write_count(w, _def(PROCESS_M_BUILD_INFO), (const char *[]){FSD_VERSION}, 1);
    metrics_write_value(w, _def(PROCESS_M_START_TIME), NULL, (double)proc_start_us() / 1e6);
    metrics_write_value(w, _def(PROCESS_M_CPU), NULL, proc_cpu_seconds());
    metrics_write_count(w, _def(PROCESS_M_RESIDENT), NULL, proc_resident_bytes());
    metrics_write_count(w, _def(PROCESS_M_OPEN_FDS), NULL, proc_open_fds());

    /* jemalloc caches its statistics; bumping the epoch refreshes them. */
    uint64_t epoch = 1;
    size_t len = sizeof epoch;
    mallctl("epoch", &epoch, &len, &epoch, len);
    metrics_write_count(w, _def(PROCESS_M_JEMALLOC_ALLOCATED), NULL,
                        _jemalloc_stat("stats.allocated"));
    metrics_write_count(w, _def(PROCESS_M_JEMALLOC_ACTIVE), NULL, _jemalloc_stat("stats.active"));
    metrics_write_count(w, _def(PROCESS_M_JEMALLOC_RESIDENT), NULL,
                        _jemalloc_stat("stats.resident"));
    metrics_write_count(w, _def(PROCESS_M_JEMALLOC_METADATA), NULL,
                        _jemalloc_stat("stats.metadata"));
}

void process_raise_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == rl.rlim_max) {
        return;
    }
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        log_warn("cannot raise the open-file limit", "soft=%llu hard=%llu error=%s",
                 (unsigned long long)was, (unsigned long long)rl.rlim_max,
                 LOG_QUOTE(strerror(errno)));
        return;
    }
    log_info("raised the open-file limit", "from=%llu to=%llu", (unsigned long long)was,
             (unsigned long long)rl.rlim_cur);
}
