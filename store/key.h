#pragma once
/*
 * Entity keys. A view's join keys (one, or several for a composite key such as user_id +
 * item_id) are encoded into one byte string that the table hashes and stores:
 *
 *   int64 part:   8 bytes, little-endian
 *   string part:  varint length, then the bytes; the last part carries no length, since the
 *                 end of the key marks its end
 *
 *   user_id=42                 -> 2a 00 00 00 00 00 00 00
 *   user_id=42, item_id="b7"   -> 2a 00 00 00 00 00 00 00 62 37
 *   country="de", user_id=42   -> 02 64 65 2a 00 00 00 00 00 00 00
 *
 * The schema fixes each part's type, so the encoding is unambiguous within a view.
 */
#include <stddef.h>
#include <stdint.h>

#include "schema.h"

struct store_key_part {
    enum store_key_type type;
    int64_t i64;
    const char *str; /* STORE_KEY_STRING: not NUL-terminated */
    uint32_t str_len;
};

/* An encoded key ready for the table: bytes (owned by the caller) and their hash. */
struct store_key {
    const uint8_t *data;
    uint32_t len;
    uint64_t hash;
};

/*
 * Encodes `parts` (one per join key of `schema`, in schema order) into `out` (capacity `cap`).
 * Returns the encoded length, or -1 with `err` set when a part has the wrong type or the key
 * would exceed `cap` or STORE_MAX_KEY_BYTES. Never allocates.
 */
int store_key_encode(const struct store_schema *schema, const struct store_key_part *parts,
                     uint8_t *out, size_t cap, char *err, size_t err_len);

/*
 * Decodes an encoded key back into parts (string parts point into `data`). Returns 0, or -1
 * when `data` is not a valid key of `schema`.
 */
int store_key_decode(const struct store_schema *schema, const uint8_t *data, uint32_t len,
                     struct store_key_part *parts);

/* The 64-bit hash (XXH3) that places a key in a shard and a slot. */
uint64_t store_key_hash(const uint8_t *data, uint32_t len);
