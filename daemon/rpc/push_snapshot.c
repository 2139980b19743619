/*
 * PushSnapshot: a client stream of row batches that replaces one view's snapshot, for
 * materialization jobs that compute features elsewhere and push the result (fsd-materialize).
 *
 *   worker:  message 0 ── names the view ──> store_view_load_begin (one load per view; pins
 *            │            the schema, logs live pushes from now on) + an empty staging table
 *            message k ── rows checked like PushRows (all or none) ──> upsert-if-newer into
 *            │            the staging table
 *            half-close ── grpc_call_suspend + mat_request_commit(staging) ──> the loads thread
 *   loads:   mat_commit_snapshot: seal, data contract, swap (the commit every load ends in)
 *            ── grpc_resume_post ──> the worker
 *   worker:  _resume: the response (version, rows) or FAILED_PRECONDITION naming the rule
 *
 *   reset / lost / deadline / bad message before the half-close ──> store_view_load_abort,
 *   staging destroyed; after it, the commit goes on and its answer is dropped
 *
 * Nothing touches the live table until the swap, so a stream that does not end cleanly
 * changes nothing. The staging table is unpublished: no reader sees it and no other writer
 * touches it, so the worker fills it without the view's writer mutex. Work per message is
 * bounded by the message (max_message_bytes): decode, check, upsert. The end of the stream is
 * not (the seal and the contract visit every row): it runs on the loads thread, never on a
 * worker, so the other connections of this worker are not kept waiting.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsd/v1/feature_service.pb-c.h"
#include "daemon/grpc/grpc.h"
#include "common/clock.h"
#include "common/log.h"
#include "materializer/snapshot/snapshot.h"
#include "materializer/stream/stream.h"
#include "row_check.h"
#include "fields.h"
#include "rpc_internal.h"
#include "store/catalog.h"
#include "store/key.h"
#include "store/rcu.h"
#include "store/row.h"
#include "store/schema.h"
#include "store/table.h"

_Static_assert(MAT_STREAM_ID_LEN <= STORE_STREAM_POSITION_LEN, "a stream ID fits the store's");

/* One stream's state, hung off the call (grpc_call_set_user) from its first message. */
struct push_snapshot {
    struct store_view *view;
    const struct store_schema *schema; /* the view's; pinned while the load is open */
    struct store_table *staging;       /* unpublished; ours until handed to the commit */
    struct store_row_builder builder;
    uint64_t messages;
    uint64_t rows_received;
    char stream_position[MAT_STREAM_ID_LEN]; /* the first message's, normalized; "" = none */
    /* From the half-close on: */
    char name[STORE_MAX_NAME + 1]; /* the view's, for the log (the schema may go with reloads) */
    struct grpc_resume *resume;
    int64_t end_us;                  /* when the client half-closed (monotonic), for finish_ms */
    struct mat_commit_result result; /* written by the loads thread before the resume */
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
    if (ps == NULL && req->view[0] != '\0') {
        enum grpc_code allowed =
            rpc_authorize_view(call, RPC_PUSH_SNAPSHOT, req->view, message, sizeof message);
        if (allowed != GRPC_OK) {
            _fail(call, wk, allowed, message);
            return;
        }
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

static void _write_response(struct pbw *w, const struct push_snapshot *ps) {
    const struct mat_commit_result *r = &ps->result;
    pbw_reset(w);
    /* proto3: a zero is an absent field, so zeros are not written */
    if (r->version > 0) {
        pbw_uint_field(w, PUSH_SNAPSHOT_RESPONSE_VERSION, r->version);
    }
    if (ps->rows_received > 0) {
        pbw_uint_field(w, PUSH_SNAPSHOT_RESPONSE_ROWS_RECEIVED, ps->rows_received);
    }
    if (r->table_rows > 0) {
        pbw_uint_field(w, PUSH_SNAPSHOT_RESPONSE_ROWS_KEPT, r->table_rows);
    }
    if (r->updates_replayed > 0) {
        pbw_uint_field(w, PUSH_SNAPSHOT_RESPONSE_UPDATES_REPLAYED, r->updates_replayed);
    }
}

/* Frees what a stream handed over keeps, once its commit ended. */
static void _free_handed_over(struct push_snapshot *ps) {
    store_row_builder_deinit(&ps->builder);
    free(ps);
}

/* On the call's worker once the commit ended; call NULL when the client went away
 * meanwhile (the commit happened or not all the same, and the log says which). */
static void _resume(struct grpc_call *call, void *arg) {
    struct push_snapshot *ps = arg;
    const struct mat_commit_result *r = &ps->result;
    double finish_ms = (double)(clock_mono_us() - ps->end_us) / 1e3;
    if (r->version == 0) {
        log_warn(r->outcome == MAT_REJECTED ? "pushed snapshot rejected"
                                            : "pushed snapshot not swapped in",
                 "view=%s rows=%" PRIu64 " finish_ms=%.1f error=%s", ps->name, r->table_rows,
                 finish_ms, LOG_QUOTE(r->error));
    } else {
        log_info("pushed snapshot swapped in",
                 "view=%s version=%" PRIu64 " rows_received=%" PRIu64 " rows=%" PRIu64
                 " updates_replayed=%" PRIu64 " stream_position=%s stream_s=%.3f finish_ms=%.1f",
                 ps->name, r->version, ps->rows_received, r->table_rows, r->updates_replayed,
                 ps->stream_position[0] != '\0' ? ps->stream_position : "none",
                 call != NULL ? (double)(clock_mono_us() - grpc_call_start_us(call)) / 1e6 : 0.0,
                 finish_ms);
    }
    struct rpc_worker *wk = call != NULL ? grpc_call_worker_context(call) : NULL;
    if (call != NULL && wk != NULL) {
        if (r->version == 0) {
            /* A contract's verdict is the producer's to act on; anything else is ours. */
            grpc_call_failf(call,
                            r->outcome == MAT_REJECTED ? GRPC_FAILED_PRECONDITION
                                                       : GRPC_RESOURCE_EXHAUSTED,
                            "%s; live snapshot unchanged", r->error);
        } else {
            _write_response(&wk->out, ps);
            grpc_call_reply(call, wk->out.buf, wk->out.len);
        }
        rpc_observe_duration(wk, RPC_PUSH_SNAPSHOT, call);
    } else if (call != NULL) {
        grpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "worker has no memory for requests");
    }
    _free_handed_over(ps);
}

/* On the loads thread: the commit ended; back to the worker. */
static void _committed(const struct mat_commit_result *result, void *ctx) {
    struct push_snapshot *ps = ctx;
    ps->result = *result;
    grpc_resume_post(ps->resume);
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
    /* Copied: once the commit ends a reload may replace (and free) the schema. */
    snprintf(ps->name, sizeof ps->name, "%s", ps->schema->view);
    ps->end_us = clock_mono_us();
    ps->resume = grpc_call_suspend(call, _resume, ps);
    if (ps->resume == NULL) {
        _fail(call, wk, GRPC_RESOURCE_EXHAUSTED, "out of memory finishing the stream");
        return;
    }
    /* From here on the load, the staging table and `ps` belong to the commit. */
    grpc_call_set_user(call, NULL);
    arena_reset(&wk->arena);
    char err[256];
    if (mat_request_commit(ps->view, ps->staging, ps->stream_position, _committed, ps, err,
                           sizeof err) != 0) {
        store_view_load_abort(ps->view);
        store_table_destroy(ps->staging);
        ps->result = (struct mat_commit_result){.outcome = MAT_SOURCE_FAILED};
        snprintf(ps->result.error, sizeof ps->result.error, "%s", err);
        grpc_resume_post(ps->resume); /* answers on this worker, after this callback */
    }
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
