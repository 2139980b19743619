#pragma once
/*
 * Helpers for the materializer tests: a temporary folder, DuckDB to write Parquet files into
 * it, a config parsed from YAML text, a catalog with its views, loads, and reads of what the
 * store serves. Included by one test program each (everything here is static).
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <duckdb.h>

#include "config/config.h"
#include "materializer/snapshot/snapshot.h"
#include "store/catalog.h"
#include "store/key.h"
#include "store/rcu.h"
#include "store/row.h"
#include "store/schema.h"
#include "store/table.h"

/* 2024-06-01T00:00:00Z: the tests' "now", so TTL and future checks never depend on the clock. */
#define T_NOW_US  (1717200000LL * 1000000)
#define T_HOUR_US (3600LL * 1000000)

struct mt {
    char dir[64]; /* short, so paths built on it always fit */
    duckdb_database db;
    duckdb_connection conn;
    struct fsd_config *config;
    struct store_catalog *catalog;
};

static struct mt mt;

/* Runs SQL in the test's DuckDB (printf-style); fails the test with DuckDB's message. */
__attribute__((format(printf, 1, 2), unused)) static void mt_sql(const char *fmt, ...) {
    char *sql;
    va_list ap;
    va_start(ap, fmt);
    assert_true(vasprintf(&sql, fmt, ap) >= 0);
    va_end(ap);
    duckdb_result result;
    if (duckdb_query(mt.conn, sql, &result) != DuckDBSuccess) {
        print_error("duckdb: %s\n  in: %s\n", duckdb_result_error(&result), sql);
        duckdb_destroy_result(&result);
        free(sql);
        fail();
    }
    duckdb_destroy_result(&result);
    free(sql);
}

/* `COPY (select) TO '<dir>/<file>' (FORMAT parquet<, options>)`, creating folders on the way. */
__attribute__((unused)) static void mt_write(const char *file, const char *options,
                                             const char *select) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", mt.dir, file);
    for (char *slash = strchr(path + strlen(mt.dir) + 1, '/'); slash != NULL;
         slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        mkdir(path, 0755);
        *slash = '/';
    }
    char quoted[2 * PATH_MAX];
    size_t n = 0;
    for (const char *c = path; *c; c++) {
        if (*c == '\'') {
            quoted[n++] = '\'';
        }
        quoted[n++] = *c;
    }
    quoted[n] = '\0';
    mt_sql("COPY (%s) TO '%s' (FORMAT parquet%s%s)", select, quoted, options ? ", " : "",
           options ? options : "");
}

__attribute__((unused)) static void _rm_rf(const char *dir) {
    DIR *d = opendir(dir);
    if (d == NULL) {
        unlink(dir);
        return;
    }
    struct dirent *e;
    char path[PATH_MAX];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            _rm_rf(path);
        } else {
            unlink(path);
        }
    }
    closedir(d);
    rmdir(dir);
}

__attribute__((unused)) static int mt_setup(void **state) {
    (void)state;
    memset(&mt, 0, sizeof mt);
    snprintf(mt.dir, sizeof mt.dir, "/tmp/fsd-mat-test-XXXXXX");
    if (mkdtemp(mt.dir) == NULL || duckdb_open(NULL, &mt.db) != DuckDBSuccess ||
        duckdb_connect(mt.db, &mt.conn) != DuckDBSuccess) {
        return -1;
    }
    return 0;
}

__attribute__((unused)) static void _drop_config(void) {
    if (mt.catalog != NULL) {
        store_rcu_barrier();
        store_catalog_destroy(mt.catalog);
        mt.catalog = NULL;
    }
    config_destroy(mt.config);
    mt.config = NULL;
}

__attribute__((unused)) static int mt_teardown(void **state) {
    (void)state;
    _drop_config();
    duckdb_disconnect(&mt.conn);
    duckdb_close(&mt.db);
    _rm_rf(mt.dir);
    return 0;
}

/*
 * Parses `yaml` (a config; "@DIR@" stands for the test folder) and builds a catalog of its
 * views, replacing the previous ones.
 */
__attribute__((unused)) static void mt_config(const char *yaml) {
    _drop_config();
    char text[16384];
    size_t o = 0;
    for (const char *p = yaml; *p && o + PATH_MAX < sizeof text;) {
        if (strncmp(p, "@DIR@", 5) == 0) {
            o += (size_t)snprintf(text + o, sizeof text - o, "%s", mt.dir);
            p += 5;
        } else {
            text[o++] = *p++;
        }
    }
    text[o] = '\0';
    static char err[CONFIG_ERR_LEN];
    if (config_parse("test.yaml", text, o, NULL, &mt.config, err, sizeof err) != 0) {
        print_error("config:\n%s\n", err);
        fail();
    }
    mt.catalog = store_catalog_create(4);
    assert_non_null(mt.catalog);
    for (size_t i = 0; i < mt.config->nviews; i++) {
        struct store_schema *schema = store_schema_clone(mt.config->views[i].schema);
        assert_int_equal(store_catalog_add_view(mt.catalog, schema, err, sizeof err), 0);
    }
}

__attribute__((unused)) static struct store_view *mt_view(const char *name) {
    struct store_view *view = store_catalog_find(mt.catalog, name);
    assert_non_null(view);
    return view;
}

/* One load of `view` at T_NOW_US. Returns mat_load_view's result code. */
__attribute__((unused)) static int mt_load_ex(const char *view, const char *path_override,
                                              bool incremental, int64_t watermark_us,
                                              struct mat_load_result *result) {
    struct mat_load_params params = {
        .shards = 4,
        .path_override = path_override,
        .incremental = incremental,
        .watermark_us = watermark_us,
        .now_us = T_NOW_US,
        .duckdb_threads = 2,
    };
    return mat_load_view(mt_view(view), &config_find_view(mt.config, view)->snapshot, &params,
                         result);
}

/* A load that must succeed. */
__attribute__((unused)) static void mt_load_ok(const char *view, struct mat_load_result *result) {
    int rc = mt_load_ex(view, NULL, false, INT64_MIN, result);
    if (rc != 0) {
        print_error("load failed: %s\n", result->error);
    }
    assert_int_equal(rc, 0);
}

/* A load that must fail with an error containing `needle`. */
__attribute__((unused)) static void mt_load_fails(const char *view, const char *path_override,
                                                  const char *needle) {
    struct mat_load_result result;
    int rc = mt_load_ex(view, path_override, false, INT64_MIN, &result);
    if (rc == 0 || strstr(result.error, needle) == NULL) {
        print_error("expected a failure with \"%s\", got rc=%d error=\"%s\"\n", needle, rc,
                    result.error);
    }
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(result.error, needle));
}

/* The served row for an int64 key (inside store_read_lock), or NULL. */
__attribute__((unused)) static const struct store_row *mt_row_i64(const char *view, int64_t id) {
    struct store_view *v = mt_view(view);
    const struct store_schema *schema = store_view_schema(v);
    struct store_key_part part = {.type = STORE_KEY_INT64, .i64 = id};
    static uint8_t buf[64];
    char err[128];
    int len = store_key_encode(schema, &part, buf, sizeof buf, err, sizeof err);
    assert_true(len > 0);
    struct store_key key = {buf, (uint32_t)len, store_key_hash(buf, (uint32_t)len)};
    return store_table_get(store_view_table(v), &key);
}

/* Feature `name` of a row: true when present (not null), value in *out. */
__attribute__((unused)) static bool mt_value(const char *view, const struct store_row *row,
                                             const char *name, struct store_value *out) {
    const struct store_schema *schema = store_view_schema(mt_view(view));
    int f = store_schema_feature_index(schema, name);
    assert_true(f >= 0);
    if (store_row_is_null(schema, row, (uint32_t)f)) {
        return false;
    }
    store_row_get(schema, row, (uint32_t)f, out);
    return true;
}

__attribute__((unused)) static uint64_t mt_rows(const char *view) {
    struct store_table_stats stats;
    store_read_lock();
    store_table_stats(store_view_table(mt_view(view)), &stats);
    store_read_unlock();
    return stats.rows;
}

__attribute__((unused)) static uint64_t mt_bits(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

__attribute__((unused)) static uint32_t mt_fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* A digest of every row and value the view serves (order-independent), to prove "unchanged". */
struct mt_digest {
    const struct store_schema *schema;
    uint64_t sum, rows;
};

__attribute__((unused)) static void _digest_row(const struct store_row *row, void *arg) {
    struct mt_digest *d = arg;
    size_t size = store_row_total_size(d->schema, row);
    d->sum += store_key_hash((const uint8_t *)row, (uint32_t)size) * 0x9e3779b97f4a7c15ull;
    d->rows++;
}

__attribute__((unused)) static struct mt_digest mt_digest(const char *view) {
    struct store_view *v = mt_view(view);
    store_read_lock();
    struct mt_digest d = {store_view_schema(v), 0, 0};
    store_table_foreach(store_view_table(v), _digest_row, &d);
    store_read_unlock();
    return d;
}
