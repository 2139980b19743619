/*
 * The checks and row building PushRows and PushSnapshot share (row_check.h): the materializer's
 * protobuf row rules (materializer/proto_row.h, which stream entries follow too) with gRPC
 * statuses and arena memory.
 */
#include "row_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "materializer/proto_row.h"
#include "rpc_internal.h"
#include "store/key.h"
#include "store/schema.h"

int rpc_row_reject(struct rpc_row_error *e, enum grpc_code code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    e->code = code;
    return -1;
}

int rpc_row_check(const struct store_schema *schema, const Fsd__V1__Row *row, size_t r,
                  struct arena *a, int64_t now_us, struct store_key *key, struct rpc_row_error *e) {
    uint8_t encoded[STORE_MAX_KEY_BYTES];
    int len = mat_proto_row_check(schema, row, r, now_us, encoded, e->message, sizeof e->message);
    if (len < 0) {
        e->code = GRPC_INVALID_ARGUMENT;
        return -1;
    }
    uint8_t *key_buf = arena_alloc(a, (size_t)len + 1);
    if (key_buf == NULL) {
        return rpc_row_reject(e, GRPC_RESOURCE_EXHAUSTED, "row %zu: out of memory", r);
    }
    memcpy(key_buf, encoded, (size_t)len);
    *key = (struct store_key){key_buf, (uint32_t)len, store_key_hash(key_buf, (uint32_t)len)};
    return 0;
}

/* List scratch from the request's arena (reset after the request). */
static void *_arena_scratch(void *ctx, size_t bytes) {
    return arena_alloc(ctx, bytes);
}

int rpc_row_build(struct store_row_builder *b, struct arena *a, const Fsd__V1__Row *row) {
    return mat_proto_row_build(b, row, _arena_scratch, a);
}
