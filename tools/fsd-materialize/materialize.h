#pragma once
/*
 * fsd-materialize, the job-side program: reads one view's source (Parquet through DuckDB,
 * PostgreSQL through libpq: the materializer's sources) into a local table, then streams its
 * rows to a running fsd with PushSnapshot, showing progress. What its files share; the
 * program has no API beyond its command line. Prefix fm_ (fsd-materialize).
 *
 *   config ──view──> preflight.c: fsd serves the view with these keys and features?
 *                    source.c: source ──mat_sink──> local table (latest row per entity)
 *                    push.c:    local table ──encode.c: PushSnapshotRequest batches──> client
 *                               stream ──> fsd ──> PushSnapshotResponse (version, rows)
 *                    progress.c: rows sent / total, rows/s, ETA ──> stderr
 *
 * The local table applies the same rules as fsd's own loads (latest row per entity, future
 * rows and rows already past the TTL skipped, null keys refused), so a pushed snapshot and a
 * pulled one of the same data are the same.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/client.h"
#include "common/ports.h"

struct config_view;
struct mat_sink_stats;
struct store_row;
struct store_schema;
struct store_table;

/* ---- defaults ---------------------------------------------------------------------------- */

#define FM_DEFAULT_ADDR              FSD_GRPC_DEFAULT_ADDR
#define FM_DEFAULT_BATCH_ROWS        5000
#define FM_MAX_BATCH_ROWS            1000000
#define FM_DEFAULT_MAX_MESSAGE_BYTES (4u << 20) /* fsd's server.max_message_bytes default */
#define FM_MIN_MESSAGE_BYTES         (64u << 10)
#define FM_PLAIN_PROGRESS_US         (2 * 1000000) /* a plain progress line every 2 s */
#define FM_BAR_PROGRESS_US           100000        /* the bar is redrawn at most every 100 ms */
#define FM_BAR_WIDTH                 30
#define FM_ERR_LEN                   1024

/* Exit status. */
enum fm_exit {
    FM_EXIT_OK = 0,
    FM_EXIT_FAILED = 1, /* the source, the connection or the server said no */
    FM_EXIT_USAGE = 2,
};

/* ---- options ----------------------------------------------------------------------------- */

struct fm_options {
    const char *addr;        /* HOST:PORT of fsd's gRPC port */
    const char *config_path; /* the config describing the view and its source */
    const char *view;
    const char *path;             /* Parquet file, glob or directory instead of the source */
    const char *stream_position;  /* the stream entry ID the snapshot covers; NULL = none */
    uint32_t batch_rows;          /* rows per PushSnapshot message, at most */
    uint64_t max_message_bytes;   /* a message never exceeds it (fsd's server.max_message_bytes) */
    int64_t timeout_ms;           /* whole push; 0 = none */
    struct client_options client; /* the connections' (the token every call carries) */
};

/* ---- preflight.c: fsd is there and serves the view as the config describes it -------------- */

/*
 * Asks fsd at options->addr for its views (ListViews) and checks that it serves `schema`'s
 * view with the same join keys (names, types, order) and the same features (names, types).
 * Returns 0, or -1 with `err` set (cannot connect, no such view, a difference). Blocks for
 * at most the connect timeout plus 10 s.
 */
int fm_preflight(const struct fm_options *options, const struct store_schema *schema, char *err,
                 size_t err_len);

/* ---- source.c: the view's source into a local table --------------------------------------- */

struct fm_local {
    struct store_table *table; /* sealed; latest row per entity */
    uint64_t rows;             /* entities in it (tombstones never: sources have none) */
    uint64_t rows_read;        /* rows the source delivered */
    uint64_t rows_skipped;     /* future + expired */
    char source[600];          /* "parquet:<path>" or "postgres:<table or query>" */
    int64_t read_us;
};

/*
 * Reads `view`'s source (or the Parquet `path_override`) into out->table. Returns 0, or -1
 * with `err` set (no source, unreadable source, null keys, out of memory). Blocks for the
 * whole read. The calling thread must be RCU-online (store_rcu_thread_online).
 */
int fm_read_source(const struct config_view *view, const char *path_override, struct fm_local *out,
                   char *err, size_t err_len);

/* ---- encode.c: rows into PushSnapshotRequest messages ------------------------------------- */

struct fm_encoder;

/*
 * An encoder of messages for `schema`'s view holding at most `batch_rows` rows and
 * `max_message_bytes` bytes. The view is named in the first message only. NULL when out of
 * memory.
 */
struct fm_encoder *fm_encoder_create(const struct store_schema *schema, uint32_t batch_rows,
                                     uint64_t max_message_bytes);
void fm_encoder_destroy(struct fm_encoder *enc);

/*
 * Sends `position` (a stream entry ID; not copied, must outlive the encoder) as the snapshot's
 * stream_position in the first message. Call before the first row is added.
 */
void fm_encoder_set_stream_position(struct fm_encoder *enc, const char *position);

enum fm_add {
    FM_ADDED,   /* the row is in the batch */
    FM_FULL,    /* the batch has no room for it: take the message, then add it again */
    FM_TOO_BIG, /* the row alone exceeds max_message_bytes */
    FM_NO_MEMORY,
};

/* Adds a row of the local table (which must outlive the batch: values are not copied). */
enum fm_add fm_encoder_add(struct fm_encoder *enc, const struct store_row *row);

/* Rows in the batch being built. */
size_t fm_encoder_rows(const struct fm_encoder *enc);

/*
 * Packs the batch into one message and starts the next batch. Returns the message (owned by
 * the encoder, valid until the next call) and its length in *len, or NULL when out of memory.
 */
const uint8_t *fm_encoder_take(struct fm_encoder *enc, size_t *len);

/* ---- progress.c: what the user sees while rows go out ------------------------------------- */

struct fm_progress {
    const char *view;
    uint64_t total;   /* rows to send */
    uint64_t sent;    /* rows sent so far */
    bool bar;         /* a terminal: redraw one line with \r; else a plain line every 2 s */
    int64_t start_us; /* monotonic */
    int64_t last_us;  /* when the last line or bar was written */
    bool drawn;       /* a bar is on screen (ends with a newline before other output) */
};

void fm_progress_init(struct fm_progress *p, const char *view, uint64_t total, bool bar);
/* Records `sent` and writes a line or redraws the bar when it is time. */
void fm_progress_update(struct fm_progress *p, uint64_t sent);
/* Writes the final line or bar (whatever the time) and ends the bar's line. */
void fm_progress_finish(struct fm_progress *p);
/* Ends the bar's line, if one is drawn, before an error message is printed. */
void fm_progress_break(struct fm_progress *p);

/* ---- push.c: the stream to fsd ------------------------------------------------------------ */

struct fm_result {
    uint64_t version;
    uint64_t rows_sent;
    uint64_t rows_kept;
    uint64_t updates_replayed;
};

/*
 * Streams every row of `local` to fsd at options->addr as one PushSnapshot of options->view
 * and waits for the answer. Returns 0 with `result` filled, or -1 with `err` set (cannot
 * connect, the server refused the snapshot: its status and message). Blocks.
 */
int fm_push(const struct fm_options *options, const struct store_schema *schema,
            const struct fm_local *local, struct fm_progress *progress, struct fm_result *result,
            char *err, size_t err_len);
