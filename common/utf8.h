#pragma once
/*
 * UTF-8 as RFC 3629 defines it: no overlong forms, no surrogates (U+D800..U+DFFF), nothing
 * above U+10FFFF. String values and string keys must be valid before they are stored (they
 * travel as protobuf `string`, which clients refuse to decode otherwise), and text written
 * into JSON must be too.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The length (1..4) of the valid UTF-8 sequence starting at s[0] (len > 0), or 0 if there is
 * none there: a stray continuation byte, a cut sequence, an overlong form, a surrogate. */
size_t utf8_sequence_len(const uint8_t *s, size_t len);

/* True when all of s[0..len) is valid UTF-8. */
bool utf8_valid(const uint8_t *s, size_t len);
