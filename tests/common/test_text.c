/*
 * common/: the growth buffer, UTF-8 validation, the JSON writer and the number and time text
 * forms. Regression: /status turned invalid JSON when a LoadSnapshot path held a 0xff byte,
 * because its JSON escaper copied bytes that are not UTF-8 into the document.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_is_checked_strictly),
        cmocka_unit_test(test_buf_grows_and_resets),
        cmocka_unit_test(test_json_strings_are_always_valid_json),
        cmocka_unit_test(test_number_and_time_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
