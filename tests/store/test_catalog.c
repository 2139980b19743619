#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fixtures.h"
#include "store/catalog.h"
#include "store/rcu.h"
#include "store/table.h"

static char err[256];

static struct store_schema *_schema(const char *name) {
    struct store_schema *s = store_schema_create(name, 0);
    store_schema_add_key(s, "id", STORE_KEY_INT64, err, sizeof err);
    store_schema_add_feature(s, "x", STORE_TYPE_INT64, err, sizeof err);
    store_schema_finalize(s, err, sizeof err);
    return s;
}

static struct store_table *_table_with(const struct store_schema *s, int64_t id, int64_t x) {
    struct store_table *t = store_table_create(s, NULL, err, sizeof err);
    struct store_row_builder b;
    store_row_builder_init(&b, s);
    store_row_builder_reset(&b, 1, 0);
    store_row_set_int64(&b, 0, x);
    uint8_t kb[8];
    struct store_key key = fixture_int_key(id, kb);
    assert_int_equal(store_table_upsert(t, &key, &b), STORE_UPSERT_INSERTED);
    store_row_builder_deinit(&b);
    store_table_seal(t);
    return t;
}

static void test_views_are_found_by_name(void **state) {
    (void)state;
    struct store_catalog *c = store_catalog_create(8);
    assert_int_equal(store_catalog_add_view(c, _schema("users"), err, sizeof err), 0);
    assert_int_equal(store_catalog_add_view(c, _schema("items"), err, sizeof err), 0);
    assert_int_equal(store_catalog_add_view(c, _schema("users"), err, sizeof err), -1);
    assert_string_equal(err, "view users already exists");
    struct store_schema *unfinished = store_schema_create("raw", 0);
    assert_int_equal(store_catalog_add_view(c, unfinished, err, sizeof err), -1);
    assert_int_equal(store_catalog_count(c), 2);
    assert_int_equal(store_catalog_shards(c), 8);
    assert_null(store_catalog_create(12)); /* not a power of two */
    store_read_lock();
    struct store_view *items = store_catalog_find(c, "items");
    assert_non_null(items);
    assert_ptr_equal(store_catalog_at(c, 1), items);
    assert_null(store_catalog_at(c, 2));
    assert_null(store_catalog_find(c, "nope"));
    assert_string_equal(store_view_schema(items)->view, "items");
    assert_int_equal(store_view_version(items), 0);
    struct store_table_stats st;
    store_table_stats(store_view_table(items), &st);
    assert_int_equal(st.rows, 0); /* a new view serves an empty table */
    store_read_unlock();
    store_catalog_destroy(c);
}

static void test_swap_publishes_whole_snapshots_with_versions(void **state) {
    (void)state;
    struct store_catalog *c = store_catalog_create(8);
    assert_int_equal(store_catalog_add_view(c, _schema("users"), err, sizeof err), 0);
    struct store_view *v = store_catalog_find(c, "users");
    const struct store_schema *s = store_view_schema(v);
    for (int64_t gen = 1; gen <= 3; gen++) {
        assert_int_equal(store_view_swap_table(v, _table_with(s, gen, gen * 10), gen * 1000), gen);
        assert_int_equal(store_view_version(v), gen);
        assert_int_equal(store_view_loaded_at_us(v), gen * 1000);
        store_read_lock();
        struct store_table *t = store_view_table(v);
        uint8_t kb[8];
        struct store_key key = fixture_int_key(gen, kb);
        const struct store_row *row = store_table_get(t, &key);
        assert_non_null(row);
        struct store_value val;
        store_row_get(s, row, 0, &val);
        assert_int_equal(val.i64, gen * 10);
        key = fixture_int_key(gen - 1, kb);
        assert_null(store_table_get(t, &key)); /* the previous snapshot's row is gone */
        store_read_unlock();
    }
    /* retired tables are freed after their grace period (ASan reports it if not) */
    store_rcu_barrier();
    store_catalog_destroy(c);
}

int main(void) {
    store_rcu_thread_online();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_views_are_found_by_name),
        cmocka_unit_test(test_swap_publishes_whole_snapshots_with_versions),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    store_rcu_thread_offline();
    return failed;
}
