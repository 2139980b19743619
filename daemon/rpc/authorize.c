/*
 * Who may call which method (daemon/auth decides which token a call carries): the transport
 * runs rpc_authorize when a call's headers arrive, before any of its request is buffered, and
 * the write handlers ask rpc_authorize_view once the request names its view. Every refusal is
 * counted (fsd_auth_failures_total{method,reason}) and logged with the client's address and
 * the token's name, never the token, ten lines a second per worker at most.
 */
#include <stdio.h>
#include <string.h>

#include "daemon/auth/auth.h"
#include "daemon/grpc/grpc.h"
#include "rpc_internal.h"
#include "common/clock.h"
#include "common/log.h"

/* The role each method needs; the health check needs none (it has no authorizer at all). */
static const enum auth_role method_roles[RPC_METHOD_COUNT] = {
    [RPC_GET_FEATURES] = AUTH_ROLE_READ,
    [RPC_LIST_VIEWS] = AUTH_ROLE_READ,
    [RPC_PUSH_ROWS] = AUTH_ROLE_WRITE,
    [RPC_LOAD_SNAPSHOT] = AUTH_ROLE_ADMIN,
    [RPC_HEALTH_CHECK] = AUTH_ROLE_NONE,
    [RPC_PUSH_SNAPSHOT] = AUTH_ROLE_WRITE,
    [RPC_FEAST_GET_ONLINE_FEATURES] = AUTH_ROLE_READ,
    [RPC_FEAST_SERVING_INFO] = AUTH_ROLE_READ,
    [RPC_HTTP_GET_ONLINE_FEATURES] = AUTH_ROLE_READ,
    [RPC_HTTP_PUSH] = AUTH_ROLE_WRITE,
    [RPC_HTTP_WRITE_TO_ONLINE_STORE] = AUTH_ROLE_WRITE,
    [RPC_HTTP_MATERIALIZE] = AUTH_ROLE_ADMIN, /* as LoadSnapshot */
    [RPC_HTTP_MATERIALIZE_INCREMENTAL] = AUTH_ROLE_ADMIN,
    [RPC_HTTP_HEALTH] = AUTH_ROLE_NONE,
};

static void _refused(struct grpc_call *call, enum rpc_method_id method, enum auth_failure failure,
                     struct auth_grant grant, const char *view) {
    struct rpc_worker *wk = grpc_call_worker_context(call);
    if (wk == NULL) {
        return;
    }
    if (wk->counters != NULL) {
        rpc_counter_add(&wk->counters->auth_failures[method][failure], 1);
    }
    uint64_t left_out;
    if (log_limit_allow(&wk->auth_log, clock_mono_us(), 100000, &left_out)) {
        char name[AUTH_NAME_MAX];
        log_warn("call refused",
                 "method=%s reason=%s peer=%s token=%s view=%s "
                 "not_logged_before=%llu",
                 rpc_method_name(method), auth_failure_name(failure),
                 LOG_QUOTE(grpc_call_peer(call)), auth_grant_name(grant, name),
                 LOG_QUOTE(view ? view : "-"), (unsigned long long)left_out);
    }
}

enum grpc_code rpc_authorize(struct grpc_call *call, const uint8_t *value, size_t len,
                             char *message, size_t message_len) {
    if (!auth_enabled()) {
        return GRPC_OK;
    }
    enum rpc_method_id method = (enum rpc_method_id)grpc_call_method_index(call);
    if ((unsigned)method >= RPC_METHOD_COUNT || method_roles[method] == AUTH_ROLE_NONE) {
        return GRPC_OK;
    }
    struct rpc_worker *wk = grpc_call_worker_context(call);
    struct auth_cache scratch = {0}; /* a worker without memory still checks, uncached */
    struct auth_grant grant = {0};
    enum auth_failure failure;
    /* No token, but a client certificate the handshake verified: the line naming it decides. */
    const char *subject = grpc_call_tls_subject(call);
    bool by_certificate = value == NULL && subject[0] != '\0';
    int rc = by_certificate
                 ? auth_authenticate_subject(subject, &grant, &failure)
                 : auth_authenticate(wk ? &wk->auth_cache : &scratch, value, len, &grant, &failure);
    if (rc != 0) {
        _refused(call, method, failure, grant, NULL);
        if (by_certificate) {
            snprintf(message, message_len,
                     "client certificate %.120s is not in the tokens file: send a token, or "
                     "add a cert: line for it",
                     subject);
        } else {
            snprintf(message, message_len, "%s",
                     failure == AUTH_FAIL_MISSING
                         ? "this server needs a token: send the header authorization: Bearer "
                           "<token>"
                     : failure == AUTH_FAIL_MALFORMED
                         ? "the authorization header is not \"Bearer <token>\""
                         : "unknown token");
        }
        return GRPC_UNAUTHENTICATED;
    }
    grpc_call_set_auth(call, auth_grant_pack(grant));
    if (grant.role < method_roles[method]) {
        _refused(call, method, AUTH_FAIL_ROLE, grant, NULL);
        char name[AUTH_NAME_MAX];
        snprintf(message, message_len, "token %s has role %s, which may not call %s (it needs %s)",
                 auth_grant_name(grant, name), auth_role_name(grant.role), rpc_method_name(method),
                 auth_role_name(method_roles[method]));
        return GRPC_PERMISSION_DENIED;
    }
    return GRPC_OK;
}

enum grpc_code rpc_authorize_view(struct grpc_call *call, enum rpc_method_id method,
                                  const char *view, char *message, size_t message_len) {
    if (!auth_enabled()) {
        return GRPC_OK;
    }
    struct auth_grant grant = auth_grant_unpack(grpc_call_auth(call));
    int allowed = auth_may_write_view(grant, view);
    if (allowed > 0) {
        return GRPC_OK;
    }
    if (allowed < 0) {
        snprintf(message, message_len,
                 "the token list this call was authenticated with was retired by reloads while it "
                 "waited; retry");
        return GRPC_UNAVAILABLE;
    }
    _refused(call, method, AUTH_FAIL_VIEW, grant, view);
    char name[AUTH_NAME_MAX];
    snprintf(message, message_len, "token %s may not write view %.128s",
             auth_grant_name(grant, name), view);
    return GRPC_PERMISSION_DENIED;
}
