/*
 * materialize_bench: loads a Parquet snapshot of the benchmark view (loadtest/bench_view.yaml:
 * N rows x 10 features, 8 double, 1 int64, 1 string) through the materializer's loader (DuckDB
 * -> sink -> new table -> contract -> swap) several times and prints the median load rate and
 * peak memory.
 *
 *   build/bin/materialize_bench                      # 10M rows, 3 runs
 *   build/bin/materialize_bench --rows 1000000 --runs 5
 *   build/bin/materialize_bench --rows 1000000 --write-only   # prints the file's path
 *
 * The file is written once with DuckDB and cached in /tmp: fsd-materialize-bench-<hash>-<rows>/,
 * the hash of its columns and their values, so a file of other columns is never read. Its
 * columns are the view's join key and features, and the event time `ev`. --write-only makes
 * sure it exists and prints its path, for benchmarks that load it into a running fsd
 * (loadtest/swap_latency_bench.sh, push_commit_bench.sh). It is written under a temporary name
 * and renamed, so a benchmark started meanwhile never reads half a file.
 * Memory: before each run the retired tables are freed and the allocator purged; the peak is
 * the process's high-water mark (VmHWM, reset through /proc/self/clear_refs) during the load
 * and swap, minus the RSS the process had before any table existed, divided by the final
 * table's own accounting (store_table_stats memory_bytes). The base is taken after a first
 * small read through DuckDB, so its code pages count in the base, not in the load. From the second
 * run on the old snapshot is alive during the whole build, as in production, so 2.0 is the floor.
 */
#include <duckdb.h>
#include <getopt.h>
#include <jemalloc/jemalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_view.h"
#include "config/config.h"
#include "materializer/snapshot/snapshot.h"
#include "store/catalog.h"
#include "store/rcu.h"
#include "store/schema.h"
#include "store/table.h"

#define EVENT_TIME "ev" /* the file's event-time column */

static int _cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double _median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, _cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* A field of /proc/self/status in bytes ("VmRSS", "VmHWM"). */
static double _status_bytes(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = 0;
    size_t len = strlen(field);
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, field, len) == 0 && line[len] == ':') {
            kb = atof(line + len + 1);
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return kb * 1024;
}

static void _reset_hwm(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f != NULL) {
        fputs("5", f);
        fclose(f);
    }
}

static void _purge(void) {
    store_rcu_barrier(); /* retired tables freed */
    char name[64];
    snprintf(name, sizeof name, "arena.%u.purge", (unsigned)MALLCTL_ARENAS_ALL);
    mallctl(name, NULL, NULL, NULL, 0);
}

/*
 * The file's columns, from the view's schema so they are the template's whatever it lists:
 * the key (the row number), the event time `ev`, and a value for each feature. The doubles
 * differ per row and in range; push_commit_bench.sh's contract checks the 4th ([0, 143)) and
 * the 7th (a square root: [0, 10^4) up to 10^8 rows). The label is 10 to 16 bytes. Returns
 * the select list, or -1 for a type it has no values for.
 */
static int _select_list(const struct store_schema *schema, char *out, size_t out_len) {
    static const char *const doubles[] = {
        "i * 0.5",  "i * 0.25", "i / 3.0",         "hash(i) % 1000 / 7.0",
        "-i * 1.5", "i * 1e-3", "sqrt(i::DOUBLE)", "ln(i + 1.0)",
    };
    if (schema->nkeys != 1 || schema->keys[0].type != STORE_KEY_INT64) {
        fprintf(stderr, "materialize_bench: the view's key is not one int64\n");
        return -1;
    }
    int n = snprintf(out, out_len,
                     "i AS \"%s\", TIMESTAMP '2024-05-01' + to_microseconds(i) AS " EVENT_TIME,
                     schema->keys[0].name);
    uint32_t ndoubles = 0;
    for (uint32_t f = 0; f < schema->nfeatures && (size_t)n < out_len; f++) {
        const struct store_feature *feature = &schema->features[f];
        const char *value =
            feature->type == STORE_TYPE_DOUBLE
                ? doubles[ndoubles++ % (sizeof doubles / sizeof *doubles)]
            : feature->type == STORE_TYPE_INT64 ? "i * 7"
            : feature->type == STORE_TYPE_STRING
                ? "'lbl' || lpad((i % 10000000)::VARCHAR, 7 + (i % 7)::INTEGER, '0')"
                : NULL;
        if (value == NULL) {
            fprintf(stderr, "materialize_bench: no values for feature %s of type %s\n",
                    feature->name, store_type_name(feature->type));
            return -1;
        }
        n += snprintf(out + n, out_len - (size_t)n, ", %s AS \"%s\"", value, feature->name);
    }
    if ((size_t)n >= out_len) {
        fprintf(stderr, "materialize_bench: the select list does not fit\n");
        return -1;
    }
    return 0;
}

/* FNV-1a: names the cache directory after the columns, so a file of other columns (an older
 * template or generator) is never read. */
static uint32_t _fnv1a(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s != '\0'; s++) {
        h = (h ^ (uint8_t)*s) * 16777619u;
    }
    return h;
}

static int _write_file(const char *path, const char *select_list, unsigned long long rows) {
    duckdb_database db;
    duckdb_connection conn;
    if (duckdb_open(NULL, &db) != DuckDBSuccess || duckdb_connect(db, &conn) != DuckDBSuccess) {
        return -1;
    }
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    char sql[8192]; /* room for the select list's 4096 bytes and the path */
    snprintf(sql, sizeof sql,
             "COPY (SELECT %s FROM range(%llu) t(i)) TO '%s' (FORMAT parquet, COMPRESSION snappy)",
             select_list, rows, tmp);
    duckdb_result result;
    int rc = 0;
    if (duckdb_query(conn, sql, &result) != DuckDBSuccess) {
        fprintf(stderr, "materialize_bench: %s\n", duckdb_result_error(&result));
        rc = -1;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        perror("materialize_bench: rename");
        rc = -1;
    }
    if (rc != 0) {
        unlink(tmp);
    }
    duckdb_destroy_result(&result);
    duckdb_disconnect(&conn);
    duckdb_close(&db);
    return rc;
}

int main(int argc, char **argv) {
    unsigned long long rows = 10000000;
    int runs = 3;
    unsigned threads = 0;
    int write_only = 0;
    static const struct option longopts[] = {
        {"rows", required_argument, NULL, 'r'},    {"runs", required_argument, NULL, 'n'},
        {"threads", required_argument, NULL, 't'}, {"write-only", no_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'r':
            rows = strtoull(optarg, NULL, 10);
            break;
        case 'n':
            runs = atoi(optarg);
            break;
        case 't':
            threads = (unsigned)atoi(optarg);
            break;
        case 'w':
            write_only = 1;
            break;
        default:
            fprintf(c == 'h' ? stdout : stderr,
                    "usage: materialize_bench [--rows N] [--runs R] [--threads T]\n"
                    "       materialize_bench [--rows N] --write-only\n"
                    "  --rows N      rows in the snapshot (default 10000000)\n"
                    "  --runs R      loads; the median is printed (default 3)\n"
                    "  --threads T   DuckDB threads (default 0: one per core)\n"
                    "  --write-only  write the cached file if it is missing, print its path\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (rows == 0 || runs < 1 || runs > 100) {
        fprintf(stderr, "materialize_bench: bad --rows or --runs\n");
        return 2;
    }
    store_rcu_thread_online();

    /* the view without its source first: the file's columns, hence its name, come from it */
    static char err[CONFIG_ERR_LEN];
    struct fsd_config *config = bench_view_parse(NULL, NULL, err, sizeof err);
    char select_list[4096];
    if (config == NULL) {
        fprintf(stderr, "materialize_bench: %s\n", err);
        return 1;
    }
    int listed = _select_list(config->views[0].schema, select_list, sizeof select_list);
    config_destroy(config);
    if (listed != 0) {
        return 1;
    }
    char dir[256], path[512];
    snprintf(dir, sizeof dir, "/tmp/fsd-materialize-bench-%08x-%llu", _fnv1a(select_list), rows);
    snprintf(path, sizeof path, "%s/data.parquet", dir);
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "writing %s ...\n", path);
        mkdir(dir, 0755);
        if (_write_file(path, select_list, rows) != 0) {
            return 1;
        }
        stat(path, &st);
    }
    if (write_only) {
        printf("%s\n", path);
        return 0;
    }

    /* The base: DuckDB's code and its allocator warmed up by a read, but no table yet. */
    duckdb_database db;
    duckdb_connection conn;
    duckdb_result warm;
    char sql[1024];
    snprintf(sql, sizeof sql, "SELECT * FROM read_parquet('%s') LIMIT 100000", path);
    if (duckdb_open(NULL, &db) != DuckDBSuccess || duckdb_connect(db, &conn) != DuckDBSuccess ||
        duckdb_query(conn, sql, &warm) != DuckDBSuccess) {
        fprintf(stderr, "materialize_bench: cannot read %s\n", path);
        return 1;
    }
    duckdb_destroy_result(&warm);
    duckdb_disconnect(&conn);
    duckdb_close(&db);
    _purge();
    double base_rss = _status_bytes("VmRSS");

    char source[1024];
    snprintf(source, sizeof source,
             "source: { type: parquet, path: \"%s\", event_timestamp_column: " EVENT_TIME " }",
             path);
    config = bench_view_parse(source, NULL, err, sizeof err);
    if (config == NULL) {
        fprintf(stderr, "materialize_bench: %s\n", err);
        return 1;
    }
    struct store_catalog *catalog = store_catalog_create(STORE_DEFAULT_SHARDS);
    if (catalog == NULL ||
        store_catalog_add_view(catalog, store_schema_clone(config->views[0].schema), err,
                               sizeof err) != 0) {
        fprintf(stderr, "materialize_bench: cannot create the catalog\n");
        return 1;
    }
    struct store_view *view = store_catalog_find(catalog, BENCH_VIEW_NAME);

    printf("materialize_bench: %llu rows x 10 features (8 double, 1 int64, 1 string), %d shards, "
           "file %.0f MiB (snappy), DuckDB threads %s\n",
           rows, STORE_DEFAULT_SHARDS, (double)st.st_size / (1 << 20),
           threads ? "set" : "one per core");
    printf("| run | rows/s | seconds | table MiB | peak over base MiB | peak / table |\n"
           "|---|---|---|---|---|---|\n");
    double *rate = calloc((size_t)runs, sizeof(double));
    double *ratio = calloc((size_t)runs, sizeof(double));
    double table_mib = 0;
    for (int i = 0; i < runs; i++) {
        _purge();
        _reset_hwm();
        struct mat_load_params params = {
            .shards = STORE_DEFAULT_SHARDS, .watermark_us = INT64_MIN, .duckdb_threads = threads};
        struct mat_load_result result;
        if (mat_load_view(view, &config->views[0].snapshot, &params, &result) != 0) {
            fprintf(stderr, "materialize_bench: %s\n", result.error);
            return 1;
        }
        double peak = _status_bytes("VmHWM") - base_rss;
        struct store_table_stats stats;
        store_read_lock();
        store_table_stats(store_view_table(view), &stats);
        store_read_unlock();
        double seconds = (double)result.duration_us / 1e6;
        rate[i] = (double)result.rows_read / seconds;
        ratio[i] = peak / (double)stats.memory_bytes;
        table_mib = (double)stats.memory_bytes / (1 << 20);
        printf("| %d | %.2fM | %.2f | %.0f | %.0f | %.2fx |\n", i + 1, rate[i] / 1e6, seconds,
               table_mib, peak / (1 << 20), ratio[i]);
        fflush(stdout);
    }
    double first_ratio = ratio[0];
    printf("\n| figure (median of %d runs) | value | target |\n|---|---|---|\n", runs);
    printf("| load rate | %.2fM rows/s | >= 1M rows/s |\n", _median(rate, runs) / 1e6);
    if (runs > 1) {
        printf("| peak memory / final table, old snapshot alive (runs 2..%d) | %.2fx | <= 2.2x |\n",
               runs, _median(ratio + 1, runs - 1));
    }
    printf("| peak memory / final table, first load (no old snapshot) | %.2fx | |\n", first_ratio);
    free(rate);
    free(ratio);
    store_rcu_barrier();
    store_catalog_destroy(catalog);
    config_destroy(config);
    store_rcu_thread_offline();
    return 0;
}
