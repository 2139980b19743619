#include "json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "text.h"
#include "utf8.h"

void json_string(struct buf *b, const char *s, size_t len) {
    const uint8_t *p = (const uint8_t *)s;
    buf_add(b, "\"", 1);
    size_t plain = 0; /* bytes copied as they are, written in runs */
    for (size_t i = 0; i < len;) {
        uint8_t c = p[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            i++; /* printable ASCII but the quote and the backslash: copied as it is */
            continue;
        }
        const char *escape = NULL;
        char hex[8];
        size_t n = 1;
        if (c == '"') {
            escape = "\\\"";
        } else if (c == '\\') {
            escape = "\\\\";
        } else if (c == '\n') {
            escape = "\\n";
        } else if (c == '\r') {
            escape = "\\r";
        } else if (c == '\t') {
            escape = "\\t";
        } else if (c == '\b') {
            escape = "\\b";
        } else if (c == '\f') {
            escape = "\\f";
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(hex, sizeof hex, "\\u%04x", c);
            escape = hex;
        } else if (c >= 0x80 && (n = utf8_sequence_len(p + i, len - i)) == 0) {
            escape = "\\ufffd";
            n = 1;
        }
        if (escape != NULL) {
            buf_add(b, s + plain, i - plain);
            buf_puts(b, escape);
            plain = i + n;
        }
        i += n;
    }
    buf_add(b, s + plain, len - plain);
    buf_add(b, "\"", 1);
}

void json_cstring(struct buf *b, const char *s) {
    if (s == NULL) {
        buf_puts(b, "null");
    } else {
        json_string(b, s, strlen(s));
    }
}

/* Formatted in place: a response of a thousand doubles spends its time here. */
void json_real(struct buf *b, double x, bool single, bool point) {
    if (isnan(x)) {
        buf_puts(b, "\"NaN\"");
        return;
    }
    if (isinf(x)) {
        buf_puts(b, x < 0 ? "\"-Infinity\"" : "\"Infinity\"");
        return;
    }
    char *room = buf_room(b, TEXT_NUMBER_MAX + 2);
    if (room == NULL) {
        return;
    }
    size_t n = single ? text_float(room, TEXT_NUMBER_MAX, (float)x)
                      : text_double(room, TEXT_NUMBER_MAX, x);
    if (point && memchr(room, '.', n) == NULL && memchr(room, 'e', n) == NULL) {
        memcpy(room + n, ".0", 2);
        n += 2;
    }
    buf_advance(b, n);
}

void json_double(struct buf *b, double x) {
    json_real(b, x, false, false);
}

void json_float(struct buf *b, float x) {
    json_real(b, (double)x, true, false);
}

void json_base64(struct buf *b, const uint8_t *data, size_t len) {
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    buf_add(b, "\"", 1);
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
        buf_add(b, quad, 4);
    }
    buf_add(b, "\"", 1);
}

bool json_base64_decode(const char *text, size_t len, uint8_t *out, size_t *out_len) {
    while (len > 0 && text[len - 1] == '=') {
        len--;
    }
    if (len % 4 == 1) {
        return false;
    }
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        int v = c >= 'A' && c <= 'Z'   ? c - 'A'
                : c >= 'a' && c <= 'z' ? c - 'a' + 26
                : c >= '0' && c <= '9' ? c - '0' + 52
                : c == '+'             ? 62
                : c == '/'             ? 63
                                       : -1;
        if (v < 0) {
            return false;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    *out_len = n;
    return true;
}
