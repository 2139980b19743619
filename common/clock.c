#include "clock.h"

static int64_t _us(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t clock_mono_us(void) {
    return _us(CLOCK_MONOTONIC);
}

int64_t clock_wall_us(void) {
    return _us(CLOCK_REALTIME);
}

struct timespec clock_after(clockid_t clock, int64_t after_us) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    if (after_us < 0) {
        after_us = 0;
    }
    int64_t ns = ts.tv_nsec + (after_us % 1000000) * 1000;
    ts.tv_sec += (time_t)(after_us / 1000000 + ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    return ts;
}
