#pragma once
/*
 * Shared by the stream consumer's files (stream.c: connections and batches, stream_entry.c:
 * entries to rows, stream_metrics.c: the collector); not for other modules. Tests and fuzz
 * targets may use it. Protobuf entries are checked and built by proto_row.h, as PushRows'
 * rows are.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/key.h"
#include "store/schema.h"
#include "stream.h"

struct store_row_builder;
struct store_view;

/* ---- entries to rows (stream_entry.c) ------------------------------------------------------ */

/* One field of a stream entry: name and value, binary-safe (neither needs a NUL). */
struct mat_stream_field {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* A parsed entry: what to write and under which key. The builder holds an upsert's values. */
struct mat_stream_entry {
    bool is_delete;
    int64_t event_ts_us;
    int64_t created_ts_us;
    struct store_key key; /* data points into key_buf */
    uint8_t key_buf[STORE_MAX_KEY_BYTES];
};

enum {
    MAT_STREAM_ENTRY_OK = 0,
    MAT_STREAM_ENTRY_BAD = -1, /* the entry does not fit the view: skip it */
    MAT_STREAM_ENTRY_OOM = -2, /* out of memory: retry the entry later */
};

/*
 * Turns entries of one view into rows. Holds the field-name map of the fields format (built
 * from the view's schema, whose names and types never change while the daemon runs: a reload
 * that changes them is refused) and scratch buffers reused from entry to entry. Not
 * thread-safe; one per consumer.
 */
struct mat_stream_parser;

/* Returns a parser for `schema` and `stream`'s format and field names (both copied), or NULL
 * when out of memory. */
struct mat_stream_parser *mat_stream_parser_create(const struct store_schema *schema,
                                                   const struct mat_stream_config *stream);
void mat_stream_parser_destroy(struct mat_stream_parser *parser);

/*
 * Parses one entry's `nfields` fields. `b` must be initialized for a schema with the layout
 * the parser was made for; on success it holds the row of an upsert. `now_us` (wall clock)
 * bounds event times from above (MAT_STREAM_MAX_FUTURE_US). Returns MAT_STREAM_ENTRY_OK,
 * MAT_STREAM_ENTRY_BAD with the reason in `err` (naming the field), or MAT_STREAM_ENTRY_OOM.
 * Never blocks.
 */
int mat_stream_parse_entry(struct mat_stream_parser *parser, const struct mat_stream_field *fields,
                           size_t nfields, int64_t now_us, struct store_row_builder *b,
                           struct mat_stream_entry *out, char *err, size_t err_len);

/* OK when `event_ts_us` is after the epoch and at most MAT_STREAM_MAX_FUTURE_US after `now_us`;
 * else BAD with `err` naming the field (`what`). */
int mat_stream_check_event_ts(int64_t event_ts_us, int64_t now_us, const char *what, char *err,
                              size_t err_len);

/* ---- entry IDs ----------------------------------------------------------------------------- */

struct mat_stream_id {
    uint64_t ms;
    uint64_t seq;
};

/* "<ms>-<seq>" (or "<ms>") into *id; false when it is not one. */
bool mat_stream_id_parse(const char *text, size_t len, struct mat_stream_id *id);
int mat_stream_id_cmp(struct mat_stream_id a, struct mat_stream_id b);

/* ---- metrics (stream_metrics.c) ------------------------------------------------------------ */

/* Upper bounds of the visible-lag histogram, in seconds. */
#define MAT_STREAM_LAG_BOUNDS 20
extern const double mat_stream_lag_bounds_s[MAT_STREAM_LAG_BOUNDS];

/*
 * One view's counters: written by the consumer thread, read by the stats thread. Relaxed
 * atomics: each figure is exact on its own, figures of one scrape may be an entry apart.
 */
struct mat_stream_metrics {
    const char *view; /* the consumer's copy of the name */
    _Atomic uint64_t applied;
    _Atomic uint64_t not_newer;
    _Atomic uint64_t bad;
    _Atomic uint64_t reconnects;
    _Atomic int connected;
    _Atomic int waiting_snapshot; /* 1: start: snapshot, no snapshot position seen yet */
    _Atomic int64_t lag_entries;  /* -1: unknown */
    _Atomic uint64_t lag_buckets[MAT_STREAM_LAG_BOUNDS + 1]; /* per bucket, not cumulative */
    _Atomic uint64_t lag_sum_us;
    pthread_mutex_t id_lock; /* guards last_id */
    char last_id[MAT_STREAM_ID_LEN];
};

void mat_stream_metrics_init(struct mat_stream_metrics *m, const char *view);
void mat_stream_metrics_deinit(struct mat_stream_metrics *m);

/* Records one entry made visible `lag_us` after its event time (negative: clock skew, as 0). */
void mat_stream_metrics_observe_lag(struct mat_stream_metrics *m, int64_t lag_us);

void mat_stream_metrics_set_last_id(struct mat_stream_metrics *m, struct mat_stream_id id);

/* The metrics collector over `n` metrics blocks (`ctx` is a struct mat_stream_metrics_set). */
struct mat_stream_metrics_set {
    struct mat_stream_metrics *const *views;
    size_t n;
};
void mat_stream_collect(struct metric_writer *w, void *ctx);
