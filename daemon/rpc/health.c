/*
 * grpc.health.v1.Health/Check: SERVING while the daemon serves (not while it drains for a
 * shutdown). The empty service name and "fsd.v1.FeatureService" are known; others get
 * NOT_FOUND, as the health protocol says.
 */
#include <string.h>

#include "daemon/grpc/grpc.h"
#include "grpc/health/v1/health.pb-c.h"
#include "rpc_internal.h"

void rpc_health_check(struct grpc_call *call, const uint8_t *msg, size_t len) {
    struct rpc_worker *wk = grpc_call_worker_context(call);
    if (wk == NULL) {
        grpc_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "worker has no memory for requests");
        return;
    }
    Grpc__Health__V1__HealthCheckRequest *req =
        grpc__health__v1__health_check_request__unpack(&wk->arena.protobuf, len, msg);
    if (req == NULL) {
        grpc_call_fail(call, GRPC_INVALID_ARGUMENT,
                       "malformed HealthCheckRequest: not a valid protobuf message");
    } else if (req->service[0] != '\0' && strcmp(req->service, "fsd.v1.FeatureService") != 0) {
        grpc_call_fail(call, GRPC_NOT_FOUND, "unknown service; known: \"\", fsd.v1.FeatureService");
    } else {
        Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
        resp.status = atomic_load_explicit(&rpc_state.serving, memory_order_relaxed)
                          ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                          : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
        uint8_t out[16];
        size_t size = grpc__health__v1__health_check_response__pack(&resp, out);
        grpc_call_reply(call, out, size);
    }
    rpc_observe_duration(wk, RPC_HEALTH_CHECK, call);
    arena_reset(&wk->arena);
}
