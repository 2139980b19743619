#pragma once
/* What the log's files (wal.c, wal_replay.c) and its records in memory (wal_batch.c) share. */
#include <stdint.h>
#include <string.h>

#include "store/catalog.h"
#include "store/schema.h"
#include "wal.h"

/* The on-disk format is little-endian; the integers are copied as the host has them. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the log's format is little-endian");

#define WAL_MAGIC                "FSDWAL01"
#define WAL_FORMAT_VERSION       1
#define WAL_SEGMENT_HEADER_BYTES 32
#define WAL_RECORD_HEADER_BYTES  24
#define WAL_ROWS_HEADER_BYTES    16 /* fingerprint, name length, 0, rows */
#define WAL_RECORD_ROWS          1
#define WAL_RECORD_JUMP          2   /* payload: u64 the next record's sequence number */
#define WAL_ROWS_STREAM_POSITION 0x1 /* rows flag: a stream position follows the rows */

/*
 * A record being built, queued or replayed. `buf` holds the whole record as wal.h draws it
 * (the header's sequence number and hash are filled in by the log writer); `row_offsets`
 * where each row image starts in it (8-byte aligned, as rows are read in place).
 */
struct wal_batch {
    struct wal_batch *next; /* the log writer's queue */
    wal_done_fn done;
    void *done_arg;
    uint8_t *buf;
    size_t len, cap;
    size_t *row_offsets;
    size_t nrows, rows_cap;
    uint32_t type;                                   /* WAL_RECORD_* */
    bool ended;                                      /* a stream position was added: no more rows */
    char stream_position[STORE_STREAM_POSITION_LEN]; /* "" for none */
    uint64_t fingerprint;
    char view[STORE_MAX_NAME + 1];
};

static inline void wal_put_u16(uint8_t *p, uint16_t v) {
    memcpy(p, &v, 2);
}
static inline void wal_put_u32(uint8_t *p, uint32_t v) {
    memcpy(p, &v, 4);
}
static inline void wal_put_u64(uint8_t *p, uint64_t v) {
    memcpy(p, &v, 8);
}
static inline uint16_t wal_get_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
static inline uint32_t wal_get_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline uint64_t wal_get_u64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* The record's sequence number, as its header has it. */
uint64_t wal_batch_seq(const struct wal_batch *batch);

/* Bytes of row `index`'s image. */
size_t wal_batch_row_bytes(const struct wal_batch *batch, size_t index);

/*
 * Fills in the view, fingerprint and row offsets of a batch whose `buf` and `len` hold one
 * record read back from disk (its hash already checked). Returns 0, or -1 with `err` set when
 * the payload's lengths do not agree.
 */
int wal_batch_parse(struct wal_batch *batch, char *err, size_t err_len);

/* What the record's header's hash holds (wal.h): covers its first 16 bytes and payload. */
uint64_t wal_record_hash(const uint8_t *record, size_t len);

/* "0000000000000001.log": the name of the segment whose first record is `first_seq`. */
void wal_segment_name(char *buf, size_t len, uint64_t first_seq);

/* What reading the log at start found. */
struct wal_scan {
    uint64_t next_seq; /* the sequence number the next record gets */
    uint64_t applied;
    uint64_t skipped[WAL_REPLAY_OUTCOMES];
    uint64_t torn_tail_bytes;
    uint64_t corrupt_segments;
    uint64_t segments, disk_bytes; /* what is left on disk */
};

/*
 * Reads the segments in `dir_fd` in order, calling `apply` for each record (see wal.h for
 * what ends a replay); cuts a torn tail, renames damaged segments and those after them
 * *.corrupt, removes a last segment left without records. Returns 0, or -1 with `err` set
 * when the directory cannot be read or changed.
 */
int wal_scan_dir(int dir_fd, wal_apply_fn apply, void *arg, struct wal_scan *scan, char *err,
                 size_t err_len);

/* The first sequence numbers of the segments in `dir_fd`, sorted (*out malloc'd, *n of them).
 * Returns 0, or -1 with `err` set. */
int wal_list_segments(int dir_fd, uint64_t **out, size_t *n, char *err, size_t err_len);
