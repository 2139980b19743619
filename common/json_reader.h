#pragma once
/*
 * A strict JSON reader (RFC 8259) that walks a document where it lies: nothing is allocated
 * and nothing is copied until the caller asks for a string's text. For request bodies read
 * on the hot path, where building a tree of objects per request (json-c) cost more than the
 * lookups it asked for.
 *
 * The caller walks the document as it expects it and skips what it does not know:
 *
 *   struct json_reader r;
 *   json_reader_init(&r, body, len, 16);
 *   struct json_span key;
 *   json_reader_object_begin(&r);
 *   for (size_t i = 0; json_reader_member(&r, i, &key); i++) {
 *       if (json_span_is(&key, "limit")) { json_reader_number(&r, &n); }
 *       else { json_reader_skip(&r); }
 *   }
 *   if (r.error != NULL || !json_reader_at_end(&r)) { ... r.error at byte r.error_at ... }
 *
 * Every call checks what it reads; on the first error the reader stops (each later call
 * returns false) and `error` says what broke at byte `error_at`. Strings must be valid UTF-8.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_reader {
    const char *start, *p, *end;
    unsigned depth, max_depth;
    const char *error; /* NULL while the document reads well */
    size_t error_at;   /* byte offset of what broke */
};

/* A string as it is in the document, between its quotes: escapes not yet undone. */
struct json_span {
    const char *raw;
    size_t raw_len;
    bool escaped; /* holds a backslash: json_span_text() must undo escapes */
};

enum json_kind {
    JSON_KIND_NONE, /* the end of the input, or a byte no value starts with */
    JSON_KIND_OBJECT,
    JSON_KIND_ARRAY,
    JSON_KIND_STRING,
    JSON_KIND_NUMBER,
    JSON_KIND_BOOL,
    JSON_KIND_NULL,
};

/* A number: an integer that fits int64 is `integer`; any other number is only `real`. */
struct json_number {
    bool is_integer;
    int64_t integer;
    double real;
};

/* Reads data[0..len); containers nest at most `max_depth` deep. */
void json_reader_init(struct json_reader *r, const void *data, size_t len, unsigned max_depth);

/* What the next value is, after skipping whitespace; nothing is consumed. */
enum json_kind json_reader_peek(struct json_reader *r);

/* Consumes one value of any kind, checked whole. */
bool json_reader_skip(struct json_reader *r);

/* True when only whitespace is left (the document ends there). */
bool json_reader_at_end(struct json_reader *r);

/*
 * Containers. _begin consumes the opening bracket. _member and _element are called with
 * index 0, 1, 2, ... : each returns true with the reader before the next value (a member's
 * key in `key`), which the caller then consumes or skips; false at the closing bracket (which
 * is consumed) or on an error.
 */
bool json_reader_object_begin(struct json_reader *r);
bool json_reader_member(struct json_reader *r, size_t index, struct json_span *key);
bool json_reader_array_begin(struct json_reader *r);
bool json_reader_element(struct json_reader *r, size_t index);

/* Scalars: each consumes a value of its kind, or fails the reader naming what was found. */
bool json_reader_string(struct json_reader *r, struct json_span *out);
bool json_reader_number(struct json_reader *r, struct json_number *out);
bool json_reader_bool(struct json_reader *r, bool *out);
bool json_reader_null(struct json_reader *r);

/* The text of a string read by the reader into out (room for span->raw_len + 1 bytes: the
 * text is never longer than its JSON), NUL-terminated; returns its length. */
size_t json_span_text(const struct json_span *span, char *out);

/* True when the string's text is `name` exactly. */
bool json_span_is(const struct json_span *span, const char *name);
