#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fixtures.h"
#include "store/rcu.h"
#include "store/table.h"

#define SEC INT64_C(1000000)

enum { F_X, F_N, F_S, F_Z, F_ND, F_F };

static char err[256];

/* id -> x double (mean), n int32 (mean), s string ("none"), z int64 (zero), nd double (none),
 * f float (mean) */
static struct store_schema *_schema(int64_t ttl_us) {
    struct store_schema *s = store_schema_create("t", ttl_us);
    store_schema_add_key(s, "id", STORE_KEY_INT64, err, sizeof err);
    store_schema_add_feature(s, "x", STORE_TYPE_DOUBLE, err, sizeof err);
    store_schema_add_feature(s, "n", STORE_TYPE_INT32, err, sizeof err);
    store_schema_add_feature(s, "s", STORE_TYPE_STRING, err, sizeof err);
    store_schema_add_feature(s, "z", STORE_TYPE_INT64, err, sizeof err);
    store_schema_add_feature(s, "nd", STORE_TYPE_DOUBLE, err, sizeof err);
    store_schema_add_feature(s, "f", STORE_TYPE_FLOAT, err, sizeof err);
    struct store_value none = {.type = STORE_TYPE_STRING, .var = {"none", 4, 0}};
    assert_int_equal(store_schema_set_default(s, F_X, STORE_DEFAULT_MEAN, NULL, err, sizeof err),
                     0);
    assert_int_equal(store_schema_set_default(s, F_N, STORE_DEFAULT_MEAN, NULL, err, sizeof err),
                     0);
    assert_int_equal(
        store_schema_set_default(s, F_S, STORE_DEFAULT_LITERAL, &none, err, sizeof err), 0);
    assert_int_equal(store_schema_set_default(s, F_Z, STORE_DEFAULT_ZERO, NULL, err, sizeof err),
                     0);
    assert_int_equal(store_schema_set_default(s, F_F, STORE_DEFAULT_MEAN, NULL, err, sizeof err),
                     0);
    assert_int_equal(store_schema_finalize(s, err, sizeof err), 0);
    return s;
}

struct fixture {
    struct store_schema *schema;
    struct store_table *table;
    struct store_row_builder b;
};

static struct fixture *_fixture(int64_t ttl_us, uint32_t shards) {
    struct fixture *fx = calloc(1, sizeof(*fx));
    fx->schema = _schema(ttl_us);
    struct store_table_options options = {.shards = shards};
    fx->table = store_table_create(fx->schema, &options, err, sizeof err);
    assert_non_null(fx->table);
    assert_int_equal(store_row_builder_init(&fx->b, fx->schema), 0);
    return fx;
}

static void _fixture_free(struct fixture *fx) {
    store_table_destroy(fx->table);
    store_row_builder_deinit(&fx->b);
    store_schema_destroy(fx->schema);
    free(fx);
}

static enum store_upsert_result _put(struct fixture *fx, int64_t id, int64_t ev, int64_t cr,
                                     double x) {
    uint8_t kb[8];
    struct store_key key = fixture_int_key(id, kb);
    store_row_builder_reset(&fx->b, ev, cr);
    store_row_set_double(&fx->b, F_X, x);
    return store_table_upsert(fx->table, &key, &fx->b);
}

static const struct store_row *_get(struct fixture *fx, int64_t id) {
    uint8_t kb[8];
    struct store_key key = fixture_int_key(id, kb);
    return store_table_get(fx->table, &key);
}

static double _x(struct fixture *fx, int64_t id) {
    const struct store_row *row = _get(fx, id);
    assert_non_null(row);
    struct store_value v;
    store_row_get(fx->schema, row, F_X, &v);
    return v.f64;
}

static void test_upsert_keeps_the_newest_row(void **state) {
    (void)state;
    struct fixture *fx = _fixture(0, 4);
    assert_int_equal(_put(fx, 1, 100, 0, 1.0), STORE_UPSERT_INSERTED);
    assert_int_equal(_put(fx, 1, 200, 0, 2.0), STORE_UPSERT_REPLACED);
    assert_true(_x(fx, 1) == 2.0);
    /* an older event never overwrites a newer one, whatever its created time */
    assert_int_equal(_put(fx, 1, 150, 999, 3.0), STORE_UPSERT_NOT_NEWER);
    assert_true(_x(fx, 1) == 2.0);
    /* same event time: the later created time wins */
    assert_int_equal(_put(fx, 1, 200, 5, 4.0), STORE_UPSERT_REPLACED);
    assert_true(_x(fx, 1) == 4.0);
    assert_int_equal(_put(fx, 1, 200, 4, 5.0), STORE_UPSERT_NOT_NEWER);
    /* the same row twice is a no-op */
    assert_int_equal(_put(fx, 1, 200, 5, 4.0), STORE_UPSERT_NOT_NEWER);
    assert_true(_x(fx, 1) == 4.0);
    assert_null(_get(fx, 2));
    struct store_table_stats st;
    store_table_stats(fx->table, &st);
    assert_int_equal(st.rows, 1);
    assert_true(st.dead_bytes > 0); /* replaced arena rows are counted until the table goes */
    _fixture_free(fx);
}

static void test_status_ttl_and_defaults(void **state) {
    (void)state;
    struct fixture *fx = _fixture(100 * SEC, 1);
    int64_t t0 = 1700000000 * SEC;
    uint8_t kb[8];
    struct store_key key = fixture_int_key(7, kb);
    store_row_builder_reset(&fx->b, t0, 0);
    store_row_set_double(&fx->b, F_X, 8.0);
    store_row_set_int32(&fx->b, F_N, 3);
    store_row_set_float(&fx->b, F_F, 0.5f);
    /* s, z, nd stay null */
    assert_int_equal(store_table_upsert(fx->table, &key, &fx->b), STORE_UPSERT_INSERTED);
    store_table_seal(fx->table);
    const struct store_row *row = store_table_get(fx->table, &key);
    struct store_value v;
    bool has;

    /* exactly ttl old is still fresh; one microsecond more is too old */
    assert_int_equal(store_table_read(fx->table, row, F_X, t0 + 100 * SEC, &v, &has),
                     STORE_PRESENT);
    assert_true(has && v.f64 == 8.0);
    assert_int_equal(store_table_read(fx->table, row, F_S, t0, &v, &has), STORE_NULL);
    assert_true(has);
    assert_memory_equal(v.var.data, "none", 4);
    assert_int_equal(store_table_read(fx->table, row, F_Z, t0, &v, &has), STORE_NULL);
    assert_true(has && v.i64 == 0);
    assert_int_equal(store_table_read(fx->table, row, F_ND, t0, &v, &has), STORE_NULL);
    assert_false(has);
    assert_int_equal(store_table_read(fx->table, row, F_X, t0 + 100 * SEC + 1, &v, &has),
                     STORE_OUTSIDE_MAX_AGE);
    assert_true(has && v.f64 == 8.0); /* the mean of one value */
    assert_int_equal(store_table_read(fx->table, NULL, F_N, t0, &v, &has), STORE_NOT_FOUND);
    assert_true(has && v.i32 == 3);
    assert_int_equal(store_table_read(fx->table, NULL, F_ND, t0, &v, &has), STORE_NOT_FOUND);
    assert_false(has);
    _fixture_free(fx);
}

static void test_mean_defaults_use_present_values_only(void **state) {
    (void)state;
    struct fixture *fx = _fixture(0, 8);
    const double xs[] = {1.0, 2.0, 4.5};
    const int32_t ns[] = {1, 2, 4};
    for (int i = 0; i < 3; i++) {
        uint8_t kb[8];
        struct store_key key = fixture_int_key(i, kb);
        store_row_builder_reset(&fx->b, 10, 0);
        store_row_set_double(&fx->b, F_X, xs[i]);
        store_row_set_int32(&fx->b, F_N, ns[i]);
        store_table_upsert(fx->table, &key, &fx->b);
    }
    /* a row with nulls does not drag the means toward zero */
    uint8_t kb[8];
    struct store_key key = fixture_int_key(100, kb);
    store_row_builder_reset(&fx->b, 10, 0);
    store_table_upsert(fx->table, &key, &fx->b);
    /* a deleted entity's old values do not count */
    _put(fx, 200, 5, 0, 1000.0);
    key = fixture_int_key(200, kb);
    assert_int_equal(store_table_delete(fx->table, &key, 6, 0), STORE_UPSERT_REPLACED);

    struct store_value v;
    assert_true(store_table_default(fx->table, F_X, &v));
    assert_true(v.f64 == 0.0); /* not sealed yet: zero */
    store_table_seal(fx->table);
    assert_true(store_table_default(fx->table, F_X, &v));
    assert_true(v.f64 == 2.5);
    assert_true(store_table_default(fx->table, F_N, &v));
    assert_int_equal(v.i32, 2); /* 7/3 rounds to 2 */
    assert_true(store_table_default(fx->table, F_F, &v));
    assert_true(v.f32 == 0.0f); /* no present values at all: zero */
    assert_false(store_table_default(fx->table, F_ND, &v));
    _fixture_free(fx);
}

static void test_delete_leaves_a_tombstone_older_updates_cannot_pass(void **state) {
    (void)state;
    struct fixture *fx = _fixture(0, 2);
    uint8_t kb[8];
    struct store_key key = fixture_int_key(5, kb);
    assert_int_equal(_put(fx, 5, 100, 0, 1.0), STORE_UPSERT_INSERTED);
    assert_int_equal(store_table_delete(fx->table, &key, 90, 0), STORE_UPSERT_NOT_NEWER);
    assert_non_null(_get(fx, 5));
    assert_int_equal(store_table_delete(fx->table, &key, 110, 0), STORE_UPSERT_REPLACED);
    assert_null(_get(fx, 5));
    assert_int_equal(_put(fx, 5, 105, 0, 2.0), STORE_UPSERT_NOT_NEWER);
    assert_null(_get(fx, 5));
    struct store_table_stats st;
    store_table_stats(fx->table, &st);
    assert_int_equal(st.rows, 0);
    assert_int_equal(st.tombstones, 1);
    assert_int_equal(_put(fx, 5, 120, 0, 3.0), STORE_UPSERT_REPLACED);
    assert_true(_x(fx, 5) == 3.0);
    /* deleting an unknown key also guards it against older updates */
    key = fixture_int_key(6, kb);
    assert_int_equal(store_table_delete(fx->table, &key, 50, 0), STORE_UPSERT_INSERTED);
    assert_int_equal(_put(fx, 6, 40, 0, 1.0), STORE_UPSERT_NOT_NEWER);
    assert_null(_get(fx, 6));
    store_table_stats(fx->table, &st);
    assert_int_equal(st.rows, 1);
    assert_int_equal(st.tombstones, 1);
    _fixture_free(fx);
}

static void test_many_keys_grow_the_shards_and_batch_matches_single(void **state) {
    (void)state;
    struct fixture *fx = _fixture(0, 16);
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        assert_int_equal(_put(fx, (int64_t)i * 7919, 1, 0, i), STORE_UPSERT_INSERTED);
    }
    struct store_table_stats st;
    store_table_stats(fx->table, &st);
    assert_int_equal(st.rows, n);
    /* 80-byte rows, 8-byte slots at 40-80% load, arena slack: under 110 bytes a row */
    assert_true(st.memory_bytes > (uint64_t)n * 80 && st.memory_bytes < (uint64_t)n * 110);
    enum { BATCH = 777 };
    static uint8_t kbs[BATCH][8];
    struct store_key keys[BATCH];
    const struct store_row *rows[BATCH];
    for (int start = 0; start < n; start += BATCH * 50) {
        for (int j = 0; j < BATCH; j++) {
            int64_t id = (int64_t)(start + j) * 7919 + (j % 3 == 0 ? 1 : 0); /* 1/3 missing */
            keys[j] = fixture_int_key(id, kbs[j]);
        }
        store_table_get_batch(fx->table, keys, BATCH, rows);
        for (int j = 0; j < BATCH; j++) {
            assert_ptr_equal(rows[j], store_table_get(fx->table, &keys[j]));
            if (j % 3 == 0 || start + j >= n) {
                assert_null(rows[j]);
            } else {
                struct store_value v;
                store_row_get(fx->schema, rows[j], F_X, &v);
                assert_true(v.f64 == start + j);
            }
        }
    }
    _fixture_free(fx);
}

static void test_expected_rows_sizes_the_table_up_front(void **state) {
    (void)state;
    struct store_schema *s = _schema(0);
    struct store_table_options options = {.shards = 8, .expected_rows = 100000};
    struct store_table *t = store_table_create(s, &options, err, sizeof err);
    struct store_table_stats before;
    store_table_stats(t, &before);
    /* ~75% load when full: 8 bytes a slot, so about 10.7 bytes a row of index */
    assert_true(before.memory_bytes > 100000 * 10 && before.memory_bytes < 100000 * 12);
    store_table_destroy(t);
    options.shards = 6;
    assert_null(store_table_create(s, &options, err, sizeof err));
    assert_non_null(strstr(err, "power of two"));
    store_schema_destroy(s);
}

static void test_sweep_reclaims_expired_rows_and_old_tombstones(void **state) {
    (void)state;
    struct fixture *fx = _fixture(10 * SEC, 4);
    int64_t now = 1000 * SEC;
    for (int i = 0; i < 1000; i++) {
        /* even ids are 30 s old (expired with 5 s of grace), odd ids 1 s old */
        _put(fx, i, now - (i % 2 == 0 ? 30 : 1) * SEC, 0, i);
    }
    uint8_t kb[8];
    struct store_key key = fixture_int_key(0, kb);
    /* an old tombstone (20 s, past the grace): reclaimed */
    assert_int_equal(store_table_delete(fx->table, &key, now - 20 * SEC, 0), STORE_UPSERT_REPLACED);
    key = fixture_int_key(3, kb);
    /* a recent tombstone: kept */
    assert_int_equal(store_table_delete(fx->table, &key, now - 1 * SEC + 1, 0),
                     STORE_UPSERT_REPLACED);
    store_table_mark_published(fx->table); /* retired rows now go through RCU */
    uint64_t removed = 0;
    for (int pass = 0; pass < 100; pass++) {
        removed += store_table_sweep(fx->table, now, 5 * SEC, 64);
    }
    assert_int_equal(removed, 499 + 1);
    struct store_table_stats st;
    store_table_stats(fx->table, &st);
    assert_int_equal(st.rows, 499);
    assert_int_equal(st.tombstones, 1);
    for (int i = 0; i < 1000; i++) {
        bool kept = i % 2 == 1 && i != 3;
        assert_int_equal(_get(fx, i) != NULL, kept);
    }
    /* the freed slots take new rows */
    for (int i = 0; i < 1000; i += 2) {
        assert_int_equal(_put(fx, i, now, 0, -i), STORE_UPSERT_INSERTED);
        assert_true(_x(fx, i) == -i);
    }
    store_table_flush_retired(fx->table);
    store_rcu_barrier();
    _fixture_free(fx);
}

static void test_updates_to_a_published_table_free_old_rows_later(void **state) {
    (void)state;
    struct fixture *fx = _fixture(0, 2);
    store_table_mark_published(fx->table);
    struct store_table_stats st;
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 2000; i++) {
            _put(fx, i, 10 + round, 0, round);
        }
    }
    store_table_stats(fx->table, &st);
    assert_int_equal(st.rows, 2000);
    assert_int_equal(st.dead_bytes, 0); /* malloc'd rows are freed, not left dead */
    store_read_lock();
    assert_true(_x(fx, 1999) == 4);
    store_read_unlock();
    store_table_flush_retired(fx->table);
    store_rcu_barrier();
    _fixture_free(fx);
}

/* A shard's first arena chunk is small (4 KiB); a first row bigger than it must still fit. */
static void test_a_first_row_bigger_than_the_first_arena_chunk(void **state) {
    (void)state;
    struct fixture *fx = _fixture(0, 1);
    static char big[12000];
    for (size_t i = 0; i < sizeof big; i++) {
        big[i] = (char)('a' + i % 26);
    }
    uint8_t kb[8];
    struct store_key key = fixture_int_key(1, kb);
    store_row_builder_reset(&fx->b, 100, 0);
    assert_int_equal(store_row_set_bytes(&fx->b, F_S, big, sizeof big), 0);
    assert_int_equal(store_table_upsert(fx->table, &key, &fx->b), STORE_UPSERT_INSERTED);
    assert_int_equal(_put(fx, 2, 100, 0, 2.0), STORE_UPSERT_INSERTED); /* and rows after it */
    const struct store_row *row = _get(fx, 1);
    assert_non_null(row);
    struct store_value v;
    store_row_get(fx->schema, row, F_S, &v);
    assert_int_equal(v.var.bytes, sizeof big);
    assert_memory_equal(v.var.data, big, sizeof big);
    assert_true(_x(fx, 2) == 2.0);
    struct store_table_stats st;
    store_table_stats(fx->table, &st);
    assert_true(st.memory_bytes > sizeof big);
    _fixture_free(fx);
}

/* Writes through the live path (marked STORE_ROW_LIVE) into `table`. */
static enum store_upsert_result _put_live(struct fixture *fx, struct store_table *table, int64_t id,
                                          int64_t ev, int64_t cr, double x) {
    uint8_t kb[8];
    struct store_key key = fixture_int_key(id, kb);
    store_row_builder_reset(&fx->b, ev, cr);
    store_row_set_double(&fx->b, F_X, x);
    return store_table_upsert_live(table, &key, &fx->b);
}

static enum store_upsert_result _delete_in(struct store_table *table, int64_t id, int64_t ev,
                                           bool live) {
    uint8_t kb[8];
    struct store_key key = fixture_int_key(id, kb);
    return live ? store_table_delete_live(table, &key, ev, 0)
                : store_table_delete(table, &key, ev, 0);
}

static bool _is_live(const struct store_table *table, int64_t id) {
    uint8_t kb[8];
    struct store_key key = fixture_int_key(id, kb);
    const struct store_row *row = store_table_get(table, &key);
    assert_non_null(row);
    return (row->flags & STORE_ROW_LIVE) != 0;
}

static void test_merge_live_keeps_the_newest_of_snapshot_and_live_rows(void **state) {
    (void)state;
    struct fixture *fx = _fixture(0, 4); /* fx->table: the snapshot being built */
    struct store_table_options options = {.shards = 2};
    struct store_table *live = store_table_create(fx->schema, &options, err, sizeof err);
    assert_non_null(live);
    /* the live table: rows of the previous snapshot (unmarked) and live writes (marked) */
    assert_int_equal(_put_live(fx, live, 1, 300, 0, 1.3), STORE_UPSERT_INSERTED);
    assert_int_equal(_put_live(fx, live, 2, 100, 0, 2.1), STORE_UPSERT_INSERTED);
    assert_int_equal(_delete_in(live, 3, 300, true), STORE_UPSERT_INSERTED);
    assert_int_equal(_delete_in(live, 4, 100, true), STORE_UPSERT_INSERTED);
    assert_int_equal(_put_live(fx, live, 5, 50, 0, 5.0), STORE_UPSERT_INSERTED);
    assert_int_equal(_put_live(fx, live, 6, 200, 0, 6.1), STORE_UPSERT_INSERTED); /* full tie */
    assert_int_equal(_put_live(fx, live, 7, 200, 5, 7.1), STORE_UPSERT_INSERTED);
    assert_int_equal(_put_live(fx, live, 8, 200, 1, 8.1), STORE_UPSERT_INSERTED);
    assert_int_equal(_put_live(fx, live, 9, 200, 0, 9.1), STORE_UPSERT_INSERTED);
    assert_int_equal(_delete_in(live, 10, 400, false), STORE_UPSERT_INSERTED);
    uint8_t kb[8];
    struct store_key key = fixture_int_key(11, kb);
    store_row_builder_reset(&fx->b, 900, 0);
    store_row_set_double(&fx->b, F_X, 11.0);
    assert_int_equal(store_table_upsert(live, &key, &fx->b), STORE_UPSERT_INSERTED);
    store_table_mark_published(live);
    /* the snapshot */
    for (int64_t id = 1; id <= 4; id++) {
        assert_int_equal(_put(fx, id, 200, 0, id + 0.2), STORE_UPSERT_INSERTED);
    }
    assert_int_equal(_put(fx, 6, 200, 0, 6.2), STORE_UPSERT_INSERTED);
    assert_int_equal(_put(fx, 7, 200, 3, 7.2), STORE_UPSERT_INSERTED);
    assert_int_equal(_put(fx, 8, 200, 3, 8.2), STORE_UPSERT_INSERTED);
    assert_int_equal(_delete_in(fx->table, 9, 300, false), STORE_UPSERT_INSERTED);
    assert_int_equal(_put(fx, 10, 200, 0, 10.2), STORE_UPSERT_INSERTED);
    store_table_seal(fx->table);
    struct store_table_stats before;
    store_table_stats(fx->table, &before);
    assert_int_equal(before.rows, 8);

    store_read_lock();
    uint64_t preview = store_table_rows_after_merge_live(fx->table, live);
    uint64_t merged = 0;
    assert_int_equal(store_table_merge_live(fx->table, live, &merged), 0);
    store_read_unlock();
    assert_int_equal(merged, 4); /* ids 1, 3, 5, 7 */

    assert_true(_x(fx, 1) == 1.3); /* the live row is newer: it wins, still marked */
    assert_true(_is_live(fx->table, 1));
    assert_true(_x(fx, 2) == 2.2); /* the snapshot's row is newer: it wins, unmarked */
    assert_false(_is_live(fx->table, 2));
    assert_null(_get(fx, 3));      /* a live delete newer than the snapshot's row: deleted */
    assert_true(_x(fx, 4) == 4.2); /* a live delete older than it: the snapshot's row */
    assert_true(_x(fx, 5) == 5.0); /* a live row the snapshot does not have: kept */
    assert_true(_is_live(fx->table, 5));
    assert_true(_x(fx, 6) == 6.2); /* event and created times equal: the snapshot's row stays */
    assert_false(_is_live(fx->table, 6));
    assert_true(_x(fx, 7) == 7.1);   /* equal event times: the later created time wins ... */
    assert_true(_x(fx, 8) == 8.2);   /* ... whichever side it is on */
    assert_null(_get(fx, 9));        /* the snapshot's own delete, newer than the live row */
    assert_true(_x(fx, 10) == 10.2); /* unmarked tombstones and rows are not carried over */
    assert_null(_get(fx, 11));

    struct store_table_stats after;
    store_table_stats(fx->table, &after);
    assert_int_equal(after.rows, 8);       /* id 5 added, id 3 deleted */
    assert_int_equal(after.tombstones, 2); /* 3 (live), 9 (snapshot) */
    assert_int_equal(preview, after.rows);
    assert_true(after.dead_bytes > before.dead_bytes); /* replaced arena rows */

    /* a second merge changes nothing: the marks make it idempotent */
    store_read_lock();
    assert_int_equal(store_table_merge_live(fx->table, live, &merged), 0);
    assert_int_equal(store_table_rows_after_merge_live(fx->table, live), after.rows);
    store_read_unlock();
    assert_int_equal(merged, 0);

    /* tables of another layout are refused */
    struct store_schema *other = store_schema_create("t", 0);
    store_schema_add_key(other, "id", STORE_KEY_STRING, err, sizeof err);
    store_schema_add_feature(other, "x", STORE_TYPE_DOUBLE, err, sizeof err);
    assert_int_equal(store_schema_finalize(other, err, sizeof err), 0);
    struct store_table *stranger = store_table_create(other, NULL, err, sizeof err);
    store_read_lock();
    assert_int_equal(store_table_merge_live(stranger, live, NULL), -1);
    store_read_unlock();
    store_table_destroy(stranger);
    store_schema_destroy(other);
    store_table_flush_retired(live);
    store_rcu_barrier();
    store_table_destroy(live);
    _fixture_free(fx);
}

static void test_copy_keeps_live_marks(void **state) {
    (void)state;
    struct fixture *fx = _fixture(0, 2);
    assert_int_equal(_put(fx, 1, 100, 0, 1.0), STORE_UPSERT_INSERTED);
    assert_int_equal(_put_live(fx, fx->table, 2, 100, 0, 2.0), STORE_UPSERT_INSERTED);
    assert_int_equal(_delete_in(fx->table, 3, 100, true), STORE_UPSERT_INSERTED);
    /* a live row replaced by a newer unmarked one loses its mark, and the other way round */
    assert_int_equal(_put_live(fx, fx->table, 4, 100, 0, 4.0), STORE_UPSERT_INSERTED);
    assert_int_equal(_put(fx, 4, 200, 0, 4.5), STORE_UPSERT_REPLACED);
    assert_int_equal(_put_live(fx, fx->table, 1, 200, 0, 1.5), STORE_UPSERT_REPLACED);
    struct store_table *copy = store_table_copy(fx->table, fx->schema, NULL, err, sizeof err);
    assert_non_null(copy);
    assert_true(_is_live(copy, 1));
    assert_true(_is_live(copy, 2));
    assert_false(_is_live(copy, 4));
    /* the copied live tombstone is carried by a merge like the original */
    struct store_table *next = store_table_create(fx->schema, NULL, err, sizeof err);
    uint8_t kb[8];
    struct store_key key = fixture_int_key(3, kb);
    store_row_builder_reset(&fx->b, 50, 0);
    store_row_set_double(&fx->b, F_X, 3.0);
    assert_int_equal(store_table_upsert(next, &key, &fx->b), STORE_UPSERT_INSERTED);
    store_read_lock();
    assert_int_equal(store_table_merge_live(next, copy, NULL), 0);
    store_read_unlock();
    assert_null(store_table_get(next, &key));
    struct store_table_stats st;
    store_table_stats(next, &st);
    assert_int_equal(st.rows, 2);
    assert_int_equal(st.tombstones, 1);
    store_table_destroy(next);
    store_table_destroy(copy);
    _fixture_free(fx);
}

int main(void) {
    store_rcu_thread_online();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upsert_keeps_the_newest_row),
        cmocka_unit_test(test_status_ttl_and_defaults),
        cmocka_unit_test(test_mean_defaults_use_present_values_only),
        cmocka_unit_test(test_delete_leaves_a_tombstone_older_updates_cannot_pass),
        cmocka_unit_test(test_many_keys_grow_the_shards_and_batch_matches_single),
        cmocka_unit_test(test_expected_rows_sizes_the_table_up_front),
        cmocka_unit_test(test_sweep_reclaims_expired_rows_and_old_tombstones),
        cmocka_unit_test(test_updates_to_a_published_table_free_old_rows_later),
        cmocka_unit_test(test_a_first_row_bigger_than_the_first_arena_chunk),
        cmocka_unit_test(test_merge_live_keeps_the_newest_of_snapshot_and_live_rows),
        cmocka_unit_test(test_copy_keeps_live_marks),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    store_rcu_thread_offline();
    return failed;
}
