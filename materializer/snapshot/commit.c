/*
 * The commit: the one sequence by which a new snapshot replaces a view's (snapshot.h), for
 * snapshots loaded from a source and snapshots pushed with PushSnapshot alike.
 *
 *   table (built off to the side, the view's load held)
 *     ── seal: the snapshot's means for `default: mean`
 *     ── contract: null keys, min_rows, the drop rule (a preview of what the swap keeps of the
 *        live rows), per-feature null rates and ranges          ──fail──> abort, destroy
 *     ── the snapshot's stream position recorded
 *     ── store_view_load_commit: live rows and tombstones newer than the snapshot's carried
 *        over, the updates logged during the build replayed, the table swapped in (RCU)
 *
 * Either way the view's load has ended when it returns.
 */
#include <stdio.h>
#include <string.h>

#include "sink.h"
#include "snapshot.h"
#include "snapshot_internal.h"
#include "store/catalog.h"
#include "store/rcu.h"
#include "store/table.h"

int mat_commit_snapshot(struct store_view *view, struct store_table *table,
                        const struct mat_contract *contract, uint64_t null_keys,
                        const char *stream_position, int64_t loaded_at_us,
                        struct mat_commit_result *out) {
    memset(out, 0, sizeof(*out));
    out->outcome = MAT_SOURCE_FAILED;
    store_table_seal(table);
    struct store_table_stats fresh, live;
    store_table_stats(table, &fresh);
    out->table_rows = fresh.rows;

    /* The drop rule judges what the swap leaves the view serving: the snapshot's rows plus the
     * live rows (pushes, streams) it keeps. One pass over the live table, which the held load
     * keeps from being replaced. */
    bool have_live = store_view_version(view) > 0;
    uint64_t swap_rows = fresh.rows;
    store_read_lock();
    store_table_stats(store_view_table(view), &live);
    if (mat_contract_checks_drop(contract, have_live)) {
        swap_rows = store_table_rows_after_merge_live(table, store_view_table(view));
    }
    store_read_unlock();

    struct mat_sink_stats stats = {.null_keys = null_keys};
    if (mat_contract_check(contract, &stats, table, live.rows, swap_rows, have_live, out->error,
                           sizeof out->error) != 0) {
        out->outcome = MAT_REJECTED;
        goto fail;
    }
    if (store_view_load_set_stream_position(view, stream_position) != 0) {
        snprintf(out->error, sizeof out->error, "view %s: stream position longer than %d bytes",
                 store_view_name(view), STORE_STREAM_POSITION_LEN - 1);
        goto fail;
    }
    /* Updates logged between this count and the commit are replayed too: a floor. */
    out->updates_replayed = store_view_load_logged(view);
    out->version = store_view_load_commit(view, table, loaded_at_us);
    if (out->version == 0) {
        snprintf(out->error, sizeof out->error,
                 "view %s: live updates (pushes, stream entries) could not all be carried into "
                 "the new snapshot (out of memory); snapshot not swapped",
                 store_view_name(view));
        store_table_destroy(table); /* the failed commit ended the load */
        return -1;
    }
    out->outcome = MAT_LOADED;
    return 0;

fail:
    store_view_load_abort(view);
    store_table_destroy(table);
    return -1;
}
