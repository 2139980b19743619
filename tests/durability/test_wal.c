/*
 * The write-ahead log on real files in a temporary directory: what is appended comes back in
 * order after a restart; a torn tail is cut, damage is found and set aside; a failed write
 * (RLIMIT_FSIZE standing in for a full disk) refuses its batch, loses nothing before it, and
 * the log goes on once writes succeed again; a second process cannot share the directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../store/fixtures.h"
#include "common/buf.h"
#include "common/metrics.h"
#include "durability/wal.h"
#include "store/catalog.h"
#include "store/rcu.h"
#include "store/row.h"
#include "store/table.h"

static char err[256];
static char dir[64];
static struct store_schema *schema;

/* ---- helpers ------------------------------------------------------------------------------- */

/* A batch of `rows` rows of view "v": entity ids from `first_id`, x = id * 10 + tag. */
static struct wal_batch *_batch(int64_t first_id, size_t rows, int64_t tag, size_t pad_bytes) {
    struct wal_batch *b = wal_batch_create("v", 42);
    assert_non_null(b);
    struct store_row_builder rb;
    assert_int_equal(store_row_builder_init(&rb, schema), 0);
    char *pad = calloc(1, pad_bytes + 1);
    memset(pad, 'p', pad_bytes);
    for (size_t r = 0; r < rows; r++) {
        int64_t id = first_id + (int64_t)r;
        store_row_builder_reset(&rb, 1000 + tag, 0);
        store_row_set_int64(&rb, 0, id * 10 + tag);
        assert_int_equal(store_row_set_bytes(&rb, 1, pad, (uint32_t)pad_bytes), 0);
        uint8_t kb[8];
        struct store_key key = fixture_int_key(id, kb);
        struct store_row *image = store_row_image(schema, &key, &rb, 1000 + tag, 0);
        assert_non_null(image);
        image->flags |= STORE_ROW_LIVE;
        assert_int_equal(wal_batch_add(b, image, store_row_total_size(schema, image)), 0);
        free(image);
    }
    free(pad);
    store_row_builder_deinit(&rb);
    return b;
}

/* What `done` saw, in order. */
struct outcomes {
    size_t n;
    int64_t first_x[64];
    char error[64][128];
};

static void _done(struct wal_batch *b, const char *error, void *arg) {
    struct outcomes *o = arg;
    const struct store_row *row = wal_batch_row(b, 0);
    int64_t x;
    memcpy(&x, row->data + 8, 8); /* the key (8 bytes), then the fixed section's int64 */
    o->first_x[o->n] = x;
    snprintf(o->error[o->n], sizeof o->error[0], "%s", error ? error : "");
    __atomic_store_n(&o->n, o->n + 1, __ATOMIC_RELEASE);
}

static struct wal_options _options(int durability, uint64_t segment_bytes) {
    struct wal_options o = {
        .durability = durability, .group_commit_interval_us = 1000, .segment_bytes = segment_bytes};
    snprintf(o.data_dir, sizeof o.data_dir, "%s", dir);
    return o;
}

/* What replay handed over, in order: first x of each batch, and the batches' rows. */
struct replayed {
    size_t batches, rows;
    int64_t first_x[64];
    char position[64][64]; /* each batch's stream position, "" for none */
};

static enum wal_replay_outcome _apply(const struct wal_batch *b, void *arg) {
    struct replayed *r = arg;
    assert_string_equal(wal_batch_view(b), "v");
    assert_int_equal(wal_batch_fingerprint(b), 42);
    int64_t x;
    memcpy(&x, wal_batch_row(b, 0)->data + 8, 8);
    for (size_t i = 0; i < wal_batch_rows(b); i++) {
        const struct store_row *row = wal_batch_row(b, i);
        assert_true(row->flags & STORE_ROW_LIVE);
        assert_int_equal(((uintptr_t)row) % 8, 0); /* read in place */
    }
    if (r->batches < 64) {
        r->first_x[r->batches] = x;
        const char *position = wal_batch_stream_position(b);
        snprintf(r->position[r->batches], sizeof r->position[0], "%s", position ? position : "");
    }
    r->batches++;
    r->rows += wal_batch_rows(b);
    return WAL_REPLAY_APPLIED;
}

/* Starts the log on `dir` and replays it into *r. */
static int64_t _open(struct replayed *r, int durability, uint64_t segment_bytes) {
    memset(r, 0, sizeof *r);
    struct wal_options o = _options(durability, segment_bytes);
    assert_int_equal(wal_setup(&o, err, sizeof err), 0);
    int64_t n = wal_replay(_apply, r, 0, err, sizeof err);
    assert_true(n >= 0);
    return n;
}

/* Appends the batches and waits until every `done` ran (teardown drains the queue). */
static void _append_and_close(struct wal_batch **batches, size_t n, struct outcomes *o) {
    for (size_t i = 0; i < n; i++) {
        wal_append(batches[i], _done, o);
    }
    wal_teardown();
}

/* The value of an unlabeled metric in a scrape. */
static double _metric(const char *name) {
    struct buf out = {0};
    assert_int_equal(metrics_collect_all(&out), 0);
    char needle[128];
    snprintf(needle, sizeof needle, "\n%s ", name);
    const char *at = strstr(out.data, needle);
    double v = at ? strtod(at + strlen(needle), NULL) : -1;
    buf_free(&out);
    return v;
}

static size_t _files_ending(const char *suffix) {
    char path[128];
    snprintf(path, sizeof path, "%s/wal", dir);
    DIR *d = opendir(path);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name), sl = strlen(suffix);
        n += len > sl && strcmp(e->d_name + len - sl, suffix) == 0;
    }
    closedir(d);
    return n;
}

static void _segment_path(char *buf, size_t len, uint64_t first_seq) {
    snprintf(buf, len, "%s/wal/%016llx.log", dir, (unsigned long long)first_seq);
}

static off_t _size(const char *path) {
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static int _setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/fsd-wal-test.XXXXXX");
    assert_non_null(mkdtemp(dir));
    schema = store_schema_create("v", 0);
    store_schema_add_key(schema, "id", STORE_KEY_INT64, err, sizeof err);
    store_schema_add_feature(schema, "x", STORE_TYPE_INT64, err, sizeof err);
    store_schema_add_feature(schema, "pad", STORE_TYPE_STRING, err, sizeof err);
    assert_int_equal(store_schema_finalize(schema, err, sizeof err), 0);
    return 0;
}

static int _teardown(void **state) {
    (void)state;
    wal_teardown();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    store_schema_destroy(schema);
    return 0;
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_what_was_appended_is_replayed_in_order_after_a_restart(void **state) {
    (void)state;
    struct replayed r;
    assert_int_equal(_open(&r, WAL_DURABILITY_GROUP, 64 << 20), 0);
    struct outcomes o = {0};
    struct wal_batch *b[10];
    for (int i = 0; i < 10; i++) {
        b[i] = _batch(i * 100, 50, i, 10);
    }
    _append_and_close(b, 10, &o);
    assert_int_equal(o.n, 10);
    for (int i = 0; i < 10; i++) {
        assert_string_equal(o.error[i], "");
        assert_int_equal(o.first_x[i], i * 100 * 10 + i);
    }
    /* The next start replays them, in order; new records follow them. */
    assert_int_equal(_open(&r, WAL_DURABILITY_GROUP, 64 << 20), 10);
    assert_int_equal(r.rows, 500);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(r.first_x[i], i * 100 * 10 + i);
    }
    struct wal_batch *more[1] = {_batch(5000, 1, 7, 0)};
    memset(&o, 0, sizeof o);
    _append_and_close(more, 1, &o);
    assert_int_equal(_open(&r, WAL_DURABILITY_GROUP, 64 << 20), 11);
    assert_int_equal(r.first_x[10], 5000 * 10 + 7);
    assert_int_equal(_files_ending(".log"), 2); /* one segment per run that wrote */
    assert_int_equal(_metric("fsd_wal_replayed_records_total"), 11);
    wal_teardown();
}

static void test_a_stream_batch_comes_back_with_its_position(void **state) {
    (void)state;
    struct replayed r;
    struct outcomes o = {0};
    assert_int_equal(_open(&r, WAL_DURABILITY_GROUP, 64 << 20), 0);
    struct wal_batch *b[2] = {_batch(1, 3, 1, 0), _batch(10, 2, 2, 0)};
    assert_int_equal(wal_batch_end_at_stream_position(b[0], "1700000000000-7"), 0);
    assert_null(wal_batch_add_space(b[0], 64)); /* the position ends the batch */
    char too_long[STORE_STREAM_POSITION_LEN + 1];
    memset(too_long, '9', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';
    assert_int_equal(wal_batch_end_at_stream_position(b[1], too_long), -1);
    _append_and_close(b, 2, &o);
    assert_int_equal(_open(&r, WAL_DURABILITY_GROUP, 64 << 20), 2);
    assert_int_equal(r.rows, 5);
    assert_string_equal(r.position[0], "1700000000000-7");
    assert_string_equal(r.position[1], "");
    wal_teardown();
}

/* Starts the log as a start whose checkpoints hold records through `held_through` does. */
static int64_t _open_held(struct replayed *r, uint64_t held_through) {
    memset(r, 0, sizeof *r);
    struct wal_options o = _options(WAL_DURABILITY_GROUP, 64 << 20);
    assert_int_equal(wal_setup(&o, err, sizeof err), 0);
    int64_t n = wal_replay(_apply, r, held_through, err, sizeof err);
    assert_true(n >= 0);
    return n;
}

static void test_records_are_numbered_past_what_checkpoints_hold(void **state) {
    (void)state;
    /* Checkpoints can hold records the log has lost (damage, a removed wal directory); new
     * records numbered below them would be taken for records those checkpoints hold and
     * skipped at the next start. */
    struct replayed r;
    struct outcomes o = {0};
    assert_int_equal(_open_held(&r, 0), 0);
    struct wal_batch *first[3] = {_batch(1, 1, 1, 0), _batch(2, 1, 2, 0), _batch(3, 1, 3, 0)};
    _append_and_close(first, 3, &o);
    assert_int_equal(wal_applied_seq(), 3);

    assert_int_equal(_open_held(&r, 10), 3);
    assert_int_equal(wal_applied_seq(), 10);
    struct wal_batch *after[2] = {_batch(4, 1, 4, 0), _batch(5, 1, 5, 0)};
    _append_and_close(after, 2, &o);
    assert_int_equal(wal_applied_seq(), 12);

    /* The jump is in the log: the next start replays all five and numbers on from 12. */
    assert_int_equal(_open_held(&r, 0), 5);
    assert_int_equal(r.first_x[3], 4 * 10 + 4);
    assert_int_equal(r.first_x[4], 5 * 10 + 5);
    assert_int_equal(wal_applied_seq(), 12);
    assert_int_equal(_metric("fsd_wal_corrupt_segments_total"), 0);
    wal_teardown();

    /* The log gone entirely. */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -f %s/wal/*.log", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(_open_held(&r, 20), 0);
    struct wal_batch *alone[1] = {_batch(6, 1, 6, 0)};
    _append_and_close(alone, 1, &o);
    assert_int_equal(_open_held(&r, 0), 1);
    assert_int_equal(r.first_x[0], 6 * 10 + 6);
    assert_int_equal(wal_applied_seq(), 21);
    wal_teardown();
}

/* Waits (up to 10 s) until `done` ran for n batches. */
static void _wait_done(const struct outcomes *o, size_t n) {
    for (int i = 0; i < 10000 && __atomic_load_n(&o->n, __ATOMIC_ACQUIRE) < n; i++) {
        usleep(1000);
    }
    assert_int_equal(__atomic_load_n(&o->n, __ATOMIC_ACQUIRE), n);
}

/* fsyncs the log writer made for 8 batches appended back to back. */
static double _fsyncs_for_8(int durability) {
    struct wal_options opt = _options(durability, 64 << 20);
    opt.group_commit_interval_us = 50000; /* the 8 appends surely fall in one interval */
    assert_int_equal(wal_setup(&opt, err, sizeof err), 0);
    struct replayed r = {0};
    assert_true(wal_replay(_apply, &r, 0, err, sizeof err) >= 0);
    struct wal_batch *b[8];
    for (int i = 0; i < 8; i++) {
        b[i] = _batch(i, 1, i, 0);
    }
    struct outcomes o = {0};
    double before = _metric("fsd_wal_fsyncs_total");
    for (int i = 0; i < 8; i++) {
        wal_append(b[i], _done, &o);
    }
    _wait_done(&o, 8);
    double fsyncs = _metric("fsd_wal_fsyncs_total") - before;
    wal_teardown();
    return fsyncs;
}

static void test_always_fsyncs_each_batch_and_group_shares_fsyncs(void **state) {
    (void)state;
    assert_int_equal(_fsyncs_for_8(WAL_DURABILITY_ALWAYS), 8);
    double group = _fsyncs_for_8(WAL_DURABILITY_GROUP);
    assert_true(group >= 1 && group <= 2);
    struct replayed r;
    assert_int_equal(_open(&r, WAL_DURABILITY_GROUP, 64 << 20), 16);
    wal_teardown();
}

static void test_a_torn_tail_is_cut_and_never_replayed(void **state) {
    (void)state;
    struct replayed r;
    _open(&r, WAL_DURABILITY_GROUP, 64 << 20);
    struct outcomes o = {0};
    struct wal_batch *b[3] = {_batch(0, 10, 0, 100), _batch(100, 10, 1, 100),
                              _batch(200, 10, 2, 100)};
    _append_and_close(b, 3, &o);
    char path[128];
    _segment_path(path, sizeof path, 1);
    off_t full = _size(path);
    /* A crash in the middle of the third record's write. */
    assert_int_equal(truncate(path, full - 700), 0);
    assert_int_equal(_open(&r, WAL_DURABILITY_GROUP, 64 << 20), 2);
    assert_true(_metric("fsd_wal_torn_tail_bytes_total") > 0);
    assert_true(_size(path) < full - 700); /* cut back to the end of the second record */
    /* The third batch's number goes to the next record. */
    memset(&o, 0, sizeof o);
    struct wal_batch *again[1] = {_batch(300, 1, 3, 0)};
    _append_and_close(again, 1, &o);
    _open(&r, WAL_DURABILITY_GROUP, 64 << 20);
    assert_int_equal(r.batches, 3);
    assert_int_equal(r.first_x[2], 300 * 10 + 3);
    assert_int_equal(_metric("fsd_wal_corrupt_segments_total"), 0);
    wal_teardown();
}

static void test_a_flipped_byte_stops_the_replay_and_later_segments_are_set_aside(void **state) {
    (void)state;
    struct replayed r;
    _open(&r, WAL_DURABILITY_GROUP, 1 << 20); /* 1 MiB segments */
    struct outcomes o = {0};
    struct wal_batch *b[12];
    for (int i = 0; i < 12; i++) {
        b[i] = _batch(i * 1000, 100, i, 2000); /* ~210 KB each: 5 per segment */
    }
    for (int i = 0; i < 12; i++) {
        wal_append(b[i], _done, &o);
        usleep(3000); /* separate commits, so segments rotate between them */
    }
    wal_teardown();
    assert_int_equal(o.n, 12);
    assert_true(_files_ending(".log") >= 2);
    /* Damage the second record of the first segment. */
    char path[128];
    _segment_path(path, sizeof path, 1);
    int fd = open(path, O_RDWR);
    off_t at = 32 + 24 + (off_t)((_size(path) - 32) / 5) + 100;
    assert_int_equal(pwrite(fd, "X", 1, at), 1);
    close(fd);
    _open(&r, WAL_DURABILITY_GROUP, 1 << 20);
    assert_int_equal(r.batches, 1); /* what came before the damage, nothing after it */
    assert_int_equal(_metric("fsd_wal_corrupt_segments_total"), 1);
    assert_true(_files_ending(".corrupt") >= 1);
    wal_teardown();
}

/* Offset of record `index` (0-based) of a segment holding records of `record_bytes` each. */
static off_t _record_at(size_t index, size_t record_bytes) {
    return (off_t)(32 + index * record_bytes);
}

static void _flip(const char *path, off_t at) {
    int fd = open(path, O_RDWR);
    uint8_t byte;
    assert_int_equal(pread(fd, &byte, 1, at), 1);
    byte ^= 0x20;
    assert_int_equal(pwrite(fd, &byte, 1, at), 1);
    close(fd);
}

static void test_damage_in_the_last_segment_is_kept_not_cut_as_a_torn_tail(void **state) {
    (void)state;
    struct replayed r;
    _open(&r, WAL_DURABILITY_GROUP, 64 << 20);
    struct outcomes o = {0};
    for (int i = 0; i < 5; i++) {
        wal_append(_batch(i * 10, 10, i, 20), _done, &o);
        _wait_done(&o, (size_t)i + 1); /* one record per batch, all the same size */
    }
    wal_teardown();
    char path[128];
    _segment_path(path, sizeof path, 1);
    size_t record_bytes = (size_t)(_size(path) - 32) / 5;
    _flip(path, _record_at(1, record_bytes) + 100); /* inside the second record */
    assert_int_equal(_open(&r, WAL_DURABILITY_GROUP, 64 << 20), 1);
    assert_int_equal(_metric("fsd_wal_corrupt_segments_total"), 1);
    assert_int_equal(_metric("fsd_wal_torn_tail_bytes_total"), 0);
    assert_int_equal(_files_ending(".corrupt"), 1);          /* the whole file, kept */
    assert_int_equal(_size(path), 32 + (off_t)record_bytes); /* its valid part replays again */
    /* Writes go on, in a segment of their own. */
    memset(&o, 0, sizeof o);
    struct wal_batch *more[1] = {_batch(900, 1, 9, 0)};
    _append_and_close(more, 1, &o);
    assert_string_equal(o.error[0], "");
    assert_int_equal(_open(&r, WAL_DURABILITY_GROUP, 64 << 20), 2);
    assert_int_equal(r.first_x[0], 0);
    assert_int_equal(r.first_x[1], 900 * 10 + 9);
    assert_int_equal(_metric("fsd_wal_corrupt_segments_total"), 0); /* nothing new */
    wal_teardown();
}

static void test_damage_at_the_start_of_a_segment_does_not_block_later_writes(void **state) {
    (void)state;
    struct replayed r;
    _open(&r, WAL_DURABILITY_GROUP, 1 << 20);
    struct outcomes o = {0};
    for (int i = 0; i < 12; i++) {
        wal_append(_batch(i * 1000, 100, i, 2000), _done, &o); /* ~210 KB: 5 per segment */
        _wait_done(&o, (size_t)i + 1);
    }
    wal_teardown();
    assert_true(_files_ending(".log") >= 2);
    char path[128];
    _segment_path(path, sizeof path, 1);
    _flip(path, 32 + 24 + 100); /* the first record of the first segment */
    assert_int_equal(_open(&r, WAL_DURABILITY_GROUP, 1 << 20), 0);
    assert_int_equal(_metric("fsd_wal_corrupt_segments_total"), 1);
    assert_int_equal(_files_ending(".log"), 0); /* nothing valid left under a segment's name */
    memset(&o, 0, sizeof o);
    struct wal_batch *more[1] = {_batch(5, 1, 5, 0)};
    _append_and_close(more, 1, &o);
    assert_string_equal(o.error[0], ""); /* its name is free: a new segment */
    assert_int_equal(_open(&r, WAL_DURABILITY_GROUP, 1 << 20), 1);
    assert_int_equal(r.first_x[0], 5 * 10 + 5);
    wal_teardown();
}

static void test_a_failed_write_refuses_its_batch_and_the_log_goes_on(void **state) {
    (void)state;
    struct replayed r;
    _open(&r, WAL_DURABILITY_GROUP, 64 << 20);
    struct outcomes o = {0};
    wal_append(_batch(0, 10, 0, 10), _done, &o);
    _wait_done(&o, 1);
    /* A full disk, as far as this process can tell: writes past 64 KiB fail with EFBIG. */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, small = {64 << 10, 64 << 10};
    getrlimit(RLIMIT_FSIZE, &old);
    small.rlim_max = old.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    wal_append(_batch(100, 50, 1, 2000), _done, &o); /* ~100 KB: cannot fit */
    _wait_done(&o, 2);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    double errors = _metric("fsd_wal_write_errors_total");
    wal_append(_batch(200, 1, 2, 0), _done, &o); /* space again */
    _wait_done(&o, 3);
    assert_int_equal(_metric("fsd_wal_write_errors_total"), errors); /* no new error */
    wal_teardown();
    assert_true(errors >= 1);
    assert_string_equal(o.error[0], "");
    assert_string_equal(o.error[1], "wal write: File too large");
    assert_string_equal(o.error[2], "");
    /* The refused batch is not in the log; the ones around it are. */
    assert_int_equal(_open(&r, WAL_DURABILITY_GROUP, 64 << 20), 2);
    assert_int_equal(r.first_x[0], 0 * 10 + 0);
    assert_int_equal(r.first_x[1], 200 * 10 + 2);
    assert_int_equal(_metric("fsd_wal_corrupt_segments_total"), 0);
    wal_teardown();
}

static void test_a_second_fsd_cannot_use_the_same_data_dir(void **state) {
    (void)state;
    struct replayed r;
    _open(&r, WAL_DURABILITY_GROUP, 64 << 20);
    pid_t pid = fork();
    if (pid == 0) {
        struct wal_options o = _options(WAL_DURABILITY_GROUP, 64 << 20);
        char why[256];
        int rc = wal_setup(&o, why, sizeof why);
        _exit(rc == -1 && strstr(why, "is in use by another fsd") != NULL ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    wal_teardown();
}

static void test_nothing_is_logged_without_a_data_dir_or_with_durability_none(void **state) {
    (void)state;
    struct wal_options o = _options(WAL_DURABILITY_NONE, 64 << 20);
    assert_int_equal(wal_setup(&o, err, sizeof err), 0);
    assert_false(wal_enabled());
    struct outcomes out = {0};
    assert_int_equal(wal_append(_batch(0, 1, 0, 0), _done, &out), -1);
    assert_string_equal(out.error[0], "the log is not running");
    wal_teardown();
    o = _options(WAL_DURABILITY_GROUP, 64 << 20);
    o.data_dir[0] = '\0';
    assert_int_equal(wal_setup(&o, err, sizeof err), 0);
    assert_false(wal_enabled());
    wal_teardown();
    snprintf(o.data_dir, sizeof o.data_dir, "%s/missing", dir);
    assert_int_equal(wal_setup(&o, err, sizeof err), -1);
    assert_non_null(strstr(err, "No such file or directory"));
}

int main(void) {
    store_rcu_thread_online();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_what_was_appended_is_replayed_in_order_after_a_restart,
                                        _setup, _teardown),
        cmocka_unit_test_setup_teardown(test_records_are_numbered_past_what_checkpoints_hold,
                                        _setup, _teardown),
        cmocka_unit_test_setup_teardown(test_a_stream_batch_comes_back_with_its_position, _setup,
                                        _teardown),
        cmocka_unit_test_setup_teardown(test_always_fsyncs_each_batch_and_group_shares_fsyncs,
                                        _setup, _teardown),
        cmocka_unit_test_setup_teardown(test_a_torn_tail_is_cut_and_never_replayed, _setup,
                                        _teardown),
        cmocka_unit_test_setup_teardown(
            test_a_flipped_byte_stops_the_replay_and_later_segments_are_set_aside, _setup,
            _teardown),
        cmocka_unit_test_setup_teardown(
            test_damage_in_the_last_segment_is_kept_not_cut_as_a_torn_tail, _setup, _teardown),
        cmocka_unit_test_setup_teardown(
            test_damage_at_the_start_of_a_segment_does_not_block_later_writes, _setup, _teardown),
        cmocka_unit_test_setup_teardown(test_a_failed_write_refuses_its_batch_and_the_log_goes_on,
                                        _setup, _teardown),
        cmocka_unit_test_setup_teardown(test_a_second_fsd_cannot_use_the_same_data_dir, _setup,
                                        _teardown),
        cmocka_unit_test_setup_teardown(
            test_nothing_is_logged_without_a_data_dir_or_with_durability_none, _setup, _teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    store_rcu_thread_offline();
    return failed;
}
