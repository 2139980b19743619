#pragma once
/*
 * Feast's online serving API in its two forms, gRPC (feast_serving.c) and HTTP JSON
 * (feast_http.c): one request struct (the gRPC message, which the JSON body is decoded into),
 * one plan, one rule per cell, two writers.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "feast/serving/ServingService.pb-c.h"
#include "plan.h"
#include "rpc_internal.h"

enum feast_format {
    FEAST_FORMAT_PROTO, /* feast.serving.GetOnlineFeaturesResponse */
    FEAST_FORMAT_JSON,  /* as Feast's feature server writes it (MessageToDict of the above) */
};

/* fsd's extras: gRPC trailing metadata, or the JSON body's "fsd" object. */
struct feast_extras {
    uint64_t missing[STORE_OUTSIDE_MAX_AGE + 1]; /* values not present, by status */
    int64_t oldest_ms;                           /* the oldest row served; -1: none */
};

/*
 * Plans, looks up and answers `req` in `format` (errors too: gRPC status, or Feast's JSON
 * error), observed as `method`. `req` and what it points to stay the caller's; the caller
 * resets the arena after.
 */
void feast_serve(struct grpc_call *call, struct rpc_worker *wk,
                 const Feast__Serving__GetOnlineFeaturesRequest *req, enum feast_format format,
                 enum rpc_method_id method);

/*
 * What both writers do first: the lookups counted and the oldest row found (vc[v]: the
 * views' counters), the join keys' order (feast_key_order, into order[PLAN_MAX_KEY_COLUMNS]),
 * and room for one column's statuses, which it returns (NULL when out of memory).
 */
uint8_t *feast_prepare(struct rpc_worker *wk, const struct plan *p, int64_t now_us,
                       struct feast_extras *x, struct rpc_view_counters **vc, size_t *order,
                       size_t *nkeys);

/* The order the join keys are echoed in (indexes into the request's entities); returns how
 * many. */
size_t feast_key_order(const struct plan *p, size_t *order);

/*
 * Column c, entity i: its status, and in *value what is sent when *send (else a null). Feast's
 * rules: PRESENT with the value; NOT_FOUND and NULL_VALUE null; OUTSIDE_MAX_AGE with the
 * stored value; with feast.defaults: fsd the three carry the default instead (counted as a
 * fallback). Counts the status in x.
 */
enum store_status feast_cell(const struct plan *p, uint32_t c, size_t i, int64_t now_us,
                             struct rpc_view_counters *const *vc, struct feast_extras *x,
                             struct store_value *value, bool *send);

/* feast_http.c: the JSON response into wk->json; -1 when out of memory. */
int feast_json_write(struct rpc_worker *wk, const struct plan *p,
                     const Feast__Serving__GetOnlineFeaturesRequest *req, int64_t now_us,
                     struct feast_extras *x);

/* Fails an HTTP call the way Feast's feature server does: the status for `code` (404 for
 * Feast's not-found errors) and, as the body, a JSON string holding Feast's error detail
 * {"module", "class", "message"} (class: `feast_class`, or FeastError). */
void feast_http_fail(struct grpc_call *call, enum grpc_code code, const char *feast_class,
                     const char *message);
