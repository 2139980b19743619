/*
 * common/: the growth buffer, UTF-8 validation, the JSON writer and the number and time text
 * forms. Regression: /status turned invalid JSON when a LoadSnapshot path held a 0xff byte,
 * because its JSON escaper copied bytes that are not UTF-8 into the document.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/text.h"
#include "common/utf8.h"

#define U(lit) ((const uint8_t *)(lit)), (sizeof(lit) - 1)

static void test_utf8_is_checked_strictly(void **state) {
    (void)state;
    assert_true(utf8_valid(U("")));
    assert_true(utf8_valid(U("ascii\0nul")));
    assert_true(utf8_valid(U("\xc3\xb6 \xe2\x9c\x93 \xf0\x9f\x98\x80")));
    assert_false(utf8_valid(U("\xff\xfe")));         /* not UTF-8 at all */
    assert_false(utf8_valid(U("\xc0\xaf")));         /* overlong '/' */
    assert_false(utf8_valid(U("\xed\xa0\x80")));     /* a surrogate */
    assert_false(utf8_valid(U("\xf4\x90\x80\x80"))); /* above U+10FFFF */
    assert_false(utf8_valid(U("ok\xe2\x9c")));       /* cut short */
    assert_false(utf8_valid(U("\x80")));             /* a stray continuation byte */
    assert_int_equal(utf8_sequence_len(U("\xf0\x9f\x98\x80")), 4);
    assert_int_equal(utf8_sequence_len(U("\xe2\x9c\x93")), 3);
    assert_int_equal(utf8_sequence_len(U("\xe2\x9c")), 0);
}

static void test_buf_grows_and_resets(void **state) {
    (void)state;
    struct buf b = {0};
    for (int i = 0; i < 1000; i++) {
        buf_printf(&b, "%04d,", i);
    }
    assert_false(b.failed);
    assert_int_equal(b.len, 5000);
    assert_int_equal(strlen(b.data), 5000);
    assert_memory_equal(b.data + 4995, "0999,", 5);
    char big[600];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    buf_reset(&b);
    buf_printf(&b, "[%s]", big); /* longer than the printf fast path */
    assert_int_equal(b.len, sizeof big + 1);
    assert_true(b.data[0] == '[' && b.data[b.len - 1] == ']');
    buf_puts(&b, "!");
    buf_add(&b, "ab", 1);
    assert_string_equal(b.data + b.len - 2, "!a");
    buf_free(&b);
    /* Repeats copy text the buffer holds, also when the copy makes it grow. */
    buf_puts(&b, "[1, 2]");
    for (int i = 0; i < 200; i++) {
        buf_repeat(&b, 0, 6);
    }
    assert_false(b.failed);
    assert_int_equal(b.len, 6 * 201);
    assert_memory_equal(b.data + b.len - 12, "[1, 2][1, 2]", 12);
    assert_int_equal(strlen(b.data), b.len);
    buf_repeat(&b, b.len - 2, 3); /* a range past the end fails the buffer, copies nothing */
    assert_true(b.failed);
    assert_int_equal(b.len, 6 * 201);
    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

static struct buf json_out;

static const char *_json(const char *s, size_t len) {
    buf_reset(&json_out);
    json_string(&json_out, s, len);
    return json_out.data;
}

#define J(lit) _json((lit), sizeof(lit) - 1)

static void test_json_strings_are_always_valid_json(void **state) {
    (void)state;
    assert_string_equal(J("plain"), "\"plain\"");
    assert_string_equal(J("a\"b\\c\n\r\t\b\f"), "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\"");
    assert_string_equal(J("\x01\x1f\x7f"), "\"\\u0001\\u001f\\u007f\"");
    assert_string_equal(J("nul\0x"), "\"nul\\u0000x\"");
    assert_string_equal(J("\xc3\xb6"), "\"\xc3\xb6\"");                  /* UTF-8 kept */
    assert_string_equal(J("/d/\xff.parquet"), "\"/d/\\ufffd.parquet\""); /* not UTF-8 */
    assert_string_equal(J("\xe2\x9c"), "\"\\ufffd\\ufffd\"");            /* cut short */
    struct buf b = {0};
    json_cstring(&b, NULL);
    buf_puts(&b, " ");
    json_cstring(&b, "x");
    buf_puts(&b, " ");
    json_double(&b, 0.1);
    buf_puts(&b, " ");
    json_double(&b, 0.0 / 0.0);
    buf_puts(&b, " ");
    json_double(&b, -1.0 / 0.0);
    buf_puts(&b, " ");
    json_float(&b, 0.1f);
    buf_puts(&b, " ");
    json_base64(&b, (const uint8_t *)"\x00\xff\x10\x20", 4);
    assert_string_equal(b.data, "null \"x\" 0.1 \"NaN\" \"-Infinity\" 0.1 \"AP8QIA==\"");
    /* With `point`, whole numbers read as floats; the others are as without it. */
    buf_reset(&b);
    const double points[] = {3, -0.0, 0.5, 1e20, 1e-7, 0.0 / 0.0};
    for (size_t i = 0; i < sizeof points / sizeof points[0]; i++) {
        json_real(&b, points[i], false, true);
        buf_puts(&b, " ");
    }
    json_real(&b, 2.0, true, true);
    json_real(&b, 2.0, true, false);
    assert_string_equal(b.data, "3.0 -0.0 0.5 1e+20 1e-07 \"NaN\" 2.02");
    buf_free(&b);
    buf_free(&json_out);
}

static void test_number_and_time_text(void **state) {
    (void)state;
    char t[64];
    text_double(t, sizeof t, 0.1);
    assert_string_equal(t, "0.1");
    text_double(t, sizeof t, 1e100);
    assert_string_equal(t, "1e+100");
    text_double(t, sizeof t, 0.30000000000000004);
    assert_string_equal(t, "0.30000000000000004");
    text_double(t, sizeof t, -1.0 / 0.0);
    assert_string_equal(t, "-inf");
    text_float(t, sizeof t, 0.1f);
    assert_string_equal(t, "0.1");
    text_float(t, sizeof t, 16777217.0f); /* rounds to 16777216 */
    assert_string_equal(t, "16777216");
    text_bytes(t, sizeof t, 512);
    assert_string_equal(t, "512 B");
    text_bytes(t, sizeof t, 1536);
    assert_string_equal(t, "1.5 KiB");
    text_bytes(t, sizeof t, 3ull << 40);
    assert_string_equal(t, "3.0 TiB");
    text_time_utc(t, sizeof t, 1714564800LL * 1000000 + 999999);
    assert_string_equal(t, "2024-05-01T12:00:00Z");
}

/* What text_double and text_float wrote before their integer fast path: the first of
 * %.15g..%.17g (%.6g..%.9g) that reads back. The fast path must write the same text. */
static void _reference_double(char *out, size_t len, double x) {
    for (int p = 15; p <= 17; p++) {
        snprintf(out, len, "%.*g", p, x);
        if (strtod(out, NULL) == x) {
            return;
        }
    }
}

static void _reference_float(char *out, size_t len, float x) {
    for (int p = 6; p <= 9; p++) {
        snprintf(out, len, "%.*g", p, (double)x);
        if (strtof(out, NULL) == x) {
            return;
        }
    }
}

static uint64_t _rng = 88172645463325252ull;
static uint64_t _next(void) {
    _rng ^= _rng << 13;
    _rng ^= _rng >> 7;
    _rng ^= _rng << 17;
    return _rng;
}

static void test_doubles_and_floats_match_printf_shortest(void **state) {
    (void)state;
    char got[64], want[64];
    /* Random bit patterns near every magnitude the fast path takes and past its edges, short
     * decimals (0.1, 12.5), integers, halves and ties, powers of two. */
    for (int i = 0; i < 300000; i++) {
        double x;
        switch (i % 6) {
        case 0: { /* any finite double between 1e-5 and 1e17 */
            double mag = pow(10, (double)(_next() % 2200) / 100.0 - 5);
            x = mag * (1 + (double)(_next() % 1000000) / 1e6);
            break;
        }
        case 1: { /* raw bits: every exponent in range, every mantissa */
            uint64_t bits =
                (_next() & 0x000FFFFFFFFFFFFFull) | ((uint64_t)(1000 + _next() % 70) << 52);
            memcpy(&x, &bits, 8);
            break;
        }
        case 2:
            x = (double)(int64_t)(_next() % 2000000001) / pow(10, (double)(_next() % 12));
            break;
        case 3:
            x = (double)(_next() % 100000000) + 0.5 * (double)(_next() % 4) / 2;
            break;
        case 4:
            x = ldexp(1.0, (int)(_next() % 100) - 40);
            break;
        default:
            x = (double)(_next() % (1ull << 53)) / (double)(1ull << (_next() % 60));
            break;
        }
        if (_next() & 1) {
            x = -x;
        }
        size_t len = text_double(got, sizeof got, x);
        _reference_double(want, sizeof want, x);
        if (strcmp(got, want) != 0 || strtod(got, NULL) != x || len != strlen(got)) {
            fail_msg("double %a: wrote %s, printf's shortest is %s", x, got, want);
        }
        float fx = (float)x;
        if (isfinite(fx)) {
            len = text_float(got, sizeof got, fx);
            _reference_float(want, sizeof want, fx);
            if (strcmp(got, want) != 0 || strtof(got, NULL) != fx || len != strlen(got)) {
                fail_msg("float %a: wrote %s, printf's shortest is %s", (double)fx, got, want);
            }
        }
    }
    text_double(got, sizeof got, 0.1);
    assert_string_equal(got, "0.1");
    text_double(got, sizeof got, -1234.5);
    assert_string_equal(got, "-1234.5");
    text_double(got, sizeof got, 0.001);
    assert_string_equal(got, "0.001");
    text_float(got, sizeof got, 0.1f);
    assert_string_equal(got, "0.1");
}

static void test_base64_round_trips(void **state) {
    (void)state;
    uint8_t data[64], back[64 / 3 * 4 + 8];
    for (size_t len = 0; len < sizeof data; len++) {
        for (size_t i = 0; i < len; i++) {
            data[i] = (uint8_t)_next();
        }
        struct buf b = {0};
        json_base64(&b, data, len);
        size_t n = 0;
        /* the JSON string without its quotes; padding optional on the way back */
        assert_true(json_base64_decode(b.data + 1, b.len - 2, back, &n));
        assert_int_equal(n, len);
        assert_memory_equal(back, data, len);
        size_t unpadded = b.len - 2;
        while (unpadded > 0 && b.data[unpadded] == '=') {
            unpadded--;
        }
        assert_true(json_base64_decode(b.data + 1, unpadded, back, &n));
        assert_int_equal(n, len);
        buf_free(&b);
    }
    size_t n;
    assert_false(json_base64_decode("ab$d", 4, back, &n));
    assert_false(json_base64_decode("a", 1, back, &n));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_is_checked_strictly),
        cmocka_unit_test(test_buf_grows_and_resets),
        cmocka_unit_test(test_json_strings_are_always_valid_json),
        cmocka_unit_test(test_number_and_time_text),
        cmocka_unit_test(test_doubles_and_floats_match_printf_shortest),
        cmocka_unit_test(test_base64_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
