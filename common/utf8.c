#include "utf8.h"

size_t utf8_sequence_len(const uint8_t *s, size_t len) {
    uint8_t c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        n = 2, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4, cp = c & 0x07;
    } else {
        return 0;
    }
    if (n > len) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = cp << 6 | (s[i] & 0x3f);
    }
    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return n;
}

bool utf8_valid(const uint8_t *s, size_t len) {
    for (size_t i = 0; i < len;) {
        if (s[i] < 0x80) { /* the common case, without the call */
            i++;
            continue;
        }
        size_t n = utf8_sequence_len(s + i, len - i);
        if (n == 0) {
            return false;
        }
        i += n;
    }
    return true;
}
