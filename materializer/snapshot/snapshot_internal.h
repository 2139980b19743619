#pragma once
/*
 * Shared by the materializer's files (loader.c, contract.c, scheduler.c); not for other
 * modules. Tests may use it.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snapshot.h"

struct mat_view_status;
struct metric_writer;
struct mat_sink_stats;
struct store_table;

/*
 * The data contract on a sealed, unpublished snapshot `table` built by a sink with `stats`.
 * `live_rows` is the live table's row count, `have_live` whether a snapshot was ever loaded
 * (the drop rule needs something to compare with). The drop rule judges what the swap leaves
 * the view serving: `swap_rows`, the snapshot's rows plus the live rows (pushes, streams) the
 * swap keeps (store_table_rows_after_merge_live); callers need it only when
 * mat_contract_checks_drop() says so. Every other rule judges the snapshot alone. Returns 0
 * when every rule holds, or -1 with the first broken rule in `err` (it names the rule, the
 * figures and, for a range, an offending value). Reads every row only when a feature has
 * checks. Control thread.
 */
int mat_contract_check(const struct mat_contract *contract, const struct mat_sink_stats *stats,
                       const struct store_table *table, uint64_t live_rows, uint64_t swap_rows,
                       bool have_live, char *err, size_t err_len);

/* Whether mat_contract_check() applies the drop rule (and so reads `swap_rows`). */
bool mat_contract_checks_drop(const struct mat_contract *contract, bool have_live);

/* Every view's status, copied (malloc'd; the caller frees it), in scheduler order; NULL and 0
 * when out of memory. Takes the scheduler's mutex. */
struct mat_view_status *mat_view_statuses(size_t *count);

/* The materializer's metrics collector (metrics.c), registered by mat_setup(). */
void mat_collect_metrics(struct metric_writer *w, void *ctx);

/* The catalog the scheduler loads into; NULL when it does not run. */
struct store_catalog *mat_catalog(void);

/* Whether mat_teardown() has begun: the sources give up their reads (a watchdog interrupts
 * DuckDB, the PostgreSQL reader stops waiting). Any thread; an atomic load. */
bool mat_stopping(void);
