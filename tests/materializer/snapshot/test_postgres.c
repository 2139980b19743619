/*
 * The PostgreSQL source (materializer/snapshot/postgres.h) against a real server started by
 * pg_server.c, rows going through the real sink into a real table.
 *
 * The server runs with TimeZone=Asia/Kathmandu (+05:45) and the client sets PGTZ and TZ to
 * other zones, so any time-zone conversion on the way would show as a shifted timestamp.
 * Floating-point values are compared bit for bit.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "config/config.h"
#include "materializer/snapshot/postgres.h"
#include "materializer/snapshot/postgres_internal.h"
#include "materializer/snapshot/sink.h"
#include "pg_server.h"
#include "store/key.h"
#include "store/rcu.h"
#include "store/row.h"
#include "store/schema.h"
#include "store/table.h"
#include "common/clock.h"

#define SEC              INT64_C(1000000)
#define TS_2024_02_29_US INT64_C(1709210096789012) /* 2024-02-29 12:34:56.789012 UTC */
#define TS_2024_01_01_US INT64_C(1704067200000000) /* 2024-01-01 00:00:00 UTC */
#define KILL_ROWS        2000000
#define KILL_AFTER_ROWS  200000
#define READ_DEADLINE_S  120 /* a read that hangs after the server died fails the test */
#define STR_(x)          #x
#define STR(x)           STR_(x)

static struct pg_server g_server;

/* ---- helpers ------------------------------------------------------------------------ */

static void _sql(const char *sql) {
    char err[2048];
    if (pg_server_exec(&g_server, sql, err, sizeof err) != 0) {
        fail_msg("SQL failed: %s\n%s", sql, err);
    }
}

struct spec {
    const char *name;
    int type; /* enum store_type, or KEY_INT / KEY_STR for join keys */
};
#define KEY_INT 100
#define KEY_STR 101

/* A finalized schema named `view` from a list of keys and features. */
static struct store_schema *_schema(const char *view, int64_t ttl_us, const struct spec *specs,
                                    size_t n) {
    char err[256];
    struct store_schema *s = store_schema_create(view, ttl_us);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++) {
        if (specs[i].type == KEY_INT || specs[i].type == KEY_STR) {
            assert_int_equal(
                store_schema_add_key(s, specs[i].name,
                                     specs[i].type == KEY_INT ? STORE_KEY_INT64 : STORE_KEY_STRING,
                                     err, sizeof err),
                0);
        } else {
            assert_true(store_schema_add_feature(s, specs[i].name, (enum store_type)specs[i].type,
                                                 err, sizeof err) >= 0);
        }
    }
    assert_int_equal(store_schema_finalize(s, err, sizeof err), 0);
    return s;
}

static struct mat_source _table_source(const char *table, const char *event_col) {
    struct mat_source src = {
        .type = MAT_SOURCE_POSTGRES,
        .dsn = g_server.dsn,
        .table = (char *)table,
        .event_timestamp_column = (char *)event_col,
    };
    return src;
}

static struct mat_source _query_source(const char *query, const char *event_col) {
    struct mat_source src = _table_source(NULL, event_col);
    src.query = (char *)query;
    return src;
}

/* One load: a table, a sink over it, and what mat_pg_read said. */
struct load {
    struct store_schema *schema;
    struct store_table *table;
    struct mat_sink *sink;
    int rc;
    uint64_t expected_rows;
    char err[2048];
};

static void _load(struct load *l, struct store_schema *schema, const struct mat_source *src,
                  int64_t watermark_us) {
    memset(l, 0, sizeof *l);
    l->schema = schema;
    struct store_table_options opts = {.shards = 4};
    l->table = store_table_create(schema, &opts, l->err, sizeof l->err);
    assert_non_null(l->table);
    l->sink = mat_sink_create(schema, l->table, clock_wall_us());
    assert_non_null(l->sink);
    l->rc =
        mat_pg_read(src, schema, l->sink, watermark_us, &l->expected_rows, l->err, sizeof l->err);
}

static void _load_ok(struct load *l, struct store_schema *schema, const struct mat_source *src,
                     int64_t watermark_us) {
    _load(l, schema, src, watermark_us);
    if (l->rc != 0) {
        fail_msg("mat_pg_read failed: %s", l->err);
    }
}

/* Loads that must fail: returns the message, which must contain every `want`. */
static void _load_fails(struct load *l, struct store_schema *schema, const struct mat_source *src,
                        const char *const *want) {
    _load(l, schema, src, INT64_MIN);
    assert_int_equal(l->rc, -1);
    print_message("    error: %s\n", l->err);
    for (; *want != NULL; want++) {
        if (strstr(l->err, *want) == NULL) {
            fail_msg("error \"%s\" lacks \"%s\"", l->err, *want);
        }
    }
    assert_null(strchr(l->err, '\n')); /* one line */
}

static void _unload(struct load *l) {
    mat_sink_destroy(l->sink);
    store_table_destroy(l->table);
    store_schema_destroy(l->schema);
}

static const struct store_row *_get(const struct load *l, const struct store_key_part *parts) {
    uint8_t buf[STORE_MAX_KEY_BYTES];
    char err[256];
    int len = store_key_encode(l->schema, parts, buf, sizeof buf, err, sizeof err);
    assert_true(len >= 0);
    struct store_key key = {buf, (uint32_t)len, store_key_hash(buf, (uint32_t)len)};
    /* the table is unpublished and nothing writes it now: the row outlives the section */
    store_read_lock();
    const struct store_row *row = store_table_get(l->table, &key);
    store_read_unlock();
    return row;
}

static const struct store_row *_get_int(const struct load *l, int64_t id) {
    struct store_key_part part = {.type = STORE_KEY_INT64, .i64 = id};
    const struct store_row *row = _get(l, &part);
    if (row == NULL) {
        fail_msg("no row for id %lld", (long long)id);
    }
    return row;
}

static bool _is_null(const struct load *l, const struct store_row *row, const char *feature) {
    int index = store_schema_feature_index(l->schema, feature);
    assert_true(index >= 0);
    return store_row_is_null(l->schema, row, (uint32_t)index);
}

static struct store_value _value(const struct load *l, const struct store_row *row,
                                 const char *feature) {
    int index = store_schema_feature_index(l->schema, feature);
    assert_true(index >= 0);
    if (store_row_is_null(l->schema, row, (uint32_t)index)) {
        fail_msg("feature %s is null", feature);
    }
    struct store_value v;
    store_row_get(l->schema, row, (uint32_t)index, &v);
    return v;
}

static void _assert_double_bits(double got, double want) {
    if (memcmp(&got, &want, sizeof got) != 0) {
        fail_msg("double %.17g != %.17g (bits differ)", got, want);
    }
}

static void _assert_float_bits(float got, float want) {
    if (memcmp(&got, &want, sizeof got) != 0) {
        fail_msg("float %.9g != %.9g (bits differ)", (double)got, (double)want);
    }
}

static void _assert_string(struct store_value v, const char *want) {
    assert_int_equal(v.var.bytes, strlen(want));
    assert_memory_equal(v.var.data, want, v.var.bytes);
}

static int64_t _int_feature(const struct load *l, int64_t id, const char *feature) {
    return _value(l, _get_int(l, id), feature).i64;
}

/* ---- every type ----------------------------------------------------------------------- */

static const struct spec EVERY_TYPE[] = {
    {"id", KEY_INT},
    {"i32_2", STORE_TYPE_INT32},
    {"i32_4", STORE_TYPE_INT32},
    {"i32_8", STORE_TYPE_INT32},
    {"i64_8", STORE_TYPE_INT64},
    {"i64_4", STORE_TYPE_INT64},
    {"f_4", STORE_TYPE_FLOAT},
    {"f_num", STORE_TYPE_FLOAT},
    {"d_8", STORE_TYPE_DOUBLE},
    {"d_4", STORE_TYPE_DOUBLE},
    {"d_4i", STORE_TYPE_DOUBLE},
    {"d_num", STORE_TYPE_DOUBLE},
    {"b", STORE_TYPE_BOOL},
    {"s_text", STORE_TYPE_STRING},
    {"s_varchar", STORE_TYPE_STRING},
    {"s_bpchar", STORE_TYPE_STRING},
    {"s_name", STORE_TYPE_STRING},
    {"s_enum", STORE_TYPE_STRING},
    {"by", STORE_TYPE_BYTES},
    {"t_tz", STORE_TYPE_TIMESTAMP},
    {"t_ts", STORE_TYPE_TIMESTAMP},
    {"t_date", STORE_TYPE_TIMESTAMP},
    {"fl_4", STORE_TYPE_FLOAT_LIST},
    {"fl_8", STORE_TYPE_FLOAT_LIST},
    {"il_8", STORE_TYPE_INT64_LIST},
    {"il_2", STORE_TYPE_INT64_LIST},
    {"sl_text", STORE_TYPE_STRING_LIST},
    {"sl_varchar", STORE_TYPE_STRING_LIST},
};
#define N_EVERY_TYPE (sizeof EVERY_TYPE / sizeof EVERY_TYPE[0])

/* The list types beside float, int64 and string lists: each element read as its scalar. */
static void test_more_list_types(void **state) {
    (void)state;
    _sql("CREATE TABLE more_lists (id int8, ts timestamptz, i32 int4[], i32_2 int2[],"
         "  d8 float8[], d4 real[], dnum numeric[], b bool[], by bytea[], tz timestamptz[],"
         "  td date[], tts timestamp[]);"
         "INSERT INTO more_lists VALUES"
         " (1, '2024-01-01+00', '{-2147483648,0,2147483647}', '{-32768}', '{0.1,-0.0,1e300}',"
         "  '{0.5}', '{1.25,-3}', '{true,false,true}', '{\"\\\\x00ff\",\"\"}',"
         "  '{1970-01-01 00:00:01+00,infinity}', '{1970-01-02}', '{1969-12-31 23:59:59.5}'),"
         " (2, '2024-01-01+00', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}'),"
         " (3, '2024-01-01+00', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)");
    static const struct spec specs[] = {
        {"id", KEY_INT},
        {"i32", STORE_TYPE_INT32_LIST},
        {"i32_2", STORE_TYPE_INT32_LIST},
        {"d8", STORE_TYPE_DOUBLE_LIST},
        {"d4", STORE_TYPE_DOUBLE_LIST},
        {"dnum", STORE_TYPE_DOUBLE_LIST},
        {"b", STORE_TYPE_BOOL_LIST},
        {"by", STORE_TYPE_BYTES_LIST},
        {"tz", STORE_TYPE_TIMESTAMP_LIST},
        {"td", STORE_TYPE_TIMESTAMP_LIST},
        {"tts", STORE_TYPE_TIMESTAMP_LIST},
    };
    struct mat_source src = _table_source("more_lists", "ts");
    struct load l;
    _load_ok(&l, _schema("more_lists", 0, specs, 11), &src, INT64_MIN);
    const struct store_row *r = _get_int(&l, 1);
    struct store_value v = _value(&l, r, "i32");
    assert_int_equal(v.var.count, 3);
    assert_memory_equal(v.var.data, ((int32_t[]){INT32_MIN, 0, INT32_MAX}), 12);
    v = _value(&l, r, "i32_2");
    assert_memory_equal(v.var.data, ((int32_t[]){-32768}), 4);
    v = _value(&l, r, "d8");
    assert_int_equal(v.var.count, 3);
    assert_memory_equal(v.var.data, ((double[]){0.1, -0.0, 1e300}), 24);
    v = _value(&l, r, "d4");
    assert_memory_equal(v.var.data, ((double[]){0.5}), 8);
    v = _value(&l, r, "dnum");
    assert_memory_equal(v.var.data, ((double[]){1.25, -3}), 16);
    v = _value(&l, r, "b");
    assert_int_equal(v.var.count, 3);
    assert_memory_equal(v.var.data, "\1\0\1", 3);
    v = _value(&l, r, "by");
    assert_int_equal(v.var.count, 2);
    const char *item;
    uint32_t len;
    store_packed_list_at(&v, 0, &item, &len);
    assert_int_equal(len, 2);
    assert_memory_equal(item, "\x00\xff", 2);
    store_packed_list_at(&v, 1, &item, &len);
    assert_int_equal(len, 0);
    v = _value(&l, r, "tz");
    assert_memory_equal(v.var.data, ((int64_t[]){SEC, INT64_MAX}), 16);
    v = _value(&l, r, "td");
    assert_memory_equal(v.var.data, ((int64_t[]){86400 * SEC}), 8);
    v = _value(&l, r, "tts");
    assert_memory_equal(v.var.data, ((int64_t[]){-SEC / 2}), 8);
    r = _get_int(&l, 2);
    for (size_t i = 1; i < 11; i++) {
        assert_false(_is_null(&l, r, specs[i].name));
        assert_int_equal(_value(&l, r, specs[i].name).var.count, 0);
    }
    r = _get_int(&l, 3);
    for (size_t i = 1; i < 11; i++) {
        assert_true(_is_null(&l, r, specs[i].name));
    }
    _unload(&l);
    /* an array whose elements the element type does not take is refused up front */
    static const struct spec wrong[] = {{"id", KEY_INT}, {"b", STORE_TYPE_INT32_LIST}};
    _load_fails(&l, _schema("v", 0, wrong, 2), &src,
                (const char *const[]){"column b is boolean[]", "the view wants int32_list",
                                      "accepted: arrays of smallint, integer, bigint", NULL});
    _unload(&l);
}

static void test_every_type(void **state) {
    (void)state;
    _sql("CREATE TYPE mood AS ENUM ('sad', 'happy');"
         "CREATE TABLE every_type (id int8, ts timestamptz,"
         "  i32_2 int2, i32_4 int4, i32_8 int8, i64_8 int8, i64_4 int4,"
         "  f_4 real, f_num numeric, d_8 float8, d_4 real, d_4i int4, d_num numeric,"
         "  b bool, s_text text, s_varchar varchar(20), s_bpchar char(5), s_name name,"
         "  s_enum mood, by bytea, t_tz timestamptz, t_ts timestamp, t_date date,"
         "  fl_4 real[], fl_8 float8[], il_8 int8[], il_2 int2[], sl_text text[],"
         "  sl_varchar varchar[], unused text);"
         "INSERT INTO every_type VALUES"
         " (1, '2024-02-29 12:34:56.789012+00', -32768, 2147483647, -2147483648,"
         "  -9223372036854775808, -7,"
         "  '3.4028235e38', '0.1', '0.1', '0.1', 2147483647,"
         "  '123456789.123456789012345678901234567890123',"
         "  true, 'héllo', 'v', 'ab', 'nm', 'happy', '\\x00ff10',"
         "  '2024-02-29 12:34:56.789012+00', '1969-07-20 20:17:40.000001', '2024-02-29',"
         "  '{1.5,-0.25,3.4028235e38}', '{0.1,1e-50,-2.5}',"
         "  '{-9223372036854775808,0,9223372036854775807}', '{-32768,32767}',"
         "  '{\"a\",\"\",\"ünï\",\"with,comma\",\"NULL\"}', '{x,y}', 'not read'),"
         " (2, '2024-01-01 00:00:00+00', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
         "  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
         "  NULL, NULL, NULL, NULL, NULL),"
         " (3, '2024-01-01 00:00:00+00', 0, 0, 0, 0, 0,"
         "  '-0', '1.401298464324817e-45', '4.9e-324', '-0', -2147483648, '1e-320',"
         "  false, '', '', '', '', 'sad', '',"
         "  'infinity', '-infinity', 'infinity',"
         "  '{}', '{}', '{}', '{}', '{}', '{}', NULL),"
         " (4, '2024-01-01 00:00:00+00', 1, 1, 1, 1, 1,"
         "  'NaN', 'NaN', '-0', 'Infinity', 1, 'Infinity',"
         "  true, 'x', 'x', 'x', 'x', 'sad', 'x', '1970-01-01 00:00:00+00', '1970-01-01',"
         "  '1969-12-31', '{NaN}', '{1e30}', '{7}', '{-1}', '{\"\"}', '{}', NULL),"
         " (5, '2024-01-01 00:00:00+00', 0, 0, 0, 0, 0,"
         "  '0', '-123.456', '-1.7976931348623157e308', '1e-45', 0, '-0.000001',"
         "  false, '', '', '', '', 'sad', '', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
         "  NULL, NULL)");
    struct mat_source src = _table_source("every_type", "ts");
    struct load l;
    _load_ok(&l, _schema("every_type", 0, EVERY_TYPE, N_EVERY_TYPE), &src, INT64_MIN);
    assert_int_equal(mat_sink_stats(l.sink)->rows_read, 5);
    assert_int_equal(mat_sink_stats(l.sink)->rows_kept, 5);

    /* row 1: typical and extreme values */
    const struct store_row *r = _get_int(&l, 1);
    assert_int_equal(r->event_ts_us, TS_2024_02_29_US);
    assert_int_equal(store_row_created_us(r), INT64_MIN);
    assert_int_equal(_value(&l, r, "i32_2").i32, -32768);
    assert_int_equal(_value(&l, r, "i32_4").i32, INT32_MAX);
    assert_int_equal(_value(&l, r, "i32_8").i32, INT32_MIN);
    assert_true(_value(&l, r, "i64_8").i64 == INT64_MIN);
    assert_int_equal(_value(&l, r, "i64_4").i64, -7);
    _assert_float_bits(_value(&l, r, "f_4").f32, 3.4028235e38f);
    _assert_float_bits(_value(&l, r, "f_num").f32, 0.1f);
    _assert_double_bits(_value(&l, r, "d_8").f64, 0.1);
    _assert_double_bits(_value(&l, r, "d_4").f64, (double)0.1f);
    _assert_double_bits(_value(&l, r, "d_4i").f64, 2147483647.0);
    _assert_double_bits(_value(&l, r, "d_num").f64,
                        strtod("123456789.123456789012345678901234567890123", NULL));
    assert_true(_value(&l, r, "b").b);
    _assert_string(_value(&l, r, "s_text"), "héllo");
    _assert_string(_value(&l, r, "s_varchar"), "v");
    _assert_string(_value(&l, r, "s_bpchar"), "ab   "); /* char(5) keeps its padding */
    _assert_string(_value(&l, r, "s_name"), "nm");
    _assert_string(_value(&l, r, "s_enum"), "happy");
    struct store_value by = _value(&l, r, "by");
    assert_int_equal(by.var.bytes, 3);
    assert_memory_equal(by.var.data, "\x00\xff\x10", 3);
    assert_int_equal(_value(&l, r, "t_tz").ts_us, TS_2024_02_29_US);
    assert_int_equal(_value(&l, r, "t_ts").ts_us, -14182940LL * SEC + 1);
    assert_int_equal(_value(&l, r, "t_date").ts_us, TS_2024_02_29_US - 45296789012LL);
    struct store_value fl4 = _value(&l, r, "fl_4");
    assert_int_equal(fl4.var.bytes, 3 * sizeof(float));
    const float *f = fl4.var.data;
    _assert_float_bits(f[0], 1.5f);
    _assert_float_bits(f[1], -0.25f);
    _assert_float_bits(f[2], 3.4028235e38f);
    struct store_value fl8 = _value(&l, r, "fl_8");
    f = fl8.var.data;
    assert_int_equal(fl8.var.bytes, 3 * sizeof(float));
    _assert_float_bits(f[0], (float)0.1); /* float8 elements round to the nearest float */
    _assert_float_bits(f[1], 0.0f);
    _assert_float_bits(f[2], -2.5f);
    struct store_value il8 = _value(&l, r, "il_8");
    assert_int_equal(il8.var.bytes, 3 * sizeof(int64_t));
    const int64_t *il = il8.var.data;
    assert_true(il[0] == INT64_MIN && il[1] == 0 && il[2] == INT64_MAX);
    struct store_value il2 = _value(&l, r, "il_2");
    il = il2.var.data;
    assert_int_equal(il2.var.bytes, 2 * sizeof(int64_t));
    assert_true(il[0] == -32768 && il[1] == 32767);
    struct store_value sl = _value(&l, r, "sl_text");
    assert_int_equal(sl.var.count, 5);
    const char *want_sl[] = {"a", "", "ünï", "with,comma", "NULL"};
    for (uint32_t i = 0; i < 5; i++) {
        const char *data;
        uint32_t len;
        store_packed_list_at(&sl, i, &data, &len);
        assert_int_equal(len, strlen(want_sl[i]));
        assert_memory_equal(data, want_sl[i], len);
    }
    assert_int_equal(_value(&l, r, "sl_varchar").var.count, 2);

    /* row 2: every feature NULL */
    r = _get_int(&l, 2);
    for (size_t i = 1; i < N_EVERY_TYPE; i++) {
        assert_true(_is_null(&l, r, EVERY_TYPE[i].name));
    }

    /* row 3: zeros, signed zeros, subnormals, empties, infinities */
    r = _get_int(&l, 3);
    _assert_float_bits(_value(&l, r, "f_4").f32, -0.0f);
    _assert_float_bits(_value(&l, r, "f_num").f32, strtof("1.401298464324817e-45", NULL));
    _assert_double_bits(_value(&l, r, "d_8").f64, 4.9e-324);
    _assert_double_bits(_value(&l, r, "d_4").f64, -0.0);
    _assert_double_bits(_value(&l, r, "d_4i").f64, -2147483648.0);
    _assert_double_bits(_value(&l, r, "d_num").f64, strtod("1e-320", NULL));
    assert_false(_value(&l, r, "b").b);
    _assert_string(_value(&l, r, "s_text"), ""); /* empty, not NULL */
    _assert_string(_value(&l, r, "s_bpchar"), "     ");
    assert_int_equal(_value(&l, r, "by").var.bytes, 0);
    assert_true(_value(&l, r, "t_tz").ts_us == INT64_MAX);
    assert_true(_value(&l, r, "t_ts").ts_us == INT64_MIN);
    assert_true(_value(&l, r, "t_date").ts_us == INT64_MAX);
    assert_int_equal(_value(&l, r, "fl_4").var.bytes, 0);
    assert_int_equal(_value(&l, r, "il_8").var.bytes, 0);
    assert_int_equal(_value(&l, r, "sl_text").var.count, 0);
    assert_true(_is_null(&l, r, "i32_2") == false);

    /* row 4: NaN, infinities, the epoch, the day before it */
    r = _get_int(&l, 4);
    assert_true(isnan(_value(&l, r, "f_4").f32));
    assert_true(isnan(_value(&l, r, "f_num").f32));
    _assert_double_bits(_value(&l, r, "d_8").f64, -0.0);
    _assert_double_bits(_value(&l, r, "d_4").f64, INFINITY);
    _assert_double_bits(_value(&l, r, "d_num").f64, INFINITY);
    assert_int_equal(_value(&l, r, "t_tz").ts_us, 0);
    assert_int_equal(_value(&l, r, "t_ts").ts_us, 0);
    assert_int_equal(_value(&l, r, "t_date").ts_us, -86400 * SEC);
    assert_true(isnan(((const float *)_value(&l, r, "fl_4").var.data)[0]));
    _assert_float_bits(((const float *)_value(&l, r, "fl_8").var.data)[0], 1e30f);
    assert_int_equal(_value(&l, r, "sl_text").var.count, 1);

    /* row 5: negative numerics, the most negative double, a float subnormal widened */
    r = _get_int(&l, 5);
    _assert_float_bits(_value(&l, r, "f_num").f32, -123.456f);
    _assert_double_bits(_value(&l, r, "d_8").f64, -1.7976931348623157e308);
    _assert_double_bits(_value(&l, r, "d_4").f64, (double)1e-45f);
    _assert_double_bits(_value(&l, r, "d_num").f64, -0.000001);
    assert_true(_is_null(&l, r, "fl_4"));
    _unload(&l);
}

/* numeric digits are rounded once, to the nearest double, for many magnitudes */
static void test_numeric_nearest_double(void **state) {
    (void)state;
    static const char *const values[] = {
        "0",
        "1",
        "-1",
        "0.1",
        "0.3",
        "1e-5",
        "1e22",
        "1e23",
        "123456789012345678901234567890",
        "9007199254740993", /* 2^53 + 1: halfway, rounds to even */
        "0.000000000000000000000000000000000000000000000000000000000000001",
        "2.2250738585072011e-308",
        "1.7976931348623157e308",
        "3.14159265358979323846264338327950288419716939937510",
        "-98765.4321",
        "10000",
        "0.0001",
        "100000000",
    };
    const size_t n = sizeof values / sizeof values[0];
    char sql[4096] = "CREATE TABLE numerics (id int8, ts timestamptz, v numeric);"
                     "INSERT INTO numerics VALUES ";
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(sql);
        snprintf(sql + used, sizeof sql - used, "%s(%zu, '2024-01-01+00', '%s')", i ? "," : "", i,
                 values[i]);
    }
    _sql(sql);
    static const struct spec specs[] = {{"id", KEY_INT}, {"v", STORE_TYPE_DOUBLE}};
    struct mat_source src = _table_source("numerics", "ts");
    struct load l;
    _load_ok(&l, _schema("numerics", 0, specs, 2), &src, INT64_MIN);
    for (size_t i = 0; i < n; i++) {
        _assert_double_bits(_value(&l, _get_int(&l, (int64_t)i), "v").f64, strtod(values[i], NULL));
    }
    _unload(&l);
}

/* ---- latest row, keys, sources ------------------------------------------------------ */

static void test_latest_row_selection(void **state) {
    (void)state;
    _sql("CREATE TABLE latest (id int8, ts timestamptz, created timestamptz, v int8);"
         "INSERT INTO latest VALUES"
         /* out of order: the greatest event time wins */
         " (1, '2024-01-01 00:00:01+00', NULL, 1),"
         " (1, '2024-01-01 00:00:03+00', NULL, 3),"
         " (1, '2024-01-01 00:00:02+00', NULL, 2),"
         /* equal event times: the greatest created time wins; NULL created loses */
         " (2, '2024-01-01 00:00:05+00', '2024-01-02 00:00:01+00', 10),"
         " (2, '2024-01-01 00:00:05+00', '2024-01-02 00:00:03+00', 30),"
         " (2, '2024-01-01 00:00:05+00', '2024-01-02 00:00:02+00', 20),"
         " (2, '2024-01-01 00:00:05+00', NULL, 99),"
         /* from the future: skipped */
         " (3, '2999-01-01 00:00:00+00', NULL, 7),"
         " (3, '2024-01-01 00:00:00+00', NULL, 6),"
         /* a NULL key: counted, not stored */
         " (NULL, '2024-01-01 00:00:00+00', NULL, 0),"
         /* exact duplicates: the first one stays */
         " (4, '2024-01-01 00:00:00+00', '2024-01-01 00:00:00+00', 40),"
         " (4, '2024-01-01 00:00:00+00', '2024-01-01 00:00:00+00', 41)");
    static const struct spec specs[] = {{"id", KEY_INT}, {"v", STORE_TYPE_INT64}};
    struct mat_source src = _table_source("latest", "ts");
    src.created_timestamp_column = "created";
    struct load l;
    _load_ok(&l, _schema("latest", 0, specs, 2), &src, INT64_MIN);
    assert_int_equal(_int_feature(&l, 1, "v"), 3);
    assert_int_equal(_int_feature(&l, 2, "v"), 30);
    assert_int_equal(store_row_created_us(_get_int(&l, 2)),
                     TS_2024_01_01_US + 86400 * SEC + 3 * SEC);
    assert_int_equal(_int_feature(&l, 3, "v"), 6);
    assert_int_equal(_int_feature(&l, 4, "v"), 40);
    const struct mat_sink_stats *st = mat_sink_stats(l.sink);
    assert_int_equal(st->rows_read, 12);
    assert_int_equal(st->null_keys, 1);
    assert_int_equal(st->skipped_future, 1);
    assert_int_equal(st->max_event_ts_us, TS_2024_01_01_US + 5 * SEC);
    _unload(&l);

    /* the TTL skips rows already too old at load time */
    src = _table_source("latest", "ts");
    _load_ok(&l, _schema("latest", 1 * SEC, specs, 2), &src, INT64_MIN);
    assert_int_equal(mat_sink_stats(l.sink)->skipped_expired, 10);
    _unload(&l);
}

static void test_query_source_composite_key(void **state) {
    (void)state;
    _sql("CREATE TABLE clicks (user_id text, item_id int4, ts timestamp, score float8);"
         "INSERT INTO clicks VALUES"
         " ('alice', 1, '2024-01-01 00:00:01', 0.5),"
         " ('alice', 2, '2024-01-01 00:00:02', 0.25),"
         " ('bob', 1, '2024-01-01 00:00:03', 1.5),"
         " ('bob', 1, '2024-01-01 00:00:04', 3.0),"
         " ('carol', 9, '2024-01-01 00:00:05', -1.0)");
    /* renamed columns, a computed one, a filter, a trailing comment and ';' */
    struct mat_source src =
        _query_source("SELECT user_id AS u, item_id AS i, ts AS t, score * 2 AS s2\n"
                      "  FROM clicks WHERE score > 0 -- positive only\n;\n",
                      "t");
    static const struct spec specs[] = {{"u", KEY_STR}, {"i", KEY_INT}, {"s2", STORE_TYPE_DOUBLE}};
    struct load l;
    _load_ok(&l, _schema("clicks", 0, specs, 3), &src, INT64_MIN);
    struct store_key_part parts[2] = {{.type = STORE_KEY_STRING, .str = "bob", .str_len = 3},
                                      {.type = STORE_KEY_INT64, .i64 = 1}};
    const struct store_row *r = _get(&l, parts);
    assert_non_null(r);
    _assert_double_bits(_value(&l, r, "s2").f64, 6.0);
    assert_int_equal(r->event_ts_us, TS_2024_01_01_US + 4 * SEC); /* timestamp read as UTC */
    parts[0] = (struct store_key_part){.type = STORE_KEY_STRING, .str = "alice", .str_len = 5};
    parts[1].i64 = 2;
    r = _get(&l, parts);
    assert_non_null(r);
    _assert_double_bits(_value(&l, r, "s2").f64, 0.5);
    parts[0] = (struct store_key_part){.type = STORE_KEY_STRING, .str = "carol", .str_len = 5};
    parts[1].i64 = 9;
    assert_null(_get(&l, parts));
    assert_int_equal(mat_sink_stats(l.sink)->rows_read, 4);
    _unload(&l);
}

static void test_table_names_as_sql_reads_them(void **state) {
    (void)state;
    _sql("CREATE SCHEMA \"Feature Store\";"
         "CREATE TABLE \"Feature Store\".\"Users\" (id int4, ts date, age int2);"
         "INSERT INTO \"Feature Store\".\"Users\" VALUES (1, '2024-01-01', 30);"
         "CREATE SCHEMA analytics;"
         "CREATE TABLE analytics.users (id int2, ts timestamptz, age int2);"
         "INSERT INTO analytics.users VALUES (2, '2024-01-01+00', 40);"
         "CREATE TABLE keep_me (x int)");
    static const struct spec specs[] = {{"id", KEY_INT}, {"age", STORE_TYPE_INT32}};
    struct load l;
    struct mat_source src = _table_source("\"Feature Store\".\"Users\"", "ts");
    _load_ok(&l, _schema("users", 0, specs, 2), &src, INT64_MIN);
    assert_int_equal(_value(&l, _get_int(&l, 1), "age").i32, 30);
    assert_int_equal(_get_int(&l, 1)->event_ts_us, TS_2024_01_01_US); /* date: midnight UTC */
    _unload(&l);

    /* unquoted names fold to lower case, as in SQL */
    src = _table_source("Analytics.USERS", "ts");
    _load_ok(&l, _schema("users", 0, specs, 2), &src, INT64_MIN);
    assert_int_equal(_value(&l, _get_int(&l, 2), "age").i32, 40);
    _unload(&l);

    /* a name is a name: nothing in it runs as SQL */
    src = _table_source("keep_me; DROP TABLE keep_me", "ts");
    _load(&l, _schema("users", 0, specs, 2), &src, INT64_MIN);
    assert_int_equal(l.rc, -1);
    print_message("    error: %s\n", l.err);
    _unload(&l);
    _sql("SELECT x FROM keep_me");
    src = _table_source("no_such_table", "ts");
    _load_fails(&l, _schema("users", 0, specs, 2), &src,
                (const char *const[]){"view users:", "no_such_table does not exist", NULL});
    _unload(&l);
}

static void test_incremental_watermark(void **state) {
    (void)state;
    _sql("CREATE TABLE incr (id int8, ts timestamptz, t_naive timestamp, d date, v int8);"
         "INSERT INTO incr SELECT i, '2024-01-01 00:00:00.000001+00'::timestamptz"
         "  + i * interval '1 day', '2024-01-01 00:00:00.000001'::timestamp + i * interval"
         "  '1 day', '2024-01-01'::date + i, i * 10 FROM generate_series(1, 5) i");
    static const struct spec specs[] = {{"id", KEY_INT}, {"v", STORE_TYPE_INT64}};
    const int64_t day = 86400 * SEC;
    const int64_t ts3 = TS_2024_01_01_US + 1 + 3 * day; /* event time of id 3 */
    const char *columns[] = {"ts", "t_naive"};
    for (int c = 0; c < 2; c++) {
        struct mat_source src = _table_source("incr", columns[c]);
        struct load l;
        /* strictly after the watermark: id 3 itself is not read again */
        _load_ok(&l, _schema("incr", 0, specs, 2), &src, ts3);
        assert_int_equal(mat_sink_stats(l.sink)->rows_read, 2);
        assert_int_equal(_int_feature(&l, 4, "v"), 40);
        assert_int_equal(_int_feature(&l, 5, "v"), 50);
        _unload(&l);
        _load_ok(&l, _schema("incr", 0, specs, 2), &src, ts3 - 1);
        assert_int_equal(mat_sink_stats(l.sink)->rows_read, 3);
        _unload(&l);
        _load_ok(&l, _schema("incr", 0, specs, 2), &src, INT64_MIN);
        assert_int_equal(mat_sink_stats(l.sink)->rows_read, 5);
        _unload(&l);
        /* before the epoch is a watermark too */
        _load_ok(&l, _schema("incr", 0, specs, 2), &src, -1);
        assert_int_equal(mat_sink_stats(l.sink)->rows_read, 5);
        _unload(&l);
    }
    struct mat_source src = _table_source("incr", "d");
    struct load l;
    _load_ok(&l, _schema("incr", 0, specs, 2), &src, TS_2024_01_01_US + 3 * day);
    assert_int_equal(mat_sink_stats(l.sink)->rows_read, 2);
    _unload(&l);
}

static void test_dsn_from_environment(void **state) {
    (void)state;
    _sql("CREATE TABLE env_src (id int8, ts timestamptz, v int8);"
         "INSERT INTO env_src VALUES (1, '2024-01-01+00', 11)");
    char port[16];
    snprintf(port, sizeof port, "%d", g_server.port);
    setenv("PGHOST", "127.0.0.1", 1);
    setenv("PGPORT", port, 1);
    setenv("PGDATABASE", PG_SERVER_DATABASE, 1);
    setenv("PGUSER", PG_SERVER_SUPERUSER, 1);
    struct mat_source src = _table_source("env_src", "ts");
    src.dsn = NULL;
    static const struct spec specs[] = {{"id", KEY_INT}, {"v", STORE_TYPE_INT64}};
    struct load l;
    _load(&l, _schema("env", 0, specs, 2), &src, INT64_MIN);
    unsetenv("PGHOST");
    unsetenv("PGPORT");
    unsetenv("PGDATABASE");
    unsetenv("PGUSER");
    if (l.rc != 0) {
        fail_msg("%s", l.err);
    }
    assert_int_equal(_int_feature(&l, 1, "v"), 11);
    _unload(&l);

    /* a URI works as well as key=value */
    char uri[256];
    snprintf(uri, sizeof uri, "postgresql://%s@127.0.0.1:%d/%s?connect_timeout=3",
             PG_SERVER_SUPERUSER, g_server.port, PG_SERVER_DATABASE);
    src.dsn = uri;
    _load_ok(&l, _schema("env", 0, specs, 2), &src, INT64_MIN);
    assert_int_equal(_int_feature(&l, 1, "v"), 11);
    _unload(&l);
}

static void test_planner_estimate(void **state) {
    (void)state;
    _sql("CREATE TABLE estimate AS SELECT i::int8 AS id, '2024-01-01+00'::timestamptz AS ts,"
         "  i AS v FROM generate_series(1, 5000) i;"
         "ANALYZE estimate");
    static const struct spec specs[] = {{"id", KEY_INT}, {"v", STORE_TYPE_INT64}};
    struct mat_source src = _table_source("estimate", "ts");
    struct load l;
    _load_ok(&l, _schema("estimate", 0, specs, 2), &src, INT64_MIN);
    assert_int_equal(l.expected_rows, 5000);
    assert_int_equal(mat_sink_stats(l.sink)->rows_read, 5000);
    _unload(&l);
}

/* ---- errors before any row ---------------------------------------------------------- */

static void test_type_mismatch(void **state) {
    (void)state;
    _sql("CREATE TABLE mism (id int8, ts timestamptz, ctr text, f8 float8, big int8, n int4,"
         "  tags int4[], whenever int8);"
         "INSERT INTO mism VALUES (1, '2024-01-01+00', '0.5', 0.5, 1, 1, '{1}', 0)");
    struct load l;
    struct mat_source src = _query_source("SELECT * FROM mism", "ts");
    static const struct spec ctr[] = {{"id", KEY_INT}, {"ctr", STORE_TYPE_DOUBLE}};
    _load_fails(&l, _schema("v", 0, ctr, 2), &src,
                (const char *const[]){
                    "view v: column ctr is text in the query result; the view wants double", NULL});
    assert_int_equal(mat_sink_stats(l.sink)->rows_read, 0);
    _unload(&l);

    /* losing bits is refused: cast in the query if it is meant */
    static const struct spec f8[] = {{"id", KEY_INT}, {"f8", STORE_TYPE_FLOAT}};
    _load_fails(&l, _schema("v", 0, f8, 2), &src,
                (const char *const[]){"column f8 is double precision", "wants float", NULL});
    _unload(&l);
    static const struct spec big[] = {{"id", KEY_INT}, {"big", STORE_TYPE_DOUBLE}};
    _load_fails(&l, _schema("v", 0, big, 2), &src,
                (const char *const[]){"column big is bigint", NULL});
    _unload(&l);
    static const struct spec tags[] = {{"id", KEY_INT}, {"tags", STORE_TYPE_STRING_LIST}};
    _load_fails(&l, _schema("v", 0, tags, 2), &src,
                (const char *const[]){"column tags is integer[]", "wants string_list", NULL});
    _unload(&l);
    static const struct spec skey[] = {{"id", KEY_STR}, {"n", STORE_TYPE_INT32}};
    _load_fails(&l, _schema("v", 0, skey, 2), &src,
                (const char *const[]){"column id is bigint", "a string key", NULL});
    _unload(&l);
    src = _table_source("mism", "whenever");
    static const struct spec ok[] = {{"id", KEY_INT}, {"n", STORE_TYPE_INT32}};
    _load_fails(
        &l, _schema("v", 0, ok, 2), &src,
        (const char *const[]){"column whenever is bigint in the table", "a timestamp", NULL});
    _unload(&l);
}

static void test_missing_column(void **state) {
    (void)state;
    _sql("CREATE TABLE missing (id int8, ts timestamptz, present int4)");
    struct load l;
    struct mat_source src = _table_source("missing", "ts");
    static const struct spec specs[] = {{"id", KEY_INT}, {"absent", STORE_TYPE_INT32}};
    _load_fails(&l, _schema("v", 0, specs, 2), &src,
                (const char *const[]){"view v: column absent is not in the table",
                                      "id, ts, present", NULL});
    _unload(&l);
    /* column names are exact: no case folding for them */
    static const struct spec upper[] = {{"ID", KEY_INT}, {"present", STORE_TYPE_INT32}};
    _load_fails(&l, _schema("v", 0, upper, 2), &src,
                (const char *const[]){"column ID is not in the table", NULL});
    _unload(&l);
    src = _table_source("missing", "created_at");
    static const struct spec ok[] = {{"id", KEY_INT}, {"present", STORE_TYPE_INT32}};
    _load_fails(&l, _schema("v", 0, ok, 2), &src,
                (const char *const[]){"column created_at is not in the table", NULL});
    _unload(&l);
}

static void test_query_error(void **state) {
    (void)state;
    struct load l;
    struct mat_source src = _query_source("SELEC id, ts FROM nowhere", "ts");
    static const struct spec specs[] = {{"id", KEY_INT}, {"v", STORE_TYPE_INT32}};
    _load_fails(&l, _schema("v", 0, specs, 2), &src,
                (const char *const[]){"view v: postgres: the query: ERROR: syntax error at or "
                                      "near",
                                      "SQLSTATE 42601", NULL});
    _unload(&l);
    src = _query_source("SELECT 1 / 0 AS id, now() AS ts, 1 AS v", "ts");
    _load_fails(&l, _schema("v", 0, specs, 2), &src,
                (const char *const[]){"division by zero", "SQLSTATE 22012", NULL});
    _unload(&l);
    /* the source runs read-only */
    _sql("CREATE TABLE victim (x int); INSERT INTO victim VALUES (1);"
         "CREATE FUNCTION sneaky() RETURNS int LANGUAGE sql AS 'DELETE FROM victim RETURNING 1'");
    src = _query_source("SELECT sneaky()::int8 AS id, now() AS ts, 1 AS v", "ts");
    _load_fails(&l, _schema("v", 0, specs, 2), &src,
                (const char *const[]){"read-only transaction", NULL});
    _unload(&l);
    _sql("DO $$ BEGIN IF (SELECT count(*) FROM victim) <> 1 THEN RAISE 'deleted'; END IF; END $$");
}

/* ---- errors at a row ------------------------------------------------------------------ */

static void test_bad_values_name_column_and_row(void **state) {
    (void)state;
    _sql("CREATE TABLE badvals (id int8, ts timestamptz, clicks int8, emb real[], n numeric,"
         "  grid int8[], wide float8[], ints int8[]);"
         "INSERT INTO badvals VALUES"
         " (6, '2024-01-01+00', 1, '{1}', 1, '{1}', '{1}', '{1}'),"
         " (7, '2024-01-01+00', 3000000000, '{1,NULL}', 1e400, '{{1,2},{3,4}}', '{1,1e300}',"
         "  '{1,3000000000}'),"
         " (8, NULL, 1, '{1}', 1, '{1}', '{1}', '{1}')");
    struct load l;
    static const struct spec clicks[] = {{"id", KEY_INT}, {"clicks", STORE_TYPE_INT32}};
    struct mat_source src = _table_source("badvals", "ts");
    _load_fails(&l, _schema("v", 0, clicks, 2), &src,
                (const char *const[]){"view v: column clicks, row 2 (id=7)",
                                      "3000000000 does not fit int32", NULL});
    _unload(&l);
    static const struct spec emb[] = {{"id", KEY_INT}, {"emb", STORE_TYPE_FLOAT_LIST}};
    _load_fails(&l, _schema("v", 0, emb, 2), &src,
                (const char *const[]){"column emb, row 2 (id=7)", "element 2 is NULL", NULL});
    _unload(&l);
    static const struct spec n[] = {{"id", KEY_INT}, {"n", STORE_TYPE_DOUBLE}};
    _load_fails(&l, _schema("v", 0, n, 2), &src,
                (const char *const[]){"column n, row 2", "too large for a double", NULL});
    _unload(&l);
    static const struct spec wide[] = {{"id", KEY_INT}, {"wide", STORE_TYPE_FLOAT_LIST}};
    _load_fails(&l, _schema("v", 0, wide, 2), &src,
                (const char *const[]){"column wide, row 2 (id=7)",
                                      "element 2: 1e+300 is beyond float range", NULL});
    _unload(&l);
    static const struct spec ints[] = {{"id", KEY_INT}, {"ints", STORE_TYPE_INT32_LIST}};
    _load_fails(&l, _schema("v", 0, ints, 2), &src,
                (const char *const[]){"column ints, row 2 (id=7)",
                                      "element 2: 3000000000 does not fit int32", NULL});
    _unload(&l);
    static const struct spec grid[] = {{"id", KEY_INT}, {"grid", STORE_TYPE_INT64_LIST}};
    _load_fails(&l, _schema("v", 0, grid, 2), &src,
                (const char *const[]){"column grid, row 2", "2-dimensional", NULL});
    _unload(&l);
    src = _query_source("SELECT * FROM badvals WHERE id <> 7 ORDER BY id", "ts");
    _load_fails(&l, _schema("v", 0, clicks, 2), &src,
                (const char *const[]){"column ts, row 2 (id=8)", "event time is NULL", NULL});
    _unload(&l);
}

/* ---- connections -------------------------------------------------------------------- */

static void test_connection_refused(void **state) {
    (void)state;
    char dsn[256];
    int port = pg_server_free_port();
    assert_true(port > 0);
    snprintf(dsn, sizeof dsn, "host=127.0.0.1 port=%d dbname=x user=fsd password=hunter2-secret",
             port);
    struct mat_source src = _table_source("t", "ts");
    src.dsn = dsn;
    static const struct spec specs[] = {{"id", KEY_INT}, {"v", STORE_TYPE_INT32}};
    struct load l;
    _load_fails(&l, _schema("v", 0, specs, 2), &src,
                (const char *const[]){"view v: postgres: connecting:", "Connection refused", NULL});
    assert_null(strstr(l.err, "hunter2"));
    _unload(&l);

    /* a malformed dsn: libpq quotes parts of it, which are not passed on */
    src.dsn = "host=127.0.0.1 password='hunter2-secret";
    _load_fails(&l, _schema("v", 0, specs, 2), &src,
                (const char *const[]){"invalid connection string", NULL});
    assert_null(strstr(l.err, "hunter2"));
    _unload(&l);
    src.dsn = "host=127.0.0.1 hunter2-secret";
    _load_fails(&l, _schema("v", 0, specs, 2), &src,
                (const char *const[]){"invalid connection string", NULL});
    assert_null(strstr(l.err, "hunter2"));
    _unload(&l);
}

/* A password the server checks, echoed nowhere when it is wrong. */
static void test_password_never_in_errors(void **state) {
    (void)state;
    _sql("CREATE TABLE secret_src (id int8, ts timestamptz, v int8)");
    char dsn[256];
    snprintf(dsn, sizeof dsn,
             "host=127.0.0.1 port=%d dbname=%s user=no_such_role password=hunter2-secret",
             g_server.port, PG_SERVER_DATABASE);
    struct mat_source src = _table_source("secret_src", "ts");
    src.dsn = dsn;
    static const struct spec specs[] = {{"id", KEY_INT}, {"v", STORE_TYPE_INT64}};
    struct load l;
    _load_fails(&l, _schema("v", 0, specs, 2), &src, (const char *const[]){"no_such_role", NULL});
    assert_null(strstr(l.err, "hunter2"));
    _unload(&l);
}

/* ---- the server dies mid-COPY -------------------------------------------------------- */

struct killer {
    bool whole_server; /* kill the postmaster and everything, else only the COPY's backend */
    bool freeze;       /* SIGSTOP the COPY's backend instead of killing it */
    bool killed;
    _Atomic bool ready; /* connected, watching: the read may start */
    pid_t backend;
    int64_t at_us; /* monotonic, when it struck */
    char err[512];
};

/* Waits until the COPY has sent KILL_AFTER_ROWS rows, then kills. */
static void *_killer(void *arg) {
    struct killer *k = arg;
    char dsn[256];
    snprintf(dsn, sizeof dsn, "host=127.0.0.1 port=%d dbname=%s user=%s", g_server.port,
             PG_SERVER_DATABASE, PG_SERVER_SUPERUSER);
    PGconn *conn = PQconnectdb(dsn);
    if (PQstatus(conn) != CONNECTION_OK) {
        snprintf(k->err, sizeof k->err, "killer: %s", PQerrorMessage(conn));
        PQfinish(conn);
        k->ready = true;
        return NULL;
    }
    k->ready = true;
    for (int i = 0; i < 6000 && !k->killed; i++) {
        /* the COPY of `big`: the one past KILL_AFTER_ROWS (a COPY an earlier test abandoned
         * may still be running its pg_sleep) */
        PGresult *res = PQexec(
            conn, "SELECT pid, tuples_processed FROM pg_stat_progress_copy"
                  " WHERE command = 'COPY TO' AND tuples_processed >= " STR(KILL_AFTER_ROWS));
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
            pid_t backend = (pid_t)atoi(PQgetvalue(res, 0, 0));
            k->backend = backend;
            k->at_us = clock_mono_us();
            if (k->whole_server) {
                pg_server_kill(&g_server);
            } else {
                kill(backend, k->freeze ? SIGSTOP : SIGKILL);
            }
            k->killed = true;
        }
        PQclear(res);
        usleep(10000);
    }
    PQfinish(conn);
    if (!k->killed) {
        snprintf(k->err, sizeof k->err, "killer: the COPY never reached %d rows", KILL_AFTER_ROWS);
    }
    return NULL;
}

static void _big_table(void) {
    static bool created;
    if (!created) {
        _sql("CREATE TABLE big AS SELECT i::int8 AS id,"
             "  '2024-01-01+00'::timestamptz + i * interval '1 ms' AS ts, i::float8 AS f"
             "  FROM generate_series(1, 2000000) i");
        created = true;
    }
}

static void _read_while_killed(bool whole_server) {
    _big_table();
    static const struct spec specs[] = {{"id", KEY_INT}, {"f", STORE_TYPE_DOUBLE}};
    struct mat_source src = _table_source("big", "ts");
    struct killer k = {.whole_server = whole_server};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, _killer, &k), 0);
    while (!k.ready) {
        usleep(1000);
    }
    alarm(READ_DEADLINE_S); /* a hang fails the test instead of wedging CI */
    double start = (double)clock_wall_us();
    struct load l;
    _load(&l, _schema("big", 0, specs, 2), &src, INT64_MIN);
    alarm(0);
    pthread_join(thread, NULL);
    if (!k.killed) {
        fail_msg("%s (read rc %d: %s)", k.err, l.rc, l.err);
    }
    print_message("    %s after %.1f s, %llu rows: %s\n", whole_server ? "server" : "backend",
                  ((double)clock_wall_us() - start) / 1e6,
                  (unsigned long long)mat_sink_stats(l.sink)->rows_read, l.err);
    assert_int_equal(l.rc, -1);
    assert_non_null(strstr(l.err, "view big: postgres:"));
    assert_true(mat_sink_stats(l.sink)->rows_read < KILL_ROWS);
    _unload(&l);
}

static void test_backend_killed_mid_load(void **state) {
    (void)state;
    _read_while_killed(false);
    /* the postmaster restarts its backends after a crash: wait, then read it all */
    char err[2048];
    if (pg_server_wait_ready(&g_server, err, sizeof err) != 0) {
        fail_msg("%s", err);
    }
    static const struct spec specs[] = {{"id", KEY_INT}, {"f", STORE_TYPE_DOUBLE}};
    struct mat_source src = _table_source("big", "ts");
    struct load l;
    _load_ok(&l, _schema("big", 0, specs, 2), &src, INT64_MIN);
    assert_int_equal(mat_sink_stats(l.sink)->rows_kept, KILL_ROWS);
    _assert_double_bits(_value(&l, _get_int(&l, 1234567), "f").f64, 1234567.0);
    _unload(&l);
}

static void test_server_killed_mid_load(void **state) {
    (void)state;
    _read_while_killed(true);
    char err[2048];
    if (pg_server_restart(&g_server, err, sizeof err) != 0) {
        fail_msg("%s", err);
    }
    /* down at start: the same dsn, nobody listening */
    pg_server_kill(&g_server);
    static const struct spec specs[] = {{"id", KEY_INT}, {"f", STORE_TYPE_DOUBLE}};
    struct mat_source src = _table_source("big", "ts");
    struct load l;
    _load_fails(&l, _schema("big", 0, specs, 2), &src,
                (const char *const[]){"connecting", "Connection refused", NULL});
    _unload(&l);
    if (pg_server_restart(&g_server, err, sizeof err) != 0) {
        fail_msg("%s", err);
    }
}

/* ---- bounds: a server that does not answer fails the read in time --------------------- */

static double _seconds_since(int64_t start_us) {
    return (double)(clock_mono_us() - start_us) / 1e6;
}

/* A load of `src` that must fail with `want` within [min_s, max_s] seconds. */
static void _fails_in(struct mat_source *src, const char *want, double min_s, double max_s) {
    static const struct spec specs[] = {{"id", KEY_INT}, {"v", STORE_TYPE_INT64}};
    struct load l;
    int64_t start = clock_mono_us();
    alarm(READ_DEADLINE_S);
    _load_fails(&l, _schema("slow", 0, specs, 2), src, (const char *const[]){want, NULL});
    alarm(0);
    double took = _seconds_since(start);
    print_message("    failed after %.2f s\n", took);
    if (took < min_s || took > max_s) {
        fail_msg("failed after %.2f s, not within %.1f..%.1f s: %s", took, min_s, max_s, l.err);
    }
    _unload(&l);
}

static const char SLOW_QUERY[] = "SELECT 1::int8 AS id, now() AS ts, 1::int8 AS v FROM pg_sleep(3)";

static void test_listener_that_never_answers_fails_at_connect_timeout(void **state) {
    (void)state;
    /* the kernel completes the handshake for the backlog; nobody ever speaks */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(listen(fd, 8), 0);
    socklen_t len = sizeof addr;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    char dsn[128];
    snprintf(dsn, sizeof dsn, "host=127.0.0.1 port=%d dbname=x user=fsd", ntohs(addr.sin_port));
    struct mat_source src = _table_source("t", "ts");
    src.dsn = dsn;
    src.timeouts.connect_us = 2 * SEC;
    _fails_in(&src, "view slow: postgres: connecting: no connection within connect_timeout (2s)",
              1.9, 4.0);
    /* the dsn's connect_timeout wins over the source's */
    snprintf(dsn, sizeof dsn, "host=127.0.0.1 port=%d dbname=x user=fsd connect_timeout=3",
             ntohs(addr.sin_port));
    _fails_in(&src, "no connection within connect_timeout (3s)", 2.9, 5.0);
    close(fd);
}

static void test_server_silent_fails_at_read_timeout(void **state) {
    (void)state;
    struct mat_source src = _query_source(SLOW_QUERY, "ts");
    src.timeouts.read_us = 500 * 1000;
    _fails_in(&src, "no answer from the server for 500ms (read_timeout); the read was abandoned",
              0.45, 2.5);
}

static void test_statement_timeout_is_the_servers(void **state) {
    (void)state;
    struct mat_source src = _query_source(SLOW_QUERY, "ts");
    src.timeouts.statement_us = 300 * 1000;
    _fails_in(&src, "canceling statement due to statement timeout (SQLSTATE 57014)", 0.25, 2.5);
    /* 0: the load's timeout, which the server then enforces too */
    src.timeouts.statement_us = 0;
    src.timeouts.load_us = 800 * 1000;
    src.timeouts.read_us = 0;
    _fails_in(&src, "", 0.75, 2.5);
}

static void test_load_timeout_bounds_the_whole_read(void **state) {
    (void)state;
    struct mat_source src = _query_source(SLOW_QUERY, "ts");
    src.dsn = g_server.dsn;
    src.timeouts.load_us = 700 * 1000;
    /* the server's statement_timeout would say so too: make the client's the first to fire */
    src.timeouts.statement_us = 60 * SEC;
    _fails_in(&src, "the load took longer than its load_timeout (700ms); the read was abandoned",
              0.65, 2.5);
}

/* A backend stopped mid-COPY still has its TCP acknowledged by the kernel: only the read
 * timeout notices. Its connection is closed; the server serves the next load as ever. */
static void test_frozen_backend_fails_at_read_timeout(void **state) {
    (void)state;
    _big_table();
    static const struct spec specs[] = {{"id", KEY_INT}, {"f", STORE_TYPE_DOUBLE}};
    struct mat_source src = _table_source("big", "ts");
    src.timeouts.read_us = 1 * SEC;
    struct killer k = {.freeze = true};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, _killer, &k), 0);
    while (!k.ready) {
        usleep(1000);
    }
    alarm(READ_DEADLINE_S);
    struct load l;
    int64_t started = clock_mono_us();
    _load(&l, _schema("big", 0, specs, 2), &src, INT64_MIN);
    int64_t failed_at = clock_mono_us();
    alarm(0);
    pthread_join(thread, NULL);
    if (k.backend > 0) {
        kill(k.backend, SIGCONT);
    }
    if (!k.killed) {
        fail_msg("%s (read rc %d after %.1f s, %llu rows: %s)", k.err, l.rc,
                 (double)(failed_at - started) / 1e6,
                 (unsigned long long)mat_sink_stats(l.sink)->rows_read, l.err);
    }
    print_message("    %s\n", l.err);
    assert_int_equal(l.rc, -1);
    assert_non_null(strstr(l.err, "view big: postgres: reading the COPY after "));
    assert_non_null(strstr(l.err, "no answer from the server for 1s (read_timeout)"));
    assert_true(mat_sink_stats(l.sink)->rows_read < KILL_ROWS);
    double after = (double)(failed_at - k.at_us) / 1e6;
    print_message("    failed %.2f s after the backend froze\n", after);
    assert_true(after >= 0.9 && after < 4.0);
    _unload(&l);
    _load_ok(&l, _schema("big", 0, specs, 2), &src, INT64_MIN);
    assert_int_equal(mat_sink_stats(l.sink)->rows_kept, KILL_ROWS);
    _unload(&l);
}

/* ---- the COPY stream in arbitrary pieces ---------------------------------------------- */

/* The binary COPY of `sql`, as the server sends it, concatenated. Caller frees. */
static uint8_t *_capture_copy(const char *sql, size_t *len) {
    PGconn *conn = PQconnectdb(g_server.dsn);
    assert_int_equal(PQstatus(conn), CONNECTION_OK);
    PGresult *res = PQexec(conn, sql);
    assert_int_equal(PQresultStatus(res), PGRES_COPY_OUT);
    PQclear(res);
    size_t cap = 1 << 16;
    uint8_t *all = malloc(cap);
    *len = 0;
    char *buf;
    int n;
    while ((n = PQgetCopyData(conn, &buf, 0)) > 0) {
        if (*len + (size_t)n > cap) {
            cap = 2 * (*len + (size_t)n);
            all = realloc(all, cap);
        }
        memcpy(all + *len, buf, (size_t)n);
        *len += (size_t)n;
        PQfreemem(buf);
    }
    assert_int_equal(n, -1);
    while ((res = PQgetResult(conn)) != NULL) {
        assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
        PQclear(res);
    }
    PQfinish(conn);
    return all;
}

static const struct spec PIECES[] = {{"id", KEY_INT},
                                     {"f", STORE_TYPE_DOUBLE},
                                     {"s", STORE_TYPE_STRING},
                                     {"l", STORE_TYPE_FLOAT_LIST}};

/* Feeds `data` in pieces of `piece` bytes to a reader set up like mat_pg_read's. */
static int _feed_pieces(struct load *l, const uint8_t *data, size_t len, size_t piece,
                        bool *trailer_seen) {
    memset(l, 0, sizeof *l);
    l->schema = _schema("pieces", 0, PIECES, 4);
    l->table = store_table_create(l->schema, &(struct store_table_options){.shards = 1}, l->err,
                                  sizeof l->err);
    l->sink = mat_sink_create(l->schema, l->table, clock_wall_us());
    struct mat_source src = _table_source("pieces", "ts");
    struct mat_pg_reader r = {.source = &src,
                              .schema = l->schema,
                              .sink = l->sink,
                              .err = l->err,
                              .err_len = sizeof l->err};
    assert_int_equal(mat_pg_plan(&r), 0);
    const Oid oids[] = {PG_TIMESTAMPTZ, PG_INT8, PG_FLOAT8, PG_TEXT, PG_FLOAT4_ARRAY};
    for (uint32_t i = 0; i < r.ncols; i++) {
        r.cols[i].oid = oids[i];
    }
    int rc = 0;
    for (size_t at = 0; at < len && rc == 0; at += piece) {
        rc = mat_pg_feed(&r, data + at, len - at < piece ? len - at : piece);
    }
    *trailer_seen = r.trailer_seen && r.stage_len == 0;
    mat_pg_reader_deinit(&r);
    return rc;
}

static void test_copy_stream_in_pieces(void **state) {
    (void)state;
    _sql("CREATE TABLE pieces AS SELECT i::int8 AS id, '2024-01-01+00'::timestamptz"
         "  + i * interval '1 s' AS ts, i / 7.0::float8 AS f, repeat('x', i % 50) AS s,"
         "  array_fill(i::real, ARRAY[i % 5]) AS l FROM generate_series(1, 300) i");
    size_t len;
    uint8_t *data =
        _capture_copy("COPY (SELECT ts, id, f, s, l FROM pieces) TO STDOUT (FORMAT binary)", &len);
    const size_t pieces[] = {1, 2, 3, 7, 19, 64, 1000, len};
    for (size_t p = 0; p < sizeof pieces / sizeof pieces[0]; p++) {
        struct load l;
        bool done;
        if (_feed_pieces(&l, data, len, pieces[p], &done) != 0) {
            fail_msg("pieces of %zu: %s", pieces[p], l.err);
        }
        assert_true(done);
        assert_int_equal(mat_sink_stats(l.sink)->rows_kept, 300);
        const struct store_row *r = _get_int(&l, 123);
        _assert_double_bits(_value(&l, r, "f").f64, 123 / 7.0);
        assert_int_equal(_value(&l, r, "s").var.bytes, 123 % 50);
        assert_int_equal(_value(&l, r, "l").var.bytes, (123 % 5) * sizeof(float));
        _unload(&l);
    }

    /* truncated: no end marker, so mat_pg_read would fail the load */
    struct load l;
    bool done;
    assert_int_equal(_feed_pieces(&l, data, len - 2, 5, &done), 0);
    assert_false(done);
    _unload(&l);

    /* damaged: a wrong signature, a wrong field count, bytes after the end */
    uint8_t *bad = malloc(len + 4);
    memcpy(bad, data, len);
    bad[0] = 'X';
    assert_int_equal(_feed_pieces(&l, bad, len, len, &done), -1);
    assert_non_null(strstr(l.err, "signature"));
    _unload(&l);
    memcpy(bad, data, len);
    bad[19 + 1] = 9; /* the first tuple's field count (after the 19-byte header) */
    assert_int_equal(_feed_pieces(&l, bad, len, 3, &done), -1);
    assert_non_null(strstr(l.err, "9 fields"));
    _unload(&l);
    memcpy(bad, data, len);
    memcpy(bad + len, "\0\0\0\0", 4);
    assert_int_equal(_feed_pieces(&l, bad, len + 4, 11, &done), -1);
    assert_non_null(strstr(l.err, "after the end"));
    _unload(&l);
    free(bad);
    free(data);
}

/* ---- main ------------------------------------------------------------------------------ */

static int _start_server(void **state) {
    (void)state;
    char err[4096];
    /* a zone far from UTC on the server and others on the client: a shift would show */
    static const char *const options[] = {"timezone=Asia/Kathmandu", NULL};
    if (pg_server_start(&g_server, options, err, sizeof err) != 0) {
        fprintf(stderr, "cannot start PostgreSQL: %s\n", err);
        return -1;
    }
    setenv("PGTZ", "America/St_Johns", 1);
    setenv("TZ", "Pacific/Chatham", 1);
    tzset();
    return 0;
}

static int _stop_server(void **state) {
    (void)state;
    pg_server_stop(&g_server);
    return 0;
}

int main(void) {
    store_rcu_thread_online();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type),
        cmocka_unit_test(test_more_list_types),
        cmocka_unit_test(test_numeric_nearest_double),
        cmocka_unit_test(test_latest_row_selection),
        cmocka_unit_test(test_query_source_composite_key),
        cmocka_unit_test(test_table_names_as_sql_reads_them),
        cmocka_unit_test(test_incremental_watermark),
        cmocka_unit_test(test_dsn_from_environment),
        cmocka_unit_test(test_planner_estimate),
        cmocka_unit_test(test_type_mismatch),
        cmocka_unit_test(test_missing_column),
        cmocka_unit_test(test_query_error),
        cmocka_unit_test(test_bad_values_name_column_and_row),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_password_never_in_errors),
        cmocka_unit_test(test_copy_stream_in_pieces),
        cmocka_unit_test(test_listener_that_never_answers_fails_at_connect_timeout),
        cmocka_unit_test(test_server_silent_fails_at_read_timeout),
        cmocka_unit_test(test_statement_timeout_is_the_servers),
        cmocka_unit_test(test_load_timeout_bounds_the_whole_read),
        cmocka_unit_test(test_frozen_backend_fails_at_read_timeout),
        cmocka_unit_test(test_backend_killed_mid_load),
        cmocka_unit_test(test_server_killed_mid_load),
    };
    int failed = cmocka_run_group_tests(tests, _start_server, _stop_server);
    store_rcu_barrier();
    store_rcu_thread_offline();
    return failed;
}
