/* The process's metrics: memory (kernel and allocator views), CPU, descriptors, build. */
#include "process.h"

#include <dirent.h>
#include <jemalloc/jemalloc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

/*
 * Fields of /proc/self/stat after the command name (which may hold spaces and parentheses,
 * so parsing starts after the last ')'): out[0] is field 3 (state), out[k] field k + 3.
 */
static int _proc_stat(unsigned long long *out, size_t n) {
    char text[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (f == NULL) {
        return -1;
    }
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    char *p = strrchr(text, ')');
    if (p == NULL) {
        return -1;
    }
    p += 2; /* ") " */
    p += strcspn(p, " ");
    out[0] = 0; /* state is a letter */
    for (size_t i = 1; i < n; i++) {
        if (sscanf(p, " %llu", &out[i]) != 1) {
            return -1;
        }
        p += strspn(p, " ");
        p += strcspn(p, " ");
    }
    return 0;
}

int64_t process_start_us(void) {
    unsigned long long fields[20];
    if (_proc_stat(fields, 20) != 0) {
        return 0;
    }
    /* field 22 starttime: clock ticks after boot; /proc/stat btime: boot, Unix seconds */
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL) {
        return 0;
    }
    char line[256];
    long long btime = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, "btime %lld", &btime) == 1) {
            break;
        }
    }
    fclose(f);
    long ticks = sysconf(_SC_CLK_TCK);
    if (btime < 0 || ticks <= 0) {
        return 0;
    }
    return btime * 1000000 + (int64_t)(fields[19] * 1000000ULL / (unsigned long long)ticks);
}

static double _cpu_seconds(void) {
    unsigned long long fields[13];
    long ticks = sysconf(_SC_CLK_TCK);
    if (_proc_stat(fields, 13) != 0 || ticks <= 0) {
        return 0;
    }
    /* fields 14 utime and 15 stime */
    return (double)(fields[11] + fields[12]) / (double)ticks;
}

static uint64_t _resident_bytes(void) {
    unsigned long long size, resident;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL) {
        return 0;
    }
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    return n == 2 ? resident * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

static uint64_t _open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) {
        return 0;
    }
    uint64_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n > 0 ? n - 1 : 0; /* not the descriptor opendir itself holds */
}

static uint64_t _jemalloc_stat(const char *name) {
    size_t value = 0, len = sizeof value;
    return mallctl(name, &value, &len, NULL, 0) == 0 ? value : 0;
}

void process_collect_metrics(struct metric_writer *w, void *ctx) {
    (void)ctx;
    metrics_write_count(w, _def(PROCESS_M_BUILD_INFO), (const char *[]){FSD_VERSION}, 1);
    metrics_write_value(w, _def(PROCESS_M_START_TIME), NULL, (double)process_start_us() / 1e6);
    metrics_write_value(w, _def(PROCESS_M_CPU), NULL, _cpu_seconds());
    metrics_write_count(w, _def(PROCESS_M_RESIDENT), NULL, _resident_bytes());
    metrics_write_count(w, _def(PROCESS_M_OPEN_FDS), NULL, _open_fds());

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
