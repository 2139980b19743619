#pragma once
/* Schemas and keys shared by the store tests. */
#include <stdlib.h>
#include <string.h>

#include "store/key.h"
#include "store/schema.h"

/* A view with one feature of every type, in enum order, and an int64 key "id". */
static inline struct store_schema *fixture_all_types_schema(int64_t ttl_us) {
    char err[256];
    struct store_schema *s = store_schema_create("all_types", ttl_us);
    if (store_schema_add_key(s, "id", STORE_KEY_INT64, err, sizeof err) != 0) {
        abort();
    }
    for (int t = 0; t < STORE_TYPE_COUNT; t++) {
        char name[32];
        snprintf(name, sizeof name, "f_%s", store_type_name((enum store_type)t));
        if (store_schema_add_feature(s, name, (enum store_type)t, err, sizeof err) != t) {
            abort();
        }
    }
    if (store_schema_finalize(s, err, sizeof err) != 0) {
        abort();
    }
    return s;
}

/* Encodes an int64 entity key into `buf` (8 bytes) and returns it hashed. */
static inline struct store_key fixture_int_key(int64_t id, uint8_t buf[8]) {
    for (int i = 0; i < 8; i++) {
        buf[i] = (uint8_t)((uint64_t)id >> (8 * i));
    }
    struct store_key key = {buf, 8, store_key_hash(buf, 8)};
    return key;
}
