/*
 * The Parquet source, on files DuckDB writes in each test: every type maps exactly (doubles and
 * floats bit for bit, timestamps in s/ms/µs/ns with and without time zone, decimals rounded
 * once), every codec and encoding reads the same values, hive folders, globs and directories
 * find their files, and each way a source can be wrong fails with a message that says where.
 */
#include "mat_test.h"

#include "common/clock.h"

#include <math.h>
#include <time.h>

static const char TYPES_YAML[] =
    "views:\n"
    "  - name: t\n"
    "    join_keys: [{ name: id, type: int64 }]\n"
    "    ttl: 0\n"
    "    source: { type: parquet, path: \"@DIR@/t\", event_timestamp_column: ts }\n"
    "    features:\n"
    "      - { name: i32, type: int32 }\n"
    "      - { name: i64, type: int64 }\n"
    "      - { name: f32, type: float }\n"
    "      - { name: f64, type: double }\n"
    "      - { name: b, type: bool }\n"
    "      - { name: s, type: string }\n"
    "      - { name: bs, type: bytes }\n"
    "      - { name: tsf, type: timestamp }\n"
    "      - { name: fl, type: float_list }\n"
    "      - { name: il, type: int64_list }\n"
    "      - { name: sl, type: string_list }\n";

/* Row 1: extremes; row 2: everyday values; row 3: every feature NULL. */
static const char TYPES_SELECT[] =
    "SELECT id::BIGINT AS id, ts::TIMESTAMP AS ts, i32::INTEGER AS i32, i64::BIGINT AS i64,"
    "       f32::FLOAT AS f32, f64::DOUBLE AS f64, b::BOOLEAN AS b, s::VARCHAR AS s,"
    "       bs::BLOB AS bs, tsf::TIMESTAMP AS tsf, fl::FLOAT[] AS fl, il::BIGINT[] AS il,"
    "       sl::VARCHAR[] AS sl FROM (VALUES"
    "  (1, '2024-05-01 00:00:00', '-2147483648', '-9223372036854775808', '1.4e-45', '4.9e-324',"
    "   true, 'longer than twelve bytes: ünïcödé', '\\x00\\xFFab', '1969-07-20 20:17:40',"
    "   ['1.5'::FLOAT, '-0.0'::FLOAT, '3.4028235e38'::FLOAT], [-9223372036854775808, 0, "
    "9223372036854775807],"
    "   ['a', '', 'ünï']),"
    "  (2, '2024-05-02 00:00:00', '2147483647', '9223372036854775807', '0.1', '0.1',"
    "   false, '', '', '2024-02-29 12:34:56.789012', [], [], []),"
    "  (3, '2024-05-03 00:00:00', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
    "   NULL)"
    ") v(id, ts, i32, i64, f32, f64, b, s, bs, tsf, fl, il, sl)";

static void _check_types(void) {
    struct store_value v;
    store_read_lock();
    const struct store_row *r1 = mt_row_i64("t", 1), *r2 = mt_row_i64("t", 2),
                           *r3 = mt_row_i64("t", 3);
    assert_non_null(r1);
    assert_non_null(r2);
    assert_non_null(r3);
    assert_int_equal(r1->event_ts_us, (1714521600LL) * 1000000);
    assert_true(mt_value("t", r1, "i32", &v));
    assert_int_equal(v.i32, INT32_MIN);
    assert_true(mt_value("t", r1, "i64", &v));
    assert_true(v.i64 == INT64_MIN);
    assert_true(mt_value("t", r1, "f32", &v));
    assert_int_equal(mt_fbits(v.f32), mt_fbits(strtof("1.4e-45", NULL)));
    assert_true(mt_value("t", r1, "f64", &v));
    assert_int_equal(mt_bits(v.f64), mt_bits(strtod("4.9e-324", NULL)));
    assert_true(mt_value("t", r1, "b", &v));
    assert_true(v.b);
    assert_true(mt_value("t", r1, "s", &v));
    const char *s = "longer than twelve bytes: ünïcödé";
    assert_int_equal(v.var.bytes, strlen(s));
    assert_memory_equal(v.var.data, s, strlen(s));
    assert_true(mt_value("t", r1, "bs", &v));
    assert_int_equal(v.var.bytes, 4);
    assert_memory_equal(v.var.data,
                        "\x00\xff"
                        "ab",
                        4);
    assert_true(mt_value("t", r1, "tsf", &v));
    assert_int_equal(v.ts_us, -14182940LL * 1000000);
    assert_true(mt_value("t", r1, "fl", &v));
    assert_int_equal(v.var.count, 3);
    const float *fl = v.var.data;
    assert_int_equal(mt_fbits(fl[0]), mt_fbits(1.5f));
    assert_int_equal(mt_fbits(fl[1]), mt_fbits(-0.0f));
    assert_int_equal(mt_fbits(fl[2]), mt_fbits(strtof("3.4028235e38", NULL)));
    assert_true(mt_value("t", r1, "il", &v));
    assert_int_equal(v.var.count, 3);
    const int64_t *il = v.var.data;
    assert_true(il[0] == INT64_MIN && il[1] == 0 && il[2] == INT64_MAX);
    assert_true(mt_value("t", r1, "sl", &v));
    assert_int_equal(v.var.count, 3);
    const char *data;
    uint32_t len;
    store_packed_list_at(&v, 0, &data, &len);
    assert_true(len == 1 && memcmp(data, "a", 1) == 0);
    store_packed_list_at(&v, 1, &data, &len);
    assert_int_equal(len, 0);
    store_packed_list_at(&v, 2, &data, &len);
    assert_true(len == strlen("ünï") && memcmp(data, "ünï", len) == 0);

    assert_true(mt_value("t", r2, "i32", &v));
    assert_int_equal(v.i32, INT32_MAX);
    assert_true(mt_value("t", r2, "f32", &v));
    assert_int_equal(mt_fbits(v.f32), mt_fbits(0.1f));
    assert_true(mt_value("t", r2, "f64", &v));
    assert_int_equal(mt_bits(v.f64), mt_bits(0.1));
    assert_true(mt_value("t", r2, "b", &v));
    assert_false(v.b);
    assert_true(mt_value("t", r2, "s", &v)); /* empty, but present */
    assert_int_equal(v.var.bytes, 0);
    assert_true(mt_value("t", r2, "tsf", &v));
    assert_int_equal(v.ts_us, 1709210096LL * 1000000 + 789012);
    assert_true(mt_value("t", r2, "fl", &v)); /* empty list, present */
    assert_int_equal(v.var.count, 0);
    assert_true(mt_value("t", r2, "sl", &v));
    assert_int_equal(v.var.count, 0);

    static const char *const names[] = {"i32", "i64", "f32", "f64", "b", "s",
                                        "bs",  "tsf", "fl",  "il",  "sl"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        assert_false(mt_value("t", r3, names[i], &v)); /* NULL in, null out */
    }
    store_read_unlock();
}

static void test_every_type_exact(void **state) {
    (void)state;
    mt_config(TYPES_YAML);
    mt_write("t/a.parquet", NULL, TYPES_SELECT);
    struct mat_load_result r;
    mt_load_ok("t", &r);
    assert_int_equal(r.rows_read, 3);
    assert_int_equal(r.table_rows, 3);
    assert_int_equal(r.version, 1);
    _check_types();
}

/* Every codec with dictionary, plain and V2 (delta) encodings reads back the same values. */
static void test_codecs_and_encodings(void **state) {
    (void)state;
    static const char *const codecs[] = {"snappy", "zstd", "gzip", "uncompressed"};
    static const char *const encodings[] = {"", ", DICTIONARY_SIZE_LIMIT 1",
                                            ", PARQUET_VERSION V2"};
    mt_config("views:\n"
              "  - name: c\n"
              "    join_keys: [{ name: id, type: int64 }]\n"
              "    ttl: 0\n"
              "    source: { type: parquet, path: \"@DIR@/c/x.parquet\", "
              "event_timestamp_column: ts }\n"
              "    features:\n"
              "      - { name: d, type: double }\n"
              "      - { name: s, type: string }\n"
              "      - { name: n, type: int64 }\n");
    for (size_t c = 0; c < 4; c++) {
        for (size_t e = 0; e < 3; e++) {
            char options[128];
            snprintf(options, sizeof options, "COMPRESSION %s%s", codecs[c], encodings[e]);
            mt_write("c/x.parquet", options,
                     "SELECT i AS id, TIMESTAMP '2024-05-01' + to_microseconds(i) AS ts,"
                     " i::DOUBLE * 0.1::DOUBLE AS d, 'v' || (i % 7)::VARCHAR AS s, i * i AS n"
                     " FROM range(5000) t(i)");
            if (e == 1) {
                /* The plain variant really is plain: the option did what the test relies on. */
                duckdb_result res;
                char sql[PATH_MAX + 128];
                snprintf(sql, sizeof sql,
                         "SELECT encodings FROM parquet_metadata('%s/c/x.parquet') "
                         "WHERE path_in_schema = 's'",
                         mt.dir);
                assert_int_equal(duckdb_query(mt.conn, sql, &res), DuckDBSuccess);
                char *enc = duckdb_value_varchar(&res, 0, 0);
                assert_string_equal(enc, "PLAIN");
                duckdb_free(enc);
                duckdb_destroy_result(&res);
            }
            struct mat_load_result r;
            mt_load_ok("c", &r);
            assert_int_equal(r.table_rows, 5000);
            store_read_lock();
            for (int64_t i = 0; i < 5000; i++) {
                const struct store_row *row = mt_row_i64("c", i);
                struct store_value v;
                assert_non_null(row);
                assert_int_equal(row->event_ts_us, 1714521600LL * 1000000 + i);
                assert_true(mt_value("c", row, "d", &v));
                assert_int_equal(mt_bits(v.f64), mt_bits((double)i * 0.1));
                assert_true(mt_value("c", row, "n", &v));
                assert_true(v.i64 == i * i);
                assert_true(mt_value("c", row, "s", &v));
                char s[8];
                int n = snprintf(s, sizeof s, "v%d", (int)(i % 7));
                assert_true(v.var.bytes == (uint32_t)n && memcmp(v.var.data, s, (size_t)n) == 0);
            }
            store_read_unlock();
        }
    }
}

/* Each timestamp unit lands on the exact microsecond; ns round down, also before 1970. */
static void test_timestamp_units(void **state) {
    (void)state;
    mt_config("views:\n"
              "  - name: u\n"
              "    join_keys: [{ name: id, type: int64 }]\n"
              "    ttl: 0\n"
              "    source: { type: parquet, path: \"@DIR@/u\", event_timestamp_column: ev,"
              " created_timestamp_column: cr }\n"
              "    features:\n"
              "      - { name: s, type: timestamp }\n"
              "      - { name: ms, type: timestamp }\n"
              "      - { name: us, type: timestamp }\n"
              "      - { name: ns, type: timestamp }\n"
              "      - { name: tz, type: timestamp }\n"
              "      - { name: d, type: timestamp }\n"
              "      - { name: ns_neg, type: timestamp }\n");
    mt_write("u/a.parquet", NULL,
             "SELECT 1::BIGINT AS id, TIMESTAMP_NS '1969-12-31 23:59:59.999999999' AS ev,"
             " TIMESTAMPTZ '2024-02-29 12:34:56.789123+02:00' AS cr,"
             " TIMESTAMP_S '2024-02-29 12:34:56' AS s,"
             " TIMESTAMP_MS '2024-02-29 12:34:56.789' AS ms,"
             " TIMESTAMP '2024-02-29 12:34:56.789123' AS us,"
             " TIMESTAMP_NS '2024-02-29 12:34:56.789123456' AS ns,"
             " TIMESTAMPTZ '2024-02-29 12:34:56.789123+02:00' AS tz,"
             " DATE '2024-02-29' AS d,"
             " TIMESTAMP_NS '1969-12-31 23:59:59.9999995' AS ns_neg");
    /* The file holds what the test means: ms, ns and a UTC-adjusted column. */
    duckdb_result res;
    char sql[PATH_MAX + 256];
    snprintf(sql, sizeof sql,
             "SELECT name, logical_type FROM parquet_schema('%s/u/a.parquet') "
             "WHERE name IN ('ms', 'ns', 'tz') ORDER BY name",
             mt.dir);
    assert_int_equal(duckdb_query(mt.conn, sql, &res), DuckDBSuccess);
    char *ms = duckdb_value_varchar(&res, 1, 0), *ns = duckdb_value_varchar(&res, 1, 1),
         *tz = duckdb_value_varchar(&res, 1, 2);
    assert_non_null(strstr(ms, "MILLIS=MilliSeconds()"));
    assert_non_null(strstr(ns, "NANOS=NanoSeconds()"));
    assert_non_null(strstr(tz, "isAdjustedToUTC=1"));
    duckdb_free(ms);
    duckdb_free(ns);
    duckdb_free(tz);
    duckdb_destroy_result(&res);

    struct mat_load_result r;
    mt_load_ok("u", &r);
    const int64_t second = 1709210096LL * 1000000; /* 2024-02-29 12:34:56 UTC */
    store_read_lock();
    const struct store_row *row = mt_row_i64("u", 1);
    assert_non_null(row);
    assert_int_equal(row->event_ts_us, -1); /* floor, not truncation toward zero */
    assert_int_equal(store_row_created_us(row), second - 2 * T_HOUR_US + 789123);
    struct store_value v;
    assert_true(mt_value("u", row, "s", &v));
    assert_int_equal(v.ts_us, second);
    assert_true(mt_value("u", row, "ms", &v));
    assert_int_equal(v.ts_us, second + 789000);
    assert_true(mt_value("u", row, "us", &v));
    assert_int_equal(v.ts_us, second + 789123);
    assert_true(mt_value("u", row, "ns", &v));
    assert_int_equal(v.ts_us, second + 789123);
    assert_true(mt_value("u", row, "tz", &v));
    assert_int_equal(v.ts_us, second - 2 * T_HOUR_US + 789123); /* +02:00 is 2 hours earlier */
    assert_true(mt_value("u", row, "d", &v));
    assert_int_equal(v.ts_us, 1709164800LL * 1000000);
    assert_true(mt_value("u", row, "ns_neg", &v));
    assert_int_equal(v.ts_us, -1);
    store_read_unlock();
}

/* Decimals of every storage width become the nearest double (and float), rounded once. */
static void test_decimals(void **state) {
    (void)state;
    mt_config("views:\n"
              "  - name: d\n"
              "    join_keys: [{ name: id, type: int64 }]\n"
              "    ttl: 0\n"
              "    source: { type: parquet, path: \"@DIR@/d\", event_timestamp_column: ts }\n"
              "    features:\n"
              "      - { name: d4, type: double }\n"
              "      - { name: d9, type: double }\n"
              "      - { name: d18, type: double }\n"
              "      - { name: d38, type: double }\n"
              "      - { name: big, type: double }\n"
              "      - { name: f9, type: float }\n");
    static const char *const text[] = {"12.34",
                                       "-123456.789",
                                       "123456789012.345678",
                                       "1234567890123456789012345678.1234567891",
                                       "9007199254740993",
                                       "-123456.789"};
    char select[2048];
    snprintf(select, sizeof select,
             "SELECT 1::BIGINT AS id, TIMESTAMP '2024-05-01' AS ts,"
             " '%s'::DECIMAL(4,2) AS d4, '%s'::DECIMAL(9,3) AS d9, '%s'::DECIMAL(18,6) AS d18,"
             " '%s'::DECIMAL(38,10) AS d38, '%s'::DECIMAL(18,0) AS big, '%s'::DECIMAL(9,3) AS f9",
             text[0], text[1], text[2], text[3], text[4], text[5]);
    mt_write("d/a.parquet", NULL, select);
    struct mat_load_result r;
    mt_load_ok("d", &r);
    static const char *const names[] = {"d4", "d9", "d18", "d38", "big"};
    store_read_lock();
    const struct store_row *row = mt_row_i64("d", 1);
    assert_non_null(row);
    struct store_value v;
    for (int i = 0; i < 5; i++) {
        assert_true(mt_value("d", row, names[i], &v));
        /* strtod rounds the decimal digits correctly: the definition of "exact" here. */
        if (mt_bits(v.f64) != mt_bits(strtod(text[i], NULL))) {
            print_error("%s: got %.17g, want %s\n", names[i], v.f64, text[i]);
        }
        assert_int_equal(mt_bits(v.f64), mt_bits(strtod(text[i], NULL)));
    }
    assert_true(mt_value("d", row, "f9", &v));
    assert_int_equal(mt_fbits(v.f32), mt_fbits(strtof(text[5], NULL)));
    store_read_unlock();
}

static const char HIVE_YAML[] = "views:\n"
                                "  - name: h\n"
                                "    join_keys: [{ name: id, type: int64 }]\n"
                                "    ttl: 0\n"
                                "    source: { type: parquet, path: \"@DIR@/h\", "
                                "event_timestamp_column: ts }\n"
                                "    features:\n"
                                "      - { name: region, type: string }\n"
                                "      - { name: score, type: double }\n";

/* Hive folders give their column, a directory is read recursively, a glob picks files. */
static void test_hive_directory_and_glob(void **state) {
    (void)state;
    mt_config(HIVE_YAML);
    mt_write("h/region=eu/day=1/a.parquet", NULL,
             "SELECT 1::BIGINT AS id, TIMESTAMP '2024-05-01' AS ts, 1.5 AS score");
    mt_write("h/region=eu/day=2/b.parquet", NULL,
             "SELECT 2::BIGINT AS id, TIMESTAMP '2024-05-01' AS ts, 2.5 AS score");
    mt_write("h/region=us/day=1/c.parquet", NULL,
             "SELECT 3::BIGINT AS id, TIMESTAMP '2024-05-01' AS ts, 3.5 AS score");
    struct mat_load_result r;
    mt_load_ok("h", &r); /* the directory */
    assert_int_equal(r.table_rows, 3);
    store_read_lock();
    struct store_value v;
    const struct store_row *row = mt_row_i64("h", 3);
    assert_non_null(row);
    assert_true(mt_value("h", row, "region", &v));
    assert_true(v.var.bytes == 2 && memcmp(v.var.data, "us", 2) == 0);
    assert_true(mt_value("h", row, "score", &v));
    assert_true(v.f64 == 3.5);
    store_read_unlock();

    char glob[PATH_MAX];
    snprintf(glob, sizeof glob, "%s/h/region=eu/*/*.parquet", mt.dir);
    assert_int_equal(mt_load_ex("h", glob, false, INT64_MIN, &r), 0);
    assert_int_equal(r.table_rows, 2);
    assert_int_equal(r.version, 2);
    assert_non_null(strstr(r.source, "region=eu/*/*.parquet"));
    store_read_lock();
    assert_null(mt_row_i64("h", 3));
    assert_non_null(mt_row_i64("h", 1));
    store_read_unlock();

    char file[PATH_MAX];
    snprintf(file, sizeof file, "%s/h/region=us/day=1/c.parquet", mt.dir);
    assert_int_equal(mt_load_ex("h", file, false, INT64_MIN, &r), 0);
    assert_int_equal(r.table_rows, 1);
}

static void test_missing_path_and_no_files(void **state) {
    (void)state;
    mt_config(HIVE_YAML);
    mt_load_fails("h", NULL, "view h: ");
    mt_load_fails("h", NULL, "/h: No such file or directory");
    char glob[PATH_MAX];
    snprintf(glob, sizeof glob, "%s/nothing-*.parquet", mt.dir);
    mt_load_fails("h", glob, "no Parquet files match");
    mkdir(glob, 0755); /* an empty directory matches no files either */
    snprintf(glob, sizeof glob, "%s/empty", mt.dir);
    mkdir(glob, 0755);
    mt_load_fails("h", glob, "view h: no Parquet files match");
    assert_int_equal(store_view_version(mt_view("h")), 0);
}

static void test_wrong_and_missing_columns(void **state) {
    (void)state;
    mt_config(HIVE_YAML);
    mt_write("h/a.parquet", NULL,
             "SELECT 1::BIGINT AS id, TIMESTAMP '2024-05-01' AS ts, 'x' AS region,"
             " '0.5' AS score");
    char expected[PATH_MAX + 128];
    snprintf(expected, sizeof expected,
             "view h: column score is VARCHAR in %s/h; the view wants double", mt.dir);
    mt_load_fails("h", NULL, expected);

    mt_write("h/a.parquet", NULL,
             "SELECT 1::BIGINT AS id, TIMESTAMP '2024-05-01' AS ts, 'x' AS region");
    mt_load_fails("h", NULL, "view h: column score is missing in");

    mt_write("h/a.parquet", NULL,
             "SELECT 'k' AS id, TIMESTAMP '2024-05-01' AS ts, 'x' AS region, 1.0 AS score");
    mt_load_fails("h", NULL, "column id is VARCHAR");

    mt_write("h/a.parquet", NULL, "SELECT 1::BIGINT AS id, 7 AS ts, 'x' AS region, 1.0 AS score");
    mt_load_fails("h", NULL, "column ts is INTEGER");
    mt_write("h/a.parquet", NULL,
             "SELECT 1::BIGINT AS id, TIMESTAMP '2024-05-01' AS ts, 'x' AS region,"
             " [1.0]::DOUBLE[] AS score");
    mt_load_fails("h", NULL, "column score is DOUBLE[]");
}

/*
 * Several files are read as the union of their columns: one file without a needed column, or
 * with it as another type, would read as nulls or casts. Each such load fails, naming the
 * file and the column, and the live snapshot stays as it was.
 */
static void test_one_file_missing_or_mistyping_a_column(void **state) {
    (void)state;
    mt_config(HIVE_YAML);
    mt_write("h/a.parquet", NULL,
             "SELECT 1::BIGINT AS id, TIMESTAMP '2024-05-01' AS ts, 'x' AS region,"
             " 0.5::DOUBLE AS score");
    mt_write("h/b.parquet", NULL,
             "SELECT 2::BIGINT AS id, TIMESTAMP '2024-05-01' AS ts, 'y' AS region,"
             " 1.5::DOUBLE AS score");
    struct mat_load_result r;
    mt_load_ok("h", &r);
    assert_int_equal(r.table_rows, 2);

    char expected[PATH_MAX + 256];
    /* missing: DuckDB alone would fill it with nulls */
    mt_write("h/b.parquet", NULL,
             "SELECT 2::BIGINT AS id, TIMESTAMP '2024-05-01' AS ts, 'y' AS region");
    snprintf(expected, sizeof expected,
             "view h: file %s/h/b.parquet has no column score (other "
             "files of %s/h have it; it would read as null in every row of this file)",
             mt.dir, mt.dir);
    mt_load_fails("h", NULL, expected);
    /* a type the union casts silently (BIGINT and DOUBLE make DOUBLE), which alone is refused */
    mt_write("h/b.parquet", NULL,
             "SELECT 2::BIGINT AS id, TIMESTAMP '2024-05-01' AS ts, 'y' AS region,"
             " 9007199254740993::BIGINT AS score");
    snprintf(expected, sizeof expected,
             "view h: column score is BIGINT in file %s/h/b.parquet; the view wants double",
             mt.dir);
    mt_load_fails("h", NULL, expected);
    /* a type that makes the union's wrong: the file to blame is named, not only the path */
    mt_write("h/b.parquet", NULL,
             "SELECT 2::BIGINT AS id, TIMESTAMP '2024-05-01' AS ts, 'y' AS region,"
             " '1.5' AS score");
    snprintf(expected, sizeof expected,
             "view h: column score is VARCHAR in file %s/h/b.parquet; the view wants double",
             mt.dir);
    mt_load_fails("h", NULL, expected);
    /* the event time and the keys too */
    mt_write("h/b.parquet", NULL, "SELECT 2::BIGINT AS id, 'y' AS region, 1.5::DOUBLE AS score");
    mt_load_fails("h", NULL, "/h/b.parquet has no column ts");
    mt_write("h/b.parquet", NULL,
             "SELECT 2::INTEGER AS id, TIMESTAMP '2024-05-01' AS ts, 'y' AS region,"
             " 1.5::FLOAT AS score");
    mt_load_ok("h", &r); /* narrower types that map exactly are fine */
    assert_int_equal(r.version, 2);
    mt_write("h/b.parquet", NULL,
             "SELECT 'two' AS id, TIMESTAMP '2024-05-01' AS ts, 'y' AS region,"
             " 1.5::DOUBLE AS score");
    mt_load_fails("h", NULL, "view h: column id is VARCHAR in file ");
    assert_int_equal(store_view_version(mt_view("h")), 2);
    assert_int_equal(mt_rows("h"), 2);

    /* a hive key comes from each file's path: absent from the files themselves, it is fine */
    mt_write("h2/region=eu/a.parquet", NULL,
             "SELECT 1::BIGINT AS id, TIMESTAMP '2024-05-01' AS ts, 0.5::DOUBLE AS score");
    mt_write("h2/region=us/b.parquet", NULL,
             "SELECT 2::BIGINT AS id, TIMESTAMP '2024-05-01' AS ts, 1.5::DOUBLE AS score");
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/h2", mt.dir);
    assert_int_equal(mt_load_ex("h", dir, false, INT64_MIN, &r), 0);
    assert_int_equal(r.table_rows, 2);
    /* (a file beside the partitions is DuckDB's own error, which names both files) */
    mt_write("h2/b.parquet", NULL,
             "SELECT 3::BIGINT AS id, TIMESTAMP '2024-05-01' AS ts, 1.5::DOUBLE AS score");
    mt_load_fails("h", dir, "Hive partition mismatch between file");
}

/* A read that takes longer than its load_timeout is interrupted (DuckDB's interrupt, from
 * the watchdog) and fails soon after, whatever step it was in. */
static void test_load_timeout_interrupts_the_read(void **state) {
    (void)state;
    mt_config("views:\n"
              "  - name: big\n"
              "    join_keys: [{ name: id, type: int64 }]\n"
              "    ttl: 0\n"
              "    source: { type: parquet, path: \"@DIR@/big.parquet\", "
              "event_timestamp_column: ts, load_timeout: 200ms }\n"
              "    features:\n"
              "      - { name: x, type: double }\n");
    mt_write("big.parquet", NULL,
             "SELECT i AS id, TIMESTAMP '2024-05-01' + INTERVAL (i) MICROSECOND AS ts,"
             " i::DOUBLE AS x FROM range(6000000) t(i)");
    struct mat_load_result r;
    int64_t start = clock_mono_us();
    assert_int_not_equal(mt_load_ex("big", NULL, false, INT64_MIN, &r), 0);
    double took = (double)(clock_mono_us() - start) / 1e6;
    print_message("    failed after %.2f s: %s\n", took, r.error);
    assert_non_null(strstr(r.error, "view big: "));
    assert_non_null(strstr(r.error, "the read took longer than its load_timeout (200ms) and was "
                                    "interrupted after "));
    assert_true(took < 1.5);
    assert_int_equal(r.outcome, MAT_SOURCE_FAILED);
    assert_int_equal(store_view_version(mt_view("big")), 0);
}

/* A value that does not fit its view type fails the load, naming column, file and row. */
static void test_value_out_of_range(void **state) {
    (void)state;
    mt_config("views:\n"
              "  - name: r\n"
              "    join_keys: [{ name: id, type: int64 }]\n"
              "    ttl: 0\n"
              "    source: { type: parquet, path: \"@DIR@/r\", event_timestamp_column: ts }\n"
              "    features:\n"
              "      - { name: small, type: int32 }\n"
              "      - { name: fl, type: float_list }\n");
    mt_write("r/a.parquet", NULL,
             "SELECT i::BIGINT AS id, TIMESTAMP '2024-05-01' AS ts,"
             " CASE WHEN i = 2 THEN 3000000000 ELSE i END::BIGINT AS small, [1.0]::DOUBLE[] AS fl"
             " FROM range(4) t(i)");
    char expected[PATH_MAX + 128];
    snprintf(expected, sizeof expected,
             "view r: column small, file %s/r/a.parquet, row 2: 3000000000 does not fit int32",
             mt.dir);
    mt_load_fails("r", NULL, expected);

    mt_write("r/a.parquet", NULL,
             "SELECT 1::BIGINT AS id, TIMESTAMP '2024-05-01' AS ts, 1::BIGINT AS small,"
             " [1.0, NULL]::DOUBLE[] AS fl");
    mt_load_fails("r", NULL, "column fl, file");
    mt_load_fails("r", NULL, "a list element is null");

    mt_write("r/a.parquet", NULL,
             "SELECT 1::BIGINT AS id, NULL::TIMESTAMP AS ts, 1::BIGINT AS small,"
             " [1.0]::DOUBLE[] AS fl");
    mt_load_fails("r", NULL, "the event time is null");

    /* DOUBLE[] -> float_list rounds each element to the nearest float. */
    mt_write("r/a.parquet", NULL,
             "SELECT 1::BIGINT AS id, TIMESTAMP '2024-05-01' AS ts, 1::BIGINT AS small,"
             " [0.1, -2.5]::DOUBLE[] AS fl");
    struct mat_load_result r;
    mt_load_ok("r", &r);
    store_read_lock();
    struct store_value v;
    assert_true(mt_value("r", mt_row_i64("r", 1), "fl", &v));
    const float *fl = v.var.data;
    assert_int_equal(mt_fbits(fl[0]), mt_fbits((float)0.1));
    assert_int_equal(mt_fbits(fl[1]), mt_fbits(-2.5f));
    store_read_unlock();
}

/*
 * The list types beside float, int64 and string lists, each from the child type it stores
 * (copied as it is) and from others its element type takes (converted element by element).
 */
static void test_more_list_types(void **state) {
    (void)state;
    mt_config("views:\n"
              "  - name: l\n"
              "    join_keys: [{ name: id, type: int64 }]\n"
              "    ttl: 0\n"
              "    source: { type: parquet, path: \"@DIR@/l\", event_timestamp_column: ts }\n"
              "    features:\n"
              "      - { name: i32, type: int32_list }\n"
              "      - { name: i32_small, type: int32_list }\n"
              "      - { name: d, type: double_list }\n"
              "      - { name: d_float, type: double_list }\n"
              "      - { name: d_decimal, type: double_list }\n"
              "      - { name: b, type: bool_list }\n"
              "      - { name: bs, type: bytes_list }\n"
              "      - { name: t, type: timestamp_list }\n"
              "      - { name: t_ns, type: timestamp_list }\n"
              "      - { name: t_date, type: timestamp_list }\n");
    mt_write(
        "l/a.parquet", NULL,
        "SELECT 1::BIGINT AS id, TIMESTAMP '2024-05-01' AS ts,"
        " [-2147483648, 0, 2147483647]::INTEGER[] AS i32, [-32768, 7]::SMALLINT[] AS i32_small,"
        " ['0.1'::DOUBLE, '-0.0'::DOUBLE, 1e300] AS d, [0.1::FLOAT] AS d_float,"
        " [1.25::DECIMAL(10, 2), -3] AS d_decimal, [true, false, true] AS b,"
        " ['\\x00\\xFF'::BLOB, ''::BLOB, 'longer than twelve bytes'::BLOB] AS bs,"
        " [TIMESTAMP '1969-12-31 23:59:59.5', TIMESTAMP '2024-01-01'] AS t,"
        " [TIMESTAMP_NS '1970-01-01 00:00:00.000001999'] AS t_ns,"
        " [DATE '1970-01-02'] AS t_date"
        " UNION ALL SELECT 2, TIMESTAMP '2024-05-01', [], [], [], [], [], [], [], [], [], []");
    struct mat_load_result r;
    mt_load_ok("l", &r);
    store_read_lock();
    struct store_value v;
    const struct store_row *r1 = mt_row_i64("l", 1), *r2 = mt_row_i64("l", 2);
    assert_true(mt_value("l", r1, "i32", &v));
    assert_int_equal(v.var.count, 3);
    assert_memory_equal(v.var.data, ((int32_t[]){INT32_MIN, 0, INT32_MAX}), 12);
    assert_true(mt_value("l", r1, "i32_small", &v));
    assert_memory_equal(v.var.data, ((int32_t[]){-32768, 7}), 8);
    assert_true(mt_value("l", r1, "d", &v));
    assert_memory_equal(v.var.data, ((double[]){0.1, -0.0, 1e300}), 24);
    assert_true(mt_value("l", r1, "d_float", &v));
    assert_memory_equal(v.var.data, ((double[]){(double)0.1f}), 8);
    assert_true(mt_value("l", r1, "d_decimal", &v));
    assert_memory_equal(v.var.data, ((double[]){1.25, -3}), 16);
    assert_true(mt_value("l", r1, "b", &v));
    assert_int_equal(v.var.count, 3);
    assert_memory_equal(v.var.data, "\1\0\1", 3);
    assert_true(mt_value("l", r1, "bs", &v));
    assert_int_equal(v.var.count, 3);
    const char *data;
    uint32_t len;
    store_packed_list_at(&v, 0, &data, &len);
    assert_true(len == 2 && memcmp(data, "\x00\xff", 2) == 0);
    store_packed_list_at(&v, 1, &data, &len);
    assert_int_equal(len, 0);
    store_packed_list_at(&v, 2, &data, &len);
    assert_true(len == 24 && memcmp(data, "longer than twelve bytes", 24) == 0);
    assert_true(mt_value("l", r1, "t", &v));
    assert_memory_equal(v.var.data, ((int64_t[]){-500000, 1704067200LL * 1000000}), 16);
    assert_true(mt_value("l", r1, "t_ns", &v));
    assert_memory_equal(v.var.data, ((int64_t[]){1}), 8); /* rounded down to the µs */
    assert_true(mt_value("l", r1, "t_date", &v));
    assert_memory_equal(v.var.data, ((int64_t[]){86400LL * 1000000}), 8);
    static const char *const names[] = {"i32", "i32_small", "d", "d_float", "d_decimal",
                                        "b",   "bs",        "t", "t_ns",    "t_date"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        assert_true(mt_value("l", r2, names[i], &v)); /* empty, present */
        assert_int_equal(v.var.count, 0);
    }
    store_read_unlock();

    /* an element that does not fit its element type fails the load, naming the element */
    mt_write(
        "l/a.parquet", NULL,
        "SELECT 1::BIGINT AS id, TIMESTAMP '2024-05-01' AS ts, [1, 3000000000]::BIGINT[] AS i32,"
        " []::SMALLINT[] AS i32_small, []::DOUBLE[] AS d, []::FLOAT[] AS d_float,"
        " []::DOUBLE[] AS d_decimal, []::BOOLEAN[] AS b, []::BLOB[] AS bs,"
        " []::TIMESTAMP[] AS t, []::TIMESTAMP[] AS t_ns, []::DATE[] AS t_date");
    mt_load_fails("l", NULL, "column i32, file");
    mt_load_fails("l", NULL, "list element 1: 3000000000 does not fit int32");
    /* a child type the element type does not take is refused up front */
    mt_write("l/a.parquet", NULL,
             "SELECT 1::BIGINT AS id, TIMESTAMP '2024-05-01' AS ts, ['x'] AS i32,"
             " []::SMALLINT[] AS i32_small, []::DOUBLE[] AS d, []::FLOAT[] AS d_float,"
             " []::DOUBLE[] AS d_decimal, []::BOOLEAN[] AS b, []::BLOB[] AS bs,"
             " []::TIMESTAMP[] AS t, []::TIMESTAMP[] AS t_ns, []::DATE[] AS t_date");
    mt_load_fails("l", NULL, "column i32 is VARCHAR[]");
    mt_load_fails("l", NULL, "the view wants int32_list");
}

/* A DOUBLE element beyond float range is refused, not stored as infinity. */
static void test_float_list_from_doubles_out_of_range(void **state) {
    (void)state;
    mt_config("views:\n"
              "  - name: r\n"
              "    join_keys: [{ name: id, type: int64 }]\n"
              "    ttl: 0\n"
              "    source: { type: parquet, path: \"@DIR@/r\", event_timestamp_column: ts }\n"
              "    features:\n"
              "      - { name: fl, type: float_list }\n");
    mt_write("r/a.parquet", NULL,
             "SELECT 1::BIGINT AS id, TIMESTAMP '2024-05-01' AS ts, [1.0, 1e300]::DOUBLE[] AS fl");
    mt_load_fails("r", NULL, "list element 1: 1e+300 is beyond float range");
}

/* Config text reaches SQL quoted: a path with a quote is a path, not SQL. */
static void test_quoting(void **state) {
    (void)state;
    mt_config(HIVE_YAML);
    mt_write("h/it's.parquet", NULL,
             "SELECT 1::BIGINT AS id, TIMESTAMP '2024-05-01' AS ts, 'x' AS region, 1.0 AS score");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/h/it's.parquet", mt.dir);
    struct mat_load_result r;
    assert_int_equal(mt_load_ex("h", path, false, INT64_MIN, &r), 0);
    assert_int_equal(r.table_rows, 1);
    snprintf(path, sizeof path, "%s/h/x'); DROP TABLE y; --.parquet", mt.dir);
    mt_load_fails("h", path, "No such file or directory");
}

int main(void) {
    store_rcu_thread_online();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_type_exact, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_codecs_and_encodings, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_timestamp_units, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_decimals, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_hive_directory_and_glob, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_missing_path_and_no_files, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_and_missing_columns, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_one_file_missing_or_mistyping_a_column, mt_setup,
                                        mt_teardown),
        cmocka_unit_test_setup_teardown(test_load_timeout_interrupts_the_read, mt_setup,
                                        mt_teardown),
        cmocka_unit_test_setup_teardown(test_more_list_types, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_float_list_from_doubles_out_of_range, mt_setup,
                                        mt_teardown),
        cmocka_unit_test_setup_teardown(test_value_out_of_range, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_quoting, mt_setup, mt_teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    store_rcu_thread_offline();
    return failed;
}
