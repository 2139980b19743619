/*
 * LoadSnapshot: queues an on-demand load with the materializer and answers at once. A load
 * takes seconds to minutes and a worker must never wait for it; the caller follows the load
 * through ListViews (loading, last_load_result, snapshot_version), as `fsctl load` does.
 */
#include <stdio.h>

#include "fsd/v1/feature_service.pb-c.h"
#include "common/clock.h"
#include "common/log.h"
#include "daemon/grpc/grpc.h"
#include "materializer/snapshot/snapshot.h"
#include "materializer/stream/stream.h"
#include "rpc_internal.h"
#include "store/catalog.h"
#include "store/rcu.h"

void rpc_load_snapshot(struct grpc_call *call, const uint8_t *msg, size_t len) {
    struct rpc_worker *wk = grpc_call_worker_context(call);
    if (wk == NULL) {
        grpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "worker has no memory for requests");
        return;
    }
    Fsd__V1__LoadSnapshotRequest *req =
        fsd__v1__load_snapshot_request__unpack(&wk->arena.protobuf, len, msg);
    if (req == NULL) {
        grpc_call_fail(call, GRPC_INVALID_ARGUMENT,
                       "malformed LoadSnapshotRequest: not a valid protobuf message");
        arena_reset(&wk->arena);
        return;
    }
    store_read_lock();
    struct store_view *view = store_catalog_find(rpc_state.catalog, req->view);
    uint64_t version = view != NULL ? store_view_version(view) : 0;
    store_read_unlock();
    char err[600];
    char position[MAT_STREAM_ID_LEN] = "";
    struct mat_ticket *ticket = NULL;
    bool joined = false;
    enum mat_refusal refusal = MAT_REFUSED_NOT_RUNNING;
    if (view == NULL) {
        grpc_call_failf(call, GRPC_INVALID_ARGUMENT, "unknown view \"%s\"", req->view);
    } else if (req->stream_position[0] != '\0' &&
               !mat_stream_position_normalize(req->stream_position, position)) {
        grpc_call_failf(call, GRPC_INVALID_ARGUMENT,
                        "stream_position \"%.80s\" is not a stream entry ID (<ms>-<seq> or <ms>)",
                        req->stream_position);
    } else if ((ticket = mat_request_load(req->view, req->path[0] != '\0' ? req->path : NULL,
                                          position[0] != '\0' ? position : NULL, &joined, &refusal,
                                          err, sizeof err)) == NULL) {
        /* a path outside the allowed ones is refused before anything looks at it */
        uint64_t left_out;
        if (refusal == MAT_REFUSED_PATH &&
            log_limit_allow(&wk->load_log, clock_mono_us(), 100000, &left_out)) {
            log_warn("load refused", "view=%s peer=%s error=%s not_logged_before=%llu",
                     LOG_QUOTE(req->view), LOG_QUOTE(grpc_call_peer(call)), LOG_QUOTE(err),
                     (unsigned long long)left_out);
        }
        grpc_call_fail(call,
                       refusal == MAT_REFUSED_PATH        ? GRPC_PERMISSION_DENIED
                       : refusal == MAT_REFUSED_NO_MEMORY ? GRPC_RESOURCE_EXHAUSTED
                                                          : GRPC_FAILED_PRECONDITION,
                       err);
    } else {
        mat_ticket_release(ticket); /* the result is read from ListViews, not awaited here */
        Fsd__V1__LoadSnapshotResponse resp = FSD__V1__LOAD_SNAPSHOT_RESPONSE__INIT;
        resp.current_version = version;
        resp.already_queued = joined;
        uint8_t out[16];
        grpc_call_reply(call, out, fsd__v1__load_snapshot_response__pack(&resp, out));
    }
    rpc_observe_duration(wk, RPC_LOAD_SNAPSHOT, call);
    arena_reset(&wk->arena);
}
