/*
 * PushRows: upsert-if-newer a batch of rows into a view's live table.
 *
 * All or nothing on validation: every row is checked against the view's schema first, and one
 * bad row rejects the batch with a message naming the row and the field, so a producer never
 * has to work out which half of its batch landed. Valid batches are applied row by row through
 * store_view_upsert (so a snapshot load in progress keeps them); each row is visible to
 * lookups before the reply is sent. The row checks are shared with PushSnapshot (row_check.c).
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

void rpc_push_rows(struct grpc_call *call, const uint8_t *msg, size_t len) {
    struct rpc_worker *wk = grpc_call_worker_context(call);
    if (wk == NULL) {
        grpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "worker has no memory for requests");
        return;
    }
    struct arena *a = &wk->arena;
    struct rpc_row_error e = {GRPC_OK, ""};
    uint64_t counts[4] = {0}; /* inserted, replaced, not_newer, deleted */
    Fsd__V1__PushRowsRequest *req = fsd__v1__push_rows_request__unpack(&a->protobuf, len, msg);
    if (req == NULL) {
        grpc_call_fail(call, GRPC_INVALID_ARGUMENT,
                       "malformed PushRowsRequest: not a valid protobuf message");
        arena_reset(a);
        return;
    }
    /* Before the view is looked up: a token limited to other views learns nothing of it. */
    enum grpc_code allowed =
        rpc_authorize_view(call, RPC_PUSH_ROWS, req->view, e.message, sizeof e.message);
    if (allowed != GRPC_OK) {
        grpc_call_fail(call, allowed, e.message);
        rpc_observe_duration(wk, RPC_PUSH_ROWS, call);
        arena_reset(a);
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
        } else if (result == STORE_UPSERT_NOT_NEWER) {
            counts[2]++;
        } else if (row->delete_) {
            counts[3]++;
        } else {
            counts[result == STORE_UPSERT_INSERTED ? 0 : 1]++;
        }
    }
    store_read_unlock();
    if (have_builder) {
        store_row_builder_deinit(&b);
    }
    if (e.code == GRPC_OK) {
        _write_response(&wk->out, counts);
        grpc_call_reply(call, wk->out.buf, wk->out.len);
    } else {
        grpc_call_fail(call, e.code, e.message);
    }
    rpc_observe_duration(wk, RPC_PUSH_ROWS, call);
    arena_reset(a);
}
