/*
 * Text forms of values, parsed strictly and exactly: a number that does not fit its type is an
 * error, never rounded, clamped or truncated (except that decimal floats round to the nearest
 * representable value, as strtod/strtof do).
 */
#include "parse.h"
#include "errors.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool _is_digit(char c) {
    return c >= '0' && c <= '9';
}

/* ---- numbers ----------------------------------------------------------------------------- */

int parse_int(const char *text, int64_t min, int64_t max, const char *type_name, int64_t *out,
              char *err, size_t err_len) {
    const char *p = text;
    if (*p == '-' || *p == '+') {
        p++;
    }
    /* Decimal only, and no leading zeros: YAML 1.1 would read 010 as octal 8. */
    size_t ndigits = strspn(p, "0123456789");
    if (ndigits == 0 || p[ndigits] != '\0' || (p[0] == '0' && ndigits > 1)) {
        return errors_set(err, err_len, "invalid %s \"%.80s\" (expected a decimal integer)",
                          type_name, text);
    }
    errno = 0;
    long long v = strtoll(text, NULL, 10);
    if (errno == ERANGE || v < min || v > max) {
        return errors_set(err, err_len, "%.80s is out of range for %s (%" PRId64 "..%" PRId64 ")",
                          text, type_name, min, max);
    }
    *out = v;
    return 0;
}

/* [+-] (digits [. digits*] | . digits) [(e|E) [+-] digits]: no hex, inf, nan or spaces, which
 * strtod would otherwise accept. */
static bool _decimal_syntax(const char *p) {
    if (*p == '-' || *p == '+') {
        p++;
    }
    size_t whole = strspn(p, "0123456789");
    p += whole;
    size_t frac = 0;
    if (*p == '.') {
        p++;
        frac = strspn(p, "0123456789");
        p += frac;
    }
    if (whole == 0 && frac == 0) {
        return false;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+') {
            p++;
        }
        size_t exp = strspn(p, "0123456789");
        if (exp == 0) {
            return false;
        }
        p += exp;
    }
    return *p == '\0';
}

/* True when a decimal literal has a non-zero digit before its exponent. */
static bool _nonzero_mantissa(const char *p) {
    for (; *p && *p != 'e' && *p != 'E'; p++) {
        if (*p >= '1' && *p <= '9') {
            return true;
        }
    }
    return false;
}

int parse_double(const char *text, double *out, char *err, size_t err_len) {
    if (!_decimal_syntax(text)) {
        return errors_set(err, err_len, "invalid double \"%.80s\" (expected a decimal number)",
                          text);
    }
    errno = 0;
    double v = strtod(text, NULL);
    /* ERANGE also flags subnormal results, which are exact enough to keep. */
    if (isinf(v) || (errno == ERANGE && v == 0 && _nonzero_mantissa(text))) {
        return errors_set(err, err_len, "%.80s is out of range for double", text);
    }
    *out = v;
    return 0;
}

int parse_float(const char *text, float *out, char *err, size_t err_len) {
    if (!_decimal_syntax(text)) {
        return errors_set(err, err_len, "invalid float \"%.80s\" (expected a decimal number)",
                          text);
    }
    errno = 0;
    float v = strtof(text, NULL); /* rounds once, to float; strtod then a cast may round twice */
    if (isinf(v) || (errno == ERANGE && v == 0 && _nonzero_mantissa(text))) {
        return errors_set(err, err_len, "%.80s is out of range for float", text);
    }
    *out = v;
    return 0;
}

/* ---- timestamps -------------------------------------------------------------------------- */

/* Reads exactly `n` digits at *p; returns -1 if they are not all digits. */
static int _fixed_digits(const char **p, int n) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!_is_digit((*p)[i])) {
            return -1;
        }
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    return v;
}

static bool _expect(const char **p, char c) {
    if (**p != c) {
        return false;
    }
    (*p)++;
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t _days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int _days_in_month(int y, int m) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

static int _bad_timestamp(const char *text, const char *why, char *err, size_t err_len) {
    return errors_set(err, err_len,
                      "invalid timestamp \"%.80s\": %s (expected RFC 3339 such as "
                      "2024-01-02T03:04:05Z or 2024-01-02T03:04:05.250+02:00, or integer "
                      "microseconds since the epoch)",
                      text, why);
}

int parse_timestamp(const char *text, int64_t *us, char *err, size_t err_len) {
    if (_is_digit(text[0]) && strchr(text, '-') == NULL) {
        return parse_int(text, INT64_MIN, INT64_MAX, "timestamp (microseconds)", us, err, err_len);
    }
    if (text[0] == '-' || text[0] == '+') {
        return parse_int(text, INT64_MIN, INT64_MAX, "timestamp (microseconds)", us, err, err_len);
    }
    const char *p = text;
    int year = _fixed_digits(&p, 4);
    if (year < 0 || !_expect(&p, '-')) {
        return _bad_timestamp(text, "bad year", err, err_len);
    }
    int month = _fixed_digits(&p, 2);
    if (month < 1 || month > 12 || !_expect(&p, '-')) {
        return _bad_timestamp(text, "bad month", err, err_len);
    }
    int day = _fixed_digits(&p, 2);
    if (day < 1 || day > _days_in_month(year, month)) {
        return _bad_timestamp(text, "bad day", err, err_len);
    }
    if (*p != 'T' && *p != 't') {
        return _bad_timestamp(text, "expected T and a time after the date", err, err_len);
    }
    p++;
    int hour = _fixed_digits(&p, 2);
    if (hour < 0 || hour > 23 || !_expect(&p, ':')) {
        return _bad_timestamp(text, "bad hour", err, err_len);
    }
    int minute = _fixed_digits(&p, 2);
    if (minute < 0 || minute > 59 || !_expect(&p, ':')) {
        return _bad_timestamp(text, "bad minute", err, err_len);
    }
    /* No leap second 60: a count of microseconds since the epoch cannot name it. */
    int second = _fixed_digits(&p, 2);
    if (second < 0 || second > 59) {
        return _bad_timestamp(text, "bad second", err, err_len);
    }
    int64_t frac_us = 0;
    if (*p == '.') {
        p++;
        size_t n = strspn(p, "0123456789");
        if (n == 0) {
            return _bad_timestamp(text, "no digits after the decimal point", err, err_len);
        }
        for (size_t i = 0; i < n; i++) {
            if (i < 6) {
                frac_us = frac_us * 10 + (p[i] - '0');
            } else if (p[i] != '0') {
                return _bad_timestamp(text, "finer than a microsecond", err, err_len);
            }
        }
        for (size_t i = n; i < 6; i++) {
            frac_us *= 10;
        }
        p += n;
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        p++;
        int oh = _fixed_digits(&p, 2);
        bool colon = _expect(&p, ':');
        int om = _fixed_digits(&p, 2);
        if (oh < 0 || oh > 23 || !colon || om < 0 || om > 59) {
            return _bad_timestamp(text, "bad UTC offset", err, err_len);
        }
        offset_min = sign * (oh * 60 + om);
    } else {
        return _bad_timestamp(text, "missing Z or UTC offset", err, err_len);
    }
    if (*p != '\0') {
        return _bad_timestamp(text, "unexpected text at the end", err, err_len);
    }
    int64_t seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 +
                      second - (int64_t)offset_min * 60;
    *us = seconds * 1000000 + frac_us;
    return 0;
}

int parse_hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* ---- base64 ------------------------------------------------------------------------------ */

static int _b64_value(char c) {
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

int parse_base64(const char *text, uint8_t **out, size_t *out_len, char *err, size_t err_len) {
    size_t len = strlen(text);
    *out = NULL;
    *out_len = 0;
    size_t pad = 0;
    if (len >= 1 && text[len - 1] == '=') {
        pad = len >= 2 && text[len - 2] == '=' ? 2 : 1;
    }
    if (len % 4 != 0) {
        return errors_set(err, err_len,
                          "invalid base64 \"%.80s\": length %zu is not a multiple of 4 (standard "
                          "base64 with = padding)",
                          text, len);
    }
    if (len == 0) {
        return 0;
    }
    uint8_t *bytes = malloc(len / 4 * 3);
    if (bytes == NULL) {
        return errors_set(err, err_len, "out of memory");
    }
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        for (int j = 0; j < 4; j++) {
            bool padding = i + (size_t)j >= len - pad;
            v[j] = padding ? 0 : _b64_value(text[i + (size_t)j]);
            if (v[j] < 0) {
                free(bytes);
                return errors_set(err, err_len, "invalid base64 \"%.80s\": bad character at %zu",
                                  text, i + (size_t)j);
            }
        }
        uint32_t group =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        bytes[o++] = (uint8_t)(group >> 16);
        bytes[o++] = (uint8_t)(group >> 8);
        bytes[o++] = (uint8_t)group;
    }
    /* Bits beyond the last byte must be zero, so each byte string has one spelling. */
    uint32_t last = (uint32_t)_b64_value(text[len - pad - 1]);
    if ((pad == 1 && (last & 0x3)) || (pad == 2 && (last & 0xf))) {
        free(bytes);
        return errors_set(err, err_len, "invalid base64 \"%.80s\": non-zero padding bits", text);
    }
    *out = bytes;
    *out_len = o - pad;
    return 0;
}
