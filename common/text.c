#include "text.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* 10^-3 .. 10^15: the decimal exponent of a value in the fast path's range. The negative
 * powers are not exact, but each is a little above its true value, so a double compares
 * below it exactly when it is below the true power. */
static const double _pow10_table[] = {1e-3, 1e-2, 1e-1, 1e0,  1e1,  1e2,  1e3,  1e4,  1e5, 1e6,
                                      1e7,  1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15};

/*
 * The fast, exact path of %.{p}g for the first p of `digits` .. `digits` + `tries` - 1 whose
 * text reads back as x (x = f * 2^e, f an integer of `bits` bits, the type's precision): m =
 * round(x * 10^k), ties to even as printf rounds, computed exactly in 128-bit integers, is x
 * to k decimals, and it reads back as x exactly when it lies within half a unit in the last
 * place of x: |m * 2^-e - f * 10^k| < 10^k / 2, here scaled to integers. The trailing zeros
 * go, as %g drops them. Taken for 1e-3 <= |x| < `max` only, where the products fit 128 bits
 * and %g writes no exponent; false otherwise (and at a power of two, whose lower neighbour is
 * nearer), and the caller prints.
 */
static size_t _fast_shortest(char *out, size_t out_len, double x, int bits, int digits, int tries,
                             double max) {
    double a = fabs(x);
    if (!(a >= 1e-3 && a < max) || out_len < 32) {
        return 0;
    }
    uint64_t raw;
    memcpy(&raw, &a, sizeof raw); /* a normal double: 1.mantissa * 2^(exponent - 1023) */
    uint64_t f = (raw & (((uint64_t)1 << 52) - 1)) | ((uint64_t)1 << 52);
    int e = (int)((raw >> 52) & 0x7ff) - 1075; /* a = f * 2^e exactly, f of 53 bits */
    if (bits < 53) { /* a float held in a double: its low mantissa bits are zero */
        uint64_t low = ((uint64_t)1 << (53 - bits)) - 1;
        if ((f & low) != 0) {
            return 0;
        }
        f >>= 53 - bits;
        e += 53 - bits;
    }
    if (f == (uint64_t)1 << (bits - 1) || e >= 0) {
        return 0; /* a power of two: its lower neighbour is nearer */
    }
    int d = 0; /* 10^(d-3) <= a < 10^(d-2) */
    while (d + 1 < (int)(sizeof _pow10_table / sizeof _pow10_table[0]) &&
           a >= _pow10_table[d + 1]) {
        d++;
    }
    int k = digits - 1 - (d - 3); /* decimals for `digits` significant digits */
    int shift = -e;               /* at most 62 in range */
    unsigned __int128 half = (unsigned __int128)1 << (shift - 1);
    static const uint64_t pow10s[20] = {1ull,
                                        10ull,
                                        100ull,
                                        1000ull,
                                        10000ull,
                                        100000ull,
                                        1000000ull,
                                        10000000ull,
                                        100000000ull,
                                        1000000000ull,
                                        10000000000ull,
                                        100000000000ull,
                                        1000000000000ull,
                                        10000000000000ull,
                                        100000000000000ull,
                                        1000000000000000ull,
                                        10000000000000000ull,
                                        100000000000000000ull,
                                        1000000000000000000ull,
                                        10000000000000000000ull};
    if (k < 0 || k + tries > 20) {
        return 0; /* never in range; keeps the table's bound plain */
    }
    for (int t = 0; t < tries; t++, k++) {
        uint64_t pow10 = pow10s[k];
        unsigned __int128 scaled = (unsigned __int128)f * pow10; /* x * 10^k * 2^shift */
        unsigned __int128 q = scaled >> shift, rem = scaled - (q << shift);
        unsigned __int128 m = q + (rem > half || (rem == half && (q & 1)));
        unsigned __int128 back = m << shift;
        unsigned __int128 diff = back > scaled ? back - scaled : scaled - back;
        if (diff * 2 >= pow10) {
            continue; /* m / 10^k is half an ulp of x or more away: reads back as another */
        }
        uint64_t v = (uint64_t)m; /* at most 10^18 (a double), 10^10 (a float) */
        int decimals = k;
        while (decimals > 0 && v % 10 == 0) {
            v /= 10;
            decimals--;
        }
        static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                                    "25262728293031323334353637383940414243444546474849"
                                    "50515253545556575859606162636465666768697071727374"
                                    "75767778798081828384858687888990919293949596979899";
        char text[24];
        int n = 0;
        while (v >= 100) { /* two digits a step, from the right (text holds them reversed) */
            unsigned r = (unsigned)(v % 100);
            v /= 100;
            text[n++] = pairs[2 * r + 1];
            text[n++] = pairs[2 * r];
        }
        if (v >= 10) {
            text[n++] = pairs[2 * v + 1];
            text[n++] = pairs[2 * v];
        } else {
            text[n++] = (char)('0' + v);
        }
        char *p = out;
        if (x < 0) {
            *p++ = '-';
        }
        if (n <= decimals) {
            *p++ = '0';
            *p++ = '.';
            for (int z = 0; z < decimals - n; z++) {
                *p++ = '0';
            }
        } else {
            while (n > decimals) {
                *p++ = text[--n];
            }
            if (decimals > 0) {
                *p++ = '.';
            }
        }
        while (n > 0) {
            *p++ = text[--n];
        }
        *p = '\0';
        return (size_t)(p - out);
    }
    return 0;
}

/*
 * The shortest precision that round-trips. A double has 15.95 significant digits, so every
 * value written with fewer than 15 reads back from its %.15g form too, and %g drops the
 * trailing zeros: trying 15, 16 and 17 finds the shortest text in at most three tries.
 * Likewise 6..9 for a float. Values in the common range take the exact integer path above,
 * which writes the same text without printf and strtod (a response of a thousand doubles
 * spent most of its time there).
 */
size_t text_double(char *out, size_t out_len, double x) {
    size_t n;
    if (_special(out, out_len, x)) {
        return strlen(out);
    }
    if ((n = _fast_shortest(out, out_len, x, 53, 15, 3, 1e15)) > 0) {
        return n;
    }
    for (int precision = 15; precision <= 17; precision++) {
        snprintf(out, out_len, "%.*g", precision, x);
        if (strtod(out, NULL) == x) {
            break;
        }
    }
    return strlen(out);
}

size_t text_float(char *out, size_t out_len, float x) {
    size_t n;
    if (_special(out, out_len, (double)x)) {
        return strlen(out);
    }
    if ((n = _fast_shortest(out, out_len, (double)x, 24, 6, 4, 1e6)) > 0) {
        return n;
    }
    for (int precision = 6; precision <= 9; precision++) {
        snprintf(out, out_len, "%.*g", precision, (double)x);
        if (strtof(out, NULL) == x) {
            break;
        }
    }
    return strlen(out);
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
