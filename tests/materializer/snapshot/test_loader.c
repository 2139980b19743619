/*
 * Loads end to end (mat_load_view): the latest row per entity, TTL and future skipping,
 * composite keys, incremental loads after a watermark, each data-contract rule, corrupt and
 * truncated files, and updates pushed during a load. Every failure case checks that the live
 * snapshot kept serving exactly what it served before (a digest of every row, and the version).
 */
#include "mat_test.h"

#include <fcntl.h>
#include <math.h>
#include <pthread.h>

#include "materializer/snapshot/sink.h"

static const char LATEST_YAML[] = "views:\n"
                                  "  - name: v\n"
                                  "    join_keys: [{ name: id, type: int64 }]\n"
                                  "    ttl: 0\n"
                                  "    source: { type: parquet, path: \"@DIR@/v\", "
                                  "event_timestamp_column: ev, created_timestamp_column: cr }\n"
                                  "    features:\n"
                                  "      - { name: x, type: double }\n";

/* `SELECT` of rows (id, hours after 2024-05-01, created seconds, x) in that order. */
static void _write_rows(const char *file, const char *values) {
    char select[4096];
    snprintf(select, sizeof select,
             "SELECT id::BIGINT AS id, TIMESTAMP '2024-05-01' + to_hours(h::BIGINT) AS ev,"
             " TIMESTAMP '2024-05-01' + to_seconds(c::BIGINT) AS cr, x::DOUBLE AS x"
             " FROM (VALUES %s) v(id, h, c, x)",
             values);
    mt_write(file, NULL, select);
}

static double _x(const char *view, int64_t id, bool *found) {
    store_read_lock();
    const struct store_row *row = mt_row_i64(view, id);
    struct store_value v = {0};
    *found = row != NULL && mt_value(view, row, "x", &v);
    store_read_unlock();
    return v.f64;
}

static void _expect_x(const char *view, int64_t id, double want) {
    bool found;
    double got = _x(view, id, &found);
    if (!found || got != want) {
        print_error("id %lld: want %g, got %s%g\n", (long long)id, want, found ? "" : "none ", got);
    }
    assert_true(found);
    assert_true(got == want);
}

/* Duplicates and out-of-order rows across files: the newest event time wins, then created. */
static void test_latest_row(void **state) {
    (void)state;
    mt_config(LATEST_YAML);
    _write_rows("v/a.parquet", "(1, 10, 0, 1.0), (1, 12, 0, 2.0), (2, 9, 5, 3.0)");
    _write_rows(
        "v/b.parquet",
        "(1, 11, 99, 9.0), (2, 9, 7, 4.0), (2, 9, 6, 5.0), (3, 1, 0, 6.0), (1, 12, 0, 7.0)");
    struct mat_load_result r;
    mt_load_ok("v", &r);
    _expect_x("v", 1, 2.0); /* 12h beats the later-read 11h; the identical (12h, 0) ties: first */
    _expect_x("v", 2, 4.0); /* equal event times: created 7 beats 5 and 6 */
    _expect_x("v", 3, 6.0);
    assert_int_equal(r.rows_read, 8);
    assert_int_equal(r.table_rows, 3);
    assert_int_equal(r.rows_kept + r.rows_superseded, 8);
    assert_int_equal(r.rows_superseded, 3); /* (1,11h), (2,9h,6s) and the repeated (1,12h) */
    assert_int_equal(r.max_event_ts_us, 1714521600LL * 1000000 + 12 * T_HOUR_US);
    assert_int_equal(r.watermark_us, r.max_event_ts_us);
    assert_int_equal(r.outcome, MAT_LOADED);
    assert_string_equal(mat_outcome_name(r.outcome), "loaded");
}

/* Rows older than the TTL at the load's start and rows from the future are not stored. */
static void test_ttl_and_future(void **state) {
    (void)state;
    mt_config("views:\n"
              "  - name: v\n"
              "    join_keys: [{ name: id, type: int64 }]\n"
              "    ttl: 1h\n"
              "    source: { type: parquet, path: \"@DIR@/v\", event_timestamp_column: ev }\n"
              "    features:\n"
              "      - { name: x, type: double }\n");
    /* T_NOW is 2024-06-01 00:00:00. */
    mt_write("v/a.parquet", NULL,
             "SELECT * FROM (VALUES"
             " (1::BIGINT, TIMESTAMP '2024-05-31 23:30:00', 1.0::DOUBLE),"
             " (2, TIMESTAMP '2024-05-31 22:00:00', 2.0)," /* 2h old: expired */
             " (3, TIMESTAMP '2024-06-01 00:00:01', 3.0)," /* 1s in the future */
             " (4, TIMESTAMP '2024-06-01 00:00:00', 4.0)," /* exactly now: kept */
             " (5, TIMESTAMP '2024-05-31 23:00:00', 5.0)," /* exactly the TTL: kept */
             " (1, TIMESTAMP '2024-06-01 00:10:00', 9.0)"  /* a newer row, but future */
             ") v(id, ev, x)");
    struct mat_load_result r;
    mt_load_ok("v", &r);
    assert_int_equal(r.skipped_expired, 1);
    assert_int_equal(r.skipped_future, 2);
    assert_int_equal(r.rows_skipped, 3);
    assert_int_equal(r.table_rows, 3);
    _expect_x("v", 1, 1.0);
    _expect_x("v", 4, 4.0);
    _expect_x("v", 5, 5.0);
    bool found;
    _x("v", 2, &found);
    assert_false(found);
    _x("v", 3, &found);
    assert_false(found);
}

static void test_composite_keys(void **state) {
    (void)state;
    mt_config("views:\n"
              "  - name: ui\n"
              "    join_keys: [{ name: user_id, type: int64 }, { name: item, type: string }]\n"
              "    ttl: 0\n"
              "    source: { type: parquet, path: \"@DIR@/ui\", event_timestamp_column: ev }\n"
              "    features:\n"
              "      - { name: x, type: double }\n");
    mt_write("ui/a.parquet", "COMPRESSION zstd",
             "SELECT * FROM (VALUES (1::BIGINT, 'a', TIMESTAMP '2024-05-01', 1.0::DOUBLE),"
             " (1, 'b', TIMESTAMP '2024-05-01', 2.0), (2, 'a', TIMESTAMP '2024-05-01', 3.0),"
             " (1, 'a', TIMESTAMP '2024-05-02', 4.0)) v(user_id, item, ev, x)");
    struct mat_load_result r;
    mt_load_ok("ui", &r);
    assert_int_equal(r.table_rows, 3);
    static const struct {
        int64_t user;
        const char *item;
        double x;
    } want[] = {{1, "a", 4.0}, {1, "b", 2.0}, {2, "a", 3.0}};
    store_read_lock();
    struct store_view *view = mt_view("ui");
    for (size_t i = 0; i < 3; i++) {
        struct store_key_part parts[2] = {
            {.type = STORE_KEY_INT64, .i64 = want[i].user},
            {.type = STORE_KEY_STRING, .str = want[i].item, .str_len = 1},
        };
        uint8_t buf[64];
        char err[128];
        int len =
            store_key_encode(store_view_schema(view), parts, buf, sizeof buf, err, sizeof err);
        struct store_key key = {buf, (uint32_t)len, store_key_hash(buf, (uint32_t)len)};
        const struct store_row *row = store_table_get(store_view_table(view), &key);
        assert_non_null(row);
        struct store_value v;
        assert_true(mt_value("ui", row, "x", &v));
        assert_true(v.f64 == want[i].x);
    }
    store_read_unlock();
}

/* Incremental: only rows after the watermark are read, and they go into the live table. */
static void test_incremental(void **state) {
    (void)state;
    mt_config("views:\n"
              "  - name: v\n"
              "    join_keys: [{ name: id, type: int64 }]\n"
              "    ttl: 0\n"
              "    incremental: true\n"
              "    source: { type: parquet, path: \"@DIR@/v\", "
              "event_timestamp_column: ev, created_timestamp_column: cr }\n"
              "    features:\n"
              "      - { name: x, type: double }\n");
    assert_true(config_find_view(mt.config, "v")->snapshot.incremental);
    _write_rows("v/a.parquet", "(1, 10, 0, 1.0), (2, 11, 0, 2.0)");
    struct mat_load_result r;
    /* Without a watermark an incremental view loads in full. */
    assert_int_equal(mt_load_ex("v", NULL, true, INT64_MIN, &r), 0);
    assert_int_equal(r.outcome, MAT_LOADED);
    assert_int_equal(r.version, 1);
    int64_t watermark = r.watermark_us;
    assert_int_equal(watermark, 1714521600LL * 1000000 + 11 * T_HOUR_US);

    /* id 1 newer; id 50 brand new but older than the watermark: an incremental load must not
     * see it (a full load would). */
    _write_rows("v/b.parquet", "(1, 12, 0, 10.0), (50, 5, 0, 50.0), (2, 11, 0, 99.0)");
    assert_int_equal(mt_load_ex("v", NULL, true, watermark, &r), 0);
    assert_int_equal(r.outcome, MAT_LOADED_INCREMENTAL);
    assert_int_equal(r.version, 1); /* the snapshot was updated in place, not replaced */
    assert_int_equal(r.rows_read, 1);
    assert_int_equal(r.watermark_us, 1714521600LL * 1000000 + 12 * T_HOUR_US);
    _expect_x("v", 1, 10.0);
    _expect_x("v", 2, 2.0);
    bool found;
    _x("v", 50, &found);
    assert_false(found);

    /* Nothing new: reads nothing, the watermark stays. */
    assert_int_equal(mt_load_ex("v", NULL, true, r.watermark_us, &r), 0);
    assert_int_equal(r.rows_read, 0);
    assert_int_equal(r.watermark_us, 1714521600LL * 1000000 + 12 * T_HOUR_US);

    /* A full load sees everything again. */
    mt_load_ok("v", &r);
    assert_int_equal(r.version, 2);
    _expect_x("v", 50, 50.0);
}

/* ---- the data contract ------------------------------------------------------------------ */

static const char CONTRACT_YAML[] =
    "views:\n"
    "  - name: v\n"
    "    join_keys: [{ name: id, type: int64 }]\n"
    "    ttl: 0\n"
    "    source: { type: parquet, path: \"@DIR@/v\", event_timestamp_column: ev }\n"
    "    contract:\n"
    "      min_rows: 5\n"
    "      max_row_drop_percent: 20\n"
    "      features:\n"
    "        x: { max_null_rate: 0.25, range: [0, 100] }\n"
    "        n: { range: [-5, 5] }\n"
    "    features:\n"
    "      - { name: x, type: double }\n"
    "      - { name: n, type: int32 }\n";

/* `rows` rows; x = id unless a CASE says otherwise. */
static void _write_contract(int rows, const char *x_expr, const char *n_expr, const char *id_expr) {
    char select[2048];
    snprintf(select, sizeof select,
             "SELECT %s AS id, TIMESTAMP '2024-05-01' AS ev, (%s)::DOUBLE AS x,"
             " (%s)::INTEGER AS n FROM range(%d) t(i)",
             id_expr, x_expr, n_expr, rows);
    mt_write("v/a.parquet", NULL, select);
}

static void _expect_rejected(const char *needle) {
    struct mt_digest before = mt_digest("v");
    uint64_t version = store_view_version(mt_view("v"));
    struct mat_load_result r;
    int rc = mt_load_ex("v", NULL, false, INT64_MIN, &r);
    if (rc == 0 || strstr(r.error, needle) == NULL) {
        print_error("want a rejection with \"%s\", got rc=%d \"%s\"\n", needle, rc, r.error);
    }
    assert_int_equal(rc, -1);
    assert_int_equal(r.outcome, MAT_REJECTED);
    assert_non_null(strstr(r.error, needle));
    struct mt_digest after = mt_digest("v");
    assert_int_equal(after.rows, before.rows);
    assert_true(after.sum == before.sum);
    assert_int_equal(store_view_version(mt_view("v")), version);
    assert_int_equal(r.version, version);
    _expect_x("v", 3, 3.0); /* the good snapshot's value, unchanged */
}

static void test_contract_rules(void **state) {
    (void)state;
    mt_config(CONTRACT_YAML);
    const struct mat_contract *c = &config_find_view(mt.config, "v")->snapshot.contract;
    assert_int_equal(c->min_rows, 5);
    assert_int_equal(c->nfeatures, 2);

    _write_contract(10, "i", "0", "i::BIGINT");
    struct mat_load_result r;
    mt_load_ok("v", &r);
    assert_int_equal(r.version, 1);

    _write_contract(4, "i", "0", "i::BIGINT");
    _expect_rejected("view v: contract: 4 rows, fewer than min_rows 5");
    _write_contract(7, "i", "0", "i::BIGINT"); /* 30% fewer than 10 */
    _expect_rejected("rows dropped from 10 to 7 (30.00%), more than max_row_drop_percent 20");
    _write_contract(10, "CASE WHEN i < 3 THEN NULL ELSE i END", "0", "i::BIGINT");
    _expect_rejected("feature x is null for 3 of 10 entities (0.3), more than max_null_rate 0.25");
    _write_contract(10, "CASE WHEN i = 4 THEN 100.5 ELSE i END", "0", "i::BIGINT");
    _expect_rejected("feature x has 1 values outside range [0, 100], e.g. 100.5");
    _write_contract(10, "i", "CASE WHEN i = 9 THEN -6 ELSE 0 END", "i::BIGINT");
    _expect_rejected("feature n has 1 values outside range [-5, 5], e.g. -6");
    _write_contract(10, "CASE WHEN i = 1 THEN 'nan'::DOUBLE ELSE i END", "0", "i::BIGINT");
    _expect_rejected("feature x has 1 values outside range");
    _write_contract(11, "i", "0", "CASE WHEN i = 10 THEN NULL ELSE i END::BIGINT");
    _expect_rejected("contract: 1 rows have a null join key");

    /* Within every limit (2 nulls of 10 = 0.2, 8 rows = 20% drop): accepted. */
    _write_contract(8, "CASE WHEN i IN (0, 1) THEN NULL ELSE i END", "5", "i::BIGINT");
    mt_load_ok("v", &r);
    assert_int_equal(r.version, 2);
    assert_int_equal(r.table_rows, 8);
}

/* Corrupt and truncated files fail with DuckDB's reason, prefixed with the view and the path;
 * the live snapshot keeps serving unchanged. */
static void test_corrupt_and_truncated(void **state) {
    (void)state;
    mt_config(LATEST_YAML);
    _write_rows("v/a.parquet", "(1, 10, 0, 1.0), (2, 10, 0, 2.0), (3, 10, 0, 3.0)");
    struct mat_load_result r;
    mt_load_ok("v", &r);
    struct mt_digest before = mt_digest("v");

    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/v/b.parquet", mt.dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "PAR1 this is not parquet at all PAR1", 36), 36);
    close(fd);
    char prefix[PATH_MAX + 64];
    snprintf(prefix, sizeof prefix, "view v: %s/v: ", mt.dir);
    mt_load_fails("v", NULL, prefix);
    mt_load_fails("v", NULL, "b.parquet");

    /* The first half of a real file. */
    _write_rows("v/b.parquet", "(4, 10, 0, 4.0), (5, 10, 0, 5.0)");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size / 2), 0);
    mt_load_fails("v", NULL, prefix);

    struct mt_digest after = mt_digest("v");
    assert_true(after.sum == before.sum && after.rows == before.rows);
    assert_int_equal(store_view_version(mt_view("v")), 1);
    _expect_x("v", 2, 2.0);
}

/* ---- updates during a load ---------------------------------------------------------------- */

#define PUSHED 1000

struct pusher {
    struct store_view *view;
    int pushed;
};

/* A live write (a push) of x for `id` at `event_ts_us`, or a delete when x is NaN. */
static void _push_at(struct store_view *view, int64_t id, int64_t event_ts_us, double x) {
    const struct store_schema *schema = store_view_schema(view);
    struct store_row_builder b;
    assert_int_equal(store_row_builder_init(&b, schema), 0);
    store_row_builder_reset(&b, event_ts_us, 0);
    store_row_set_double(&b, 0, x);
    struct store_key_part part = {.type = STORE_KEY_INT64, .i64 = id};
    uint8_t buf[16];
    char err[128];
    int len = store_key_encode(schema, &part, buf, sizeof buf, err, sizeof err);
    struct store_key key = {buf, (uint32_t)len, store_key_hash(buf, (uint32_t)len)};
    if (isnan(x)) {
        store_view_delete(view, &key, event_ts_us, 0);
    } else {
        store_view_upsert(view, &key, &b);
    }
    store_row_builder_deinit(&b);
}

static void _push(struct store_view *view, int64_t id, double x) {
    _push_at(view, id, T_NOW_US - 1000000, x); /* newer than any snapshot row */
}

static void *_pusher(void *arg) {
    struct pusher *p = arg;
    store_rcu_thread_online();
    /* Probe until the load logs updates: from then on every push must survive the swap. */
    while (store_view_load_logged(p->view) == 0) {
        store_read_lock();
        _push(p->view, -1, -1.0); /* an id the pushes below do not use */
        store_read_unlock();
    }
    for (int i = 0; i < PUSHED; i++) {
        store_read_lock();
        _push(p->view, i * 7, 1000.0 + i); /* some entities in the snapshot, some new */
        store_read_unlock();
        p->pushed++;
    }
    store_rcu_thread_offline();
    return NULL;
}

static void test_updates_during_load(void **state) {
    (void)state;
    mt_config(LATEST_YAML);
    mt_write("v/a.parquet", NULL,
             "SELECT i AS id, TIMESTAMP '2024-05-01' AS ev, TIMESTAMP '2024-05-01' AS cr,"
             " i::DOUBLE AS x FROM range(400000) t(i)");
    struct pusher p = {mt_view("v"), 0};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, _pusher, &p), 0);
    struct mat_load_result r;
    mt_load_ok("v", &r);
    pthread_join(thread, NULL);
    assert_int_equal(p.pushed, PUSHED);
    if (r.updates_replayed < PUSHED) {
        print_error("only %llu updates replayed: the load ended before the pushes\n",
                    (unsigned long long)r.updates_replayed);
    }
    assert_true(r.updates_replayed >= PUSHED);
    for (int i = 0; i < PUSHED; i++) {
        _expect_x("v", i * 7, 1000.0 + i);
    }
    _expect_x("v", 1, 1.0); /* not pushed: the snapshot's value */
}

#define AT_HOUR(h) (1714521600LL * 1000000 + (h)*T_HOUR_US) /* 2024-05-01 + h hours */

/* Pushes made before a load began: per entity, the newest event time wins across the swap. */
static void test_updates_before_load_newest_event_time_wins(void **state) {
    (void)state;
    mt_config(LATEST_YAML);
    _write_rows("v/a.parquet",
                "(1, 10, 0, 1.0), (2, 10, 0, 2.0), (3, 10, 0, 3.0), (5, 10, 0, 5.0)");
    struct mat_load_result r;
    mt_load_ok("v", &r);
    store_read_lock();
    struct store_view *view = mt_view("v");
    _push_at(view, 1, AT_HOUR(11), 100.0); /* newer than the next snapshot's row: kept */
    _push_at(view, 2, AT_HOUR(11), 200.0); /* older than it: the snapshot's row */
    _push_at(view, 3, AT_HOUR(11), NAN);   /* a delete newer than the snapshot's row: holds */
    _push_at(view, 4, AT_HOUR(11), 400.0); /* an entity the source does not have: kept */
    _push_at(view, 5, AT_HOUR(11), NAN);   /* a delete older than the snapshot's row */
    store_read_unlock();
    _write_rows("v/b.parquet", "(2, 12, 0, 22.0), (5, 12, 0, 55.0)");
    mt_load_ok("v", &r);
    assert_int_equal(r.version, 2);
    assert_int_equal(r.updates_replayed, 0); /* carried over, not replayed */
    assert_int_equal(r.table_rows, 4);       /* what the source said */
    _expect_x("v", 1, 100.0);
    _expect_x("v", 2, 22.0);
    bool found;
    _x("v", 3, &found);
    assert_false(found);
    _expect_x("v", 4, 400.0);
    _expect_x("v", 5, 55.0);
    struct mt_digest d = mt_digest("v");
    assert_int_equal(d.rows, 4); /* 1, 2, 4, 5 */
    /* the next load keeps the pushed rows still, until the source has something newer */
    _write_rows("v/c.parquet", "(1, 13, 0, 11.0)");
    mt_load_ok("v", &r);
    _expect_x("v", 1, 11.0);
    _expect_x("v", 4, 400.0);
    _x("v", 3, &found);
    assert_false(found);
}

/* The drop rule judges what the view serves after the swap: live rows it keeps count. */
static void test_contract_drop_counts_live_rows_the_swap_keeps(void **state) {
    (void)state;
    mt_config(CONTRACT_YAML);
    _write_contract(10, "i", "0", "i::BIGINT");
    struct mat_load_result r;
    mt_load_ok("v", &r);
    store_read_lock();
    for (int64_t id = 100; id < 110; id++) {
        _push(mt_view("v"), id, 1000.0); /* outside the contract's range: not the snapshot's */
    }
    store_read_unlock();
    assert_int_equal(mt_digest("v").rows, 20);
    /* the same 10 rows again: the view keeps serving 20, nothing dropped */
    mt_load_ok("v", &r);
    assert_int_equal(r.version, 2);
    assert_int_equal(mt_digest("v").rows, 20);
    _expect_x("v", 105, 1000.0);
    /* 5 rows: the view would serve 15 of its 20 */
    _write_contract(5, "i", "0", "i::BIGINT");
    _expect_rejected("rows dropped from 20 to 15 (25.00%; the snapshot has 5, live rows kept "
                     "make 15), more than max_row_drop_percent 20");
}

/* ---- the sink on its own -------------------------------------------------------------------- */

static void test_sink_counts(void **state) {
    (void)state;
    mt_config("views:\n"
              "  - name: s\n"
              "    join_keys: [{ name: k, type: string }]\n"
              "    ttl: 1h\n"
              "    features:\n"
              "      - { name: a, type: int64 }\n"
              "      - { name: b, type: int64 }\n");
    const struct store_schema *schema = store_view_schema(mt_view("s"));
    char err[256];
    struct store_table_options options = {.shards = 2};
    struct store_table *table = store_table_create(schema, &options, err, sizeof err);
    struct mat_sink *sink = mat_sink_create(schema, table, T_NOW_US);
    assert_non_null(sink);
    const struct {
        const char *key; /* NULL: a null key */
        int64_t age_us;
        bool set_a;
    } rows[] = {
        {"x", 10, true},
        {"x", 20, true},            /* older than the first: superseded */
        {"y", 5, false},            /* kept with a null */
        {NULL, 1, true},            /* null key */
        {"z", -5, true},            /* future */
        {"w", 2 * T_HOUR_US, true}, /* expired */
        {"y", 1, true},             /* newer: replaces */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        mat_sink_begin_row(sink, T_NOW_US - rows[i].age_us, 0);
        if (rows[i].key == NULL) {
            mat_sink_key_null(sink, 0);
        } else {
            char key[8];
            snprintf(key, sizeof key, "%s", rows[i].key);
            mat_sink_key_string(sink, 0, key, 1);
            memset(key, 'Q', sizeof key); /* the sink copied it */
        }
        if (rows[i].set_a) {
            store_row_set_int64(mat_sink_values(sink), 0, (int64_t)i);
        }
        assert_int_equal(mat_sink_end_row(sink), 0);
    }
    const struct mat_sink_stats *s = mat_sink_stats(sink);
    assert_int_equal(s->rows_read, 7);
    assert_int_equal(s->rows_kept, 3);
    assert_int_equal(s->rows_superseded, 1);
    assert_int_equal(s->null_keys, 1);
    assert_int_equal(s->skipped_future, 1);
    assert_int_equal(s->skipped_expired, 1);
    assert_int_equal(s->max_event_ts_us, T_NOW_US - 1);
    assert_int_equal(s->feature_nulls[0], 1); /* the first y */
    assert_int_equal(s->feature_nulls[1], 3); /* b never set */

    /* A key longer than a key may be fails the row and says why. */
    static char long_key[STORE_MAX_KEY_BYTES + 10];
    memset(long_key, 'k', sizeof long_key);
    mat_sink_begin_row(sink, T_NOW_US, 0);
    mat_sink_key_string(sink, 0, long_key, sizeof long_key);
    assert_int_equal(mat_sink_end_row(sink), -1);
    assert_non_null(strstr(mat_sink_error(sink), "join key k is"));
    mat_sink_destroy(sink);
    store_table_destroy(table);
}

int main(void) {
    store_rcu_thread_online();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_latest_row, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_ttl_and_future, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_composite_keys, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_incremental, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_contract_rules, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_and_truncated, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_updates_during_load, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_updates_before_load_newest_event_time_wins, mt_setup,
                                        mt_teardown),
        cmocka_unit_test_setup_teardown(test_contract_drop_counts_live_rows_the_swap_keeps,
                                        mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_sink_counts, mt_setup, mt_teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    store_rcu_thread_offline();
    return failed;
}
