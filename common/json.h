#pragma once
/*
 * JSON pieces appended to a struct buf (buf.h). One string escaper for every JSON document
 * fsd writes (/status, fsctl --json), and it always writes valid JSON: JSON text must be
 * UTF-8, so a byte that does not start a valid UTF-8 sequence is written as \ufffd (the
 * replacement character) instead of being copied into the document.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

/* `s[0..len)` as a JSON string literal, quotes included. */
void json_string(struct buf *b, const char *s, size_t len);

/* A NUL-terminated string as a JSON string literal; NULL writes null. */
void json_cstring(struct buf *b, const char *s);

/* The shortest exact number; NaN and the infinities, which JSON lacks, as the strings "NaN",
 * "Infinity" and "-Infinity" (protobuf's JSON mapping). */
void json_double(struct buf *b, double x);
void json_float(struct buf *b, float x);

/* Either of those (`single`: x is a float's value), and with `point` a whole number gets
 * ".0" ("3.0"), so a reader that infers types (Python's json) sees a float, not an int. */
void json_real(struct buf *b, double x, bool single, bool point);

/* Standard base64 with padding (RFC 4648), as a JSON string: protobuf's JSON for bytes. */
void json_base64(struct buf *b, const uint8_t *data, size_t len);

/* Decodes `len` characters of standard base64 (padding optional, as protobuf's JSON parser
 * takes it) into `out` (room for len / 4 * 3 + 3 bytes); false on any other character or a
 * length no encoding has. */
bool json_base64_decode(const char *text, size_t len, uint8_t *out, size_t *out_len);
