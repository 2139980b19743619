/* common/parse: the text forms of ints, floats, timestamps and base64, at their edges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/parse.h"

static char err[512];

static void test_int(void **state) {
    (void)state;
    int64_t v;
    assert_int_equal(parse_int("-2147483648", INT32_MIN, INT32_MAX, "int32", &v, err, sizeof err),
                     0);
    assert_int_equal(v, INT32_MIN);
    assert_int_equal(parse_int("+5", INT32_MIN, INT32_MAX, "int32", &v, err, sizeof err), 0);
    assert_int_equal(v, 5);
    assert_int_equal(parse_int("0", INT32_MIN, INT32_MAX, "int32", &v, err, sizeof err), 0);
    assert_int_equal(parse_int("-0", INT32_MIN, INT32_MAX, "int32", &v, err, sizeof err), 0);
    assert_int_equal(
        parse_int("-9223372036854775808", INT64_MIN, INT64_MAX, "int64", &v, err, sizeof err), 0);
    assert_true(v == INT64_MIN);
    static const char *const bad[] = {"",     "-",   "2147483648", "007", " 5", "5 ",
                                      "0x10", "1e3", "1_000",      "5.0", "--5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(parse_int(bad[i], INT32_MIN, INT32_MAX, "int32", &v, err, sizeof err), -1);
    }
    assert_string_equal(err, "invalid int32 \"--5\" (expected a decimal integer)");
}

static void test_double_and_float(void **state) {
    (void)state;
    double d;
    float f;
    assert_int_equal(parse_double("0.1", &d, err, sizeof err), 0);
    assert_true(d == 0.1);
    assert_int_equal(parse_double("-1.7976931348623157e308", &d, err, sizeof err), 0);
    assert_true(d == -1.7976931348623157e308);
    assert_int_equal(parse_double("4.9e-324", &d, err, sizeof err), 0); /* subnormal */
    assert_true(d > 0);
    assert_int_equal(parse_double(".5", &d, err, sizeof err), 0);
    assert_true(d == 0.5);
    assert_int_equal(parse_double("5.", &d, err, sizeof err), 0);
    assert_int_equal(parse_double("1E+3", &d, err, sizeof err), 0);
    assert_true(d == 1000);
    assert_int_equal(parse_double("0e999", &d, err, sizeof err), 0); /* exactly zero */
    assert_true(d == 0);
    static const char *const bad[] = {"1e400", "1e-400", "nan", "inf", "-inf", ".inf", "0x10",
                                      "1e",    ".",      "",    " 1",  "1 ",   "1,5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(parse_double(bad[i], &d, err, sizeof err), -1);
    }
    assert_int_equal(parse_float("0.1", &f, err, sizeof err), 0);
    assert_true(f == 0.1f);
    assert_int_equal(parse_float("3.4028234e38", &f, err, sizeof err), 0);
    assert_int_equal(parse_float("3.5e38", &f, err, sizeof err), -1);
    assert_string_equal(err, "3.5e38 is out of range for float");
    assert_int_equal(parse_float("1e-50", &f, err, sizeof err), -1);
}

static void test_timestamp(void **state) {
    (void)state;
    static const struct {
        const char *text;
        int64_t us;
    } good[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"2024-01-02T03:04:05Z", 1704164645000000LL},
        {"2024-01-02t03:04:05z", 1704164645000000LL},
        {"2024-01-02T03:04:05.5+01:00", 1704161045500000LL},
        {"2024-02-29T12:00:00-05:30", 1709227800000000LL},
        {"1969-12-31T23:59:59.999999Z", -1},
        {"2024-01-02T03:04:05.123456000Z", 1704164645123456LL},
        {"2024-01-02T03:04:05-00:00", 1704164645000000LL},
        {"1704164645000000", 1704164645000000LL},
        {"-1", -1},
        {"0000-01-01T00:00:00Z", -62167219200000000LL},
        {"9999-12-31T23:59:59.999999Z", 253402300799999999LL},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t us = 42;
        if (parse_timestamp(good[i].text, &us, err, sizeof err) != 0) {
            fail_msg("%s: %s", good[i].text, err);
        }
        if (us != good[i].us) {
            fail_msg("%s: got %lld, want %lld", good[i].text, (long long)us, (long long)good[i].us);
        }
    }
    static const char *const bad[] = {
        "2023-02-29T00:00:00Z",         /* not a leap year */
        "2024-13-01T00:00:00Z",         /* month */
        "2024-01-32T00:00:00Z",         /* day */
        "2024-01-01T24:00:00Z",         /* hour */
        "2024-01-01T00:60:00Z",         /* minute */
        "2024-01-01T00:00:60Z",         /* leap second */
        "2024-01-01T00:00:00",          /* no offset */
        "2024-01-01",                   /* no time */
        "2024-01-01 00:00:00Z",         /* space instead of T */
        "2024-01-01T00:00:00.Z",        /* no fraction digits */
        "2024-01-01T00:00:00.1234567Z", /* finer than a microsecond */
        "2024-01-01T00:00:00+0100",     /* offset without colon */
        "2024-01-01T00:00:00+24:00",    /* offset hour */
        "2024-01-01T00:00:00Zjunk",     /* trailing text */
        "24-01-01T00:00:00Z",           /* two-digit year */
        "1.5",                          /* not an integer */
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t us;
        if (parse_timestamp(bad[i], &us, err, sizeof err) != -1) {
            fail_msg("accepted %s", bad[i]);
        }
    }
}

static void test_base64(void **state) {
    (void)state;
    uint8_t *out;
    size_t len;
    assert_int_equal(parse_base64("", &out, &len, err, sizeof err), 0);
    assert_int_equal(len, 0);
    free(out);
    assert_int_equal(parse_base64("aGk=", &out, &len, err, sizeof err), 0);
    assert_int_equal(len, 2);
    assert_memory_equal(out, "hi", 2);
    free(out);
    assert_int_equal(parse_base64("aGVsbG8gd29ybGQ=", &out, &len, err, sizeof err), 0);
    assert_int_equal(len, 11);
    assert_memory_equal(out, "hello world", 11);
    free(out);
    assert_int_equal(parse_base64("YQ==", &out, &len, err, sizeof err), 0);
    assert_int_equal(len, 1);
    assert_memory_equal(out, "a", 1);
    free(out);
    assert_int_equal(parse_base64("+/+/", &out, &len, err, sizeof err), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(out, "\xfb\xff\xbf", 3);
    free(out);
    static const char *const bad[] = {"aGk",  "aGk==", "a=Gk", "aG=k", "a===", "aGl=",
                                      "YR==", "aGk-",  "aGk_", "aG k", "====", "aGk=aGk="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse_base64(bad[i], &out, &len, err, sizeof err) != -1) {
            fail_msg("accepted %s", bad[i]);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int),
        cmocka_unit_test(test_double_and_float),
        cmocka_unit_test(test_timestamp),
        cmocka_unit_test(test_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
