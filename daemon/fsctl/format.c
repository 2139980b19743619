/* fsctl's output helpers: JSON strings and numbers, values as text for people, tables. */
#include "fsctl_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Wider cells are cut (with "...") so one long string does not push the table off screen;
 * --json has every value whole. */
#define _CELL_MAX_CHARS 48

static const char *const _type_names[] = {
    "unspecified", "int32", "int64",     "float",      "double",     "bool",
    "string",      "bytes", "timestamp", "float_list", "int64_list", "string_list",
};

const char *fsctl_type_name(int feature_type) {
    if (feature_type < 0 || (size_t)feature_type >= sizeof _type_names / sizeof _type_names[0]) {
        return "unknown";
    }
    return _type_names[feature_type];
}

/* ---- sbuf -------------------------------------------------------------------------------- */

static bool _reserve(struct sbuf *b, size_t extra) {
    if (b->failed) {
        return false;
    }
    if (b->len + extra + 1 <= b->cap) {
        return true;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        cap *= 2;
    }
    char *grown = realloc(b->data, cap);
    if (grown == NULL) {
        b->failed = true;
        return false;
    }
    b->data = grown;
    b->cap = cap;
    return true;
}

void sbuf_append(struct sbuf *b, const char *s, size_t len) {
    if (!_reserve(b, len)) {
        return;
    }
    memcpy(b->data + b->len, s, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void sbuf_printf(struct sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !_reserve(b, (size_t)n)) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sbuf_free(struct sbuf *b) {
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* ---- UTF-8 ------------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s[0..len), or 0 if it is not one. */
static size_t _utf8_len(const unsigned char *s, size_t len) {
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        n = 2;
        cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3;
        cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n > len) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
        cp = cp << 6 | (s[i] & 0x3F);
    }
    /* overlong forms, surrogates and values past U+10FFFF are not UTF-8 */
    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
        return 0;
    }
    return n;
}

/* Characters on screen, counting each UTF-8 sequence (or stray byte) as one. */
static size_t _display_width(const char *s) {
    size_t width = 0, len = strlen(s);
    for (size_t i = 0; i < len;) {
        size_t n = _utf8_len((const unsigned char *)s + i, len - i);
        i += n ? n : 1;
        width++;
    }
    return width;
}

/* ---- JSON -------------------------------------------------------------------------------- */

void json_string(struct sbuf *b, const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    sbuf_append(b, "\"", 1);
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            sbuf_append(b, esc, 2);
            i++;
        } else if (c < 0x20 || c == 0x7F) {
            switch (c) {
            case '\n':
                sbuf_append(b, "\\n", 2);
                break;
            case '\r':
                sbuf_append(b, "\\r", 2);
                break;
            case '\t':
                sbuf_append(b, "\\t", 2);
                break;
            case '\b':
                sbuf_append(b, "\\b", 2);
                break;
            case '\f':
                sbuf_append(b, "\\f", 2);
                break;
            default:
                sbuf_printf(b, "\\u%04x", c);
            }
            i++;
        } else if (c < 0x80) {
            sbuf_append(b, s + i, 1);
            i++;
        } else {
            size_t n = _utf8_len(p + i, len - i);
            if (n == 0) {
                sbuf_append(b, "\\ufffd", 6); /* JSON text must be UTF-8 */
                i++;
            } else {
                sbuf_append(b, s + i, n);
                i += n;
            }
        }
    }
    sbuf_append(b, "\"", 1);
}

void format_double(char *out, size_t out_len, double x) {
    if (isnan(x)) {
        snprintf(out, out_len, "nan");
        return;
    }
    if (isinf(x)) {
        snprintf(out, out_len, "%s", x < 0 ? "-inf" : "inf");
        return;
    }
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(out, out_len, "%.*g", precision, x);
        if (strtod(out, NULL) == x) {
            return;
        }
    }
}

void format_float(char *out, size_t out_len, float x) {
    if (isnan(x) || isinf(x)) {
        format_double(out, out_len, (double)x);
        return;
    }
    for (int precision = 1; precision <= 9; precision++) {
        snprintf(out, out_len, "%.*g", precision, (double)x);
        if (strtof(out, NULL) == x) {
            return;
        }
    }
}

/* JSON has no NaN or infinities: write them as strings, as protobuf's JSON mapping does. */
static void _json_number_text(struct sbuf *b, const char *text, double x) {
    if (isnan(x)) {
        sbuf_printf(b, "\"NaN\"");
    } else if (isinf(x)) {
        sbuf_printf(b, "\"%sInfinity\"", x < 0 ? "-" : "");
    } else {
        sbuf_printf(b, "%s", text);
    }
}

void json_double(struct sbuf *b, double x) {
    char text[40];
    format_double(text, sizeof text, x);
    _json_number_text(b, text, x);
}

void json_float(struct sbuf *b, float x) {
    char text[40];
    format_float(text, sizeof text, x);
    _json_number_text(b, text, (double)x);
}

void json_base64(struct sbuf *b, const uint8_t *data, size_t len) {
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    sbuf_append(b, "\"", 1);
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16;
        if (i + 1 < len) {
            v |= (uint32_t)data[i + 1] << 8;
        }
        if (i + 2 < len) {
            v |= data[i + 2];
        }
        char quad[4] = {alphabet[v >> 18], alphabet[(v >> 12) & 63],
                        i + 1 < len ? alphabet[(v >> 6) & 63] : '=',
                        i + 2 < len ? alphabet[v & 63] : '='};
        sbuf_append(b, quad, 4);
    }
    sbuf_append(b, "\"", 1);
}

/* ---- text for people --------------------------------------------------------------------- */

void format_quoted(struct sbuf *b, const char *s, size_t len) {
    /* JSON's escaping is what people expect of a quoted string: \n, \", \u0001. */
    json_string(b, s, len);
}

void format_bytes(char *out, size_t out_len, uint64_t bytes) {
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

void format_duration_s(char *out, size_t out_len, int64_t seconds) {
    static const struct {
        int64_t s;
        const char *unit;
    } units[] = {{86400, "d"}, {3600, "h"}, {60, "m"}};
    if (seconds == 0) {
        snprintf(out, out_len, "0 (never stale)");
        return;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (seconds % units[i].s == 0) {
            snprintf(out, out_len, "%" PRId64 "%s", seconds / units[i].s, units[i].unit);
            return;
        }
    }
    snprintf(out, out_len, "%" PRId64 "s", seconds);
}

void format_time_us(char *out, size_t out_len, int64_t us) {
    time_t s = (time_t)(us / 1000000);
    struct tm tm;
    if (us <= 0 || gmtime_r(&s, &tm) == NULL) {
        snprintf(out, out_len, "never");
        return;
    }
    strftime(out, out_len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void format_staleness_ms(char *out, size_t out_len, int64_t ms) {
    if (ms < 0) {
        snprintf(out, out_len, "no row");
    } else if (ms < 1000) {
        snprintf(out, out_len, "%" PRId64 "ms", ms);
    } else if (ms < 60 * 1000) {
        snprintf(out, out_len, "%.1fs", (double)ms / 1e3);
    } else if (ms < 3600 * 1000) {
        snprintf(out, out_len, "%.1fm", (double)ms / 6e4);
    } else if (ms < 86400 * 1000) {
        snprintf(out, out_len, "%.1fh", (double)ms / 3.6e6);
    } else {
        snprintf(out, out_len, "%.1fd", (double)ms / 8.64e7);
    }
}

/* ---- table ------------------------------------------------------------------------------- */

struct table {
    size_t ncolumns;
    char **cells;
    size_t ncells, cap;
};

struct table *table_create(size_t ncolumns) {
    struct table *t = calloc(1, sizeof(*t));
    if (t != NULL) {
        t->ncolumns = ncolumns ? ncolumns : 1;
    }
    return t;
}

/* Cuts `s` to _CELL_MAX_CHARS characters on a UTF-8 boundary. */
static char *_cell_copy(const char *s) {
    size_t len = strlen(s), i = 0, chars = 0;
    while (i < len && chars < _CELL_MAX_CHARS) {
        size_t n = _utf8_len((const unsigned char *)s + i, len - i);
        i += n ? n : 1;
        chars++;
    }
    bool cut = i < len;
    char *copy = malloc(i + (cut ? 4 : 1));
    if (copy != NULL) {
        memcpy(copy, s, i);
        strcpy(copy + i, cut ? "..." : "");
    }
    return copy;
}

void table_add(struct table *t, const char *cell) {
    if (t == NULL) {
        return;
    }
    if (t->ncells == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        char **grown = realloc(t->cells, cap * sizeof(*grown));
        if (grown == NULL) {
            return;
        }
        t->cells = grown;
        t->cap = cap;
    }
    char *copy = _cell_copy(cell);
    if (copy != NULL) {
        t->cells[t->ncells++] = copy;
    }
}

void table_print(const struct table *t, FILE *out, const char *indent) {
    if (t == NULL) {
        return;
    }
    size_t *width = calloc(t->ncolumns, sizeof(*width));
    if (width == NULL) {
        return;
    }
    for (size_t i = 0; i < t->ncells; i++) {
        size_t w = _display_width(t->cells[i]);
        if (w > width[i % t->ncolumns]) {
            width[i % t->ncolumns] = w;
        }
    }
    for (size_t i = 0; i < t->ncells; i++) {
        size_t c = i % t->ncolumns;
        bool last = c + 1 == t->ncolumns || i + 1 == t->ncells;
        if (c == 0) {
            fputs(indent, out);
        }
        fputs(t->cells[i], out);
        if (last) {
            fputc('\n', out);
        } else {
            for (size_t pad = _display_width(t->cells[i]); pad < width[c] + 2; pad++) {
                fputc(' ', out);
            }
        }
    }
    free(width);
}

void table_destroy(struct table *t) {
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->ncells; i++) {
        free(t->cells[i]);
    }
    free(t->cells);
    free(t);
}
