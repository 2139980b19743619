#pragma once
/*
 * Checkpoints: a view's whole table (snapshot rows, live rows and tombstones with their flags)
 * written to store.data_dir, so a restart serves the view from its own file in seconds instead
 * of waiting for its source, and a view fed only by PushSnapshot comes back at all.
 *
 *   data_dir/checkpoints/VIEW.ckpt   written as VIEW.ckpt.tmp, fdatasync, rename, fsync of the
 *                                    directory: a reader sees the old file or the new, whole
 *                       VIEW.ckpt.prev  the generation before, restored when the newest is
 *                                    damaged
 *                       VIEW.ckpt.spare the one before that, which the next write goes over
 *                                    (its pages are cached: no new page per byte written)
 *
 *   header, 192 bytes ┌─────────────────────────────────────────────────────────────────┐
 *     0  "FSDCKPT1"   │  8 u32 version (2), u32 0  │ 16 u64 layout fingerprint           │
 *    24  u64 log sequence: every logged batch up to it is in the table                   │
 *    32  u64 snapshot version │ 40 i64 snapshot loaded at (µs) │ 48 i64 written at (µs)  │
 *    56  u32 shards, u32 0    │ 64 the snapshot's stream position, 48 bytes NUL-padded   │
 *   112  the last stream entry applied through the log (store_view_stream_applied), 48   │
 *        bytes NUL-padded     │ 160 3 x u64 0 │ 184 u64 XXH3-64 of bytes 0..183            │
 *                     └─────────────────────────────────────────────────────────────────┘
 *   chunk             u32 payload bytes (<= CKPT_CHUNK_BYTES, but for a chunk of one row
 *   (one or more)     larger than that) │ u32 rows │ u64 XXH3-64 of
 *                     the payload │ payload: per row u32 image bytes │ u32 0 │ the row image
 *                     (struct store_row), zero-padded to 8
 *   trailer, 32 bytes "FSDCKEND" │ u64 rows │ u64 chunks │ u64 XXH3-64 of its first 24 bytes
 *                     seeded with the header's hash
 *
 * The file is read sequentially (mmap) and every row goes through the table's upsert into an
 * unpublished table, as a snapshot load builds one; nothing in it is trusted before its
 * chunk's hash checked and its own lengths agree.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/metrics.h"
#include "common/options.h"
#include "store/catalog.h"

struct store_schema;
struct store_table;
struct store_view;

#define CKPT_CHUNK_BYTES (1u << 20)
/* Writeback of a checkpoint starts every this many bytes, and the writer waits for the window
 * before it: the final fdatasync flushes one window, not the whole file, and dirty pages stay
 * bounded (no burst of writeback while lookups run). */
#define CKPT_WRITEBACK_BYTES (8u << 20)
#define CKPT_POLL_MS         100     /* how often the checkpointer looks for views that are due */
#define CKPT_NICE            10      /* the checkpointer's nice value: lookups first */
#define CKPT_RETRY_FIRST_US  1000000 /* a failed write is retried after this, doubling */

/* ---- options: the config file's store section ---------------------------------------------- */

struct ckpt_options {
    int64_t interval_us; /* a view with live writes since its checkpoint gets one this often */
    uint64_t max_rate;   /* bytes a second a checkpoint is written at most; 0: no limit */
};
extern const struct option_group ckpt_option_group;

/* ---- metrics ------------------------------------------------------------------------------- */

enum ckpt_metric {
    CKPT_M_WRITES,          /* fsd_checkpoints_total{view,result} */
    CKPT_M_LAST_SUCCESS,    /* fsd_checkpoint_last_success_timestamp_seconds{view} */
    CKPT_M_DURATION,        /* fsd_checkpoint_last_duration_seconds{view} */
    CKPT_M_BYTES,           /* fsd_checkpoint_bytes{view} */
    CKPT_M_ROWS,            /* fsd_checkpoint_rows{view} */
    CKPT_M_RESTORED_ROWS,   /* fsd_checkpoint_restored_rows{view} */
    CKPT_M_RESTORE_SECONDS, /* fsd_checkpoint_restore_seconds{view} */
    CKPT_M_DAMAGED,         /* fsd_checkpoint_damaged_total{view} */
    CKPT_M_COUNT,
};
extern const struct metric_def ckpt_metric_defs[CKPT_M_COUNT];

/* ---- setup / teardown: the checkpointer ----------------------------------------------------- */

/*
 * With the log enabled (wal_enabled(); call after wal_setup), creates data_dir/checkpoints and
 * restores each view of `catalog` from its newest checkpoint that loads (VIEW.ckpt, else the
 * generation before it, VIEW.ckpt.prev), logging what it found; a view without one, with a
 * changed layout or with only damaged ones starts empty (and loads from its source). Sets
 * *skip_through (malloc'd, one per view: the log sequence its checkpoint holds, 0 for none;
 * NULL when the log is off) for wal_replay_into_catalog(). Registers the metrics. Returns 0,
 * or -1 with `err` set when the directory cannot be made. Control thread, RCU-online, before
 * anything is served.
 */
int ckpt_setup(const struct ckpt_options *options, const char *data_dir,
               struct store_catalog *catalog, uint64_t **skip_through, char *err, size_t err_len);

/*
 * Starts the checkpointer thread (after the log's replay): every CKPT_POLL_MS it writes the
 * checkpoint of each view that is due (none yet, a new snapshot since, or live writes since
 * and interval_us passed), then deletes the log segments every view's previous checkpoint
 * holds. Returns 0, or -1 with `err` set.
 */
int ckpt_start(char *err, size_t err_len);

/* Stops the checkpointer (a checkpoint being written is finished first). */
void ckpt_teardown(void);

/* One view's checkpoints as /status shows them. */
struct ckpt_view_status {
    bool have; /* a checkpoint of it is on disk (restored or written) */
    uint64_t ok, failed, damaged;
    uint64_t bytes, rows;   /* of the newest */
    int64_t written_at_us;  /* wall time the newest was written; 0: none */
    int64_t duration_us;    /* how long writing it took */
    uint64_t restored_rows; /* what the start restored */
    int64_t restore_us;
    bool failing; /* the last write failed, with why */
    char error[512];
};
/* Fills *out for the view named `view`; false when checkpoints are off or it has no state
 * yet (a view a reload just added). Any thread. */
bool ckpt_view_status(const char *view, struct ckpt_view_status *out);
/* How long restoring every view from its checkpoint took at start. */
int64_t ckpt_restore_us(void);

/* What a checkpoint says about the table it holds. */
struct ckpt_info {
    uint64_t fingerprint;
    uint64_t log_seq; /* the log's batches up to this one are in it */
    uint64_t snapshot_version;
    int64_t loaded_at_us;
    int64_t written_at_us;
    uint64_t rows; /* rows and tombstones */
    uint64_t bytes;
    char stream_position[STORE_STREAM_POSITION_LEN];
    char stream_applied[STORE_STREAM_POSITION_LEN];
};

/* ---- API --------------------------------------------------------------------------------- */

/*
 * Writes `view`'s current table into dir/VIEW.ckpt (dir must exist), replacing the previous
 * one atomically; the one it replaces is kept as VIEW.ckpt.prev. `log_seq` must be read
 * (wal_applied_seq) before this is called, so every batch up to it is in the table it reads. Reads
 * the table shard by shard in short read sections, pinned, while lookups and writes go on; a row
 * replaced meanwhile is written in one of its versions (replaying the log after log_seq makes it
 * right). At most `max_rate` bytes a second are written (0: no limit). Returns 0 with *info
 * filled, or -1 with `err` set (the previous checkpoint is then left as it was). The calling
 * thread must be RCU-online; blocks on the disk.
 */
int ckpt_write(const char *dir, struct store_view *view, uint64_t log_seq, uint64_t max_rate,
               struct ckpt_info *info, char *err, size_t err_len);

/* ckpt_write() of a view captured before (store_view_capture), named `name`: unpins its table
 * and frees its schema copy, whatever the outcome. */
int ckpt_write_captured(const char *dir, const char *name, struct store_view_capture *now,
                        uint64_t log_seq, uint64_t max_rate, struct ckpt_info *info, char *err,
                        size_t err_len);

enum ckpt_load_result {
    CKPT_LOADED,
    CKPT_NONE,           /* no checkpoint of that view */
    CKPT_LAYOUT_CHANGED, /* written for other keys or features */
    CKPT_DAMAGED,        /* short, a bad hash, lengths that do not agree: `err` says where */
};

/*
 * Reads dir/VIEW.ckpt (`prev`: VIEW.ckpt.prev) for `schema` into a new sealed, unpublished table
 * (*table) with `shards` shards, and *info. Anything but CKPT_LOADED leaves *table NULL, with `err`
 * saying why. Blocks on the disk.
 */
enum ckpt_load_result ckpt_load(const char *dir, const struct store_schema *schema, bool prev,
                                uint32_t shards, struct store_table **table, struct ckpt_info *info,
                                char *err, size_t err_len);
