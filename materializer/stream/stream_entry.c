/*
 * Stream entries to rows: the two entry formats a view's `stream:` section may name.
 *
 * format: fields (the default). Every field of the entry must mean something to the view:
 *
 *   <join key>                 int64: a decimal integer; string: the bytes, valid UTF-8
 *   <event_timestamp_field>    required: integer microseconds since the epoch, or RFC 3339
 *                              (2024-05-01T12:00:00.25Z); > 0 and at most an hour ahead
 *   <created_timestamp_field>  optional, same forms: breaks ties between equal event times
 *   <feature>                  its value as text (below); a feature left out is null
 *   __delete                   1 or true: a tombstone (no features allowed); 0 or false: not
 *
 *   int32, int64    decimal integer in range          float, double   decimal number
 *   bool            true, false, 1 or 0               timestamp       as the event time
 *   string          the bytes, valid UTF-8            bytes           the bytes, as they are
 *   lists                    a JSON array of the element type, [] for empty:
 *     int32_list, int64_list, float_list, double_list   numbers: [0.5, -1, 2e3]
 *     bool_list        [true, false]        string_list   strings: ["a", "b\"c", "\u00e9"]
 *     bytes_list       base64 strings: ["aGk=", ""]
 *     timestamp_list   integer microseconds or RFC 3339 strings: [1714564800000000,
 * "2024-05-01T12:00:00Z"]
 *
 *   XADD user_updates '*' user_id 42 event_ts 1714564800000000 ctr_7d 0.25 tags '["a","b"]'
 *   XADD user_updates '*' user_id 42 event_ts 2024-05-01T12:00:01Z __delete 1
 *
 * format: protobuf. One field (row_field, default "row") holding an encoded fsd.v1.Row, the
 * message PushRows takes, checked by the same rules (proto_row.c).
 *
 * Anything else (an unknown or repeated field, a value that does not parse, a missing key or
 * event time) makes the entry bad: the caller skips it and logs the reason returned here.
 */
#include "stream_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "fsd/v1/feature_service.pb-c.h"
#include "materializer/proto_row.h"
#include "store/row.h"
#include "common/parse.h"

enum field_kind {
    FIELD_KEY,
    FIELD_FEATURE,
    FIELD_EVENT_TS,
    FIELD_CREATED_TS,
    FIELD_DELETE,
};

/* An open-addressing map from field name to its meaning; `ordinal` indexes `seen`. */
struct field_slot {
    char *name; /* NULL: empty slot */
    uint32_t len;
    enum field_kind kind;
    uint32_t index; /* join key or feature index */
    uint32_t ordinal;
};

struct mat_stream_parser {
    enum mat_stream_format format;
    char row_field[MAT_STREAM_FIELD_LEN];
    size_t row_field_len;
    char event_field[MAT_STREAM_FIELD_LEN];
    uint32_t nkeys;
    enum store_key_type key_types[STORE_MAX_JOIN_KEYS];
    uint32_t key_ordinals[STORE_MAX_JOIN_KEYS];
    uint32_t nfeatures;
    enum store_type *feature_types;
    struct field_slot *slots;
    uint32_t mask;
    uint32_t nnames;
    uint32_t *seen; /* seen[ordinal] == generation: the field was given in this entry */
    uint32_t generation;
    /* scratch, reused from entry to entry */
    char text[128]; /* a NUL-terminated copy of a number or timestamp */
    size_t list_cap;
    uint8_t *elements; /* an array list's elements, 8 bytes each at most */
    uint32_t *offsets;
    uint32_t *lens;
    const char **strs;
    char *bytes;
    size_t bytes_len, bytes_cap;
};

__attribute__((format(printf, 3, 4))) static int _bad(char *err, size_t err_len, const char *fmt,
                                                      ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    return MAT_STREAM_ENTRY_BAD;
}

/* ---- UTF-8 and IDs ------------------------------------------------------------------------- */

static bool _u64(const char *s, size_t len, uint64_t *out) {
    if (len == 0 || len > 20) {
        return false;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool mat_stream_id_parse(const char *text, size_t len, struct mat_stream_id *id) {
    const char *dash = memchr(text, '-', len);
    if (dash == NULL) {
        id->seq = 0;
        return _u64(text, len, &id->ms);
    }
    return _u64(text, (size_t)(dash - text), &id->ms) &&
           _u64(dash + 1, len - (size_t)(dash - text) - 1, &id->seq);
}

bool mat_stream_position_normalize(const char *text, char out[MAT_STREAM_ID_LEN]) {
    struct mat_stream_id id;
    if (!mat_stream_id_parse(text, strlen(text), &id)) {
        return false;
    }
    snprintf(out, MAT_STREAM_ID_LEN, "%" PRIu64 "-%" PRIu64, id.ms, id.seq);
    return true;
}

int mat_stream_id_cmp(struct mat_stream_id a, struct mat_stream_id b) {
    if (a.ms != b.ms) {
        return a.ms < b.ms ? -1 : 1;
    }
    return a.seq < b.seq ? -1 : a.seq > b.seq;
}

/* ---- the parser ---------------------------------------------------------------------------- */

static uint32_t _hash(const char *name, size_t len) {
    return (uint32_t)store_key_hash((const uint8_t *)name, (uint32_t)len);
}

static struct field_slot *_lookup(const struct mat_stream_parser *p, const char *name, size_t len) {
    for (uint32_t i = _hash(name, len) & p->mask;; i = (i + 1) & p->mask) {
        struct field_slot *slot = &p->slots[i];
        if (slot->name == NULL) {
            return NULL;
        }
        if (slot->len == len && memcmp(slot->name, name, len) == 0) {
            return slot;
        }
    }
}

static int _add_name(struct mat_stream_parser *p, const char *name, enum field_kind kind,
                     uint32_t index) {
    size_t len = strlen(name);
    if (len == 0 || _lookup(p, name, len) != NULL) {
        return 0; /* the config rejects collisions; a duplicate here keeps the first meaning */
    }
    uint32_t i = _hash(name, len) & p->mask;
    while (p->slots[i].name != NULL) {
        i = (i + 1) & p->mask;
    }
    p->slots[i] = (struct field_slot){strdup(name), (uint32_t)len, kind, index, p->nnames};
    if (p->slots[i].name == NULL) {
        return -1;
    }
    if (kind == FIELD_KEY) {
        p->key_ordinals[index] = p->nnames;
    }
    p->nnames++;
    return 0;
}

struct mat_stream_parser *mat_stream_parser_create(const struct store_schema *schema,
                                                   const struct mat_stream_config *stream) {
    struct mat_stream_parser *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return NULL;
    }
    p->format = stream->format;
    snprintf(p->row_field, sizeof p->row_field, "%s", stream->row_field);
    p->row_field_len = strlen(p->row_field);
    snprintf(p->event_field, sizeof p->event_field, "%s", stream->event_timestamp_field);
    p->nkeys = schema->nkeys;
    p->nfeatures = schema->nfeatures;
    uint32_t names = schema->nkeys + schema->nfeatures + 3;
    uint32_t cap = 8;
    while (cap < 2 * names) {
        cap *= 2;
    }
    p->mask = cap - 1;
    p->slots = calloc(cap, sizeof(*p->slots));
    p->seen = calloc(names, sizeof(*p->seen));
    p->feature_types = calloc(schema->nfeatures + 1, sizeof(*p->feature_types));
    bool ok = p->slots != NULL && p->seen != NULL && p->feature_types != NULL;
    for (uint32_t k = 0; ok && k < schema->nkeys; k++) {
        p->key_types[k] = schema->keys[k].type;
        ok = _add_name(p, schema->keys[k].name, FIELD_KEY, k) == 0;
    }
    for (uint32_t f = 0; ok && f < schema->nfeatures; f++) {
        p->feature_types[f] = schema->features[f].type;
        ok = _add_name(p, schema->features[f].name, FIELD_FEATURE, f) == 0;
    }
    if (ok && stream->format == MAT_STREAM_FIELDS) {
        ok = _add_name(p, stream->event_timestamp_field, FIELD_EVENT_TS, 0) == 0 &&
             _add_name(p, stream->created_timestamp_field, FIELD_CREATED_TS, 0) == 0 &&
             _add_name(p, MAT_STREAM_DELETE_FIELD, FIELD_DELETE, 0) == 0;
    }
    if (!ok) {
        mat_stream_parser_destroy(p);
        return NULL;
    }
    return p;
}

void mat_stream_parser_destroy(struct mat_stream_parser *p) {
    if (p == NULL) {
        return;
    }
    for (uint32_t i = 0; p->slots != NULL && i <= p->mask; i++) {
        free(p->slots[i].name);
    }
    free(p->slots);
    free(p->seen);
    free(p->feature_types);
    free(p->elements);
    free(p->offsets);
    free(p->lens);
    free(p->strs);
    free(p->bytes);
    free(p);
}

/* Grows the list scratch to hold `n` elements. */
static int _reserve_list(struct mat_stream_parser *p, size_t n) {
    if (n <= p->list_cap) {
        return 0;
    }
    size_t cap = p->list_cap ? p->list_cap : 16;
    while (cap < n) {
        cap *= 2;
    }
    uint8_t *elements = realloc(p->elements, cap * 8);
    if (elements != NULL) {
        p->elements = elements;
    }
    uint32_t *offsets = realloc(p->offsets, cap * sizeof(*offsets));
    if (offsets != NULL) {
        p->offsets = offsets;
    }
    uint32_t *lens = realloc(p->lens, cap * sizeof(*lens));
    if (lens != NULL) {
        p->lens = lens;
    }
    const char **strs = realloc(p->strs, cap * sizeof(*strs));
    if (strs != NULL) {
        p->strs = strs;
    }
    if (elements == NULL || offsets == NULL || lens == NULL || strs == NULL) {
        return -1;
    }
    p->list_cap = cap;
    return 0;
}

/* List scratch for protobuf rows (mat_proto_row_scratch_fn): the element buffer, which holds
 * 8 bytes per element of list_cap. */
static void *_proto_scratch(void *ctx, size_t bytes) {
    struct mat_stream_parser *p = ctx;
    return _reserve_list(p, bytes / 8 + 1) == 0 ? p->elements : NULL;
}

static int _append_bytes(struct mat_stream_parser *p, const void *data, size_t n) {
    if (p->bytes == NULL || p->bytes_len + n > p->bytes_cap) {
        size_t cap = p->bytes_cap ? p->bytes_cap : 256;
        while (cap < p->bytes_len + n) {
            cap *= 2;
        }
        char *grown = realloc(p->bytes, cap);
        if (grown == NULL) {
            return -1;
        }
        p->bytes = grown;
        p->bytes_cap = cap;
    }
    if (n > 0) {
        memcpy(p->bytes + p->bytes_len, data, n);
        p->bytes_len += n;
    }
    return 0;
}

/* Copies a value into p->text, NUL-terminated, for the text parsers. */
static int _text(struct mat_stream_parser *p, const struct field_slot *slot, const char *value,
                 size_t len, char *err, size_t err_len) {
    if (len >= sizeof p->text) {
        return _bad(err, err_len, "field %s: value of %zu bytes is too long", slot->name, len);
    }
    if (memchr(value, '\0', len) != NULL) {
        return _bad(err, err_len, "field %s: value contains a NUL byte", slot->name);
    }
    memcpy(p->text, value, len);
    p->text[len] = '\0';
    return MAT_STREAM_ENTRY_OK;
}

/* ---- JSON arrays (list features) ----------------------------------------------------------- */

static size_t _skip_ws(const char *s, size_t i, size_t len) {
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) {
        i++;
    }
    return i;
}

static int _hex4(const char *s, size_t i, size_t len, uint32_t *out) {
    if (len - i < 4) {
        return -1;
    }
    uint32_t v = 0;
    for (size_t k = 0; k < 4; k++) {
        char c = s[i + k];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) {
            return -1;
        }
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 0;
}

static int _put_utf8(struct mat_stream_parser *p, uint32_t cp) {
    char buf[4];
    size_t n;
    if (cp < 0x80) {
        buf[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        buf[0] = (char)(0xc0 | cp >> 6), buf[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    } else if (cp < 0x10000) {
        buf[0] = (char)(0xe0 | cp >> 12), buf[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        buf[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
    } else {
        buf[0] = (char)(0xf0 | cp >> 18), buf[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        buf[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), buf[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
    }
    return _append_bytes(p, buf, n);
}

/*
 * A JSON string at s[*i] (the opening quote) into p->bytes. Returns OK, BAD with `why` set, or
 * OOM; *i ends after the closing quote.
 */
static int _json_string(struct mat_stream_parser *p, const char *s, size_t len, size_t *i,
                        const char **why) {
    size_t k = *i + 1;
    size_t start = p->bytes_len;
    for (;;) {
        if (k >= len) {
            *why = "unterminated string";
            return MAT_STREAM_ENTRY_BAD;
        }
        unsigned char c = (unsigned char)s[k];
        if (c == '"') {
            break;
        }
        if (c < 0x20) {
            *why = "control character in a string (escape it)";
            return MAT_STREAM_ENTRY_BAD;
        }
        if (c != '\\') {
            size_t run = k;
            while (run < len && s[run] != '"' && s[run] != '\\' && (unsigned char)s[run] >= 0x20) {
                run++;
            }
            if (_append_bytes(p, s + k, run - k) != 0) {
                return MAT_STREAM_ENTRY_OOM;
            }
            k = run;
            continue;
        }
        if (++k >= len) {
            *why = "unterminated string";
            return MAT_STREAM_ENTRY_BAD;
        }
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *esc = strchr(from, s[k]);
        if (esc != NULL && s[k] != '\0') {
            if (_append_bytes(p, &to[esc - from], 1) != 0) {
                return MAT_STREAM_ENTRY_OOM;
            }
            k++;
            continue;
        }
        uint32_t cp, low;
        if (s[k] != 'u' || _hex4(s, k + 1, len, &cp) != 0) {
            *why = "invalid escape in a string";
            return MAT_STREAM_ENTRY_BAD;
        }
        k += 5;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (len - k < 6 || s[k] != '\\' || s[k + 1] != 'u' || _hex4(s, k + 2, len, &low) != 0 ||
                low < 0xdc00 || low > 0xdfff) {
                *why = "unpaired surrogate in a string";
                return MAT_STREAM_ENTRY_BAD;
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            k += 6;
        } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            *why = "unpaired surrogate in a string";
            return MAT_STREAM_ENTRY_BAD;
        }
        if (_put_utf8(p, cp) != 0) {
            return MAT_STREAM_ENTRY_OOM;
        }
    }
    if (!utf8_valid((const uint8_t *)p->bytes + start, p->bytes_len - start)) {
        *why = "a string is not valid UTF-8";
        return MAT_STREAM_ENTRY_BAD;
    }
    *i = k + 1;
    return MAT_STREAM_ENTRY_OK;
}

/* Copies s[from, to) into p->text, NUL-terminated; false when it does not fit. */
static bool _token_text(struct mat_stream_parser *p, const char *s, size_t from, size_t to) {
    if (to - from >= sizeof p->text) {
        return false;
    }
    memcpy(p->text, s + from, to - from);
    p->text[to - from] = '\0';
    return true;
}

/*
 * Element `n` of a list of element type `type` at s[*i] into the scratch: strings and bytes
 * into p->bytes (offsets[n], lens[n]), everything else into p->elements. Returns OK, BAD with
 * `why` set, or OOM; *i ends after the element.
 */
static int _json_element(struct mat_stream_parser *p, enum store_type type, const char *s,
                         size_t len, size_t *i, uint32_t n, char *why, size_t why_len) {
    size_t k = *i;
    if (k < len && s[k] == '"' &&
        (type == STORE_TYPE_STRING || type == STORE_TYPE_BYTES || type == STORE_TYPE_TIMESTAMP)) {
        size_t start = p->bytes_len;
        const char *fixed_why = NULL;
        int rc = _json_string(p, s, len, i, &fixed_why);
        if (rc != MAT_STREAM_ENTRY_OK) {
            if (fixed_why != NULL) {
                snprintf(why, why_len, "%s", fixed_why);
            }
            return rc;
        }
        if (type == STORE_TYPE_STRING) {
            p->offsets[n] = (uint32_t)start;
            p->lens[n] = (uint32_t)(p->bytes_len - start);
            return MAT_STREAM_ENTRY_OK;
        }
        if (_append_bytes(p, "", 1) != 0) { /* NUL-terminates the text for the parsers */
            return MAT_STREAM_ENTRY_OOM;
        }
        const char *text = p->bytes + start;
        p->bytes_len = start;
        if (type == STORE_TYPE_TIMESTAMP) {
            int64_t us;
            if (parse_timestamp(text, &us, why, why_len) != 0) {
                return MAT_STREAM_ENTRY_BAD;
            }
            memcpy(p->elements + 8 * (size_t)n, &us, 8);
            return MAT_STREAM_ENTRY_OK;
        }
        uint8_t *decoded;
        size_t decoded_len;
        if (parse_base64(text, &decoded, &decoded_len, why, why_len) != 0) {
            return MAT_STREAM_ENTRY_BAD;
        }
        int grown = _append_bytes(p, decoded, decoded_len);
        free(decoded);
        if (grown != 0) {
            return MAT_STREAM_ENTRY_OOM;
        }
        p->offsets[n] = (uint32_t)start;
        p->lens[n] = (uint32_t)decoded_len;
        return MAT_STREAM_ENTRY_OK;
    }
    if (type == STORE_TYPE_STRING || type == STORE_TYPE_BYTES) {
        snprintf(why, why_len, "expected a string at byte %zu", k);
        return MAT_STREAM_ENTRY_BAD;
    }
    if (type == STORE_TYPE_BOOL) {
        bool is_true = len - k >= 4 && memcmp(s + k, "true", 4) == 0;
        if (!is_true && !(len - k >= 5 && memcmp(s + k, "false", 5) == 0)) {
            snprintf(why, why_len, "expected true or false at byte %zu", k);
            return MAT_STREAM_ENTRY_BAD;
        }
        p->elements[n] = is_true ? 1 : 0;
        *i = k + (is_true ? 4 : 5);
        return MAT_STREAM_ENTRY_OK;
    }
    while (k < len && strchr("+-.0123456789eE", s[k]) != NULL && s[k] != '\0') {
        k++;
    }
    if (k == *i || !_token_text(p, s, *i, k)) {
        snprintf(why, why_len, "expected a number at byte %zu", *i);
        return MAT_STREAM_ENTRY_BAD;
    }
    *i = k;
    int rc;
    int64_t i64;
    uint8_t *at = p->elements;
    switch (type) {
    case STORE_TYPE_INT32:
        rc = parse_int(p->text, INT32_MIN, INT32_MAX, "int32", &i64, why, why_len);
        memcpy(at + 4 * (size_t)n, &(int32_t){(int32_t)i64}, 4);
        break;
    case STORE_TYPE_FLOAT: {
        float f = 0;
        rc = parse_float(p->text, &f, why, why_len);
        memcpy(at + 4 * (size_t)n, &f, 4);
        break;
    }
    case STORE_TYPE_DOUBLE: {
        double d = 0;
        rc = parse_double(p->text, &d, why, why_len);
        memcpy(at + 8 * (size_t)n, &d, 8);
        break;
    }
    case STORE_TYPE_TIMESTAMP:
        rc = parse_timestamp(p->text, &i64, why, why_len);
        memcpy(at + 8 * (size_t)n, &i64, 8);
        break;
    default: /* int64 */
        rc = parse_int(p->text, INT64_MIN, INT64_MAX, "int64", &i64, why, why_len);
        memcpy(at + 8 * (size_t)n, &i64, 8);
        break;
    }
    return rc == 0 ? MAT_STREAM_ENTRY_OK : MAT_STREAM_ENTRY_BAD;
}

/* A JSON array of list type `type`'s elements into the scratch; *count elements. */
static int _json_list(struct mat_stream_parser *p, const struct field_slot *slot,
                      enum store_type type, const char *s, size_t len, uint32_t *count, char *err,
                      size_t err_len) {
    enum store_type element = store_type_element(type);
    bool packed = store_type_element_size(type) == 0;
    char why[256] = "";
    p->bytes_len = 0;
    uint32_t n = 0;
    /* Never NULL, even for [], so the setters never see a null source. */
    if (_reserve_list(p, 1) != 0 || _append_bytes(p, "", 0) != 0) {
        return MAT_STREAM_ENTRY_OOM;
    }
    size_t i = _skip_ws(s, 0, len);
    if (i == len || s[i] != '[') {
        static const char *const examples[STORE_TYPE_COUNT] = {
            [STORE_TYPE_STRING_LIST] = "[\"a\", \"b\"]",
            [STORE_TYPE_BYTES_LIST] = "[\"aGk=\"]",
            [STORE_TYPE_BOOL_LIST] = "[true, false]",
            [STORE_TYPE_TIMESTAMP_LIST] = "[\"2024-05-01T12:00:00Z\"]",
            [STORE_TYPE_INT32_LIST] = "[1, 2]",
            [STORE_TYPE_INT64_LIST] = "[1, 2]",
        };
        return _bad(err, err_len, "field %s: expected a JSON array such as %s", slot->name,
                    examples[type] != NULL ? examples[type] : "[1, 2.5]");
    }
    i = _skip_ws(s, i + 1, len);
    bool closed = i < len && s[i] == ']';
    if (closed) {
        i++;
    }
    while (!closed) {
        if (_reserve_list(p, (size_t)n + 1) != 0) {
            return MAT_STREAM_ENTRY_OOM;
        }
        int rc = _json_element(p, element, s, len, &i, n, why, sizeof why);
        if (rc != MAT_STREAM_ENTRY_OK) {
            if (rc == MAT_STREAM_ENTRY_BAD) {
                _bad(err, err_len, "field %s: element %u: %s", slot->name, n, why);
            }
            return rc;
        }
        n++;
        i = _skip_ws(s, i, len);
        if (i < len && s[i] == ',') {
            i = _skip_ws(s, i + 1, len);
        } else if (i < len && s[i] == ']') {
            i++;
            closed = true;
        } else {
            return _bad(err, err_len, "field %s: expected , or ] at byte %zu", slot->name, i);
        }
    }
    if (_skip_ws(s, i, len) != len) {
        return _bad(err, err_len, "field %s: unexpected bytes after the array at byte %zu",
                    slot->name, i);
    }
    if (packed) {
        for (uint32_t k = 0; k < n; k++) {
            p->strs[k] = p->bytes + p->offsets[k];
        }
    }
    *count = n;
    return MAT_STREAM_ENTRY_OK;
}

/* ---- the fields format --------------------------------------------------------------------- */

static int _parse_bool(const char *v, size_t len, bool *out) {
    if ((len == 4 && memcmp(v, "true", 4) == 0) || (len == 1 && v[0] == '1')) {
        *out = true;
    } else if ((len == 5 && memcmp(v, "false", 5) == 0) || (len == 1 && v[0] == '0')) {
        *out = false;
    } else {
        return -1;
    }
    return 0;
}

static int _set_feature(struct mat_stream_parser *p, const struct field_slot *slot,
                        struct store_row_builder *b, const char *v, size_t len, char *err,
                        size_t err_len) {
    uint32_t f = slot->index;
    enum store_type type = p->feature_types[f];
    char why[256];
    int64_t i64;
    int rc;
    switch (type) {
    case STORE_TYPE_INT32:
    case STORE_TYPE_INT64:
    case STORE_TYPE_FLOAT:
    case STORE_TYPE_DOUBLE:
    case STORE_TYPE_TIMESTAMP:
        if ((rc = _text(p, slot, v, len, err, err_len)) != MAT_STREAM_ENTRY_OK) {
            return rc;
        }
        break;
    default:
        break;
    }
    switch (type) {
    case STORE_TYPE_INT32:
        if (parse_int(p->text, INT32_MIN, INT32_MAX, "int32", &i64, why, sizeof why) != 0) {
            return _bad(err, err_len, "field %s: %s", slot->name, why);
        }
        store_row_set_int32(b, f, (int32_t)i64);
        return MAT_STREAM_ENTRY_OK;
    case STORE_TYPE_INT64:
        if (parse_int(p->text, INT64_MIN, INT64_MAX, "int64", &i64, why, sizeof why) != 0) {
            return _bad(err, err_len, "field %s: %s", slot->name, why);
        }
        store_row_set_int64(b, f, i64);
        return MAT_STREAM_ENTRY_OK;
    case STORE_TYPE_FLOAT: {
        float x;
        if (parse_float(p->text, &x, why, sizeof why) != 0) {
            return _bad(err, err_len, "field %s: %s", slot->name, why);
        }
        store_row_set_float(b, f, x);
        return MAT_STREAM_ENTRY_OK;
    }
    case STORE_TYPE_DOUBLE: {
        double x;
        if (parse_double(p->text, &x, why, sizeof why) != 0) {
            return _bad(err, err_len, "field %s: %s", slot->name, why);
        }
        store_row_set_double(b, f, x);
        return MAT_STREAM_ENTRY_OK;
    }
    case STORE_TYPE_TIMESTAMP:
        if (parse_timestamp(p->text, &i64, why, sizeof why) != 0) {
            return _bad(err, err_len, "field %s: %s", slot->name, why);
        }
        store_row_set_timestamp(b, f, i64);
        return MAT_STREAM_ENTRY_OK;
    case STORE_TYPE_BOOL: {
        bool x;
        if (_parse_bool(v, len, &x) != 0) {
            return _bad(err, err_len,
                        "field %s: invalid bool \"%.*s\" (expected true, false, 1, 0)", slot->name,
                        (int)(len < 80 ? len : 80), v);
        }
        store_row_set_bool(b, f, x);
        return MAT_STREAM_ENTRY_OK;
    }
    case STORE_TYPE_STRING:
        if (!utf8_valid((const uint8_t *)v, len)) {
            return _bad(err, err_len, "field %s: not valid UTF-8", slot->name);
        }
        /* fall through */
    case STORE_TYPE_BYTES:
        if (len > UINT32_MAX) {
            return _bad(err, err_len, "field %s: value of %zu bytes is too long", slot->name, len);
        }
        return store_row_set_bytes(b, f, v, (uint32_t)len) == 0 ? MAT_STREAM_ENTRY_OK
                                                                : MAT_STREAM_ENTRY_OOM;
    default: {
        uint32_t n = 0;
        if ((rc = _json_list(p, slot, type, v, len, &n, err, err_len)) != MAT_STREAM_ENTRY_OK) {
            return rc;
        }
        rc = store_type_element_size(type) > 0
                 ? store_row_set_list(b, f, p->elements, n)
                 : store_row_set_packed_list(b, f, p->strs, p->lens, n);
        return rc == 0 ? MAT_STREAM_ENTRY_OK : MAT_STREAM_ENTRY_OOM;
    }
    }
    return _bad(err, err_len, "field %s: unsupported type", slot->name);
}

static int _timestamp(struct mat_stream_parser *p, const struct field_slot *slot, const char *v,
                      size_t len, int64_t *out, char *err, size_t err_len) {
    char why[256];
    int rc = _text(p, slot, v, len, err, err_len);
    if (rc != MAT_STREAM_ENTRY_OK) {
        return rc;
    }
    if (parse_timestamp(p->text, out, why, sizeof why) != 0) {
        return _bad(err, err_len, "field %s: %s", slot->name, why);
    }
    return MAT_STREAM_ENTRY_OK;
}

int mat_stream_check_event_ts(int64_t event_ts_us, int64_t now_us, const char *what, char *err,
                              size_t err_len) {
    /* 0 (or before 1970) is what a producer sends when it forgot the field; far-future rows
     * would shadow every real update until then. */
    if (event_ts_us <= 0) {
        return _bad(err, err_len, "%s must be after 1970-01-01T00:00:00Z, got %lld", what,
                    (long long)event_ts_us);
    }
    if (event_ts_us > now_us && event_ts_us - now_us > MAT_STREAM_MAX_FUTURE_US) {
        return _bad(err, err_len, "%s %lld is more than an hour in the future", what,
                    (long long)event_ts_us);
    }
    return MAT_STREAM_ENTRY_OK;
}

static int _parse_fields(struct mat_stream_parser *p, const struct store_schema *schema,
                         const struct mat_stream_field *fields, size_t nfields, int64_t now_us,
                         struct store_row_builder *b, struct mat_stream_entry *out, char *err,
                         size_t err_len) {
    if (++p->generation == 0) {
        memset(p->seen, 0, p->nnames * sizeof(*p->seen));
        p->generation = 1;
    }
    struct store_key_part parts[STORE_MAX_JOIN_KEYS];
    bool have_event = false;
    const char *first_feature = NULL;
    out->is_delete = false;
    out->event_ts_us = 0;
    out->created_ts_us = 0;
    store_row_builder_reset(b, 0, 0);
    for (size_t i = 0; i < nfields; i++) {
        const struct mat_stream_field *fd = &fields[i];
        const struct field_slot *slot = _lookup(p, fd->name, fd->name_len);
        if (slot == NULL) {
            int shown = (int)(fd->name_len < 80 ? fd->name_len : 80);
            return _bad(err, err_len,
                        "unknown field \"%.*s\" (not a join key, feature, timestamp field or "
                        "%s of view %s)",
                        shown, fd->name, MAT_STREAM_DELETE_FIELD, schema->view);
        }
        if (p->seen[slot->ordinal] == p->generation) {
            return _bad(err, err_len, "field %s given twice", slot->name);
        }
        p->seen[slot->ordinal] = p->generation;
        int rc = MAT_STREAM_ENTRY_OK;
        char why[256];
        switch (slot->kind) {
        case FIELD_KEY: {
            struct store_key_part *part = &parts[slot->index];
            part->type = p->key_types[slot->index];
            if (part->type == STORE_KEY_INT64) {
                if ((rc = _text(p, slot, fd->value, fd->value_len, err, err_len)) == 0 &&
                    parse_int(p->text, INT64_MIN, INT64_MAX, "int64", &part->i64, why,
                              sizeof why) != 0) {
                    rc = _bad(err, err_len, "join key %s: %s", slot->name, why);
                }
            } else if (fd->value_len > STORE_MAX_KEY_BYTES ||
                       !utf8_valid((const uint8_t *)fd->value, fd->value_len)) {
                rc = _bad(err, err_len, "join key %s: not valid UTF-8, or longer than %d bytes",
                          slot->name, STORE_MAX_KEY_BYTES);
            } else {
                part->str = fd->value;
                part->str_len = (uint32_t)fd->value_len;
            }
            break;
        }
        case FIELD_EVENT_TS:
            rc = _timestamp(p, slot, fd->value, fd->value_len, &out->event_ts_us, err, err_len);
            have_event = true;
            break;
        case FIELD_CREATED_TS:
            rc = _timestamp(p, slot, fd->value, fd->value_len, &out->created_ts_us, err, err_len);
            break;
        case FIELD_DELETE:
            if (_parse_bool(fd->value, fd->value_len, &out->is_delete) != 0) {
                rc = _bad(err, err_len, "field %s: expected 1, true, 0 or false",
                          MAT_STREAM_DELETE_FIELD);
            }
            break;
        case FIELD_FEATURE:
            first_feature = first_feature ? first_feature : slot->name;
            rc = _set_feature(p, slot, b, fd->value, fd->value_len, err, err_len);
            break;
        }
        if (rc != MAT_STREAM_ENTRY_OK) {
            return rc;
        }
    }
    for (uint32_t k = 0; k < p->nkeys; k++) {
        if (p->seen[p->key_ordinals[k]] != p->generation) {
            return _bad(err, err_len, "join key %s is missing", schema->keys[k].name);
        }
    }
    if (!have_event) {
        return _bad(err, err_len, "the event time (field %s) is missing", p->event_field);
    }
    int rc = mat_stream_check_event_ts(out->event_ts_us, now_us, p->event_field, err, err_len);
    if (rc != MAT_STREAM_ENTRY_OK) {
        return rc;
    }
    if (out->is_delete && first_feature != NULL) {
        return _bad(err, err_len, "a tombstone (%s) carries no feature values, found %s",
                    MAT_STREAM_DELETE_FIELD, first_feature);
    }
    char why[256];
    int len = store_key_encode(schema, parts, out->key_buf, sizeof out->key_buf, why, sizeof why);
    if (len < 0) {
        return _bad(err, err_len, "%s", why);
    }
    out->key = (struct store_key){out->key_buf, (uint32_t)len,
                                  store_key_hash(out->key_buf, (uint32_t)len)};
    b->event_ts_us = out->event_ts_us;
    b->created_ts_us = out->created_ts_us;
    return MAT_STREAM_ENTRY_OK;
}

static int _parse_protobuf(struct mat_stream_parser *p, const struct store_schema *schema,
                           const struct mat_stream_field *fields, size_t nfields, int64_t now_us,
                           struct store_row_builder *b, struct mat_stream_entry *out, char *err,
                           size_t err_len) {
    if (nfields != 1 || fields[0].name_len != p->row_field_len ||
        memcmp(fields[0].name, p->row_field, p->row_field_len) != 0) {
        return _bad(err, err_len, "expected exactly one field, %s, holding an fsd.v1.Row",
                    p->row_field);
    }
    Fsd__V1__Row *row =
        fsd__v1__row__unpack(NULL, fields[0].value_len, (const uint8_t *)fields[0].value);
    if (row == NULL) {
        return _bad(err, err_len, "field %s: not a valid fsd.v1.Row message", p->row_field);
    }
    /* PushRows' rules and words; the entry's ID, logged with the reason, names the row. */
    int rc = MAT_STREAM_ENTRY_OK;
    int len =
        mat_proto_row_check(schema, row, MAT_PROTO_ROW_UNNAMED, now_us, out->key_buf, err, err_len);
    if (len < 0) {
        rc = MAT_STREAM_ENTRY_BAD;
    } else {
        out->key = (struct store_key){out->key_buf, (uint32_t)len,
                                      store_key_hash(out->key_buf, (uint32_t)len)};
        out->is_delete = row->delete_;
        out->event_ts_us = row->event_timestamp_us;
        out->created_ts_us = row->created_timestamp_us;
        if (!out->is_delete && mat_proto_row_build(b, row, _proto_scratch, p) != 0) {
            rc = MAT_STREAM_ENTRY_OOM;
        }
    }
    fsd__v1__row__free_unpacked(row, NULL);
    return rc;
}

int mat_stream_parse_entry(struct mat_stream_parser *p, const struct mat_stream_field *fields,
                           size_t nfields, int64_t now_us, struct store_row_builder *b,
                           struct mat_stream_entry *out, char *err, size_t err_len) {
    err[0] = '\0';
    if (p->format == MAT_STREAM_PROTOBUF) {
        return _parse_protobuf(p, b->schema, fields, nfields, now_us, b, out, err, err_len);
    }
    return _parse_fields(p, b->schema, fields, nfields, now_us, b, out, err, err_len);
}

const char *mat_stream_format_name(enum mat_stream_format format) {
    return format == MAT_STREAM_PROTOBUF ? "protobuf" : "fields";
}
