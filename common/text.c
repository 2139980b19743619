#include "text.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int _special(char *out, size_t out_len, double x) {
    if (isnan(x)) {
        snprintf(out, out_len, "nan");
        return 1;
    }
    if (isinf(x)) {
        snprintf(out, out_len, "%s", x < 0 ? "-inf" : "inf");
        return 1;
    }
    return 0;
}

/*
 * The shortest precision that round-trips. A double has 15.95 significant digits, so every
 * value written with fewer than 15 reads back from its %.15g form too, and %g drops the
 * trailing zeros: trying 15, 16 and 17 finds the shortest text in at most three tries.
 * Likewise 6..9 for a float.
 */
void text_double(char *out, size_t out_len, double x) {
    if (_special(out, out_len, x)) {
        return;
    }
    for (int precision = 15; precision <= 17; precision++) {
        snprintf(out, out_len, "%.*g", precision, x);
        if (strtod(out, NULL) == x) {
            return;
        }
    }
}

void text_float(char *out, size_t out_len, float x) {
    if (_special(out, out_len, (double)x)) {
        return;
    }
    for (int precision = 6; precision <= 9; precision++) {
        snprintf(out, out_len, "%.*g", precision, (double)x);
        if (strtof(out, NULL) == x) {
            return;
        }
    }
}

void text_bytes(char *out, size_t out_len, uint64_t bytes) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024;
        u++;
    }
    if (u == 0) {
        snprintf(out, out_len, "%" PRIu64 " B", bytes);
    } else {
        snprintf(out, out_len, "%.1f %s", v, units[u]);
    }
}

void text_time_utc(char *out, size_t out_len, int64_t us) {
    time_t s = (time_t)(us / 1000000);
    struct tm tm;
    if (gmtime_r(&s, &tm) == NULL || strftime(out, out_len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(out, out_len, "?");
    }
}
