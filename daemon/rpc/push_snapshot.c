/*
 * PushSnapshot: a client stream of row batches that replaces one view's snapshot, for
 * materialization jobs that compute features elsewhere and push the result (fsd-materialize).
 *
 *   message 0 ── names the view ──> store_view_load_begin (one load per view; pins the schema,
 *   │                               logs live pushes from now on) + an empty staging table
 *   message k ── rows checked like PushRows (all or none) ──> upsert-if-newer into staging
 *   half-close ──> seal ──> data contract ──ok──> store_view_load_commit: replay the logged
 *   │                           │                 pushes into staging, swap it in (RCU)
 *   │                           └─fail─> FAILED_PRECONDITION, staging destroyed, live unchanged
 *   reset / lost / deadline / bad message ──> store_view_load_abort, staging destroyed
 *
 * Nothing touches the live table until the swap, so a stream that does not end cleanly
 * changes nothing. The staging table is unpublished: no reader sees it and no other writer
 * touches it, so the worker fills it without the view's writer mutex.
 *
 * Work per message is bounded by the message (max_message_bytes): decode, check, upsert.
 * The end of the stream is not: sealing (snapshot means) and the contract's per-feature
 * checks visit every row, and the commit replays the pushes logged meanwhile. The transport
 * finishes a call on its worker, so that pass runs there once per snapshot.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "fsd/v1/feature_service.pb-c.h"
#include "daemon/grpc/grpc.h"
#include "common/log.h"
#include "materializer/snapshot/snapshot_internal.h"
#include "materializer/snapshot/sink.h"
#include "materializer/stream/stream.h"
#include "row_check.h"
#include "rpc_internal.h"
#include "store/catalog.h"
#include "store/key.h"
#include "store/rcu.h"
#include "store/row.h"
#include "store/schema.h"
#include "store/table.h"
#include "common/clock.h"

_Static_assert(MAT_STREAM_ID_LEN <= STORE_STREAM_POSITION_LEN, "a stream ID fits the store's");

/* One stream's state, hung off the call (grpc_call_set_user) from its first message. */
struct push_snapshot {
    struct store_view *view;
    const struct store_schema *schema; /* the view's; pinned while the load is open */
    struct store_table *staging;       /* unpublished; ours until committed */
    struct store_row_builder builder;
    uint64_t messages;
    uint64_t rows_received;
    char stream_position[MAT_STREAM_ID_LEN]; /* the first message's, normalized; "" = none */
};

/* Ends the load without swapping and frees the state. Must not follow a commit. */
static void _discard(struct push_snapshot *ps) {
    if (ps == NULL) {
        return;
    }
    store_view_load_abort(ps->view);
    store_table_destroy(ps->staging);
    store_row_builder_deinit(&ps->builder);
    free(ps);
}

/* Fails the call, lets go of its state and counts its duration. */
static void _fail(struct grpc_call *call, struct rpc_worker *wk, enum grpc_code code,
                  const char *message) {
    _discard(grpc_call_user(call));
    grpc_call_set_user(call, NULL);
    grpc_call_fail(call, code, message);
    if (wk != NULL) {
        rpc_observe_duration(wk, RPC_PUSH_SNAPSHOT, call);
        arena_reset(&wk->arena);
    }
}

/* The first message: claims the view's load and creates the staging table. */
static struct push_snapshot *_begin(const char *view_name, struct rpc_row_error *e) {
    if (view_name[0] == '\0') {
        rpc_row_reject(e, GRPC_INVALID_ARGUMENT, "message 0: the first message must name the view");
        return NULL;
    }
    store_read_lock();
    struct store_view *view = store_catalog_find(rpc_state.catalog, view_name);
    if (view == NULL) {
        store_read_unlock();
        rpc_row_reject(e, GRPC_INVALID_ARGUMENT, "unknown view \"%s\"", view_name);
        return NULL;
    }
    if (store_view_load_begin(view) != 0) {
        store_read_unlock();
        rpc_row_reject(e, GRPC_FAILED_PRECONDITION,
                       "a load of view %s is in progress (a PushSnapshot or a source load); "
                       "retry when it has finished",
                       view_name);
        return NULL;
    }
    /* The open load keeps the schema from being replaced, so it outlives the read section. */
    const struct store_schema *schema = store_view_schema(view);
    store_read_unlock();

    struct push_snapshot *ps = calloc(1, sizeof(*ps));
    char err[256];
    struct store_table_options options = {.shards = store_catalog_shards(rpc_state.catalog)};
    if (ps == NULL || store_row_builder_init(&ps->builder, schema) != 0) {
        free(ps);
        store_view_load_abort(view);
        rpc_row_reject(e, GRPC_RESOURCE_EXHAUSTED, "view %s: out of memory", view_name);
        return NULL;
    }
    ps->view = view;
    ps->schema = schema;
    ps->staging = store_table_create(schema, &options, err, sizeof err);
    if (ps->staging == NULL) {
        rpc_row_reject(e, GRPC_RESOURCE_EXHAUSTED, "view %s: staging table: %s", view_name, err);
        _discard(ps);
        return NULL;
    }
    return ps;
}

/* Checks every row of the message, then upserts them all into the staging table. */
static int _apply(struct push_snapshot *ps, struct arena *a,
                  const Fsd__V1__PushSnapshotRequest *req, struct rpc_row_error *e) {
    struct store_key *keys = arena_alloc(a, (req->n_rows + 1) * sizeof(*keys));
    if (keys == NULL) {
        return rpc_row_reject(e, GRPC_RESOURCE_EXHAUSTED, "out of memory for %zu rows",
                              req->n_rows);
    }
    int64_t now_us = clock_wall_us();
    for (size_t r = 0; r < req->n_rows; r++) {
        if (rpc_row_check(ps->schema, req->rows[r], r, a, now_us, &keys[r], e) != 0) {
            return -1;
        }
    }
    for (size_t r = 0; r < req->n_rows; r++) {
        const Fsd__V1__Row *row = req->rows[r];
        enum store_upsert_result result;
        if (row->delete_) {
            result = store_table_delete(ps->staging, &keys[r], row->event_timestamp_us,
                                        row->created_timestamp_us);
        } else if (rpc_row_build(&ps->builder, a, row) != 0) {
            result = STORE_UPSERT_ERROR;
        } else {
            result = store_table_upsert(ps->staging, &keys[r], &ps->builder);
        }
        if (result == STORE_UPSERT_ERROR) {
            return rpc_row_reject(e, GRPC_RESOURCE_EXHAUSTED,
                                  "row %zu: could not be stored (out of memory)", r);
        }
    }
    return 0;
}

void rpc_push_snapshot_message(struct grpc_call *call, const uint8_t *msg, size_t len) {
    struct rpc_worker *wk = grpc_call_worker_context(call);
    if (wk == NULL) {
        _fail(call, NULL, GRPC_RESOURCE_EXHAUSTED, "worker has no memory for requests");
        return;
    }
    struct push_snapshot *ps = grpc_call_user(call);
    uint64_t index = ps != NULL ? ps->messages : 0;
    struct rpc_row_error e = {GRPC_OK, ""};
    char message[sizeof e.message + 64];
    Fsd__V1__PushSnapshotRequest *req =
        fsd__v1__push_snapshot_request__unpack(&wk->arena.protobuf, len, msg);
    if (req == NULL) {
        snprintf(message, sizeof message,
                 "message %" PRIu64 ": malformed PushSnapshotRequest: not a valid protobuf message",
                 index);
        _fail(call, wk, GRPC_INVALID_ARGUMENT, message);
        return;
    }
    char position[MAT_STREAM_ID_LEN] = "";
    if (req->stream_position[0] != '\0' &&
        !mat_stream_position_normalize(req->stream_position, position)) {
        snprintf(message, sizeof message,
                 "message %" PRIu64 ": stream_position \"%.80s\" is not a stream entry ID "
                 "(<ms>-<seq> or <ms>)",
                 index, req->stream_position);
        _fail(call, wk, GRPC_INVALID_ARGUMENT, message);
        return;
    }
    if (ps == NULL) {
        ps = _begin(req->view, &e);
        if (ps == NULL) {
            _fail(call, wk, e.code, e.message);
            return;
        }
        memcpy(ps->stream_position, position, sizeof position);
        grpc_call_set_user(call, ps);
    } else if (req->stream_position[0] != '\0' && strcmp(position, ps->stream_position) != 0) {
        snprintf(message, sizeof message,
                 "message %" PRIu64 ": stream_position %s differs from the first message's "
                 "(%s); later messages may omit it or repeat it",
                 index, position, ps->stream_position[0] != '\0' ? ps->stream_position : "none");
        _fail(call, wk, GRPC_INVALID_ARGUMENT, message);
        return;
    } else if (req->view[0] != '\0' && strcmp(req->view, ps->schema->view) != 0) {
        snprintf(message, sizeof message,
                 "message %" PRIu64 ": names view \"%s\" but the stream loads view %s; every "
                 "message is for the view of the first",
                 index, req->view, ps->schema->view);
        _fail(call, wk, GRPC_INVALID_ARGUMENT, message);
        return;
    }
    if (_apply(ps, &wk->arena, req, &e) != 0) {
        /* Nothing of the stream is kept, so the producer resends it whole: say where. */
        snprintf(message, sizeof message, "message %" PRIu64 ", %s; view %s unchanged", index,
                 e.message, ps->schema->view);
        _fail(call, wk, e.code, message);
        return;
    }
    ps->messages++;
    ps->rows_received += req->n_rows;
    arena_reset(&wk->arena);
}

static void _write_response(struct pbw *w, const uint64_t fields[4]) {
    pbw_reset(w);
    for (uint32_t field = 1; field <= 4; field++) {
        if (fields[field - 1] > 0) {
            pbw_uint_field(w, field, fields[field - 1]);
        }
    }
}

void rpc_push_snapshot_end(struct grpc_call *call) {
    struct rpc_worker *wk = grpc_call_worker_context(call);
    struct push_snapshot *ps = grpc_call_user(call);
    if (wk == NULL) {
        _fail(call, NULL, GRPC_RESOURCE_EXHAUSTED, "worker has no memory for requests");
        return;
    }
    if (ps == NULL) {
        _fail(call, wk, GRPC_INVALID_ARGUMENT,
              "PushSnapshot needs at least one message, the first naming the view");
        return;
    }
    int64_t finish_start_us = clock_mono_us(); /* the pass over the snapshot, for the log */
    /* Copied: once the load is committed a reload may replace (and free) the schema. */
    char name[CONFIG_MAX_NAME + 1];
    snprintf(name, sizeof name, "%s", ps->schema->view);
    store_table_seal(ps->staging);
    struct store_table_stats staged;
    store_table_stats(ps->staging, &staged);

    /* The contract as configured now (a reload may have changed it), copied out of the read
     * section: the check may visit every row, and a long read section would stall reloads. */
    struct mat_contract contract;
    bool have_contract = false;
    struct store_table_stats live;
    store_read_lock();
    const struct fsd_config *config = atomic_load_explicit(&rpc_state.config, memory_order_acquire);
    const struct config_view *cv = config != NULL ? config_find_view(config, name) : NULL;
    if (cv != NULL) {
        contract = cv->snapshot.contract;
        have_contract = true;
    }
    store_table_stats(store_view_table(ps->view), &live);
    bool have_live = store_view_version(ps->view) > 0;
    store_read_unlock();
    /* The drop rule counts the live rows the swap will keep: one pass over the live table, in
     * a read section of its own (the load pins the table; see store_view_load_commit). */
    uint64_t swap_rows = staged.rows;
    if (have_contract && mat_contract_checks_drop(&contract, have_live)) {
        store_read_lock();
        swap_rows = store_table_rows_after_merge_live(ps->staging, store_view_table(ps->view));
        store_read_unlock();
    }

    /* Rows were checked on arrival: no null keys, nothing for the source-side counters. */
    struct mat_sink_stats stats = {
        .rows_read = ps->rows_received,
        .rows_kept = staged.rows,
        .max_event_ts_us = INT64_MIN,
    };
    char err[1024];
    if (mat_contract_check(have_contract ? &contract : NULL, &stats, ps->staging, live.rows,
                           swap_rows, have_live, err, sizeof err) != 0) {
        log_warn("pushed snapshot rejected", "view=%s rows=%" PRIu64 " error=%s", name, staged.rows,
                 LOG_QUOTE(err));
        char message[sizeof err + 32];
        snprintf(message, sizeof message, "%s; live snapshot unchanged", err);
        _fail(call, wk, GRPC_FAILED_PRECONDITION, message);
        return;
    }

    /* Pushes between this count and the commit are replayed too; the figure is a floor. */
    uint64_t replayed = store_view_load_logged(ps->view);
    /* Fits: normalized to at most MAT_STREAM_ID_LEN (== STORE_STREAM_POSITION_LEN) bytes. */
    (void)store_view_load_set_stream_position(ps->view, ps->stream_position);
    uint64_t version = store_view_load_commit(ps->view, ps->staging, clock_wall_us());
    uint64_t received = ps->rows_received;
    char position_copy[MAT_STREAM_ID_LEN];
    memcpy(position_copy, ps->stream_position, sizeof position_copy);
    /* The commit ended the load either way: free the state without aborting it. */
    if (version == 0) {
        store_table_destroy(ps->staging);
    }
    store_row_builder_deinit(&ps->builder);
    free(ps);
    grpc_call_set_user(call, NULL);
    if (version == 0) {
        grpc_call_failf(call, GRPC_RESOURCE_EXHAUSTED,
                        "view %s: live updates (pushes, stream entries) could not all be carried "
                        "into the pushed snapshot (out of memory); live snapshot unchanged",
                        name);
    } else {
        log_info("pushed snapshot swapped in",
                 "view=%s version=%" PRIu64 " rows_received=%" PRIu64 " rows=%" PRIu64
                 " updates_replayed=%" PRIu64 " stream_position=%s stream_s=%.3f finish_ms=%.1f",
                 name, version, received, staged.rows, replayed,
                 position_copy[0] != '\0' ? position_copy : "none",
                 (double)(clock_mono_us() - grpc_call_start_us(call)) / 1e6,
                 (double)(clock_mono_us() - finish_start_us) / 1e3);
        uint64_t fields[4] = {version, received, staged.rows, replayed};
        _write_response(&wk->out, fields);
        grpc_call_reply(call, wk->out.buf, wk->out.len);
    }
    rpc_observe_duration(wk, RPC_PUSH_SNAPSHOT, call);
    arena_reset(&wk->arena);
}

void rpc_push_snapshot_abort(struct grpc_call *call) {
    struct push_snapshot *ps = grpc_call_user(call);
    if (ps != NULL) {
        log_info("pushed snapshot abandoned", "view=%s messages=%" PRIu64 " rows=%" PRIu64,
                 ps->schema->view, ps->messages, ps->rows_received);
    }
    _discard(ps);
    grpc_call_set_user(call, NULL);
    /* The arena is left alone: the transport may abort a call between another's steps. */
    struct rpc_worker *wk = grpc_call_worker_context(call);
    if (wk != NULL) {
        rpc_observe_duration(wk, RPC_PUSH_SNAPSHOT, call);
    }
}
