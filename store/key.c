#include "key.h"

#include <stdio.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

static void _put_le64(uint8_t *out, int64_t v) {
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t)(u >> (8 * i));
    }
}

static int64_t _get_le64(const uint8_t *in) {
    uint64_t u = 0;
    for (int i = 0; i < 8; i++) {
        u |= (uint64_t)in[i] << (8 * i);
    }
    return (int64_t)u;
}

int store_key_encode(const struct store_schema *schema, const struct store_key_part *parts,
                     uint8_t *out, size_t cap, char *err, size_t err_len) {
    if (cap > STORE_MAX_KEY_BYTES) {
        cap = STORE_MAX_KEY_BYTES;
    }
    size_t len = 0;
    for (uint32_t k = 0; k < schema->nkeys; k++) {
        const struct store_key_part *part = &parts[k];
        if (part->type != schema->keys[k].type) {
            snprintf(err, err_len, "join key %s of view %s is %s, got %s", schema->keys[k].name,
                     schema->view, store_key_type_name(schema->keys[k].type),
                     store_key_type_name(part->type));
            return -1;
        }
        if (part->type == STORE_KEY_INT64) {
            if (len + 8 > cap) {
                goto too_long;
            }
            _put_le64(out + len, part->i64);
            len += 8;
            continue;
        }
        bool last = k + 1 == schema->nkeys;
        if (!last) {
            uint32_t n = part->str_len;
            do {
                if (len + 1 > cap) {
                    goto too_long;
                }
                out[len++] = (uint8_t)((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
                n >>= 7;
            } while (n != 0);
        }
        if (part->str_len > cap - len) {
            goto too_long;
        }
        if (part->str_len > 0) {
            memcpy(out + len, part->str, part->str_len);
        }
        len += part->str_len;
    }
    return (int)len;
too_long:
    snprintf(err, err_len, "entity key of view %s is longer than %zu bytes", schema->view, cap);
    return -1;
}

int store_key_decode(const struct store_schema *schema, const uint8_t *data, uint32_t len,
                     struct store_key_part *parts) {
    uint32_t pos = 0;
    for (uint32_t k = 0; k < schema->nkeys; k++) {
        struct store_key_part *part = &parts[k];
        memset(part, 0, sizeof(*part));
        part->type = schema->keys[k].type;
        if (part->type == STORE_KEY_INT64) {
            if (len - pos < 8) {
                return -1;
            }
            part->i64 = _get_le64(data + pos);
            pos += 8;
            continue;
        }
        uint32_t n = len - pos;
        if (k + 1 < schema->nkeys) {
            n = 0;
            for (int shift = 0;; shift += 7) {
                if (pos >= len || shift > 28) {
                    return -1;
                }
                uint8_t byte = data[pos++];
                n |= (uint32_t)(byte & 0x7f) << shift;
                if ((byte & 0x80) == 0) {
                    break;
                }
            }
            if (n > len - pos) {
                return -1;
            }
        }
        part->str = (const char *)data + pos;
        part->str_len = n;
        pos += n;
    }
    return pos == len ? 0 : -1;
}

uint64_t store_key_hash(const uint8_t *data, uint32_t len) {
    return XXH3_64bits(data, len);
}
