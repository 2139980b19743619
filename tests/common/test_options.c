/*
 * common/options: the text forms of durations and sizes, and the machinery on a table of its
 * own (the daemon's table is tested in tests/daemon/test_options.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/options.h"

static char err[512];

static void test_durations(void **state) {
    (void)state;
    static const struct {
        const char *text;
        int64_t us;
    } good[] = {
        {"0", 0},          {"500ms", 500000},      {"30s", 30000000},
        {"5m", 300000000}, {"24h", 86400000000LL}, {"7d", 604800000000LL},
        {"90", 90000000},  {"250us", 250},         {"0s", 0},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t us = -1;
        assert_int_equal(option_parse_duration(good[i].text, &us, err, sizeof err), 0);
        assert_true(us == good[i].us);
    }
    static const char *const bad[] = {
        "",      "1.5h", "-1s", "5 m", "5M",  "1w",   "s",
        "1h30m", " 1",   "1 ",  "+1",  "0x1", "10ns", "99999999999999999999d"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t us;
        if (option_parse_duration(bad[i], &us, err, sizeof err) != -1) {
            fail_msg("accepted \"%s\"", bad[i]);
        }
    }
    assert_string_equal(err, "invalid duration \"99999999999999999999d\" (expected 0, 500ms, 30s, "
                             "5m, 24h, 7d or a number of seconds)");
    char buf[32];
    static const struct {
        int64_t us;
        const char *text;
    } formats[] = {{0, "0"},         {1000, "1ms"},         {1500000, "1500ms"},
                   {60000000, "1m"}, {86400000000LL, "1d"}, {90000000, "90s"},
                   {7, "7us"}};
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        option_format_duration(formats[i].us, buf, sizeof buf);
        assert_string_equal(buf, formats[i].text);
        int64_t back;
        assert_int_equal(option_parse_duration(buf, &back, err, sizeof err), 0);
        assert_true(back == formats[i].us);
    }
}

static void test_sizes(void **state) {
    (void)state;
    uint64_t bytes;
    assert_int_equal(option_parse_size("4MiB", &bytes, err, sizeof err), 0);
    assert_true(bytes == 4u << 20);
    assert_int_equal(option_parse_size("512KiB", &bytes, err, sizeof err), 0);
    assert_true(bytes == 512u << 10);
    assert_int_equal(option_parse_size("1GiB", &bytes, err, sizeof err), 0);
    assert_true(bytes == 1u << 30);
    assert_int_equal(option_parse_size("100", &bytes, err, sizeof err), 0);
    assert_true(bytes == 100);
    assert_int_equal(option_parse_size("100B", &bytes, err, sizeof err), 0);
    assert_true(bytes == 100);
    static const char *const bad[] = {"4MB", "4 MiB", "4mib", "-1", "1.5MiB", "", "MiB", "4K"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (option_parse_size(bad[i], &bytes, err, sizeof err) != -1) {
            fail_msg("accepted \"%s\"", bad[i]);
        }
    }
    char buf[32];
    option_format_size(4u << 20, buf, sizeof buf);
    assert_string_equal(buf, "4MiB");
    option_format_size(1536, buf, sizeof buf);
    assert_string_equal(buf, "1536");
    option_format_size(1u << 30, buf, sizeof buf);
    assert_string_equal(buf, "1GiB");
}

/* A module's struct, with a field that is not an option. */
struct toy_options {
    char name[8];
    uint32_t count;
    bool on;
    int64_t fixed; /* set by init, not read from the file */
};

static void _toy_init(void *values) {
    ((struct toy_options *)values)->fixed = 42;
}

static const char *const toy_levels[] = {"low", "high", NULL};

static const struct option_def toy_defs[] = {
    {.name = "name",
     .type = OPTION_STRING,
     .default_text = "abc",
     .min = 1,
     .max = 7,
     OPTION_STRING_AT(struct toy_options, name),
     .description = "A short name."},
    {.name = "count",
     .type = OPTION_UINT,
     .default_text = "8",
     .min = 1,
     .max = 64,
     .flags = OPTION_POWER_OF_TWO | OPTION_RELOADABLE,
     OPTION_UINT_AT(struct toy_options, count),
     .description = "A power of two."},
    {.name = "on",
     .type = OPTION_BOOL,
     .default_text = "false",
     OPTION_BOOL_AT(struct toy_options, on),
     .description = "A switch."},
};
static const struct option_group toy_group = {"toy", toy_defs, 3, _toy_init};

struct other_options {
    int level;
};
static const struct option_def other_defs[] = {
    {.name = "level",
     .type = OPTION_ENUM,
     .default_text = "low",
     .choices = toy_levels,
     OPTION_ENUM_AT(struct other_options, level),
     .description = "An enum."},
};
static const struct option_group other_group = {"toy", other_defs, 1, NULL};

struct block {
    struct toy_options toy;
    struct other_options other;
};
static const struct option_section sections[] = {{"toy", "Toys."}};
static const struct option_binding bindings[] = {
    OPTION_BIND(toy_group, struct block, toy),
    OPTION_BIND(other_group, struct block, other),
};
static const struct option_table table = {sections, 1, bindings, 2, sizeof(struct block)};

static void test_table(void **state) {
    (void)state;
    struct block a, b;
    memset(&a, 0xff, sizeof a);
    assert_int_equal(option_table_defaults(&table, &a, err, sizeof err), 0);
    assert_string_equal(a.toy.name, "abc");
    assert_int_equal(a.toy.count, 8);
    assert_false(a.toy.on);
    assert_int_equal(a.toy.fixed, 42); /* the group's init ran */
    assert_int_equal(a.other.level, 0);
    b = a; /* plain values: a copy needs nothing more */

    size_t offset = 99;
    const struct option_def *name = option_table_find(&table, "toy", "name", &offset);
    assert_ptr_equal(name, &toy_defs[0]);
    assert_int_equal(offset, offsetof(struct block, toy));
    assert_ptr_equal(option_table_find(&table, "toy", "level", &offset), &other_defs[0]);
    assert_int_equal(offset, offsetof(struct block, other));
    assert_null(option_table_find(&table, "toy", "nope", NULL));
    assert_null(option_table_find(&table, "other", "name", NULL));
    assert_non_null(option_table_section(&table, "toy"));
    assert_null(option_table_section(&table, "views"));
    const struct option_def *defs[OPTION_SECTION_MAX];
    assert_int_equal(option_table_section_defs(&table, "toy", defs, OPTION_SECTION_MAX), 4);
    assert_ptr_equal(defs[2], &toy_defs[2]);
    assert_ptr_equal(defs[3], &other_defs[0]); /* the groups of a section, one after another */
    assert_int_equal(option_table_section_defs(&table, "toy", defs, 2), 2);
    assert_int_equal(option_table_section_defs(&table, "views", defs, OPTION_SECTION_MAX), 0);

    /* strings: the bounds, and never past the field */
    assert_int_equal(option_set(name, &b.toy, "1234567", err, sizeof err), 0);
    assert_string_equal(b.toy.name, "1234567");
    assert_int_equal(option_set(name, &b.toy, "12345678", err, sizeof err), -1);
    assert_string_equal(err, "length 8 is out of bounds (1..7)");
    assert_int_equal(option_set(name, &b.toy, "", err, sizeof err), -1);
    assert_string_equal(b.toy.name, "1234567"); /* unchanged on error */

    const struct option_def *count = &toy_defs[1];
    assert_int_equal(option_set(count, &b.toy, "12", err, sizeof err), -1);
    assert_string_equal(err, "12 is not a power of two");
    assert_int_equal(option_set(count, &b.toy, "128", err, sizeof err), -1);
    assert_string_equal(err, "128 is out of bounds (1..64)");
    assert_int_equal(option_set(&other_defs[0], &b.other, "medium", err, sizeof err), -1);
    assert_string_equal(err, "unknown value \"medium\" (expected low, high)");
    assert_int_equal(option_set(&toy_defs[2], &b.toy, "yes", err, sizeof err), -1);
    char text[32];
    option_format(&other_defs[0], &b.other, text, sizeof text);
    assert_string_equal(text, "low");

    /* reload: count may change, name may not */
    b = a;
    assert_int_equal(option_set(count, &b.toy, "16", err, sizeof err), 0);
    assert_int_equal(option_reload_check(&table, &a, &b, err, sizeof err), 0);
    assert_int_equal(option_set(name, &b.toy, "xyz", err, sizeof err), 0);
    assert_int_equal(option_set(&other_defs[0], &b.other, "high", err, sizeof err), 0);
    assert_int_equal(option_reload_check(&table, &a, &b, err, sizeof err), -1);
    assert_string_equal(err, "toy.name: abc -> xyz (needs a restart); "
                             "toy.level: low -> high (needs a restart)");
}

static void test_docs(void **state) {
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    option_print_help(&table, f);
    fclose(f);
    assert_non_null(strstr(text, "\ntoy:  Toys.\n"));
    assert_non_null(strstr(text,
                           "  toy.count (uint)\n      default: 8    bounds: 1..64, a power of "
                           "two    reload: yes\n      A power of two.\n"));
    assert_non_null(strstr(text, "  toy.level (enum)\n      default: low    bounds: low | high"));
    free(text);
    f = open_memstream(&text, &len);
    option_print_reference(&table, f);
    fclose(f);
    assert_string_equal(text, "# Toys.\n"
                              "toy:\n"
                              "  # A short name.\n"
                              "  # string, length 1..7; restart to change\n"
                              "  name: abc\n"
                              "\n"
                              "  # A power of two.\n"
                              "  # uint, 1..64, a power of two; reloadable (SIGHUP)\n"
                              "  count: 8\n"
                              "\n"
                              "  # A switch.\n"
                              "  # bool, true | false; restart to change\n"
                              "  on: false\n"
                              "\n"
                              "  # An enum.\n"
                              "  # enum, low | high; restart to change\n"
                              "  level: low\n");
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_docs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
