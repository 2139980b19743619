/*
 * common/json_reader: documents walked value by value, every number and string form RFC 8259
 * has, and broken documents, each refused with what broke and where.
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

#include "common/json_reader.h"

static void _init(struct json_reader *r, const char *doc) {
    json_reader_init(r, doc, strlen(doc), 4);
}

static void test_a_document_walked_as_expected(void **state) {
    (void)state;
    const char *doc = " {\"ids\": [1, -2, 9223372036854775807, -9223372036854775808, 0],\n"
                      "  \"name\": \"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ \\/ \\n\",\n"
                      "  \"ratio\": 2.5e-3, \"on\": true, \"off\": false, \"none\": null,\n"
                      "  \"skipped\": {\"a\": [[], {}, \"x\", 1.0]}, \"\\u0069d\": 7} ";
    struct json_reader r;
    _init(&r, doc);
    struct json_span key, s;
    struct json_number n;
    bool b;
    int64_t want_ids[] = {1, -2, INT64_MAX, INT64_MIN, 0};
    int members = 0;
    assert_true(json_reader_object_begin(&r));
    for (size_t i = 0; json_reader_member(&r, i, &key); i++, members++) {
        if (json_span_is(&key, "ids")) {
            assert_int_equal(json_reader_peek(&r), JSON_KIND_ARRAY);
            assert_true(json_reader_array_begin(&r));
            size_t j = 0;
            for (; json_reader_element(&r, j); j++) {
                assert_true(json_reader_number(&r, &n));
                assert_true(n.is_integer);
                assert_true(n.integer == want_ids[j]);
            }
            assert_int_equal(j, 5);
        } else if (json_span_is(&key, "name")) {
            assert_true(json_reader_string(&r, &s));
            assert_true(s.escaped);
            char text[64];
            size_t len = json_span_text(&s, text);
            assert_string_equal(text, "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\" \\ / \n");
            assert_int_equal(len, strlen(text));
            assert_true(len <= s.raw_len);
        } else if (json_span_is(&key, "ratio")) {
            assert_true(json_reader_number(&r, &n));
            assert_false(n.is_integer);
            assert_true(n.real == 2.5e-3);
        } else if (json_span_is(&key, "on") || json_span_is(&key, "off")) {
            assert_int_equal(json_reader_peek(&r), JSON_KIND_BOOL);
            assert_true(json_reader_bool(&r, &b));
            assert_int_equal(b, json_span_is(&key, "on"));
        } else if (json_span_is(&key, "none")) {
            assert_true(json_reader_null(&r));
        } else if (json_span_is(&key, "id")) { /* "\u0069d": the key's text, not its JSON */
            assert_true(json_reader_number(&r, &n));
            assert_true(n.integer == 7);
        } else {
            assert_true(json_span_is(&key, "skipped"));
            assert_true(json_reader_skip(&r));
        }
    }
    assert_null(r.error);
    assert_int_equal(members, 8);
    assert_true(json_reader_at_end(&r));
}

static void test_numbers_past_int64_are_real(void **state) {
    (void)state;
    static const struct {
        const char *text;
        bool is_integer;
        double real;
    } cases[] = {
        {"9223372036854775808", false, 9223372036854775808.0},
        {"-9223372036854775809", false, -9223372036854775809.0},
        {"18446744073709551616", false, 18446744073709551616.0},
        {"123456789012345678901234567890", false, 1.2345678901234568e29},
        {"1e400", false, HUGE_VAL},
        {"-0", true, 0},
        {"0.1", false, 0.1},
        {"1E+2", false, 100},
        {"12", true, 12},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct json_reader r;
        struct json_number n;
        _init(&r, cases[i].text);
        assert_true(json_reader_number(&r, &n));
        assert_true(json_reader_at_end(&r));
        assert_int_equal(n.is_integer, cases[i].is_integer);
        assert_true(n.real == cases[i].real);
    }
}

static void test_broken_documents_say_what_and_where(void **state) {
    (void)state;
    static const struct {
        const char *doc;
        const char *error;
        size_t at;
    } cases[] = {
        {"", "unexpected end of input", 0},
        {"{\"a\": 1,}", "expected a string key", 8},
        {"{\"a\" 1}", "expected ':' after an object key", 5},
        {"{\"a\": 1 \"b\": 2}", "expected ',' or '}' after an object member", 8},
        {"[1 2]", "expected ',' or ']' after an array element", 3},
        {"[1,]", "expected a value", 3},
        {"[01]", "expected ',' or ']' after an array element", 2},
        {"[1.]", "a number's '.' needs digits after it", 3},
        {"[1e]", "a number's exponent needs digits", 3},
        {"[-]", "a number's '-' needs digits after it", 2},
        {"[+1]", "expected a value", 1},
        {"[tru]", "expected true or false", 1},
        {"[nul]", "expected null", 1},
        {"[NaN]", "expected a value", 1},
        {"[\"a\tb\"]", "a control character in a string (escape it)", 3},
        {"[\"a\xff\"]", "invalid UTF-8 in a string", 3},
        {"[\"\xc0\xaf\"]", "invalid UTF-8 in a string", 2},
        {"[\"\\x\"]", "an unknown escape in a string", 2},
        {"[\"\\u12\"]", "a \\u escape needs 4 hex digits", 2},
        {"[\"\\udc00\"]", "a lone low surrogate in a \\u escape", 2},
        {"[\"\\ud800x\"]", "a high surrogate not followed by a low one", 2},
        {"[\"abc", "unexpected end of input in a string", 5},
        {"[\"abc\\", "unexpected end of input in a string", 6},
        {"[[[[[1]]]]]", "nesting too deep", 4},
        {"{\"a\": [1, {\"b\": }]}", "expected a value", 16},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct json_reader r;
        _init(&r, cases[i].doc);
        bool ok = json_reader_skip(&r) && json_reader_at_end(&r);
        if (ok || r.error == NULL || strcmp(r.error, cases[i].error) != 0 ||
            r.error_at != cases[i].at) {
            fail_msg("%s: got %s at %zu, want %s at %zu", cases[i].doc, r.error ? r.error : "(ok)",
                     r.error_at, cases[i].error, cases[i].at);
        }
        /* once broken, every call fails */
        struct json_number n;
        assert_false(json_reader_number(&r, &n));
        assert_false(json_reader_at_end(&r));
    }
    struct json_reader r;
    _init(&r, "{} {}"); /* a second document is not whitespace */
    assert_true(json_reader_skip(&r));
    assert_false(json_reader_at_end(&r));
}

static void test_wrong_kinds_are_refused(void **state) {
    (void)state;
    struct json_reader r;
    struct json_span s;
    _init(&r, "42");
    assert_int_equal(json_reader_peek(&r), JSON_KIND_NUMBER);
    assert_false(json_reader_string(&r, &s));
    assert_string_equal(r.error, "expected a string");
    _init(&r, "[1]");
    assert_false(json_reader_object_begin(&r));
    assert_string_equal(r.error, "expected an object");
    _init(&r, "x");
    assert_int_equal(json_reader_peek(&r), JSON_KIND_NONE);
}

static void test_names_compare_by_their_text(void **state) {
    (void)state;
    struct json_reader r;
    struct json_span s;
    _init(&r, "\"\\u0066eatures\"");
    assert_true(json_reader_string(&r, &s));
    assert_true(json_span_is(&s, "features"));
    assert_false(json_span_is(&s, "feature"));
    assert_false(json_span_is(&s, "f"));
    char long_key[700];
    memcpy(long_key, "\"", 1);
    for (int i = 0; i < 100; i++) {
        memcpy(long_key + 1 + 6 * i, "\\u0061", 6); /* 100 x "a", 600 bytes of JSON */
    }
    memcpy(long_key + 601, "\"", 2);
    _init(&r, long_key);
    assert_true(json_reader_string(&r, &s));
    char want[101];
    memset(want, 'a', 100);
    want[100] = '\0';
    assert_true(json_span_is(&s, want));
    want[99] = '\0';
    assert_false(json_span_is(&s, want));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_document_walked_as_expected),
        cmocka_unit_test(test_numbers_past_int64_are_real),
        cmocka_unit_test(test_broken_documents_say_what_and_where),
        cmocka_unit_test(test_wrong_kinds_are_refused),
        cmocka_unit_test(test_names_compare_by_their_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
