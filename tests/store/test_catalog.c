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
    assert_int_equal(store_view_index(items), 1);
    assert_null(store_catalog_at(c, 2));
    assert_null(store_catalog_find(c, "nope"));
    assert_string_equal(store_view_schema(items)->view, "items");
    assert_string_equal(store_view_name(items), "items");
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

static void test_replace_schema_keeps_rows_and_applies_new_ttl(void **state) {
    (void)state;
    struct store_catalog *c = store_catalog_create(8);
    assert_int_equal(store_catalog_add_view(c, _schema("users"), err, sizeof err), 0);
    struct store_view *v = store_catalog_find(c, "users");
    store_view_swap_table(v, _table_with(store_view_schema(v), 7, 70), 1);
    uint8_t kb[8];
    struct store_key key = fixture_int_key(7, kb);
    store_rcu_synchronize();
    /* the same layout with a 10 s TTL and a literal default */
    struct store_schema *next = store_schema_create("users", 10 * 1000000);
    store_schema_add_key(next, "id", STORE_KEY_INT64, err, sizeof err);
    store_schema_add_feature(next, "x", STORE_TYPE_INT64, err, sizeof err);
    struct store_value minus_one = {.type = STORE_TYPE_INT64, .i64 = -1};
    store_schema_set_default(next, 0, STORE_DEFAULT_LITERAL, &minus_one, err, sizeof err);
    store_schema_finalize(next, err, sizeof err);
    assert_int_equal(store_view_replace_schema(v, next, err, sizeof err), 0);
    assert_int_equal(store_view_version(v), 1); /* same data, same version */
    store_read_lock();
    struct store_table *t = store_view_table(v);
    assert_int_equal(store_view_schema(v)->ttl_us, 10 * 1000000);
    const struct store_row *row = store_table_get(t, &key);
    assert_non_null(row);
    struct store_value val;
    bool has;
    assert_int_equal(store_table_read(t, row, 0, 1 + 10 * 1000000, &val, &has), STORE_PRESENT);
    assert_int_equal(val.i64, 70);
    assert_int_equal(store_table_read(t, row, 0, 2 + 10 * 1000000, &val, &has),
                     STORE_OUTSIDE_MAX_AGE);
    assert_true(has && val.i64 == -1);
    store_read_unlock();
    /* another view's schema is refused, and the name stays */
    assert_int_equal(store_view_replace_schema(v, _schema("items"), err, sizeof err), -1);
    assert_string_equal(err, "view users: a schema for view items cannot replace its own");
    assert_string_equal(store_view_name(v), "users");
    /* a different layout is refused */
    struct store_schema *other = store_schema_create("users", 0);
    store_schema_add_key(other, "id", STORE_KEY_STRING, err, sizeof err);
    store_schema_add_feature(other, "x", STORE_TYPE_INT64, err, sizeof err);
    store_schema_finalize(other, err, sizeof err);
    store_read_lock();
    assert_null(store_table_copy(store_view_table(v), other, NULL, err, sizeof err));
    store_read_unlock();
    assert_non_null(strstr(err, "lays rows out differently"));
    store_schema_destroy(other);
    store_rcu_barrier();
    store_catalog_destroy(c);
}

static int64_t _x_of(struct store_view *v, int64_t id) {
    uint8_t kb[8];
    struct store_key key = fixture_int_key(id, kb);
    store_read_lock();
    const struct store_row *row = store_table_get(store_view_table(v), &key);
    int64_t x = INT64_MIN;
    if (row != NULL) {
        struct store_value val;
        store_row_get(store_view_schema(v), row, 0, &val);
        x = val.i64;
    }
    store_read_unlock();
    return x;
}

static enum store_upsert_result _live_put(struct store_view *v, int64_t id, int64_t ev, int64_t x) {
    struct store_row_builder b;
    store_row_builder_init(&b, store_view_schema(v));
    store_row_builder_reset(&b, ev, 0);
    store_row_set_int64(&b, 0, x);
    uint8_t kb[8];
    struct store_key key = fixture_int_key(id, kb);
    enum store_upsert_result r = store_view_upsert(v, &key, &b);
    store_row_builder_deinit(&b);
    return r;
}

static void test_row_images_are_stored_with_their_flags_and_kept_by_a_load(void **state) {
    (void)state;
    struct store_catalog *c = store_catalog_create(8);
    assert_int_equal(store_catalog_add_view(c, _schema("users"), err, sizeof err), 0);
    struct store_view *v = store_catalog_find(c, "users");
    const struct store_schema *s = store_view_schema(v);
    struct store_row_builder b;
    store_row_builder_init(&b, s);
    store_row_builder_reset(&b, 10, 0);
    store_row_set_int64(&b, 0, 77);
    uint8_t kb[8];
    struct store_key key = fixture_int_key(1, kb);
    struct store_row *image = store_row_image(s, &key, &b, 10, 0);
    image->flags |= STORE_ROW_LIVE;
    store_read_lock();
    assert_int_equal(store_view_upsert_image(v, image), STORE_UPSERT_INSERTED);
    assert_int_equal(store_view_upsert_image(v, image), STORE_UPSERT_NOT_NEWER);
    store_read_unlock();
    assert_int_equal(_x_of(v, 1), 77);
    /* During a load it is logged, and the live mark carries it past the swap. */
    assert_int_equal(store_view_load_begin(v), 0);
    struct store_row *tomb = store_row_image(s, &key, NULL, 20, 0);
    tomb->flags |= STORE_ROW_LIVE;
    struct store_key key2 = fixture_int_key(2, (uint8_t[8]){0});
    struct store_row *other = store_row_image(s, &key2, &b, 10, 0);
    other->flags |= STORE_ROW_LIVE;
    store_read_lock();
    assert_int_equal(store_view_upsert_image(v, other), STORE_UPSERT_INSERTED);
    assert_int_equal(store_view_upsert_image(v, tomb), STORE_UPSERT_REPLACED);
    store_read_unlock();
    assert_int_equal(store_view_load_logged(v), 2);
    assert_int_equal(store_view_load_commit(v, _table_with(s, 3, 33), 1), 1);
    assert_int_equal(_x_of(v, 1), INT64_MIN); /* the tombstone */
    assert_int_equal(_x_of(v, 2), 77);
    assert_int_equal(_x_of(v, 3), 33);
    free(image);
    free(tomb);
    free(other);
    store_row_builder_deinit(&b);
    store_rcu_barrier();
    store_catalog_destroy(c);
}

static int _count_row(const struct store_row *row, void *arg) {
    (void)row;
    (*(uint64_t *)arg)++;
    return 0;
}

static void test_a_pinned_table_outlives_its_retirement(void **state) {
    (void)state;
    struct store_catalog *c = store_catalog_create(8);
    assert_int_equal(store_catalog_add_view(c, _schema("users"), err, sizeof err), 0);
    struct store_view *v = store_catalog_find(c, "users");
    const struct store_schema *s = store_view_schema(v);
    store_view_swap_table(v, _table_with(s, 1, 10), 1);
    store_read_lock();
    struct store_table *pinned = store_view_table(v);
    store_table_pin(pinned);
    store_read_unlock();
    /* Swapped out and a grace period gone: without the pin it would be freed now (ASan). */
    store_view_swap_table(v, _table_with(s, 2, 20), 2);
    store_rcu_barrier();
    uint64_t rows = 0;
    store_read_lock();
    for (uint32_t shard = 0; shard < store_table_shards(pinned); shard++) {
        store_table_scan_shard(pinned, shard, _count_row, &rows);
    }
    store_read_unlock();
    assert_int_equal(rows, 1);
    store_table_unpin(pinned); /* the last reference: freed here (LeakSanitizer checks) */
    /* A pin dropped before the grace period ends leaves the freeing to the retirement. */
    store_read_lock();
    struct store_table *current = store_view_table(v);
    store_table_pin(current);
    store_read_unlock();
    store_table_unpin(current);
    store_view_swap_table(v, _table_with(s, 3, 30), 3);
    store_rcu_barrier();
    assert_int_equal(_x_of(v, 3), 30);
    store_catalog_destroy(c);
}

static void test_updates_during_a_load_survive_the_swap(void **state) {
    (void)state;
    struct store_catalog *c = store_catalog_create(8);
    assert_int_equal(store_catalog_add_view(c, _schema("users"), err, sizeof err), 0);
    struct store_view *v = store_catalog_find(c, "users");
    const struct store_schema *s = store_view_schema(v);
    assert_int_equal(_live_put(v, 1, 10, 100), STORE_UPSERT_INSERTED); /* before the load */
    assert_int_equal(store_view_load_begin(v), 0);
    assert_int_equal(store_view_load_begin(v), -1); /* one load at a time */
    /* the schema the load builds for cannot be replaced under it */
    struct store_schema *next = _schema("users");
    assert_int_equal(store_view_replace_schema(v, next, err, sizeof err), -1);
    assert_non_null(strstr(err, "a snapshot load is in progress"));
    /* the snapshot being built says: id 1 = 11 at t=20, id 2 = 22 at t=20 */
    struct store_table *t = store_table_create(s, NULL, err, sizeof err);
    struct store_row_builder b;
    store_row_builder_init(&b, s);
    for (int64_t id = 1; id <= 2; id++) {
        uint8_t kb[8];
        struct store_key key = fixture_int_key(id, kb);
        store_row_builder_reset(&b, 20, 0);
        store_row_set_int64(&b, 0, id * 11);
        store_table_upsert(t, &key, &b);
    }
    store_row_builder_deinit(&b);
    /* meanwhile, live: id 2 updated at t=30 (newer than the snapshot), id 1 at t=15 (older),
     * id 3 new, id 4 deleted at t=40 */
    assert_int_equal(_live_put(v, 2, 30, 2000), STORE_UPSERT_INSERTED);
    assert_int_equal(_live_put(v, 1, 15, 1500), STORE_UPSERT_REPLACED);
    assert_int_equal(_live_put(v, 3, 5, 3000), STORE_UPSERT_INSERTED);
    uint8_t kb[8];
    struct store_key key4 = fixture_int_key(4, kb);
    assert_int_equal(store_view_delete(v, &key4, 40, 0), STORE_UPSERT_INSERTED);
    assert_int_equal(store_view_load_logged(v), 4);
    assert_int_equal(_x_of(v, 2), 2000); /* live writes are visible at once */
    store_table_seal(t);
    assert_int_equal(store_view_load_commit(v, t, 99), 1);
    assert_int_equal(_x_of(v, 1), 11);   /* the snapshot's row was newer than the update */
    assert_int_equal(_x_of(v, 2), 2000); /* the update was newer than the snapshot's row */
    assert_int_equal(_x_of(v, 3), 3000); /* an entity only the updates knew */
    assert_int_equal(_x_of(v, 4), INT64_MIN);
    assert_int_equal(store_view_load_logged(v), 0);
    /* after the load, updates are no longer logged; an aborted load drops its log */
    assert_int_equal(store_view_load_begin(v), 0);
    _live_put(v, 5, 1, 5);
    store_view_load_abort(v);
    assert_int_equal(store_view_load_logged(v), 0);
    assert_int_equal(_x_of(v, 5), 5);
    /* a table built for another schema is refused at commit */
    struct store_schema *other = _schema("users");
    struct store_table *stranger = store_table_create(other, NULL, err, sizeof err);
    assert_int_equal(store_view_load_begin(v), 0);
    assert_int_equal(store_view_load_commit(v, stranger, 1), 0);
    store_table_destroy(stranger);
    store_schema_destroy(other);
    assert_int_equal(store_view_version(v), 1);
    store_rcu_barrier();
    store_catalog_destroy(c);
}

/* A snapshot of (id, event time, x) rows, sealed, for committing into `v`. */
static struct store_table *_snapshot(struct store_view *v, const int64_t (*rows)[3], size_t n) {
    const struct store_schema *s = store_view_schema(v);
    struct store_table *t = store_table_create(s, NULL, err, sizeof err);
    struct store_row_builder b;
    store_row_builder_init(&b, s);
    for (size_t i = 0; i < n; i++) {
        uint8_t kb[8];
        struct store_key key = fixture_int_key(rows[i][0], kb);
        store_row_builder_reset(&b, rows[i][1], 0);
        store_row_set_int64(&b, 0, rows[i][2]);
        assert_int_equal(store_table_upsert(t, &key, &b), STORE_UPSERT_INSERTED);
    }
    store_row_builder_deinit(&b);
    store_table_seal(t);
    return t;
}

static uint64_t _load(struct store_view *v, const int64_t (*rows)[3], size_t n) {
    assert_int_equal(store_view_load_begin(v), 0);
    return store_view_load_commit(v, _snapshot(v, rows, n), 1);
}

static void test_live_updates_before_a_load_survive_the_swap(void **state) {
    (void)state;
    struct store_catalog *c = store_catalog_create(8);
    assert_int_equal(store_catalog_add_view(c, _schema("users"), err, sizeof err), 0);
    struct store_view *v = store_catalog_find(c, "users");
    static const int64_t first[][3] = {{1, 10, 1}, {2, 10, 2}, {3, 10, 3}, {4, 10, 4}};
    assert_int_equal(_load(v, first, 4), 1);
    /* live writes between loads: newer rows for 1 and 2, a delete of 3, a new entity 5 */
    assert_int_equal(_live_put(v, 1, 30, 100), STORE_UPSERT_REPLACED);
    assert_int_equal(_live_put(v, 2, 30, 200), STORE_UPSERT_REPLACED);
    uint8_t kb[8];
    struct store_key key3 = fixture_int_key(3, kb);
    assert_int_equal(store_view_delete(v, &key3, 30, 0), STORE_UPSERT_REPLACED);
    assert_int_equal(_live_put(v, 5, 30, 500), STORE_UPSERT_INSERTED);
    /* the next snapshot has 1 older than the live row, 2 newer, 3 older, no 5 */
    static const int64_t second[][3] = {{1, 20, 11}, {2, 40, 22}, {3, 20, 33}, {4, 20, 44}};
    assert_int_equal(_load(v, second, 4), 2);
    assert_int_equal(_x_of(v, 1), 100);       /* the live row is newer: kept */
    assert_int_equal(_x_of(v, 2), 22);        /* the snapshot's row is newer: it wins */
    assert_int_equal(_x_of(v, 3), INT64_MIN); /* the newer live delete holds */
    assert_int_equal(_x_of(v, 4), 44);
    assert_int_equal(_x_of(v, 5), 500); /* only the live writes knew it: kept */
    /* the marks survive a reload that copies the table, and the next swap keeps the rows */
    struct store_schema *next = _schema("users");
    assert_int_equal(store_view_replace_schema(v, next, err, sizeof err), 0);
    static const int64_t third[][3] = {{1, 25, 111}, {2, 25, 222}, {4, 25, 444}};
    assert_int_equal(_load(v, third, 3), 3);
    assert_int_equal(_x_of(v, 1), 100);
    assert_int_equal(_x_of(v, 2), 222); /* 2's row came from a snapshot: not carried */
    assert_int_equal(_x_of(v, 3), INT64_MIN);
    assert_int_equal(_x_of(v, 5), 500);
    /* rows from the view's own source (an incremental load) are not marked: the next
     * snapshot supersedes them, even when it lacks the entity */
    assert_int_equal(store_view_load_begin(v), 0);
    struct store_row_builder b;
    store_row_builder_init(&b, store_view_schema(v));
    store_row_builder_reset(&b, 50, 0);
    store_row_set_int64(&b, 0, 6000);
    struct store_key key6 = fixture_int_key(6, kb);
    assert_int_equal(store_view_upsert_sourced(v, &key6, &b), STORE_UPSERT_INSERTED);
    store_row_builder_reset(&b, 50, 0);
    store_row_set_int64(&b, 0, 1000);
    struct store_key key1 = fixture_int_key(1, kb);
    assert_int_equal(store_view_upsert_sourced(v, &key1, &b), STORE_UPSERT_REPLACED);
    store_row_builder_deinit(&b);
    assert_int_equal(store_view_load_logged(v), 0);
    store_view_load_abort(v);
    assert_int_equal(_x_of(v, 6), 6000);
    static const int64_t fourth[][3] = {{2, 60, 2222}, {4, 60, 4444}};
    assert_int_equal(_load(v, fourth, 2), 4);
    assert_int_equal(_x_of(v, 6), INT64_MIN);
    assert_int_equal(_x_of(v, 1), INT64_MIN); /* its live row was superseded by the source's */
    assert_int_equal(_x_of(v, 5), 500);
    store_read_lock();
    struct store_table_stats st;
    store_table_stats(store_view_table(v), &st);
    store_read_unlock();
    assert_int_equal(st.rows, 3);       /* 2, 4, 5 */
    assert_int_equal(st.tombstones, 1); /* 3 */
    store_rcu_barrier();
    store_catalog_destroy(c);
}

/* A commit records the position its load set (none when it set none); an abort forgets it. */
static void test_commit_records_the_loads_stream_position(void **state) {
    (void)state;
    struct store_catalog *c = store_catalog_create(0);
    assert_int_equal(store_catalog_add_view(c, _schema("items"), err, sizeof err), 0);
    struct store_view *v = store_catalog_find(c, "items");
    char position[STORE_STREAM_POSITION_LEN];
    assert_false(store_view_stream_position(v, position, sizeof position));
    assert_string_equal(position, "");
    static const int64_t rows[][3] = {{1, 10, 1}};

    assert_int_equal(store_view_load_begin(v), 0);
    assert_int_equal(store_view_load_set_stream_position(v, "1700000000000-3"), 0);
    assert_false(store_view_stream_position(v, position, sizeof position)); /* not yet */
    assert_int_equal(store_view_load_commit(v, _snapshot(v, rows, 1), 1), 1);
    assert_true(store_view_stream_position(v, position, sizeof position));
    assert_string_equal(position, "1700000000000-3");

    /* an aborted load changes nothing, and its position is not carried into the next load */
    assert_int_equal(store_view_load_begin(v), 0);
    assert_int_equal(store_view_load_set_stream_position(v, "1700000000000-9"), 0);
    store_view_load_abort(v);
    assert_true(store_view_stream_position(v, position, sizeof position));
    assert_string_equal(position, "1700000000000-3");
    assert_int_equal(_load(v, rows, 1), 2); /* a load without a position records none */
    assert_false(store_view_stream_position(v, position, sizeof position));
    assert_string_equal(position, "");

    /* too long for the store: refused */
    char long_position[STORE_STREAM_POSITION_LEN + 1];
    memset(long_position, '1', sizeof long_position - 1);
    long_position[sizeof long_position - 1] = '\0';
    assert_int_equal(store_view_load_begin(v), 0);
    assert_int_equal(store_view_load_set_stream_position(v, long_position), -1);
    store_view_load_abort(v);
    store_rcu_barrier();
    store_catalog_destroy(c);
}

int main(void) {
    store_rcu_thread_online();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_views_are_found_by_name),
        cmocka_unit_test(test_swap_publishes_whole_snapshots_with_versions),
        cmocka_unit_test(test_replace_schema_keeps_rows_and_applies_new_ttl),
        cmocka_unit_test(test_updates_during_a_load_survive_the_swap),
        cmocka_unit_test(test_row_images_are_stored_with_their_flags_and_kept_by_a_load),
        cmocka_unit_test(test_a_pinned_table_outlives_its_retirement),
        cmocka_unit_test(test_live_updates_before_a_load_survive_the_swap),
        cmocka_unit_test(test_commit_records_the_loads_stream_position),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    store_rcu_thread_offline();
    return failed;
}
