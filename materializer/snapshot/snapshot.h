#pragma once
/*
 * The materializer: turns each view's source (Parquet files through DuckDB, a PostgreSQL table
 * or query through libpq) into the latest row per entity, checks the result against the
 * view's data contract and only then swaps it in. A control thread (the scheduler) loads every
 * view with a source at start-up, again on its refresh interval, retries failures with backoff
 * and runs loads asked for on demand (LoadSnapshot).
 *
 *   source ──rows──> sink (upsert-if-newer, skip future / expired / null-key rows)
 *                     └──> new table (unpublished) ──seal──> contract ──ok──> commit: carry
 *                          over newer live rows, replay the updates pushed meanwhile, swap
 *                          (RCU), old table freed after a grace period
 *                                                              └─fail─> destroy; live unchanged
 *
 *   incremental view, after its first load:
 *   source WHERE event_ts > watermark ──rows──> live sink ──store_view_upsert_sourced──> live
 *
 * Full loads never touch the live table until the swap, so a failed read or a failed contract
 * leaves the previous snapshot serving, unchanged. Rows pushed or streamed into the view are
 * marked live; at the swap the store carries each into the new table when it is newer than
 * the snapshot's row for its entity (or the snapshot has none), and replays the updates made
 * while the snapshot was built (store_view_load_commit): the newest event time wins. Rows of
 * incremental loads come from the source itself and are not marked: the next full snapshot
 * supersedes them.
 *
 * The data contract (struct mat_contract): no null entity keys; at least `min_rows` rows; after the
 * swap no more than `max_row_drop_percent` fewer rows served than before (after the first
 * load; live rows the swap keeps count); per feature, the share of entities with a null value
 * at most `max_null_rate`, and every present value inside `range`. Column presence and types are
 * checked by the source before any row is read. Incremental loads go straight into the live table:
 * they get the source's checks and skip null keys, but the snapshot-wide rules (row counts, null
 * rates, ranges) apply to full loads only.
 *
 * Threads: mat_load_view() runs on the calling thread (a load thread of the scheduler's, or a
 * test's); the status and ticket calls may come from any thread and take one mutex (control
 * path only). The scheduler runs loads of different views at once, each view's one at a time.
 * Every read of a source is bounded (struct mat_source_timeouts).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/metrics.h"
#include "common/options.h"
#include "store/schema.h"

struct store_catalog;
struct store_table;
struct store_view;

/* ---- defaults ------------------------------------------------------------------------------ */

#define MAT_RETRY_FIRST_US    (1000LL * 1000)       /* first retry 1 s after a failure ... */
#define MAT_RETRY_MAX_US      (300LL * 1000 * 1000) /* ... doubling up to 5 min or the refresh */
#define MAT_ERROR_LEN         1024
#define MAT_SOURCE_LEN        512
#define MAT_VIEW_NAME_LEN     (STORE_MAX_NAME + 1)
#define MAT_REQUEST_QUEUE_MAX 64 /* on-demand loads waiting; more are refused */
#define MAT_LOAD_THREADS      2  /* loads of different views that may run at once */

/* Bounds on one read of a source (struct mat_source_timeouts), as the materializer's options
 * default them; a view's source may override each. */
#define MAT_LOAD_TIMEOUT_US         (3600LL * 1000 * 1000) /* the whole read: 1 h */
#define MAT_PG_CONNECT_TIMEOUT_US   (10LL * 1000 * 1000)   /* connect_timeout */
#define MAT_PG_STATEMENT_TIMEOUT_US 0                      /* 0: the load's timeout */
#define MAT_PG_READ_TIMEOUT_US      (300LL * 1000 * 1000)  /* silence from the server: 5 min */
#define MAT_PG_TCP_USER_TIMEOUT_US  (60LL * 1000 * 1000)   /* tcp_user_timeout */

/* ---- what a view's loads are made of (the config file's source:, contract:) ------------- */

enum mat_source_type {
    MAT_SOURCE_NONE, /* no source: rows only arrive by other means (pushes, streams) */
    MAT_SOURCE_PARQUET,
    MAT_SOURCE_POSTGRES,
};

const char *mat_source_type_name(enum mat_source_type type); /* "none", "parquet", ... */

/*
 * How long one read of a source may take (durations in microseconds). A view's source holds
 * MAT_TIMEOUT_UNSET for those it does not set: the scheduler gives them the materializer's
 * (mat_options.timeouts), and a reader given one unset takes the default above.
 *
 *   connect ──connect_us──> queries, COPY ──read_us: longest silence from the server──> done
 *   └───────────────── load_us: the whole read (Parquet too); statement_us on the server ─┘
 */
#define MAT_TIMEOUT_UNSET (-1)
struct mat_source_timeouts {
    int64_t load_us;      /* the whole read, Parquet or PostgreSQL; 0: none */
    int64_t connect_us;   /* postgres: libpq connect_timeout (whole seconds, at least 2) */
    int64_t statement_us; /* postgres: the server's statement_timeout; 0: load_us */
    int64_t read_us;      /* postgres: the longest wait for the server's next bytes; 0: none */
    int64_t tcp_user_us;  /* postgres: tcp_user_timeout, unacknowledged sends; 0: the kernel's */
};

/* Sets every unset bound of `t` to the one in `defaults` (NULL: mat_default_timeouts()). */
void mat_source_timeouts_resolve(struct mat_source_timeouts *t,
                                 const struct mat_source_timeouts *defaults);

/* The built-in bounds: the MAT_*_TIMEOUT_US defaults above, as the options default to. */
const struct mat_source_timeouts *mat_default_timeouts(void);

/* Where a view's snapshots come from. Strings are owned (mat_source_deinit); absent ones NULL. */
struct mat_source {
    enum mat_source_type type;
    char *path;  /* parquet: a file, a glob or a directory */
    char *dsn;   /* postgres: libpq connection string; NULL = the PG* environment variables */
    char *table; /* postgres: exactly one of table and query */
    char *query;
    char *event_timestamp_column;   /* required when there is a source */
    char *created_timestamp_column; /* optional tie-breaker between equal event timestamps */
    struct mat_source_timeouts timeouts;
    /* The directories a LoadSnapshot path override must lie under, NULL-terminated (an empty
     * list: no override at all). NULL: the default, the directory holding `path` (for a glob,
     * the folder before its first wildcard); a postgres source has none by default. */
    char **allowed_paths;
};

/* Frees the strings and zeroes the struct. */
void mat_source_deinit(struct mat_source *source);
/* A deep copy into `dst`; -1 when out of memory (then `dst` holds nothing). */
int mat_source_copy(struct mat_source *dst, const struct mat_source *src);

/*
 * Whether `path`, a LoadSnapshot path override, lies under one of the source's allowed paths.
 * Decided on the strings alone (relative paths taken from the working directory, "." and
 * repeated slashes dropped; a ".." anywhere refuses the path), so nothing is looked up for a
 * refused path and a refusal says nothing of what exists. Symbolic links under an allowed
 * directory are followed when the load reads: whoever owns the directory decides where they
 * point. Returns true, or false with `err` saying why (without the view's name).
 */
bool mat_source_path_allowed(const struct mat_source *source, const char *path, char *err,
                             size_t err_len);

/* A feature's contract checks: `contract.features.<name>: { max_null_rate, range }`. */
struct mat_feature_check {
    uint32_t feature;     /* index in the view's schema */
    double max_null_rate; /* 0..1: share of the snapshot's entities with a null value; 1 = any */
    bool has_range;       /* numeric features: every present value in [range_min, range_max] */
    double range_min;
    double range_max;
};

/*
 * What a new snapshot must satisfy before it replaces the live one. The zeroed struct checks
 * nothing but the rule every view has (no null entity keys) and max_row_drop_percent 0: set it
 * to 100 for no limit, as mat_contract_init() does. A fixed array keeps it free of
 * allocations; few features carry checks.
 */
#define MAT_MAX_CHECKED_FEATURES 64
struct mat_contract {
    uint64_t min_rows;           /* 0 = no minimum */
    double max_row_drop_percent; /* vs the live snapshot's rows, 0..100; 100 = no limit */
    uint32_t nfeatures;
    struct mat_feature_check features[MAT_MAX_CHECKED_FEATURES];
};

/* The contract that checks only what every snapshot must satisfy. */
void mat_contract_init(struct mat_contract *contract);

/* Everything the scheduler needs of one view: no schema (the catalog has it). */
struct mat_view_config {
    char name[MAT_VIEW_NAME_LEN];
    struct mat_source source;
    int64_t refresh_interval_us; /* 0 = materialize only on demand */
    bool incremental;            /* load only rows newer than the watermark into the live table */
    /* Lookups touching the view before its first snapshot: answered from the empty table
     * (NOT_FOUND, defaults) when true, refused with UNAVAILABLE when false. Views without a
     * source are never refused. */
    bool serve_before_ready;
    struct mat_contract contract;
};

/* ---- options ------------------------------------------------------------------------------- */

/* duckdb_threads, nice, load_threads and the timeouts are the config file's materializer
 * section (mat_option_group). */
struct mat_options {
    int64_t retry_first_us; /* backoff after the first failure; doubles per failure */
    int64_t retry_max_us;   /* backoff ceiling (also never beyond the view's refresh interval) */
    uint32_t duckdb_threads;
    /* Nice value of the load threads and of the threads DuckDB starts from them (they
     * inherit it): loads yield the CPU to the workers answering lookups. 0: as the process. */
    uint32_t nice;
    /* Load threads: loads (and pushed snapshots' commits) of different views run on them at
     * once; one view's never do. */
    uint32_t load_threads;
    struct mat_source_timeouts timeouts; /* for sources that do not set their own */
    bool load_at_start; /* load every view with a source when the scheduler starts */
};

extern const struct option_group mat_option_group;

/* Fills `options` with the defaults: the group's and the constants above. */
void mat_options_init(struct mat_options *options);

/* ---- metrics: what each load did ------------------------------------------------------------- */

enum mat_outcome {
    MAT_NEVER_LOADED,       /* no load has finished yet */
    MAT_LOADED,             /* a full snapshot was swapped in */
    MAT_LOADED_INCREMENTAL, /* rows after the watermark went into the live table */
    MAT_SOURCE_FAILED,      /* the source could not be read: live table unchanged */
    MAT_REJECTED,           /* the data contract failed: live table unchanged */
};

const char *mat_outcome_name(enum mat_outcome outcome); /* "loaded", "rejected", ... */

struct mat_load_result {
    enum mat_outcome outcome;
    uint64_t version; /* the view's snapshot version after the load (unchanged if it failed) */
    char source[MAT_SOURCE_LEN]; /* "parquet:<path>" or "postgres:<table or query>" */
    uint64_t rows_read;          /* rows the source delivered */
    uint64_t rows_kept;          /* rows stored: the table's rows come from these */
    uint64_t rows_superseded;    /* an equal or newer row of the same entity was kept instead */
    uint64_t rows_skipped;       /* future + expired + null key */
    uint64_t skipped_future;
    uint64_t skipped_expired;
    uint64_t null_keys;
    uint64_t table_rows;       /* entities in the new table (full loads) */
    uint64_t updates_replayed; /* live updates logged during the build and replayed */
    int64_t duration_us;
    int64_t watermark_us;      /* event time loads after this one start from; INT64_MIN: none */
    int64_t max_event_ts_us;   /* newest event time stored by this load; INT64_MIN: none */
    char error[MAT_ERROR_LEN]; /* why it failed; "" when it did not */
};

/* Per view, as the scheduler last saw it (a copy; see mat_view_status()). */
struct mat_view_status {
    char view[MAT_VIEW_NAME_LEN];
    bool has_source;
    char source_type[16];           /* "none", "parquet", "postgres" */
    int64_t refresh_interval_us;    /* 0: loaded at start and on demand only */
    bool loading;                   /* a load is running now */
    uint64_t loads_completed;       /* successful loads, full and incremental */
    uint64_t loads_failed;          /* source failures and contract rejections */
    uint32_t consecutive_failures;  /* since the last success */
    int64_t last_load_end_us;       /* wall clock; 0 = never */
    int64_t next_load_us;           /* wall clock of the next scheduled load or retry; 0 = none */
    struct mat_load_result last;    /* the last load that finished, success or not */
    struct mat_load_result last_ok; /* the last successful load */
};

/* ---- metrics: what the scheduler saw of each load, and readiness -------------------------- */

enum mat_metric {
    MAT_M_READY,             /* fsd_ready */
    MAT_M_VIEW_READY,        /* fsd_view_ready{view} */
    MAT_M_VIEW_REFRESH,      /* fsd_view_refresh_interval_seconds{view} */
    MAT_M_LOADS,             /* fsd_materialization_loads_total{view,result} */
    MAT_M_FAILING,           /* fsd_materialization_consecutive_failures{view,reason} */
    MAT_M_LAST_ROWS,         /* fsd_materialization_last_rows{view,kind} */
    MAT_M_LAST_DURATION,     /* fsd_materialization_last_duration_seconds{view} */
    MAT_M_LOADING,           /* fsd_materialization_loading{view} */
    MAT_M_NEWEST_EVENT_TIME, /* fsd_view_newest_event_timestamp_seconds{view} */
    MAT_M_COUNT,
};
extern const struct metric_def mat_metric_defs[MAT_M_COUNT];

/* ---- setup / teardown ---------------------------------------------------------------------- */

/*
 * Starts the load threads (options->load_threads) for `views` (each in `catalog`, which must
 * outlive the scheduler) and registers the metrics above. Copies what it needs from the views.
 * `options` NULL: defaults. Returns 0, or -1 with `err` set. Control thread.
 */
int mat_setup(struct store_catalog *catalog, const struct mat_view_config *const *views,
              size_t nviews, const struct mat_options *options, char *err, size_t err_len);

/*
 * Stops the load threads: the loads in progress give up their reads (mat_stopping: DuckDB is
 * interrupted, the PostgreSQL reader stops waiting, within about 100 ms; a commit in progress
 * finishes), queued requests fail with "shutting down". Blocks until the threads are gone.
 */
void mat_teardown(void);

/*
 * After a config reload: takes the new sources, refresh intervals, contracts and incremental
 * flags, and schedules new views (added to the catalog first) for a load now. Views no longer
 * in `views` keep their last settings. Copies what it needs. Never waits for a load. Control
 * thread.
 */
void mat_reconfigure(const struct mat_view_config *const *views, size_t nviews);

/* ---- API ----------------------------------------------------------------------------------- */

/* How to run one load. */
struct mat_load_params {
    uint32_t shards;             /* of the new table; 0: the store's default */
    const char *path_override;   /* parquet: read this file, glob or directory instead */
    const char *stream_position; /* recorded with the snapshot (store_view_stream_position);
                                    NULL: none. Ignored by incremental loads (no swap) */
    bool incremental;            /* upsert rows after `watermark_us` into the live table */
    int64_t watermark_us;        /* INT64_MIN: none (an incremental request then loads fully) */
    int64_t now_us;              /* the load's start, wall clock: "future" and "expired" refer to
                                    it; 0: the real time */
    uint32_t duckdb_threads;
};

/*
 * Loads `view` once from `config`'s source as `params` says (see the top of this file) and
 * fills `result`. Returns 0 when the load completed (swapped, or applied incrementally), -1
 * when it failed or was rejected (the live table unchanged; result->error says why). Blocks
 * for the whole load; holds an RCU read section meanwhile (the view's schema must not be
 * freed under the build), so it must not run on a thread that waits for grace periods. The
 * calling thread must be RCU-online. Does not log.
 */
int mat_load_view(struct store_view *view, const struct mat_view_config *config,
                  const struct mat_load_params *params, struct mat_load_result *result);

/* ---- the commit: how every new snapshot replaces a view's -------------------------------- */

/* What a commit did. */
struct mat_commit_result {
    enum mat_outcome outcome;  /* MAT_LOADED; MAT_REJECTED (contract); MAT_SOURCE_FAILED else */
    uint64_t version;          /* the view's new snapshot version; 0 when not swapped */
    uint64_t table_rows;       /* entities in the new snapshot */
    uint64_t updates_replayed; /* live updates logged while it was built, replayed into it */
    char error[MAT_ERROR_LEN]; /* why it was not swapped in; "" when it was */
};

/*
 * Commits `table`, a snapshot built off to the side for `view` while the caller held the
 * view's load (store_view_load_begin): seals it, checks `contract` (NULL: only what every
 * snapshot must satisfy; `null_keys` is how many source rows had a null join key), records
 * `stream_position` (NULL or "": none) and swaps it in with store_view_load_commit, at
 * `loaded_at_us` (wall clock). Returns 0 with the table now the view's, or -1 with
 * out->error set and the table destroyed. Either way the view's load has ended. Passes over
 * every row (the seal, the contract); blocks for them. Control threads only (the calling
 * thread must be RCU-online): loads and PushSnapshot both commit on a load thread.
 */
int mat_commit_snapshot(struct store_view *view, struct store_table *table,
                        const struct mat_contract *contract, uint64_t null_keys,
                        const char *stream_position, int64_t loaded_at_us,
                        struct mat_commit_result *out);

/* Told, on the load thread that committed, how a requested commit ended; must not block. */
typedef void (*mat_commit_done_fn)(const struct mat_commit_result *result, void *ctx);

/*
 * Hands a pushed snapshot to a load thread to commit (mat_commit_snapshot with the view's
 * contract as the scheduler has it), ahead of every queued or scheduled load: `table` was
 * built for `view`, whose load the caller holds and hands over with it; `stream_position`
 * (may be NULL) is copied. The commit waits only for a load or commit of the same view and
 * for a free load thread. `done(result, ctx)` runs on that thread once the commit ended; at
 * teardown, a commit still queued ends unswapped ("shutting down"). Returns 0, or
 * -1 with `err` set (the scheduler does not run, out of memory): nothing was handed over, the
 * caller still holds the load and the table. Never blocks.
 */
int mat_request_commit(struct store_view *view, struct store_table *table,
                       const char *stream_position, mat_commit_done_fn done, void *ctx, char *err,
                       size_t err_len);

/*
 * An on-demand load (LoadSnapshot): queues a full load of `view` (from `path_override`, a
 * Parquet file, glob or directory, when not NULL) ahead of scheduled ones; `stream_position`
 * (a checked stream entry ID, or NULL) is recorded with the snapshot if it swaps in. A view has
 * one request queued at most: asked again with the same path and position, the queued one's
 * ticket is returned (*joined set true; `joined` may be NULL), with others it is refused.
 * Returns a ticket to wait on, or NULL with `err` set and *refusal saying why. Never blocks.
 */
enum mat_refusal {
    MAT_REFUSED_NOT_RUNNING,  /* no scheduler, or it is stopping */
    MAT_REFUSED_UNKNOWN_VIEW, /* no such view */
    MAT_REFUSED_NO_SOURCE,    /* the view has no source: its snapshots come from PushSnapshot */
    MAT_REFUSED_PATH,         /* path_override not under the source's allowed_paths */
    MAT_REFUSED_BUSY,         /* another request of the view is queued, or the queue is full */
    MAT_REFUSED_NO_MEMORY,
};
struct mat_ticket;
struct mat_ticket *mat_request_load(const char *view, const char *path_override,
                                    const char *stream_position, bool *joined,
                                    enum mat_refusal *refusal, char *err, size_t err_len);

/*
 * Waits up to `timeout_us` (0: do not wait; <0: forever) for the load. Returns true and fills
 * `result` when it finished, false on timeout (wait again or release). Any thread.
 */
bool mat_ticket_wait(struct mat_ticket *ticket, int64_t timeout_us, struct mat_load_result *result);

/* Gives the ticket back; the load still runs if it has not finished. */
void mat_ticket_release(struct mat_ticket *ticket);

/*
 * Copies the status of view `view` into `out`. Returns false when the scheduler does not know
 * it. Any thread; takes the scheduler's mutex briefly.
 */
bool mat_view_status(const char *view, struct mat_view_status *out);

/*
 * Whether `view` can serve: it has no source, or its first snapshot has been swapped in (by a
 * load or a push). A view the scheduler does not know (a reload added it and has not called
 * mat_reconfigure() yet) does not hold readiness back. Any thread; takes the scheduler's
 * mutex briefly and reads the store's version of the view.
 */
bool mat_view_ready(const char *view);
