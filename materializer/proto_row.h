#pragma once
/*
 * fsd.v1.Row, the protobuf row that PushRows, PushSnapshot and protobuf stream entries carry,
 * checked against a view's schema and built into a store row. One definition of a valid row,
 * so all three accept and reject exactly the same rows and word their rejections the same way.
 * Knows nothing of gRPC: a rejection is plain text that the caller wraps (daemon/rpc in a
 * gRPC status, the stream consumer in its log line next to the entry ID).
 *
 *   for every row:  mat_proto_row_check()  ──bad──> "row 3: feature price is double, got ..."
 *                        │ ok: entity key encoded
 *                        ▼
 *                   mat_proto_row_build()  ──> store_row_builder ──> store_view_upsert / ...
 */
#include <stddef.h>
#include <stdint.h>

struct Fsd__V1__Row;
struct store_row_builder;
struct store_schema;

/* ---- defaults ------------------------------------------------------------------------------ */

#define MAT_PROTO_ROW_MAX_FUTURE_US (3600LL * 1000000) /* allowed clock skew of a producer */
#define MAT_PROTO_ROW_UNNAMED       SIZE_MAX /* a row index the caller names itself (a stream ID) */

/* ---- API ----------------------------------------------------------------------------------- */

/*
 * Checks `row` against `schema`: event_timestamp_us set (> 0) and at most
 * MAT_PROTO_ROW_MAX_FUTURE_US after `now_us`; every join key of the view exactly once, with its
 * type and, for strings, valid UTF-8; only features of the view, each at most once, with its
 * type and valid UTF-8 strings. Encodes the entity key into `key_buf` (STORE_MAX_KEY_BYTES
 * bytes) and returns its length, or returns -1 with the reason in `err`: plain text naming the
 * row ("row <index>: ", left out for MAT_PROTO_ROW_UNNAMED) and the field. Never allocates,
 * never blocks.
 */
int mat_proto_row_check(const struct store_schema *schema, const struct Fsd__V1__Row *row,
                        size_t index, int64_t now_us, uint8_t *key_buf, char *err, size_t err_len);

/*
 * Scratch memory for converting one list value (a string list's item pointers and lengths, a
 * bool list's bytes): at least `bytes` bytes, 8-byte aligned, valid until the row is built.
 * Returns NULL when out of memory.
 */
typedef void *(*mat_proto_row_scratch_fn)(void *ctx, size_t bytes);

/*
 * Resets builder `b` (initialized for the schema the row was checked against) to the row's
 * times and sets its values; features not given stay null. For a row mat_proto_row_check()
 * accepted. String, bytes and bool lists borrow memory from `scratch`. Returns 0, or -1 when out of
 * memory.
 */
int mat_proto_row_build(struct store_row_builder *b, const struct Fsd__V1__Row *row,
                        mat_proto_row_scratch_fn scratch, void *ctx);
