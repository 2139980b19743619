/*
 * The DuckDB C library this build links can write and read Parquet.
 *
 * The materializer reads offline features from Parquet through DuckDB's C API, so this test
 * pins what it relies on: an in-memory database opens, COPY ... (FORMAT parquet) writes a
 * file, read_parquet() reads it back with the column types and values unchanged (int64
 * extremes, doubles bit for bit, short/long/empty/UTF-8 strings, timestamps before and after
 * the epoch, NULLs). Extension autoloading is switched off, so this fails if Parquet is not
 * compiled into libduckdb.so instead of quietly downloading the extension.
 */
#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <duckdb.h>

struct fixture {
    char dir[PATH_MAX];
    char parquet_path[PATH_MAX];
    duckdb_database db;
    duckdb_connection conn;
};

/* One row of the file, as the C side expects to read it back. */
struct expected_row {
    int64_t id;
    bool is_null; /* score, name and event_ts are all NULL */
    double score;
    const char *name;
    int64_t event_ts_us; /* microseconds since 1970-01-01 00:00:00, no time zone */
};

/* Longer than the 12 bytes DuckDB stores inline, and not ASCII. */
#define LONG_NAME "longer than twelve bytes: ünïcödé"

/*
 * Rows in read order (ORDER BY id). Timestamps were worked out independently with timegm():
 *   1969-07-20 20:17:40        -> -14182940 s
 *   2024-02-29 12:34:56.789012 -> 1709210096 s + 789012 us
 * The doubles only survive a bit-exact round trip: 1/3 and 0.1 have no exact binary form,
 * 4.9e-324 is the smallest subnormal, -0.0 differs from 0.0 only in its sign bit.
 */
static const struct expected_row EXPECTED[] = {
    {INT64_MIN, false, 1.0 / 3.0, "short", -14182940LL * 1000000},
    {7, false, -0.0, "", 0},
    {8, true, 0.0, NULL, 0},
    {42, false, 0.1, LONG_NAME, 1709210096LL * 1000000 + 789012},
    {INT64_MAX, false, 4.9e-324, "max", 1709210096LL * 1000000 + 789012},
};
#define N_EXPECTED (sizeof(EXPECTED) / sizeof(EXPECTED[0]))

/*
 * The same rows as SQL. Every value is a string cast in the outer SELECT so the column types
 * come from one place; "0.33333333333333331" has 17 significant digits, enough to name the
 * double nearest 1/3 exactly.
 */
static const char ROWS_SQL[] =
    "SELECT id::BIGINT AS id, score::DOUBLE AS score, name::VARCHAR AS name,"
    "       event_ts::TIMESTAMP AS event_ts"
    "  FROM (VALUES"
    "    ('9223372036854775807', '4.9e-324', 'max', '2024-02-29 12:34:56.789012'),"
    "    ('42', '0.1', '" LONG_NAME "', '2024-02-29 12:34:56.789012'),"
    "    ('7', '-0.0', '', '1970-01-01 00:00:00'),"
    "    ('-9223372036854775808', '0.33333333333333331', 'short', '1969-07-20 20:17:40'),"
    "    ('8', NULL, NULL, NULL)"
    "  ) AS v(id, score, name, event_ts)";

/* Runs one statement; on failure prints DuckDB's message and returns false. */
static bool _exec(duckdb_connection conn, const char *sql) {
    duckdb_result result;
    bool ok = duckdb_query(conn, sql, &result) == DuckDBSuccess;
    if (!ok) {
        print_error("duckdb: %s\n  in: %s\n", duckdb_result_error(&result), sql);
    }
    duckdb_destroy_result(&result);
    return ok;
}

/* Removes dir and the files DuckDB left in it (no subdirectories are created). */
static void _remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        char path[PATH_MAX];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                continue;
            }
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

static int _open_database(struct fixture *f) {
    duckdb_config config;
    if (duckdb_create_config(&config) != DuckDBSuccess) {
        return -1;
    }
    /* Parquet must be built in: never fetch or load an extension from outside. */
    bool ok = duckdb_set_config(config, "autoinstall_known_extensions", "false") == DuckDBSuccess &&
              duckdb_set_config(config, "autoload_known_extensions", "false") == DuckDBSuccess;
    char *err = NULL;
    if (ok && duckdb_open_ext(NULL, &f->db, config, &err) != DuckDBSuccess) {
        print_error("duckdb_open_ext: %s\n", err != NULL ? err : "(no message)");
        duckdb_free(err);
        ok = false;
    }
    duckdb_destroy_config(&config);
    if (!ok) {
        return -1;
    }
    if (duckdb_connect(f->db, &f->conn) != DuckDBSuccess) {
        duckdb_close(&f->db);
        return -1;
    }
    return 0;
}

static int _write_parquet(struct fixture *f) {
    char sql[4096];
    int n =
        snprintf(sql, sizeof(sql), "COPY (%s) TO '%s' (FORMAT parquet)", ROWS_SQL, f->parquet_path);
    if (n < 0 || (size_t)n >= sizeof(sql)) {
        return -1;
    }
    return _exec(f->conn, sql) ? 0 : -1;
}

static int group_setup(void **state) {
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return -1;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof(f->dir), "%s/fsd-test-duckdb.XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(f->dir) == NULL) {
        print_error("mkdtemp(%s) failed\n", f->dir);
        free(f);
        return -1;
    }
    int n = snprintf(f->parquet_path, sizeof(f->parquet_path), "%s/x.parquet", f->dir);
    if (n < 0 || (size_t)n >= sizeof(f->parquet_path) || _open_database(f) != 0) {
        _remove_dir(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return _write_parquet(f);
}

static int group_teardown(void **state) {
    struct fixture *f = *state;
    if (f == NULL) {
        return 0;
    }
    duckdb_disconnect(&f->conn);
    duckdb_close(&f->db);
    _remove_dir(f->dir);
    free(f);
    return 0;
}

static void test_library_reports_version(void **state) {
    (void)state;
    const char *version = duckdb_library_version();
    assert_non_null(version);
    assert_true(version[0] != '\0');
    print_message("libduckdb %s\n", version);
}

/* The file starts and ends with Parquet's magic "PAR1": DuckDB wrote Parquet, not CSV. */
static void test_copy_writes_parquet_file(void **state) {
    struct fixture *f = *state;
    FILE *fp = fopen(f->parquet_path, "rb");
    assert_non_null(fp);
    char head[4], tail[4];
    assert_int_equal(fread(head, 1, 4, fp), 4);
    assert_int_equal(fseek(fp, -4, SEEK_END), 0);
    assert_int_equal(fread(tail, 1, 4, fp), 4);
    fclose(fp);
    assert_memory_equal(head, "PAR1", 4);
    assert_memory_equal(tail, "PAR1", 4);
}

static void _assert_row(duckdb_data_chunk chunk, idx_t row, const struct expected_row *want) {
    duckdb_vector id_vec = duckdb_data_chunk_get_vector(chunk, 0);
    duckdb_vector score_vec = duckdb_data_chunk_get_vector(chunk, 1);
    duckdb_vector name_vec = duckdb_data_chunk_get_vector(chunk, 2);
    duckdb_vector ts_vec = duckdb_data_chunk_get_vector(chunk, 3);

    /* A NULL validity mask means every row in the vector is valid. */
    uint64_t *id_valid = duckdb_vector_get_validity(id_vec);
    assert_true(id_valid == NULL || duckdb_validity_row_is_valid(id_valid, row));
    assert_int_equal(((int64_t *)duckdb_vector_get_data(id_vec))[row], want->id);

    duckdb_vector others[] = {score_vec, name_vec, ts_vec};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        uint64_t *valid = duckdb_vector_get_validity(others[i]);
        bool is_valid = valid == NULL || duckdb_validity_row_is_valid(valid, row);
        assert_int_equal(is_valid, !want->is_null);
    }
    if (want->is_null) {
        return;
    }

    double score = ((double *)duckdb_vector_get_data(score_vec))[row];
    assert_memory_equal(&score, &want->score, sizeof(score));

    duckdb_string_t *name = &((duckdb_string_t *)duckdb_vector_get_data(name_vec))[row];
    uint32_t len = duckdb_string_t_length(*name);
    assert_int_equal(len, strlen(want->name));
    assert_memory_equal(duckdb_string_t_data(name), want->name, len);

    duckdb_timestamp ts = ((duckdb_timestamp *)duckdb_vector_get_data(ts_vec))[row];
    assert_int_equal(ts.micros, want->event_ts_us);
}

static void test_read_parquet_round_trips_values(void **state) {
    struct fixture *f = *state;
    char sql[PATH_MAX + 128];
    snprintf(sql, sizeof(sql),
             "SELECT id, score, name, event_ts FROM read_parquet('%s') ORDER BY id",
             f->parquet_path);

    duckdb_result result;
    if (duckdb_query(f->conn, sql, &result) != DuckDBSuccess) {
        print_error("duckdb: %s\n", duckdb_result_error(&result));
        duckdb_destroy_result(&result);
        fail();
    }

    /* Parquet kept the logical types, not just the bytes. */
    assert_int_equal(duckdb_column_count(&result), 4);
    assert_int_equal(duckdb_column_type(&result, 0), DUCKDB_TYPE_BIGINT);
    assert_int_equal(duckdb_column_type(&result, 1), DUCKDB_TYPE_DOUBLE);
    assert_int_equal(duckdb_column_type(&result, 2), DUCKDB_TYPE_VARCHAR);
    assert_int_equal(duckdb_column_type(&result, 3), DUCKDB_TYPE_TIMESTAMP);

    size_t rows_seen = 0;
    duckdb_data_chunk chunk;
    while ((chunk = duckdb_fetch_chunk(result)) != NULL) {
        idx_t n = duckdb_data_chunk_get_size(chunk);
        for (idx_t row = 0; row < n; row++) {
            assert_true(rows_seen < N_EXPECTED);
            _assert_row(chunk, row, &EXPECTED[rows_seen]);
            rows_seen++;
        }
        duckdb_destroy_data_chunk(&chunk);
    }
    duckdb_destroy_result(&result);
    assert_int_equal(rows_seen, N_EXPECTED);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_library_reports_version),
        cmocka_unit_test(test_copy_writes_parquet_file),
        cmocka_unit_test(test_read_parquet_round_trips_values),
    };
    return cmocka_run_group_tests_name("materializer_duckdb", tests, group_setup, group_teardown);
}
