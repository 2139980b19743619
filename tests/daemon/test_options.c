/*
 * The daemon's option table (daemon/options.c): every module's group, bound into struct
 * daemon_options. Every default parses, lies within its bounds and reads back as its text;
 * the values land in the modules' own structs; --help-config and the reference config list
 * every option, and the reference config is itself a valid config.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/log.h"
#include "config/config.h"
#include "daemon/options.h"

static char err[512];

static void _for_each(void (*fn)(const struct option_section *, const struct option_def *,
                                 const void *, void *),
                      const void *block, void *ctx) {
    const struct option_table *t = &daemon_option_table;
    for (size_t b = 0; b < t->nbindings; b++) {
        const struct option_group *g = t->bindings[b].group;
        const struct option_section *section = option_table_section(t, g->section);
        assert_non_null(section); /* every group's section is one the table lists */
        for (size_t i = 0; i < g->ndefs; i++) {
            fn(section, &g->defs[i], (const char *)block + t->bindings[b].offset, ctx);
        }
    }
}

static void _check_def(const struct option_section *section, const struct option_def *def,
                       const void *values, void *ctx) {
    (void)ctx;
    size_t offset = 0;
    assert_ptr_equal(option_table_find(&daemon_option_table, section->name, def->name, &offset),
                     def);
    assert_true(strlen(def->description) > 10);
    assert_true(def->min <= def->max || def->type == OPTION_BOOL || def->type == OPTION_ENUM);
    if (def->type == OPTION_UINT) {
        assert_true(def->max <= UINT32_MAX);
    }
    if (def->type == OPTION_STRING) {
        assert_true(def->max < def->size); /* the longest value and its NUL fit the field */
    }
    /* the formatted default reads back as the default text */
    char text[300];
    option_format(def, values, text, sizeof text);
    assert_string_equal(text, def->default_text);
}

static void test_table_is_consistent(void **state) {
    (void)state;
    struct daemon_options o;
    assert_int_equal(option_table_defaults(&daemon_option_table, &o, err, sizeof err), 0);
    _for_each(_check_def, &o, NULL);
    assert_null(option_table_section(&daemon_option_table, "views"));
    assert_null(option_table_find(&daemon_option_table, "server", "nope", NULL));
}

static void test_defaults_land_in_the_modules_structs(void **state) {
    (void)state;
    struct daemon_options o;
    assert_int_equal(option_table_defaults(&daemon_option_table, &o, err, sizeof err), 0);
    assert_string_equal(o.grpc.bind, "127.0.0.1");
    assert_int_equal(o.grpc.port, 6566);
    assert_int_equal(o.grpc.workers, 0);
    assert_int_equal(o.grpc.max_message_bytes, 4 << 20);
    assert_int_equal(o.grpc.max_concurrent_streams, 128);
    assert_string_equal(o.stats.bind, "127.0.0.1");
    assert_int_equal(o.stats.port, 9466);
    assert_string_equal(o.stats.token, "");
    assert_int_equal(o.rpc.max_batch, 10000);
    assert_int_equal(o.rpc.default_budget_us, 1000);
    assert_int_equal(o.log.level, LOG_INFO);
    assert_int_equal(o.store.shards, 64);
    assert_int_equal(o.sweeper.interval_ms, 1000);
    assert_int_equal(o.sweeper.expiry_grace_us, 3600LL * 1000000);
    assert_int_equal(o.mat.duckdb_threads, 0);
    assert_int_equal(o.mat.nice, 10);
    assert_true(o.mat.load_at_start);
    assert_int_equal(o.mat.retry_first_us, MAT_RETRY_FIRST_US);
    /* the modules' own init functions give the same */
    struct grpc_server_options g;
    grpc_server_options_init(&g);
    assert_memory_equal(&g, &o.grpc, sizeof g);
    struct mat_options m;
    mat_options_init(&m);
    assert_memory_equal(&m, &o.mat, sizeof m);
}

/* Sets `section.name` in block `o` through the table, as the config loader does. */
static int _set(struct daemon_options *o, const char *section, const char *name, const char *text) {
    size_t offset;
    const struct option_def *def = option_table_find(&daemon_option_table, section, name, &offset);
    assert_non_null(def);
    return option_set(def, (char *)o + offset, text, err, sizeof err);
}

static void test_set_checks_bounds(void **state) {
    (void)state;
    struct daemon_options o;
    assert_int_equal(option_table_defaults(&daemon_option_table, &o, err, sizeof err), 0);
    assert_int_equal(_set(&o, "server", "workers", "256"), 0);
    assert_int_equal(o.grpc.workers, 256);
    assert_int_equal(_set(&o, "server", "workers", "257"), -1);
    assert_string_equal(err, "257 is out of bounds (0..256)");
    assert_int_equal(o.grpc.workers, 256); /* unchanged on error */
    assert_int_equal(_set(&o, "store", "shards", "4096"), 0);
    assert_int_equal(_set(&o, "store", "shards", "8192"), -1);
    assert_int_equal(_set(&o, "store", "shards", "100"), -1);
    assert_string_equal(err, "100 is not a power of two");
    assert_int_equal(o.store.shards, 4096);
    assert_int_equal(_set(&o, "server", "max_message_bytes", "32KiB"), -1);
    assert_string_equal(err, "32KiB is out of bounds (64KiB..1GiB)");
    assert_int_equal(_set(&o, "server", "grpc_bind", "::"), 0);
    assert_string_equal(o.grpc.bind, "::");
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(_set(&o, "server", "grpc_bind", longname), -1);
    assert_string_equal(err, "length 299 is out of bounds (1..255)");
    assert_int_equal(_set(&o, "server", "log_level", "warn"), 0);
    assert_int_equal(o.log.level, LOG_WARN);
    assert_int_equal(_set(&o, "server", "log_level", "WARN"), -1);
    assert_int_equal(_set(&o, "server", "stats_token", "s3cret"), 0);
    assert_string_equal(o.stats.token, "s3cret");
    assert_int_equal(_set(&o, "materializer", "nice", "19"), 0);
    assert_int_equal(o.mat.nice, 19);
}

static void test_reload_check(void **state) {
    (void)state;
    struct daemon_options a, b;
    assert_int_equal(option_table_defaults(&daemon_option_table, &a, err, sizeof err), 0);
    b = a;
    assert_int_equal(option_reload_check(&daemon_option_table, &a, &b, err, sizeof err), 0);
    assert_int_equal(_set(&b, "server", "log_level", "debug"), 0);
    assert_int_equal(option_reload_check(&daemon_option_table, &a, &b, err, sizeof err), 0);
    assert_int_equal(_set(&b, "server", "grpc_port", "7000"), 0);
    assert_int_equal(option_reload_check(&daemon_option_table, &a, &b, err, sizeof err), -1);
    assert_string_equal(err, "server.grpc_port: 6566 -> 7000 (needs a restart)");
}

static void _print_help(FILE *out) {
    option_print_help(&daemon_option_table, out);
}

static void _print_reference(FILE *out) {
    config_print_reference(&daemon_option_table, out);
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

struct docs {
    const char *help;
    const char *reference;
};

static void _in_docs(const struct option_section *section, const struct option_def *def,
                     const void *values, void *ctx) {
    (void)values;
    const struct docs *d = ctx;
    char want[256];
    snprintf(want, sizeof want, "%s.%s (", section->name, def->name);
    assert_non_null(strstr(d->help, want));
    /* an empty default is written as "" (a bare `key:` would read as null) */
    /* nested sections ("server.auth") one level deeper each */
    int indent = 2;
    for (const char *p = section->name; *p; p++) {
        indent += *p == '.' ? 2 : 0;
    }
    snprintf(want, sizeof want, "\n%*s%s: %s\n", indent, "", def->name,
             def->default_text[0] != '\0' ? def->default_text : "\"\"");
    assert_non_null(strstr(d->reference, want));
}

/* --help-config and the reference config both list every option of the table. */
static void test_generated_docs_cover_every_option(void **state) {
    (void)state;
    char *help = capture(_print_help);
    char *reference = capture(_print_reference);
    struct daemon_options o;
    assert_int_equal(option_table_defaults(&daemon_option_table, &o, err, sizeof err), 0);
    _for_each(_in_docs, &o, &(struct docs){help, reference});
    assert_non_null(strstr(help, "bounds: 1..4096, a power of two    reload: no (restart)"));
    assert_non_null(strstr(help, "bounds: debug | info | warn | error    reload: yes"));
    assert_non_null(strstr(reference, "# enum, debug | info | warn | error; reloadable (SIGHUP)"));

    /* and the reference config is itself a valid config */
    struct fsd_config *config;
    static char errors[CONFIG_ERR_LEN];
    int rc = config_parse("reference.yaml", reference, strlen(reference), &daemon_option_table,
                          &config, errors, sizeof errors);
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
        cmocka_unit_test(test_defaults_land_in_the_modules_structs),
        cmocka_unit_test(test_set_checks_bounds),
        cmocka_unit_test(test_reload_check),
        cmocka_unit_test(test_generated_docs_cover_every_option),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
