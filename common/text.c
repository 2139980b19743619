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

static const char _pairs[] = "00010203040506070809101112131415161718192021222324"
                             "25262728293031323334353637383940414243444546474849"
                             "50515253545556575859606162636465666768697071727374"
                             "75767778798081828384858687888990919293949596979899";

/* The 8 decimal digits of `v` < 10^8, leading zeros included, at `out`: 32-bit arithmetic
 * in two independent halves, which the CPU runs side by side. */
static uint64_t _pair(uint32_t v) {
    uint16_t two;
    memcpy(&two, _pairs + 2 * v, 2);
    return two;
}

static void _eight_digits(char *out, uint32_t v) {
    uint32_t high = v / 10000, low = v % 10000;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* Put together in a register and stored once, so a wide load of them later (buf_add's
     * memcpy) is forwarded from the store instead of waiting for four narrow ones. */
    uint64_t text = _pair(high / 100) | _pair(high % 100) << 16 | _pair(low / 100) << 32 |
                    _pair(low % 100) << 48;
    memcpy(out, &text, 8);
#else
    memcpy(out, _pairs + 2 * (high / 100), 2);
    memcpy(out + 2, _pairs + 2 * (high % 100), 2);
    memcpy(out + 4, _pairs + 2 * (low / 100), 2);
    memcpy(out + 6, _pairs + 2 * (low % 100), 2);
#endif
}

/* The digits of `v` written to end just before `end`; returns where they start. Blocks of 8
 * from the right, then what is left two digits at a time, without leading zeros. */
static char *_digits_before(char *end, uint64_t v) {
    char *p = end;
    while (v >= 100000000) {
        p -= 8;
        _eight_digits(p, (uint32_t)(v % 100000000));
        v /= 100000000;
    }
    uint32_t w = (uint32_t)v;
    while (w >= 100) {
        p -= 2;
        memcpy(p, _pairs + 2 * (w % 100), 2);
        w /= 100;
    }
    if (w >= 10) {
        p -= 2;
        memcpy(p, _pairs + 2 * w, 2);
    } else {
        *--p = (char)('0' + w);
    }
    return p;
}

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
    int shift = -e; /* at most 63 in range; checked, as the 64-bit shifts below need it */
    if (shift < 1 || shift > 63) {
        return 0;
    }
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
    uint64_t below = ((uint64_t)1 << shift) - 1, half = (uint64_t)1 << (shift - 1);
    for (int t = 0; t < tries; t++, k++) {
        uint64_t pow10 = pow10s[k];
        unsigned __int128 scaled = (unsigned __int128)f * pow10; /* x * 10^k * 2^shift */
        /* x * 10^k < 10^18, so its whole part fits 64 bits, and so does the fraction (below
         * 2^shift): the rounding and the distance need no 128-bit arithmetic. */
        uint64_t high = (uint64_t)(scaled >> 64), low = (uint64_t)scaled;
        uint64_t q = (low >> shift) | (high << (64 - shift)), rem = low & below;
        bool up = rem > half || (rem == half && (q & 1));
        uint64_t m = q + up;
        uint64_t diff = up ? below + 1 - rem : rem; /* |m * 2^shift - scaled| <= 2^(shift-1) */
        if (diff * 2 >= pow10) {
            continue; /* m / 10^k is half an ulp of x or more away: reads back as another */
        }
        uint64_t v = m; /* at most 10^18 (a double), 10^10 (a float) */
        int n = digits + t + (v == pow10s[digits + t]); /* a round up to 10^digits adds one */
        int decimals = k;
        while (decimals > 0 && v % 10 == 0) {
            v /= 10;
            decimals--;
            n--;
        }
        /* The digits go straight to their place in `out`: read back right after their
         * narrow stores, from a scratch array, they would stall the CPU's store forwarding. */
        char *p = out;
        if (x < 0) {
            *p++ = '-';
        }
        if (n <= decimals) { /* 0.000ddd */
            *p++ = '0';
            *p++ = '.';
            memset(p, '0', (size_t)(decimals - n));
            p += decimals - n;
            _digits_before(p + n, v);
            p += n;
        } else if (decimals == 0) { /* ddd */
            _digits_before(p + n, v);
            p += n;
        } else { /* ddd.ddd: written one place right, the whole part moved back a byte at a
                  * time (each byte load lies inside one store, so it forwards) */
            int whole = n - decimals;
            _digits_before(p + 1 + n, v);
            for (int i = 0; i < whole; i++) {
                p[i] = p[i + 1];
            }
            p[whole] = '.';
            p += n + 1;
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
