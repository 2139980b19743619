/* One load of one view: source -> sink -> new table -> contract -> commit (snapshot.h). */
#include "snapshot.h"

#include <stdio.h>
#include <string.h>

#include "snapshot_internal.h"
#include "parquet.h"
#include "postgres.h"
#include "sink.h"
#include "store/catalog.h"
#include "store/rcu.h"
#include "store/schema.h"
#include "store/table.h"
#include "common/clock.h"

/*
 * Restart to change: the scheduler copies them when it starts. Loads are rare and the right
 * values depend on the machine, not on the moment.
 */
static const struct option_def mat_option_defs[] = {
    {
        .name = "duckdb_threads",
        .type = OPTION_UINT,
        .default_text = "0",
        .min = 0,
        .max = 256,
        OPTION_UINT_AT(struct mat_options, duckdb_threads),
        .description = "Threads DuckDB may use to read a Parquet snapshot; 0 means the CPU "
                       "cores the workers leave, less one for the thread that builds the table "
                       "(at least 1). More threads than that fight the workers and the builder "
                       "for the same cores: on 2 cores with 1 worker, one DuckDB thread loaded "
                       "faster than two and cost lookups less latency.",
    },
    {
        .name = "nice",
        .type = OPTION_UINT,
        .default_text = "10",
        .min = 0,
        .max = 19,
        OPTION_UINT_AT(struct mat_options, nice),
        .description = "Nice value of the thread that runs snapshot loads and of the DuckDB "
                       "threads it starts, so that a load uses the CPU the workers leave idle "
                       "and yields it when lookups arrive; 0 runs loads at the daemon's own "
                       "priority. A pushed snapshot (PushSnapshot) is received on the worker "
                       "threads and committed on this thread, at this priority too.",
    },
    {
        .name = "load_threads",
        .type = OPTION_UINT,
        .default_text = "2",
        .min = 1,
        .max = 64,
        OPTION_UINT_AT(struct mat_options, load_threads),
        .description = "Threads that run snapshot loads and commit pushed snapshots: loads of "
                       "different views run on them at once, so a view whose source hangs "
                       "holds one thread (until its timeouts end the load) and the others keep "
                       "loading; a view's own loads never overlap. Each load builds a whole "
                       "new table beside the live one: N threads may hold N such tables at "
                       "once.",
    },
    {
        .name = "load_timeout",
        .type = OPTION_DURATION,
        .default_text = "1h",
        .min = 0,
        .max = 30LL * 24 * 3600 * 1000000,
        OPTION_DURATION_AT(struct mat_options, timeouts.load_us),
        .description = "The longest one read of a source may take, Parquet (DuckDB is "
                       "interrupted) or PostgreSQL (the connection is closed); past it the "
                       "load fails and the live snapshot keeps serving. 0: no limit. A view's "
                       "source may set its own (load_timeout).",
    },
    {
        .name = "postgres_connect_timeout",
        .type = OPTION_DURATION,
        .default_text = "10s",
        .min = 2LL * 1000000,
        .max = 3600LL * 1000000,
        OPTION_DURATION_AT(struct mat_options, timeouts.connect_us),
        .description = "libpq's connect_timeout: how long connecting to PostgreSQL (TCP, TLS, "
                       "start-up, authentication) may take, in whole seconds. A source's "
                       "connect_timeout, then connect_timeout in its dsn, win over it.",
    },
    {
        .name = "postgres_statement_timeout",
        .type = OPTION_DURATION,
        .default_text = "0",
        .min = 0,
        .max = 30LL * 24 * 3600 * 1000000,
        OPTION_DURATION_AT(struct mat_options, timeouts.statement_us),
        .description = "The server's statement_timeout for a load's queries and COPY, so "
                       "that the server itself cancels a read that runs too long (SQLSTATE "
                       "57014). 0: the load's load_timeout (none when that is 0 too). An "
                       "`options` keyword in the source's dsn replaces it.",
    },
    {
        .name = "postgres_read_timeout",
        .type = OPTION_DURATION,
        .default_text = "5m",
        .min = 0,
        .max = 30LL * 24 * 3600 * 1000000,
        OPTION_DURATION_AT(struct mat_options, timeouts.read_us),
        .description = "The longest fsd waits for PostgreSQL's next bytes once connected: a "
                       "query's answer, the COPY's next rows. A server that stopped (frozen, "
                       "SIGSTOP, a wedged backend) still acknowledges TCP, so keepalives "
                       "cannot tell; this fails the load. Raise it for queries that take "
                       "longer than this to produce their first row. 0: no limit.",
    },
    {
        .name = "postgres_tcp_user_timeout",
        .type = OPTION_DURATION,
        .default_text = "1m",
        .min = 0,
        .max = 3600LL * 1000000,
        OPTION_DURATION_AT(struct mat_options, timeouts.tcp_user_us),
        .description = "libpq's tcp_user_timeout: a connection whose sent data or keepalive "
                       "probes stay unacknowledged this long is closed by the kernel (a "
                       "server or network that vanished). 0: the kernel's default. "
                       "tcp_user_timeout in the dsn wins over it.",
    },
};

/* What is not an option of the config file. */
static void _init_fixed(void *values) {
    struct mat_options *options = values;
    options->retry_first_us = MAT_RETRY_FIRST_US;
    options->retry_max_us = MAT_RETRY_MAX_US;
    options->load_at_start = true;
}

/* The bounds a reader takes for what neither the source nor the options set. */
static const struct mat_source_timeouts _builtin_timeouts = {
    .load_us = MAT_LOAD_TIMEOUT_US,
    .connect_us = MAT_PG_CONNECT_TIMEOUT_US,
    .statement_us = MAT_PG_STATEMENT_TIMEOUT_US,
    .read_us = MAT_PG_READ_TIMEOUT_US,
    .tcp_user_us = MAT_PG_TCP_USER_TIMEOUT_US,
};

const struct mat_source_timeouts *mat_default_timeouts(void) {
    return &_builtin_timeouts;
}

const struct option_group mat_option_group = {"materializer", mat_option_defs,
                                              sizeof mat_option_defs / sizeof mat_option_defs[0],
                                              _init_fixed};

void mat_options_init(struct mat_options *options) {
    (void)option_group_defaults(&mat_option_group, options, sizeof(*options), NULL, 0);
}

const char *mat_outcome_name(enum mat_outcome outcome) {
    switch (outcome) {
    case MAT_NEVER_LOADED:
        return "never_loaded";
    case MAT_LOADED:
        return "loaded";
    case MAT_LOADED_INCREMENTAL:
        return "loaded_incremental";
    case MAT_SOURCE_FAILED:
        return "source_failed";
    case MAT_REJECTED:
        return "rejected";
    }
    return "unknown";
}

/* A source opened for one load: Parquet opens (and checks types) before the table exists, so
 * the table can be sized; PostgreSQL opens and reads in one call. */
struct source {
    const struct mat_source *config;
    const char *path; /* parquet: the configured path or the override */
    struct mat_parquet *parquet;
};

static int _source_open(struct source *s, const struct store_schema *schema,
                        const struct mat_load_params *params, int64_t watermark_us, char *err,
                        size_t err_len) {
    if (s->config->type == MAT_SOURCE_PARQUET || params->path_override != NULL) {
        struct mat_source_timeouts timeouts = s->config->timeouts;
        mat_source_timeouts_resolve(&timeouts, NULL);
        struct mat_parquet_options options = {
            .path = s->path,
            .event_timestamp_column = s->config->event_timestamp_column,
            .created_timestamp_column = s->config->created_timestamp_column,
            .watermark_us = watermark_us,
            .threads = params->duckdb_threads,
            .timeout_us = timeouts.load_us,
        };
        return mat_parquet_open(schema, &options, &s->parquet, err, err_len);
    }
    if (s->config->type == MAT_SOURCE_POSTGRES) {
        return 0; /* mat_pg_read() connects and checks in _source_read() */
    }
    snprintf(err, err_len, "view %s: the view has no source to load from", schema->view);
    return -1;
}

static int _source_read(struct source *s, const struct store_schema *schema, struct mat_sink *sink,
                        int64_t watermark_us, char *err, size_t err_len) {
    if (s->parquet != NULL) {
        return mat_parquet_read(s->parquet, sink, err, err_len);
    }
    return mat_pg_read(s->config, schema, sink, watermark_us, NULL, err, err_len);
}

static void _describe_source(const struct mat_source *source, const char *path,
                             struct mat_load_result *result) {
    if (source->type == MAT_SOURCE_PARQUET || path != source->path) {
        snprintf(result->source, sizeof result->source, "parquet:%s", path ? path : "");
    } else if (source->type == MAT_SOURCE_POSTGRES) {
        /* Never the dsn: it may hold a password. */
        snprintf(result->source, sizeof result->source, "postgres:%s",
                 source->table != NULL ? source->table : source->query);
    } else {
        snprintf(result->source, sizeof result->source, "none");
    }
}

static void _take_stats(struct mat_load_result *result, const struct mat_sink_stats *stats) {
    result->rows_read = stats->rows_read;
    result->rows_kept = stats->rows_kept;
    result->rows_superseded = stats->rows_superseded;
    result->skipped_future = stats->skipped_future;
    result->skipped_expired = stats->skipped_expired;
    result->null_keys = stats->null_keys;
    result->rows_skipped = stats->skipped_future + stats->skipped_expired + stats->null_keys;
    result->max_event_ts_us = stats->max_event_ts_us;
}

/* Rows after the watermark straight into the live table, through the view's writer path. */
static int _load_incremental(struct store_view *view, const struct store_schema *schema,
                             struct source *src, const struct mat_load_params *params,
                             int64_t now_us, struct mat_load_result *result) {
    char *err = result->error;
    size_t err_len = sizeof result->error;
    if (_source_open(src, schema, params, params->watermark_us, err, err_len) != 0) {
        return -1;
    }
    struct mat_sink *sink = mat_sink_create_live(schema, view, now_us);
    if (sink == NULL) {
        snprintf(err, err_len, "view %s: out of memory", schema->view);
        return -1;
    }
    int rc = _source_read(src, schema, sink, params->watermark_us, err, err_len);
    const struct mat_sink_stats *stats = mat_sink_stats(sink);
    _take_stats(result, stats);
    if (rc == 0) {
        result->watermark_us = stats->max_event_ts_us > params->watermark_us
                                   ? stats->max_event_ts_us
                                   : params->watermark_us;
        result->outcome = MAT_LOADED_INCREMENTAL;
        struct store_table_stats ts;
        store_read_lock();
        store_table_stats(store_view_table(view), &ts);
        store_read_unlock();
        result->table_rows = ts.rows;
    }
    /* On failure the rows already applied stay (each was newer than what it replaced); the
     * watermark does not move, so the next load reads them again, harmlessly. */
    mat_sink_destroy(sink);
    return rc;
}

/*
 * A new snapshot from the source, then the commit. Returns 0 when it swapped in; on failure
 * *ended tells whether the load has ended (the commit ends it either way) or the caller must
 * abort it (the source could not be read).
 */
static int _load_full(struct store_view *view, const struct mat_view_config *config,
                      const struct store_schema *schema, struct source *src,
                      const struct mat_load_params *params, int64_t now_us,
                      struct mat_load_result *result, bool *ended) {
    char *err = result->error;
    size_t err_len = sizeof result->error;
    *ended = false;
    if (_source_open(src, schema, params, INT64_MIN, err, err_len) != 0) {
        return -1;
    }
    struct store_table_options options = {
        .shards = params->shards,
        .expected_rows = src->parquet != NULL ? mat_parquet_expected_rows(src->parquet) : 0,
    };
    struct store_table *table = store_table_create(schema, &options, err, err_len);
    if (table == NULL) {
        return -1;
    }
    struct mat_sink *sink = mat_sink_create(schema, table, now_us);
    if (sink == NULL) {
        snprintf(err, err_len, "view %s: out of memory", schema->view);
        store_table_destroy(table);
        return -1;
    }
    int rc = _source_read(src, schema, sink, INT64_MIN, err, err_len);
    const struct mat_sink_stats *stats = mat_sink_stats(sink);
    _take_stats(result, stats);
    if (rc != 0) {
        store_table_destroy(table);
    } else {
        struct mat_commit_result commit;
        rc = mat_commit_snapshot(view, table, &config->contract, stats->null_keys,
                                 params->stream_position, now_us, &commit);
        *ended = true;
        result->table_rows = commit.table_rows;
        result->updates_replayed = commit.updates_replayed;
        result->outcome = commit.outcome;
        if (rc != 0) {
            snprintf(err, err_len, "%s", commit.error);
        } else {
            result->watermark_us = stats->max_event_ts_us;
        }
    }
    mat_sink_destroy(sink);
    return rc;
}

int mat_load_view(struct store_view *view, const struct mat_view_config *config,
                  const struct mat_load_params *params, struct mat_load_result *result) {
    int64_t started = clock_mono_us();
    int64_t now_us = params->now_us != 0 ? params->now_us : clock_wall_us();
    memset(result, 0, sizeof(*result));
    result->outcome = MAT_SOURCE_FAILED;
    result->watermark_us = params->watermark_us;
    result->max_event_ts_us = INT64_MIN;
    struct source src = {
        .config = &config->source,
        .path = params->path_override != NULL ? params->path_override : config->source.path,
    };
    _describe_source(&config->source, src.path, result);

    /* While the load runs the view's schema cannot be replaced (store_view_load_begin pins
     * it), and live updates are logged so the swap cannot lose them. */
    if (store_view_load_begin(view) != 0) {
        snprintf(result->error, sizeof result->error,
                 "view %s: another load of this view is in progress (a PushSnapshot or a load "
                 "from the source); it was not started",
                 store_view_name(view));
        result->duration_us = clock_mono_us() - started;
        return -1;
    }
    /* Checked before the source is read; the commit records it. */
    if (params->stream_position != NULL &&
        strlen(params->stream_position) >= STORE_STREAM_POSITION_LEN) {
        store_view_load_abort(view);
        snprintf(result->error, sizeof result->error,
                 "view %s: stream position longer than %d bytes", store_view_name(view),
                 STORE_STREAM_POSITION_LEN - 1);
        result->duration_us = clock_mono_us() - started;
        return -1;
    }
    const struct store_schema *schema = store_view_schema(view);
    bool incremental = params->incremental && params->watermark_us != INT64_MIN &&
                       params->path_override == NULL && store_view_version(view) > 0;
    bool ended = false; /* the commit ended the load, swapped or not */
    int rc = incremental ? _load_incremental(view, schema, &src, params, now_us, result)
                         : _load_full(view, config, schema, &src, params, now_us, result, &ended);
    if (!ended) {
        store_view_load_abort(view);
    }
    result->version = store_view_version(view);
    mat_parquet_close(src.parquet);
    if (rc != 0 && result->outcome != MAT_REJECTED) {
        result->outcome = MAT_SOURCE_FAILED;
    }
    if (rc != 0) {
        result->watermark_us = params->watermark_us;
    }
    result->duration_us = clock_mono_us() - started;
    return rc;
}
