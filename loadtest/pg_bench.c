/*
 * pg_bench: how fast the PostgreSQL source materializes a snapshot. Starts its own server
 * (tests/materializer/snapshot/pg_server.c), generates the benchmark view's table there with
 * generate_series, then reads it through mat_pg_read() into a sink and a new table, several
 * times, and prints the median.
 *
 *   build/bin/pg_bench [--rows N] [--runs R]          (defaults: 10M rows, 3 runs)
 *
 * The table is the benchmark view's (loadtest/bench_view.yaml, whose schema the reads use):
 * the int64 key entity_id, the event time ev and 10 features (d0..d7 double precision, count
 * bigint, label text of 10 bytes). For comparison it also times a bare COPY drained with libpq
 * and nothing decoded: the server's and the protocol's share of the time, which no client-side
 * work can beat.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jemalloc/jemalloc.h>
#include <libpq-fe.h>

#include "bench_view.h"
#include "config/config.h"
#include "materializer/snapshot/postgres.h"
#include "materializer/snapshot/sink.h"
#include "tests/materializer/snapshot/pg_server.h"
#include "store/rcu.h"
#include "store/schema.h"
#include "store/table.h"
#include "common/clock.h"

#define MAX_RUNS 15

struct options {
    uint64_t rows;
    int runs;
};

static int _cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double _median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), _cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static uint64_t _allocated_bytes(void) {
    uint64_t epoch = 1;
    size_t len = sizeof(epoch);
    mallctl("epoch", &epoch, &len, &epoch, len);
    size_t allocated = 0;
    len = sizeof(allocated);
    if (mallctl("stats.allocated", &allocated, &len, NULL, 0) != 0) {
        return 0;
    }
    return allocated;
}

#define EVENT_TIME_COLUMN "ev"

/*
 * The table's SQL from the view's schema, so its columns are the template's whatever it
 * lists: `generate`, the select list of the CREATE TABLE (key, event time, a value for each
 * feature: random() for a double, a bigint, a text of 10 bytes), and `columns`, the same
 * columns for the bare COPY. -1 for a feature type the generator has no values for.
 */
static int _table_sql(const struct store_schema *schema, char *generate, size_t generate_len,
                      char *columns, size_t columns_len) {
    if (schema->nkeys != 1 || schema->keys[0].type != STORE_KEY_INT64) {
        fprintf(stderr, "pg_bench: the view's key is not one int64\n");
        return -1;
    }
    const char *key = schema->keys[0].name;
    int g = snprintf(generate, generate_len,
                     "i::int8 AS \"%s\", '2024-01-01+00'::timestamptz + i * interval '1 ms'"
                     " AS " EVENT_TIME_COLUMN,
                     key);
    int c = snprintf(columns, columns_len, EVENT_TIME_COLUMN ", \"%s\"", key);
    for (uint32_t f = 0; f < schema->nfeatures; f++) {
        const struct store_feature *feature = &schema->features[f];
        const char *value = feature->type == STORE_TYPE_DOUBLE   ? "random()"
                            : feature->type == STORE_TYPE_INT64  ? "(i * 7)::int8"
                            : feature->type == STORE_TYPE_STRING ? "lpad(i::text, 10, '0')"
                                                                 : NULL;
        if (value == NULL) {
            fprintf(stderr, "pg_bench: no values for feature %s of type %s\n", feature->name,
                    store_type_name(feature->type));
            return -1;
        }
        g += snprintf(generate + g, generate_len - (size_t)g, ", %s AS \"%s\"", value,
                      feature->name);
        c += snprintf(columns + c, columns_len - (size_t)c, ", \"%s\"", feature->name);
        if ((size_t)g >= generate_len || (size_t)c >= columns_len) {
            fprintf(stderr, "pg_bench: the view's SQL does not fit\n");
            return -1;
        }
    }
    return 0;
}

/* Seconds to drain `COPY (SELECT the same columns) TO STDOUT (FORMAT binary)`, or -1. */
static int g_server_version;

static double _bare_copy(const char *dsn, const char *columns, uint64_t *bytes) {
    PGconn *conn = PQconnectdb(dsn);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "pg_bench: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return -1;
    }
    g_server_version = PQserverVersion(conn);
    double start = (clock_mono_us() / 1e6);
    char sql[4096];
    snprintf(sql, sizeof sql, "COPY (SELECT %s FROM bench) TO STDOUT (FORMAT binary)", columns);
    PGresult *res = PQexec(conn, sql);
    int ok = PQresultStatus(res) == PGRES_COPY_OUT;
    PQclear(res);
    char *buf;
    int n;
    *bytes = 0;
    while (ok && (n = PQgetCopyData(conn, &buf, 0)) > 0) {
        *bytes += (uint64_t)n;
        PQfreemem(buf);
    }
    while ((res = PQgetResult(conn)) != NULL) {
        ok = ok && PQresultStatus(res) == PGRES_COMMAND_OK;
        PQclear(res);
    }
    double elapsed = (clock_mono_us() / 1e6) - start;
    PQfinish(conn);
    return ok ? elapsed : -1;
}

static void _usage(FILE *out) {
    fprintf(out, "usage: pg_bench [--rows N] [--runs R]\n");
}

int main(int argc, char **argv) {
    struct options o = {.rows = 10000000, .runs = 3};
    static const struct option longopts[] = {
        {"rows", required_argument, NULL, 'n'},
        {"runs", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            o.rows = strtoull(optarg, NULL, 10);
            break;
        case 'r':
            o.runs = atoi(optarg);
            break;
        case 'h':
            _usage(stdout);
            return 0;
        default:
            _usage(stderr);
            return 2;
        }
    }
    if (o.rows == 0 || o.runs < 1 || o.runs > MAX_RUNS) {
        _usage(stderr);
        return 2;
    }

    store_rcu_thread_online();
    /* the view's schema, from the template: the table generated below has its columns */
    static char config_err[CONFIG_ERR_LEN];
    struct fsd_config *config = bench_view_parse(NULL, NULL, config_err, sizeof config_err);
    if (config == NULL) {
        fprintf(stderr, "pg_bench: %s\n", config_err);
        return 1;
    }
    const struct store_schema *schema = config->views[0].schema;
    char generate[4096], columns[2048];
    if (_table_sql(schema, generate, sizeof generate, columns, sizeof columns) != 0) {
        config_destroy(config);
        return 1;
    }
    struct pg_server server;
    char err[4096];
    /* room for the whole table in shared buffers; no checkpoint during the generation */
    static const char *const server_options[] = {"shared_buffers=2GB", "max_wal_size=8GB",
                                                 "checkpoint_timeout=30min", NULL};
    double t0 = (clock_mono_us() / 1e6);
    if (pg_server_start(&server, server_options, err, sizeof err) != 0) {
        fprintf(stderr, "pg_bench: cannot start PostgreSQL: %s\n", err);
        config_destroy(config);
        return 1;
    }
    char sql[8192];
    /* VACUUM FREEZE sets the hint bits now, so no run pays for writing them */
    snprintf(sql, sizeof sql,
             "CREATE UNLOGGED TABLE bench AS SELECT %s FROM generate_series(1, %llu) i", generate,
             (unsigned long long)o.rows);
    if (pg_server_exec(&server, sql, err, sizeof err) != 0 ||
        pg_server_exec(&server, "VACUUM (FREEZE, ANALYZE) bench", err, sizeof err) != 0) {
        fprintf(stderr, "pg_bench: generating the table: %s\n", err);
        pg_server_stop(&server);
        config_destroy(config);
        return 1;
    }
    double generated_s = (clock_mono_us() / 1e6) - t0;

    struct mat_source source = {
        .type = MAT_SOURCE_POSTGRES,
        .dsn = server.dsn,
        .table = "bench",
        .event_timestamp_column = EVENT_TIME_COLUMN,
    };
    double rate[MAX_RUNS], bare_rate[MAX_RUNS], mem_mb[MAX_RUNS];
    uint64_t copy_bytes = 0;
    int rc = 0;
    for (int run = 0; run < o.runs && rc == 0; run++) {
        double bare = _bare_copy(server.dsn, columns, &copy_bytes);
        if (bare < 0) {
            rc = 1;
            break;
        }
        bare_rate[run] = (double)o.rows / bare;

        /* sized for the rows, as a reload is sized by the live snapshot it replaces */
        struct store_table_options topts = {.expected_rows = o.rows};
        uint64_t before = _allocated_bytes();
        struct store_table *table = store_table_create(schema, &topts, err, sizeof err);
        struct mat_sink *sink =
            table != NULL ? mat_sink_create(schema, table, clock_wall_us()) : NULL;
        if (sink == NULL) {
            fprintf(stderr, "pg_bench: cannot create the table: %s\n", err);
            store_table_destroy(table);
            rc = 1;
            break;
        }
        uint64_t expected = 0;
        double start = (clock_mono_us() / 1e6);
        if (mat_pg_read(&source, schema, sink, INT64_MIN, &expected, err, sizeof err) != 0) {
            fprintf(stderr, "pg_bench: %s\n", err);
            rc = 1;
        }
        double elapsed = (clock_mono_us() / 1e6) - start;
        store_table_seal(table);
        const struct mat_sink_stats *st = mat_sink_stats(sink);
        if (rc == 0 && st->rows_kept != o.rows) {
            fprintf(stderr, "pg_bench: kept %llu rows of %llu\n", (unsigned long long)st->rows_kept,
                    (unsigned long long)o.rows);
            rc = 1;
        }
        rate[run] = (double)o.rows / elapsed;
        mem_mb[run] = (double)(_allocated_bytes() - before) / 1e6;
        fprintf(stderr,
                "pg_bench: run %d: %.2f s, %.0fk rows/s (bare COPY %.2f s), estimate %llu\n",
                run + 1, elapsed, rate[run] / 1e3, bare, (unsigned long long)expected);
        mat_sink_destroy(sink);
        store_table_destroy(table);
    }
    config_destroy(config);
    pg_server_stop(&server);
    if (rc != 0) {
        return rc;
    }

    printf("pg_bench: %llu rows x 10 features (8 double precision, 1 bigint, 1 text), "
           "PostgreSQL %d.%d on loopback TCP, table generated in %.0f s\n\n",
           (unsigned long long)o.rows, g_server_version / 10000, g_server_version % 10000,
           generated_s);
    printf("| figure (median of %d runs) | value |\n|---|---|\n", o.runs);
    printf("| mat_pg_read into sink + table | %.0fk rows/s |\n", _median(rate, o.runs) / 1e3);
    printf("| bare binary COPY, drained by libpq, nothing decoded | %.0fk rows/s |\n",
           _median(bare_rate, o.runs) / 1e3);
    printf("| COPY stream size | %.0f MB (%.0f bytes/row) |\n", (double)copy_bytes / 1e6,
           (double)copy_bytes / (double)o.rows);
    printf("| table memory after the load | %.0f MB |\n", _median(mem_mb, o.runs));
    store_rcu_barrier();
    store_rcu_thread_offline();
    return 0;
}
