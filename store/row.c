#include "row.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN8(x) (((x) + 7u) & ~(size_t)7u)

static const char *const status_names[] = {
    [STORE_PRESENT] = "PRESENT",
    [STORE_NOT_FOUND] = "NOT_FOUND",
    [STORE_NULL] = "NULL_VALUE",
    [STORE_OUTSIDE_MAX_AGE] = "OUTSIDE_MAX_AGE",
};

const char *store_status_name(enum store_status status) {
    return (unsigned)status <= STORE_OUTSIDE_MAX_AGE ? status_names[status] : "?";
}

int store_row_builder_init(struct store_row_builder *b, const struct store_schema *schema) {
    assert(schema->finalized);
    memset(b, 0, sizeof(*b));
    b->schema = schema;
    /* One allocation for both sections; +8 keeps it non-empty for a view without features. */
    b->fixed = malloc(schema->fixed_size + schema->null_bytes + 8);
    if (b->fixed == NULL) {
        return -1;
    }
    b->nulls = b->fixed + schema->fixed_size;
    /* Allocated up front so staging an empty first value never offsets a NULL pointer. */
    b->var_cap = 256;
    b->var = malloc(b->var_cap);
    if (b->var == NULL) {
        free(b->fixed);
        return -1;
    }
    store_row_builder_reset(b, 0, 0);
    return 0;
}

void store_row_builder_deinit(struct store_row_builder *b) {
    free(b->fixed);
    free(b->var);
    memset(b, 0, sizeof(*b));
}

void store_row_builder_reset(struct store_row_builder *b, int64_t event_ts_us,
                             int64_t created_ts_us) {
    b->event_ts_us = event_ts_us;
    b->created_ts_us = created_ts_us;
    memset(b->fixed, 0, b->schema->fixed_size);
    memset(b->nulls, 0xff, b->schema->null_bytes);
    b->var_len = 0;
}

static void _set_present(struct store_row_builder *b, uint32_t index) {
    b->nulls[index >> 3] &= (uint8_t) ~(1u << (index & 7));
}

void store_row_set_null(struct store_row_builder *b, uint32_t index) {
    b->nulls[index >> 3] |= (uint8_t)(1u << (index & 7));
}

static void *_fixed_slot(struct store_row_builder *b, uint32_t index, enum store_type type) {
    const struct store_feature *feature = &b->schema->features[index];
    (void)type;
    assert(feature->type == type);
    _set_present(b, index);
    return b->fixed + feature->fixed_offset;
}

void store_row_set_int32(struct store_row_builder *b, uint32_t index, int32_t v) {
    memcpy(_fixed_slot(b, index, STORE_TYPE_INT32), &v, sizeof(v));
}

void store_row_set_int64(struct store_row_builder *b, uint32_t index, int64_t v) {
    memcpy(_fixed_slot(b, index, STORE_TYPE_INT64), &v, sizeof(v));
}

void store_row_set_float(struct store_row_builder *b, uint32_t index, float v) {
    memcpy(_fixed_slot(b, index, STORE_TYPE_FLOAT), &v, sizeof(v));
}

void store_row_set_double(struct store_row_builder *b, uint32_t index, double v) {
    memcpy(_fixed_slot(b, index, STORE_TYPE_DOUBLE), &v, sizeof(v));
}

void store_row_set_bool(struct store_row_builder *b, uint32_t index, bool v) {
    uint8_t byte = v ? 1 : 0;
    memcpy(_fixed_slot(b, index, STORE_TYPE_BOOL), &byte, 1);
}

void store_row_set_timestamp(struct store_row_builder *b, uint32_t index, int64_t ts_us) {
    memcpy(_fixed_slot(b, index, STORE_TYPE_TIMESTAMP), &ts_us, sizeof(ts_us));
}

/*
 * Reserves `len` bytes of staging for feature `index` and points its fixed slot at them.
 * Staging offsets are 8-aligned for lists, mirroring where the row will put them.
 */
static uint8_t *_stage(struct store_row_builder *b, uint32_t index, uint64_t len) {
    const struct store_feature *feature = &b->schema->features[index];
    uint64_t start = store_type_is_list(feature->type) ? ALIGN8(b->var_len) : b->var_len;
    uint64_t end = start + len;
    if (end > UINT32_MAX - 64) {
        return NULL;
    }
    if (end > b->var_cap) {
        uint64_t cap = b->var_cap ? b->var_cap : 256;
        while (cap < end) {
            cap *= 2;
        }
        uint8_t *grown = realloc(b->var, cap);
        if (grown == NULL) {
            return NULL;
        }
        b->var = grown;
        b->var_cap = (uint32_t)cap;
    }
    uint32_t ref[2] = {(uint32_t)start, (uint32_t)len};
    memcpy(b->fixed + feature->fixed_offset, ref, sizeof(ref));
    _set_present(b, index);
    b->var_len = (uint32_t)end;
    return b->var + start;
}

int store_row_set_bytes(struct store_row_builder *b, uint32_t index, const void *data,
                        uint32_t len) {
    assert(b->schema->features[index].type == STORE_TYPE_STRING ||
           b->schema->features[index].type == STORE_TYPE_BYTES);
    uint8_t *dst = _stage(b, index, len);
    if (dst == NULL) {
        return -1;
    }
    if (len > 0) {
        memcpy(dst, data, len);
    }
    return 0;
}

int store_row_set_list(struct store_row_builder *b, uint32_t index, const void *elements,
                       uint32_t n) {
    uint32_t size = store_type_element_size(b->schema->features[index].type);
    assert(size > 0);
    uint8_t *dst = _stage(b, index, (uint64_t)n * size);
    if (dst == NULL) {
        return -1;
    }
    if (n > 0) {
        memcpy(dst, elements, (size_t)n * size);
    }
    return 0;
}

int store_row_set_packed_list(struct store_row_builder *b, uint32_t index, const char *const *items,
                              const uint32_t *lens, uint32_t n) {
    assert(b->schema->features[index].type == STORE_TYPE_STRING_LIST ||
           b->schema->features[index].type == STORE_TYPE_BYTES_LIST);
    uint64_t total = 4 + 4 * (uint64_t)n;
    for (uint32_t i = 0; i < n; i++) {
        total += lens[i];
    }
    uint8_t *dst = _stage(b, index, total);
    if (dst == NULL) {
        return -1;
    }
    memcpy(dst, &n, 4);
    memcpy(dst + 4, lens, 4 * (size_t)n);
    uint8_t *p = dst + 4 + 4 * (size_t)n;
    for (uint32_t i = 0; i < n; i++) {
        if (lens[i] > 0) {
            memcpy(p, items[i], lens[i]);
        }
        p += lens[i];
    }
    return 0;
}

int store_row_set_value(struct store_row_builder *b, uint32_t index,
                        const struct store_value *value) {
    if (index >= b->schema->nfeatures || b->schema->features[index].type != value->type) {
        return -1;
    }
    switch (value->type) {
    case STORE_TYPE_INT32:
        store_row_set_int32(b, index, value->i32);
        return 0;
    case STORE_TYPE_INT64:
        store_row_set_int64(b, index, value->i64);
        return 0;
    case STORE_TYPE_FLOAT:
        store_row_set_float(b, index, value->f32);
        return 0;
    case STORE_TYPE_DOUBLE:
        store_row_set_double(b, index, value->f64);
        return 0;
    case STORE_TYPE_BOOL:
        store_row_set_bool(b, index, value->b);
        return 0;
    case STORE_TYPE_TIMESTAMP:
        store_row_set_timestamp(b, index, value->ts_us);
        return 0;
    case STORE_TYPE_STRING:
    case STORE_TYPE_BYTES:
        return store_row_set_bytes(b, index, value->var.data, value->var.bytes);
    case STORE_TYPE_FLOAT_LIST:
    case STORE_TYPE_INT64_LIST:
    case STORE_TYPE_INT32_LIST:
    case STORE_TYPE_DOUBLE_LIST:
    case STORE_TYPE_BOOL_LIST:
    case STORE_TYPE_TIMESTAMP_LIST:
        return store_row_set_list(b, index, value->var.data, value->var.count);
    case STORE_TYPE_STRING_LIST:
    case STORE_TYPE_BYTES_LIST: {
        /* The value's block lacks the leading count the row stores: stage both parts. */
        uint8_t *dst = _stage(b, index, 4 + (uint64_t)value->var.bytes);
        if (dst == NULL) {
            return -1;
        }
        memcpy(dst, &value->var.count, 4);
        if (value->var.bytes > 0) {
            memcpy(dst + 4, value->var.data, value->var.bytes);
        }
        return 0;
    }
    }
    return -1;
}

/* The flag that says how a row keeps `created_ts_us` (see row.h). */
static uint8_t _created_flag(int64_t created_ts_us) {
    return created_ts_us == 0                    ? 0
           : created_ts_us == STORE_CREATED_NONE ? STORE_ROW_CREATED_NONE
                                                 : STORE_ROW_CREATED;
}

static size_t _created_bytes(int64_t created_ts_us) {
    return _created_flag(created_ts_us) == STORE_ROW_CREATED ? 8 : 0;
}

/* Writes the header and the key; the rest is the caller's. */
static void _write_head(struct store_row *dst, int64_t event_ts_us, int64_t created_ts_us,
                        const uint8_t *key, uint32_t key_len, uint8_t flags) {
    dst->event_ts_us = event_ts_us;
    dst->var_bytes = 0;
    dst->key_len = (uint16_t)key_len;
    dst->flags = (uint8_t)(flags | _created_flag(created_ts_us));
    dst->reserved = 0;
    if (dst->flags & STORE_ROW_CREATED) {
        memcpy(dst->data, &created_ts_us, 8);
    }
    uint8_t *at = dst->data + store_row_created_bytes(dst);
    memcpy(at, key, key_len);
    memset(at + key_len, 0, ALIGN8(key_len) - key_len);
}

/* Offset of the var section from the row start. */
static size_t _var_start(const struct store_schema *schema, uint32_t key_len,
                         size_t created_bytes) {
    return sizeof(struct store_row) + created_bytes + ALIGN8(key_len) + schema->fixed_size +
           schema->null_bytes;
}

/* Walks the present var values in feature order, as the row lays them out. */
static size_t _var_layout(const struct store_row_builder *b, size_t start, struct store_row *dst) {
    const struct store_schema *schema = b->schema;
    size_t pos = start;
    for (uint32_t i = 0; i < schema->nfeatures; i++) {
        const struct store_feature *feature = &schema->features[i];
        if (!store_type_is_var(feature->type) || (b->nulls[i >> 3] >> (i & 7)) & 1) {
            continue;
        }
        uint32_t ref[2];
        memcpy(ref, b->fixed + feature->fixed_offset, sizeof(ref));
        if (store_type_is_list(feature->type)) {
            pos = ALIGN8(pos);
        }
        if (dst != NULL) {
            uint8_t *base = (uint8_t *)dst;
            if (ref[1] > 0) {
                memcpy(base + pos, b->var + ref[0], ref[1]);
            }
            uint32_t row_ref[2] = {(uint32_t)pos, ref[1]};
            memcpy((uint8_t *)store_row_fixed(dst) + feature->fixed_offset, row_ref,
                   sizeof(row_ref));
        }
        pos += ref[1];
    }
    return pos;
}

size_t store_row_size(const struct store_row_builder *b, uint32_t key_len) {
    size_t start = _var_start(b->schema, key_len, _created_bytes(b->created_ts_us));
    return ALIGN8(_var_layout(b, start, NULL));
}

void store_row_write(const struct store_row_builder *b, const uint8_t *key, uint32_t key_len,
                     struct store_row *dst) {
    const struct store_schema *schema = b->schema;
    size_t start = _var_start(schema, key_len, _created_bytes(b->created_ts_us));
    _write_head(dst, b->event_ts_us, b->created_ts_us, key, key_len, 0);
    uint8_t *fixed = (uint8_t *)store_row_fixed(dst);
    memcpy(fixed, b->fixed, schema->fixed_size + schema->null_bytes);
    size_t end = _var_layout(b, start, dst);
    dst->var_bytes = (uint32_t)(end - start);
    /* Zero the tail padding so identical rows are identical bytes. */
    memset((uint8_t *)dst + end, 0, ALIGN8(end) - end);
}

size_t store_row_size_tombstone(uint32_t key_len, int64_t created_ts_us) {
    return sizeof(struct store_row) + _created_bytes(created_ts_us) + ALIGN8(key_len);
}

void store_row_write_tombstone(struct store_row *dst, const uint8_t *key, uint32_t key_len,
                               int64_t event_ts_us, int64_t created_ts_us) {
    _write_head(dst, event_ts_us, created_ts_us, key, key_len, STORE_ROW_TOMBSTONE);
}

size_t store_row_total_size(const struct store_schema *schema, const struct store_row *row) {
    size_t created_bytes = store_row_created_bytes(row);
    if (row->flags & STORE_ROW_TOMBSTONE) {
        return sizeof(struct store_row) + created_bytes + ALIGN8(row->key_len);
    }
    /* Lists may have been padded inside the var section; var_bytes counts that padding. */
    return ALIGN8(_var_start(schema, row->key_len, created_bytes) + row->var_bytes);
}

int store_row_check(const struct store_schema *schema, const struct store_row *row, size_t bytes,
                    char *why, size_t why_len) {
    const uint8_t known = STORE_ROW_TOMBSTONE | STORE_ROW_LIVE | STORE_ROW_CREATED |
                          STORE_ROW_CREATED_NONE | STORE_ROW_TABLE_PRIVATE;
    if (bytes < sizeof(struct store_row) || (row->flags & ~known) != 0 || row->key_len == 0 ||
        row->key_len > STORE_MAX_KEY_BYTES) {
        snprintf(why, why_len, "a row header that does not check (flags %#x, key of %u bytes)",
                 bytes < sizeof(struct store_row) ? 0u : row->flags,
                 bytes < sizeof(struct store_row) ? 0u : row->key_len);
        return -1;
    }
    if (store_row_total_size(schema, row) != bytes) {
        snprintf(why, why_len, "a row of %zu bytes whose lengths say %zu", bytes,
                 store_row_total_size(schema, row));
        return -1;
    }
    if (row->flags & STORE_ROW_TOMBSTONE) {
        return 0;
    }
    size_t var_start = _var_start(schema, row->key_len, store_row_created_bytes(row));
    size_t var_end = var_start + row->var_bytes;
    for (uint32_t i = 0; i < schema->nfeatures; i++) {
        const struct store_feature *f = &schema->features[i];
        if (!store_type_is_var(f->type) || store_row_is_null(schema, row, i)) {
            continue;
        }
        uint32_t ref[2];
        memcpy(ref, store_row_fixed(row) + f->fixed_offset, sizeof ref);
        size_t off = ref[0], len = ref[1];
        bool inside = off >= var_start && off <= var_end && len <= var_end - off;
        uint32_t element_size = store_type_element_size(f->type);
        bool packed = store_type_is_list(f->type) && element_size == 0;
        bool aligned =
            !store_type_is_list(f->type) || (off % 8 == 0 && (packed || len % element_size == 0));
        if (inside && aligned && packed) {
            const uint8_t *block = (const uint8_t *)row + off;
            uint32_t n = 0;
            size_t total = 0;
            inside = len >= 4;
            if (inside) {
                memcpy(&n, block, 4);
                inside = n <= (len - 4) / 4;
            }
            for (uint32_t j = 0; inside && j < n; j++) {
                uint32_t l;
                memcpy(&l, block + 4 + 4 * (size_t)j, 4);
                total += l;
            }
            inside = inside && total == len - 4 - 4 * (size_t)n;
        }
        if (inside && aligned && f->type == STORE_TYPE_BOOL_LIST) {
            const uint8_t *elements = (const uint8_t *)row + off;
            for (size_t j = 0; j < len; j++) {
                if (elements[j] > 1) {
                    snprintf(why, why_len, "feature %s: a bool list element of %u", f->name,
                             elements[j]);
                    return -1;
                }
            }
        }
        if (!inside || !aligned) {
            snprintf(why, why_len, "feature %s: a value outside its row (offset %zu, %zu bytes)",
                     f->name, off, len);
            return -1;
        }
    }
    return 0;
}

void store_row_get(const struct store_schema *schema, const struct store_row *row, uint32_t index,
                   struct store_value *out) {
    const struct store_feature *feature = &schema->features[index];
    const uint8_t *slot = store_row_fixed(row) + feature->fixed_offset;
    out->type = feature->type;
    switch (feature->type) {
    case STORE_TYPE_INT32:
        memcpy(&out->i32, slot, 4);
        return;
    case STORE_TYPE_FLOAT:
        memcpy(&out->f32, slot, 4);
        return;
    case STORE_TYPE_BOOL:
        out->b = *slot != 0;
        return;
    case STORE_TYPE_INT64:
    case STORE_TYPE_DOUBLE:
    case STORE_TYPE_TIMESTAMP:
        memcpy(&out->i64, slot, 8); /* same bytes for i64, f64 and ts_us */
        return;
    default:
        break;
    }
    uint32_t ref[2];
    memcpy(ref, slot, sizeof(ref));
    const uint8_t *data = (const uint8_t *)row + ref[0];
    out->var.data = data;
    out->var.bytes = ref[1];
    uint32_t element_size = store_type_element_size(feature->type);
    if (element_size > 0) {
        out->var.count = ref[1] / element_size;
    } else if (store_type_is_list(feature->type)) { /* packed: the count leads the block */
        memcpy(&out->var.count, data, 4);
        out->var.data = data + 4;
        out->var.bytes = ref[1] - 4;
    } else {
        out->var.count = 0;
    }
}
