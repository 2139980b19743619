/*
 * The commit (materializer/snapshot/commit.c) and the loads thread's queue of pushed
 * snapshots (mat_request_commit), built in C: a schema, a catalog, staging tables and
 * mat_view_config values, no config file. The commit is the one sequence every new snapshot
 * goes through; these check its steps one by one: the seal (means), each contract verdict
 * leaving the live snapshot as it was, the stream position, the live rows carried over, the
 * updates made during the build replayed, and that the load has ended whatever the outcome.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "materializer/snapshot/snapshot.h"
#include "store/catalog.h"
#include "store/rcu.h"
#include "store/row.h"
#include "store/schema.h"
#include "store/table.h"

#define HOUR_US (3600LL * 1000000)
#define T0_US   (1717200000LL * 1000000) /* the rows' event times count from here */

static char err[512];

/* View "v": int64 key id, double x with `default: mean`. */
static struct store_schema *_schema(void) {
    struct store_schema *s = store_schema_create("v", 0);
    assert_int_equal(store_schema_add_key(s, "id", STORE_KEY_INT64, err, sizeof err), 0);
    assert_int_equal(store_schema_add_feature(s, "x", STORE_TYPE_DOUBLE, err, sizeof err), 0);
    assert_int_equal(store_schema_set_default(s, 0, STORE_DEFAULT_MEAN, NULL, err, sizeof err), 0);
    assert_int_equal(store_schema_finalize(s, err, sizeof err), 0);
    return s;
}

static struct store_key _key(int64_t id, uint8_t buf[8]) {
    for (int i = 0; i < 8; i++) {
        buf[i] = (uint8_t)((uint64_t)id >> (8 * i));
    }
    return (struct store_key){buf, 8, store_key_hash(buf, 8)};
}

struct fixture {
    struct store_catalog *catalog;
    struct store_view *view;
    struct store_row_builder b;
};

static int _setup(void **state) {
    static struct fixture f;
    memset(&f, 0, sizeof f);
    f.catalog = store_catalog_create(4);
    assert_int_equal(store_catalog_add_view(f.catalog, _schema(), err, sizeof err), 0);
    f.view = store_catalog_find(f.catalog, "v");
    assert_int_equal(store_row_builder_init(&f.b, store_view_schema(f.view)), 0);
    *state = &f;
    return 0;
}

static int _teardown(void **state) {
    struct fixture *f = *state;
    store_row_builder_deinit(&f->b);
    store_rcu_barrier();
    store_catalog_destroy(f->catalog);
    return 0;
}

/* A staging table for the view with ids [from, to) at x = id, event time T0 + hours. */
static struct store_table *_staging(struct fixture *f, int64_t from, int64_t to, int64_t hours) {
    struct store_table_options options = {.shards = 4};
    struct store_table *t =
        store_table_create(store_view_schema(f->view), &options, err, sizeof err);
    assert_non_null(t);
    for (int64_t id = from; id < to; id++) {
        uint8_t kb[8];
        struct store_key key = _key(id, kb);
        store_row_builder_reset(&f->b, T0_US + hours * HOUR_US, 0);
        store_row_set_double(&f->b, 0, (double)id);
        assert_int_equal(store_table_upsert(t, &key, &f->b), STORE_UPSERT_INSERTED);
    }
    return t;
}

/* The served x of entity `id`, or NAN when it has no row. */
static double _x(struct fixture *f, int64_t id) {
    uint8_t kb[8];
    struct store_key key = _key(id, kb);
    store_read_lock();
    struct store_table *t = store_view_table(f->view);
    const struct store_row *row = store_table_get(t, &key);
    struct store_value v = {0};
    bool has;
    double x = row != NULL && store_table_read(t, row, 0, T0_US, &v, &has) == STORE_PRESENT
                   ? v.f64
                   : (double)NAN;
    store_read_unlock();
    return x;
}

static uint64_t _rows(struct fixture *f) {
    struct store_table_stats st;
    store_read_lock();
    store_table_stats(store_view_table(f->view), &st);
    store_read_unlock();
    return st.rows;
}

static void test_commit_seals_records_and_swaps(void **state) {
    struct fixture *f = *state;
    assert_int_equal(store_view_load_begin(f->view), 0);
    struct mat_commit_result r;
    assert_int_equal(
        mat_commit_snapshot(f->view, _staging(f, 1, 5, 0), NULL, 0, "1717-3", T0_US, &r), 0);
    assert_int_equal(r.outcome, MAT_LOADED);
    assert_int_equal(r.version, 1);
    assert_int_equal(r.table_rows, 4);
    assert_string_equal(r.error, "");
    assert_true(_x(f, 3) == 3.0);
    char position[STORE_STREAM_POSITION_LEN];
    assert_true(store_view_stream_position(f->view, position, sizeof position));
    assert_string_equal(position, "1717-3");
    /* sealed: the mean default is the mean of 1..4 */
    store_read_lock();
    struct store_value mean;
    assert_true(store_table_default(store_view_table(f->view), 0, &mean));
    assert_true(mean.f64 == 2.5);
    store_read_unlock();
    /* the load ended: another can begin */
    assert_int_equal(store_view_load_begin(f->view), 0);
    store_view_load_abort(f->view);
}

static void test_contract_verdicts_leave_the_live_snapshot(void **state) {
    struct fixture *f = *state;
    struct mat_commit_result r;
    assert_int_equal(store_view_load_begin(f->view), 0);
    assert_int_equal(mat_commit_snapshot(f->view, _staging(f, 1, 11, 0), NULL, 0, NULL, T0_US, &r),
                     0);
    struct mat_contract contract;
    mat_contract_init(&contract);

    contract.min_rows = 5;
    assert_int_equal(store_view_load_begin(f->view), 0);
    assert_int_equal(
        mat_commit_snapshot(f->view, _staging(f, 100, 103, 1), &contract, 0, NULL, T0_US, &r), -1);
    assert_int_equal(r.outcome, MAT_REJECTED);
    assert_int_equal(r.version, 0);
    assert_string_equal(r.error, "view v: contract: 3 rows, fewer than min_rows 5");

    mat_contract_init(&contract);
    contract.max_row_drop_percent = 20; /* 10 rows now: 7 would drop 30 % */
    assert_int_equal(store_view_load_begin(f->view), 0);
    assert_int_equal(
        mat_commit_snapshot(f->view, _staging(f, 1, 8, 1), &contract, 0, NULL, T0_US, &r), -1);
    assert_int_equal(r.outcome, MAT_REJECTED);
    assert_non_null(strstr(r.error, "rows dropped from 10 to 7 (30.00%), more than "
                                    "max_row_drop_percent 20"));

    mat_contract_init(&contract);
    contract.nfeatures = 1;
    contract.features[0] = (struct mat_feature_check){
        .feature = 0, .max_null_rate = 1, .has_range = true, .range_min = 0, .range_max = 5};
    assert_int_equal(store_view_load_begin(f->view), 0);
    assert_int_equal(
        mat_commit_snapshot(f->view, _staging(f, 1, 11, 1), &contract, 0, NULL, T0_US, &r), -1);
    assert_non_null(strstr(r.error, "feature x has 5 values outside range [0, 5]"));

    /* null keys fail every view, contract or not */
    assert_int_equal(store_view_load_begin(f->view), 0);
    assert_int_equal(mat_commit_snapshot(f->view, _staging(f, 1, 11, 1), NULL, 2, NULL, T0_US, &r),
                     -1);
    assert_non_null(strstr(r.error, "2 rows have a null join key"));

    /* a position that does not fit */
    char longer[STORE_STREAM_POSITION_LEN + 1];
    memset(longer, '7', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    assert_int_equal(store_view_load_begin(f->view), 0);
    assert_int_equal(
        mat_commit_snapshot(f->view, _staging(f, 1, 11, 1), NULL, 0, longer, T0_US, &r), -1);
    assert_non_null(strstr(r.error, "stream position longer than"));

    /* none of them changed what is served, and each ended its load */
    assert_int_equal(store_view_version(f->view), 1);
    assert_int_equal(_rows(f), 10);
    assert_true(_x(f, 7) == 7.0);
    assert_int_equal(store_view_load_begin(f->view), 0);
    store_view_load_abort(f->view);
}

static void test_newer_live_rows_and_updates_during_the_build_survive(void **state) {
    struct fixture *f = *state;
    uint8_t kb[8];
    struct store_key key;
    /* before the build: a live row newer than the snapshot will have, one older */
    key = _key(1, kb);
    store_row_builder_reset(&f->b, T0_US + 10 * HOUR_US, 0);
    store_row_set_double(&f->b, 0, 100.0);
    assert_int_equal(store_view_upsert(f->view, &key, &f->b), STORE_UPSERT_INSERTED);
    key = _key(2, kb);
    store_row_builder_reset(&f->b, T0_US - HOUR_US, 0);
    store_row_set_double(&f->b, 0, 200.0);
    assert_int_equal(store_view_upsert(f->view, &key, &f->b), STORE_UPSERT_INSERTED);

    assert_int_equal(store_view_load_begin(f->view), 0);
    struct store_table *staging = _staging(f, 1, 4, 0);
    /* during the build: an update the log replays */
    key = _key(3, kb);
    store_row_builder_reset(&f->b, T0_US + HOUR_US, 0);
    store_row_set_double(&f->b, 0, 300.0);
    assert_int_equal(store_view_upsert(f->view, &key, &f->b), STORE_UPSERT_INSERTED);

    struct mat_commit_result r;
    assert_int_equal(mat_commit_snapshot(f->view, staging, NULL, 0, NULL, T0_US, &r), 0);
    assert_int_equal(r.updates_replayed, 1);
    assert_true(_x(f, 1) == 100.0); /* the live row is newer than the snapshot's */
    assert_true(_x(f, 2) == 2.0);   /* the snapshot's is newer */
    assert_true(_x(f, 3) == 300.0); /* replayed */
    assert_int_equal(_rows(f), 3);
}

/* ---- the loads thread's queue --------------------------------------------------------- */

struct done {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int calls;
    pthread_t thread; /* where done ran */
    struct mat_commit_result result;
};

static void _done(const struct mat_commit_result *result, void *ctx) {
    struct done *d = ctx;
    pthread_mutex_lock(&d->lock);
    d->result = *result;
    d->thread = pthread_self();
    d->calls++;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

static void _wait_done(struct done *d, int calls) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    pthread_mutex_lock(&d->lock);
    while (d->calls < calls) {
        assert_int_equal(pthread_cond_timedwait(&d->cond, &d->lock, &until), 0);
    }
    pthread_mutex_unlock(&d->lock);
}

static void test_requested_commits_run_on_the_loads_thread_with_the_views_contract(void **s) {
    struct fixture *f = *s;
    /* The scheduler's view of "v": no source, a contract of min_rows 3. */
    struct mat_view_config view = {.name = "v"};
    mat_contract_init(&view.contract);
    view.contract.min_rows = 3;
    const struct mat_view_config *views[] = {&view};
    struct mat_options options;
    mat_options_init(&options);
    assert_int_equal(mat_setup(f->catalog, views, 1, &options, err, sizeof err), 0);

    struct done d = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, {0}};
    assert_int_equal(store_view_load_begin(f->view), 0);
    assert_int_equal(
        mat_request_commit(f->view, _staging(f, 1, 3, 0), NULL, _done, &d, err, sizeof err), 0);
    _wait_done(&d, 1);
    assert_false(pthread_equal(d.thread, pthread_self()));
    assert_int_equal(d.result.outcome, MAT_REJECTED);
    assert_string_equal(d.result.error, "view v: contract: 2 rows, fewer than min_rows 3");
    assert_int_equal(store_view_version(f->view), 0);

    assert_int_equal(store_view_load_begin(f->view), 0);
    assert_int_equal(
        mat_request_commit(f->view, _staging(f, 1, 6, 0), "42-0", _done, &d, err, sizeof err), 0);
    _wait_done(&d, 2);
    assert_int_equal(d.result.outcome, MAT_LOADED);
    assert_int_equal(d.result.version, 1);
    assert_int_equal(_rows(f), 5);
    char position[STORE_STREAM_POSITION_LEN];
    assert_true(store_view_stream_position(f->view, position, sizeof position));
    assert_string_equal(position, "42-0");
    mat_teardown();

    /* Without a scheduler nothing is handed over: the caller keeps the load and the table. */
    assert_int_equal(store_view_load_begin(f->view), 0);
    struct store_table *kept = _staging(f, 1, 2, 0);
    assert_int_equal(mat_request_commit(f->view, kept, NULL, _done, &d, err, sizeof err), -1);
    assert_non_null(strstr(err, "not running"));
    store_view_load_abort(f->view);
    store_table_destroy(kept);
    assert_int_equal(d.calls, 2);
}

int main(void) {
    store_rcu_thread_online();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_seals_records_and_swaps, _setup, _teardown),
        cmocka_unit_test_setup_teardown(test_contract_verdicts_leave_the_live_snapshot, _setup,
                                        _teardown),
        cmocka_unit_test_setup_teardown(test_newer_live_rows_and_updates_during_the_build_survive,
                                        _setup, _teardown),
        cmocka_unit_test_setup_teardown(
            test_requested_commits_run_on_the_loads_thread_with_the_views_contract, _setup,
            _teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    store_rcu_thread_offline();
    return failed;
}
