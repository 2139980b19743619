/*
 * PushRows: upsert-if-newer a batch of rows into a view's live table.
 *
 * All or nothing on validation: every row is checked against the view's schema first, and one
 * bad row rejects the batch with a message naming the row and the field, so a producer never
 * has to work out which half of its batch landed. Valid batches are applied row by row through
 * store_view_upsert (so a snapshot load in progress keeps them); each row is visible to
 * lookups before the reply is sent. The row checks are shared with PushSnapshot (row_check.c).
 *
 * With a log (store.data_dir, durability/wal.h) a valid batch is not applied by the worker:
 *
 *   worker:      checked ─▶ row images ─▶ wal_append ─▶ call suspended
 *   log writer:  written, fsynced ─▶ _on_durable: applied in log order ─▶ resume posted
 *   worker:      _on_resume: the counts, or UNAVAILABLE when the log could not take it
 *
 * so a row is served only once it would survive a crash, and a batch the disk refused is not
 * applied at all.
 */
#include "fsd/v1/feature_service.pb-c.h"
#include "daemon/grpc/grpc.h"
#include "row_check.h"
#include "fields.h"
#include "rpc_internal.h"
#include "store/catalog.h"
#include "store/key.h"
#include "store/rcu.h"
#include "store/row.h"
#include "store/table.h"
#include "common/clock.h"
#include "durability/wal.h"

#include <stdio.h>
#include <stdlib.h>

/* counts[] in the order of the response's fields: inserted, replaced, not newer, deleted. */
static void _write_response(struct pbw *w, const uint64_t counts[4]) {
    static const uint32_t fields[4] = {PUSH_ROWS_RESPONSE_INSERTED, PUSH_ROWS_RESPONSE_REPLACED,
                                       PUSH_ROWS_RESPONSE_NOT_NEWER, PUSH_ROWS_RESPONSE_DELETED};
    pbw_reset(w);
    for (size_t i = 0; i < 4; i++) {
        if (counts[i] > 0) { /* proto3: a zero is an absent field */
            pbw_uint_field(w, fields[i], counts[i]);
        }
    }
}

/* counts[] for one row's result. */
static void _count(uint64_t counts[4], enum store_upsert_result result, bool deleted) {
    if (result == STORE_UPSERT_NOT_NEWER) {
        counts[2]++;
    } else if (deleted) {
        counts[3]++;
    } else {
        counts[result == STORE_UPSERT_INSERTED ? 0 : 1]++;
    }
}

/* A batch on its way through the log: what its call is resumed with. */
struct push_wait {
    struct grpc_resume *resume;
    struct store_view *view;
    struct rpc_push_reply reply;
    uint64_t counts[4];
    enum grpc_code code;
    char message[300];
};

/* On the log writer, in log order, inside a read section: apply the batch, or not at all. */
static void _on_durable(struct wal_batch *batch, const char *error, void *arg) {
    struct push_wait *w = arg;
    if (error != NULL) {
        w->code = GRPC_UNAVAILABLE;
        snprintf(w->message, sizeof w->message,
                 "the rows could not be made durable, none was applied: %s", error);
    }
    for (size_t r = 0; error == NULL && r < wal_batch_rows(batch); r++) {
        const struct store_row *row = wal_batch_row(batch, r);
        enum store_upsert_result result = store_view_upsert_image(w->view, row);
        if (result == STORE_UPSERT_ERROR) {
            w->code = GRPC_RESOURCE_EXHAUSTED;
            snprintf(w->message, sizeof w->message,
                     "row %zu: could not be stored (out of memory); rows before it were applied",
                     r);
            break;
        }
        _count(w->counts, result, row->flags & STORE_ROW_TOMBSTONE);
    }
    grpc_resume_post(w->resume);
}

/* On the call's worker (call NULL: it ended meanwhile; the reply's owner still lets go). */
static void _on_resume(struct grpc_call *call, void *arg) {
    struct push_wait *w = arg;
    struct rpc_worker *wk = call != NULL ? grpc_call_worker_context(call) : NULL;
    if (w->code == GRPC_OK) {
        w->reply.done(call, wk, w->counts, w->reply.arg);
    } else {
        w->reply.fail(call, w->code, w->message, w->reply.arg);
    }
    if (wk != NULL) {
        arena_reset(&wk->arena); /* what a reply that pushes on (Feast's /push) built */
    }
    free(w);
}

/*
 * Hands the checked rows to the log as one batch and suspends the call. Returns 0, or -1 with
 * `e` set when nothing was handed over (the call is then failed by the caller).
 */
static int _log_rows(struct grpc_call *call, struct store_view *view,
                     const Fsd__V1__PushRowsRequest *req, const struct store_key *keys,
                     struct store_row_builder *b, struct arena *a,
                     const struct rpc_push_reply *reply, struct rpc_row_error *e) {
    const struct store_schema *schema = store_view_schema(view);
    struct wal_batch *batch =
        wal_batch_create(store_view_name(view), store_schema_layout_fingerprint(schema));
    struct push_wait *w = calloc(1, sizeof(*w));
    if (batch == NULL || w == NULL) {
        wal_batch_destroy(batch);
        free(w);
        rpc_row_reject(e, GRPC_RESOURCE_EXHAUSTED, "out of memory for the log");
        return -1;
    }
    for (size_t r = 0; r < req->n_rows; r++) {
        const Fsd__V1__Row *row = req->rows[r];
        /* Each row is written straight into the batch: the log's bytes are the store's. */
        const struct store_row_builder *built = NULL;
        if (!row->delete_) {
            built = rpc_row_build(b, a, row) == 0 ? b : NULL;
        }
        int64_t event_ts_us = built ? built->event_ts_us : row->event_timestamp_us;
        int64_t created_ts_us = built ? built->created_ts_us : row->created_timestamp_us;
        struct store_row *dst =
            row->delete_ || built != NULL
                ? wal_batch_add_space(batch, store_row_image_size(&keys[r], built, created_ts_us))
                : NULL;
        if (dst == NULL) {
            wal_batch_destroy(batch);
            free(w);
            rpc_row_reject(e, GRPC_RESOURCE_EXHAUSTED, "row %zu: out of memory", r);
            return -1;
        }
        store_row_image_write(dst, &keys[r], built, event_ts_us, created_ts_us);
        dst->flags |= STORE_ROW_LIVE;
    }
    w->view = view;
    w->reply = *reply;
    w->resume = grpc_call_suspend(call, _on_resume, w);
    if (w->resume == NULL) {
        wal_batch_destroy(batch);
        free(w);
        rpc_row_reject(e, GRPC_RESOURCE_EXHAUSTED, "out of memory suspending the call");
        return -1;
    }
    wal_append(batch, _on_durable, w); /* on failure `done` has run: the resume is posted */
    return 0;
}

void rpc_push_apply(struct grpc_call *call, struct rpc_worker *wk,
                    const Fsd__V1__PushRowsRequest *req, enum rpc_method_id method,
                    const struct rpc_push_reply *reply) {
    struct arena *a = &wk->arena;
    struct rpc_row_error e = {GRPC_OK, ""};
    uint64_t counts[4] = {0}; /* inserted, replaced, not_newer, deleted */
    /* Before the view is looked up: a token limited to other views learns nothing of it. */
    enum grpc_code allowed =
        rpc_authorize_view(call, method, req->view, e.message, sizeof e.message);
    if (allowed != GRPC_OK) {
        reply->fail(call, allowed, e.message, reply->arg);
        return;
    }
    int64_t now_us = grpc_call_clock(call)->wall_us;
    store_read_lock();
    struct store_view *view = store_catalog_find(rpc_state.catalog, req->view);
    struct store_key *keys = arena_alloc(a, (req->n_rows + 1) * sizeof(*keys));
    struct store_row_builder b;
    bool have_builder = false;
    if (view == NULL) {
        rpc_row_reject(&e, GRPC_INVALID_ARGUMENT, "unknown view \"%s\"", req->view);
    } else if (keys == NULL) {
        rpc_row_reject(&e, GRPC_RESOURCE_EXHAUSTED, "out of memory for %zu rows", req->n_rows);
    } else {
        const struct store_schema *schema = store_view_schema(view);
        for (size_t r = 0; r < req->n_rows && e.code == GRPC_OK; r++) {
            rpc_row_check(schema, req->rows[r], r, a, now_us, &keys[r], &e);
        }
        if (e.code == GRPC_OK && store_row_builder_init(&b, schema) != 0) {
            rpc_row_reject(&e, GRPC_RESOURCE_EXHAUSTED, "out of memory building rows");
        }
        have_builder = e.code == GRPC_OK;
    }
    if (e.code == GRPC_OK && wal_enabled()) {
        bool logged = _log_rows(call, view, req, keys, &b, a, reply, &e) == 0;
        store_read_unlock();
        store_row_builder_deinit(&b);
        if (!logged) {
            reply->fail(call, e.code, e.message, reply->arg);
        }
        return; /* answered by _on_resume */
    }
    for (size_t r = 0; e.code == GRPC_OK && r < req->n_rows; r++) {
        const Fsd__V1__Row *row = req->rows[r];
        enum store_upsert_result result;
        if (row->delete_) {
            result = store_view_delete(view, &keys[r], row->event_timestamp_us,
                                       row->created_timestamp_us);
        } else {
            if (rpc_row_build(&b, a, row) != 0) {
                rpc_row_reject(&e, GRPC_RESOURCE_EXHAUSTED, "row %zu: out of memory", r);
            }
            result = e.code == GRPC_OK ? store_view_upsert(view, &keys[r], &b) : STORE_UPSERT_ERROR;
        }
        if (result == STORE_UPSERT_ERROR) {
            if (e.code == GRPC_OK) {
                rpc_row_reject(&e, GRPC_RESOURCE_EXHAUSTED,
                               "row %zu: could not be stored (out of memory); rows before it were "
                               "applied",
                               r);
            }
        } else {
            _count(counts, result, row->delete_);
        }
    }
    store_read_unlock();
    if (have_builder) {
        store_row_builder_deinit(&b);
    }
    if (e.code == GRPC_OK) {
        reply->done(call, wk, counts, reply->arg);
    } else {
        reply->fail(call, e.code, e.message, reply->arg);
    }
}

/* PushRows' answers: the counts as a PushRowsResponse, or the status. */
static void _rows_done(struct grpc_call *call, struct rpc_worker *wk, const uint64_t counts[4],
                       void *arg) {
    (void)arg;
    if (call != NULL) {
        _write_response(&wk->out, counts);
        grpc_call_reply(call, wk->out.buf, wk->out.len);
        rpc_observe_duration(wk, RPC_PUSH_ROWS, call);
    }
}

static void _rows_fail(struct grpc_call *call, enum grpc_code code, const char *message,
                       void *arg) {
    (void)arg;
    if (call != NULL) {
        grpc_call_fail(call, code, message);
        rpc_observe_duration(grpc_call_worker_context(call), RPC_PUSH_ROWS, call);
    }
}

void rpc_push_rows(struct grpc_call *call, const uint8_t *msg, size_t len) {
    struct rpc_worker *wk = grpc_call_worker_context(call);
    if (wk == NULL) {
        grpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "worker has no memory for requests");
        return;
    }
    Fsd__V1__PushRowsRequest *req =
        fsd__v1__push_rows_request__unpack(&wk->arena.protobuf, len, msg);
    if (req == NULL) {
        grpc_call_fail(call, GRPC_INVALID_ARGUMENT,
                       "malformed PushRowsRequest: not a valid protobuf message");
    } else {
        static const struct rpc_push_reply reply = {_rows_done, _rows_fail, NULL};
        rpc_push_apply(call, wk, req, RPC_PUSH_ROWS, &reply);
    }
    arena_reset(&wk->arena);
}
