/* The sweeper thread reclaims expired rows from a live view while a reader keeps looking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "store/catalog.h"
#include "store/key.h"
#include "store/rcu.h"
#include "store/table.h"
#include "daemon/sweeper.h"
#include "common/clock.h"

#define SEC INT64_C(1000000)

static struct store_key _key(int64_t id, uint8_t buf[8]) {
    memcpy(buf, &id, 8);
    return (struct store_key){buf, 8, store_key_hash(buf, 8)};
}

static uint64_t _rows(struct store_view *view) {
    struct store_table_stats st;
    store_read_lock();
    store_table_stats(store_view_table(view), &st);
    store_read_unlock();
    return st.rows;
}

static void test_sweeper_reclaims_only_expired_rows(void **state) {
    (void)state;
    char err[256];
    struct store_schema *s = store_schema_create("sessions", 60 * SEC);
    store_schema_add_key(s, "id", STORE_KEY_INT64, err, sizeof err);
    store_schema_add_feature(s, "clicks", STORE_TYPE_INT64, err, sizeof err);
    assert_int_equal(store_schema_finalize(s, err, sizeof err), 0);
    struct store_catalog *catalog = store_catalog_create(4);
    assert_int_equal(store_catalog_add_view(catalog, s, err, sizeof err), 0);
    struct store_view *view = store_catalog_find(catalog, "sessions");

    struct store_row_builder b;
    store_row_builder_init(&b, store_view_schema(view));
    int64_t now = clock_wall_us();
    store_read_lock();
    for (int64_t id = 0; id < 3000; id++) {
        /* a third are 2 minutes old: past 60 s of TTL plus 30 s of grace */
        int64_t age = id % 3 == 0 ? 120 * SEC : 1 * SEC;
        store_row_builder_reset(&b, now - age, 0);
        store_row_set_int64(&b, 0, id);
        uint8_t kb[8];
        struct store_key key = _key(id, kb);
        store_table_upsert(store_view_table(view), &key, &b);
    }
    store_read_unlock();
    store_row_builder_deinit(&b);
    assert_int_equal(_rows(view), 3000);

    struct sweeper_options options = {.interval_ms = 10, .expiry_grace_us = 30 * SEC};
    assert_int_equal(sweeper_setup(catalog, &options), 0);
    /* Wait for the thread, bounded: the assertion is on the outcome, not the time. */
    for (int i = 0; i < 500 && _rows(view) != 2000; i++) {
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    sweeper_teardown();
    assert_int_equal(_rows(view), 2000);
    assert_int_equal(sweeper_reclaimed(), 1000);
    store_read_lock();
    for (int64_t id = 0; id < 3000; id++) {
        uint8_t kb[8];
        struct store_key key = _key(id, kb);
        assert_int_equal(store_table_get(store_view_table(view), &key) != NULL, id % 3 != 0);
    }
    store_read_unlock();
    store_catalog_destroy(catalog);
}

int main(void) {
    store_rcu_thread_online();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sweeper_reclaims_only_expired_rows),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    store_rcu_thread_offline();
    return failed;
}
