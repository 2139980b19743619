/*
 * Checkpoints on real files: a view's table (rows, live marks, tombstones, the snapshot's
 * version and stream position) comes back exactly; every byte flipped in any region and every
 * truncation is found (CKPT_DAMAGED, never a crash or a wrong table); a changed layout is
 * refused; writes and snapshot swaps racing a write leave it whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/clock.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "../store/fixtures.h"
#include "durability/checkpoint.h"
#include "store/catalog.h"
#include "store/rcu.h"
#include "store/row.h"
#include "store/table.h"

static char err[512];
static char dir[64];

static struct store_schema *_schema(bool extra) {
    struct store_schema *s = store_schema_create("v", 0);
    store_schema_add_key(s, "id", STORE_KEY_INT64, err, sizeof err);
    store_schema_add_feature(s, "x", STORE_TYPE_INT64, err, sizeof err);
    store_schema_add_feature(s, "name", STORE_TYPE_STRING, err, sizeof err);
    if (extra) {
        store_schema_add_feature(s, "extra", STORE_TYPE_DOUBLE, err, sizeof err);
    }
    assert_int_equal(store_schema_finalize(s, err, sizeof err), 0);
    return s;
}

/* A catalog with view "v": a snapshot of ids 0..n-1 (x = id, name "n<id>"), then live updates
 * of the even ids (x = id + 1000000) and deletes of every 7th. */
static struct store_catalog *_catalog(int64_t n) {
    struct store_catalog *c = store_catalog_create(8);
    assert_int_equal(store_catalog_add_view(c, _schema(false), err, sizeof err), 0);
    struct store_view *v = store_catalog_find(c, "v");
    const struct store_schema *s = store_view_schema(v);
    struct store_table *t = store_table_create(s, NULL, err, sizeof err);
    struct store_row_builder b;
    store_row_builder_init(&b, s);
    char name[32];
    for (int64_t id = 0; id < n; id++) {
        uint8_t kb[8];
        struct store_key key = fixture_int_key(id, kb);
        store_row_builder_reset(&b, 100, STORE_CREATED_NONE);
        store_row_set_int64(&b, 0, id);
        snprintf(name, sizeof name, "n%lld", (long long)id);
        store_row_set_bytes(&b, 1, name, (uint32_t)strlen(name));
        store_table_upsert(t, &key, &b);
    }
    store_table_seal(t);
    assert_int_equal(store_view_load_begin(v), 0);
    assert_int_equal(store_view_load_set_stream_position(v, "1700000000000-7"), 0);
    store_read_lock();
    assert_int_equal(store_view_load_commit(v, t, 12345), 1);
    for (int64_t id = 0; id < n; id += 2) {
        uint8_t kb[8];
        struct store_key key = fixture_int_key(id, kb);
        store_row_builder_reset(&b, 200, 5);
        store_row_set_int64(&b, 0, id + 1000000);
        store_view_upsert(v, &key, &b);
    }
    for (int64_t id = 0; id < n; id += 7) {
        uint8_t kb[8];
        struct store_key key = fixture_int_key(id, kb);
        store_view_delete(v, &key, 300, 0);
    }
    store_read_unlock();
    store_row_builder_deinit(&b);
    return c;
}

struct expect {
    const struct store_table *other;
    const struct store_schema *schema;
    uint64_t seen;
};

/* Every row and tombstone of one table is in the other, byte for byte. */
static int _same_row(const struct store_row *row, void *arg) {
    struct expect *e = arg;
    struct store_key key = {store_row_key(row), row->key_len,
                            store_key_hash(store_row_key(row), row->key_len)};
    const struct store_row *there = NULL;
    /* store_table_get hides tombstones: compare those by their absence and flags below. */
    there = store_table_get(e->other, &key);
    if (row->flags & STORE_ROW_TOMBSTONE) {
        assert_null(there);
    } else {
        assert_non_null(there);
        size_t bytes = store_row_total_size(e->schema, row);
        assert_int_equal(store_row_total_size(e->schema, there), bytes);
        assert_memory_equal(there->data, row->data, bytes - sizeof(struct store_row));
        assert_int_equal(there->event_ts_us, row->event_ts_us);
        assert_int_equal(
            there->flags & (STORE_ROW_LIVE | STORE_ROW_CREATED | STORE_ROW_CREATED_NONE),
            row->flags & (STORE_ROW_LIVE | STORE_ROW_CREATED | STORE_ROW_CREATED_NONE));
    }
    e->seen++;
    return 0;
}

static uint64_t _compare(const struct store_table *a, const struct store_table *b,
                         const struct store_schema *schema) {
    struct expect e = {b, schema, 0};
    store_read_lock();
    for (uint32_t s = 0; s < store_table_shards(a); s++) {
        store_table_scan_shard(a, s, _same_row, &e);
    }
    store_read_unlock();
    return e.seen;
}

static void _file(char *buf, size_t len) {
    snprintf(buf, len, "%s/v.ckpt", dir);
}

static size_t _size(void) {
    char path[128];
    _file(path, sizeof path);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (size_t)st.st_size;
}

static int _setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/fsd-ckpt-test.XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int _teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void test_a_table_comes_back_exactly(void **state) {
    (void)state;
    struct store_catalog *c = _catalog(20000);
    struct store_view *v = store_catalog_find(c, "v");
    struct ckpt_info info;
    assert_int_equal(ckpt_write(dir, v, 77, 0, &info, err, sizeof err), 0);
    assert_int_equal(info.rows, 20000); /* rows and tombstones */
    assert_int_equal(info.log_seq, 77);
    struct store_table *t;
    struct ckpt_info got;
    assert_int_equal(ckpt_load(dir, store_view_schema(v), false, 16, &t, &got, err, sizeof err),
                     CKPT_LOADED);
    assert_int_equal(got.log_seq, 77);
    assert_int_equal(got.snapshot_version, 1);
    assert_int_equal(got.loaded_at_us, 12345);
    assert_string_equal(got.stream_position, "1700000000000-7");
    assert_int_equal(got.rows, 20000);
    struct store_table_stats st;
    store_table_stats(t, &st);
    assert_int_equal(st.rows + st.tombstones, 20000);
    assert_int_equal(st.tombstones, (20000 + 6) / 7);
    store_read_lock();
    const struct store_table *current = store_view_table(v);
    store_read_unlock();
    /* Both ways: nothing missing, nothing added. */
    assert_int_equal(_compare(current, t, store_view_schema(v)), 20000);
    assert_int_equal(_compare(t, current, store_view_schema(v)), 20000);
    store_table_destroy(t);
    /* No file: none; another layout: refused. */
    struct store_schema *other = _schema(true);
    assert_int_equal(ckpt_load(dir, other, false, 16, &t, &got, err, sizeof err),
                     CKPT_LAYOUT_CHANGED);
    assert_null(t);
    store_schema_destroy(other);
    char path[128];
    _file(path, sizeof path);
    unlink(path);
    assert_int_equal(ckpt_load(dir, store_view_schema(v), false, 16, &t, &got, err, sizeof err),
                     CKPT_NONE);
    store_rcu_barrier();
    store_catalog_destroy(c);
}

static ino_t _inode(const char *suffix) {
    char path[160];
    snprintf(path, sizeof path, "%s/v.ckpt%s", dir, suffix);
    struct stat st;
    return stat(path, &st) == 0 ? st.st_ino : 0;
}

/* The generation before .prev is kept as .spare and the next write goes over it (its pages
 * are cached): the newest, .prev and .spare rotate, a longer spare is cut to the new size,
 * and a damaged newest set aside leaves .prev where it is. */
static void test_older_generations_are_written_over(void **state) {
    (void)state;
    struct store_catalog *big = _catalog(20000), *small = _catalog(100);
    struct ckpt_info info;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(
            ckpt_write(dir, store_catalog_find(big, "v"), (uint64_t)i, 0, &info, err, sizeof err),
            0);
    }
    ino_t newest = _inode(""), prev = _inode(".prev"), spare = _inode(".spare");
    assert_true(newest != 0 && prev != 0 && spare != 0);
    assert_int_equal(_inode(".tmp"), 0);
    struct store_view *v = store_catalog_find(small, "v");
    assert_int_equal(ckpt_write(dir, v, 3, 0, &info, err, sizeof err), 0);
    assert_true(_inode("") == spare); /* the spare, written over */
    assert_true(_inode(".prev") == newest && _inode(".spare") == prev);
    assert_int_equal(_size(), info.bytes); /* the big table's tail is gone */
    struct store_table *t;
    struct ckpt_info got;
    assert_int_equal(ckpt_load(dir, store_view_schema(v), false, 16, &t, &got, err, sizeof err),
                     CKPT_LOADED);
    assert_int_equal(got.rows, 100);
    store_table_destroy(t);
    /* No newest (set aside as damaged): .prev is the good one and stays. */
    char path[160], aside[200];
    _file(path, sizeof path);
    snprintf(aside, sizeof aside, "%s.damaged", path);
    assert_int_equal(rename(path, aside), 0);
    ino_t good = _inode(".prev");
    assert_int_equal(ckpt_write(dir, v, 4, 0, &info, err, sizeof err), 0);
    assert_true(_inode(".prev") == good);
    store_rcu_barrier();
    store_catalog_destroy(big);
    store_catalog_destroy(small);
}

/* checkpoint_max_rate: a write takes at least its bytes over the rate (a lower bound only,
 * which a busy machine cannot break), and the file is the same as an unpaced one's. */
static void test_a_paced_write_keeps_to_its_rate(void **state) {
    (void)state;
    struct store_catalog *c = _catalog(20000);
    struct store_view *v = store_catalog_find(c, "v");
    struct ckpt_info info;
    assert_int_equal(ckpt_write(dir, v, 1, 0, &info, err, sizeof err), 0);
    uint64_t rate = info.bytes * 4; /* a quarter of a second */
    int64_t started = clock_mono_us();
    assert_int_equal(ckpt_write(dir, v, 2, rate, &info, err, sizeof err), 0);
    int64_t took = clock_mono_us() - started;
    assert_true(took >= 200000);
    struct store_table *t;
    struct ckpt_info got;
    assert_int_equal(ckpt_load(dir, store_view_schema(v), false, 16, &t, &got, err, sizeof err),
                     CKPT_LOADED);
    assert_int_equal(got.rows, 20000);
    store_table_destroy(t);
    store_rcu_barrier();
    store_catalog_destroy(c);
}

/* A data_dir written by an fsd before stream rows were logged holds version-1 checkpoints
 * (a 128-byte header, its hash at 120): they restore, not set aside as damaged. */
static void test_a_version_1_checkpoint_still_loads(void **state) {
    (void)state;
    struct store_catalog *c = _catalog(500);
    struct store_view *v = store_catalog_find(c, "v");
    struct ckpt_info info;
    assert_int_equal(ckpt_write(dir, v, 9, 0, &info, err, sizeof err), 0);
    char path[128];
    _file(path, sizeof path);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static uint8_t v2[1 << 20], v1[1 << 20];
    size_t size = fread(v2, 1, sizeof v2, f);
    fclose(f);
    assert_true(size > 192 + 32 && size < sizeof v2);
    /* v1: the first 112 bytes as they are (version 1), 8 zero bytes, its hash; the chunks;
     * the trailer re-hashed with the new header hash as its seed. */
    memcpy(v1, v2, 112);
    uint32_t one = 1;
    memcpy(v1 + 8, &one, 4);
    memset(v1 + 112, 0, 8);
    uint64_t h = XXH3_64bits(v1, 120);
    memcpy(v1 + 120, &h, 8);
    size_t body = size - 192 - 32;
    memcpy(v1 + 128, v2 + 192, body);
    uint8_t *trailer = v1 + 128 + body;
    memcpy(trailer, v2 + size - 32, 24);
    uint64_t th = XXH3_64bits_withSeed(trailer, 24, h);
    memcpy(trailer + 24, &th, 8);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(v1, 1, 128 + body + 32, f), 128 + body + 32);
    fclose(f);
    struct store_table *t;
    struct ckpt_info got;
    assert_int_equal(ckpt_load(dir, store_view_schema(v), false, 8, &t, &got, err, sizeof err),
                     CKPT_LOADED);
    assert_int_equal(got.rows, 500);
    assert_int_equal(got.log_seq, 9);
    assert_string_equal(got.stream_position, "1700000000000-7");
    assert_string_equal(got.stream_applied, "");
    store_table_destroy(t);
    store_rcu_barrier();
    store_catalog_destroy(c);
}

/* Loads the file after `mutate` changed it: it must be refused as damaged, or (a change that
 * no check can see, such as none) load the same table. */
static void _expect_damaged(struct store_view *v, const char *what, size_t at) {
    struct store_table *t;
    struct ckpt_info got;
    enum ckpt_load_result r =
        ckpt_load(dir, store_view_schema(v), false, 8, &t, &got, err, sizeof err);
    if (r != CKPT_DAMAGED) {
        fail_msg("%s at %zu: loaded as %d (%s)", what, at, (int)r, err);
    }
    assert_null(t);
}

static void test_every_flipped_byte_and_every_cut_is_found(void **state) {
    (void)state;
    struct store_catalog *c = _catalog(3000); /* a few chunks */
    struct store_view *v = store_catalog_find(c, "v");
    struct ckpt_info info;
    assert_int_equal(ckpt_write(dir, v, 1, 0, &info, err, sizeof err), 0);
    size_t size = _size();
    char path[128];
    _file(path, sizeof path);
    uint8_t *good = malloc(size);
    int fd = open(path, O_RDONLY);
    assert_int_equal(read(fd, good, size), (ssize_t)size);
    close(fd);
    /* Every byte of the header, the first chunk's header, the trailer; a stride through the
     * rows. Bytes that are reserved zeros are covered by the header's hash too. */
    for (size_t at = 0; at < size; at += (at < 160 || at + 40 > size) ? 1 : 97) {
        fd = open(path, O_WRONLY);
        uint8_t flipped = good[at] ^ 0x10;
        assert_int_equal(pwrite(fd, &flipped, 1, (off_t)at), 1);
        close(fd);
        _expect_damaged(v, "flipped byte", at);
        fd = open(path, O_WRONLY);
        assert_int_equal(pwrite(fd, &good[at], 1, (off_t)at), 1);
        close(fd);
    }
    for (size_t len = 0; len < size; len += len < 200 ? 1 : 1013) {
        assert_int_equal(truncate(path, (off_t)len), 0);
        _expect_damaged(v, "cut", len);
        fd = open(path, O_WRONLY | O_TRUNC);
        assert_int_equal(write(fd, good, size), (ssize_t)size);
        close(fd);
    }
    struct store_table *t;
    struct ckpt_info got;
    assert_int_equal(ckpt_load(dir, store_view_schema(v), false, 8, &t, &got, err, sizeof err),
                     CKPT_LOADED);
    store_table_destroy(t);
    free(good);
    store_rcu_barrier();
    store_catalog_destroy(c);
}

struct churn {
    struct store_view *view;
    atomic_bool stop;
    uint64_t writes;
};

static void *_writer(void *arg) {
    struct churn *ch = arg;
    store_rcu_thread_online();
    const struct store_schema *s = store_view_schema(ch->view);
    struct store_row_builder b;
    store_row_builder_init(&b, s);
    for (int64_t i = 0; !atomic_load(&ch->stop); i++) {
        uint8_t kb[8];
        struct store_key key = fixture_int_key(i % 5000, kb);
        store_row_builder_reset(&b, 1000 + i, 0);
        store_row_set_int64(&b, 0, -i);
        store_read_lock();
        store_view_upsert(ch->view, &key, &b);
        store_read_unlock();
        ch->writes++;
    }
    store_row_builder_deinit(&b);
    store_rcu_thread_offline();
    return NULL;
}

/* Swaps a fresh copy of the view's table in, again and again: the table a checkpoint is
 * reading is retired under it (freed only when its pin goes; ASan would see it otherwise). */
static void *_swapper(void *arg) {
    struct churn *ch = arg;
    store_rcu_thread_online();
    while (!atomic_load(&ch->stop)) {
        store_read_lock();
        struct store_table *copy = store_table_copy(
            store_view_table(ch->view), store_view_schema(ch->view), NULL, err, sizeof err);
        store_read_unlock();
        store_view_swap_table(ch->view, copy, 1);
        store_rcu_barrier(); /* the old table is freed now, unless pinned */
        usleep(200);
    }
    store_rcu_thread_offline();
    return NULL;
}

static void test_writes_and_a_swap_during_the_write_are_safe(void **state) {
    (void)state;
    struct store_catalog *c = _catalog(50000);
    struct store_view *v = store_catalog_find(c, "v");
    struct churn ch = {.view = v};
    pthread_t writer, swapper;
    pthread_create(&writer, NULL, _writer, &ch);
    pthread_create(&swapper, NULL, _swapper, &ch);
    /* Whether a swap lands while the shards are read is up to the scheduler; the pin itself
     * is tested deterministically in tests/store/test_catalog.c. This is the race for TSan
     * and ASan to watch. */
    struct ckpt_info info;
    for (int round = 0; round < 10; round++) {
        assert_int_equal(ckpt_write(dir, v, (uint64_t)round, 0, &info, err, sizeof err), 0);
        assert_int_equal(info.rows, 50000); /* copies keep every entity, writes add none */
    }
    atomic_store(&ch.stop, true);
    pthread_join(writer, NULL);
    pthread_join(swapper, NULL);
    assert_true(ch.writes > 0);
    assert_true(store_view_version(v) > 2);
    struct store_table *t;
    struct ckpt_info got;
    assert_int_equal(ckpt_load(dir, store_view_schema(v), false, 8, &t, &got, err, sizeof err),
                     CKPT_LOADED);
    assert_true(got.log_seq >= 9);
    store_table_destroy(t);
    store_rcu_barrier();
    store_catalog_destroy(c);
}

int main(void) {
    store_rcu_thread_online();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_version_1_checkpoint_still_loads, _setup, _teardown),
        cmocka_unit_test_setup_teardown(test_a_table_comes_back_exactly, _setup, _teardown),
        cmocka_unit_test_setup_teardown(test_older_generations_are_written_over, _setup, _teardown),
        cmocka_unit_test_setup_teardown(test_a_paced_write_keeps_to_its_rate, _setup, _teardown),
        cmocka_unit_test_setup_teardown(test_every_flipped_byte_and_every_cut_is_found, _setup,
                                        _teardown),
        cmocka_unit_test_setup_teardown(test_writes_and_a_swap_during_the_write_are_safe, _setup,
                                        _teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    store_rcu_thread_offline();
    return failed;
}
