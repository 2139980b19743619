#pragma once
/*
 * The write-ahead log of live writes: PushRows batches reach the disk (store.data_dir) before
 * they are applied and acknowledged, and a restart replays them, so no acknowledged row is
 * lost to a crash, kill -9 or power loss (with store.durability group or always).
 *
 *   worker: PushRows ─▶ rows checked, images built ─▶ wal_append(batch, done) ─▶ call suspended
 *   log writer thread:  queue ─▶ write(2) of every batch queued ─▶ fdatasync ─▶ done(batch)
 *                                  (group: what arrived within group_commit_interval shares
 *                                   one fsync; always: one fsync per batch)
 *   done (on the log writer thread, in log order): rows applied, the call resumed on its worker
 *
 * Applying on the log writer, in log order, means the order rows are applied is the order a
 * replay applies them, so a restart rebuilds exactly what was served. A batch whose write or
 * fsync failed is never applied: its caller gets the error, and the log is cut back to its
 * last durable record before anything else is written.
 *
 * Files: data_dir/wal/SEQUENCE.log, SEQUENCE the first record's 16 hex digits. All integers
 * little-endian.
 *
 *   segment   ┌─ header, 32 bytes ───────────────────────────────────────┐
 *             │ "FSDWAL01" │ u32 version │ u32 0 │ u64 first_seq │ u64 hash │
 *             └──────────────────────────────────────────────────────────┘
 *             record, record, ...
 *
 *   record    ┌─ 24 bytes ─────────────────────────────────────┐
 *             │ u32 payload_bytes │ u32 type │ u64 seq │ u64 hash │ payload, zero-padded to 8
 *             └────────────────────────────────────────────────┘
 *             hash: XXH3-64 of the payload (padding included), seeded with the XXH3-64
 *             of the record's first 16 bytes
 *
 *   type 1    u64 layout fingerprint (store_schema_layout_fingerprint of the view's schema)
 *   rows      u16 view name bytes │ u16 flags │ u32 rows │ view name, zero-padded to 8
 *             per row: u32 image bytes │ u32 0 │ the row image (struct store_row, its
 *             STORE_ROW_LIVE mark set), zero-padded to 8
 *             flags bit 0: rows read from the view's stream, followed by the position of the
 *             batch's last entry (STORE_STREAM_POSITION_LEN bytes, NUL-padded)
 *
 *   type 2    u64 the next record's sequence number. Written first after a start whose
 *   jump      checkpoints hold records the log no longer has (it was damaged or removed), so
 *             new records are numbered after everything a checkpoint holds.
 *
 * Sequence numbers rise by one per record across segments, but for jumps. Replay reads the segments
 * in order and stops at the first record that is short, fails its hash or breaks the sequence: in
 * the last segment that is a torn tail (a write the crash interrupted, never acknowledged) and is
 * cut off; anywhere else it is corruption, logged and counted, and nothing after it is replayed
 * (the later segments are renamed *.corrupt and kept for inspection).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/metrics.h"
#include "common/options.h"

struct store_row;

/* ---- defaults ------------------------------------------------------------------------------ */

#define WAL_DATA_DIR_LEN      1024
#define WAL_MAX_RECORD_BYTES  (1ull << 30) /* a PushRows batch is bounded far below this */
#define WAL_SEGMENT_MIN_BYTES (1ull << 20)

/* ---- options: the config file's store section ---------------------------------------------- */

enum wal_durability {
    WAL_DURABILITY_NONE,   /* nothing logged: a restart keeps only what sources reload */
    WAL_DURABILITY_GROUP,  /* acknowledged after an fsync many batches share */
    WAL_DURABILITY_ALWAYS, /* acknowledged after an fsync of that batch alone */
};

struct wal_options {
    char data_dir[WAL_DATA_DIR_LEN]; /* "" = no log, whatever durability says */
    int durability;                  /* enum wal_durability */
    int64_t group_commit_interval_us;
    uint64_t segment_bytes; /* a segment is closed and a new one begun past this */
};
extern const struct option_group wal_option_group;

/* ---- metrics ------------------------------------------------------------------------------- */

enum wal_metric {
    WAL_M_RECORDS,         /* fsd_wal_records_total */
    WAL_M_BYTES_WRITTEN,   /* fsd_wal_written_bytes_total */
    WAL_M_FSYNCS,          /* fsd_wal_fsyncs_total */
    WAL_M_FSYNC_SECONDS,   /* fsd_wal_fsync_seconds (histogram) */
    WAL_M_WRITE_ERRORS,    /* fsd_wal_write_errors_total */
    WAL_M_FAILING,         /* fsd_wal_write_failing */
    WAL_M_SEGMENTS,        /* fsd_wal_segments */
    WAL_M_DISK_BYTES,      /* fsd_wal_disk_bytes */
    WAL_M_REPLAYED,        /* fsd_wal_replayed_records_total */
    WAL_M_REPLAY_SKIPPED,  /* fsd_wal_replay_skipped_records_total{reason} */
    WAL_M_TORN_TAIL_BYTES, /* fsd_wal_torn_tail_bytes_total */
    WAL_M_CORRUPT,         /* fsd_wal_corrupt_segments_total */
    WAL_M_REPLAY_SECONDS,  /* fsd_wal_replay_seconds */
    WAL_M_COUNT,
};
extern const struct metric_def wal_metric_defs[WAL_M_COUNT];

/* ---- a batch being built ------------------------------------------------------------------ */

/*
 * One record: a view's rows, built by a single thread (a worker) in memory it owns, then
 * handed to wal_append(). The images are copied in; the batch grows as needed.
 */
struct wal_batch;

/* Returns a new batch for `view` (whose layout has `fingerprint`), or NULL when out of
 * memory. */
struct wal_batch *wal_batch_create(const char *view, uint64_t fingerprint);
/* Adds one row image (store_row_total_size bytes). Returns 0, or -1 when out of memory or the
 * record would pass WAL_MAX_RECORD_BYTES. */
int wal_batch_add(struct wal_batch *batch, const struct store_row *image, size_t bytes);
/* Room for one row image of `bytes` bytes (zeroed, 8-byte aligned) at the batch's end, to be
 * written in place (store_row_image_write); valid until the next add. NULL like
 * wal_batch_add(). */
struct store_row *wal_batch_add_space(struct wal_batch *batch, size_t bytes);
/* Ends a batch of rows read from the view's stream with the position of its last entry
 * (opaque: what store_view_set_stream_applied() is given when it is applied or replayed). No
 * row may be added after. Returns 0, or -1 when out of memory or the position is too long. */
int wal_batch_end_at_stream_position(struct wal_batch *batch, const char *position);
/* The position a batch was ended with, or NULL. */
const char *wal_batch_stream_position(const struct wal_batch *batch);
/* Frees a batch that was not appended. */
void wal_batch_destroy(struct wal_batch *batch);

/* The rows of a batch, in the order they were added, for `done` and for replay. */
size_t wal_batch_rows(const struct wal_batch *batch);
const struct store_row *wal_batch_row(const struct wal_batch *batch, size_t index);
const char *wal_batch_view(const struct wal_batch *batch);
uint64_t wal_batch_fingerprint(const struct wal_batch *batch);

/* ---- setup / teardown -------------------------------------------------------------------- */

/*
 * Opens (creating it if needed) data_dir/wal, takes the directory's lock (a second fsd on the
 * same data_dir is refused) and reads the segments there. Does nothing, successfully, when
 * data_dir is "" or durability is none (wal_enabled() is then false). Returns 0, or -1 with
 * `err` set. Registers the metrics. Control thread, before wal_replay().
 */
int wal_setup(const struct wal_options *options, char *err, size_t err_len);

/*
 * Calls `apply` for every record of the log, in order, with the batch (valid during the call
 * only), then starts the log writer: new records follow the last one replayed, in a new
 * segment, and are numbered past `held_through` (the highest sequence number a restored
 * checkpoint holds; 0: none). A torn tail is cut; corruption is logged and counted. Returns the
 * records replayed, or -1 with `err` set when the directory cannot be read or written. Once, after
 * wal_setup(), before the first wal_append().
 */
enum wal_replay_outcome {
    WAL_REPLAY_APPLIED,
    WAL_REPLAY_UNKNOWN_VIEW,   /* no view of that name is configured any more */
    WAL_REPLAY_LAYOUT_CHANGED, /* the view's keys or features changed since */
    WAL_REPLAY_FAILED,         /* cannot be applied: the start fails */
    WAL_REPLAY_IN_CHECKPOINT,  /* the view's checkpoint already holds it */
};
#define WAL_REPLAY_OUTCOMES 5
typedef enum wal_replay_outcome (*wal_apply_fn)(const struct wal_batch *batch, void *arg);
int64_t wal_replay(wal_apply_fn apply, void *arg, uint64_t held_through, char *err, size_t err_len);

/*
 * wal_replay() into the catalog's views: each batch is applied with store_view_upsert_image()
 * to the view of its name if that view's layout fingerprint is the batch's and its sequence
 * number is past skip_through[view index] (what the view's checkpoint holds; NULL: none);
 * batches of views
 * no longer configured or whose keys or features changed are skipped (logged once per view,
 * counted). Returns the batches applied, or -1 with `err` set. The calling thread must be
 * RCU-online.
 */
struct store_catalog;
int64_t wal_replay_into_catalog(struct store_catalog *catalog, const uint64_t *skip_through,
                                char *err, size_t err_len);

/* Stops the log writer after what is queued (every `done` has run), closes the log.
 * Control thread. */
void wal_teardown(void);

/* ---- API --------------------------------------------------------------------------------- */

/* The last sequence number whose batch has been applied: read it before reading a table for a
 * checkpoint, and the table holds every batch up to it. 0 before the first. Any thread. */
uint64_t wal_applied_seq(void);

/* The sequence number the segment being written began with (0 before the first): the log
 * cannot shrink below it, whatever the checkpoints hold. Any thread. */
uint64_t wal_segment_first_seq(void);

/*
 * Deletes the log's segments that hold only batches numbered `seq` or lower (every view's
 * checkpoint holds them). Never the newest segment. Returns how many went, or -1 with `err`
 * set. Any thread but the log writer.
 */
int wal_drop_through(uint64_t seq, char *err, size_t err_len);

/* True while the log's last write failed (until one succeeds), with why in `why` (may be
 * NULL). Any thread. */
bool wal_write_failing(char *why, size_t len);

/* True when live writes are logged: a data_dir is set and durability is not none. */
bool wal_enabled(void);

/* The log as /status shows it. */
struct wal_status {
    int durability; /* enum wal_durability */
    uint64_t segments, disk_bytes, records, fsyncs;
    double fsync_p99_s; /* upper bound of the bucket holding the 99th percentile; 0
                         * before the first fsync, +Inf above the last bound */
    uint64_t replayed;  /* batches applied again at start */
    int64_t replay_us;  /* how long that took */
    bool failing;       /* wal_write_failing() */
    char error[256];    /* why, when failing */
};
/* Fills *out (zeroes when the log is off). Any thread. */
void wal_status(struct wal_status *out);

/*
 * Called on the log writer thread for each appended batch, in log order: `error` is NULL
 * once the batch is on disk (the callee applies it then), else why it is not ("wal write:
 * No space left on device"): the batch must not be applied. The batch is freed after the
 * call.
 */
typedef void (*wal_done_fn)(struct wal_batch *batch, const char *error, void *arg);

/*
 * Queues `batch` (taking it, also on failure) for the log writer, which calls done(batch,
 * ...) once it is durable or has failed. Never blocks on the disk: any thread, holding no
 * lock the log writer might need. Returns 0, or -1 when the log is not running (done is then
 * called at once, on this thread, with the reason).
 */
int wal_append(struct wal_batch *batch, wal_done_fn done, void *arg);
