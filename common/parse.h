#pragma once
/*
 * Text forms of values, as config literals and stream entries write them. Strict and exact: a
 * value that does not fit its type is an error, never rounded, clamped or truncated (decimal
 * floats round to the nearest representable value, as strtod/strtof do). Each function takes
 * a NUL-terminated `text` and returns 0, or -1 with a message quoting `text` in `err`.
 */
#include <stddef.h>
#include <stdint.h>

/* A decimal integer in [min, max]; `type_name` ("int32") goes into the message. */
int parse_int(const char *text, int64_t min, int64_t max, const char *type_name, int64_t *out,
              char *err, size_t err_len);

/* A decimal number (no hex, no inf/nan spelled out) that fits the type. */
int parse_double(const char *text, double *out, char *err, size_t err_len);
int parse_float(const char *text, float *out, char *err, size_t err_len);

/* RFC 3339 (2024-01-02T03:04:05.123456+02:00) or integer microseconds since the epoch. */
int parse_timestamp(const char *text, int64_t *us, char *err, size_t err_len);

/* The value of one hexadecimal digit (0-9, a-f, A-F), or -1 for any other character. */
int parse_hex_digit(char c);

/* Standard base64 with padding (RFC 4648 section 4). *out is malloc'd (NULL when empty). */
int parse_base64(const char *text, uint8_t **out, size_t *out_len, char *err, size_t err_len);
