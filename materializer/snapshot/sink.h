#pragma once
/*
 * The row sink: where a source (Parquet through DuckDB, PostgreSQL through libpq, a pushed
 * snapshot) streams the rows of one snapshot into a table being built. Sources know their
 * file or wire format; the sink knows the store. It keeps the latest row per entity
 * (upsert-if-newer), skips rows from the future and rows already older than the view's TTL,
 * and counts what the data contract checks later (null keys, nulls per feature, values out of
 * range).
 *
 *   source ──for each row──> mat_sink_begin_row(event_ts, created_ts)
 *                            mat_sink_key_int64 / _key_string / _key_null   (each join key)
 *                            store_row_set_*(mat_sink_values(sink), feature, value)
 *                            mat_sink_end_row()  ──upsert-if-newer──> table (unpublished)
 *
 * A sink is used by one thread. It never publishes anything: the loader swaps the table in
 * only after the contract passed.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store_schema;
struct store_table;
struct store_view;
struct store_row_builder;

struct mat_sink_stats {
    uint64_t rows_read;       /* rows the source delivered */
    uint64_t rows_kept;       /* stored: new entities plus rows newer than an earlier one */
    uint64_t rows_superseded; /* an equal or newer row of the same entity was already stored */
    uint64_t skipped_future;  /* event time after the load's start */
    uint64_t skipped_expired; /* already older than the TTL at the load's start */
    uint64_t null_keys;       /* rows with a null join key: not stored */
    int64_t max_event_ts_us;  /* newest event time stored; INT64_MIN when none */
    uint64_t *feature_nulls;  /* per feature: kept rows where it was null (entity-final counts
                                 are computed at seal time by the contract) */
};

struct mat_sink;

/*
 * Returns a sink that fills `table` (new, unpublished, built for `schema`). `now_us` is the
 * load's start in wall-clock microseconds: the reference for "future" and "expired". NULL
 * when out of memory.
 */
struct mat_sink *mat_sink_create(const struct store_schema *schema, struct store_table *table,
                                 int64_t now_us);
/*
 * Returns a sink that writes each kept row into `view`'s live table through
 * store_view_upsert_sourced() (an incremental load: rows after a watermark; source rows, so
 * not marked live). `schema` is the view's
 * and must stay valid while the sink is used (hold store_read_lock()). NULL when out of memory.
 */
struct mat_sink *mat_sink_create_live(const struct store_schema *schema, struct store_view *view,
                                      int64_t now_us);
void mat_sink_destroy(struct mat_sink *sink);

void mat_sink_begin_row(struct mat_sink *sink, int64_t event_ts_us, int64_t created_ts_us);
void mat_sink_key_int64(struct mat_sink *sink, uint32_t key_index, int64_t value);
void mat_sink_key_string(struct mat_sink *sink, uint32_t key_index, const char *value,
                         uint32_t len);
void mat_sink_key_null(struct mat_sink *sink, uint32_t key_index);

/* The row under construction: set feature values with store_row_set_*; unset ones are null. */
struct store_row_builder *mat_sink_values(struct mat_sink *sink);

/*
 * Finishes the row: counts it and stores it if it is the entity's newest so far. Returns 0,
 * or -1 when out of memory or the key is too long (`mat_sink_error` says which): the load
 * must then fail.
 */
int mat_sink_end_row(struct mat_sink *sink);

const char *mat_sink_error(const struct mat_sink *sink);
const struct mat_sink_stats *mat_sink_stats(const struct mat_sink *sink);
