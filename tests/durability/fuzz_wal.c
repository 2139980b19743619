/*
 * Fuzz target for reading the log back at start (durability/wal_replay.c, wal_batch.c,
 * wal_catalog.c): the input is the files a crash, a failed write or damage left in
 * data_dir/wal, one to three segments, replayed through the public path as fsd's start does
 * (wal_setup, wal_replay or wal_replay_into_catalog, wal_teardown).
 *
 * Input layout:
 *
 *   byte 0   bits 0-1: how many segments: 1 + their value, at most 3
 *            bits 2-3: what the apply callback returns: 0 APPLIED; 1 in turn APPLIED,
 *                   UNKNOWN_VIEW, LAYOUT_CHANGED, IN_CHECKPOINT; 2 FAILED at the second batch;
 *                   3 FAILED at the first
 *            bit 4: after the replay, append one batch, stop the log and replay it again: the
 *                   second replay must hand over what the first did, then the new batch,
 *                   numbered as the first replay said (wal_applied_seq() + 1)
 *            bit 5: replay into a catalog of view v instead (wal_replay_into_catalog, its
 *                   checkpoint holding records through byte 1), then read every row stored as
 *                   a lookup does; bits 2-4 are unused then
 *   byte 1   held_through: the highest sequence number the checkpoints hold (0: none)
 *   then     each segment but the last: [u16 bytes, little-endian][i8 name][the bytes]; the
 *            last: [i8 name][the rest]. A segment is named for its header's first_seq (1 when
 *            it is too short to have one) plus `name`, so names mostly agree with headers.
 *
 * A zero hash in a segment's header or in a record's header (following the records' lengths)
 * is filled in by the harness (fuzz_fill_hash), so the checks behind the hashes get fuzzed.
 * The apply callback reads every byte of every row image it is handed. Each input starts
 * from an empty data_dir/wal in one scratch folder (on tmpfs when there is one).
 *
 * Built with libFuzzer when the compiler is Clang (fuzz_wal_replay); always built as
 * fuzz_wal_replay_replay, whose main() runs the target over the files it is given (wal_corpus/),
 * their prefixes and byte corruptions, so CTest replays them under every build, sanitizers
 * too. `fuzz_wal_replay_replay --write-seeds DIR` writes the seeds into DIR: segments the real
 * log wrote (wal_append), some cut, emptied or with their hashes zeroed.
 *
 *   mkdir -p /tmp/corpus && build/tests/fuzz_wal_replay /tmp/corpus tests/durability/wal_corpus \
 *       -max_total_time=300    (new inputs go to the first folder)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/log.h"
#include "durability/wal.h"
#include "durability/wal_internal.h"
#define FUZZ_NAME "fuzz_wal_replay"
#include "fuzz_fixtures.h"
#include "store/catalog.h"
#include "store/rcu.h"
#include "store/row.h"
#include "store/table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifndef FSD_FUZZ_REPLAY
/*
 * libFuzzer's leak check after each input: rows replayed into the catalog's view are malloc'd
 * one by one and held in the table's slots with a hash tag in the pointer's top 16 bits
 * (store/table.c), where LeakSanitizer cannot see them, so a row still in its table (or in one
 * retired, waiting for its grace period) looks leaked. They are freed with their table: the
 * replay, which frees everything before it exits, checks that without this suppression.
 *
 * Those inputs also free what they replaced only after a grace period, which liburcu's call_rcu
 * thread batches for 10 ms, so they end with more mallocs than frees and libFuzzer runs its
 * leak check after each of them, until it gives that up after a thousand (it says so in its
 * log); leaks are still found at exit and by the replay under ASan.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) {
    return "leak:_row_alloc\n";
}
#endif

#define SEGMENTS_MASK    0x03
#define MAX_SEGMENTS     3
#define OUTCOME_SHIFT    2
#define OUTCOME_MASK     0x03
#define FLAG_APPEND      0x10
#define FLAG_CATALOG     0x20
#define INPUT_HEADER     2 /* flags, held_through */
#define OUTCOME_APPLIED  0
#define OUTCOME_CYCLE    1
#define OUTCOME_FAIL_2ND 2
#define OUTCOME_FAIL_1ST 3

/* One batch a replay handed over. */
struct seen {
    uint64_t seq;
    uint64_t fingerprint;
    size_t rows;
    uint64_t rows_hash; /* of every row image's bytes */
    char view[STORE_MAX_NAME + 1];
    char stream_position[STORE_STREAM_POSITION_LEN]; /* "" for none */
};

struct replay {
    int outcomes; /* OUTCOME_* */
    size_t calls;
    size_t applied;
    bool failed; /* the callback returned WAL_REPLAY_FAILED */
    struct seen *seen;
    size_t n, cap;
};

static struct {
    bool ready;
    char dir[128];     /* data_dir */
    char wal_dir[160]; /* data_dir/wal */
    int wal_fd;
    struct store_schema *schema;
    uint64_t fingerprint;
    struct store_catalog *catalog; /* view v, for the inputs of bit 5 */
    /* What the inputs reached (the replay prints it). */
    uint64_t replays, replays_refused, batches, rows, appends_checked, appends_skipped,
        catalog_replays, catalog_rows;
} g = {.wal_fd = -1};

/* ---- the scratch folder --------------------------------------------------------------------- */

/* Removes every file of data_dir/wal (segments, *.corrupt, *.torn, *.tmp). */
static void _clear(void) {
    int fd = dup(g.wal_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        fuzz_die("list %s: %s", g.wal_dir, strerror(errno));
    }
    rewinddir(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
            unlinkat(g.wal_fd, e->d_name, 0) != 0) {
            fuzz_die("remove %s/%s: %s", g.wal_dir, e->d_name, strerror(errno));
        }
    }
    closedir(d);
}

/* At exit (libFuzzer's too): the scratch folder goes. The log is stopped after each input. */
static void _remove_scratch(void) {
    _clear();
    close(g.wal_fd);
    rmdir(g.wal_dir);
    char lock[256];
    snprintf(lock, sizeof lock, "%s/LOCK", g.dir);
    unlink(lock);
    rmdir(g.dir);
}

static struct wal_options _options(void) {
    struct wal_options o = {.durability = WAL_DURABILITY_GROUP,
                            .group_commit_interval_us = 0, /* no waiting for company */
                            .segment_bytes = WAL_SEGMENT_MIN_BYTES};
    snprintf(o.data_dir, sizeof o.data_dir, "%s", g.dir);
    return o;
}

static void _setup(void) {
    store_rcu_thread_online(); /* wal_replay_into_catalog applies here */
    /* Damage is logged at error level on every input that has some: nobody reads it here. */
    int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null_fd >= 0) {
        log_set_fd(null_fd);
    }
    g.schema = fuzz_schema();
    g.fingerprint = store_schema_layout_fingerprint(g.schema);
    fuzz_scratch_dir("fuzz_wal", g.dir, sizeof g.dir);
    snprintf(g.wal_dir, sizeof g.wal_dir, "%s/wal", g.dir);
    if (mkdir(g.wal_dir, 0755) != 0) {
        fuzz_die("mkdir %s: %s", g.wal_dir, strerror(errno));
    }
    g.wal_fd = open(g.wal_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (g.wal_fd < 0) {
        fuzz_die("open %s: %s", g.wal_dir, strerror(errno));
    }
    atexit(_remove_scratch);
    g.ready = true;
}

/* ---- the input's segments ------------------------------------------------------------------ */

/* Fills in the zero hashes of a segment (see the top of the file). */
static void _fill_hashes(uint8_t *p, size_t size) {
    if (size < WAL_SEGMENT_HEADER_BYTES) {
        return;
    }
    fuzz_fill_hash(p + 24, XXH3_64bits(p, 24));
    size_t off = WAL_SEGMENT_HEADER_BYTES;
    while (size - off >= WAL_RECORD_HEADER_BYTES) {
        size_t payload = wal_get_u32(p + off);
        if (payload > size - off - WAL_RECORD_HEADER_BYTES) {
            break;
        }
        fuzz_fill_hash(p + off + 16, wal_record_hash(p + off, WAL_RECORD_HEADER_BYTES + payload));
        off += WAL_RECORD_HEADER_BYTES + payload;
    }
}

/* Writes the input's segments into data_dir/wal (see the top of the file). */
static void _write_segments(const uint8_t *p, size_t left, unsigned segments) {
    for (unsigned k = 0; k < segments; k++) {
        bool last = k + 1 == segments;
        size_t len = 0;
        if (!last) {
            if (left < 2) {
                return;
            }
            len = (size_t)p[0] | (size_t)p[1] << 8;
            p += 2;
            left -= 2;
        }
        if (left < 1) {
            return;
        }
        int8_t name_delta = (int8_t)p[0];
        p++;
        left--;
        if (last || len > left) {
            len = left;
        }
        uint8_t *seg = malloc(len ? len : 1);
        if (seg == NULL) {
            fuzz_die("out of memory");
        }
        if (len > 0) {
            memcpy(seg, p, len);
        }
        _fill_hashes(seg, len);
        uint64_t first_seq = len >= 24 ? wal_get_u64(seg + 16) : 1;
        char name[32];
        wal_segment_name(name, sizeof name, first_seq + (uint64_t)(int64_t)name_delta);
        fuzz_write_file(g.wal_fd, name, seg, len);
        free(seg);
        p += len;
        left -= len;
    }
}

/* ---- replaying ------------------------------------------------------------------------------ */

static void _note(struct replay *r, const struct seen *s) {
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->seen = realloc(r->seen, r->cap * sizeof(*r->seen));
        if (r->seen == NULL) {
            fuzz_die("out of memory");
        }
    }
    r->seen[r->n++] = *s;
}

static enum wal_replay_outcome _apply(const struct wal_batch *batch, void *arg) {
    static const enum wal_replay_outcome cycle[] = {WAL_REPLAY_APPLIED, WAL_REPLAY_UNKNOWN_VIEW,
                                                    WAL_REPLAY_LAYOUT_CHANGED,
                                                    WAL_REPLAY_IN_CHECKPOINT};
    struct replay *r = arg;
    size_t index = r->calls++;
    struct seen s = {.seq = wal_batch_seq(batch),
                     .fingerprint = wal_batch_fingerprint(batch),
                     .rows = wal_batch_rows(batch)};
    /* The name's bytes as the record has them: a NUL among them (no view has one) only cuts
     * it short, so the batch goes to no view or to the one the cut name is. */
    const char *view = wal_batch_view(batch);
    size_t view_len = strnlen(view, sizeof s.view);
    if (view_len == sizeof s.view) {
        fuzz_die("a batch of seq %llu names a view past %d bytes", (unsigned long long)s.seq,
                 STORE_MAX_NAME);
    }
    memcpy(s.view, view, view_len + 1);
    const char *position = wal_batch_stream_position(batch);
    if (position != NULL) {
        size_t len = strnlen(position, STORE_STREAM_POSITION_LEN);
        if (len == 0 || len == STORE_STREAM_POSITION_LEN) {
            fuzz_die("a batch of seq %llu has a stream position of %zu bytes",
                     (unsigned long long)s.seq, len);
        }
        memcpy(s.stream_position, position, len + 1);
    }
    for (size_t i = 0; i < s.rows; i++) {
        const struct store_row *row = wal_batch_row(batch, i);
        size_t bytes = wal_batch_row_bytes(batch, i);
        if ((uintptr_t)row % 8 != 0 || bytes < sizeof(*row)) {
            fuzz_die("row %zu of seq %llu: %zu bytes at %p", i, (unsigned long long)s.seq, bytes,
                     (const void *)row);
        }
        s.rows_hash = s.rows_hash * 31 + fuzz_hash_bytes(row, bytes); /* every byte of the image */
    }
    g.rows += s.rows;
    enum wal_replay_outcome outcome = WAL_REPLAY_APPLIED;
    switch (r->outcomes) {
    case OUTCOME_CYCLE:
        outcome = cycle[index % (sizeof cycle / sizeof cycle[0])];
        break;
    case OUTCOME_FAIL_2ND:
        outcome = index == 1 ? WAL_REPLAY_FAILED : WAL_REPLAY_APPLIED;
        break;
    case OUTCOME_FAIL_1ST:
        outcome = index == 0 ? WAL_REPLAY_FAILED : WAL_REPLAY_APPLIED;
        break;
    default:
        break;
    }
    if (outcome == WAL_REPLAY_FAILED) {
        r->failed = true;
    } else {
        r->applied += outcome == WAL_REPLAY_APPLIED;
        _note(r, &s);
    }
    return outcome;
}

/* wal_setup() and wal_replay() into *r; returns wal_replay()'s result. */
static int64_t _replay(struct replay *r, uint64_t held_through) {
    struct wal_options o = _options();
    char err[512];
    if (wal_setup(&o, err, sizeof err) != 0) {
        fuzz_die("wal_setup: %s", err);
    }
    int64_t n = wal_replay(_apply, r, held_through, err, sizeof err);
    g.replays++;
    g.replays_refused += n < 0;
    g.batches += r->n;
    /* The folder is there and writable: only a record the callback refused fails a replay. */
    if (n < 0 && !r->failed) {
        fuzz_die("wal_replay failed: %s", err);
    }
    if (n >= 0 && (r->failed || (uint64_t)n != r->applied)) {
        fuzz_die("wal_replay returned %lld, the callback applied %zu%s", (long long)n, r->applied,
                 r->failed ? " and refused one" : "");
    }
    return n;
}

struct appended {
    bool done;
    char error[256];
};

static void _done(struct wal_batch *batch, const char *error, void *arg) {
    (void)batch;
    struct appended *a = arg;
    a->done = true;
    snprintf(a->error, sizeof a->error, "%s", error != NULL ? error : "");
}

/*
 * After a replay that handed over `first`'s batches: one batch more, a stop, and a second
 * replay that must hand over the same batches and the new one after them.
 */
static void _append_and_check(const struct replay *first) {
    uint64_t expected_seq = wal_applied_seq() + 1;
    /* A replay reads records numbered below 2^64 - 1 only; numbers that high are reached by
     * no log (one record per PushRows batch), only by the fuzzer's headers. */
    if (expected_seq == UINT64_MAX || expected_seq == 0) {
        return;
    }
    struct wal_batch *batch = wal_batch_create("v", g.fingerprint);
    size_t bytes;
    struct store_row *image = fuzz_row_image(g.schema, 1000, 5000, 0, false, &bytes);
    if (batch == NULL || wal_batch_add(batch, image, bytes) != 0) {
        fuzz_die("out of memory");
    }
    struct seen added = {.seq = expected_seq, .fingerprint = g.fingerprint, .rows = 1};
    added.rows_hash = fuzz_hash_bytes(image, bytes);
    snprintf(added.view, sizeof added.view, "v");
    free(image);
    struct appended a = {0};
    wal_append(batch, _done, &a);
    wal_teardown(); /* after every queued batch's `done` */
    if (!a.done || a.error[0] != '\0') {
        fuzz_die("the batch appended after the replay was refused: %s",
                 a.done ? a.error : "done never called");
    }
    struct replay second = {0};
    _replay(&second, 0);
    if (second.n != first->n + 1) {
        fuzz_die("the second replay handed over %zu batches, the first %zu and one appended",
                 second.n, first->n);
    }
    for (size_t i = 0; i < second.n; i++) {
        const struct seen *want = i < first->n ? &first->seen[i] : &added;
        const struct seen *got = &second.seen[i];
        if (got->seq != want->seq || got->fingerprint != want->fingerprint ||
            got->rows != want->rows || got->rows_hash != want->rows_hash ||
            strcmp(got->view, want->view) != 0 ||
            strcmp(got->stream_position, want->stream_position) != 0) {
            fuzz_die("batch %zu of the second replay (seq %llu, view %s, %zu rows) is not the "
                     "one %s (seq %llu, view %s, %zu rows)",
                     i, (unsigned long long)got->seq, got->view, got->rows,
                     i < first->n ? "the first replay handed over" : "appended",
                     (unsigned long long)want->seq, want->view, want->rows);
        }
    }
    free(second.seen);
    g.appends_checked++;
}

struct read_rows {
    const struct store_table *table;
    uint64_t hash;
};

static int _read_row(const struct store_row *row, void *arg) {
    struct read_rows *r = arg;
    g.catalog_rows++;
    r->hash ^= fuzz_read_row(r->table, row);
    return 0;
}

/*
 * wal_replay_into_catalog() into view v emptied (as at a start without checkpoints), then every
 * row stored read. The catalog lives across inputs: destroying it waits for what liburcu's
 * call_rcu thread frees (10 ms, many replays' time); the table each input replaces is freed
 * after a grace period instead.
 */
static void _replay_into_catalog(uint64_t held_through) {
    char err[512];
    if (g.catalog == NULL) {
        g.catalog = store_catalog_create(1);
        if (g.catalog == NULL ||
            store_catalog_add_view(g.catalog, store_schema_clone(g.schema), err, sizeof err) != 0) {
            fuzz_die("catalog: %s", err);
        }
    }
    struct store_view *view = store_catalog_find(g.catalog, "v");
    struct store_table_options options = {.shards = store_catalog_shards(g.catalog)};
    struct store_table *empty =
        store_table_create(store_view_schema(view), &options, err, sizeof err);
    if (empty == NULL) {
        fuzz_die("table: %s", err);
    }
    store_table_seal(empty);
    store_view_restore(view, empty, 0, 0, "");
    store_view_set_stream_applied(view, "");
    struct wal_options o = _options();
    if (wal_setup(&o, err, sizeof err) != 0) {
        fuzz_die("wal_setup: %s", err);
    }
    uint64_t skip_through[1] = {held_through};
    /* -1 when a row disagrees with its length: the rows before it are stored all the same. */
    wal_replay_into_catalog(g.catalog, skip_through, err, sizeof err);
    g.catalog_replays++;
    char applied[STORE_STREAM_POSITION_LEN];
    store_view_stream_applied(view, applied, sizeof applied); /* what the replay set */
    store_read_lock();
    struct read_rows r = {.table = store_view_table(view),
                          .hash = fuzz_hash_bytes(applied, strlen(applied))};
    for (uint32_t s = 0; s < store_table_shards(r.table); s++) {
        store_table_scan_shard(r.table, s, _read_row, &r);
    }
    store_read_unlock();
    fuzz_sink = r.hash;
    wal_teardown();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g.ready) {
        _setup();
    }
    if (size < INPUT_HEADER) {
        return 0;
    }
    uint8_t flags = data[0];
    uint64_t held_through = data[1];
    unsigned segments = (flags & SEGMENTS_MASK) + 1;
    _clear();
    _write_segments(data + INPUT_HEADER, size - INPUT_HEADER,
                    segments < MAX_SEGMENTS ? segments : MAX_SEGMENTS);
    if (flags & FLAG_CATALOG) {
        _replay_into_catalog(held_through);
        return 0;
    }
    struct replay first = {.outcomes = (flags >> OUTCOME_SHIFT) & OUTCOME_MASK};
    int64_t n = _replay(&first, held_through);
    if (n >= 0 && (flags & FLAG_APPEND)) {
        _append_and_check(&first);
    }
    wal_teardown();
    free(first.seen);
    return 0;
}

#ifdef FSD_FUZZ_REPLAY
/* ---- seeds: what the real log writes -------------------------------------------------------- */

/* Starts the log on the scratch folder (replaying what is there) with `held_through`. */
static void _seed_open(uint64_t held_through) {
    struct replay r = {0};
    _replay(&r, held_through);
    free(r.seen);
}

/* A batch of `rows` rows from entity `first_id`: every third a tombstone when `tombstones`;
 * created times none, absent and stored in turn. */
static struct wal_batch *_seed_batch(int64_t first_id, size_t rows, bool tombstones) {
    static const int64_t created[] = {0, STORE_CREATED_NONE, 7};
    struct wal_batch *batch = wal_batch_create("v", g.fingerprint);
    for (size_t i = 0; batch != NULL && i < rows; i++) {
        int64_t id = first_id + (int64_t)i;
        size_t bytes;
        struct store_row *image = fuzz_row_image(g.schema, id, 1000 + id, created[i % 3],
                                                 tombstones && i % 3 == 2, &bytes);
        if (wal_batch_add(batch, image, bytes) != 0) {
            fuzz_die("out of memory");
        }
        free(image);
    }
    if (batch == NULL) {
        fuzz_die("out of memory");
    }
    return batch;
}

/* One run of the log: a start with `held_through`, `batches` batches appended, a stop. A run
 * that writes begins a segment of its own. */
static void _seed_run(uint64_t held_through, int64_t first_id, size_t batches) {
    _seed_open(held_through);
    struct appended a[8] = {0};
    for (size_t b = 0; b < batches && b < 8; b++) {
        struct wal_batch *batch = _seed_batch(first_id + (int64_t)b * 4, 2 + b, b % 2 == 1);
        /* The second batch of a run as a stream consumer logs it. */
        char position[32];
        snprintf(position, sizeof position, "1700000000000-%lld", (long long)first_id + 1);
        if (b == 1 && wal_batch_end_at_stream_position(batch, position) != 0) {
            fuzz_die("out of memory");
        }
        wal_append(batch, _done, &a[b]);
    }
    wal_teardown();
    for (size_t b = 0; b < batches && b < 8; b++) {
        if (a[b].error[0] != '\0') {
            fuzz_die("seed append: %s", a[b].error);
        }
    }
}

/* Zeroes the hashes of a segment: the harness fills them in again. */
static void _zero_hashes(uint8_t *p, size_t size) {
    if (size < WAL_SEGMENT_HEADER_BYTES) {
        return;
    }
    fuzz_put_u64(p + 24, 0);
    size_t off = WAL_SEGMENT_HEADER_BYTES;
    while (size - off >= WAL_RECORD_HEADER_BYTES) {
        size_t payload = wal_get_u32(p + off);
        if (payload > size - off - WAL_RECORD_HEADER_BYTES) {
            break;
        }
        fuzz_put_u64(p + off + 16, 0);
        off += WAL_RECORD_HEADER_BYTES + payload;
    }
}

enum { SEED_AS_IS, SEED_ZERO_HASHES, SEED_CUT_LAST, SEED_EMPTY_LAST };

/* Writes the scratch folder's segments (at most three) as one input to out/name. */
static void _seed_emit(const char *out, const char *name, uint8_t flags, uint8_t held_through,
                       int how) {
    uint64_t *firsts = NULL;
    size_t n = 0;
    char err[256];
    if (wal_list_segments(g.wal_fd, &firsts, &n, err, sizeof err) != 0 || n == 0 ||
        n > MAX_SEGMENTS) {
        fuzz_die("seed %s: %zu segments %s", name, n, err);
    }
    uint8_t *input = malloc(1 << 16);
    if (input == NULL) {
        fuzz_die("out of memory");
    }
    size_t len = 0;
    input[len++] = (uint8_t)((flags & ~SEGMENTS_MASK) | (n - 1));
    input[len++] = held_through;
    for (size_t i = 0; i < n; i++) {
        char seg_name[32], path[256];
        wal_segment_name(seg_name, sizeof seg_name, firsts[i]);
        snprintf(path, sizeof path, "%s/%s", g.wal_dir, seg_name);
        size_t bytes;
        uint8_t *seg = fuzz_read_file(path, &bytes);
        bool last = i + 1 == n;
        if (seg == NULL || len + bytes + 3 > (1 << 16)) {
            fuzz_die("seed %s: %s", name, path);
        }
        if (how == SEED_ZERO_HASHES) {
            _zero_hashes(seg, bytes);
        } else if (last && how == SEED_CUT_LAST && bytes > WAL_SEGMENT_HEADER_BYTES + 20) {
            bytes -= 20; /* a write the crash interrupted */
        } else if (last && how == SEED_EMPTY_LAST) {
            bytes = WAL_SEGMENT_HEADER_BYTES; /* a crash right after the segment was made */
        }
        if (!last) {
            input[len++] = (uint8_t)bytes;
            input[len++] = (uint8_t)(bytes >> 8);
        }
        input[len++] = 0; /* named for its header */
        memcpy(input + len, seg, bytes);
        len += bytes;
        free(seg);
    }
    free(firsts);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", out, name);
    fuzz_write_file(AT_FDCWD, path, input, len);
    free(input);
    printf("%s: %zu bytes, %zu segments\n", path, len, n);
}

static int _write_seeds(const char *out) {
    _setup();
    /* One segment of three batches (rows, tombstones, created times of each kind). */
    _clear();
    _seed_run(0, 0, 3);
    _seed_emit(out, "one-segment", 0, 0, SEED_AS_IS);
    _seed_emit(out, "one-segment-append", FLAG_APPEND, 0, SEED_AS_IS);
    _seed_emit(out, "one-segment-torn-tail", FLAG_APPEND, 0, SEED_CUT_LAST);
    _seed_emit(out, "one-segment-catalog", FLAG_CATALOG, 0, SEED_AS_IS);
    _seed_emit(out, "one-segment-catalog-hashes-filled", FLAG_CATALOG, 1, SEED_ZERO_HASHES);
    /* Three segments, one per run of the log writer. */
    _clear();
    _seed_run(0, 10, 2);
    _seed_run(0, 20, 1);
    _seed_run(0, 30, 1);
    _seed_emit(out, "three-segments", 0, 0, SEED_AS_IS);
    _seed_emit(out, "three-segments-outcomes", OUTCOME_CYCLE << OUTCOME_SHIFT, 0, SEED_AS_IS);
    _seed_emit(out, "three-segments-apply-fails", OUTCOME_FAIL_2ND << OUTCOME_SHIFT, 0, SEED_AS_IS);
    _seed_emit(out, "three-segments-hashes-filled-append", FLAG_APPEND, 2, SEED_ZERO_HASHES);
    _seed_emit(out, "three-segments-empty-last", FLAG_APPEND, 0, SEED_EMPTY_LAST);
    /* A jump record: the second run's checkpoints held records through 10. */
    _clear();
    _seed_run(0, 40, 2);
    _seed_run(10, 50, 1);
    _seed_emit(out, "jump", FLAG_APPEND, 0, SEED_AS_IS);
    _seed_emit(out, "jump-held-append", FLAG_APPEND, 40, SEED_AS_IS);
    _seed_emit(out, "jump-catalog-held", FLAG_CATALOG, 11, SEED_AS_IS);
    _clear();
    return 0;
}

int main(int argc, char **argv) {
    int rc;
    if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0) {
        rc = _write_seeds(argv[2]);
    } else {
        rc = fuzz_replay_main(argc, argv);
        printf("  %llu replays (%llu refused by the callback), %llu batches of %llu rows handed "
               "over, %llu appends checked (%llu skipped: _append_and_check); %llu replays into a "
               "catalog, %llu rows stored\n",
               (unsigned long long)g.replays, (unsigned long long)g.replays_refused,
               (unsigned long long)g.batches, (unsigned long long)g.rows,
               (unsigned long long)g.appends_checked, (unsigned long long)g.appends_skipped,
               (unsigned long long)g.catalog_replays, (unsigned long long)g.catalog_rows);
        printf("  %llu values pointing outside their rows not read (fuzz_read_row)\n",
               (unsigned long long)fuzz_values_outside);
    }
    if (g.ready) {
        store_catalog_destroy(g.catalog);
        store_schema_destroy(g.schema);
        store_rcu_barrier();
        store_rcu_thread_offline();
    }
    return rc;
}
#endif
