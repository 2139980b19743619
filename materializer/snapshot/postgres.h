#pragma once
/*
 * The PostgreSQL source: reads one view's snapshot from a table or a query with libpq and
 * streams its rows into a row sink (sink.h).
 *
 *   connect ─> BEGIN READ ONLY ─> probe: SELECT * FROM <src> LIMIT 0   (column names and types)
 *          ─> check every needed column maps to the view's type        (errors before any row)
 *          ─> COPY (SELECT <needed columns> FROM <src> [WHERE ts > wm]) TO STDOUT (FORMAT binary)
 *          ─> PQgetCopyData, one message at a time ─> decode ─> sink, row by row
 *
 * Only the needed columns cross the wire, in binary, and never more than one COPY message
 * (plus a partial tuple) is held in memory. The probe and the COPY run in one read-only
 * transaction, so the types checked are the types read: the probe's lock on every relation
 * it touches keeps their columns from changing in between.
 *
 * Type mapping (result column type -> view type); anything else is an error before any row:
 *
 *   view type     PostgreSQL types
 *   int32         smallint, integer, bigint (range-checked per value)
 *   int64         smallint, integer, bigint
 *   float         real (bit for bit), smallint, numeric (nearest float)
 *   double        double precision (bit for bit), real, smallint, integer, numeric (nearest
 *                 double: the decimal digits are rounded once, correctly, by strtod)
 *   bool          boolean
 *   string        text, varchar, char(n) (padding kept, as the server sends it), name, enums
 *   bytes         bytea
 *   timestamp     timestamptz; timestamp without time zone, taken as UTC; date, as midnight
 *                 UTC. 'infinity' and '-infinity' become INT64_MAX and INT64_MIN.
 *   float_list    real[]; double precision[] (each element rounded to the nearest float: the
 *                 store keeps 32-bit lists). One dimension; a NULL element is an error.
 *   int64_list    smallint[], integer[], bigint[]      (same rules)
 *   string_list   text[], varchar[], char(n)[], name[] (same rules)
 *   int64 key     smallint, integer, bigint
 *   string key    text, varchar, char(n), name, enums
 *   event/created timestamptz, timestamp (UTC), date (midnight UTC)
 *
 * A NULL feature is a null value; a NULL key goes to the sink as a null key (counted, not
 * stored). A NULL event time fails the load (the row cannot be ordered); a NULL or absent
 * created time sorts before every created time (INT64_MIN). Conversions that would lose
 * bits (double precision -> float, bigint -> double, text -> double) are refused: cast in
 * the query when that is what you want.
 *
 * Connection: the view's dsn (a libpq key=value string or a postgresql:// URI), or the PG*
 * environment variables when it is NULL. client_encoding is always UTF8. The dsn never
 * appears in messages, and a password is scrubbed from any libpq text.
 *
 * Bounded (source->timeouts; unset ones take mat_default_timeouts(), 0 means none). Every
 * wait, connecting included, is a poll() on the socket (libpq in non-blocking mode), so:
 *
 *   connect_us    connecting (TCP, TLS, start-up, authentication) as a whole; a listener that
 *                 accepts and never answers fails here. The dsn's connect_timeout wins.
 *   read_us       the longest wait for the server's next bytes: a frozen server (SIGSTOP, a
 *                 wedged backend) still acknowledges TCP, so only this notices it.
 *   load_us       the whole read, from connect to COMMIT.
 *   statement_us  sent as the session's statement_timeout (0: load_us), so that the server
 *                 also cancels a query that runs too long; an `options` keyword in the dsn, or
 *                 PGOPTIONS, replaces it.
 *   tcp_user_us   tcp_user_timeout, with TCP keepalives (30 s idle, 10 s interval, 6 probes):
 *                 the kernel closes a connection to a server or network that vanished. The
 *                 same keywords in the dsn win.
 *
 * A read that ran out of time, or that mat_stopping() ended (checked every 100 ms), closes
 * the connection (the server's backend notices at its next write, or at its statement
 * timeout) and fails with the bound's name in the message.
 */
#include <stddef.h>
#include <stdint.h>

/* Defaults, each overridden by the same keyword in the dsn. */
#define MAT_PG_KEEPALIVES_IDLE_S     30    /* keepalives_idle */
#define MAT_PG_KEEPALIVES_INTERVAL_S 10    /* keepalives_interval */
#define MAT_PG_KEEPALIVES_COUNT      6     /* keepalives_count */
#define MAT_PG_APPLICATION_NAME      "fsd" /* application_name, when PGAPPNAME is unset */

struct mat_source;
struct store_schema;
struct mat_sink;

/*
 * Reads the view `schema` from `source` (type postgres: exactly one of table and query, and
 * an event_timestamp_column) into `sink`, one row at a time, in result order.
 *
 * `source->table` is a table, view or materialized view name as SQL would read it
 * (`features`, `analytics.user_features`, `"Mixed Case"`): the server resolves it, so case
 * folding and quoting follow SQL. `source->query` is one SELECT (or VALUES, TABLE, WITH ...)
 * and runs as a subquery: trailing ';' and whitespace are dropped, a trailing -- comment is
 * fine, but nothing may follow the final ';'. Server error positions count from the wrapper.
 *
 * `watermark_us`: INT64_MIN reads every row; otherwise only rows whose event time is after it
 * (microseconds since the Unix epoch), filtered by the server (an incremental load).
 *
 * `expected_rows_out` (may be NULL) receives the planner's row estimate before the first row
 * is read, 0 when unknown; it is only a hint (sizing, progress).
 *
 * Returns 0 when every row reached the sink, or -1 with a message in `err` (at most `err_len`
 * bytes, always terminated) that names the view and, for a bad value, the column and the row.
 * After -1 the sink holds part of the snapshot and must be discarded. Blocks on the network
 * for as long as the COPY runs, within the bounds above; allocates per connection, not per
 * row (libpq's per-message buffer aside). Thread-safe for different sinks.
 */
int mat_pg_read(const struct mat_source *source, const struct store_schema *schema,
                struct mat_sink *sink, int64_t watermark_us, uint64_t *expected_rows_out, char *err,
                size_t err_len);
