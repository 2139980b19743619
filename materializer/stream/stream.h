#pragma once
/*
 * Redis Streams: views whose config has a `stream:` section follow a Redis stream of row
 * updates, applied to the live table with upsert-if-newer as they arrive.
 *
 *   redis ──XREAD BLOCK──> control thread (own libevent base, hiredis async, one connection
 *                          per view) ──parse──> store_view_upsert / store_view_delete ──> live
 *                          table (a snapshot load in progress logs and replays them)
 *
 * Fan-out, not consumer groups: every fsd replica reads every entry from its own position, so
 * replicas reading one stream reach the same state. Each view's consumer reads with
 * `XREAD COUNT <batch> BLOCK <block_ms> STREAMS <key> <last applied ID>`, so a reconnect (with
 * backoff: MAT_STREAM_RECONNECT_FIRST_US doubling to MAT_STREAM_RECONNECT_MAX_US) resumes
 * exactly after the last entry it applied; replaying an entry twice is harmless, since upserts
 * only replace older rows. The first position comes from `start:`: "$" (the stream's last ID
 * when fsd first connects), 0 (every entry still in the stream), an entry ID, or "snapshot":
 * the ID recorded with the view's current snapshot (store_view_stream_position, set by a
 * PushSnapshot or LoadSnapshot that gave a stream_position). Until the view has such a
 * snapshot that consumer does not connect; it polls the view every
 * MAT_STREAM_SNAPSHOT_POLL_US. A later snapshot's position does not move a running consumer
 * (it never rewinds; re-reading would be harmless, skipping would not). When the
 * stream's last ID is found to be below the last applied one, or the key is gone (Redis
 * restarted without persistence, the key was deleted), the consumer reads the new stream from
 * its beginning.
 *
 * Entries (see stream_entry.c for the exact rules):
 *   format fields:    one field per join key, event_timestamp_field (integer microseconds or
 *                     RFC 3339), optionally created_timestamp_field, and one per feature with
 *                     its value as text; an absent feature is null; "__delete" 1|true makes the
 *                     entry a tombstone. Lists are JSON arrays: [0.5, 1], ["a", "b"].
 *   format protobuf:  one field (row_field) holding an encoded fsd.v1.Row, as in PushRows.
 * An entry that does not fit the view is counted, logged with its ID and the reason
 * (at most MAT_STREAM_BAD_LOG_PER_S lines per view and second) and skipped; the stream goes on.
 *
 * Threads: setup and teardown from the main thread; the consumers run on one control thread
 * that is RCU-online and never serves a lookup. Metrics are read from the stats thread.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/metrics.h"
#include "store/schema.h"

struct store_catalog;

/* ---- defaults ------------------------------------------------------------------------------ */

#define MAT_STREAM_RECONNECT_FIRST_US (100LL * 1000)         /* first retry after a failure ... */
#define MAT_STREAM_RECONNECT_MAX_US   (5LL * 1000 * 1000)    /* ... doubling up to this */
#define MAT_STREAM_CONNECT_TIMEOUT_US (5LL * 1000 * 1000)    /* connect + AUTH + first reply */
#define MAT_STREAM_REPLY_GRACE_US     (5LL * 1000 * 1000)    /* beyond block_ms before giving up */
#define MAT_STREAM_LAG_SAMPLE_US      (1000LL * 1000)        /* XINFO STREAM for the entry lag */
#define MAT_STREAM_MAX_FUTURE_US      (3600LL * 1000 * 1000) /* event time ahead of the clock */
#define MAT_STREAM_BAD_LOG_PER_S      20 /* bad-entry log lines per view and second; then a count */
#define MAT_STREAM_ID_LEN             48 /* "<ms>-<seq>" with NUL */
#define MAT_STREAM_SNAPSHOT_POLL_US   (100LL * 1000) /* start: snapshot, waiting for a position */

/* ---- a view's stream, as the config file's stream: section describes it ------------------ */

/* Fixed arrays, so a copy needs no allocation; longer values are config errors. */
#define MAT_STREAM_HOST_LEN   256
#define MAT_STREAM_SECRET_LEN 256 /* user and password of redis://user:password@host */
#define MAT_STREAM_KEY_LEN    512
#define MAT_STREAM_FIELD_LEN  STORE_MAX_NAME
#define MAT_STREAM_VIEW_LEN   (STORE_MAX_NAME + 1)

#define MAT_STREAM_DEFAULT_PORT      6379
#define MAT_STREAM_DEFAULT_START     "$"
#define MAT_STREAM_DEFAULT_EVENT_TS  "event_ts"
#define MAT_STREAM_DEFAULT_ROW_FIELD "row"
#define MAT_STREAM_DEFAULT_BATCH     1000
#define MAT_STREAM_MAX_BATCH         100000
#define MAT_STREAM_DEFAULT_BLOCK_MS  1000
#define MAT_STREAM_MAX_BLOCK_MS      60000
#define MAT_STREAM_DELETE_FIELD      "__delete" /* fields format: the entry is a tombstone */

enum mat_stream_format {
    MAT_STREAM_FIELDS,   /* one field per join key, timestamp and feature, values as text */
    MAT_STREAM_PROTOBUF, /* one field (row_field) holding an encoded fsd.v1.Row */
};

const char *mat_stream_format_name(enum mat_stream_format format); /* "fields", "protobuf" */

enum mat_stream_start {
    MAT_STREAM_START_NEW,     /* "$": entries added after fsd first connects */
    MAT_STREAM_START_ALL,     /* "0": every entry still in the stream */
    MAT_STREAM_START_AFTER,   /* an entry ID: the entries after it */
    MAT_STREAM_START_SNAPSHOT /* "snapshot": after the ID recorded with the view's snapshot,
                                 once it has one (PushSnapshot/LoadSnapshot stream_position) */
};

struct mat_stream_config {
    bool enabled; /* the view has a stream: section */
    char view[MAT_STREAM_VIEW_LEN];
    char host[MAT_STREAM_HOST_LEN];
    uint16_t port;
    uint32_t db;
    char user[MAT_STREAM_SECRET_LEN];     /* "" = AUTH with the password alone */
    char password[MAT_STREAM_SECRET_LEN]; /* "" = no AUTH; never logged */
    char key[MAT_STREAM_KEY_LEN];
    enum mat_stream_format format;
    enum mat_stream_start start;
    uint64_t start_ms, start_seq;                       /* MAT_STREAM_START_AFTER: the entry ID */
    char event_timestamp_field[MAT_STREAM_FIELD_LEN];   /* fields format */
    char created_timestamp_field[MAT_STREAM_FIELD_LEN]; /* fields format; "" = none */
    char row_field[MAT_STREAM_FIELD_LEN];               /* protobuf format */
    uint32_t batch;                                     /* XREAD COUNT */
    uint32_t block_ms;                                  /* XREAD BLOCK */
};

/* ---- options ------------------------------------------------------------------------------- */

struct mat_stream_options {
    int64_t reconnect_first_us;
    int64_t reconnect_max_us;
    int64_t connect_timeout_us;
    int64_t reply_grace_us;
    int64_t lag_sample_us;
};

void mat_stream_options_init(struct mat_stream_options *options);

/* ---- metrics ------------------------------------------------------------------------------- */

/*
 * Declared in mat_stream_metric_defs (stream_metrics.c), written by the collector
 * mat_stream_setup() registers while the consumers run, one sample per view with a stream.
 */
enum mat_stream_metric {
    MAT_STREAM_M_APPLIED,          /* fsd_stream_updates_applied_total{view} */
    MAT_STREAM_M_NOT_NEWER,        /* fsd_stream_updates_not_newer_total{view} */
    MAT_STREAM_M_BAD,              /* fsd_stream_bad_entries_total{view} */
    MAT_STREAM_M_RECONNECTS,       /* fsd_stream_reconnects_total{view} */
    MAT_STREAM_M_CONNECTED,        /* fsd_stream_connected{view} */
    MAT_STREAM_M_WAITING_SNAPSHOT, /* fsd_stream_waiting_for_snapshot{view} */
    MAT_STREAM_M_VISIBLE_LAG,      /* fsd_stream_update_visible_lag_seconds{view} */
    MAT_STREAM_M_LAG_ENTRIES,      /* fsd_stream_lag_entries{view} (absent while unknown) */
    MAT_STREAM_M_LAST_ID,          /* fsd_stream_last_id_info{view,id} */
    MAT_STREAM_M_COUNT,
};
extern const struct metric_def mat_stream_metric_defs[MAT_STREAM_M_COUNT];

/* One view's consumer as last seen (a copy; see mat_stream_status()). */
struct mat_stream_status {
    bool connected;
    bool waiting_for_snapshot;       /* start: snapshot, and no snapshot with a position yet */
    char last_id[MAT_STREAM_ID_LEN]; /* "" before the first position is known */
    uint64_t applied;
    uint64_t not_newer;
    uint64_t bad;
    uint64_t reconnects;
    int64_t lag_entries; /* -1: unknown */
};

/* ---- setup / teardown ---------------------------------------------------------------------- */

/*
 * Starts a consumer for every enabled stream of `streams` (their views must be in `catalog`,
 * which must outlive the consumers) on a control thread of its own, and registers the metrics
 * collector. Copies the configs; each consumer's entry parser takes the view's schema from the
 * catalog. Does not wait for Redis: consumers connect, and reconnect, in the background.
 * Without any enabled stream nothing is started. `options` NULL: defaults. Returns 0, or -1
 * with `err` set (out of memory, a view missing from the catalog, no thread). Main thread.
 */
int mat_stream_setup(struct store_catalog *catalog, const struct mat_stream_config *const *streams,
                     size_t nstreams, const struct mat_stream_options *options, char *err,
                     size_t err_len);

/*
 * Unregisters the collector, closes the connections and stops the thread; updates already
 * applied stay in the store. Blocks until the thread is gone (never longer than one batch).
 * Safe when setup failed or never ran. Main thread.
 */
void mat_stream_teardown(void);

/* ---- API ----------------------------------------------------------------------------------- */

/*
 * Copies the state of `view`'s consumer into `out`. Returns false when the view has no stream
 * (or the consumers are not running). Any thread; takes a per-view mutex briefly.
 */
bool mat_stream_status(const char *view, struct mat_stream_status *out);

/*
 * Checks that `text` is a stream entry ID, "<ms>-<seq>" or "<ms>" (decimal, each at most
 * UINT64_MAX), as a snapshot's stream position must be, and writes it as "<ms>-<seq>" into
 * `out` (MAT_STREAM_ID_LEN bytes). Returns false when it is not one. Any thread.
 */
bool mat_stream_position_normalize(const char *text, char out[MAT_STREAM_ID_LEN]);
