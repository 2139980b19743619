/* Checkpoints of views' tables: the format is drawn in checkpoint.h. */
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/clock.h"
#include "common/errors.h"
#include "store/rcu.h"
#include "store/row.h"
#include "store/schema.h"
#include "store/table.h"
#include "wal_internal.h" /* the little-endian accessors the log uses too */

#define CKPT_MAGIC         "FSDCKPT1"
#define CKPT_END_MAGIC     "FSDCKEND"
#define CKPT_VERSION       2
#define CKPT_HEADER_BYTES  192
#define CKPT_HEADER_HASHED 184 /* the header's hash covers the bytes before it */
/* Version 1 (before stream rows were logged) is read too: its header is 128 bytes, its hash at
 * 120, and it has no last applied stream entry. A data_dir written by an older fsd restores. */
#define CKPT_V1_HEADER_BYTES  128
#define CKPT_V1_HEADER_HASHED 120
#define CKPT_CHUNK_HEADER     16
#define CKPT_TRAILER_BYTES    32

static size_t _pad8(size_t n) {
    return (n + 7) & ~(size_t)7;
}

static void _path(char *buf, size_t len, const char *dir, const char *view, const char *suffix) {
    snprintf(buf, len, "%s/%s.ckpt%s", dir, view, suffix);
}

static int _write_all(int fd, const void *data, size_t len) {
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* ---- writing ------------------------------------------------------------------------------- */

struct writer {
    int fd;
    const struct store_schema *schema; /* the writer's own copy */
    uint8_t *chunk;                    /* CKPT_CHUNK_HEADER + up to CKPT_CHUNK_BYTES */
    size_t len;                        /* payload bytes in `chunk` */
    uint32_t rows_in_chunk;
    uint64_t rows, chunks, bytes;
    uint64_t max_rate; /* bytes a second; 0: no limit */
    int64_t started_us;
    uint64_t flushed; /* bytes whose writeback was started (a multiple of the window) */
    int error;        /* errno of the first failed write */
    uint8_t *big;     /* a row larger than a chunk gets a chunk of its own */
};

/*
 * Keeps the write at most `max_rate` bytes a second (0: as fast as it goes), sleeping between
 * shards, outside any read section: for machines where a checkpoint's memory or disk traffic
 * slows lookups. (On the 2-core development machine it did not, once checkpoints wrote over
 * cached pages: restart_bench's lookups while checkpoints are written were 1.14x idle's p99
 * unpaced and 1.22x at 512 MiB/s.)
 */
static void _pace(struct writer *w) {
    if (w->max_rate == 0) {
        return;
    }
    int64_t due_us = w->started_us + (int64_t)((double)w->bytes * 1e6 / (double)w->max_rate);
    int64_t ahead_us = due_us - clock_mono_us();
    if (ahead_us > 0) {
        struct timespec ts = {ahead_us / 1000000, (long)(ahead_us % 1000000) * 1000};
        nanosleep(&ts, NULL);
    }
}

/*
 * Starts the writeback of each whole window written since the last call, and waits for the
 * window before it: writing and the disk then overlap, where one fdatasync at the end waited
 * for all of it after the CPU work. A failure here is not the write's: fdatasync still decides.
 */
static void _writeback(struct writer *w) {
    while (w->bytes - w->flushed >= CKPT_WRITEBACK_BYTES) {
        off_t at = (off_t)w->flushed;
        (void)sync_file_range(w->fd, at, CKPT_WRITEBACK_BYTES, SYNC_FILE_RANGE_WRITE);
        if (at >= (off_t)CKPT_WRITEBACK_BYTES) {
            (void)sync_file_range(w->fd, at - (off_t)CKPT_WRITEBACK_BYTES, CKPT_WRITEBACK_BYTES,
                                  SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                      SYNC_FILE_RANGE_WAIT_AFTER);
        }
        w->flushed += CKPT_WRITEBACK_BYTES;
    }
}

static int _flush_chunk(struct writer *w, uint8_t *chunk, size_t len, uint32_t rows) {
    if (rows == 0) {
        return 0;
    }
    wal_put_u32(chunk, (uint32_t)len);
    wal_put_u32(chunk + 4, rows);
    wal_put_u64(chunk + 8, XXH3_64bits(chunk + CKPT_CHUNK_HEADER, len));
    if (_write_all(w->fd, chunk, CKPT_CHUNK_HEADER + len) != 0) {
        w->error = errno;
        return -1;
    }
    w->chunks++;
    w->bytes += CKPT_CHUNK_HEADER + len;
    return 0;
}

static int _add_row(const struct store_row *row, void *arg) {
    struct writer *w = arg;
    size_t bytes = store_row_total_size(w->schema, row);
    size_t need = 8 + _pad8(bytes);
    if (w->len + need > CKPT_CHUNK_BYTES) {
        if (_flush_chunk(w, w->chunk, w->len, w->rows_in_chunk) != 0) {
            return -1;
        }
        w->len = 0;
        w->rows_in_chunk = 0;
    }
    uint8_t *dst = w->chunk + CKPT_CHUNK_HEADER;
    if (need > CKPT_CHUNK_BYTES) { /* one row above a chunk: a chunk of its own */
        uint8_t *big = calloc(1, CKPT_CHUNK_HEADER + need);
        if (big == NULL) {
            w->error = ENOMEM;
            return -1;
        }
        wal_put_u32(big + CKPT_CHUNK_HEADER, (uint32_t)bytes);
        memcpy(big + CKPT_CHUNK_HEADER + 8, row, bytes);
        int rc = _flush_chunk(w, big, need, 1);
        free(big);
        w->rows += rc == 0;
        return rc;
    }
    wal_put_u32(dst + w->len, (uint32_t)bytes);
    wal_put_u32(dst + w->len + 4, 0);
    memcpy(dst + w->len + 8, row, bytes);
    memset(dst + w->len + 8 + bytes, 0, _pad8(bytes) - bytes);
    w->len += need;
    w->rows_in_chunk++;
    w->rows++;
    return 0;
}

int ckpt_write(const char *dir, struct store_view *view, uint64_t log_seq, uint64_t max_rate,
               struct ckpt_info *info, char *err, size_t err_len) {
    struct store_view_capture now;
    store_view_capture(view, &now);
    return ckpt_write_captured(dir, store_view_name(view), &now, log_seq, max_rate, info, err,
                               err_len);
}

int ckpt_write_captured(const char *dir, const char *name, struct store_view_capture *now,
                        uint64_t log_seq, uint64_t max_rate, struct ckpt_info *info, char *err,
                        size_t err_len) {
    char tmp[1200], final[1200], prev[1200], spare[1200];
    _path(tmp, sizeof tmp, dir, name, ".tmp");
    _path(final, sizeof final, dir, name, "");
    _path(prev, sizeof prev, dir, name, ".prev");
    _path(spare, sizeof spare, dir, name, ".spare");
    struct writer w = {.fd = -1, .max_rate = max_rate};
    w.chunk = malloc(CKPT_CHUNK_HEADER + CKPT_CHUNK_BYTES);
    memset(info, 0, sizeof *info);

    /* The table is pinned, so a swap cannot free it while it is read. */
    struct store_table *table = now->table;
    struct store_schema *schema = now->schema;
    info->snapshot_version = now->version;
    info->loaded_at_us = now->loaded_at_us;
    memcpy(info->stream_position, now->stream_position, sizeof info->stream_position);
    memcpy(info->stream_applied, now->stream_applied, sizeof info->stream_applied);
    info->fingerprint = schema ? store_schema_layout_fingerprint(schema) : 0;
    info->log_seq = log_seq;
    info->written_at_us = clock_wall_us();
    w.schema = schema;
    if (schema == NULL || w.chunk == NULL) {
        errors_set(err, err_len, "checkpoint of %s: out of memory", name);
        goto fail;
    }
    /* The generation before .prev is kept as .spare and written over: its pages are in the
     * page cache already, where a new file takes as many fresh pages as it has bytes (in a
     * VM whose memory is backed on first touch that was most of the write's time). */
    if (rename(spare, tmp) != 0 && errno != ENOENT) {
        unlink(spare);
    }
    w.fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (w.fd < 0) {
        errors_set(err, err_len, "checkpoint of %s: create %s: %s", name, tmp, strerror(errno));
        goto fail;
    }
    uint8_t header[CKPT_HEADER_BYTES] = {0};
    memcpy(header, CKPT_MAGIC, 8);
    wal_put_u32(header + 8, CKPT_VERSION);
    wal_put_u64(header + 16, info->fingerprint);
    wal_put_u64(header + 24, info->log_seq);
    wal_put_u64(header + 32, info->snapshot_version);
    wal_put_u64(header + 40, (uint64_t)info->loaded_at_us);
    wal_put_u64(header + 48, (uint64_t)info->written_at_us);
    wal_put_u32(header + 56, store_table_shards(table));
    memcpy(header + 64, info->stream_position, STORE_STREAM_POSITION_LEN);
    memcpy(header + 112, info->stream_applied, STORE_STREAM_POSITION_LEN);
    uint64_t header_hash = XXH3_64bits(header, CKPT_HEADER_HASHED);
    wal_put_u64(header + CKPT_HEADER_HASHED, header_hash);
    if (_write_all(w.fd, header, sizeof header) != 0) {
        w.error = errno;
    }
    w.bytes = sizeof header;
    w.started_us = clock_mono_us();
    /* Shard by shard, each in its own short read section: lookups never wait for the disk
     * and retired rows do not pile up behind a long section. */
    for (uint32_t s = 0; s < store_table_shards(table) && w.error == 0; s++) {
        store_read_lock();
        store_table_scan_shard(table, s, _add_row, &w);
        store_read_unlock();
        _writeback(&w); /* outside the read section: these two wait */
        _pace(&w);
    }
    if (w.error == 0) {
        _flush_chunk(&w, w.chunk, w.len, w.rows_in_chunk);
    }
    if (w.error == 0) {
        uint8_t trailer[CKPT_TRAILER_BYTES];
        memcpy(trailer, CKPT_END_MAGIC, 8);
        wal_put_u64(trailer + 8, w.rows);
        wal_put_u64(trailer + 16, w.chunks);
        wal_put_u64(trailer + 24, XXH3_64bits_withSeed(trailer, 24, header_hash));
        /* The spare's bytes past this checkpoint's end go; fdatasync makes the size durable
         * with the data, as a later read needs it. */
        if (_write_all(w.fd, trailer, sizeof trailer) != 0 ||
            ftruncate(w.fd, (off_t)(w.bytes + sizeof trailer)) != 0 || fdatasync(w.fd) != 0) {
            w.error = errno;
        }
        w.bytes += sizeof trailer;
    }
    if (w.error != 0) {
        errors_set(err, err_len, "checkpoint of %s: write %s: %s", name, tmp, strerror(w.error));
        goto fail;
    }
    close(w.fd);
    w.fd = -1;
    int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    /* The generation it replaces stays as .prev, so a damaged newest one is not the end, and
     * the one before becomes the next write's spare. With no newest (none yet, or a damaged
     * one set aside) .prev stays: it is the good one. A crash between the renames leaves .prev
     * and .tmp: the loader takes .prev. */
    bool replaces = access(final, F_OK) == 0;
    if ((replaces && ((rename(prev, spare) != 0 && errno != ENOENT) || rename(final, prev) != 0)) ||
        rename(tmp, final) != 0 || dir_fd < 0 || fsync(dir_fd) != 0) {
        errors_set(err, err_len, "checkpoint of %s: rename to %s: %s", name, final,
                   strerror(errno));
        if (dir_fd >= 0) {
            close(dir_fd);
        }
        goto fail;
    }
    close(dir_fd);
    info->rows = w.rows;
    info->bytes = w.bytes;
    store_table_unpin(table);
    store_schema_destroy(schema);
    free(w.chunk);
    return 0;

fail:
    if (w.fd >= 0) {
        close(w.fd);
    }
    unlink(tmp);
    if (w.error == ENOSPC || w.error == EDQUOT) {
        unlink(spare); /* the disk is full: the retry gets the spare's room */
    }
    store_table_unpin(table);
    store_schema_destroy(schema);
    free(w.chunk);
    return -1;
}

/* ---- reading ------------------------------------------------------------------------------- */

enum ckpt_load_result ckpt_load(const char *dir, const struct store_schema *schema, bool prev,
                                uint32_t shards, struct store_table **table, struct ckpt_info *info,
                                char *err, size_t err_len) {
    char path[1200];
    _path(path, sizeof path, dir, schema->view, prev ? ".prev" : "");
    *table = NULL;
    memset(info, 0, sizeof *info);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            errors_set(err, err_len, "no checkpoint");
            return CKPT_NONE;
        }
        errors_set(err, err_len, "open %s: %s", path, strerror(errno));
        return CKPT_DAMAGED;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        errors_set(err, err_len, "stat %s: %s", path, strerror(errno));
        close(fd);
        return CKPT_DAMAGED;
    }
    if ((size_t)st.st_size < CKPT_V1_HEADER_BYTES + CKPT_TRAILER_BYTES) {
        close(fd);
        errors_set(err, err_len, "%s: %lld bytes, shorter than a checkpoint", path,
                   (long long)st.st_size);
        return CKPT_DAMAGED;
    }
    size_t size = (size_t)st.st_size;
    const uint8_t *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        errors_set(err, err_len, "map %s: %s", path, strerror(errno));
        return CKPT_DAMAGED;
    }
    madvise((void *)p, size, MADV_SEQUENTIAL);
    enum ckpt_load_result result = CKPT_DAMAGED;
    uint32_t version = wal_get_u32(p + 8);
    size_t header_bytes = version == 1 ? CKPT_V1_HEADER_BYTES : CKPT_HEADER_BYTES;
    size_t hashed = version == 1 ? CKPT_V1_HEADER_HASHED : CKPT_HEADER_HASHED;
    if (size < header_bytes + CKPT_TRAILER_BYTES) {
        errors_set(err, err_len, "%s: %zu bytes, shorter than a checkpoint", path, size);
        goto out;
    }
    uint64_t header_hash = wal_get_u64(p + hashed);
    if (memcmp(p, CKPT_MAGIC, 8) != 0 || (version != 1 && version != CKPT_VERSION) ||
        header_hash != XXH3_64bits(p, hashed)) {
        errors_set(err, err_len, "%s: the header does not check", path);
        goto out;
    }
    info->fingerprint = wal_get_u64(p + 16);
    info->log_seq = wal_get_u64(p + 24);
    info->snapshot_version = wal_get_u64(p + 32);
    info->loaded_at_us = (int64_t)wal_get_u64(p + 40);
    info->written_at_us = (int64_t)wal_get_u64(p + 48);
    memcpy(info->stream_position, p + 64, STORE_STREAM_POSITION_LEN);
    info->stream_position[STORE_STREAM_POSITION_LEN - 1] = '\0';
    if (version != 1) {
        memcpy(info->stream_applied, p + 112, STORE_STREAM_POSITION_LEN);
        info->stream_applied[STORE_STREAM_POSITION_LEN - 1] = '\0';
    }
    if (info->fingerprint != store_schema_layout_fingerprint(schema)) {
        errors_set(err, err_len, "written for other keys or features");
        result = CKPT_LAYOUT_CHANGED;
        goto out;
    }
    const uint8_t *trailer = p + size - CKPT_TRAILER_BYTES;
    if (memcmp(trailer, CKPT_END_MAGIC, 8) != 0 ||
        wal_get_u64(trailer + 24) != XXH3_64bits_withSeed(trailer, 24, header_hash)) {
        errors_set(err, err_len, "%s: the end does not check (a cut or damaged file)", path);
        goto out;
    }
    uint64_t rows_expected = wal_get_u64(trailer + 8), chunks_expected = wal_get_u64(trailer + 16);
    /* The table is sized from the count: not from more rows than the file can hold (each
     * takes its length, a row header and a key). */
    uint64_t room = (size - header_bytes - CKPT_TRAILER_BYTES) / (8 + sizeof(struct store_row) + 8);
    if (rows_expected > room) {
        errors_set(err, err_len, "%s: the end counts %llu rows, more than its %zu bytes hold", path,
                   (unsigned long long)rows_expected, size);
        goto out;
    }
    struct store_table_options options = {.shards = shards, .expected_rows = rows_expected};
    char why[256];
    struct store_table *t = store_table_create(schema, &options, why, sizeof why);
    if (t == NULL) {
        errors_set(err, err_len, "%s: %s", path, why);
        goto out;
    }
    size_t off = header_bytes, end = size - CKPT_TRAILER_BYTES;
    uint64_t rows = 0, chunks = 0;
    while (off < end) {
        if (end - off < CKPT_CHUNK_HEADER) {
            errors_set(err, err_len, "%s: offset %zu: a cut chunk header", path, off);
            goto damaged;
        }
        size_t len = wal_get_u32(p + off);
        uint32_t nrows = wal_get_u32(p + off + 4);
        const uint8_t *payload = p + off + CKPT_CHUNK_HEADER;
        if (len > end - off - CKPT_CHUNK_HEADER || len % 8 != 0 ||
            wal_get_u64(p + off + 8) != XXH3_64bits(payload, len)) {
            errors_set(err, err_len, "%s: offset %zu: a chunk that does not check", path, off);
            goto damaged;
        }
        size_t at = 0;
        for (uint32_t r = 0; r < nrows; r++) {
            size_t bytes = len - at >= 8 ? wal_get_u32(payload + at) : 0;
            const struct store_row *row =
                (const struct store_row *)(const void *)(payload + at + 8);
            char why[200];
            if (bytes < sizeof(struct store_row) || _pad8(bytes) > len - at - 8 ||
                store_row_check(schema, row, bytes, why, sizeof why) != 0) {
                errors_set(err, err_len, "%s: offset %zu: row %u: %s", path, off, r,
                           bytes < sizeof(struct store_row) || _pad8(bytes) > len - at - 8
                               ? "its length is past its chunk"
                               : why);
                goto damaged;
            }
            if (store_table_upsert_row(t, row) == STORE_UPSERT_ERROR) {
                errors_set(err, err_len, "%s: out of memory", path);
                goto damaged;
            }
            at += 8 + _pad8(bytes);
        }
        if (at != len) {
            errors_set(err, err_len, "%s: offset %zu: %zu bytes after the chunk's rows", path, off,
                       len - at);
            goto damaged;
        }
        rows += nrows;
        chunks++;
        off += CKPT_CHUNK_HEADER + len;
    }
    if (rows != rows_expected || chunks != chunks_expected) {
        errors_set(err, err_len, "%s: %llu rows in %llu chunks, the end says %llu in %llu", path,
                   (unsigned long long)rows, (unsigned long long)chunks,
                   (unsigned long long)rows_expected, (unsigned long long)chunks_expected);
        goto damaged;
    }
    store_table_seal(t);
    info->rows = rows;
    info->bytes = size;
    *table = t;
    result = CKPT_LOADED;
    goto out;

damaged:
    store_table_destroy(t);
out:
    munmap((void *)p, size);
    return result;
}
