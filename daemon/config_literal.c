/*
 * Default literals: `default:` values of features, parsed strictly and exactly. A literal that
 * does not fit its type is an error, never rounded, clamped or truncated (except that decimal
 * floats round to the nearest representable value, as strtod/strtof do).
 */
#include "config_internal.h"

#include "store/schema.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 3, 4))) static int _fail(char *err, size_t err_len, const char *fmt,
                                                       ...) {
    if (err_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static bool _is_digit(char c) {
    return c >= '0' && c <= '9';
}

/* ---- numbers ----------------------------------------------------------------------------- */

int config_parse_int(const char *text, int64_t min, int64_t max, const char *type_name,
                     int64_t *out, char *err, size_t err_len) {
    const char *p = text;
    if (*p == '-' || *p == '+') {
        p++;
    }
    /* Decimal only, and no leading zeros: YAML 1.1 would read 010 as octal 8. */
    size_t ndigits = strspn(p, "0123456789");
    if (ndigits == 0 || p[ndigits] != '\0' || (p[0] == '0' && ndigits > 1)) {
        return _fail(err, err_len, "invalid %s \"%.80s\" (expected a decimal integer)", type_name,
                     text);
    }
    errno = 0;
    long long v = strtoll(text, NULL, 10);
    if (errno == ERANGE || v < min || v > max) {
        return _fail(err, err_len, "%.80s is out of range for %s (%" PRId64 "..%" PRId64 ")", text,
                     type_name, min, max);
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

int config_parse_double(const char *text, double *out, char *err, size_t err_len) {
    if (!_decimal_syntax(text)) {
        return _fail(err, err_len, "invalid double \"%.80s\" (expected a decimal number)", text);
    }
    errno = 0;
    double v = strtod(text, NULL);
    /* ERANGE also flags subnormal results, which are exact enough to keep. */
    if (isinf(v) || (errno == ERANGE && v == 0 && _nonzero_mantissa(text))) {
        return _fail(err, err_len, "%.80s is out of range for double", text);
    }
    *out = v;
    return 0;
}

int config_parse_float(const char *text, float *out, char *err, size_t err_len) {
    if (!_decimal_syntax(text)) {
        return _fail(err, err_len, "invalid float \"%.80s\" (expected a decimal number)", text);
    }
    errno = 0;
    float v = strtof(text, NULL); /* rounds once, to float; strtod then a cast may round twice */
    if (isinf(v) || (errno == ERANGE && v == 0 && _nonzero_mantissa(text))) {
        return _fail(err, err_len, "%.80s is out of range for float", text);
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
    return _fail(err, err_len,
                 "invalid timestamp \"%.80s\": %s (expected RFC 3339 such as "
                 "2024-01-02T03:04:05Z or 2024-01-02T03:04:05.250+02:00, or integer "
                 "microseconds since the epoch)",
                 text, why);
}

int config_parse_timestamp(const char *text, int64_t *us, char *err, size_t err_len) {
    if (_is_digit(text[0]) && strchr(text, '-') == NULL) {
        return config_parse_int(text, INT64_MIN, INT64_MAX, "timestamp (microseconds)", us, err,
                                err_len);
    }
    if (text[0] == '-' || text[0] == '+') {
        return config_parse_int(text, INT64_MIN, INT64_MAX, "timestamp (microseconds)", us, err,
                                err_len);
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

int config_parse_base64(const char *text, uint8_t **out, size_t *out_len, char *err,
                        size_t err_len) {
    size_t len = strlen(text);
    *out = NULL;
    *out_len = 0;
    size_t pad = 0;
    if (len >= 1 && text[len - 1] == '=') {
        pad = len >= 2 && text[len - 2] == '=' ? 2 : 1;
    }
    if (len % 4 != 0) {
        return _fail(err, err_len,
                     "invalid base64 \"%.80s\": length %zu is not a multiple of 4 (standard "
                     "base64 with = padding)",
                     text, len);
    }
    if (len == 0) {
        return 0;
    }
    uint8_t *bytes = malloc(len / 4 * 3);
    if (bytes == NULL) {
        return _fail(err, err_len, "out of memory");
    }
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        for (int j = 0; j < 4; j++) {
            bool padding = i + (size_t)j >= len - pad;
            v[j] = padding ? 0 : _b64_value(text[i + (size_t)j]);
            if (v[j] < 0) {
                free(bytes);
                return _fail(err, err_len, "invalid base64 \"%.80s\": bad character at %zu", text,
                             i + (size_t)j);
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
        return _fail(err, err_len, "invalid base64 \"%.80s\": non-zero padding bits", text);
    }
    *out = bytes;
    *out_len = o - pad;
    return 0;
}

/* ---- defaults ---------------------------------------------------------------------------- */

/* Reads a scalar literal of scalar `type`; var data points into the document or *owned. */
static int _scalar_literal(struct config_ctx *ctx, const yaml_node_t *node, enum store_type type,
                           struct store_value *v, void **owned) {
    const char *text = config_scalar(ctx, node, NULL);
    if (text == NULL) {
        return -1;
    }
    char why[512];
    int rc = 0;
    int64_t i;
    switch (type) {
    case STORE_TYPE_INT32:
        rc = config_parse_int(text, INT32_MIN, INT32_MAX, "int32", &i, why, sizeof why);
        v->i32 = (int32_t)i;
        break;
    case STORE_TYPE_INT64:
        rc = config_parse_int(text, INT64_MIN, INT64_MAX, "int64", &v->i64, why, sizeof why);
        break;
    case STORE_TYPE_FLOAT:
        rc = config_parse_float(text, &v->f32, why, sizeof why);
        break;
    case STORE_TYPE_DOUBLE:
        rc = config_parse_double(text, &v->f64, why, sizeof why);
        break;
    case STORE_TYPE_BOOL:
        if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0) {
            v->b = text[0] == 't';
        } else {
            rc = _fail(why, sizeof why, "invalid bool \"%.80s\" (expected true or false)", text);
        }
        break;
    case STORE_TYPE_TIMESTAMP:
        rc = config_parse_timestamp(text, &v->ts_us, why, sizeof why);
        break;
    case STORE_TYPE_STRING:
        v->var.data = text;
        v->var.bytes = (uint32_t)node->data.scalar.length;
        v->var.count = 0;
        break;
    case STORE_TYPE_BYTES: {
        uint8_t *bytes;
        size_t n;
        rc = config_parse_base64(text, &bytes, &n, why, sizeof why);
        if (rc == 0) {
            *owned = bytes;
            v->var.data = bytes ? (const void *)bytes : (const void *)"";
            v->var.bytes = (uint32_t)n;
            v->var.count = 0;
        }
        break;
    }
    default:
        rc = _fail(why, sizeof why, "not a scalar type");
    }
    if (rc != 0) {
        /* A quoted "zero"/"mean" is a literal by design; point at the keyword in case. */
        const char *hint = "";
        if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE &&
            (strcmp(text, "zero") == 0 || strcmp(text, "mean") == 0)) {
            hint = " (a quoted word is a literal; write the keyword unquoted)";
        }
        config_error(ctx, node, NULL, "%s%s", why, hint);
    }
    return rc;
}

/* float_list, int64_list, string_list from a YAML sequence. */
static int _list_literal(struct config_ctx *ctx, const yaml_node_t *seq, enum store_type type,
                         struct store_value *v, void **owned) {
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    size_t bytes = 0;
    if (type == STORE_TYPE_FLOAT_LIST) {
        bytes = n * sizeof(float);
    } else if (type == STORE_TYPE_INT64_LIST) {
        bytes = n * sizeof(int64_t);
    } else {
        bytes = n * sizeof(uint32_t);
        for (size_t i = 0; i < n; i++) {
            const yaml_node_t *item = config_node(ctx, seq->data.sequence.items.start[i]);
            if (item->type == YAML_SCALAR_NODE) {
                bytes += item->data.scalar.length;
            }
        }
    }
    if (bytes > UINT32_MAX) {
        config_error(ctx, seq, NULL, "list too large");
        return -1;
    }
    uint8_t *block = malloc(bytes + 1);
    if (block == NULL) {
        config_error(ctx, seq, NULL, "out of memory");
        return -1;
    }
    int rc = 0;
    size_t str_off = n * sizeof(uint32_t);
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = config_node(ctx, seq->data.sequence.items.start[i]);
        size_t mark = config_path_push(ctx, "[%zu]", i);
        const char *text = config_scalar(ctx, item, NULL);
        char why[512];
        if (text == NULL) {
            rc = -1;
        } else if (type == STORE_TYPE_FLOAT_LIST) {
            float f;
            if (config_parse_float(text, &f, why, sizeof why) == 0) {
                memcpy(block + i * sizeof f, &f, sizeof f);
            } else {
                config_error(ctx, item, NULL, "%s", why);
                rc = -1;
            }
        } else if (type == STORE_TYPE_INT64_LIST) {
            int64_t x;
            if (config_parse_int(text, INT64_MIN, INT64_MAX, "int64", &x, why, sizeof why) == 0) {
                memcpy(block + i * sizeof x, &x, sizeof x);
            } else {
                config_error(ctx, item, NULL, "%s", why);
                rc = -1;
            }
        } else {
            uint32_t len = (uint32_t)item->data.scalar.length;
            memcpy(block + i * sizeof len, &len, sizeof len);
            memcpy(block + str_off, text, len);
            str_off += len;
        }
        config_path_pop(ctx, mark);
    }
    if (rc != 0) {
        free(block);
        return -1;
    }
    *owned = block;
    v->var.data = block;
    v->var.bytes = (uint32_t)bytes;
    v->var.count = (uint32_t)n;
    return 0;
}

int config_default_parse(struct config_ctx *ctx, const yaml_node_t *node, enum store_type type,
                         enum store_default_kind *kind, struct store_value *literal, void **owned) {
    *owned = NULL;
    memset(literal, 0, sizeof *literal);
    literal->type = type;
    if (config_is_plain(node, "zero")) {
        *kind = STORE_DEFAULT_ZERO;
        return 0;
    }
    if (config_is_plain(node, "mean")) {
        *kind = STORE_DEFAULT_MEAN; /* the schema rejects it for non-numeric types */
        return 0;
    }
    if (config_is_null(node)) {
        config_error(ctx, node, NULL,
                     "empty default; leave the key out for no default, or write zero");
        return -1;
    }
    *kind = STORE_DEFAULT_LITERAL;
    bool is_list = type == STORE_TYPE_FLOAT_LIST || type == STORE_TYPE_INT64_LIST ||
                   type == STORE_TYPE_STRING_LIST;
    if (is_list) {
        if (node->type != YAML_SEQUENCE_NODE) {
            config_error(ctx, node, NULL, "a %s default is a sequence such as [a, b], or zero",
                         store_type_name(type));
            return -1;
        }
        return _list_literal(ctx, node, type, literal, owned);
    }
    if (node->type != YAML_SCALAR_NODE) {
        config_error(ctx, node, NULL, "a %s default is a scalar, not %s", store_type_name(type),
                     node->type == YAML_SEQUENCE_NODE ? "a sequence" : "a mapping");
        return -1;
    }
    return _scalar_literal(ctx, node, type, literal, owned);
}
