#pragma once
/*
 * The clocks, in microseconds. Every module reads time through these, so there is one place
 * that says which clock a number comes from:
 *
 *   clock_mono_us()   CLOCK_MONOTONIC: intervals, deadlines, timeouts, durations; never jumps
 *   clock_wall_us()   CLOCK_REALTIME: event times, a TTL's "now", what logs and metrics show
 *   clock_cache       both, read once per turn of an event loop that serves many requests per
 *                     turn (the gRPC workers): a request then costs no clock call, and every
 *                     request of one read batch sees the same "now"
 *
 * clock_after() turns a relative timeout into the absolute timespec pthread_cond_timedwait()
 * wants, on whichever clock the condition variable was set up with.
 */
#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in microseconds. Any thread; a vDSO call, no syscall. */
int64_t clock_mono_us(void);

/* CLOCK_REALTIME in microseconds since the Unix epoch. Any thread. */
int64_t clock_wall_us(void);

/* `clock` (CLOCK_MONOTONIC or CLOCK_REALTIME) now plus `after_us` (>= 0), as a timespec. */
struct timespec clock_after(clockid_t clock, int64_t after_us);

/* Both clocks as one event loop's turn saw them. Owned by the loop's thread. */
struct clock_cache {
    int64_t mono_us;
    int64_t wall_us;
};

/* Reads both clocks into `cache`: call at the start of a turn, before the requests it runs. */
static inline void clock_cache_update(struct clock_cache *cache) {
    cache->mono_us = clock_mono_us();
    cache->wall_us = clock_wall_us();
}
