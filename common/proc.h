#pragma once
/*
 * The process as the kernel sees it, read from /proc/self when asked (for metrics and the
 * status page's uptime): cheap enough for a scrape, never for a hot path. Each returns 0 when
 * the file cannot be read.
 */
#include <stdint.h>

/* When the process started (wall clock, microseconds since the epoch). */
int64_t proc_start_us(void);

/* User plus system CPU time used, in seconds. */
double proc_cpu_seconds(void);

/* Resident set size in bytes (/proc/self/statm). */
uint64_t proc_resident_bytes(void);

/* Open file descriptors. */
uint64_t proc_open_fds(void);
