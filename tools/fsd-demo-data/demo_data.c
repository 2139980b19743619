/*
 * fsd-demo-data DIR: writes the Parquet files configs/demo.yaml reads, with DuckDB.
 *
 *   DIR/user_features/part-00{0..3}.parquet       100,000 users, 25,000 per file
 *   DIR/user_features/part-004-late.parquet       late rows: 1 user in 50 again with an OLDER
 *                                                 event time (must lose), 1 in 97 with a NEWER
 *                                                 one (must win); latest-row selection at work
 *   DIR/item_features/part-00{0,1}.parquet        20,000 items (+ 1 in 40 updated in part-002)
 *   DIR/user_item_features/part-00{0..3}.parquet  200,000 user x item pairs (+ duplicates)
 *
 * Values are deterministic (DuckDB's hash() of the row number, never random()), so two runs
 * write the same features; event times are relative to now (within the last 12 hours) so the
 * views' TTLs (24h, 7d) keep the rows fresh for the demo. A few values are NULL on purpose.
 * Files use zstd and snappy compression.
 */
#include <duckdb.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

static int _exec(duckdb_connection conn, const char *sql) {
    duckdb_result result;
    int rc = 0;
    if (duckdb_query(conn, sql, &result) != DuckDBSuccess) {
        fprintf(stderr, "fsd-demo-data: %s\n", duckdb_result_error(&result));
        rc = -1;
    }
    duckdb_destroy_result(&result);
    return rc;
}

static int _mkdir(const char *path) {
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "fsd-demo-data: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Event time: now minus 1 minute minus up to 12 hours, per row `i` and salt. */
#define EVENT_TS(salt)                                                                             \
    "(TIMESTAMP '%s' - INTERVAL 60 SECOND - to_seconds((hash(i, " salt ") %% 43200)::BIGINT))"

static const char USERS_SELECT[] =
    "SELECT i AS user_id, ev AS event_ts, ev + INTERVAL 5 MINUTE AS created_ts,"
    " (18 + hash(i, 'age') %% 62)::INTEGER AS age,"
    " (hash(i, 'acct') %% 3650)::INTEGER AS account_age_days,"
    " (hash(i, 'orders') %% 500)::BIGINT AS lifetime_orders,"
    " CASE WHEN i %% 113 = 0 THEN NULL ELSE (hash(i, 'ctr7') %% 1000000) / 1e7 END AS ctr_7d,"
    " (hash(i, 'ctr30') %% 1000000) / 1e7 AS ctr_30d,"
    " ((hash(i, 'basket') %% 20000) / 100.0)::FLOAT AS avg_basket_value,"
    " hash(i, 'premium') %% 10 = 0 AS is_premium,"
    " CASE WHEN i %% 101 = 0 THEN NULL ELSE"
    "   ['de','us','fr','gb','jp','br','in','es'][(hash(i, 'country') %% 8)::INTEGER + 1] END"
    "   AS country,"
    " ['ios','android','web'][(hash(i, 'device') %% 3)::INTEGER + 1] AS device,"
    " ev - to_seconds((hash(i, 'seen') %% 86400)::BIGINT) AS last_seen_ts,"
    " list_transform(range(16), j -> (((hash(i, j, 'emb') %% 2000)::INTEGER - 1000) / 1000.0)"
    "   ::FLOAT) AS embedding,"
    " list_transform(range((hash(i, 'nrec') %% 6)::BIGINT), j -> (hash(i, j, 'rec') %% 20000)"
    "   ::BIGINT) AS recent_item_ids,"
    " CASE WHEN i %% 7 = 0 THEN NULL ELSE list_transform(range(1 + (hash(i, 'nseg') %% 3)::BIGINT),"
    "   j -> ['returning','vip','bargain_hunter','mobile_first','new_user']"
    "        [((hash(i, 'seg') + j) %% 5)::INTEGER + 1]) END AS segments"
    " FROM (SELECT i, %s AS ev FROM range(%d, %d) t(i) %s)";

static const char ITEMS_SELECT[] =
    "SELECT i AS item_id, ev AS event_ts,"
    " (1 + hash(i, 'price') %% 50000) / 100.0 AS price,"
    " CASE WHEN i %% 3 = 0 THEN ((hash(i, 'disc') %% 50) / 100.0)::FLOAT END AS discount,"
    " ['books','electronics','garden','fashion','toys','grocery'][(hash(i, 'cat') %% 6)::INTEGER"
    "   + 1] AS category,"
    " 'brand_' || (hash(i, 'brand') %% 300)::VARCHAR AS brand,"
    " hash(i, 'stock') %% 20 <> 0 AS in_stock,"
    " (hash(i, 'pop') %% 100000)::BIGINT AS popularity_7d,"
    " CASE WHEN i %% 17 = 0 THEN NULL ELSE (1 + (hash(i, 'rating') %% 41) / 10.0)::FLOAT END"
    "   AS rating,"
    " list_transform(range((hash(i, 'ntag') %% 4)::BIGINT), j -> ['sale','new','eco','gift',"
    "   'bestseller'][((hash(i, 'tag') + j) %% 5)::INTEGER + 1]) AS tags,"
    " TIMESTAMP '2024-01-01' + to_seconds((hash(i, 'listed') %% 50000000)::BIGINT) AS listed_ts"
    " FROM (SELECT i, %s AS ev FROM range(%d, %d) t(i) %s)";

/* Pair p: user p / 2 (users 0..99,999), item from a hash (items 0..19,999). */
static const char PAIRS_SELECT[] =
    "SELECT i // 2 AS user_id, (hash(i, 'item') %% 20000)::BIGINT AS item_id, ev AS event_ts,"
    " (hash(i, 'clicks') %% 30)::BIGINT AS clicks_7d,"
    " (30 + hash(i, 'views') %% 300)::BIGINT AS views_7d,"
    " (hash(i, 'buys') %% 4)::INTEGER AS purchases_30d,"
    " (hash(i, 'aff') %% 1000000) / 1e6 AS affinity,"
    " ev - to_seconds((hash(i, 'inter') %% 600000)::BIGINT) AS last_interaction_ts"
    " FROM (SELECT i, %s AS ev FROM range(%d, %d) t(i) %s)";

struct part {
    const char *view;
    const char *select;
    const char *file;
    int from, to;
    const char *event;  /* the event time expression */
    const char *filter; /* which rows, for the late parts */
    const char *codec;
};

int main(int argc, char **argv) {
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr,
                "usage: fsd-demo-data DIR   (writes DIR/{user,item,user_item}_features/)\n");
        return EXIT_USAGE;
    }
    const char *dir = argv[1];
    char now[32];
    time_t t = time(NULL);
    strftime(now, sizeof now, "%Y-%m-%d %H:%M:%S", gmtime(&t));

    /* The late rows: one in 50 older than the first row of the entity, one in 97 newer. */
    char late[1024], base[256];
    snprintf(base, sizeof base, EVENT_TS("'ev'"), now);
    snprintf(late, sizeof late,
             "CASE WHEN i %% 97 = 0 THEN LEAST(%s + INTERVAL 30 SECOND, TIMESTAMP '%s')"
             " ELSE %s - INTERVAL 1 HOUR END",
             base, now, base);
    const struct part parts[] = {
        {"user_features", USERS_SELECT, "part-000", 0, 25000, base, "", "zstd"},
        {"user_features", USERS_SELECT, "part-001", 25000, 50000, base, "", "snappy"},
        {"user_features", USERS_SELECT, "part-002", 50000, 75000, base, "", "zstd"},
        {"user_features", USERS_SELECT, "part-003", 75000, 100000, base, "", "snappy"},
        {"user_features", USERS_SELECT, "part-004-late", 0, 100000, late,
         "WHERE i % 50 = 0 OR i % 97 = 0", "zstd"},
        {"item_features", ITEMS_SELECT, "part-000", 0, 10000, base, "", "zstd"},
        {"item_features", ITEMS_SELECT, "part-001", 10000, 20000, base, "", "snappy"},
        {"item_features", ITEMS_SELECT, "part-002-late", 0, 20000, late,
         "WHERE i % 40 = 0 OR i % 97 = 0", "zstd"},
        {"user_item_features", PAIRS_SELECT, "part-000", 0, 50000, base, "", "zstd"},
        {"user_item_features", PAIRS_SELECT, "part-001", 50000, 100000, base, "", "snappy"},
        {"user_item_features", PAIRS_SELECT, "part-002", 100000, 150000, base, "", "zstd"},
        {"user_item_features", PAIRS_SELECT, "part-003", 150000, 200000, base, "", "snappy"},
    };

    duckdb_database db;
    duckdb_connection conn;
    if (duckdb_open(NULL, &db) != DuckDBSuccess || duckdb_connect(db, &conn) != DuckDBSuccess) {
        fprintf(stderr, "fsd-demo-data: cannot start DuckDB\n");
        return EXIT_FAILED;
    }
    int rc = _mkdir(dir);
    char path[4096], select[8192], sql[16384];
    for (size_t i = 0; i < sizeof parts / sizeof parts[0] && rc == 0; i++) {
        const struct part *p = &parts[i];
        snprintf(path, sizeof path, "%s/%s", dir, p->view);
        rc = _mkdir(path);
        if (rc != 0) {
            break;
        }
        snprintf(select, sizeof select, p->select, p->event, p->from, p->to, p->filter);
        /* The directory comes from the command line: quote it as a SQL string literal. */
        size_t n = (size_t)snprintf(sql, sizeof sql, "COPY (%s) TO '", select);
        snprintf(path, sizeof path, "%s/%s/%s.parquet", dir, p->view, p->file);
        for (const char *c = path; *c && n + 4 < sizeof sql; c++) {
            if (*c == '\'') {
                sql[n++] = '\'';
            }
            sql[n++] = *c;
        }
        snprintf(sql + n, sizeof sql - n, "' (FORMAT parquet, COMPRESSION %s)", p->codec);
        rc = _exec(conn, sql);
        if (rc == 0) {
            printf("wrote %s\n", path);
        }
    }
    duckdb_disconnect(&conn);
    duckdb_close(&db);
    return rc == 0 ? EXIT_OK : EXIT_FAILED;
}
