#pragma once
/*
 * Text forms of numbers and times that more than one writer needs (the metrics, /status,
 * fsctl): each writes into `out` (always terminated).
 */
#include <stddef.h>
#include <stdint.h>

/* The shortest decimal that reads back as exactly `x` ("0.1", "1e+100"); "nan", "inf",
 * "-inf" for the values that have no digits (callers spell those as their format wants).
 * Returns the text's length. */
size_t text_double(char *out, size_t out_len, double x);
size_t text_float(char *out, size_t out_len, float x);

/* Room that always holds text_double's and text_float's text, its NUL included. */
#define TEXT_NUMBER_MAX 40

/* 512 -> "512 B", 1536 -> "1.5 KiB", up to TiB. */
void text_bytes(char *out, size_t out_len, uint64_t bytes);

/* Microseconds since the epoch as RFC 3339 UTC to the second: "2024-05-01T12:00:00Z". */
void text_time_utc(char *out, size_t out_len, int64_t us);
