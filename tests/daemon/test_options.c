/* The option table and the text forms it shares with the config loader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "common/log.h"
#include "materializer/snapshot/snapshot.h"
#include "options.h"

static char err[512];

/* Every default parses and lies within its own bounds, and every row is documented. */
static void test_table_is_consistent(void **state) {
    (void)state;
    struct option_values values;
    assert_int_equal(option_values_init(&values, err, sizeof err), 0);
    for (size_t s = 0; s < option_nsections; s++) {
        const struct option_section *section = &option_sections[s];
        assert_ptr_equal(option_section_find(section->name), section);
        for (size_t i = 0; i < section->ndefs; i++) {
            const struct option_def *def = &section->defs[i];
            assert_ptr_equal(option_def_find(section, def->name), def);
            assert_true(strlen(def->description) > 10);
            assert_true(def->min <= def->max || def->type == OPTION_BOOL ||
                        def->type == OPTION_ENUM);
            if (def->type == OPTION_UINT) {
                assert_true(def->max <= UINT32_MAX);
            }
            /* the formatted value reads back as the default text */
            char text[300];
            option_format(&values, def, text, sizeof text);
            assert_string_equal(text, def->default_text);
        }
    }
    assert_null(option_section_find("views"));
    assert_null(option_def_find(option_section_find("server"), "nope"));
    option_values_deinit(&values);
    option_values_deinit(&values); /* safe twice */
}

static void test_defaults(void **state) {
    (void)state;
    struct option_values v;
    assert_int_equal(option_values_init(&v, err, sizeof err), 0);
    assert_string_equal(v.server.grpc_bind, "127.0.0.1");
    assert_int_equal(v.server.grpc_port, 6566);
    assert_string_equal(v.server.stats_bind, "127.0.0.1");
    assert_int_equal(v.server.stats_port, 9466);
    assert_int_equal(v.server.workers, 0);
    assert_int_equal(v.server.max_batch, 10000);
    assert_int_equal(v.server.max_message_bytes, 4 << 20);
    assert_int_equal(v.server.default_budget_us, 1000);
    assert_int_equal(v.server.log_level, LOG_INFO);
    assert_int_equal(v.store.shards, 64);
    assert_int_equal(v.store.sweep_interval_ms, 1000);
    assert_int_equal(v.store.expiry_grace_us, 3600LL * 1000000);
    assert_int_equal(v.materializer.duckdb_threads, MAT_DUCKDB_THREADS);
    option_values_deinit(&v);
}

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

static void test_set_checks_bounds(void **state) {
    (void)state;
    struct option_values v;
    assert_int_equal(option_values_init(&v, err, sizeof err), 0);
    const struct option_section *server = option_section_find("server");
    const struct option_section *store = option_section_find("store");

    const struct option_def *workers = option_def_find(server, "workers");
    assert_int_equal(option_set(&v, workers, "256", err, sizeof err), 0);
    assert_int_equal(v.server.workers, 256);
    assert_int_equal(option_set(&v, workers, "257", err, sizeof err), -1);
    assert_string_equal(err, "257 is out of bounds (0..256)");
    assert_int_equal(v.server.workers, 256); /* unchanged on error */

    const struct option_def *shards = option_def_find(store, "shards");
    assert_int_equal(option_set(&v, shards, "4096", err, sizeof err), 0);
    assert_int_equal(option_set(&v, shards, "8192", err, sizeof err), -1);
    assert_int_equal(option_set(&v, shards, "100", err, sizeof err), -1);
    assert_string_equal(err, "100 is not a power of two");
    assert_int_equal(option_set(&v, shards, "0", err, sizeof err), -1);
    assert_int_equal(v.store.shards, 4096);

    const struct option_def *msg = option_def_find(server, "max_message_bytes");
    assert_int_equal(option_set(&v, msg, "32KiB", err, sizeof err), -1);
    assert_string_equal(err, "32KiB is out of bounds (64KiB..1GiB)");

    const struct option_def *bind = option_def_find(server, "grpc_bind");
    assert_int_equal(option_set(&v, bind, "::", err, sizeof err), 0);
    assert_string_equal(v.server.grpc_bind, "::");
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(option_set(&v, bind, longname, err, sizeof err), -1);
    assert_string_equal(err, "length 299 is out of bounds (1..255)");

    const struct option_def *level = option_def_find(server, "log_level");
    assert_int_equal(option_set(&v, level, "warn", err, sizeof err), 0);
    assert_int_equal(v.server.log_level, LOG_WARN);
    assert_int_equal(option_set(&v, level, "WARN", err, sizeof err), -1);
    option_values_deinit(&v);
}

static void test_reload_check(void **state) {
    (void)state;
    struct option_values a, b;
    assert_int_equal(option_values_init(&a, err, sizeof err), 0);
    assert_int_equal(option_values_init(&b, err, sizeof err), 0);
    const struct option_section *server = option_section_find("server");
    assert_int_equal(option_reload_check(&a, &b, err, sizeof err), 0);
    assert_int_equal(option_set(&b, option_def_find(server, "log_level"), "debug", err, sizeof err),
                     0);
    assert_int_equal(option_reload_check(&a, &b, err, sizeof err), 0); /* reloadable */
    assert_int_equal(option_set(&b, option_def_find(server, "grpc_port"), "7000", err, sizeof err),
                     0);
    assert_int_equal(option_reload_check(&a, &b, err, sizeof err), -1);
    assert_string_equal(err, "server.grpc_port: 6566 -> 7000 (needs a restart)");
    option_values_deinit(&a);
    option_values_deinit(&b);
}

static char *capture(void (*print)(FILE *)) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    print(f);
    fclose(f);
    return text;
}

/* --help-config and the reference config both list every option of the table. */
static void test_generated_docs_cover_every_option(void **state) {
    (void)state;
    char *help = capture(option_print_help);
    char *reference = capture(config_print_reference);
    for (size_t s = 0; s < option_nsections; s++) {
        const struct option_section *section = &option_sections[s];
        for (size_t i = 0; i < section->ndefs; i++) {
            const struct option_def *def = &section->defs[i];
            char want[256];
            snprintf(want, sizeof want, "%s.%s (", section->name, def->name);
            assert_non_null(strstr(help, want));
            /* an empty default is written as "" (a bare `key:` would read as null) */
            snprintf(want, sizeof want, "\n  %s: %s\n", def->name,
                     def->default_text[0] != '\0' ? def->default_text : "\"\"");
            assert_non_null(strstr(reference, want));
        }
    }
    assert_non_null(strstr(help, "bounds: 1..4096, a power of two    reload: no (restart)"));
    assert_non_null(strstr(help, "bounds: debug | info | warn | error    reload: yes"));
    assert_non_null(strstr(reference, "# enum, debug | info | warn | error; reloadable (SIGHUP)"));

    /* and the reference config is itself a valid config */
    struct fsd_config *config;
    static char errors[CONFIG_ERR_LEN];
    int rc = config_parse("reference.yaml", reference, strlen(reference), &config, errors,
                          sizeof errors);
    if (rc != 0) {
        fail_msg("%s", errors);
    }
    assert_int_equal(config->nviews, 2);
    assert_int_equal(config->nservices, 1);
    config_destroy(config);
    free(help);
    free(reference);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_is_consistent),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_set_checks_bounds),
        cmocka_unit_test(test_reload_check),
        cmocka_unit_test(test_generated_docs_cover_every_option),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
