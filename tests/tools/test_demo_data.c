/*
 * The demo's data: fsd-demo-data writes Parquet files that configs/demo.yaml's three views
 * load without a single error, with the entity counts the generator promises and its late
 * rows resolved by latest-row selection (older ones lose, newer ones win).
 */
#include "mat_test.h"

static void _load_demo(const char *view, struct mat_load_result *r) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s/*.parquet", mt.dir, view);
    struct mat_load_params params = {
        .shards = 4,
        .path_override = path,
        .watermark_us = INT64_MIN,
        .now_us = 0, /* the generator's event times are relative to the real clock */
    };
    int rc = mat_load_view(mt_view(view), &config_find_view(mt.config, view)->snapshot, &params, r);
    if (rc != 0) {
        print_error("%s: %s\n", view, r->error);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(r->rows_skipped, 0);
}

static void test_demo_data_loads(void **state) {
    (void)state;
    char cmd[PATH_MAX * 2];
    snprintf(cmd, sizeof cmd, "%s %s > /dev/null", FSD_DEMO_DATA, mt.dir);
    assert_int_equal(system(cmd), 0);

    static char err[CONFIG_ERR_LEN];
    assert_int_equal(
        config_load(FSD_SOURCE_DIR "/configs/demo.yaml", NULL, &mt.config, err, sizeof err), 0);
    mt.catalog = store_catalog_create(4);
    for (size_t i = 0; i < mt.config->nviews; i++) {
        assert_int_equal(store_catalog_add_view(mt.catalog,
                                                store_schema_clone(mt.config->views[i].schema), err,
                                                sizeof err),
                         0);
    }
    struct mat_load_result r;
    _load_demo("user_features", &r);
    /* Late rows: users with id % 50 == 0 or id % 97 == 0 (3,010); the 1,031 with id % 97 == 0
     * are newer and win, the other 1,979 are older and lose. */
    assert_int_equal(r.rows_read, 103010);
    assert_int_equal(r.table_rows, 100000);
    assert_int_equal(r.rows_superseded, 1979);
    store_read_lock();
    struct store_value v;
    const struct store_row *row = mt_row_i64("user_features", 42);
    assert_non_null(row);
    assert_true(mt_value("user_features", row, "embedding", &v));
    assert_int_equal(v.var.count, 16);
    assert_true(mt_value("user_features", row, "country", &v));
    assert_int_equal(v.var.bytes, 2);
    store_read_unlock();

    _load_demo("item_features", &r);
    assert_int_equal(r.table_rows, 20000);
    _load_demo("user_item_features", &r);
    assert_int_equal(r.rows_read, 200000);
    assert_true(r.table_rows > 190000 && r.table_rows <= 200000);
}

int main(void) {
    store_rcu_thread_online();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_demo_data_loads, mt_setup, mt_teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    store_rcu_thread_offline();
    return failed;
}
