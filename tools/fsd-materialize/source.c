/*
 * The view's source into a local table, through the materializer's own sources and row sink,
 * so a snapshot pushed by this program holds exactly what fsd would load from the same data.
 */
#include "materialize.h"

#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "config/config.h"
#include "materializer/snapshot/parquet.h"
#include "materializer/snapshot/postgres.h"
#include "materializer/snapshot/sink.h"
#include "store/table.h"
#include "common/clock.h"

/* A table for the snapshot and a sink filling it; `expected_rows` sizes it (0: unknown). */
static struct mat_sink *_sink_create(const struct store_schema *schema, uint64_t expected_rows,
                                     struct fm_local *out, char *err, size_t err_len) {
    struct store_table_options options = {.expected_rows = expected_rows};
    out->table = store_table_create(schema, &options, err, err_len);
    if (out->table == NULL) {
        return NULL;
    }
    /* "Future" and "expired" as of now, as fsd's own load would judge them. */
    struct mat_sink *sink = mat_sink_create(schema, out->table, clock_wall_us());
    if (sink == NULL) {
        snprintf(err, err_len, "view %s: out of memory", schema->view);
    }
    return sink;
}

/* Opens the source, creates the table and the sink (*sink), and reads every row into it. */
static int _read(const struct config_view *view, const char *path_override, struct mat_sink **sink,
                 struct fm_local *out, char *err, size_t err_len) {
    const struct mat_source *source = &view->snapshot.source;
    const struct store_schema *schema = view->schema;
    if (path_override == NULL && source->type == MAT_SOURCE_POSTGRES) {
        /* Never the dsn: it may hold a password. */
        snprintf(out->source, sizeof out->source, "postgres:%s",
                 source->table != NULL ? source->table : source->query);
        *sink = _sink_create(schema, 0, out, err, err_len);
        if (*sink == NULL) {
            return -1;
        }
        return mat_pg_read(source, schema, *sink, INT64_MIN, NULL, err, err_len);
    }
    const char *path = path_override != NULL ? path_override : source->path;
    if (source->type == MAT_SOURCE_NONE) {
        snprintf(err, err_len,
                 "view %s has no source in the config: describe one (its type, path or table, "
                 "and event_timestamp_column)%s",
                 schema->view, path_override != NULL ? ", which --path then overrides" : "");
        return -1;
    }
    snprintf(out->source, sizeof out->source, "parquet:%s", path);
    struct mat_parquet_options options = {
        .path = path,
        .event_timestamp_column = source->event_timestamp_column,
        .created_timestamp_column = source->created_timestamp_column,
        .watermark_us = INT64_MIN,
    };
    struct mat_parquet *parquet;
    if (mat_parquet_open(schema, &options, &parquet, err, err_len) != 0) {
        return -1;
    }
    /* Sized from the files' footers, as fsd sizes its own loads: no growth while reading. */
    *sink = _sink_create(schema, mat_parquet_expected_rows(parquet), out, err, err_len);
    int rc = *sink != NULL ? mat_parquet_read(parquet, *sink, err, err_len) : -1;
    mat_parquet_close(parquet);
    return rc;
}

int fm_read_source(const struct config_view *view, const char *path_override, struct fm_local *out,
                   char *err, size_t err_len) {
    const struct store_schema *schema = view->schema;
    int64_t started = clock_mono_us();
    *out = (struct fm_local){0};
    struct mat_sink *sink = NULL;
    int rc = _read(view, path_override, &sink, out, err, err_len);
    const struct mat_sink_stats *stats = sink != NULL ? mat_sink_stats(sink) : NULL;
    if (rc == 0 && stats->null_keys > 0) {
        /* fsd's contract refuses a snapshot with null entity keys; say so before sending. */
        snprintf(err, err_len,
                 "view %s: %" PRIu64 " rows of %s have a null join key (entity keys must be "
                 "non-null)",
                 schema->view, stats->null_keys, out->source);
        rc = -1;
    }
    if (rc == 0) {
        store_table_seal(out->table);
        struct store_table_stats ts;
        store_table_stats(out->table, &ts);
        out->rows = ts.rows;
        out->rows_read = stats->rows_read;
        out->rows_skipped = stats->skipped_future + stats->skipped_expired;
        out->read_us = clock_mono_us() - started;
    } else {
        store_table_destroy(out->table);
        out->table = NULL;
    }
    mat_sink_destroy(sink);
    return rc;
}
