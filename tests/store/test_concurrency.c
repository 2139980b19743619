/*
 * Readers look up batches while writers upsert, delete, sweep and swap whole snapshots.
 * Every row read must be whole (its fields agree with each other), and the rows one reader
 * gets from one table are all from one snapshot. Run under TSan by the test command.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include <cmocka.h>

#include "fixtures.h"
#include "store/catalog.h"
#include "store/rcu.h"
#include "store/table.h"

#define KEYS       4096
#define SWAPS      20
#define BATCH      64
#define UPDATE_TAG (-1) /* `snap` of rows written by the updater, not by a snapshot build */

enum { F_SNAP, F_GEN, F_A, F_S, F_LIST };

static struct store_catalog *catalog;
static struct store_view *view;
static atomic_bool done;
static atomic_long failures;
static atomic_long rows_checked;
static char first_failure[256];
/* The updater's last write per key (its own; read by the main thread after joining it). */
static int64_t last_gen[KEYS];
static bool last_was_delete[KEYS];
static atomic_long batches_done; /* the updater's, so loads can leave it room between them */

static void _record_failure(const char *what, int64_t id) {
    if (atomic_fetch_add(&failures, 1) == 0) {
        snprintf(first_failure, sizeof first_failure, "%s (id %lld)", what, (long long)id);
    }
}

/* Writes the row every thread agrees on for (id, snap, gen). */
static void _fill(struct store_row_builder *b, int64_t id, int64_t snap, int64_t gen) {
    char s[64];
    float list[5];
    int n = snprintf(s, sizeof s, "g%lld-%lld", (long long)gen, (long long)id);
    uint32_t len = (uint32_t)(gen % 5 + 1);
    for (uint32_t i = 0; i < len; i++) {
        list[i] = (float)gen;
    }
    store_row_builder_reset(b, gen, 0);
    store_row_set_int64(b, F_SNAP, snap);
    store_row_set_int64(b, F_GEN, gen);
    store_row_set_double(b, F_A, (double)gen * 2);
    store_row_set_bytes(b, F_S, s, (uint32_t)n);
    store_row_set_list(b, F_LIST, list, len);
}

static void _check(const struct store_schema *schema, const struct store_row *row, int64_t id) {
    struct store_value v;
    store_row_get(schema, row, F_GEN, &v);
    int64_t gen = v.i64;
    store_row_get(schema, row, F_A, &v);
    if (v.f64 != (double)gen * 2 || row->event_ts_us != gen) {
        _record_failure("torn fixed values", id);
    }
    char s[64];
    int n = snprintf(s, sizeof s, "g%lld-%lld", (long long)gen, (long long)id);
    store_row_get(schema, row, F_S, &v);
    if (v.var.bytes != (uint32_t)n || memcmp(v.var.data, s, (size_t)n) != 0) {
        _record_failure("torn string", id);
    }
    store_row_get(schema, row, F_LIST, &v);
    if (v.var.count != (uint32_t)(gen % 5 + 1)) {
        _record_failure("torn list length", id);
    }
    for (uint32_t i = 0; i < v.var.count; i++) {
        if (((const float *)v.var.data)[i] != (float)gen) {
            _record_failure("torn list value", id);
        }
    }
}

static void *_reader(void *arg) {
    (void)arg;
    store_rcu_thread_online();
    uint8_t kbs[BATCH][8];
    struct store_key keys[BATCH];
    const struct store_row *rows[BATCH];
    int64_t last_snap = 0;
    unsigned seed = 1;
    long checked = 0;
    while (!atomic_load(&done)) {
        for (int j = 0; j < BATCH; j++) {
            seed = seed * 1103515245u + 12345u;
            keys[j] = fixture_int_key((int64_t)(seed >> 8) % KEYS, kbs[j]);
        }
        store_read_lock();
        struct store_table *table = store_view_table(view);
        const struct store_schema *schema = store_table_schema(table);
        store_table_get_batch(table, keys, BATCH, rows);
        int64_t snap_seen = 0;
        for (int j = 0; j < BATCH; j++) {
            if (rows[j] == NULL) {
                continue;
            }
            int64_t id = (int64_t)(keys[j].data[0] | keys[j].data[1] << 8);
            _check(schema, rows[j], id);
            struct store_value v;
            store_row_get(schema, rows[j], F_SNAP, &v);
            if (v.i64 != UPDATE_TAG) {
                if (snap_seen != 0 && v.i64 != snap_seen) {
                    _record_failure("rows of two snapshots in one table", id);
                }
                if (v.i64 < last_snap) {
                    _record_failure("an older snapshot after a newer one", id);
                }
                snap_seen = v.i64;
            }
            checked++;
        }
        if (snap_seen != 0) {
            last_snap = snap_seen;
        }
        store_read_unlock();
    }
    atomic_fetch_add(&rows_checked, checked);
    store_rcu_thread_offline();
    return NULL;
}

/* Upserts newer rows and deletes some keys through the view (logged while a load runs, so
 * they survive its swap); also sweeps whatever table is current. */
static void *_updater(void *arg) {
    (void)arg;
    store_rcu_thread_online();
    struct store_row_builder b;
    store_row_builder_init(&b, store_view_schema(view));
    int64_t gen = 1000000;
    while (!atomic_load(&done)) {
        for (int i = 0; i < 256; i++) {
            int64_t id = (gen * 7) % KEYS;
            uint8_t kb[8];
            struct store_key key = fixture_int_key(id, kb);
            if (gen % 16 == 0) {
                store_view_delete(view, &key, gen, 0);
            } else {
                _fill(&b, id, UPDATE_TAG, gen);
                store_view_upsert(view, &key, &b);
            }
            last_gen[id] = gen;
            last_was_delete[id] = gen % 16 == 0;
            gen++;
        }
        atomic_fetch_add(&batches_done, 1);
        store_read_lock();
        /* tombstones older than "now" minus no grace go at once */
        store_table_sweep(store_view_table(view), gen, 0, 512);
        store_read_unlock();
    }
    store_row_builder_deinit(&b);
    store_rcu_thread_offline();
    return NULL;
}

static void test_readers_see_whole_rows_and_whole_snapshots(void **state) {
    (void)state;
    char err[256];
    struct store_schema *s = store_schema_create("conc", 0);
    store_schema_add_key(s, "id", STORE_KEY_INT64, err, sizeof err);
    store_schema_add_feature(s, "snap", STORE_TYPE_INT64, err, sizeof err);
    store_schema_add_feature(s, "gen", STORE_TYPE_INT64, err, sizeof err);
    store_schema_add_feature(s, "a", STORE_TYPE_DOUBLE, err, sizeof err);
    store_schema_add_feature(s, "s", STORE_TYPE_STRING, err, sizeof err);
    store_schema_add_feature(s, "list", STORE_TYPE_FLOAT_LIST, err, sizeof err);
    assert_int_equal(store_schema_finalize(s, err, sizeof err), 0);
    catalog = store_catalog_create(8);
    assert_int_equal(store_catalog_add_view(catalog, s, err, sizeof err), 0);
    view = store_catalog_find(catalog, "conc");
    const struct store_schema *schema = store_view_schema(view);

    pthread_t readers[2], updater;
    for (int i = 0; i < 2; i++) {
        pthread_create(&readers[i], NULL, _reader, NULL);
    }
    pthread_create(&updater, NULL, _updater, NULL);

    struct store_row_builder b;
    store_row_builder_init(&b, schema);
    struct store_table_options options = {.shards = 8, .expected_rows = KEYS};
    for (int64_t snap = 1; snap <= SWAPS; snap++) {
        /* Updates between loads too, not only during them: those are carried over by the
         * live marks, not by the log. */
        for (long seen = atomic_load(&batches_done); atomic_load(&batches_done) < seen + 2;) {
            sched_yield();
        }
        assert_int_equal(store_view_load_begin(view), 0);
        struct store_table *t = store_table_create(schema, &options, err, sizeof err);
        assert_non_null(t);
        for (int64_t id = 0; id < KEYS; id++) {
            uint8_t kb[8];
            struct store_key key = fixture_int_key(id, kb);
            _fill(&b, id, snap, snap * 10 + id % 3);
            assert_int_equal(store_table_upsert(t, &key, &b), STORE_UPSERT_INSERTED);
        }
        store_table_seal(t);
        assert_int_equal(store_view_load_commit(view, t, snap), snap);
    }
    store_row_builder_deinit(&b);
    atomic_store(&done, true);
    for (int i = 0; i < 2; i++) {
        pthread_join(readers[i], NULL);
    }
    pthread_join(updater, NULL);

    if (atomic_load(&failures) != 0) {
        fail_msg("%ld failures, first: %s", atomic_load(&failures), first_failure);
    }
    assert_true(atomic_load(&rows_checked) > 0);
    /* Every update is newer than every snapshot row, so each key upserted last serves its last
     * update, whenever it was made: before a load began, during it, or after its swap. */
    store_read_lock();
    struct store_table *table = store_view_table(view);
    for (int64_t id = 0; id < KEYS; id++) {
        if (last_gen[id] == 0 || last_was_delete[id]) {
            continue; /* a tombstone may have been swept: the snapshot's row is back */
        }
        uint8_t kb[8];
        struct store_key key = fixture_int_key(id, kb);
        const struct store_row *row = store_table_get(table, &key);
        if (row == NULL || row->event_ts_us != last_gen[id]) {
            fail_msg("id %lld: want the update of %lld, got %lld", (long long)id,
                     (long long)last_gen[id], row != NULL ? (long long)row->event_ts_us : -1LL);
        }
    }
    store_read_unlock();
    store_catalog_destroy(catalog);
}

int main(void) {
    store_rcu_thread_online();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readers_see_whole_rows_and_whole_snapshots),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    store_rcu_thread_offline();
    return failed;
}
