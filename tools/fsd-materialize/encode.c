/*
 * Rows of the local table into PushSnapshotRequest messages, with protobuf-c's structs.
 *
 *   encoder ── rows[n] ──> keys[n * nkeys]        (KeyPart: int64, or bytes into the row's key)
 *           │          └─> slots[n * nfeatures]   (FeatureValue + Value + list header; values
 *           │                                      point into the row: nothing is copied)
 *           └─ take(): pack rows[0..n) behind the view name (first message only) into `out`
 *
 * Arrays are allocated once for batch_rows rows and reused; only string, bytes and bool lists
 * need per-value element arrays, freed when the batch is taken. A batch ends at batch_rows rows or
 * when the next row would take the message over max_message_bytes, whichever comes first.
 */
#include "materialize.h"

#include <stdlib.h>
#include <string.h>

#include "fsd/v1/feature_service.pb-c.h"
#include "store/key.h"
#include "store/row.h"
#include "store/schema.h"

/* One feature value of one row, with whatever it needs besides the row's bytes. */
struct slot {
    Fsd__V1__FeatureValue fv;
    Fsd__V1__Value value;
    union {
        Fsd__V1__FloatList floats;
        Fsd__V1__Int64List ints;
        Fsd__V1__StringList strings;
        Fsd__V1__Int32List ints32;
        Fsd__V1__DoubleList doubles;
        Fsd__V1__BoolList bools;
        Fsd__V1__BytesList blobs;
        Fsd__V1__TimestampList stamps;
    } list;
};

struct fm_encoder {
    const struct store_schema *schema;
    uint32_t batch_rows;
    uint64_t max_message_bytes;
    bool named;                  /* a message carrying the view's name was taken */
    const char *stream_position; /* sent with the name; NULL = none */
    size_t n;
    uint64_t bytes; /* the message so far: view name and rows, with tags and lengths */
    Fsd__V1__Row *rows;
    Fsd__V1__Row **row_ptrs;
    Fsd__V1__KeyPart *parts;
    Fsd__V1__KeyPart **part_ptrs;
    struct slot *slots;
    Fsd__V1__FeatureValue **fv_ptrs;
    void **lists; /* list element arrays of this batch */
    size_t nlists, lists_cap;
    uint8_t *out;
    size_t out_cap;
};

static size_t _varint_bytes(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Bytes a length-delimited field of `len` bytes takes (tags 1..15 are one byte). */
static uint64_t _field_bytes(uint64_t len) {
    return 1 + _varint_bytes(len) + len;
}

static void _start_batch(struct fm_encoder *enc) {
    for (size_t i = 0; i < enc->nlists; i++) {
        free(enc->lists[i]);
    }
    enc->nlists = 0;
    enc->n = 0;
    enc->bytes = enc->named ? 0 : _field_bytes(strlen(enc->schema->view));
    if (!enc->named && enc->stream_position != NULL) {
        enc->bytes += _field_bytes(strlen(enc->stream_position));
    }
}

void fm_encoder_set_stream_position(struct fm_encoder *enc, const char *position) {
    enc->stream_position = position;
    _start_batch(enc); /* no rows yet: recounts the first message's header */
}

struct fm_encoder *fm_encoder_create(const struct store_schema *schema, uint32_t batch_rows,
                                     uint64_t max_message_bytes) {
    struct fm_encoder *enc = calloc(1, sizeof(*enc));
    if (enc == NULL) {
        return NULL;
    }
    size_t nkeys = (size_t)batch_rows * schema->nkeys;
    size_t nslots = (size_t)batch_rows * schema->nfeatures;
    enc->schema = schema;
    enc->batch_rows = batch_rows;
    enc->max_message_bytes = max_message_bytes;
    enc->rows = calloc(batch_rows, sizeof(*enc->rows));
    enc->row_ptrs = calloc(batch_rows, sizeof(*enc->row_ptrs));
    enc->parts = calloc(nkeys, sizeof(*enc->parts));
    enc->part_ptrs = calloc(nkeys, sizeof(*enc->part_ptrs));
    enc->slots = calloc(nslots + 1, sizeof(*enc->slots));
    enc->fv_ptrs = calloc(nslots + 1, sizeof(*enc->fv_ptrs));
    if (enc->rows == NULL || enc->row_ptrs == NULL || enc->parts == NULL ||
        enc->part_ptrs == NULL || enc->slots == NULL || enc->fv_ptrs == NULL) {
        fm_encoder_destroy(enc);
        return NULL;
    }
    _start_batch(enc);
    return enc;
}

void fm_encoder_destroy(struct fm_encoder *enc) {
    if (enc == NULL) {
        return;
    }
    _start_batch(enc); /* frees the batch's lists */
    free(enc->rows);
    free(enc->row_ptrs);
    free(enc->parts);
    free(enc->part_ptrs);
    free(enc->slots);
    free(enc->fv_ptrs);
    free(enc->lists);
    free(enc->out);
    free(enc);
}

size_t fm_encoder_rows(const struct fm_encoder *enc) {
    return enc->n;
}

/* `bytes` of memory freed when the batch is taken; NULL for 0 bytes or out of memory. */
static void *_batch_alloc(struct fm_encoder *enc, size_t bytes) {
    if (bytes == 0) {
        return NULL;
    }
    if (enc->nlists == enc->lists_cap) {
        size_t cap = enc->lists_cap ? enc->lists_cap * 2 : 256;
        void **grown = realloc(enc->lists, cap * sizeof(*grown));
        if (grown == NULL) {
            return NULL;
        }
        enc->lists = grown;
        enc->lists_cap = cap;
    }
    void *mem = malloc(bytes);
    if (mem != NULL) {
        enc->lists[enc->nlists++] = mem;
    }
    return mem;
}

/* Points a Value at feature `f` of `row` (not null). -1: out of memory. */
static int _set_value(struct fm_encoder *enc, struct slot *s, const struct store_row *row,
                      uint32_t f) {
    struct store_value v;
    store_row_get(enc->schema, row, f, &v);
    Fsd__V1__Value *out = &s->value;
    switch (v.type) {
    case STORE_TYPE_INT32:
        out->kind_case = FSD__V1__VALUE__KIND_INT32_VALUE;
        out->int32_value = v.i32;
        return 0;
    case STORE_TYPE_INT64:
        out->kind_case = FSD__V1__VALUE__KIND_INT64_VALUE;
        out->int64_value = v.i64;
        return 0;
    case STORE_TYPE_FLOAT:
        out->kind_case = FSD__V1__VALUE__KIND_FLOAT_VALUE;
        out->float_value = v.f32;
        return 0;
    case STORE_TYPE_DOUBLE:
        out->kind_case = FSD__V1__VALUE__KIND_DOUBLE_VALUE;
        out->double_value = v.f64;
        return 0;
    case STORE_TYPE_BOOL:
        out->kind_case = FSD__V1__VALUE__KIND_BOOL_VALUE;
        out->bool_value = v.b;
        return 0;
    case STORE_TYPE_TIMESTAMP:
        out->kind_case = FSD__V1__VALUE__KIND_TIMESTAMP_US;
        out->timestamp_us = v.ts_us;
        return 0;
    case STORE_TYPE_STRING:
        out->kind_case = FSD__V1__VALUE__KIND_STRING_VALUE;
        out->string_value = (ProtobufCBinaryData){v.var.bytes, (uint8_t *)v.var.data};
        return 0;
    case STORE_TYPE_BYTES:
        out->kind_case = FSD__V1__VALUE__KIND_BYTES_VALUE;
        out->bytes_value = (ProtobufCBinaryData){v.var.bytes, (uint8_t *)v.var.data};
        return 0;
    case STORE_TYPE_FLOAT_LIST:
        fsd__v1__float_list__init(&s->list.floats);
        s->list.floats.n_values = v.var.count;
        s->list.floats.values = (float *)v.var.data; /* 8-byte aligned in the row */
        out->kind_case = FSD__V1__VALUE__KIND_FLOAT_LIST;
        out->float_list = &s->list.floats;
        return 0;
    case STORE_TYPE_INT64_LIST:
        fsd__v1__int64_list__init(&s->list.ints);
        s->list.ints.n_values = v.var.count;
        s->list.ints.values = (int64_t *)v.var.data;
        out->kind_case = FSD__V1__VALUE__KIND_INT64_LIST;
        out->int64_list = &s->list.ints;
        return 0;
    case STORE_TYPE_INT32_LIST:
        fsd__v1__int32_list__init(&s->list.ints32);
        s->list.ints32.n_values = v.var.count;
        s->list.ints32.values = (int32_t *)v.var.data;
        out->kind_case = FSD__V1__VALUE__KIND_INT32_LIST;
        out->int32_list = &s->list.ints32;
        return 0;
    case STORE_TYPE_DOUBLE_LIST:
        fsd__v1__double_list__init(&s->list.doubles);
        s->list.doubles.n_values = v.var.count;
        s->list.doubles.values = (double *)v.var.data;
        out->kind_case = FSD__V1__VALUE__KIND_DOUBLE_LIST;
        out->double_list = &s->list.doubles;
        return 0;
    case STORE_TYPE_TIMESTAMP_LIST:
        fsd__v1__timestamp_list__init(&s->list.stamps);
        s->list.stamps.n_values = v.var.count;
        s->list.stamps.values = (int64_t *)v.var.data;
        out->kind_case = FSD__V1__VALUE__KIND_TIMESTAMP_LIST;
        out->timestamp_list = &s->list.stamps;
        return 0;
    case STORE_TYPE_BOOL_LIST: {
        /* protobuf-c's booleans are ints, the row's bytes */
        fsd__v1__bool_list__init(&s->list.bools);
        protobuf_c_boolean *elems = _batch_alloc(enc, v.var.count * sizeof(*elems));
        if (v.var.count > 0 && elems == NULL) {
            return -1;
        }
        for (uint32_t i = 0; i < v.var.count; i++) {
            elems[i] = ((const uint8_t *)v.var.data)[i] != 0;
        }
        s->list.bools.n_values = v.var.count;
        s->list.bools.values = elems;
        out->kind_case = FSD__V1__VALUE__KIND_BOOL_LIST;
        out->bool_list = &s->list.bools;
        return 0;
    }
    case STORE_TYPE_STRING_LIST:
    case STORE_TYPE_BYTES_LIST: {
        ProtobufCBinaryData *elems = _batch_alloc(enc, v.var.count * sizeof(*elems));
        if (v.var.count > 0 && elems == NULL) {
            return -1;
        }
        for (uint32_t i = 0, at = 0; i < v.var.count; i++) {
            uint32_t len;
            memcpy(&len, (const uint8_t *)v.var.data + 4 * (size_t)i, 4);
            elems[i] =
                (ProtobufCBinaryData){len, (uint8_t *)v.var.data + 4 * (size_t)v.var.count + at};
            at += len;
        }
        if (v.type == STORE_TYPE_STRING_LIST) {
            fsd__v1__string_list__init(&s->list.strings);
            s->list.strings.n_values = v.var.count;
            s->list.strings.values = elems;
            out->kind_case = FSD__V1__VALUE__KIND_STRING_LIST;
            out->string_list = &s->list.strings;
        } else {
            fsd__v1__bytes_list__init(&s->list.blobs);
            s->list.blobs.n_values = v.var.count;
            s->list.blobs.values = elems;
            out->kind_case = FSD__V1__VALUE__KIND_BYTES_LIST;
            out->bytes_list = &s->list.blobs;
        }
        return 0;
    }
    }
    return -1;
}

enum fm_add fm_encoder_add(struct fm_encoder *enc, const struct store_row *row) {
    const struct store_schema *schema = enc->schema;
    if (enc->n == enc->batch_rows) {
        return FM_FULL;
    }
    size_t n = enc->n;
    size_t nlists_before = enc->nlists;
    Fsd__V1__Row *r = &enc->rows[n];
    fsd__v1__row__init(r);
    r->event_timestamp_us = row->event_ts_us;
    r->created_timestamp_us = store_row_created_us(row);

    struct store_key_part decoded[STORE_MAX_JOIN_KEYS];
    if (store_key_decode(schema, store_row_key(row), row->key_len, decoded) != 0) {
        return FM_NO_MEMORY; /* cannot happen for a row the table stored */
    }
    Fsd__V1__KeyPart **part_ptrs = &enc->part_ptrs[n * schema->nkeys];
    for (uint32_t k = 0; k < schema->nkeys; k++) {
        Fsd__V1__KeyPart *part = &enc->parts[n * schema->nkeys + k];
        fsd__v1__key_part__init(part);
        part->name = schema->keys[k].name;
        if (decoded[k].type == STORE_KEY_INT64) {
            part->value_case = FSD__V1__KEY_PART__VALUE_INT64_VALUE;
            part->int64_value = decoded[k].i64;
        } else {
            part->value_case = FSD__V1__KEY_PART__VALUE_STRING_VALUE;
            part->string_value =
                (ProtobufCBinaryData){decoded[k].str_len, (uint8_t *)decoded[k].str};
        }
        part_ptrs[k] = part;
    }
    r->n_keys = schema->nkeys;
    r->keys = part_ptrs;

    /* Null features are left out: a feature not listed is null. */
    Fsd__V1__FeatureValue **fvs = &enc->fv_ptrs[n * schema->nfeatures];
    size_t nvalues = 0;
    for (uint32_t f = 0; f < schema->nfeatures; f++) {
        if (store_row_is_null(schema, row, f)) {
            continue;
        }
        struct slot *s = &enc->slots[n * schema->nfeatures + f];
        fsd__v1__feature_value__init(&s->fv);
        fsd__v1__value__init(&s->value);
        s->fv.name = schema->features[f].name;
        s->fv.value = &s->value;
        if (_set_value(enc, s, row, f) != 0) {
            return FM_NO_MEMORY;
        }
        fvs[nvalues++] = &s->fv;
    }
    r->n_values = nvalues;
    r->values = fvs;

    uint64_t bytes = _field_bytes(fsd__v1__row__get_packed_size(r));
    if (enc->bytes + bytes > enc->max_message_bytes) {
        /* Give back what this row took; it goes first into the next batch. */
        while (enc->nlists > nlists_before) {
            free(enc->lists[--enc->nlists]);
        }
        return n == 0 ? FM_TOO_BIG : FM_FULL;
    }
    enc->row_ptrs[n] = r;
    enc->bytes += bytes;
    enc->n++;
    return FM_ADDED;
}

const uint8_t *fm_encoder_take(struct fm_encoder *enc, size_t *len) {
    Fsd__V1__PushSnapshotRequest req = FSD__V1__PUSH_SNAPSHOT_REQUEST__INIT;
    if (!enc->named) {
        req.view = enc->schema->view;
        if (enc->stream_position != NULL) {
            req.stream_position = (char *)enc->stream_position;
        }
    }
    req.n_rows = enc->n;
    req.rows = enc->row_ptrs;
    size_t need = fsd__v1__push_snapshot_request__get_packed_size(&req);
    if (need >= enc->out_cap) {
        uint8_t *grown = realloc(enc->out, need + 1);
        if (grown == NULL) {
            return NULL;
        }
        enc->out = grown;
        enc->out_cap = need + 1;
    }
    *len = fsd__v1__push_snapshot_request__pack(&req, enc->out);
    enc->named = true;
    _start_batch(enc);
    return enc->out;
}
