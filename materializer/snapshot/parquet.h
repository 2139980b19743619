#pragma once
/*
 * The Parquet source: reads one view's snapshot from a Parquet file, a glob or a directory
 * (recursively, hive-partitioned folders `k=v/` included) through DuckDB's C API and streams
 * its rows into a row sink (sink.h).
 *
 *   open:  path ─> files (glob) ─> SELECT * ... LIMIT 0 (names and types, footers only)
 *          ─> every needed column found and mappable to the view's type   (errors before any row)
 *   read:  SELECT <keys>, <event ts>, [<created ts>], <features>, filename, file_row_number
 *            FROM read_parquet(<files>, hive_partitioning = <any k=v folder>, union_by_name = true)
 *            [WHERE <event ts> > <watermark>]
 *          ─> one data chunk (2048 rows) at a time ─> decode ─> sink, row by row
 *
 * Only the needed columns are read, and only one chunk of the result is held at a time.
 * A directory reads every `*.parquet` below it; a glob is DuckDB's (`*`, `?`, `[...]`, `**`).
 * DuckDB reads several files as the union of their columns, so open also checks each file
 * alone: a file that lacks a needed column (other than a hive key its path gives) or has one
 * with a type that does not map fails the open, naming the file and the column, instead of
 * reading as nulls or casts.
 *
 * Bounded: from open to close a watchdog thread interrupts DuckDB (duckdb_interrupt) once
 * `timeout_us` has passed or the materializer stops (mat_stopping), and the read fails with
 * the reason. DuckDB checks for an interrupt between its tasks; a read stuck in the kernel
 * (a hung network filesystem) ends only when the kernel call returns.
 *
 * Type mapping (DuckDB type of the column -> view type); anything else is an error that names
 * the column, its type, the path and the view's type, before any row is read:
 *
 *   view type     Parquet column, as DuckDB reads it
 *   int32         TINYINT, SMALLINT, INTEGER, UTINYINT, USMALLINT; BIGINT, UINTEGER, UBIGINT
 *                 (range-checked per value: an error names the column, the file and the row)
 *   int64         every integer type; UBIGINT range-checked per value
 *   float         FLOAT (bit for bit); TINYINT, SMALLINT, UTINYINT, USMALLINT (exact);
 *                 DECIMAL (the decimal value rounded once, correctly, to the nearest float)
 *   double        DOUBLE (bit for bit), FLOAT (exact), TINYINT .. INTEGER and unsigned up to
 *                 UINTEGER (exact); DECIMAL(w, s): the integer v / 10^s rounded once,
 *                 correctly, to the nearest double (one IEEE division when v and 10^s are
 *                 both exact doubles, else strtod on the decimal digits)
 *   bool          BOOLEAN
 *   string        VARCHAR (bytes as stored), BLOB
 *   bytes         BLOB, VARCHAR
 *   timestamp     TIMESTAMP (µs), TIMESTAMP_S, TIMESTAMP_MS (exact), TIMESTAMP_NS (rounded
 *                 down to the µs: the store keeps µs), TIMESTAMP WITH TIME ZONE (UTC
 *                 instants; no zone shift), DATE (midnight UTC). Parquet ms and µs
 *                 timestamps, with or without isAdjustedToUTC, and INT96 arrive as µs.
 *   float_list    FLOAT[] (bit for bit); DOUBLE[] (each element rounded to the nearest float:
 *                 the store keeps 32-bit lists; a finite double beyond float range is an error)
 *   int64_list    lists of any integer type (UBIGINT elements range-checked)
 *   string_list   VARCHAR[]
 *   int64 key     any integer type (UBIGINT range-checked)
 *   string key    VARCHAR
 *   event/created the timestamp types above
 *
 * A NULL feature is a null value; a NULL key goes to the sink as a null key (counted, not
 * stored); a NULL list element is an error (no list type of the store can hold it). A NULL
 * event time fails the load (the row cannot be ordered); a NULL or absent created time sorts
 * before every created time (INT64_MIN).
 *
 * Config values (paths, column names) reach SQL only as quoted literals and identifiers.
 */
#include <stddef.h>
#include <stdint.h>

struct store_schema;
struct mat_sink;
struct mat_parquet;

struct mat_parquet_options {
    const char *path;                     /* a file, a glob or a directory */
    const char *event_timestamp_column;   /* required */
    const char *created_timestamp_column; /* NULL: none */
    int64_t watermark_us;                 /* only rows with event time after it; INT64_MIN: all */
    uint32_t threads;                     /* DuckDB worker threads; 0: one per core */
    int64_t timeout_us; /* from open to close, at most this long (DuckDB interrupted); 0: none */
};

/*
 * Finds the files, reads their footers and checks that every column the view needs is there,
 * in every file, with a type that maps to the view's (see above). Returns 0 and an open
 * source in *out, or -1 with a message naming the view and the path (and the file when one
 * file is to blame) in `err` (missing path, no files, a missing column, a column that cannot
 * map, a corrupt footer, the timeout). `schema` must outlive the source. Blocks on file I/O;
 * starts the watchdog thread, which close stops.
 */
int mat_parquet_open(const struct store_schema *schema, const struct mat_parquet_options *options,
                     struct mat_parquet **out, char *err, size_t err_len);

/* Rows in the files according to their footers (before any watermark): a sizing hint. */
uint64_t mat_parquet_expected_rows(const struct mat_parquet *source);

/*
 * Streams every row (after the watermark) into `sink`, in file order. Returns 0 when every row
 * reached the sink, or -1 with a message in `err` that names the view and the path and, for a
 * bad value, the column, the file and the row; after -1 the sink holds part of the snapshot
 * and must be discarded. Call once per open. Blocks for the whole read.
 */
int mat_parquet_read(struct mat_parquet *source, struct mat_sink *sink, char *err, size_t err_len);

void mat_parquet_close(struct mat_parquet *source);
