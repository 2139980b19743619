/*
 * Default literals: `default:` values of features, parsed strictly and exactly. A literal that
 * does not fit its type is an error, never rounded, clamped or truncated (except that decimal
 * floats round to the nearest representable value, as strtod/strtof do).
 */
#include "config_internal.h"

#include "common/parse.h"
#include "store/schema.h"
#include "common/errors.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- defaults ---------------------------------------------------------------------------- */

/* Reads a scalar literal of scalar `type`; var data points into the document or *owned. */
static int _scalar_literal(struct config_ctx *ctx, const yaml_node_t *node, enum store_type type,
                           struct store_value *v, void **owned) {
    const char *text = config_scalar(ctx, node, NULL);
    if (text == NULL) {
        return -1;
    }
    char why[512];
    int rc = 0;
    int64_t i;
    switch (type) {
    case STORE_TYPE_INT32:
        rc = parse_int(text, INT32_MIN, INT32_MAX, "int32", &i, why, sizeof why);
        v->i32 = (int32_t)i;
        break;
    case STORE_TYPE_INT64:
        rc = parse_int(text, INT64_MIN, INT64_MAX, "int64", &v->i64, why, sizeof why);
        break;
    case STORE_TYPE_FLOAT:
        rc = parse_float(text, &v->f32, why, sizeof why);
        break;
    case STORE_TYPE_DOUBLE:
        rc = parse_double(text, &v->f64, why, sizeof why);
        break;
    case STORE_TYPE_BOOL:
        if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0) {
            v->b = text[0] == 't';
        } else {
            rc = errors_set(why, sizeof why, "invalid bool \"%.80s\" (expected true or false)",
                            text);
        }
        break;
    case STORE_TYPE_TIMESTAMP:
        rc = parse_timestamp(text, &v->ts_us, why, sizeof why);
        break;
    case STORE_TYPE_STRING:
        v->var.data = text;
        v->var.bytes = (uint32_t)node->data.scalar.length;
        v->var.count = 0;
        break;
    case STORE_TYPE_BYTES: {
        uint8_t *bytes;
        size_t n;
        rc = parse_base64(text, &bytes, &n, why, sizeof why);
        if (rc == 0) {
            *owned = bytes;
            v->var.data = bytes ? (const void *)bytes : (const void *)"";
            v->var.bytes = (uint32_t)n;
            v->var.count = 0;
        }
        break;
    }
    default:
        rc = errors_set(why, sizeof why, "not a scalar type");
    }
    if (rc != 0) {
        /* A quoted "zero"/"mean" is a literal by design; point at the keyword in case. */
        const char *hint = "";
        if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE &&
            (strcmp(text, "zero") == 0 || strcmp(text, "mean") == 0)) {
            hint = " (a quoted word is a literal; write the keyword unquoted)";
        }
        config_error(ctx, node, NULL, "%s%s", why, hint);
    }
    return rc;
}

/*
 * A list literal from a YAML sequence: each item is read as a literal of the element type, so
 * a list element takes exactly what a scalar default of that type takes.
 */
static int _list_literal(struct config_ctx *ctx, const yaml_node_t *seq, enum store_type type,
                         struct store_value *v, void **owned) {
    enum store_type element = store_type_element(type);
    uint32_t element_size = store_type_element_size(type); /* 0: packed (string, bytes) */
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    struct store_value *items = calloc(n + 1, sizeof *items);
    void **item_owned = calloc(n + 1, sizeof *item_owned);
    uint8_t *block = NULL;
    int rc = items != NULL && item_owned != NULL ? 0 : -1;
    if (rc != 0) {
        config_error(ctx, seq, NULL, "out of memory");
    }
    size_t bytes = element_size > 0 ? n * element_size : n * sizeof(uint32_t);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const yaml_node_t *item = config_node(ctx, seq->data.sequence.items.start[i]);
        size_t mark = config_path_push(ctx, "[%zu]", i);
        items[i].type = element;
        if (item->type != YAML_SCALAR_NODE) {
            config_error(ctx, item, NULL, "a %s element is a scalar", store_type_name(type));
            rc = -1;
        } else {
            rc = _scalar_literal(ctx, item, element, &items[i], &item_owned[i]);
        }
        if (rc == 0 && element_size == 0) {
            bytes += items[i].var.bytes;
        }
        config_path_pop(ctx, mark);
    }
    if (rc == 0 && bytes > UINT32_MAX) {
        config_error(ctx, seq, NULL, "list too large");
        rc = -1;
    }
    if (rc == 0 && (block = malloc(bytes + 1)) == NULL) {
        config_error(ctx, seq, NULL, "out of memory");
        rc = -1;
    }
    size_t item_off = n * sizeof(uint32_t);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const struct store_value *x = &items[i];
        if (element_size == 0) {
            uint32_t len = x->var.bytes;
            memcpy(block + i * sizeof len, &len, sizeof len);
            if (len > 0) {
                memcpy(block + item_off, x->var.data, len);
            }
            item_off += len;
        } else if (element == STORE_TYPE_BOOL) {
            block[i] = x->b ? 1 : 0;
        } else if (element_size == 4) {
            memcpy(block + i * 4, element == STORE_TYPE_INT32 ? (const void *)&x->i32 : &x->f32, 4);
        } else {
            memcpy(block + i * 8, &x->i64, 8); /* int64, double and timestamp share the bytes */
        }
    }
    for (size_t i = 0; item_owned != NULL && i < n; i++) {
        free(item_owned[i]);
    }
    free(item_owned);
    free(items);
    if (rc != 0) {
        free(block);
        return -1;
    }
    *owned = block;
    v->var.data = block;
    v->var.bytes = (uint32_t)bytes;
    v->var.count = (uint32_t)n;
    return 0;
}

int config_default_parse(struct config_ctx *ctx, const yaml_node_t *node, enum store_type type,
                         enum store_default_kind *kind, struct store_value *literal, void **owned) {
    *owned = NULL;
    memset(literal, 0, sizeof *literal);
    literal->type = type;
    if (config_is_plain(node, "zero")) {
        *kind = STORE_DEFAULT_ZERO;
        return 0;
    }
    if (config_is_plain(node, "mean")) {
        *kind = STORE_DEFAULT_MEAN; /* the schema rejects it for non-numeric types */
        return 0;
    }
    if (config_is_null(node)) {
        config_error(ctx, node, NULL,
                     "empty default; leave the key out for no default, or write zero");
        return -1;
    }
    *kind = STORE_DEFAULT_LITERAL;
    if (store_type_is_list(type)) {
        if (node->type != YAML_SEQUENCE_NODE) {
            config_error(ctx, node, NULL, "a %s default is a sequence such as [a, b], or zero",
                         store_type_name(type));
            return -1;
        }
        return _list_literal(ctx, node, type, literal, owned);
    }
    if (node->type != YAML_SCALAR_NODE) {
        config_error(ctx, node, NULL, "a %s default is a scalar, not %s", store_type_name(type),
                     node->type == YAML_SEQUENCE_NODE ? "a sequence" : "a mapping");
        return -1;
    }
    return _scalar_literal(ctx, node, type, literal, owned);
}
