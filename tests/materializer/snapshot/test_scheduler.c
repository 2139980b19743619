/*
 * The scheduler thread: loads every view with a source at start, retries a failed one with
 * backoff until its files appear, and runs on-demand loads (tickets) from another path.
 */
#include "mat_test.h"

#include <time.h>

#include "common/clock.h"

static const char YAML[] = "views:\n"
                           "  - name: good\n"
                           "    join_keys: [{ name: id, type: int64 }]\n"
                           "    ttl: 0\n"
                           "    source: { type: parquet, path: \"@DIR@/good\", "
                           "event_timestamp_column: ev }\n"
                           "    features:\n"
                           "      - { name: x, type: double }\n"
                           "  - name: late\n"
                           "    join_keys: [{ name: id, type: int64 }]\n"
                           "    ttl: 0\n"
                           "    refresh_interval: 1h\n"
                           "    source: { type: parquet, path: \"@DIR@/late\", "
                           "event_timestamp_column: ev }\n"
                           "    features:\n"
                           "      - { name: x, type: double }\n"
                           "  - name: pushed_only\n"
                           "    join_keys: [{ name: id, type: int64 }]\n"
                           "    ttl: 0\n"
                           "    features:\n"
                           "      - { name: x, type: double }\n";

static void _write(const char *file, double x) {
    char select[256];
    snprintf(select, sizeof select,
             "SELECT i AS id, TIMESTAMP '2024-05-01' AS ev, %.17g::DOUBLE AS x FROM range(10) t(i)",
             x);
    mt_write(file, NULL, select);
}

/* Polls the status of `view` until `done` holds for it, for at most 20 s. */
static struct mat_view_status _wait_for(const char *view,
                                        bool (*done)(const struct mat_view_status *s)) {
    struct mat_view_status s;
    for (int i = 0; i < 2000; i++) {
        assert_true(mat_view_status(view, &s));
        if (done(&s)) {
            return s;
        }
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    print_error("view %s: gave up waiting; last error: %s\n", view, s.last.error);
    fail();
    return s;
}

static bool _loaded_once(const struct mat_view_status *s) {
    return s->loads_completed >= 1 && !s->loading;
}

static bool _failed_twice(const struct mat_view_status *s) {
    return s->consecutive_failures >= 2 && !s->loading;
}

static void test_scheduler(void **state) {
    (void)state;
    mt_config(YAML);
    _write("good/a.parquet", 1.5);
    struct mat_options options;
    mat_options_init(&options);
    options.retry_first_us = 50 * 1000; /* 50 ms, 100 ms, ... */
    options.duckdb_threads = 2;
    char err[256];
    assert_int_equal(
        mat_setup(mt.catalog, mt.config->snapshots, mt.config->nviews, &options, err, sizeof err),
        0);

    struct mat_view_status s = _wait_for("good", _loaded_once);
    assert_int_equal(s.last.outcome, MAT_LOADED);
    assert_int_equal(s.last.version, 1);
    assert_int_equal(s.last.table_rows, 10);
    assert_int_equal(s.next_load_us, 0); /* no refresh interval: nothing scheduled */
    assert_int_equal(store_view_version(mt_view("good")), 1);

    /* The view whose files are missing fails, and retries with growing backoff. */
    s = _wait_for("late", _failed_twice);
    assert_int_equal(s.last.outcome, MAT_SOURCE_FAILED);
    assert_non_null(strstr(s.last.error, "view late: "));
    assert_non_null(strstr(s.last.error, "No such file or directory"));
    assert_true(s.next_load_us > s.last_load_end_us);
    assert_true(s.next_load_us - s.last_load_end_us <= 1000 * 1000);
    assert_int_equal(s.loads_completed, 0);

    /* Once the files exist, the next retry loads them and the refresh interval takes over. */
    _write("late/a.parquet", 2.5);
    s = _wait_for("late", _loaded_once);
    assert_int_equal(s.consecutive_failures, 0);
    assert_int_equal(s.last_ok.outcome, MAT_LOADED);
    int64_t refresh_in = s.next_load_us - s.last_load_end_us;
    assert_true(refresh_in > 3590LL * 1000000 && refresh_in <= 3600LL * 1000000);

    /* A view without a source is known but never scheduled. */
    assert_true(mat_view_status("pushed_only", &s));
    assert_false(s.has_source);
    assert_int_equal(s.next_load_us, 0);

    /* On demand, from another path: the ticket reports the new version. */
    _write("other/b.parquet", 7.25);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/other", mt.dir);
    struct mat_ticket *t = mat_request_load("good", path, NULL, NULL, NULL, err, sizeof err);
    assert_non_null(t);
    struct mat_load_result r;
    assert_true(mat_ticket_wait(t, 20 * 1000 * 1000, &r));
    mat_ticket_release(t);
    assert_int_equal(r.outcome, MAT_LOADED);
    assert_int_equal(r.version, 2);
    assert_non_null(strstr(r.source, "parquet:"));
    assert_non_null(strstr(r.source, "/other"));
    store_read_lock();
    struct store_value v;
    assert_true(mt_value("good", mt_row_i64("good", 3), "x", &v));
    assert_true(v.f64 == 7.25);
    store_read_unlock();

    /* A failing on-demand load reports its error and leaves the snapshot as it was. */
    snprintf(path, sizeof path, "%s/nowhere", mt.dir);
    t = mat_request_load("good", path, NULL, NULL, NULL, err, sizeof err);
    assert_non_null(t);
    assert_true(mat_ticket_wait(t, -1, &r));
    mat_ticket_release(t);
    assert_int_equal(r.outcome, MAT_SOURCE_FAILED);
    assert_non_null(strstr(r.error, "nowhere"));
    assert_int_equal(store_view_version(mt_view("good")), 2);

    assert_null(mat_request_load("no_such_view", NULL, NULL, NULL, NULL, err, sizeof err));
    assert_non_null(strstr(err, "unknown view"));
    /* A view without a source is refused at once, not queued to fail. */
    enum mat_refusal refusal = MAT_REFUSED_NOT_RUNNING;
    assert_null(mat_request_load("pushed_only", NULL, NULL, NULL, &refusal, err, sizeof err));
    assert_int_equal(refusal, MAT_REFUSED_NO_SOURCE);
    assert_non_null(strstr(err, "view pushed_only has no source to load from"));

    mat_teardown();
    assert_null(mat_request_load("good", NULL, NULL, NULL, NULL, err, sizeof err));
    assert_non_null(strstr(err, "not running"));
}

static bool _loaded_twice(const struct mat_view_status *s) {
    return s->loads_completed >= 2 && !s->loading;
}

/*
 * Regression: while a PushSnapshot held a view's load, a LoadSnapshot or a refresh coming due
 * for it crashed the daemon: the "another load is in progress" message read the view's name
 * through the scheduler's copy of its config, which carries no schema. Both must fail with a
 * message naming the view, leave the snapshot alone, and load normally once the view is free.
 */
static void test_load_while_a_push_holds_the_view(void **state) {
    (void)state;
    mt_config("views:\n"
              "  - name: refreshed\n"
              "    join_keys: [{ name: id, type: int64 }]\n"
              "    ttl: 0\n"
              "    refresh_interval: 1s\n"
              "    source: { type: parquet, path: \"@DIR@/refreshed\", "
              "event_timestamp_column: ev }\n"
              "    features:\n"
              "      - { name: x, type: double }\n");
    _write("refreshed/a.parquet", 1.5);
    struct mat_options options;
    mat_options_init(&options);
    options.retry_first_us = 50 * 1000;
    options.duckdb_threads = 1;
    char err[256];
    assert_int_equal(
        mat_setup(mt.catalog, mt.config->snapshots, mt.config->nviews, &options, err, sizeof err),
        0);
    struct mat_view_status s = _wait_for("refreshed", _loaded_once);
    assert_int_equal(s.last.version, 1);

    /* What PushSnapshot's first message does: claim the view's load. */
    struct store_view *view = mt_view("refreshed");
    while (store_view_load_begin(view) != 0) {
        nanosleep(&(struct timespec){0, 1000 * 1000}, NULL); /* a refresh may be running */
    }

    /* On demand (LoadSnapshot): */
    struct mat_ticket *t = mat_request_load("refreshed", NULL, NULL, NULL, NULL, err, sizeof err);
    assert_non_null(t);
    struct mat_load_result r;
    assert_true(mat_ticket_wait(t, 20 * 1000 * 1000, &r));
    mat_ticket_release(t);
    assert_int_equal(r.outcome, MAT_SOURCE_FAILED);
    assert_string_equal(r.error, "view refreshed: another load of this view is in progress (a "
                                 "PushSnapshot or a load from the source); it was not started");

    /* Scheduled (the 1 s refresh comes due while the view is held): */
    assert_true(mat_view_status("refreshed", &s));
    uint64_t failed_before = s.loads_failed;
    for (int i = 0; i < 2000 && s.loads_failed == failed_before; i++) {
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
        assert_true(mat_view_status("refreshed", &s));
    }
    assert_true(s.loads_failed > failed_before);
    assert_non_null(strstr(s.last.error, "view refreshed: another load of this view"));
    assert_int_equal(store_view_version(view), 1);

    /* Released (the push aborted): the next retry loads. */
    store_view_load_abort(view);
    s = _wait_for("refreshed", _loaded_twice);
    assert_true(store_view_version(view) >= 2);
    mat_teardown();
}

static bool _loading(const struct mat_view_status *s) {
    return s->loading;
}

/* A 5M-row snapshot: a load of over a second (more under the sanitizers). */
static void _write_big(const char *file) {
    mt_write(file, NULL,
             "SELECT i AS id, TIMESTAMP '2024-05-01' AS ev, i::DOUBLE AS x FROM range(5000000) "
             "t(i)");
}

/*
 * A view whose load takes long (a big snapshot here; a source that hangs until its timeouts
 * end the load, in the integration tests) holds one load thread; the other views' loads,
 * refreshes and requests go on on the other. Its own queued request waits for it: one view's
 * loads never overlap.
 */
static void test_a_long_load_does_not_hold_back_the_other_views(void **state) {
    (void)state;
    mt_config("views:\n"
              "  - name: slow\n"
              "    join_keys: [{ name: id, type: int64 }]\n"
              "    ttl: 0\n"
              "    source: { type: parquet, path: \"@DIR@/slow.parquet\", "
              "event_timestamp_column: ev }\n"
              "    features:\n"
              "      - { name: x, type: double }\n"
              "  - name: fine\n"
              "    join_keys: [{ name: id, type: int64 }]\n"
              "    ttl: 0\n"
              "    refresh_interval: 200ms\n"
              "    source: { type: parquet, path: \"@DIR@/fine\", event_timestamp_column: ev }\n"
              "    features:\n"
              "      - { name: x, type: double }\n");
    _write("fine/a.parquet", 1.5);
    _write_big("slow.parquet");
    struct mat_options options;
    mat_options_init(&options);
    assert_int_equal(options.load_threads, 2);
    options.duckdb_threads = 1;
    char err[256];
    assert_int_equal(
        mat_setup(mt.catalog, mt.config->snapshots, mt.config->nviews, &options, err, sizeof err),
        0);
    _wait_for("slow", _loading);
    struct mat_view_status s = _wait_for("fine", _loaded_twice); /* its refresh landed */
    assert_int_equal(s.last.outcome, MAT_LOADED);
    struct mat_ticket *fine = mat_request_load("fine", NULL, NULL, NULL, NULL, err, sizeof err);
    struct mat_ticket *slow = mat_request_load("slow", NULL, NULL, NULL, NULL, err, sizeof err);
    assert_non_null(fine);
    assert_non_null(slow);
    struct mat_load_result r;
    assert_true(mat_ticket_wait(fine, 20 * 1000 * 1000, &r));
    assert_int_equal(r.outcome, MAT_LOADED);
    assert_true(mat_view_status("slow", &s));
    if (!s.loading) {
        fail_msg("the slow load ended before the other view loaded twice: a faster machine "
                 "than this test expects?");
    }
    assert_int_equal(s.loads_completed + s.loads_failed, 0);
    assert_false(mat_ticket_wait(slow, 0, &r)); /* queued behind the view's own load */
    assert_true(mat_ticket_wait(slow, 120 * 1000 * 1000, &r));
    assert_int_equal(r.outcome, MAT_LOADED);
    assert_int_equal(r.version, 2); /* after the first: never beside it */
    mat_ticket_release(fine);
    mat_ticket_release(slow);
    mat_teardown();
}

/* Teardown does not wait for a long load to finish: it interrupts it. */
static void test_teardown_interrupts_a_load(void **state) {
    (void)state;
    mt_config("views:\n"
              "  - name: big\n"
              "    join_keys: [{ name: id, type: int64 }]\n"
              "    ttl: 0\n"
              "    source: { type: parquet, path: \"@DIR@/big.parquet\", "
              "event_timestamp_column: ev }\n"
              "    features:\n"
              "      - { name: x, type: double }\n");
    _write_big("big.parquet");
    struct mat_options options;
    mat_options_init(&options);
    options.duckdb_threads = 1;
    char err[256];
    assert_int_equal(
        mat_setup(mt.catalog, mt.config->snapshots, mt.config->nviews, &options, err, sizeof err),
        0);
    _wait_for("big", _loading);
    nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
    int64_t start = clock_mono_us();
    mat_teardown();
    double took = (double)(clock_mono_us() - start) / 1e6;
    print_message("    teardown took %.2f s\n", took);
    assert_true(took < 1.5);
    assert_int_equal(store_view_version(mt_view("big")), 0);
}

/* A path override is judged on its string: under an allowed directory, or refused. */
static bool _allowed(const struct mat_source *source, const char *path) {
    char err[512] = "";
    bool ok = mat_source_path_allowed(source, path, err, sizeof err);
    if (!ok) {
        assert_true(strstr(err, "allowed_paths") != NULL || strstr(err, "\"..\"") != NULL);
    }
    return ok;
}

static void test_allowed_paths(void **state) {
    (void)state;
    /* the default: the folder before the glob's first wildcard */
    struct mat_source glob = {.type = MAT_SOURCE_PARQUET, .path = "/data/users/*/x.parquet"};
    assert_true(_allowed(&glob, "/data/users"));
    assert_true(_allowed(&glob, "/data/users/v2/*.parquet"));
    assert_true(_allowed(&glob, "//data/./users//v2/"));
    assert_false(_allowed(&glob, "/data/users/../secrets/x.parquet"));
    assert_false(_allowed(&glob, "/data/users/v2/.."));
    assert_false(_allowed(&glob, "/data/usersX/a.parquet"));
    assert_false(_allowed(&glob, "/data/user*/a.parquet")); /* could match outside */
    assert_false(_allowed(&glob, "/data"));
    assert_false(_allowed(&glob, "/etc/passwd"));
    assert_false(_allowed(&glob, ""));
    /* a file or a directory: the folder holding it */
    struct mat_source file = {.type = MAT_SOURCE_PARQUET, .path = "/data/users.parquet"};
    assert_true(_allowed(&file, "/data/users_v2.parquet"));
    assert_false(_allowed(&file, "/srv/users.parquet"));
    /* listed: each may say ".." itself (the config is trusted), and [] allows nothing */
    char *listed[] = {"/a", "/b/../c", NULL};
    struct mat_source list = {
        .type = MAT_SOURCE_PARQUET, .path = "/data/x", .allowed_paths = listed};
    assert_true(_allowed(&list, "/a/x.parquet"));
    assert_true(_allowed(&list, "/c/y/*.parquet"));
    assert_false(_allowed(&list, "/b/x.parquet"));
    assert_false(_allowed(&list, "/data/x2")); /* the default no longer applies */
    char *none[] = {NULL};
    struct mat_source nothing = {
        .type = MAT_SOURCE_PARQUET, .path = "/data/x", .allowed_paths = none};
    assert_false(_allowed(&nothing, "/data/x"));
    /* postgres: nothing unless listed */
    struct mat_source pg = {.type = MAT_SOURCE_POSTGRES, .table = "t"};
    assert_false(_allowed(&pg, "/data/x"));
    pg.allowed_paths = listed;
    assert_true(_allowed(&pg, "/a/b"));
    /* relative paths are taken from the working directory, on both sides */
    char cwd[PATH_MAX], inside[PATH_MAX + 16];
    assert_non_null(getcwd(cwd, sizeof cwd));
    struct mat_source rel = {.type = MAT_SOURCE_PARQUET, .path = "snaps/users/*.parquet"};
    snprintf(inside, sizeof inside, "%s/snaps/users/v2", cwd);
    assert_true(_allowed(&rel, inside));
    assert_true(_allowed(&rel, "snaps/users/v3"));
    assert_false(_allowed(&rel, "snaps/other"));
}

int main(void) {
    store_rcu_thread_online();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allowed_paths),
        cmocka_unit_test_setup_teardown(test_scheduler, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_load_while_a_push_holds_the_view, mt_setup,
                                        mt_teardown),
        cmocka_unit_test_setup_teardown(test_a_long_load_does_not_hold_back_the_other_views,
                                        mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_teardown_interrupts_a_load, mt_setup, mt_teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    store_rcu_thread_offline();
    return failed;
}
