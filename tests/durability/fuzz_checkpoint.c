/*
 * Fuzz target for loading a checkpoint at start (ckpt_load in durability/checkpoint.c): the
 * input is one checkpoint file, written as DIR/v.ckpt and loaded for view v (fuzz_fixtures.h:
 * int64 key id; x int64, name string, score double) into a table of 8 shards. A table that
 * loads is read as lookups read it: a lookup of ids 0..15, then every row and tombstone of
 * every shard with every value (string bytes too), then destroyed.
 *
 * Checked: anything but CKPT_LOADED leaves no table; a loaded table holds no more rows and
 * tombstones than the file's trailer counted, and its stream positions are C strings. ASan:
 * nothing read out of bounds, nothing leaked.
 *
 * A zero hash (the header's, a chunk's, following the chunks' lengths, the trailer's) is
 * filled in by the harness (fuzz_fill_hash), so the checks behind the hashes get fuzzed.
 *
 * Built with libFuzzer when the compiler is Clang (fuzz_checkpoint_load); always built as
 * fuzz_checkpoint_load_replay, whose main() runs the target over the files it is given
 * (checkpoint_corpus/), their prefixes and byte corruptions, so CTest replays them under
 * every build, sanitizers too. `fuzz_checkpoint_load_replay --write-seeds DIR` writes the
 * seeds into DIR: checkpoints ckpt_write wrote of a small catalog, one of them re-chunked.
 *
 *   mkdir -p /tmp/corpus && build/tests/fuzz_checkpoint_load /tmp/corpus \
 *       tests/durability/checkpoint_corpus -max_total_time=300  (new inputs go to /tmp)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "durability/checkpoint.h"
#define FUZZ_NAME "fuzz_checkpoint_load"
#include "fuzz_fixtures.h"
#include "store/catalog.h"
#include "store/rcu.h"
#include "store/row.h"
#include "store/table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The format (checkpoint.h draws it, version 2); checkpoint.c keeps these to itself. */
#define HEADER_BYTES   192
#define HEADER_HASH_AT 184
#define CHUNK_HEADER   16
#define TRAILER_BYTES  32
#define SHARDS         8
#define LOOKUPS        16
#define CKPT_RESULTS   4  /* enum ckpt_load_result */
#define MIN_ROW_BYTES  32 /* in a chunk: u32 bytes, u32 0, a row header, a key padded to 8 */

static struct {
    bool ready;
    char dir[128];
    char path[160]; /* dir/v.ckpt */
    struct store_schema *schema;
    uint64_t results[CKPT_RESULTS + 1]; /* by enum ckpt_load_result */
    uint64_t rows_read;                 /* rows and tombstones of loaded tables */
    uint64_t trailers_skipped;          /* trailers counting more rows than fit: refused */
} g;

static void _remove_scratch(void) {
    unlink(g.path);
    rmdir(g.dir);
}

static void _setup(void) {
    store_rcu_thread_online(); /* reading a table is a read section */
    g.schema = fuzz_schema();
    fuzz_scratch_dir("fuzz_ckpt", g.dir, sizeof g.dir);
    snprintf(g.path, sizeof g.path, "%s/v.ckpt", g.dir);
    atexit(_remove_scratch);
    g.ready = true;
}

/* Fills in the zero hashes of a checkpoint file (see the top of the file). */
static void _fill_hashes(uint8_t *p, size_t size) {
    if (size < HEADER_BYTES + TRAILER_BYTES) {
        return;
    }
    uint64_t header_hash = fuzz_fill_hash(p + HEADER_HASH_AT, XXH3_64bits(p, HEADER_HASH_AT));
    size_t off = HEADER_BYTES, end = size - TRAILER_BYTES;
    while (end - off >= CHUNK_HEADER) {
        uint32_t len;
        memcpy(&len, p + off, 4);
        if (len > end - off - CHUNK_HEADER) {
            break;
        }
        fuzz_fill_hash(p + off + 8, XXH3_64bits(p + off + CHUNK_HEADER, len));
        off += CHUNK_HEADER + len;
    }
    uint8_t *trailer = p + end;
    fuzz_fill_hash(trailer + 24, XXH3_64bits_withSeed(trailer, 24, header_hash));
}

/*
 * Whether the trailer checks and counts more rows than the file can hold.
 *
 * ckpt_load() refuses such a file before it sizes a table by the count: loading one is a
 * finding.
 */
static bool _trailer_overstates(const uint8_t *p, size_t size) {
    if (size < HEADER_BYTES + TRAILER_BYTES) {
        return false;
    }
    const uint8_t *trailer = p + size - TRAILER_BYTES;
    uint64_t rows = fuzz_get_u64(trailer + 8);
    return memcmp(trailer, "FSDCKEND", 8) == 0 &&
           fuzz_get_u64(trailer + 24) ==
               XXH3_64bits_withSeed(trailer, 24, fuzz_get_u64(p + HEADER_HASH_AT)) &&
           rows > (size - HEADER_BYTES - TRAILER_BYTES) / MIN_ROW_BYTES;
}

struct read_rows {
    const struct store_table *table;
    uint64_t rows;
    uint64_t hash;
};

static int _read_row(const struct store_row *row, void *arg) {
    struct read_rows *r = arg;
    r->rows++;
    r->hash ^= fuzz_read_row(r->table, row);
    return 0;
}

/* Reads the loaded table as lookups would. */
static void _read_table(const struct store_table *table, const struct ckpt_info *info) {
    struct read_rows r = {.table = table};
    store_read_lock();
    for (int64_t id = 0; id < LOOKUPS; id++) {
        uint8_t kb[8];
        struct store_key key = fixture_int_key(id, kb);
        const struct store_row *row = store_table_get(table, &key);
        if (row != NULL) {
            r.hash ^= fuzz_read_row(table, row);
        } else {
            for (uint32_t i = 0; i < store_table_schema(table)->nfeatures; i++) {
                struct store_value v;
                bool has_value;
                r.hash += (uint64_t)store_table_read(table, NULL, i, 0, &v, &has_value);
            }
        }
    }
    for (uint32_t s = 0; s < store_table_shards(table); s++) {
        store_table_scan_shard(table, s, _read_row, &r);
    }
    store_read_unlock();
    fuzz_sink = r.hash;
    g.rows_read += r.rows;
    if (r.rows > info->rows) {
        fuzz_die("the table holds %llu rows and tombstones, the file %llu",
                 (unsigned long long)r.rows, (unsigned long long)info->rows);
    }
    if (strnlen(info->stream_position, sizeof info->stream_position) ==
            sizeof info->stream_position ||
        strnlen(info->stream_applied, sizeof info->stream_applied) == sizeof info->stream_applied) {
        fuzz_die("a stream position is not terminated");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g.ready) {
        _setup();
    }
    uint8_t *file = malloc(size ? size : 1);
    if (file == NULL) {
        fuzz_die("out of memory");
    }
    if (size > 0) {
        memcpy(file, data, size);
    }
    _fill_hashes(file, size);
    bool overstates = _trailer_overstates(file, size);
    g.trailers_skipped += overstates;
    fuzz_write_file(AT_FDCWD, g.path, file, size);
    free(file);
    struct store_table *table = (struct store_table *)(uintptr_t)1; /* must become NULL */
    struct ckpt_info info;
    char err[512];
    enum ckpt_load_result result =
        ckpt_load(g.dir, g.schema, false, SHARDS, &table, &info, err, sizeof err);
    g.results[result < CKPT_RESULTS ? result : CKPT_RESULTS]++;
    if (result != CKPT_LOADED) {
        if (table != NULL ||
            (result != CKPT_NONE && result != CKPT_LAYOUT_CHANGED && result != CKPT_DAMAGED)) {
            fuzz_die("ckpt_load returned %d, table %p", (int)result, (void *)table);
        }
        return 0;
    }
    if (table == NULL) {
        fuzz_die("ckpt_load loaded no table");
    }
    if (overstates) {
        fuzz_die("ckpt_load loaded a file whose end counts more rows than it can hold");
    }
    _read_table(table, &info);
    store_table_destroy(table);
    return 0;
}

#ifdef FSD_FUZZ_REPLAY
/* ---- seeds: what ckpt_write writes ---------------------------------------------------------- */

/* A catalog with view v (`schema`): a snapshot of ids 0..n-1 at stream position
 * "1700000000000-7", then live updates of every third id (created times stored) and live
 * deletes of every fifth, the last stream entry applied "1700000000000-9". */
static struct store_catalog *_seed_catalog(struct store_schema *schema, int64_t n) {
    char err[256];
    struct store_catalog *c = store_catalog_create(SHARDS);
    if (c == NULL || store_catalog_add_view(c, schema, err, sizeof err) != 0) {
        fuzz_die("catalog: %s", err);
    }
    struct store_view *v = store_catalog_find(c, "v");
    if (n == 0) {
        return c; /* never loaded: an empty table, version 0 */
    }
    const struct store_schema *s = store_view_schema(v);
    struct store_table *t = store_table_create(s, NULL, err, sizeof err);
    for (int64_t id = 0; t != NULL && id < n; id++) {
        size_t bytes;
        struct store_row *image = fuzz_row_image(s, id, 100, STORE_CREATED_NONE, false, &bytes);
        image->flags &= (uint8_t)~STORE_ROW_LIVE; /* a snapshot's row */
        store_table_upsert_row(t, image);
        free(image);
    }
    if (t == NULL) {
        fuzz_die("table: %s", err);
    }
    store_table_seal(t);
    if (store_view_load_begin(v) != 0 ||
        store_view_load_set_stream_position(v, "1700000000000-7") != 0) {
        fuzz_die("load of view v");
    }
    store_read_lock();
    store_view_load_commit(v, t, 12345);
    for (int64_t id = 0; id < n; id++) {
        if (id % 3 == 0 || id % 5 == 0) {
            size_t bytes;
            bool tombstone = id % 5 == 0;
            struct store_row *image =
                fuzz_row_image(s, id, tombstone ? 300 : 200, 5, tombstone, &bytes);
            store_view_upsert_image(v, image);
            free(image);
        }
    }
    store_read_unlock();
    if (store_view_set_stream_applied(v, "1700000000000-9") != 0) {
        fuzz_die("stream position");
    }
    return c;
}

/* Writes view v of `c` as a checkpoint in `dir` and returns the file (malloc'd, *len). */
static uint8_t *_seed_write(struct store_catalog *c, const char *dir, uint64_t log_seq,
                            size_t *len) {
    struct ckpt_info info;
    char err[512], path[256];
    if (ckpt_write(dir, store_catalog_find(c, "v"), log_seq, 0, &info, err, sizeof err) != 0) {
        fuzz_die("ckpt_write: %s", err);
    }
    snprintf(path, sizeof path, "%s/v.ckpt", dir);
    uint8_t *file = fuzz_read_file(path, len);
    if (file == NULL) {
        fuzz_die("%s: %s", path, strerror(errno));
    }
    return file;
}

/* Zeroes the file's hashes (the harness fills them in). */
static void _zero_hashes(uint8_t *p, size_t size) {
    fuzz_put_u64(p + HEADER_HASH_AT, 0);
    size_t off = HEADER_BYTES, end = size - TRAILER_BYTES;
    while (end - off >= CHUNK_HEADER) {
        uint32_t len;
        memcpy(&len, p + off, 4);
        if (len > end - off - CHUNK_HEADER) {
            break;
        }
        fuzz_put_u64(p + off + 8, 0);
        off += CHUNK_HEADER + len;
    }
    fuzz_put_u64(p + end + 24, 0);
}

/*
 * The same rows in chunks of `per_chunk` rows (the trailer's chunk count to match), hashes
 * zeroed: real files have one chunk per MiB, and seeds stay small. Returns a malloc'd file.
 */
static uint8_t *_rechunk(const uint8_t *p, size_t size, uint32_t per_chunk, size_t *out_len) {
    size_t cap = size * 2 + 1024, len = HEADER_BYTES;
    uint8_t *out = calloc(1, cap);
    memcpy(out, p, HEADER_BYTES);
    uint64_t chunks = 0;
    size_t chunk_at = 0;
    uint32_t in_chunk = 0, chunk_bytes = 0;
    size_t off = HEADER_BYTES, end = size - TRAILER_BYTES;
    while (end - off >= CHUNK_HEADER) {
        uint32_t clen, nrows;
        memcpy(&clen, p + off, 4);
        memcpy(&nrows, p + off + 4, 4);
        const uint8_t *row = p + off + CHUNK_HEADER;
        for (uint32_t r = 0; r < nrows; r++) {
            uint32_t bytes;
            memcpy(&bytes, row, 4);
            size_t step = 8 + ((bytes + 7u) & ~7u);
            if (in_chunk == 0) {
                chunk_at = len;
                len += CHUNK_HEADER;
                chunks++;
            }
            memcpy(out + len, row, step);
            len += step;
            chunk_bytes += (uint32_t)step;
            row += step;
            if (++in_chunk == per_chunk || r + 1 == nrows) {
                memcpy(out + chunk_at, &chunk_bytes, 4);
                memcpy(out + chunk_at + 4, &in_chunk, 4);
                in_chunk = 0;
                chunk_bytes = 0;
            }
        }
        off += CHUNK_HEADER + clen;
    }
    memcpy(out + len, p + end, TRAILER_BYTES);
    memcpy(out + len + 16, &chunks, 8);
    len += TRAILER_BYTES;
    _zero_hashes(out, len);
    *out_len = len;
    return out;
}

static void _seed_emit(const char *out, const char *name, const uint8_t *file, size_t len) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", out, name);
    fuzz_write_file(AT_FDCWD, path, file, len);
    printf("%s: %zu bytes\n", path, len);
}

static int _write_seeds(const char *out) {
    _setup();
    char dir[128];
    fuzz_scratch_dir("fuzz_ckpt_seeds", dir, sizeof dir);
    size_t len;
    uint8_t *file;

    struct store_catalog *c = _seed_catalog(fuzz_schema(), 0);
    file = _seed_write(c, dir, 0, &len);
    _seed_emit(out, "no-rows", file, len);
    free(file);
    store_rcu_barrier();
    store_catalog_destroy(c);

    c = _seed_catalog(fuzz_schema(), 24);
    file = _seed_write(c, dir, 77, &len);
    _seed_emit(out, "rows", file, len);
    size_t rechunked_len;
    uint8_t *rechunked = _rechunk(file, len, 5, &rechunked_len);
    _seed_emit(out, "rows-in-chunks-of-5-hashes-filled", rechunked, rechunked_len);
    free(rechunked);
    _zero_hashes(file, len);
    _seed_emit(out, "rows-hashes-filled", file, len);
    free(file);
    store_rcu_barrier();
    store_catalog_destroy(c);

    /* Written for another layout: refused. */
    char err[256];
    struct store_schema *other = store_schema_create("v", 0);
    store_schema_add_key(other, "id", STORE_KEY_INT64, err, sizeof err);
    store_schema_add_feature(other, "x", STORE_TYPE_INT64, err, sizeof err);
    store_schema_add_feature(other, "name", STORE_TYPE_STRING, err, sizeof err);
    store_schema_add_feature(other, "score", STORE_TYPE_DOUBLE, err, sizeof err);
    store_schema_add_feature(other, "extra", STORE_TYPE_INT32, err, sizeof err);
    if (store_schema_finalize(other, err, sizeof err) != 0) {
        fuzz_die("schema: %s", err);
    }
    c = _seed_catalog(other, 3);
    file = _seed_write(c, dir, 5, &len);
    _seed_emit(out, "other-layout", file, len);
    free(file);
    store_rcu_barrier();
    store_catalog_destroy(c);

    char path[256];
    snprintf(path, sizeof path, "%s/v.ckpt", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/v.ckpt.prev", dir);
    unlink(path);
    rmdir(dir);
    return 0;
}

int main(int argc, char **argv) {
    int rc;
    if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0) {
        rc = _write_seeds(argv[2]);
    } else {
        rc = fuzz_replay_main(argc, argv);
        printf("  loaded=%llu none=%llu layout_changed=%llu damaged=%llu, %llu rows read\n",
               (unsigned long long)g.results[CKPT_LOADED], (unsigned long long)g.results[CKPT_NONE],
               (unsigned long long)g.results[CKPT_LAYOUT_CHANGED],
               (unsigned long long)g.results[CKPT_DAMAGED], (unsigned long long)g.rows_read);
        printf("  %llu values pointing outside their rows not read (fuzz_read_row), %llu files "
               "whose trailer counts more rows than they hold not loaded\n",
               (unsigned long long)fuzz_values_outside, (unsigned long long)g.trailers_skipped);
    }
    if (g.ready) {
        store_schema_destroy(g.schema);
        store_rcu_barrier();
        store_rcu_thread_offline();
    }
    return rc;
}
#endif
