/*
 * Fuzz target for Redis Streams entries, bytes any producer of the stream controls: the
 * fields format (names, numbers, timestamps, JSON lists, UTF-8) and the protobuf format (an
 * fsd.v1.Row checked by the rules PushRows shares), then the store upsert of what parsed, and
 * entry IDs. The parsers are set up as the consumer sets them up, for a view with a key of
 * each kind and a feature of every type, so no Redis is needed.
 *
 * Input layout (one entry):
 *
 *   byte 0        'p': protobuf format, anything else: fields format
 *   then fields   [u8 name length][name][u16 value length, little endian][value] ...
 *                 (a value cut short by the end of the input is what is left)
 *
 * Built with libFuzzer when the compiler is Clang (fuzz_stream_entry); always built as
 * fuzz_stream_entry_replay, whose main() runs the target over entries encoded here, every
 * prefix of them and every single-byte corruption, plus the files it is given: the checked-in
 * corpus (corpus/), where a file named ok-* must parse and bad-* must be
 * refused. So CTest exercises the parser's error paths under every build, sanitizers too.
 *
 *   build/tests/fuzz_stream_entry /tmp/corpus tests/materializer/stream/corpus \
 *       -max_total_time=300    (new inputs go to the first folder)
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "fsd/v1/feature_service.pb-c.h"
#include "materializer/stream/stream_internal.h"
#include "store/rcu.h"
#include "store/row.h"
#include "store/schema.h"
#include "store/table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW_US     (1717200000LL * 1000000) /* 2024-06-01T00:00:00Z */
#define MAX_FIELDS 64

/* Short names, so that mutations find them. */
static const struct {
    const char *name;
    int type; /* enum store_type; -1 = int64 key, -2 = string key */
} COLUMNS[] = {
    {"k", -1},
    {"s", -2},
    {"i32", STORE_TYPE_INT32},
    {"i64", STORE_TYPE_INT64},
    {"f", STORE_TYPE_FLOAT},
    {"d", STORE_TYPE_DOUBLE},
    {"b", STORE_TYPE_BOOL},
    {"str", STORE_TYPE_STRING},
    {"by", STORE_TYPE_BYTES},
    {"ts", STORE_TYPE_TIMESTAMP},
    {"fl", STORE_TYPE_FLOAT_LIST},
    {"il", STORE_TYPE_INT64_LIST},
    {"sl", STORE_TYPE_STRING_LIST},
    {"i32l", STORE_TYPE_INT32_LIST},
    {"dl", STORE_TYPE_DOUBLE_LIST},
    {"bl", STORE_TYPE_BOOL_LIST},
    {"byl", STORE_TYPE_BYTES_LIST},
    {"tsl", STORE_TYPE_TIMESTAMP_LIST},
};
#define NCOLUMNS (sizeof COLUMNS / sizeof COLUMNS[0])

static struct {
    struct store_schema *schema;
    struct mat_stream_parser *fields;   /* event time "ev", created time "cr" */
    struct mat_stream_parser *protobuf; /* row field "row" */
    struct store_row_builder builder;
} g;

static void _setup(void) {
    char err[256];
    store_rcu_thread_online();
    g.schema = store_schema_create("fuzz", 0);
    for (size_t i = 0; i < NCOLUMNS; i++) {
        int rc =
            COLUMNS[i].type < 0
                ? store_schema_add_key(g.schema, COLUMNS[i].name,
                                       COLUMNS[i].type == -1 ? STORE_KEY_INT64 : STORE_KEY_STRING,
                                       err, sizeof err)
                : store_schema_add_feature(g.schema, COLUMNS[i].name,
                                           (enum store_type)COLUMNS[i].type, err, sizeof err);
        if (rc < 0) {
            fprintf(stderr, "fuzz_stream_entry: %s\n", err);
            abort();
        }
    }
    if (store_schema_finalize(g.schema, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_stream_entry: %s\n", err);
        abort();
    }
    struct mat_stream_config stream = {.enabled = true, .format = MAT_STREAM_FIELDS};
    snprintf(stream.event_timestamp_field, sizeof stream.event_timestamp_field, "ev");
    snprintf(stream.created_timestamp_field, sizeof stream.created_timestamp_field, "cr");
    g.fields = mat_stream_parser_create(g.schema, &stream);
    stream = (struct mat_stream_config){.enabled = true, .format = MAT_STREAM_PROTOBUF};
    snprintf(stream.row_field, sizeof stream.row_field, "%s", MAT_STREAM_DEFAULT_ROW_FIELD);
    g.protobuf = mat_stream_parser_create(g.schema, &stream);
    if (g.fields == NULL || g.protobuf == NULL ||
        store_row_builder_init(&g.builder, g.schema) != 0) {
        abort();
    }
}

/* A valid ID reads back the same after printing it. */
static void _check_id(const char *text, size_t len) {
    struct mat_stream_id id, again;
    if (!mat_stream_id_parse(text, len, &id)) {
        return;
    }
    char printed[MAT_STREAM_ID_LEN];
    int n = snprintf(printed, sizeof printed, "%llu-%llu", (unsigned long long)id.ms,
                     (unsigned long long)id.seq);
    if (!mat_stream_id_parse(printed, (size_t)n, &again) || mat_stream_id_cmp(id, again) != 0) {
        abort();
    }
}

/* Reads every value of a stored row back, as a lookup would. */
static void _read_back(const struct store_row *row) {
    volatile uint64_t sink = 0;
    for (uint32_t i = 0; i < g.schema->nfeatures; i++) {
        if (store_row_is_null(g.schema, row, i)) {
            continue;
        }
        struct store_value v;
        store_row_get(g.schema, row, i, &v);
        if (store_type_is_var(v.type)) {
            for (uint32_t j = 0; j < v.var.bytes; j++) {
                sink += ((const uint8_t *)v.var.data)[j];
            }
        }
    }
    (void)sink;
}

/* Parses one entry and stores what parsed; returns what the parser returned. */
static int _run(const uint8_t *data, size_t size) {
    if (g.schema == NULL) {
        _setup();
    }
    if (size == 0) {
        return MAT_STREAM_ENTRY_BAD;
    }
    struct mat_stream_parser *parser = data[0] == 'p' ? g.protobuf : g.fields;
    struct mat_stream_field fields[MAX_FIELDS];
    size_t nfields = 0;
    for (size_t at = 1; at < size && nfields < MAX_FIELDS;) {
        size_t name_len = data[at++];
        if (name_len > size - at) {
            name_len = size - at;
        }
        const char *name = (const char *)data + at;
        at += name_len;
        size_t value_len = 0;
        if (size - at >= 2) {
            value_len = (size_t)data[at] | (size_t)data[at + 1] << 8;
            at += 2;
        } else {
            at = size;
        }
        if (value_len > size - at) {
            value_len = size - at;
        }
        fields[nfields++] =
            (struct mat_stream_field){name, name_len, (const char *)data + at, value_len};
        at += value_len;
        _check_id(name, name_len);
        _check_id(fields[nfields - 1].value, value_len);
    }

    char err[512];
    memset(err, 'X', sizeof err);
    struct mat_stream_entry entry;
    int rc = mat_stream_parse_entry(parser, fields, nfields, NOW_US, &g.builder, &entry, err,
                                    sizeof err);
    if (rc == MAT_STREAM_ENTRY_BAD) {
        /* a reason, whole: the consumer logs it */
        size_t len = strnlen(err, sizeof err);
        if (len == 0 || len == sizeof err) {
            abort();
        }
        return rc;
    }
    if (rc != MAT_STREAM_ENTRY_OK) {
        if (rc != MAT_STREAM_ENTRY_OOM) {
            abort();
        }
        return rc;
    }
    if (entry.key.len == 0 || entry.key.len > STORE_MAX_KEY_BYTES ||
        entry.key.data != entry.key_buf ||
        entry.key.hash != store_key_hash(entry.key_buf, entry.key.len) || entry.event_ts_us <= 0 ||
        entry.event_ts_us - NOW_US > MAT_STREAM_MAX_FUTURE_US) {
        abort();
    }
    /* Into a table, as the consumer writes it, and read back. */
    char terr[256];
    struct store_table_options options = {.shards = 1};
    struct store_table *table = store_table_create(g.schema, &options, terr, sizeof terr);
    if (table == NULL) {
        abort();
    }
    enum store_upsert_result result =
        entry.is_delete
            ? store_table_delete_live(table, &entry.key, entry.event_ts_us, entry.created_ts_us)
            : store_table_upsert_live(table, &entry.key, &g.builder);
    if (result == STORE_UPSERT_INSERTED && !entry.is_delete) {
        const struct store_row *row = store_table_get(table, &entry.key);
        if (row == NULL || row->event_ts_us != entry.event_ts_us) {
            abort();
        }
        _read_back(row);
    }
    store_table_destroy(table);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    _run(data, size);
    return 0;
}

#ifdef FSD_FUZZ_REPLAY
/* ---- entries encoded here -------------------------------------------------------------- */

struct enc {
    uint8_t buf[4096];
    size_t len;
};

static void _field(struct enc *e, const char *name, const void *value, size_t len) {
    size_t n = strlen(name);
    e->buf[e->len++] = (uint8_t)n;
    memcpy(e->buf + e->len, name, n);
    e->len += n;
    e->buf[e->len++] = (uint8_t)len;
    e->buf[e->len++] = (uint8_t)(len >> 8);
    memcpy(e->buf + e->len, value, len);
    e->len += len;
}

static void _text(struct enc *e, const char *name, const char *value) {
    _field(e, name, value, strlen(value));
}

/* Every type, every key, both timestamps. */
static void _fields_entry(struct enc *e) {
    e->len = 0;
    e->buf[e->len++] = 'f';
    _text(e, "k", "-42");
    _text(e, "s", "h\xc3\xa9");
    _text(e, "ev", "1717199000000000");
    _text(e, "cr", "2024-05-31T23:00:00.25Z");
    _text(e, "i32", "-2147483648");
    _text(e, "i64", "9223372036854775807");
    _text(e, "f", "0.5");
    _text(e, "d", "-1e300");
    _text(e, "b", "true");
    _text(e, "str", "caf\xc3\xa9");
    _field(e, "by", "\x00\xff\x01", 3);
    _text(e, "ts", "2024-05-01T12:00:00+02:00");
    _text(e, "fl", "[1, 2.5, -3e2]");
    _text(e, "il", "[]");
    _text(e, "sl", "[\"a\", \"b\\\"c\", \"\\u00e9\", \"\\ud83d\\ude00\"]");
    _text(e, "i32l", "[-2147483648, 7]");
    _text(e, "dl", "[0.1, -1e300]");
    _text(e, "bl", "[true, false]");
    _text(e, "byl", "[\"AP8=\", \"\"]");
    _text(e, "tsl", "[1717199000000000, \"2024-05-01T12:00:00Z\"]");
}

static void _fields_delete(struct enc *e) {
    e->len = 0;
    e->buf[e->len++] = 'f';
    _text(e, "k", "7");
    _text(e, "s", "");
    _text(e, "ev", "2024-05-31T12:00:00Z");
    _text(e, "__delete", "1");
}

/* An fsd.v1.Row with every type, packed as a producer would. */
static void _protobuf_entry(struct enc *e, bool delete_) {
    Fsd__V1__KeyPart k = FSD__V1__KEY_PART__INIT, s = FSD__V1__KEY_PART__INIT;
    k.name = "k";
    k.value_case = FSD__V1__KEY_PART__VALUE_INT64_VALUE;
    k.int64_value = 1;
    s.name = "s";
    s.value_case = FSD__V1__KEY_PART__VALUE_STRING_VALUE;
    s.string_value = (ProtobufCBinaryData){2, (uint8_t *)"eu"};
    Fsd__V1__KeyPart *keys[] = {&k, &s};
    float floats[] = {1.5f, -0.0f};
    int64_t ints[] = {INT64_MIN, 0, 1};
    ProtobufCBinaryData strs[] = {{1, (uint8_t *)"a"}, {0, NULL}};
    Fsd__V1__FloatList fl = FSD__V1__FLOAT_LIST__INIT;
    fl.n_values = 2;
    fl.values = floats;
    Fsd__V1__Int64List il = FSD__V1__INT64_LIST__INIT;
    il.n_values = 3;
    il.values = ints;
    Fsd__V1__StringList sl = FSD__V1__STRING_LIST__INIT;
    sl.n_values = 2;
    sl.values = strs;
    int32_t ints32[] = {INT32_MIN, 3};
    Fsd__V1__Int32List i32l = FSD__V1__INT32_LIST__INIT;
    i32l.n_values = 2;
    i32l.values = ints32;
    double doubles[] = {0.1};
    Fsd__V1__DoubleList dl = FSD__V1__DOUBLE_LIST__INIT;
    dl.n_values = 1;
    dl.values = doubles;
    protobuf_c_boolean bools[] = {1, 0, 1};
    Fsd__V1__BoolList bl = FSD__V1__BOOL_LIST__INIT;
    bl.n_values = 3;
    bl.values = bools;
    Fsd__V1__BytesList byl = FSD__V1__BYTES_LIST__INIT;
    byl.n_values = 2;
    byl.values = strs;
    int64_t stamps[] = {-1};
    Fsd__V1__TimestampList tsl = FSD__V1__TIMESTAMP_LIST__INIT;
    tsl.n_values = 1;
    tsl.values = stamps;
    Fsd__V1__Value values[NCOLUMNS];
    Fsd__V1__FeatureValue fvs[NCOLUMNS];
    Fsd__V1__FeatureValue *fv_ptrs[NCOLUMNS];
    size_t n = 0;
    for (size_t i = 2; i < NCOLUMNS && !delete_; i++, n++) {
        values[n] = (Fsd__V1__Value)FSD__V1__VALUE__INIT;
        fvs[n] = (Fsd__V1__FeatureValue)FSD__V1__FEATURE_VALUE__INIT;
        fvs[n].name = (char *)COLUMNS[i].name;
        fvs[n].value = &values[n];
        fv_ptrs[n] = &fvs[n];
        Fsd__V1__Value *v = &values[n];
        switch (COLUMNS[i].type) {
        case STORE_TYPE_INT32:
            v->kind_case = FSD__V1__VALUE__KIND_INT32_VALUE;
            v->int32_value = -5;
            break;
        case STORE_TYPE_INT64:
            v->kind_case = FSD__V1__VALUE__KIND_INT64_VALUE;
            v->int64_value = 1LL << 40;
            break;
        case STORE_TYPE_FLOAT:
            v->kind_case = FSD__V1__VALUE__KIND_FLOAT_VALUE;
            v->float_value = 0.25f;
            break;
        case STORE_TYPE_DOUBLE:
            break; /* sent without a value: null */
        case STORE_TYPE_BOOL:
            v->kind_case = FSD__V1__VALUE__KIND_BOOL_VALUE;
            v->bool_value = 1;
            break;
        case STORE_TYPE_STRING:
            v->kind_case = FSD__V1__VALUE__KIND_STRING_VALUE;
            v->string_value = (ProtobufCBinaryData){3, (uint8_t *)"abc"};
            break;
        case STORE_TYPE_BYTES:
            v->kind_case = FSD__V1__VALUE__KIND_BYTES_VALUE;
            v->bytes_value = (ProtobufCBinaryData){2, (uint8_t *)"\x00\x80"};
            break;
        case STORE_TYPE_TIMESTAMP:
            v->kind_case = FSD__V1__VALUE__KIND_TIMESTAMP_US;
            v->timestamp_us = -1;
            break;
        case STORE_TYPE_FLOAT_LIST:
            v->kind_case = FSD__V1__VALUE__KIND_FLOAT_LIST;
            v->float_list = &fl;
            break;
        case STORE_TYPE_INT64_LIST:
            v->kind_case = FSD__V1__VALUE__KIND_INT64_LIST;
            v->int64_list = &il;
            break;
        case STORE_TYPE_INT32_LIST:
            v->kind_case = FSD__V1__VALUE__KIND_INT32_LIST;
            v->int32_list = &i32l;
            break;
        case STORE_TYPE_DOUBLE_LIST:
            v->kind_case = FSD__V1__VALUE__KIND_DOUBLE_LIST;
            v->double_list = &dl;
            break;
        case STORE_TYPE_BOOL_LIST:
            v->kind_case = FSD__V1__VALUE__KIND_BOOL_LIST;
            v->bool_list = &bl;
            break;
        case STORE_TYPE_BYTES_LIST:
            v->kind_case = FSD__V1__VALUE__KIND_BYTES_LIST;
            v->bytes_list = &byl;
            break;
        case STORE_TYPE_TIMESTAMP_LIST:
            v->kind_case = FSD__V1__VALUE__KIND_TIMESTAMP_LIST;
            v->timestamp_list = &tsl;
            break;
        default:
            v->kind_case = FSD__V1__VALUE__KIND_STRING_LIST;
            v->string_list = &sl;
            break;
        }
    }
    Fsd__V1__Row row = FSD__V1__ROW__INIT;
    row.n_keys = 2;
    row.keys = keys;
    row.event_timestamp_us = NOW_US - 1000000;
    row.created_timestamp_us = 3;
    row.n_values = n;
    row.values = fv_ptrs;
    row.delete_ = delete_;
    static uint8_t packed[2048];
    size_t len = fsd__v1__row__pack(&row, packed);
    e->len = 0;
    e->buf[e->len++] = 'p';
    _field(e, MAT_STREAM_DEFAULT_ROW_FIELD, packed, len);
}

/* Runs `seed`, every prefix of it and every single-byte corruption; returns the count. */
static int _replay(const struct enc *seed, const char *what) {
    if (_run(seed->buf, seed->len) != MAT_STREAM_ENTRY_OK) {
        fprintf(stderr, "fuzz_stream_entry_replay: the %s entry did not parse\n", what);
        exit(1);
    }
    int cases = 1;
    for (size_t cut = 0; cut < seed->len; cut++, cases++) {
        _run(seed->buf, cut);
    }
    static const uint8_t values[] = {0x00, 0x01, '"', '-', '[', 0x7f, 0x80, 0xc3, 0xff};
    static uint8_t mutated[sizeof seed->buf];
    for (size_t at = 0; at < seed->len; at++) {
        for (size_t v = 0; v < sizeof values; v++, cases++) {
            memcpy(mutated, seed->buf, seed->len);
            mutated[at] = values[v];
            _run(mutated, seed->len);
        }
    }
    return cases;
}

int main(int argc, char **argv) {
    static struct enc e;
    int cases = 0;
    _fields_entry(&e);
    cases += _replay(&e, "fields");
    _fields_delete(&e);
    cases += _replay(&e, "fields delete");
    _protobuf_entry(&e, false);
    cases += _replay(&e, "protobuf");
    _protobuf_entry(&e, true);
    cases += _replay(&e, "protobuf delete");
    int failed = 0;
    for (int i = 1; i < argc; i++, cases++) {
        FILE *f = fopen(argv[i], "rb");
        if (f == NULL) {
            perror(argv[i]);
            return 1;
        }
        static uint8_t buf[1 << 16];
        size_t len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        const char *base = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];
        int rc = _run(buf, len);
        bool want_ok = strncmp(base, "ok-", 3) == 0, want_bad = strncmp(base, "bad-", 4) == 0;
        if ((want_ok && rc != MAT_STREAM_ENTRY_OK) || (want_bad && rc != MAT_STREAM_ENTRY_BAD)) {
            fprintf(stderr, "fuzz_stream_entry_replay: %s: parsed with %d\n", argv[i], rc);
            failed++;
        }
    }
    mat_stream_parser_destroy(g.fields);
    mat_stream_parser_destroy(g.protobuf);
    store_row_builder_deinit(&g.builder);
    store_schema_destroy(g.schema);
    store_rcu_barrier();
    store_rcu_thread_offline();
    printf("replayed %d inputs (4 entries, their prefixes and byte corruptions, %d files)\n", cases,
           argc - 1);
    return failed > 0;
}
#endif
