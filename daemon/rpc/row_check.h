#pragma once
/*
 * Pushed rows (fsd.v1.Row) against a view's schema: the checks and the row building that
 * PushRows and PushSnapshot share, so both accept exactly the same rows and word their
 * rejections the same way. The rules themselves are the materializer's
 * (materializer/proto_row.h), shared with protobuf stream entries; this wraps them in gRPC
 * statuses and arena memory. Internal to daemon/rpc.
 *
 *   handler: for every row of the message   rpc_row_check()  ─ one fails: reject the message
 *            then for every row             rpc_row_build()  ─> store_*_upsert / _delete
 */
#include <stddef.h>
#include <stdint.h>

#include "fsd/v1/feature_service.pb-c.h"
#include "daemon/grpc/grpc.h"

struct arena;
struct store_key;
struct store_row_builder;
struct store_schema;

/* Why a message was refused: the gRPC status and a message naming the row and the field. */
struct rpc_row_error {
    enum grpc_code code;
    char message[512];
};

/* Sets `e` and returns -1, so a check can `return rpc_row_reject(...)`. */
__attribute__((format(printf, 3, 4))) int rpc_row_reject(struct rpc_row_error *e,
                                                         enum grpc_code code, const char *fmt, ...);

/*
 * Checks row `row` (index `r`, for messages) against `schema` (mat_proto_row_check: event time
 * set and at most MAT_PROTO_ROW_MAX_FUTURE_US ahead of `now_us`, every join key once with its
 * type, features of the view once with their types, UTF-8 strings). Encodes the key into `a`
 * and sets *key to it (valid until the arena is reset). Returns 0, or -1 with `e` set
 * (INVALID_ARGUMENT naming the row and the field; RESOURCE_EXHAUSTED when the arena is out of
 * memory). Never blocks.
 */
int rpc_row_check(const struct store_schema *schema, const Fsd__V1__Row *row, size_t r,
                  struct arena *a, int64_t now_us, struct store_key *key, struct rpc_row_error *e);

/*
 * Resets builder `b` (initialized for the schema the row was checked against) to the row's
 * times and sets its values; features not given stay null. For a row rpc_row_check()
 * accepted. Returns 0, or -1 when out of memory. Scratch memory comes from `a`.
 */
int rpc_row_build(struct store_row_builder *b, struct arena *a, const Fsd__V1__Row *row);
