/* The strict JSON reader of json_reader.h. */
#include "json_reader.h"

#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "utf8.h"

/* Numbers longer than this are refused rather than copied anywhere (strtod needs a NUL). */
#define JSON_NUMBER_MAX_CHARS 400

static bool _fail(struct json_reader *r, const char *what) {
    if (r->error == NULL) {
        r->error = what;
        r->error_at = (size_t)(r->p - r->start);
    }
    return false;
}

static void _space(struct json_reader *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t')) {
        r->p++;
    }
}

/* Skips whitespace, then consumes `c` if it is next. */
static bool _take(struct json_reader *r, char c) {
    _space(r);
    if (r->p < r->end && *r->p == c) {
        r->p++;
        return true;
    }
    return false;
}

void json_reader_init(struct json_reader *r, const void *data, size_t len, unsigned max_depth) {
    r->start = data;
    r->p = data;
    r->end = r->start + len;
    r->depth = 0;
    r->max_depth = max_depth;
    r->error = NULL;
    r->error_at = 0;
}

enum json_kind json_reader_peek(struct json_reader *r) {
    _space(r);
    if (r->error != NULL || r->p >= r->end) {
        return JSON_KIND_NONE;
    }
    switch (*r->p) {
    case '{':
        return JSON_KIND_OBJECT;
    case '[':
        return JSON_KIND_ARRAY;
    case '"':
        return JSON_KIND_STRING;
    case 't':
    case 'f':
        return JSON_KIND_BOOL;
    case 'n':
        return JSON_KIND_NULL;
    default:
        return *r->p == '-' || (*r->p >= '0' && *r->p <= '9') ? JSON_KIND_NUMBER : JSON_KIND_NONE;
    }
}

bool json_reader_at_end(struct json_reader *r) {
    _space(r);
    return r->error == NULL && r->p == r->end;
}

/* ---- containers ------------------------------------------------------------------------- */

static bool _open(struct json_reader *r, char bracket, const char *what) {
    if (r->error != NULL) {
        return false;
    }
    _space(r);
    if (r->p >= r->end || *r->p != bracket) {
        return _fail(r, r->p >= r->end ? "unexpected end of input" : what);
    }
    if (r->depth >= r->max_depth) {
        return _fail(r, "nesting too deep");
    }
    r->p++;
    r->depth++;
    return true;
}

/* Before the next item of a container: its comma (not before the first), or the closing
 * bracket, which ends the container (false, no error). */
static bool _next_item(struct json_reader *r, size_t index, char close, const char *what) {
    if (r->error != NULL) {
        return false;
    }
    if (_take(r, close)) {
        r->depth--;
        return false;
    }
    if (index > 0 && !_take(r, ',')) {
        return _fail(r, r->p >= r->end ? "unexpected end of input" : what);
    }
    return true;
}

bool json_reader_object_begin(struct json_reader *r) {
    return _open(r, '{', "expected an object");
}

bool json_reader_member(struct json_reader *r, size_t index, struct json_span *key) {
    if (!_next_item(r, index, '}', "expected ',' or '}' after an object member")) {
        return false;
    }
    _space(r);
    if (r->p >= r->end || *r->p != '"') {
        return _fail(r, r->p >= r->end ? "unexpected end of input" : "expected a string key");
    }
    if (!json_reader_string(r, key)) {
        return false;
    }
    if (!_take(r, ':')) {
        return _fail(r, "expected ':' after an object key");
    }
    return true;
}

bool json_reader_array_begin(struct json_reader *r) {
    return _open(r, '[', "expected an array");
}

bool json_reader_element(struct json_reader *r, size_t index) {
    return _next_item(r, index, ']', "expected ',' or ']' after an array element");
}

/* ---- scalars ---------------------------------------------------------------------------- */

/* The code unit of the 4 hex digits at p (p + 4 <= end), or -1. */
static long _hex4(const char *p) {
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = parse_hex_digit(p[i]);
        if (h < 0) {
            return -1;
        }
        v = v * 16 + h;
    }
    return v;
}

bool json_reader_string(struct json_reader *r, struct json_span *out) {
    if (r->error != NULL) {
        return false;
    }
    _space(r);
    if (r->p >= r->end || *r->p != '"') {
        return _fail(r, r->p >= r->end ? "unexpected end of input" : "expected a string");
    }
    const char *content = ++r->p, *p = content;
    bool escaped = false;
    while (p < r->end) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            out->raw = content;
            out->raw_len = (size_t)(p - content);
            out->escaped = escaped;
            r->p = p + 1;
            return true;
        }
        if (c >= 0x20 && c < 0x80 && c != '\\') {
            p++; /* plain ASCII, the common case */
            continue;
        }
        if (c < 0x20) {
            r->p = p; /* errors point at the byte that broke */
            return _fail(r, "a control character in a string (escape it)");
        }
        if (c >= 0x80) {
            size_t n = utf8_sequence_len((const uint8_t *)p, (size_t)(r->end - p));
            if (n == 0) {
                r->p = p;
                return _fail(r, "invalid UTF-8 in a string");
            }
            p += n;
            continue;
        }
        escaped = true; /* a backslash */
        r->p = p;
        if (p + 1 >= r->end) {
            break;
        }
        char e = p[1];
        if (e == 'u') {
            long unit = p + 6 <= r->end ? _hex4(p + 2) : -1;
            if (unit < 0) {
                return _fail(r, "a \\u escape needs 4 hex digits");
            }
            p += 6;
            if (unit >= 0xDC00 && unit <= 0xDFFF) {
                return _fail(r, "a lone low surrogate in a \\u escape");
            }
            if (unit >= 0xD800 && unit <= 0xDBFF) { /* must pair with a low surrogate */
                long low = p + 6 <= r->end && p[0] == '\\' && p[1] == 'u' ? _hex4(p + 2) : -1;
                if (low < 0xDC00 || low > 0xDFFF) {
                    return _fail(r, "a high surrogate not followed by a low one");
                }
                p += 6;
            }
        } else if (e != '\0' && strchr("\"\\/bfnrt", e) != NULL) {
            p += 2;
        } else {
            return _fail(r, "an unknown escape in a string");
        }
    }
    r->p = r->end;
    return _fail(r, "unexpected end of input in a string");
}

bool json_reader_number(struct json_reader *r, struct json_number *out) {
    if (r->error != NULL) {
        return false;
    }
    _space(r);
    const char *p = r->p, *begin = r->p;
    bool negative = p < r->end && *p == '-';
    p += negative;
    /* The grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
    if (p >= r->end || *p < '0' || *p > '9') {
        r->p = p;
        return _fail(r, p >= r->end ? "unexpected end of input"
                        : negative  ? "a number's '-' needs digits after it"
                                    : "expected a number");
    }
    uint64_t magnitude = 0;
    bool overflow = false;
    if (*p == '0') {
        p++;
    } else {
        for (; p < r->end && *p >= '0' && *p <= '9'; p++) {
            unsigned digit = (unsigned)(*p - '0');
            if (magnitude > (UINT64_MAX - digit) / 10) {
                overflow = true;
            } else {
                magnitude = magnitude * 10 + digit;
            }
        }
    }
    bool integer = true;
    if (p < r->end && *p == '.') {
        integer = false;
        const char *digits = ++p;
        while (p < r->end && *p >= '0' && *p <= '9') {
            p++;
        }
        if (p == digits) {
            r->p = p;
            return _fail(r, "a number's '.' needs digits after it");
        }
    }
    if (p < r->end && (*p == 'e' || *p == 'E')) {
        integer = false;
        p++;
        if (p < r->end && (*p == '+' || *p == '-')) {
            p++;
        }
        const char *digits = p;
        while (p < r->end && *p >= '0' && *p <= '9') {
            p++;
        }
        if (p == digits) {
            r->p = p;
            return _fail(r, "a number's exponent needs digits");
        }
    }
    uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    out->is_integer = integer && !overflow && magnitude <= limit;
    if (out->is_integer) {
        out->integer = negative ? (int64_t)(0 - magnitude) : (int64_t)magnitude;
        out->real = (double)out->integer;
    } else {
        size_t len = (size_t)(p - begin);
        char text[JSON_NUMBER_MAX_CHARS + 1];
        if (len > JSON_NUMBER_MAX_CHARS) {
            return _fail(r, "a number longer than 400 characters");
        }
        memcpy(text, begin, len);
        text[len] = '\0';
        out->integer = 0;
        out->real = strtod(text, NULL); /* past double's range: +-HUGE_VAL, as Python's json */
    }
    r->p = p;
    return true;
}

static bool _literal(struct json_reader *r, const char *word, size_t len) {
    if ((size_t)(r->end - r->p) >= len && memcmp(r->p, word, len) == 0) {
        r->p += len;
        return true;
    }
    return false;
}

bool json_reader_bool(struct json_reader *r, bool *out) {
    if (r->error != NULL) {
        return false;
    }
    _space(r);
    if (_literal(r, "true", 4)) {
        *out = true;
        return true;
    }
    if (_literal(r, "false", 5)) {
        *out = false;
        return true;
    }
    return _fail(r, r->p >= r->end ? "unexpected end of input" : "expected true or false");
}

bool json_reader_null(struct json_reader *r) {
    if (r->error != NULL) {
        return false;
    }
    _space(r);
    return _literal(r, "null", 4) ||
           _fail(r, r->p >= r->end ? "unexpected end of input" : "expected null");
}

bool json_reader_skip(struct json_reader *r) {
    struct json_span span;
    struct json_number number;
    bool b;
    switch (json_reader_peek(r)) {
    case JSON_KIND_OBJECT: /* recursion is bounded by max_depth */
        if (!json_reader_object_begin(r)) {
            return false;
        }
        for (size_t i = 0; json_reader_member(r, i, &span); i++) {
            if (!json_reader_skip(r)) {
                return false;
            }
        }
        return r->error == NULL;
    case JSON_KIND_ARRAY:
        if (!json_reader_array_begin(r)) {
            return false;
        }
        for (size_t i = 0; json_reader_element(r, i); i++) {
            if (!json_reader_skip(r)) {
                return false;
            }
        }
        return r->error == NULL;
    case JSON_KIND_STRING:
        return json_reader_string(r, &span);
    case JSON_KIND_NUMBER:
        return json_reader_number(r, &number);
    case JSON_KIND_BOOL:
        return json_reader_bool(r, &b);
    case JSON_KIND_NULL:
        return json_reader_null(r);
    default:
        return _fail(r, r->p >= r->end ? "unexpected end of input" : "expected a value");
    }
}

/* ---- text ------------------------------------------------------------------------------- */

static char *_utf8(char *out, unsigned long cp) {
    if (cp < 0x80) {
        *out++ = (char)cp;
    } else if (cp < 0x800) {
        *out++ = (char)(0xC0 | (cp >> 6));
        *out++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *out++ = (char)(0xE0 | (cp >> 12));
        *out++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *out++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *out++ = (char)(0xF0 | (cp >> 18));
        *out++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *out++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *out++ = (char)(0x80 | (cp & 0x3F));
    }
    return out;
}

/* The reader checked every escape, so this one trusts them. A \u escape is 6 bytes and its
 * UTF-8 at most 3 (a pair: 12 bytes, 4), so the text never outgrows the JSON. */
size_t json_span_text(const struct json_span *span, char *out) {
    if (!span->escaped) {
        memcpy(out, span->raw, span->raw_len);
        out[span->raw_len] = '\0';
        return span->raw_len;
    }
    const char *p = span->raw, *end = span->raw + span->raw_len;
    char *o = out;
    while (p < end) {
        if (*p != '\\') {
            *o++ = *p++;
            continue;
        }
        char e = p[1];
        p += 2;
        switch (e) {
        case 'b':
            *o++ = '\b';
            break;
        case 'f':
            *o++ = '\f';
            break;
        case 'n':
            *o++ = '\n';
            break;
        case 'r':
            *o++ = '\r';
            break;
        case 't':
            *o++ = '\t';
            break;
        case 'u': {
            unsigned long cp = (unsigned long)_hex4(p);
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) { /* the pair the reader checked */
                unsigned long low = (unsigned long)_hex4(p + 2);
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            }
            o = _utf8(o, cp);
            break;
        }
        default: /* " \ / */
            *o++ = e;
            break;
        }
    }
    *o = '\0';
    return (size_t)(o - out);
}

bool json_span_is(const struct json_span *span, const char *name) {
    size_t len = strlen(name);
    if (!span->escaped) {
        return span->raw_len == len && memcmp(span->raw, name, len) == 0;
    }
    /* Each byte of text takes at most 6 bytes of JSON (\u0041): longer JSON is longer text. */
    if (span->raw_len > 6 * len) {
        return false;
    }
    char small[256], *text = span->raw_len < sizeof small ? small : malloc(span->raw_len + 1);
    bool same = text != NULL && json_span_text(span, text) == len && memcmp(text, name, len) == 0;
    if (text != small) {
        free(text);
    }
    return same;
}
