#pragma once
/*
 * What the durability fuzz targets (fuzz_wal.c, fuzz_checkpoint.c) share: view v's schema, row
 * images of it, a scratch folder, whole-file reads and writes, a reader that touches every
 * value of a row as a lookup would, the hashes the harnesses fill in, and the replay's main.
 *
 *   view v   int64 key id; features x (int64), name (string), score (double)
 *
 * Define FUZZ_NAME (the target's name, for its messages) before including it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "../lib/fuzz_replay.h"
#include "../store/fixtures.h"
#include "store/row.h"
#include "store/schema.h"
#include "store/table.h"

/* Where the readers' hashes go, so that no read is optimised away. */
static volatile uint64_t fuzz_sink;

__attribute__((format(printf, 1, 2), noreturn)) static inline void fuzz_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", FUZZ_NAME);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* View v (see above), finalized. */
static inline struct store_schema *fuzz_schema(void) {
    char err[256];
    struct store_schema *s = store_schema_create("v", 0);
    if (s == NULL || store_schema_add_key(s, "id", STORE_KEY_INT64, err, sizeof err) != 0 ||
        store_schema_add_feature(s, "x", STORE_TYPE_INT64, err, sizeof err) != 0 ||
        store_schema_add_feature(s, "name", STORE_TYPE_STRING, err, sizeof err) != 1 ||
        store_schema_add_feature(s, "score", STORE_TYPE_DOUBLE, err, sizeof err) != 2 ||
        store_schema_finalize(s, err, sizeof err) != 0) {
        fuzz_die("schema: %s", err);
    }
    return s;
}

/*
 * A malloc'd row image of view v for entity `id` (*bytes: its size), marked STORE_ROW_LIVE as
 * the live path logs it: x = id * 10, name "n<id>" (null when id is odd), score id / 4; or a
 * tombstone.
 */
static inline struct store_row *fuzz_row_image(const struct store_schema *schema, int64_t id,
                                               int64_t event_ts_us, int64_t created_ts_us,
                                               bool tombstone, size_t *bytes) {
    uint8_t kb[8];
    struct store_key key = fixture_int_key(id, kb);
    struct store_row *image;
    if (tombstone) {
        image = store_row_image(schema, &key, NULL, event_ts_us, created_ts_us);
    } else {
        struct store_row_builder b;
        if (store_row_builder_init(&b, schema) != 0) {
            fuzz_die("out of memory");
        }
        store_row_builder_reset(&b, event_ts_us, created_ts_us);
        store_row_set_int64(&b, 0, id * 10);
        if (id % 2 == 0) {
            char name[32];
            snprintf(name, sizeof name, "n%lld", (long long)id);
            store_row_set_bytes(&b, 1, name, (uint32_t)strlen(name));
        }
        store_row_set_double(&b, 2, (double)id / 4);
        image = store_row_image(schema, &key, &b, event_ts_us, created_ts_us);
        store_row_builder_deinit(&b);
    }
    if (image == NULL) {
        fuzz_die("out of memory");
    }
    image->flags |= STORE_ROW_LIVE;
    *bytes = store_row_total_size(schema, image);
    return image;
}

/*
 * FNV-1a of `len` bytes, read here rather than in libxxhash, which is not built with ASan: so
 * ASan checks every byte read.
 */
static inline uint64_t fuzz_hash_bytes(const void *data, size_t len) {
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ p[i]) * 0x100000001b3ull;
    }
    return h;
}

/*
 * Whether the bytes of value `index` of `row` lie inside the row (store_row_total_size), as
 * they do in every row fsd builds.
 */
static inline bool fuzz_value_inside_row(const struct store_schema *schema,
                                         const struct store_row *row, uint32_t index) {
    const struct store_feature *feature = &schema->features[index];
    if (!store_type_is_var(feature->type)) {
        return true; /* in the fixed section, inside the row's size */
    }
    uint32_t ref[2]; /* {offset from the row's start, bytes} */
    memcpy(ref, store_row_fixed(row) + feature->fixed_offset, sizeof ref);
    return (uint64_t)ref[0] + ref[1] <= store_row_total_size(schema, row);
}

/* Values found pointing outside their rows: must stay 0 (the readers refuse such rows). */
static uint64_t fuzz_values_outside;

/*
 * Reads every value of `row` as a lookup's reply would (the bytes of strings too) and returns
 * a hash of them, so nothing is optimised away and ASan sees every read.
 *
 * A value pointing outside its row is a finding: ckpt_load() and wal_replay_into_catalog()
 * refuse such rows (store_row_check).
 */
static inline uint64_t fuzz_read_row(const struct store_table *table, const struct store_row *row) {
    const struct store_schema *schema = store_table_schema(table);
    uint64_t h = fuzz_hash_bytes(store_row_key(row), row->key_len);
    if (row->flags & STORE_ROW_TOMBSTONE) {
        return h; /* what a lookup finds of it: nothing */
    }
    for (uint32_t i = 0; i < schema->nfeatures; i++) {
        struct store_value v;
        bool has_value;
        enum store_status status = store_table_read(table, row, i, 0, &v, &has_value);
        h = h * 31 + (uint64_t)status;
        if (!has_value) {
            continue;
        }
        if (status == STORE_PRESENT && !fuzz_value_inside_row(schema, row, i)) {
            fuzz_values_outside++;
            /* As a lookup would: ASan may see the read first. */
            fuzz_sink = fuzz_hash_bytes(v.var.data, v.var.bytes);
            fuzz_die("value %s of a row stored points outside the row", schema->features[i].name);
        }
        if (store_type_is_var(v.type)) {
            h ^= fuzz_hash_bytes(v.var.data, v.var.bytes);
        } else {
            uint64_t bits;
            memcpy(&bits, &v.i64, sizeof bits);
            h ^= bits;
        }
    }
    return h;
}

/* A new folder for the target's files, on tmpfs when there is one (fsync costs nothing there,
 * and the log fsyncs what it cuts and writes). `buf` holds its path. */
static inline void fuzz_scratch_dir(const char *name, char *buf, size_t len) {
    struct stat st;
    const char *parent = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
    snprintf(buf, len, "%s/%s.XXXXXX", parent, name);
    if (mkdtemp(buf) == NULL) {
        snprintf(buf, len, "/tmp/%s.XXXXXX", name);
        if (mkdtemp(buf) == NULL) {
            fuzz_die("mkdtemp %s: %s", buf, strerror(errno));
        }
    }
}

/* Writes `len` bytes to `path` (at dir_fd, or AT_FDCWD), replacing it. No fsync. */
static inline void fuzz_write_file(int dir_fd, const char *path, const void *data, size_t len) {
    int fd = openat(dir_fd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        fuzz_die("create %s: %s", path, strerror(errno));
    }
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w <= 0) {
            fuzz_die("write %s: %s", path, strerror(errno));
        }
        p += w;
        len -= (size_t)w;
    }
    close(fd);
}

static inline uint64_t fuzz_get_u64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline void fuzz_put_u64(uint8_t *p, uint64_t v) {
    memcpy(p, &v, 8);
}

/*
 * Sets the u64 hash at `p` to `hash` when it is zero, and returns what it holds then. The
 * fuzzer cannot forge XXH3, and files are not protected by their hashes against anyone who
 * can write them anyway: a zero hash asks the harness to fill it in, so the checks behind it
 * (the lengths, the sequence, the row images) get fuzzed too. A real hash is 0 once in 2^64.
 */
static inline uint64_t fuzz_fill_hash(uint8_t *p, uint64_t hash) {
    if (fuzz_get_u64(p) == 0) {
        fuzz_put_u64(p, hash);
    }
    return fuzz_get_u64(p);
}
