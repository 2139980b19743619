#include "schema.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack: nothing to allocate */
#include <xxhash.h>

static const char *const type_names[STORE_TYPE_COUNT] = {
    [STORE_TYPE_INT32] = "int32",
    [STORE_TYPE_INT64] = "int64",
    [STORE_TYPE_FLOAT] = "float",
    [STORE_TYPE_DOUBLE] = "double",
    [STORE_TYPE_BOOL] = "bool",
    [STORE_TYPE_STRING] = "string",
    [STORE_TYPE_BYTES] = "bytes",
    [STORE_TYPE_TIMESTAMP] = "timestamp",
    [STORE_TYPE_FLOAT_LIST] = "float_list",
    [STORE_TYPE_INT64_LIST] = "int64_list",
    [STORE_TYPE_STRING_LIST] = "string_list",
    [STORE_TYPE_INT32_LIST] = "int32_list",
    [STORE_TYPE_DOUBLE_LIST] = "double_list",
    [STORE_TYPE_BOOL_LIST] = "bool_list",
    [STORE_TYPE_BYTES_LIST] = "bytes_list",
    [STORE_TYPE_TIMESTAMP_LIST] = "timestamp_list",
};

/* Each list type's element type; scalars map to themselves. */
static const enum store_type element_types[STORE_TYPE_COUNT] = {
    [STORE_TYPE_INT32] = STORE_TYPE_INT32,
    [STORE_TYPE_INT64] = STORE_TYPE_INT64,
    [STORE_TYPE_FLOAT] = STORE_TYPE_FLOAT,
    [STORE_TYPE_DOUBLE] = STORE_TYPE_DOUBLE,
    [STORE_TYPE_BOOL] = STORE_TYPE_BOOL,
    [STORE_TYPE_STRING] = STORE_TYPE_STRING,
    [STORE_TYPE_BYTES] = STORE_TYPE_BYTES,
    [STORE_TYPE_TIMESTAMP] = STORE_TYPE_TIMESTAMP,
    [STORE_TYPE_FLOAT_LIST] = STORE_TYPE_FLOAT,
    [STORE_TYPE_INT64_LIST] = STORE_TYPE_INT64,
    [STORE_TYPE_STRING_LIST] = STORE_TYPE_STRING,
    [STORE_TYPE_INT32_LIST] = STORE_TYPE_INT32,
    [STORE_TYPE_DOUBLE_LIST] = STORE_TYPE_DOUBLE,
    [STORE_TYPE_BOOL_LIST] = STORE_TYPE_BOOL,
    [STORE_TYPE_BYTES_LIST] = STORE_TYPE_BYTES,
    [STORE_TYPE_TIMESTAMP_LIST] = STORE_TYPE_TIMESTAMP,
};

static void _fail(char *err, size_t err_len, const char *fmt, ...) {
    if (err == NULL || err_len == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

const char *store_type_name(enum store_type type) {
    return (unsigned)type < STORE_TYPE_COUNT ? type_names[type] : "?";
}

bool store_type_parse(const char *name, enum store_type *out) {
    for (int t = 0; t < STORE_TYPE_COUNT; t++) {
        if (strcmp(name, type_names[t]) == 0) {
            *out = (enum store_type)t;
            return true;
        }
    }
    return false;
}

const char *store_key_type_name(enum store_key_type type) {
    return type == STORE_KEY_INT64 ? "int64" : "string";
}

bool store_key_type_parse(const char *name, enum store_key_type *out) {
    if (strcmp(name, "int64") == 0) {
        *out = STORE_KEY_INT64;
        return true;
    }
    if (strcmp(name, "string") == 0) {
        *out = STORE_KEY_STRING;
        return true;
    }
    return false;
}

bool store_type_is_var(enum store_type type) {
    return type == STORE_TYPE_STRING || type == STORE_TYPE_BYTES || store_type_is_list(type);
}

bool store_type_is_list(enum store_type type) {
    return (unsigned)type < STORE_TYPE_COUNT && element_types[type] != type;
}

enum store_type store_type_element(enum store_type type) {
    return (unsigned)type < STORE_TYPE_COUNT ? element_types[type] : type;
}

bool store_type_list_of(enum store_type element, enum store_type *out) {
    for (int t = 0; t < STORE_TYPE_COUNT; t++) {
        if (element_types[t] == element && t != (int)element) {
            *out = (enum store_type)t;
            return true;
        }
    }
    return false;
}

uint32_t store_type_element_size(enum store_type type) {
    if (!store_type_is_list(type)) {
        return 0;
    }
    switch (element_types[type]) {
    case STORE_TYPE_STRING:
    case STORE_TYPE_BYTES:
        return 0; /* packed */
    case STORE_TYPE_BOOL:
        return 1;
    case STORE_TYPE_INT32:
    case STORE_TYPE_FLOAT:
        return 4;
    default:
        return 8;
    }
}

bool store_type_has_mean(enum store_type type) {
    return type == STORE_TYPE_INT32 || type == STORE_TYPE_INT64 || type == STORE_TYPE_FLOAT ||
           type == STORE_TYPE_DOUBLE;
}

uint32_t store_type_fixed_size(enum store_type type) {
    switch (type) {
    case STORE_TYPE_INT32:
    case STORE_TYPE_FLOAT:
        return 4;
    case STORE_TYPE_BOOL:
        return 1;
    default:
        return 8; /* int64, double, timestamp, and {u32 offset, u32 length} of var types */
    }
}

struct store_schema *store_schema_create(const char *view, int64_t ttl_us) {
    struct store_schema *schema = calloc(1, sizeof(*schema));
    if (schema == NULL) {
        return NULL;
    }
    schema->view = strdup(view);
    if (schema->view == NULL) {
        free(schema);
        return NULL;
    }
    schema->ttl_us = ttl_us;
    return schema;
}

static void _free_literal(struct store_feature *feature) {
    if (feature->default_kind == STORE_DEFAULT_LITERAL && store_type_is_var(feature->type)) {
        free((void *)feature->default_literal.var.data);
    }
}

void store_schema_destroy(struct store_schema *schema) {
    if (schema == NULL) {
        return;
    }
    for (uint32_t i = 0; i < schema->nkeys; i++) {
        free(schema->keys[i].name);
    }
    for (uint32_t i = 0; i < schema->nfeatures; i++) {
        _free_literal(&schema->features[i]);
        free(schema->features[i].name);
    }
    free(schema->features);
    free(schema->view);
    free(schema);
}

static bool _name_taken(const struct store_schema *schema, const char *name) {
    for (uint32_t i = 0; i < schema->nkeys; i++) {
        if (strcmp(schema->keys[i].name, name) == 0) {
            return true;
        }
    }
    return store_schema_feature_index(schema, name) >= 0;
}

int store_schema_add_key(struct store_schema *schema, const char *name, enum store_key_type type,
                         char *err, size_t err_len) {
    if (schema->finalized) {
        _fail(err, err_len, "view %s: schema already finalized", schema->view);
        return -1;
    }
    if (schema->nkeys == STORE_MAX_JOIN_KEYS) {
        _fail(err, err_len, "view %s: more than %d join keys", schema->view, STORE_MAX_JOIN_KEYS);
        return -1;
    }
    if (_name_taken(schema, name)) {
        _fail(err, err_len, "view %s: duplicate name \"%s\"", schema->view, name);
        return -1;
    }
    char *copy = strdup(name);
    if (copy == NULL) {
        _fail(err, err_len, "out of memory");
        return -1;
    }
    schema->keys[schema->nkeys].name = copy;
    schema->keys[schema->nkeys].type = type;
    schema->nkeys++;
    return 0;
}

int store_schema_add_feature(struct store_schema *schema, const char *name, enum store_type type,
                             char *err, size_t err_len) {
    if (schema->finalized) {
        _fail(err, err_len, "view %s: schema already finalized", schema->view);
        return -1;
    }
    if ((unsigned)type >= STORE_TYPE_COUNT) {
        _fail(err, err_len, "view %s: feature %s: invalid type", schema->view, name);
        return -1;
    }
    if (schema->nfeatures == STORE_MAX_FEATURES) {
        _fail(err, err_len, "view %s: more than %d features", schema->view, STORE_MAX_FEATURES);
        return -1;
    }
    if (_name_taken(schema, name)) {
        _fail(err, err_len, "view %s: duplicate name \"%s\"", schema->view, name);
        return -1;
    }
    struct store_feature *grown =
        realloc(schema->features, (schema->nfeatures + 1) * sizeof(*schema->features));
    if (grown == NULL) {
        _fail(err, err_len, "out of memory");
        return -1;
    }
    schema->features = grown;
    struct store_feature *feature = &schema->features[schema->nfeatures];
    memset(feature, 0, sizeof(*feature));
    feature->name = strdup(name);
    if (feature->name == NULL) {
        _fail(err, err_len, "out of memory");
        return -1;
    }
    feature->type = type;
    feature->default_kind = STORE_DEFAULT_NONE;
    feature->default_literal.type = type;
    return (int)schema->nfeatures++;
}

static int _copy_literal(struct store_value *dst, const struct store_value *src) {
    *dst = *src;
    if (!store_type_is_var(src->type)) {
        return 0;
    }
    /* One spare byte so an empty literal still owns a distinct allocation. */
    void *data = malloc((size_t)src->var.bytes + 1);
    if (data == NULL) {
        return -1;
    }
    if (src->var.bytes > 0) {
        memcpy(data, src->var.data, src->var.bytes);
    }
    dst->var.data = data;
    return 0;
}

int store_schema_set_default(struct store_schema *schema, uint32_t index,
                             enum store_default_kind kind, const struct store_value *literal,
                             char *err, size_t err_len) {
    if (index >= schema->nfeatures) {
        _fail(err, err_len, "view %s: no feature #%u", schema->view, index);
        return -1;
    }
    struct store_feature *feature = &schema->features[index];
    if (kind == STORE_DEFAULT_MEAN && !store_type_has_mean(feature->type)) {
        _fail(err, err_len,
              "view %s: feature %s: default \"mean\" needs a numeric type "
              "(int32, int64, float, double), not %s",
              schema->view, feature->name, store_type_name(feature->type));
        return -1;
    }
    struct store_value copy = {.type = feature->type};
    if (kind == STORE_DEFAULT_LITERAL) {
        if (literal == NULL || literal->type != feature->type) {
            _fail(err, err_len, "view %s: feature %s: default must be a %s", schema->view,
                  feature->name, store_type_name(feature->type));
            return -1;
        }
        if (_copy_literal(&copy, literal) != 0) {
            _fail(err, err_len, "out of memory");
            return -1;
        }
    }
    _free_literal(feature);
    feature->default_kind = kind;
    feature->default_literal = copy;
    return 0;
}

int store_schema_finalize(struct store_schema *schema, char *err, size_t err_len) {
    if (schema->finalized) {
        return 0;
    }
    if (schema->nkeys == 0) {
        _fail(err, err_len, "view %s: needs at least one join key", schema->view);
        return -1;
    }
    if (schema->ttl_us < 0) {
        _fail(err, err_len, "view %s: ttl must not be negative", schema->view);
        return -1;
    }
    /* Widest values first so every value sits at its natural alignment without padding. */
    uint32_t offset = 0;
    for (uint32_t width = 8; width >= 1; width /= 2) {
        for (uint32_t i = 0; i < schema->nfeatures; i++) {
            if (store_type_fixed_size(schema->features[i].type) == width) {
                schema->features[i].fixed_offset = offset;
                offset += width;
            }
        }
    }
    schema->fixed_size = (offset + 7u) & ~7u;
    schema->null_bytes = (schema->nfeatures + 7u) / 8u;
    schema->finalized = true;
    return 0;
}

int store_schema_feature_index(const struct store_schema *schema, const char *name) {
    for (uint32_t i = 0; i < schema->nfeatures; i++) {
        if (strcmp(schema->features[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

bool store_schema_same_layout(const struct store_schema *a, const struct store_schema *b) {
    if (a->nkeys != b->nkeys || a->nfeatures != b->nfeatures || !a->finalized || !b->finalized) {
        return false;
    }
    for (uint32_t i = 0; i < a->nkeys; i++) {
        if (a->keys[i].type != b->keys[i].type || strcmp(a->keys[i].name, b->keys[i].name) != 0) {
            return false;
        }
    }
    for (uint32_t i = 0; i < a->nfeatures; i++) {
        const struct store_feature *fa = &a->features[i], *fb = &b->features[i];
        if (fa->type != fb->type || strcmp(fa->name, fb->name) != 0) {
            return false;
        }
    }
    return true;
}

uint64_t store_schema_layout_fingerprint(const struct store_schema *schema) {
    /* Each name with its NUL and each type as one byte, keys then features: two schemas hash
     * alike exactly when store_schema_same_layout() holds (up to a collision). */
    XXH3_state_t stack_state, *state = &stack_state;
    XXH3_64bits_reset(state);
    uint8_t counts[2] = {(uint8_t)schema->nkeys, 0};
    XXH3_64bits_update(state, counts, sizeof counts);
    for (uint32_t i = 0; i < schema->nkeys; i++) {
        uint8_t type = (uint8_t)schema->keys[i].type;
        XXH3_64bits_update(state, schema->keys[i].name, strlen(schema->keys[i].name) + 1);
        XXH3_64bits_update(state, &type, 1);
    }
    for (uint32_t i = 0; i < schema->nfeatures; i++) {
        uint8_t type = (uint8_t)schema->features[i].type;
        XXH3_64bits_update(state, schema->features[i].name, strlen(schema->features[i].name) + 1);
        XXH3_64bits_update(state, &type, 1);
    }
    return XXH3_64bits_digest(state);
}

struct store_schema *store_schema_clone(const struct store_schema *schema) {
    struct store_schema *copy = store_schema_create(schema->view, schema->ttl_us);
    if (copy == NULL) {
        return NULL;
    }
    for (uint32_t i = 0; i < schema->nkeys; i++) {
        if (store_schema_add_key(copy, schema->keys[i].name, schema->keys[i].type, NULL, 0) != 0) {
            goto fail;
        }
    }
    for (uint32_t i = 0; i < schema->nfeatures; i++) {
        const struct store_feature *f = &schema->features[i];
        if (store_schema_add_feature(copy, f->name, f->type, NULL, 0) < 0 ||
            store_schema_set_default(copy, i, f->default_kind, &f->default_literal, NULL, 0) != 0) {
            goto fail;
        }
    }
    if (schema->finalized && store_schema_finalize(copy, NULL, 0) != 0) {
        goto fail;
    }
    return copy;
fail:
    store_schema_destroy(copy);
    return NULL;
}

struct store_value store_value_zero(enum store_type type) {
    static const uint64_t empty = 0; /* aligned, readable, zero-length lists point here */
    struct store_value value;
    memset(&value, 0, sizeof(value));
    value.type = type;
    if (store_type_is_var(type)) {
        value.var.data = &empty;
    }
    return value;
}

struct store_value store_list_element(const struct store_value *list, uint32_t i) {
    struct store_value out;
    memset(&out, 0, sizeof out);
    out.type = store_type_element(list->type);
    uint32_t size = store_type_element_size(list->type);
    const uint8_t *at = (const uint8_t *)list->var.data + (size_t)size * i;
    switch (size) {
    case 0: {
        const char *data;
        store_packed_list_at(list, i, &data, &out.var.bytes);
        out.var.data = data;
        break;
    }
    case 1:
        out.b = *at != 0;
        break;
    case 4:
        memcpy(out.type == STORE_TYPE_INT32 ? (void *)&out.i32 : &out.f32, at, 4);
        break;
    default:
        memcpy(&out.i64, at, 8); /* int64, double and timestamp share the bytes */
        break;
    }
    return out;
}

void store_packed_list_at(const struct store_value *list, uint32_t i, const char **data,
                          uint32_t *len) {
    const uint8_t *block = list->var.data;
    uint32_t skip = 0;
    uint32_t n = list->var.count;
    for (uint32_t j = 0; j < i; j++) {
        uint32_t lj;
        memcpy(&lj, block + 4 * j, 4);
        skip += lj;
    }
    memcpy(len, block + 4 * i, 4);
    *data = (const char *)block + 4 * n + skip;
}
