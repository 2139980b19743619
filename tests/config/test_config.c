/* The config loader, on YAML written to temporary files: a full valid config, then one test per
 * class of error, each asserting the exact "file:line: field: message". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "daemon/options.h"
#include "common/log.h"
#include "store/schema.h"

static char err[CONFIG_ERR_LEN];
static char path[64];

/* Writes `yaml` to a new temporary file, named in `path`. */
static void write_temp(const char *yaml) {
    snprintf(path, sizeof path, "/tmp/fsd-test-config-XXXXXX.yaml");
    int fd = mkstemps(path, 5);
    assert_true(fd >= 0);
    size_t len = strlen(yaml);
    assert_int_equal(write(fd, yaml, len), (ssize_t)len);
    close(fd);
}

static struct fsd_config *load_ok(const char *yaml) {
    write_temp(yaml);
    struct fsd_config *config = NULL;
    int rc = config_load(path, &daemon_option_table, &config, err, sizeof err);
    if (rc != 0) {
        print_error("unexpected errors:\n%s\n", err);
    }
    unlink(path);
    assert_int_equal(rc, 0);
    assert_non_null(config);
    return config;
}

/* Loads `yaml`, expects failure and an error line "<file>:<line>: <message>". */
static void expect_error(const char *yaml, int line, const char *message) {
    write_temp(yaml);
    struct fsd_config *config = (struct fsd_config *)1;
    int rc = config_load(path, &daemon_option_table, &config, err, sizeof err);
    unlink(path);
    assert_int_equal(rc, -1);
    assert_null(config);
    char expected[1024];
    snprintf(expected, sizeof expected, "%s:%d: %s", path, line, message);
    if (strstr(err, expected) == NULL) {
        print_error("expected: %s\nin:\n%s\n", expected, err);
    }
    assert_non_null(strstr(err, expected));
}

static size_t count_lines(const char *text) {
    size_t n = *text ? 1 : 0;
    for (; *text; text++) {
        n += *text == '\n';
    }
    return n;
}

/* ---- a valid config ---------------------------------------------------------------------- */

static const char full_config[] =
    "server:\n"
    "  grpc_bind: 0.0.0.0\n"
    "  grpc_port: 7000\n"
    "  workers: 4\n"
    "  max_message_bytes: 512KiB\n"
    "  log_level: debug\n"
    "store:\n"
    "  shards: 128\n"
    "  sweep_interval_ms: 250\n"
    "  expiry_grace: 7d\n"
    "views:\n"
    "  - name: users\n"
    "    join_keys:\n"
    "      - { name: user_id, type: int64 }\n"
    "      - { name: region, type: string }\n"
    "    ttl: 36h\n"
    "    refresh_interval: 500ms\n"
    "    source:\n"
    "      type: parquet\n"
    "      path: demo-data/users/*.parquet\n"
    "      event_timestamp_column: event_ts\n"
    "      created_timestamp_column: created_ts\n"
    "    features:\n"
    "      - { name: f_i32, type: int32, default: -2147483648 }\n"                    /* 0 */
    "      - { name: f_i64, type: int64, default: 9223372036854775807 }\n"            /* 1 */
    "      - { name: f_float, type: float, default: 0.1 }\n"                          /* 2 */
    "      - { name: f_double, type: double, default: 0.1 }\n"                        /* 3 */
    "      - { name: f_bool, type: bool, default: true }\n"                           /* 4 */
    "      - { name: f_string, type: string, default: \"unknown value\" }\n"          /* 5 */
    "      - { name: f_quoted_zero, type: string, default: \"zero\" }\n"              /* 6 */
    "      - { name: f_plain_zero, type: string, default: zero }\n"                   /* 7 */
    "      - { name: f_bytes, type: bytes, default: \"aGk=\" }\n"                     /* 8 */
    "      - { name: f_ts, type: timestamp, default: 2024-01-02T03:04:05.5+01:00 }\n" /* 9 */
    "      - { name: f_ts_us, type: timestamp, default: 1704164645000000 }\n"         /* 10 */
    "      - { name: f_mean_i64, type: int64, default: mean }\n"                      /* 11 */
    "      - { name: f_mean_double, type: double, default: mean }\n"                  /* 12 */
    "      - { name: f_floats, type: float_list, default: [1.5, -2] }\n"              /* 13 */
    "      - { name: f_ints, type: int64_list, default: [1, -2, 3] }\n"               /* 14 */
    "      - { name: f_strings, type: string_list, default: [a, \"b c\", \"\"] }\n"   /* 15 */
    "      - { name: f_zero_list, type: float_list, default: zero }\n"                /* 16 */
    "      - { name: f_none, type: bytes }\n"                                         /* 17 */
    "      - { name: f_empty_list, type: int64_list, default: [] }\n"                 /* 18 */
    "      - { name: f_quoted_mean, type: string, default: 'mean' }\n"                /* 19 */
    "      - { name: f_i32s, type: int32_list, default: [-2147483648, 7] }\n"         /* 20 */
    "      - { name: f_doubles, type: double_list, default: [0.1, -1e300] }\n"        /* 21 */
    "      - { name: f_bools, type: bool_list, default: [true, false, true] }\n"      /* 22 */
    "      - { name: f_blobs, type: bytes_list, default: [\"aGk=\", \"\"] }\n"        /* 23 */
    "      - { name: f_stamps, type: timestamp_list, default: [1970-01-01T00:00:01Z, 5] }\n" /* 24
                                                                                              */
    "  - name: prices\n"
    "    join_keys: [{ name: item_id, type: int64 }]\n"
    "    ttl: 0\n"
    "    source:\n"
    "      type: postgres\n"
    "      query: SELECT item_id, price, ts FROM prices\n"
    "      event_timestamp_column: ts\n"
    "    features:\n"
    "      - { name: price, type: double }\n"
    "      - { name: currency, type: string }\n"
    "  - name: plain\n"
    "    join_keys: [{ name: id, type: string }]\n"
    "    ttl: 90\n"
    "    features: [{ name: x, type: int32 }]\n"
    "feature_services:\n"
    "  - name: ranking\n"
    "    features: [\"prices:*\", \"users:f_i32\", \"plain:x\"]\n"
    "  - name: just_price\n"
    "    features:\n"
    "      - prices:price\n";

static void test_full_config(void **state) {
    (void)state;
    struct fsd_config *c = load_ok(full_config);

    assert_string_equal(daemon_options(c)->grpc.bind, "0.0.0.0");
    assert_int_equal(daemon_options(c)->grpc.port, 7000);
    assert_int_equal(daemon_options(c)->grpc.workers, 4);
    assert_int_equal(daemon_options(c)->grpc.max_message_bytes, 512 * 1024);
    assert_int_equal(daemon_options(c)->log.level, LOG_DEBUG);
    /* untouched options keep their defaults */
    assert_string_equal(daemon_options(c)->stats.bind, "127.0.0.1");
    assert_int_equal(daemon_options(c)->stats.port, 9466);
    assert_int_equal(daemon_options(c)->rpc.max_batch, 10000);
    assert_int_equal(daemon_options(c)->rpc.default_budget_us, 1000);
    assert_int_equal(daemon_options(c)->store.shards, 128);
    assert_int_equal(daemon_options(c)->sweeper.interval_ms, 250);
    assert_int_equal(daemon_options(c)->sweeper.expiry_grace_us, 7LL * 86400 * 1000000);

    assert_int_equal(c->nviews, 3);
    const struct config_view *users = config_find_view(c, "users");
    assert_ptr_equal(users, &c->views[0]);
    const struct store_schema *s = users->schema;
    assert_true(s->finalized);
    assert_string_equal(s->view, "users");
    assert_int_equal(s->ttl_us, 36LL * 3600 * 1000000);
    assert_int_equal(users->snapshot.refresh_interval_us, 500000);
    assert_int_equal(users->line, 12);
    assert_int_equal(s->nkeys, 2);
    assert_string_equal(s->keys[0].name, "user_id");
    assert_int_equal(s->keys[0].type, STORE_KEY_INT64);
    assert_string_equal(s->keys[1].name, "region");
    assert_int_equal(s->keys[1].type, STORE_KEY_STRING);
    assert_int_equal(users->snapshot.source.type, MAT_SOURCE_PARQUET);
    assert_string_equal(users->snapshot.source.path, "demo-data/users/*.parquet");
    assert_string_equal(users->snapshot.source.event_timestamp_column, "event_ts");
    assert_string_equal(users->snapshot.source.created_timestamp_column, "created_ts");
    assert_null(users->snapshot.source.dsn);

    assert_int_equal(s->nfeatures, 25);
    const struct store_feature *f = s->features;
    assert_int_equal(f[0].default_kind, STORE_DEFAULT_LITERAL);
    assert_int_equal(f[0].default_literal.i32, INT32_MIN);
    assert_int_equal(f[1].default_literal.i64, INT64_MAX);
    assert_true(f[2].default_literal.f32 == 0.1f);
    assert_true(f[3].default_literal.f64 == 0.1); /* full precision, no float detour */
    assert_true(f[4].default_literal.b);
    assert_int_equal(f[5].default_literal.var.bytes, 13);
    assert_memory_equal(f[5].default_literal.var.data, "unknown value", 13);
    /* quoted "zero" is a string literal; plain zero is the keyword */
    assert_int_equal(f[6].default_kind, STORE_DEFAULT_LITERAL);
    assert_int_equal(f[6].default_literal.var.bytes, 4);
    assert_memory_equal(f[6].default_literal.var.data, "zero", 4);
    assert_int_equal(f[7].default_kind, STORE_DEFAULT_ZERO);
    assert_int_equal(f[8].default_literal.var.bytes, 2);
    assert_memory_equal(f[8].default_literal.var.data, "hi", 2);
    assert_int_equal(f[9].default_literal.ts_us, 1704161045500000LL);
    assert_int_equal(f[10].default_literal.ts_us, 1704164645000000LL);
    assert_int_equal(f[11].default_kind, STORE_DEFAULT_MEAN);
    assert_int_equal(f[12].default_kind, STORE_DEFAULT_MEAN);

    assert_int_equal(f[13].default_literal.var.count, 2);
    assert_int_equal(f[13].default_literal.var.bytes, 8);
    const float *floats = f[13].default_literal.var.data;
    assert_true(floats[0] == 1.5f && floats[1] == -2.0f);
    assert_int_equal(f[14].default_literal.var.count, 3);
    const int64_t *ints = f[14].default_literal.var.data;
    assert_true(ints[0] == 1 && ints[1] == -2 && ints[2] == 3);
    assert_int_equal(f[15].default_literal.var.count, 3);
    const char *item;
    uint32_t len;
    store_packed_list_at(&f[15].default_literal, 0, &item, &len);
    assert_int_equal(len, 1);
    assert_memory_equal(item, "a", 1);
    store_packed_list_at(&f[15].default_literal, 1, &item, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(item, "b c", 3);
    store_packed_list_at(&f[15].default_literal, 2, &item, &len);
    assert_int_equal(len, 0);
    assert_int_equal(f[16].default_kind, STORE_DEFAULT_ZERO);
    assert_int_equal(f[17].default_kind, STORE_DEFAULT_NONE);
    assert_int_equal(f[18].default_kind, STORE_DEFAULT_LITERAL);
    assert_int_equal(f[18].default_literal.var.count, 0);
    assert_int_equal(f[19].default_kind, STORE_DEFAULT_LITERAL);
    assert_memory_equal(f[19].default_literal.var.data, "mean", 4);
    assert_int_equal(f[20].default_literal.var.count, 2);
    assert_int_equal(f[20].default_literal.var.bytes, 8);
    assert_memory_equal(f[20].default_literal.var.data, ((int32_t[]){INT32_MIN, 7}), 8);
    assert_int_equal(f[21].default_literal.var.bytes, 16);
    assert_memory_equal(f[21].default_literal.var.data, ((double[]){0.1, -1e300}), 16);
    assert_int_equal(f[22].default_literal.var.count, 3);
    assert_memory_equal(f[22].default_literal.var.data, "\1\0\1", 3);
    assert_int_equal(f[23].default_literal.var.count, 2);
    store_packed_list_at(&f[23].default_literal, 0, &item, &len);
    assert_int_equal(len, 2);
    assert_memory_equal(item, "hi", 2);
    store_packed_list_at(&f[23].default_literal, 1, &item, &len);
    assert_int_equal(len, 0);
    assert_memory_equal(f[24].default_literal.var.data, ((int64_t[]){1000000, 5}), 16);

    const struct config_view *prices = &c->views[1];
    assert_int_equal(prices->schema->ttl_us, 0);
    assert_int_equal(prices->snapshot.refresh_interval_us, 0);
    assert_int_equal(prices->snapshot.source.type, MAT_SOURCE_POSTGRES);
    assert_string_equal(prices->snapshot.source.query, "SELECT item_id, price, ts FROM prices");
    assert_null(prices->snapshot.source.table);
    assert_null(prices->snapshot.source.dsn);
    assert_int_equal(c->views[2].schema->ttl_us, 90LL * 1000000); /* bare integer = seconds */
    assert_int_equal(c->views[2].snapshot.source.type, MAT_SOURCE_NONE);

    assert_int_equal(c->nservices, 2);
    const struct config_service *ranking = config_find_service(c, "ranking");
    assert_non_null(ranking);
    assert_int_equal(ranking->nfeatures, 4); /* prices:* expands to two */
    assert_true(ranking->features[0].view == 1 && ranking->features[0].feature == 0);
    assert_true(ranking->features[1].view == 1 && ranking->features[1].feature == 1);
    assert_true(ranking->features[2].view == 0 && ranking->features[2].feature == 0);
    assert_true(ranking->features[3].view == 2 && ranking->features[3].feature == 0);
    assert_int_equal(config_find_service(c, "just_price")->nfeatures, 1);
    assert_null(config_find_service(c, "nope"));
    assert_null(config_find_view(c, "nope"));
    config_destroy(c);
}

static void test_defaults_only(void **state) {
    (void)state;
    struct fsd_config *c = load_ok("views: []\n");
    assert_int_equal(c->nviews, 0);
    assert_int_equal(c->nservices, 0);
    assert_int_equal(daemon_options(c)->grpc.port, 6566);
    assert_int_equal(daemon_options(c)->grpc.max_message_bytes, 4 * 1024 * 1024);
    assert_int_equal(daemon_options(c)->log.level, LOG_INFO);
    assert_int_equal(daemon_options(c)->store.shards, 64);
    assert_int_equal(daemon_options(c)->sweeper.expiry_grace_us, 3600LL * 1000000);
    config_destroy(c);

    /* A section whose options are all commented out is empty, not an error. */
    c = load_ok("server:\n  # grpc_port: 1\nstore:\n");
    assert_int_equal(daemon_options(c)->grpc.port, 6566);
    config_destroy(c);
}

static void test_parse_from_memory(void **state) {
    (void)state;
    struct fsd_config *c;
    const char yaml[] = "server: { grpc_port: 1 }\n";
    assert_int_equal(
        config_parse("mem.yaml", yaml, sizeof yaml - 1, &daemon_option_table, &c, err, sizeof err),
        0);
    assert_int_equal(daemon_options(c)->grpc.port, 1);
    assert_string_equal(c->path, "mem.yaml");
    config_destroy(c);
    assert_int_equal(config_parse("mem.yaml", "server: { grpc_port: 65536 }\n", 28,
                                  &daemon_option_table, &c, err, sizeof err),
                     -1);
    assert_string_equal(err, "mem.yaml:1: server.grpc_port: 65536 is out of bounds (0..65535)");
}

/* ---- one test per class of error --------------------------------------------------------- */

#define VIEW_HEAD                                                                                  \
    "views:\n"                            /* line 1 */                                             \
    "  - name: v\n"                       /* line 2 */                                             \
    "    join_keys:\n"                    /* line 3 */                                             \
    "      - { name: id, type: int64 }\n" /* line 4 */                                             \
    "    ttl: 1h\n"                       /* line 5 */                                             \
    "    features:\n"                     /* line 6 */                                             \
    "      - { name: a, type: int32 }\n"  /* line 7 */

static void test_unknown_key(void **state) {
    (void)state;
    /* A typo gets the key it most likely meant; anything else the whole list. */
    expect_error("server:\n  grpc_prot: 1\n", 2,
                 "server.grpc_prot: unknown key (did you mean grpc_port?)");
    expect_error("server:\n  bogus: 1\n", 2,
                 "server.bogus: unknown key (expected grpc_bind, grpc_port, workers, ");
    /* ...the options, then the nested sections */
    assert_non_null(strstr(err, ", log_level, allow_insecure, auth, tls)"));
    /* A nested section's keys are checked, and named by their whole path. */
    expect_error("server:\n  auth:\n    tokens_fil: x\n", 3,
                 "server.auth.tokens_fil: unknown key (did you mean tokens_file?)");
    expect_error("auth:\n  tokens_file: x\n", 1, "auth: unknown key");
    expect_error(VIEW_HEAD "    refresh: 1h\n", 8, "views[0].refresh: unknown key");
    expect_error(VIEW_HEAD "      - { name: b, type: int32, dflt: 0 }\n", 8,
                 "views[0].features[1].dflt: unknown key (expected name, type, default)");
    expect_error("vews: []\n", 1, "vews: unknown key (did you mean views?)");
    expect_error("servers: []\n", 1, "servers: unknown key (did you mean server?)");
    expect_error("options: []\n", 1,
                 "options: unknown key (expected server, store, materializer, feast, views, "
                 "feature_services)");
}

static void test_unknown_type(void **state) {
    (void)state;
    expect_error(VIEW_HEAD "      - { name: b, type: int32 }\n"
                           "      - { name: c, type: flaot }\n",
                 9,
                 "views[0].features[2].type: unknown type \"flaot\" (expected int32, int64, "
                 "float, double, bool, string, bytes, timestamp, float_list, int64_list, "
                 "string_list, int32_list, double_list, bool_list, bytes_list, timestamp_list)");
    expect_error("views:\n  - name: v\n    join_keys: [{ name: id, type: int32 }]\n", 3,
                 "views[0].join_keys[0].type: unknown join key type \"int32\" (expected "
                 "int64, string)");
}

static void test_int32_default_out_of_range(void **state) {
    (void)state;
    expect_error(VIEW_HEAD "      - { name: b, type: int32, default: 2147483648 }\n", 8,
                 "views[0].features[1].default: 2147483648 is out of range for int32 "
                 "(-2147483648..2147483647)");
    expect_error(VIEW_HEAD "      - { name: b, type: int32, default: -2147483649 }\n", 8,
                 "views[0].features[1].default: -2147483649 is out of range for int32");
    expect_error(VIEW_HEAD "      - { name: b, type: int64, default: 9223372036854775808 }\n", 8,
                 "views[0].features[1].default: 9223372036854775808 is out of range for int64");
    expect_error(VIEW_HEAD "      - { name: b, type: int32, default: 1.5 }\n", 8,
                 "views[0].features[1].default: invalid int32 \"1.5\"");
    expect_error(VIEW_HEAD "      - { name: b, type: int32, default: 010 }\n", 8,
                 "views[0].features[1].default: invalid int32 \"010\"");
}

static void test_mean_on_string(void **state) {
    (void)state;
    expect_error(VIEW_HEAD "      - { name: s, type: string, default: mean }\n", 8,
                 "views[0].features[1].default: view v: feature s: default \"mean\" needs a "
                 "numeric type (int32, int64, float, double), not string");
    expect_error(VIEW_HEAD "      - { name: s, type: int64_list, default: mean }\n", 8,
                 "views[0].features[1].default: view v: feature s: default \"mean\" needs");
}

static void test_quoted_keyword_is_literal(void **state) {
    (void)state;
    expect_error(VIEW_HEAD "      - { name: n, type: int32, default: \"zero\" }\n", 8,
                 "views[0].features[1].default: invalid int32 \"zero\" (expected a decimal "
                 "integer) (a quoted word is a literal; write the keyword unquoted)");
}

static void test_bad_literals(void **state) {
    (void)state;
    expect_error(VIEW_HEAD "      - { name: b, type: bool, default: yes }\n", 8,
                 "views[0].features[1].default: invalid bool \"yes\" (expected true or false)");
    expect_error(VIEW_HEAD "      - { name: d, type: double, default: 1e999 }\n", 8,
                 "views[0].features[1].default: 1e999 is out of range for double");
    expect_error(VIEW_HEAD "      - { name: d, type: float, default: .nan }\n", 8,
                 "views[0].features[1].default: invalid float \".nan\"");
    expect_error(VIEW_HEAD "      - { name: t, type: timestamp, default: 2023-02-29T00:00:00Z }\n",
                 8,
                 "views[0].features[1].default: invalid timestamp \"2023-02-29T00:00:00Z\": "
                 "bad day");
    expect_error(VIEW_HEAD "      - { name: t, type: bytes, default: \"aGk\" }\n", 8,
                 "views[0].features[1].default: invalid base64 \"aGk\"");
    expect_error(VIEW_HEAD "      - { name: l, type: float_list, default: [1, x] }\n", 8,
                 "views[0].features[1].default[1]: invalid float \"x\"");
    expect_error(VIEW_HEAD "      - { name: l, type: int32_list, default: [1, 2147483648] }\n", 8,
                 "views[0].features[1].default[1]: 2147483648 is out of range for int32");
    expect_error(VIEW_HEAD "      - { name: l, type: bool_list, default: [true, 1] }\n", 8,
                 "views[0].features[1].default[1]: invalid bool \"1\" (expected true or false)");
    expect_error(VIEW_HEAD "      - { name: l, type: bytes_list, default: [\"@@\"] }\n", 8,
                 "views[0].features[1].default[0]: ");
    expect_error(VIEW_HEAD "      - { name: l, type: double_list, default: [[1]] }\n", 8,
                 "views[0].features[1].default[0]: a double_list element is a scalar");
    expect_error(VIEW_HEAD "      - { name: l, type: string_list, default: a }\n", 8,
                 "views[0].features[1].default: a string_list default is a sequence such as "
                 "[a, b], or zero");
    expect_error(VIEW_HEAD "      - { name: l, type: string, default: [a] }\n", 8,
                 "views[0].features[1].default: a string default is a scalar, not a sequence");
    expect_error(VIEW_HEAD "      - { name: l, type: string, default: }\n", 8,
                 "views[0].features[1].default: empty default");
    expect_error(VIEW_HEAD "      - { name: l, type: string, default: \"a\\0b\" }\n", 8,
                 "views[0].features[1].default: value contains a NUL byte");
}

static void test_duplicate_view(void **state) {
    (void)state;
    expect_error(VIEW_HEAD "  - name: v\n"
                           "    join_keys: [{ name: id, type: int64 }]\n"
                           "    ttl: 1h\n"
                           "    features: [{ name: a, type: int32 }]\n",
                 8, "views[1].name: duplicate view \"v\" (first on line 2)");
}

static void test_duplicate_feature(void **state) {
    (void)state;
    expect_error(VIEW_HEAD "      - { name: a, type: int64 }\n", 8,
                 "views[0].features[1].name: view v: duplicate name \"a\"");
    /* a feature may not reuse a join key's name either */
    expect_error(VIEW_HEAD "      - { name: id, type: int64 }\n", 8,
                 "views[0].features[1].name: view v: duplicate name \"id\"");
}

static void test_no_join_keys(void **state) {
    (void)state;
    expect_error("views:\n  - name: v\n    join_keys: []\n    ttl: 0\n"
                 "    features: [{ name: a, type: int32 }]\n",
                 3, "views[0].join_keys: a view needs 1 to 8 join keys, found 0");
    expect_error("views:\n  - name: v\n    ttl: 0\n    features: [{ name: a, type: int32 }]\n", 2,
                 "views[0].join_keys: missing (required)");
}

static void test_missing_and_bad_fields(void **state) {
    (void)state;
    expect_error("views:\n  - name: v\n    join_keys: [{ name: id, type: int64 }]\n"
                 "    features: [{ name: a, type: int32 }]\n",
                 2, "views[0].ttl: missing (required)");
    expect_error("views:\n  - name: 9v\n    join_keys: [{ name: id, type: int64 }]\n    ttl: 0\n"
                 "    features: [{ name: a, type: int32 }]\n",
                 2, "views[0].name: invalid name \"9v\" (expected [A-Za-z_][A-Za-z0-9_]*");
    expect_error(VIEW_HEAD "      - { name: \"a-b\", type: int32 }\n", 8,
                 "views[0].features[1].name: invalid name \"a-b\"");
    expect_error(VIEW_HEAD "    features: []\n", 8,
                 "views[0].features: duplicate key (first on "
                 "line 6)");
    expect_error("views:\n  - name: v\n    join_keys: [{ name: id, type: int64 }]\n    ttl: 0\n"
                 "    features: []\n",
                 5, "views[0].features: expected a non-empty sequence");
    expect_error("views: { name: v }\n", 1, "views: expected a sequence of views, found a mapping");
}

static void test_bad_duration(void **state) {
    (void)state;
    expect_error("views:\n  - name: v\n    join_keys: [{ name: id, type: int64 }]\n"
                 "    ttl: 1.5h\n    features: [{ name: a, type: int32 }]\n",
                 4,
                 "views[0].ttl: invalid duration \"1.5h\" (expected 0, 500ms, 30s, 5m, 24h, 7d or "
                 "a number of seconds)");
    expect_error("store:\n  expiry_grace: -1s\n", 2,
                 "store.expiry_grace: invalid duration \"-1s\"");
    expect_error("store:\n  expiry_grace: 366d\n", 2,
                 "store.expiry_grace: 366d is out of bounds (0..365d)");
    expect_error("server:\n  max_message_bytes: 4MB\n", 2,
                 "server.max_message_bytes: invalid size \"4MB\"");
}

static void test_sources(void **state) {
    (void)state;
    expect_error(VIEW_HEAD "    source: { type: postgres, table: t, query: q, "
                           "event_timestamp_column: ts }\n",
                 8, "views[0].source.query: give either table or query, not both");
    expect_error(VIEW_HEAD "    source: { type: postgres, event_timestamp_column: ts }\n", 8,
                 "views[0].source: a postgres source needs table or query");
    expect_error(VIEW_HEAD "    source: { type: parquet, path: p, dsn: d, "
                           "event_timestamp_column: ts }\n",
                 8, "views[0].source.dsn: only for postgres sources");
    expect_error(VIEW_HEAD "    source: { type: parquet, event_timestamp_column: ts }\n", 8,
                 "views[0].source.path: missing (required)");
    expect_error(VIEW_HEAD "    source: { type: parquet, path: p }\n", 8,
                 "views[0].source.event_timestamp_column: missing (required)");
    expect_error(VIEW_HEAD "    source: { type: csv, path: p, event_timestamp_column: ts }\n", 8,
                 "views[0].source.type: unknown source type \"csv\" (expected parquet, "
                 "postgres)");
    expect_error(VIEW_HEAD "    refresh_interval: 1h\n", 8,
                 "views[0].refresh_interval: a view without a source has nothing to refresh");
}

/* The data contract and incremental loads (read by the materializer). */
static void test_contract_and_incremental(void **state) {
    (void)state;
    struct fsd_config *config =
        load_ok(VIEW_HEAD "      - { name: s, type: string }\n"
                          "    incremental: true\n"
                          "    source: { type: parquet, path: p, "
                          "event_timestamp_column: ts }\n"
                          "    contract:\n"
                          "      min_rows: 1000\n"
                          "      max_row_drop_percent: 12.5\n"
                          "      features:\n"
                          "        a: { max_null_rate: 0.1, range: [-1, 1e3] }\n"
                          "        s: { max_null_rate: 0 }\n");
    const struct config_view *v = &config->views[0];
    assert_true(v->snapshot.incremental);
    assert_int_equal(v->snapshot.contract.min_rows, 1000);
    assert_true(v->snapshot.contract.max_row_drop_percent == 12.5);
    assert_int_equal(v->snapshot.contract.nfeatures, 2);
    assert_int_equal(v->snapshot.contract.features[0].feature, 0);
    assert_true(v->snapshot.contract.features[0].max_null_rate == 0.1);
    assert_true(v->snapshot.contract.features[0].has_range);
    assert_true(v->snapshot.contract.features[0].range_min == -1 &&
                v->snapshot.contract.features[0].range_max == 1000);
    assert_int_equal(v->snapshot.contract.features[1].feature, 1);
    assert_true(v->snapshot.contract.features[1].max_null_rate == 0);
    assert_false(v->snapshot.contract.features[1].has_range);
    config_destroy(config);

    /* Defaults: nothing checked beyond non-null keys, not incremental. */
    config = load_ok(VIEW_HEAD);
    assert_false(config->views[0].snapshot.incremental);
    assert_int_equal(config->views[0].snapshot.contract.min_rows, 0);
    assert_true(config->views[0].snapshot.contract.max_row_drop_percent == 100);
    assert_int_equal(config->views[0].snapshot.contract.nfeatures, 0);
    config_destroy(config);

    expect_error(VIEW_HEAD "    contract: { max_row_drop_percent: 150 }\n", 8,
                 "views[0].contract.max_row_drop_percent: 150 is out of bounds (0..100)");
    expect_error(VIEW_HEAD "    contract: { min_rows: -1 }\n", 8, "views[0].contract.min_rows: ");
    expect_error(VIEW_HEAD "    contract: { min_row: 1 }\n", 8,
                 "views[0].contract.min_row: unknown key");
    expect_error(VIEW_HEAD "    contract: { features: { b: { max_null_rate: 0.5 } } }\n", 8,
                 "views[0].contract.features.b: the view has no feature \"b\"");
    expect_error(VIEW_HEAD "    contract: { features: { a: { max_null_rate: 2 } } }\n", 8,
                 "views[0].contract.features.a.max_null_rate: 2 is out of bounds (0..1)");
    expect_error(VIEW_HEAD "    contract: { features: { a: { range: [5, 1] } } }\n", 8,
                 "views[0].contract.features.a.range: min 5 is greater than max 1");
    expect_error(VIEW_HEAD "    contract: { features: { a: { range: [1] } } }\n", 8,
                 "views[0].contract.features.a.range: expected [min, max]");
    expect_error(VIEW_HEAD "    contract: { features: { a: {} } }\n", 8,
                 "views[0].contract.features.a: give max_null_rate, range or both");
    expect_error(VIEW_HEAD "      - { name: s, type: string }\n"
                           "    contract: { features: { s: { range: [0, 1] } } }\n",
                 9, "views[0].contract.features.s.range: a range needs a numeric feature");
    expect_error(VIEW_HEAD "    incremental: yes\n", 8,
                 "views[0].incremental: expected true or false, found \"yes\"");
    expect_error(VIEW_HEAD "    incremental: true\n", 8,
                 "views[0].incremental: a view without a source has nothing to load "
                 "incrementally");
}

/* A source's own bounds on its reads, and serve_before_ready (read by the materializer). */
static void test_source_timeouts_and_serve_before_ready(void **state) {
    (void)state;
    struct fsd_config *config =
        load_ok("materializer:\n  load_timeout: 2h\n  postgres_read_timeout: 0\n" VIEW_HEAD
                "    serve_before_ready: true\n"
                "    source: { type: postgres, table: t, event_timestamp_column: ts,\n"
                "              load_timeout: 0, connect_timeout: 3s, statement_timeout: 90s,\n"
                "              read_timeout: 250ms, tcp_user_timeout: 20s }\n");
    const struct mat_view_config *v = &config->views[0].snapshot;
    assert_true(v->serve_before_ready);
    const struct mat_source_timeouts *t = &v->source.timeouts;
    assert_true(t->load_us == 0 && t->connect_us == 3000000 && t->statement_us == 90000000 &&
                t->read_us == 250000 && t->tcp_user_us == 20000000);
    const struct mat_options *m = &daemon_options(config)->mat;
    assert_true(m->timeouts.load_us == 7200LL * 1000000 && m->timeouts.read_us == 0);
    config_destroy(config);

    /* Unset: the materializer's, whose defaults are the built-in ones. */
    config =
        load_ok(VIEW_HEAD "    source: { type: parquet, path: p, event_timestamp_column: ts }\n");
    v = &config->views[0].snapshot;
    assert_false(v->serve_before_ready);
    struct mat_source_timeouts resolved = v->source.timeouts;
    assert_true(resolved.load_us == MAT_TIMEOUT_UNSET && resolved.read_us == MAT_TIMEOUT_UNSET);
    m = &daemon_options(config)->mat;
    assert_memory_equal(&m->timeouts, mat_default_timeouts(), sizeof m->timeouts);
    assert_int_equal(m->load_threads, MAT_LOAD_THREADS);
    mat_source_timeouts_resolve(&resolved, &m->timeouts);
    assert_memory_equal(&resolved, mat_default_timeouts(), sizeof resolved);
    config_destroy(config);

    expect_error(VIEW_HEAD "    source: { type: parquet, path: p, event_timestamp_column: ts,"
                           " read_timeout: 1s }\n",
                 8, "views[0].source.read_timeout: only for postgres sources");
    expect_error(VIEW_HEAD "    source: { type: postgres, table: t, event_timestamp_column: ts,"
                           " connect_timeout: 1s }\n",
                 8, "views[0].source.connect_timeout: 1s is out of bounds (2s..1h)");
    expect_error(VIEW_HEAD "    source: { type: parquet, path: p, event_timestamp_column: ts,"
                           " load_timeout: soon }\n",
                 8, "views[0].source.load_timeout: invalid duration \"soon\"");
    expect_error(VIEW_HEAD "    serve_before_ready: true\n", 8,
                 "views[0].serve_before_ready: a view without a source is served from the "
                 "start; this is for views with one");
    expect_error("materializer:\n  load_threads: 0\n", 2,
                 "materializer.load_threads: 0 is out of bounds (1..64)");
}

/* source.allowed_paths: where LoadSnapshot's path may point (judged by the materializer). */
static void test_source_allowed_paths(void **state) {
    (void)state;
    struct fsd_config *config =
        load_ok(VIEW_HEAD "    source: { type: postgres, table: t, event_timestamp_column: ts,\n"
                          "              allowed_paths: [/srv/a, \"/srv/b\"] }\n");
    char *const *paths = config->views[0].snapshot.source.allowed_paths;
    assert_non_null(paths);
    assert_string_equal(paths[0], "/srv/a");
    assert_string_equal(paths[1], "/srv/b");
    assert_null(paths[2]);
    config_destroy(config);
    /* [] is a list too: no override at all; absent, the default (NULL) */
    config = load_ok(VIEW_HEAD "    source: { type: parquet, path: p, event_timestamp_column: ts,"
                               " allowed_paths: [] }\n");
    paths = config->views[0].snapshot.source.allowed_paths;
    assert_non_null(paths);
    assert_null(paths[0]);
    config_destroy(config);
    config =
        load_ok(VIEW_HEAD "    source: { type: parquet, path: p, event_timestamp_column: ts }\n");
    assert_null(config->views[0].snapshot.source.allowed_paths);
    config_destroy(config);

    expect_error(VIEW_HEAD "    source: { type: parquet, path: p, event_timestamp_column: ts,"
                           " allowed_paths: /srv }\n",
                 8,
                 "views[0].source.allowed_paths: expected a sequence of directories (e.g. "
                 "[/data/snapshots])");
    expect_error(VIEW_HEAD "    source: { type: parquet, path: p, event_timestamp_column: ts,"
                           " allowed_paths: [\"\"] }\n",
                 8, "views[0].source.allowed_paths: an empty path (give a directory)");
}

static void test_bad_service_ref(void **state) {
    (void)state;
    expect_error(VIEW_HEAD "feature_services:\n"
                           "  - name: s\n"
                           "    features:\n"
                           "      - \"v:*\"\n"
                           "      - \"v:b\"\n",
                 12, "feature_services[0].features[1]: view \"v\" has no feature \"b\"");
    expect_error(VIEW_HEAD "feature_services:\n  - name: s\n    features: [\"w:a\"]\n", 10,
                 "feature_services[0].features[0]: unknown view \"w\"");
    expect_error(VIEW_HEAD "feature_services:\n  - name: s\n    features: [\"a\"]\n", 10,
                 "feature_services[0].features[0]: expected \"view:feature\" or \"view:*\", "
                 "found \"a\"");
    expect_error(VIEW_HEAD "feature_services:\n  - name: s\n    features: [\"v:*\", \"v:a\"]\n", 10,
                 "feature_services[0].features[1]: feature v:a is already included by [0] "
                 "\"v:*\"");
    expect_error(VIEW_HEAD "feature_services:\n"
                           "  - { name: s, features: [\"v:a\"] }\n"
                           "  - { name: s, features: [\"v:a\"] }\n",
                 10, "feature_services[1].name: duplicate feature service \"s\"");
}

static void test_unknown_enum_value(void **state) {
    (void)state;
    expect_error("server:\n  log_level: verbose\n", 2,
                 "server.log_level: unknown value \"verbose\" (expected debug, info, warn, "
                 "error)");
}

static void test_port_out_of_bounds(void **state) {
    (void)state;
    expect_error("server:\n  grpc_port: 70000\n", 2,
                 "server.grpc_port: 70000 is out of bounds (0..65535)");
    expect_error("server:\n  stats_port: 99999999999999999999999\n", 2,
                 "server.stats_port: 99999999999999999999999 is out of bounds (0..65535)");
    expect_error("server:\n  grpc_port: -1\n", 2,
                 "server.grpc_port: invalid uint \"-1\" (expected decimal digits)");
    expect_error("store:\n  shards: 48\n", 2, "store.shards: 48 is not a power of two");
    expect_error("server:\n  workers: [1]\n", 2,
                 "server.workers: expected a scalar, found a sequence");
}

/* materializer.duckdb_threads reaches the config; a bad value is refused with its bounds. */
static void test_materializer_duckdb_threads(void **state) {
    (void)state;
    struct fsd_config *c = load_ok("views: []\n");
    assert_int_equal(daemon_options(c)->mat.duckdb_threads, 0); /* one per core */
    config_destroy(c);
    c = load_ok("materializer:\n  duckdb_threads: 1\n");
    assert_int_equal(daemon_options(c)->mat.duckdb_threads, 1);
    config_destroy(c);
    expect_error("materializer:\n  duckdb_threads: 257\n", 2,
                 "materializer.duckdb_threads: 257 is out of bounds (0..256)");
    expect_error("materializer:\n  duckdb_threads: -1\n", 2,
                 "materializer.duckdb_threads: invalid uint \"-1\" (expected decimal digits)");
    expect_error("materializer:\n  duckdb_threads: two\n", 2,
                 "materializer.duckdb_threads: invalid uint \"two\" (expected decimal digits)");
    expect_error("materializer:\n  threads: 2\n", 2,
                 "materializer.threads: unknown key (expected duckdb_threads, nice, "
                 "load_threads, load_timeout, postgres_connect_timeout,");
}

static void test_materializer_nice(void **state) {
    (void)state;
    struct fsd_config *c = load_ok("views: []\n");
    assert_int_equal(daemon_options(c)->mat.nice, 10);
    config_destroy(c);
    c = load_ok("materializer:\n  nice: 0\n");
    assert_int_equal(daemon_options(c)->mat.nice, 0);
    config_destroy(c);
    expect_error("materializer:\n  nice: 20\n", 2,
                 "materializer.nice: 20 is out of bounds (0..19)");
}

static void test_malformed_yaml(void **state) {
    (void)state;
    expect_error("server:\n  grpc_port: 1\n views: [\n", 3,
                 "YAML syntax error: did not find expected key (while parsing a block mapping "
                 "started on line 1)");
    expect_error("views: [1, 2\nfoo: 3\n", 2, "YAML syntax error: did not find expected ','");
    expect_error("a: \"unterminated\n", 2, "YAML syntax error: ");
    expect_error("views: []\n---\nviews: []\n", 3,
                 "a second YAML document; a config is a single document");
    expect_error("- a\n- b\n", 1, "expected a mapping with keys such as server");
}

static void test_empty_and_missing_file(void **state) {
    (void)state;
    write_temp("");
    struct fsd_config *c;
    assert_int_equal(config_load(path, &daemon_option_table, &c, err, sizeof err), -1);
    unlink(path);
    char expected[128];
    snprintf(expected, sizeof expected, "%s: the file is empty", path);
    assert_string_equal(err, expected);
    assert_int_equal(
        config_load("/nonexistent/fsd.yaml", &daemon_option_table, &c, err, sizeof err), -1);
    assert_string_equal(err, "/nonexistent/fsd.yaml: cannot open: No such file or directory");
}

/* Every error is reported, in file order, not only the first. */
static void test_collects_all_errors_in_order(void **state) {
    (void)state;
    expect_error("server:\n"
                 "  grpc_port: -1\n"   /* 2 */
                 "  log_level: loud\n" /* 3 */
                 "  bogus: 1\n"        /* 4 */
                 "store:\n"
                 "  shards: 3\n", /* 6 */
                 2, "server.grpc_port: invalid uint \"-1\"");
    assert_int_equal(count_lines(err), 4);
    const char *port = strstr(err, "grpc_port");
    const char *level = strstr(err, "log_level");
    const char *bogus = strstr(err, "bogus");
    const char *shards = strstr(err, "shards");
    assert_true(port < level && level < bogus && bogus < shards);
}

static void test_caps_error_count(void **state) {
    (void)state;
    char yaml[8192] = "server:\n";
    for (int i = 0; i < 60; i++) {
        char line[64];
        snprintf(line, sizeof line, "  unknown_%d: 1\n", i);
        strcat(yaml, line);
    }
    expect_error(yaml, 2, "server.unknown_0: unknown key");
    assert_int_equal(count_lines(err), CONFIG_MAX_ERRORS + 1);
    assert_non_null(strstr(err, "10 more errors not shown"));

    /* A buffer too small for all lines gets whole lines only: room for the first and a bit. */
    size_t first_line = (size_t)(strchr(err, '\n') - err);
    write_temp(yaml);
    struct fsd_config *c;
    char small[2048];
    assert_true(first_line + 20 < sizeof small);
    assert_int_equal(config_load(path, &daemon_option_table, &c, small, first_line + 20), -1);
    unlink(path);
    assert_true(strlen(small) > 0);
    assert_non_null(strstr(small, "(expected grpc_bind"));
    assert_null(strchr(small, '\n')); /* the second line did not fit and was left out */
}

/*
 * Regression (found by fuzz_config): with more errors than the loader stores, the report read
 * slots of the error array that had never been written.
 */
static void test_errors_beyond_storage_are_only_counted(void **state) {
    (void)state;
    static char yaml[32768];
    strcpy(yaml, "server:\n");
    for (int i = 0; i < 300; i++) {
        char line[64];
        snprintf(line, sizeof line, "  unknown_%d: 1\n", i);
        strcat(yaml, line);
    }
    expect_error(yaml, 2, "server.unknown_0: unknown key");
    assert_int_equal(count_lines(err), CONFIG_MAX_ERRORS + 1);
    assert_non_null(strstr(err, ": 250 more errors not shown"));
    /* The allowed keys are listed once, with the first unknown key. */
    assert_non_null(strstr(err, "server.unknown_1: unknown key (allowed keys: see line 2)"));
}

/* The same mapping key twice would otherwise let the second silently win. */
static void test_duplicate_mapping_key(void **state) {
    (void)state;
    expect_error("server:\n  grpc_port: 1\n  grpc_port: 2\n", 3,
                 "server.grpc_port: duplicate key (first on line 2)");
}

/* A reference into a view with errors is not reported again as a second, confusing error. */
static void test_no_cascading_errors(void **state) {
    (void)state;
    expect_error(VIEW_HEAD "      - { name: b, type: flaot }\n"
                           "feature_services:\n  - name: s\n    features: [\"v:b\"]\n",
                 8, "views[0].features[1].type: unknown type");
    assert_int_equal(count_lines(err), 1);
}

/* ---- stream: a Redis stream of row updates (read by materializer/stream/stream.c) ---------------
 */

static void test_stream_section(void **state) {
    (void)state;
    struct fsd_config *config =
        load_ok(VIEW_HEAD "    stream:\n"
                          "      redis: \"redis://app:s3cret@[::1]:6380/2\"\n"
                          "      key: user_updates\n"
                          "      start: \"1700000000000-7\"\n"
                          "      event_timestamp_field: ts\n"
                          "      created_timestamp_field: created\n"
                          "      batch: 500\n"
                          "      block_ms: 250\n");
    const struct mat_stream_config *s = &config->views[0].stream;
    assert_true(s->enabled);
    assert_string_equal(s->host, "::1");
    assert_int_equal(s->port, 6380);
    assert_int_equal(s->db, 2);
    assert_string_equal(s->user, "app");
    assert_string_equal(s->password, "s3cret");
    assert_string_equal(s->key, "user_updates");
    assert_int_equal(s->format, MAT_STREAM_FIELDS);
    assert_int_equal(s->start, MAT_STREAM_START_AFTER);
    assert_true(s->start_ms == 1700000000000ULL && s->start_seq == 7);
    assert_string_equal(s->event_timestamp_field, "ts");
    assert_string_equal(s->created_timestamp_field, "created");
    assert_int_equal(s->batch, 500);
    assert_int_equal(s->block_ms, 250);
    config_destroy(config);

    /* Defaults, and the protobuf format. */
    config = load_ok(VIEW_HEAD "    stream: { redis: \"localhost\", key: k }\n");
    s = &config->views[0].stream;
    assert_string_equal(s->host, "localhost");
    assert_int_equal(s->port, MAT_STREAM_DEFAULT_PORT);
    assert_int_equal(s->db, 0);
    assert_string_equal(s->password, "");
    assert_int_equal(s->start, MAT_STREAM_START_NEW);
    assert_string_equal(s->event_timestamp_field, MAT_STREAM_DEFAULT_EVENT_TS);
    assert_string_equal(s->created_timestamp_field, "");
    assert_int_equal(s->batch, MAT_STREAM_DEFAULT_BATCH);
    assert_int_equal(s->block_ms, MAT_STREAM_DEFAULT_BLOCK_MS);
    config_destroy(config);
    config = load_ok(VIEW_HEAD "    stream: { redis: \"127.0.0.1:7000\", key: k, format: protobuf, "
                               "start: 0 }\n");
    s = &config->views[0].stream;
    assert_int_equal(s->format, MAT_STREAM_PROTOBUF);
    assert_int_equal(s->start, MAT_STREAM_START_ALL);
    assert_string_equal(s->row_field, MAT_STREAM_DEFAULT_ROW_FIELD);
    assert_int_equal(s->port, 7000);
    config_destroy(config);

    /* start: snapshot waits for the position recorded with the view's snapshot. */
    config = load_ok(VIEW_HEAD "    stream: { redis: h, key: k, start: snapshot }\n");
    assert_int_equal(config->views[0].stream.start, MAT_STREAM_START_SNAPSHOT);
    config_destroy(config);

    /* Views without a stream: section have none. */
    config = load_ok(VIEW_HEAD);
    assert_false(config->views[0].stream.enabled);
    config_destroy(config);
}

static void test_stream_errors(void **state) {
    (void)state;
    expect_error(VIEW_HEAD "    stream: { key: k }\n", 8,
                 "views[0].stream.redis: missing (required)");
    expect_error(VIEW_HEAD "    stream: { redis: localhost }\n", 8,
                 "views[0].stream.key: missing (required)");
    expect_error(VIEW_HEAD "    stream: { redis: \"localhost:0\", key: k }\n", 8,
                 "views[0].stream.redis: port \"0\" is not in 1..65535");
    expect_error(VIEW_HEAD "    stream: { redis: \"http://h\", key: k }\n", 8,
                 "views[0].stream.redis: only redis:// URLs are supported");
    /* The password is never echoed back. */
    expect_error(VIEW_HEAD "    stream: { redis: \"redis://pw@h\", key: k }\n", 8,
                 "views[0].stream.redis: expected redis://[[user]:password@]host[:port][/db]");
    assert_null(strstr(err, "pw@"));
    expect_error(VIEW_HEAD "    stream: { redis: \"redis://h/x\", key: k }\n", 8,
                 "views[0].stream.redis: database \"x\" is not a number");
    expect_error(VIEW_HEAD "    stream: { redis: h, key: k, format: json }\n", 8,
                 "views[0].stream.format: unknown format \"json\" (expected fields, protobuf)");
    expect_error(VIEW_HEAD "    stream: { redis: h, key: k, start: snapshots }\n", 8,
                 "views[0].stream.start: expected \"$\" (new entries), 0 (all), an entry ID "
                 "<ms>-<seq> or snapshot (after the ID recorded with the view's snapshot), found "
                 "\"snapshots\"");
    expect_error(VIEW_HEAD "    stream: { redis: h, key: k, start: \"12-x\" }\n", 8,
                 "views[0].stream.start: expected \"$\" (new entries), 0 (all), an entry ID "
                 "<ms>-<seq> or snapshot (after the ID recorded with the view's snapshot), found "
                 "\"12-x\"");
    expect_error(VIEW_HEAD "    stream: { redis: h, key: k, batch: 0 }\n", 8,
                 "views[0].stream.batch: 0 is out of range for batch (1..100000)");
    expect_error(VIEW_HEAD "    stream: { redis: h, key: k, block_ms: 60001 }\n", 8,
                 "views[0].stream.block_ms: 60001 is out of range for block_ms (1..60000)");
    expect_error(VIEW_HEAD "    stream: { redis: h, key: k, row_field: r }\n", 8,
                 "views[0].stream.row_field: only with format: protobuf");
    expect_error(VIEW_HEAD "    stream: { redis: h, key: k, format: protobuf, "
                           "event_timestamp_field: t }\n",
                 8, "views[0].stream.event_timestamp_field: only with format: fields");
    expect_error(VIEW_HEAD "    stream: { redis: h, key: k, event_timestamp_field: a }\n", 8,
                 "views[0].stream.event_timestamp_field: field \"a\" is also a join key, a "
                 "feature or __delete");
    expect_error(VIEW_HEAD "    stream: { redis: h, key: k, created_timestamp_field: id }\n", 8,
                 "views[0].stream.created_timestamp_field: field \"id\" is also a join key");
    expect_error(VIEW_HEAD "    stream: { redis: h, key: k, created_timestamp_field: event_ts }\n",
                 8,
                 "views[0].stream.created_timestamp_field: the same field as "
                 "event_timestamp_field");
    expect_error(VIEW_HEAD "    stream: { redis: h, key: k, group: g }\n", 8,
                 "views[0].stream.group: unknown key");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_defaults_only),
        cmocka_unit_test(test_parse_from_memory),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_unknown_type),
        cmocka_unit_test(test_int32_default_out_of_range),
        cmocka_unit_test(test_mean_on_string),
        cmocka_unit_test(test_quoted_keyword_is_literal),
        cmocka_unit_test(test_bad_literals),
        cmocka_unit_test(test_duplicate_view),
        cmocka_unit_test(test_duplicate_feature),
        cmocka_unit_test(test_no_join_keys),
        cmocka_unit_test(test_missing_and_bad_fields),
        cmocka_unit_test(test_bad_duration),
        cmocka_unit_test(test_sources),
        cmocka_unit_test(test_contract_and_incremental),
        cmocka_unit_test(test_source_timeouts_and_serve_before_ready),
        cmocka_unit_test(test_source_allowed_paths),
        cmocka_unit_test(test_bad_service_ref),
        cmocka_unit_test(test_unknown_enum_value),
        cmocka_unit_test(test_port_out_of_bounds),
        cmocka_unit_test(test_materializer_duckdb_threads),
        cmocka_unit_test(test_materializer_nice),
        cmocka_unit_test(test_malformed_yaml),
        cmocka_unit_test(test_empty_and_missing_file),
        cmocka_unit_test(test_collects_all_errors_in_order),
        cmocka_unit_test(test_caps_error_count),
        cmocka_unit_test(test_errors_beyond_storage_are_only_counted),
        cmocka_unit_test(test_duplicate_mapping_key),
        cmocka_unit_test(test_no_cascading_errors),
        cmocka_unit_test(test_stream_section),
        cmocka_unit_test(test_stream_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
