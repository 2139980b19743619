/*
 * daemon/rpc: the protobuf writer (pbwriter.h) and the hand-written field numbers it writes
 * the responses with (fields.h), both checked against protobuf-c's descriptors of
 * proto/fsd/v1/feature_service.proto. A field number or wire type that drifted from the
 * .proto fails here, not in a client. The writer's output is decoded with protobuf-c and
 * compared value by value, around the varint and nested-length boundaries.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/rpc/fields.h"
#include "daemon/rpc/pbwriter.h"
#include "feast/serving/ServingService.pb-c.h"
#include "fsd/v1/feature_service.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"

struct expected_field {
    const ProtobufCMessageDescriptor *message;
    const char *name; /* as in the .proto */
    unsigned number;  /* as in fields.h */
    ProtobufCType type;
    bool repeated;
};

#define GET(f, type, repeated)                                                                     \
    { &fsd__v1__get_features_response__descriptor, #f, GET_FEATURES_RESPONSE_##f, type, repeated }
#define COL(f, type, repeated)                                                                     \
    { &fsd__v1__feature_column__descriptor, #f, FEATURE_COLUMN_##f, type, repeated }

static const struct expected_field expected[] = {
    GET(ENTITIES, PROTOBUF_C_TYPE_UINT32, false),
    GET(COLUMNS, PROTOBUF_C_TYPE_MESSAGE, true),
    GET(VIEWS, PROTOBUF_C_TYPE_MESSAGE, true),
    GET(VALUES_SERVED, PROTOBUF_C_TYPE_UINT64, false),
    GET(DEFAULTS_NOT_FOUND, PROTOBUF_C_TYPE_UINT64, false),
    GET(DEFAULTS_NULL_VALUE, PROTOBUF_C_TYPE_UINT64, false),
    GET(DEFAULTS_OUTSIDE_MAX_AGE, PROTOBUF_C_TYPE_UINT64, false),
    GET(SERVER_TIME_US, PROTOBUF_C_TYPE_UINT64, false),
    COL(NAME, PROTOBUF_C_TYPE_STRING, false),
    COL(TYPE, PROTOBUF_C_TYPE_ENUM, false),
    COL(STATUSES, PROTOBUF_C_TYPE_ENUM, true),
    COL(INT32_VALUES, PROTOBUF_C_TYPE_INT32, true),
    COL(INT64_VALUES, PROTOBUF_C_TYPE_INT64, true),
    COL(FLOAT_VALUES, PROTOBUF_C_TYPE_FLOAT, true),
    COL(DOUBLE_VALUES, PROTOBUF_C_TYPE_DOUBLE, true),
    COL(BOOL_VALUES, PROTOBUF_C_TYPE_BOOL, true),
    COL(STRING_VALUES, PROTOBUF_C_TYPE_STRING, true),
    COL(BYTES_VALUES, PROTOBUF_C_TYPE_BYTES, true),
    COL(LIST_LENGTHS, PROTOBUF_C_TYPE_UINT32, true),
    COL(EVENT_TIMESTAMPS_US, PROTOBUF_C_TYPE_INT64, true),
    COL(HAS_DEFAULT, PROTOBUF_C_TYPE_BOOL, false),
    {&fsd__v1__view_staleness__descriptor, "view", VIEW_STALENESS_VIEW, PROTOBUF_C_TYPE_STRING,
     false},
    {&fsd__v1__view_staleness__descriptor, "staleness_ms", VIEW_STALENESS_STALENESS_MS,
     PROTOBUF_C_TYPE_INT64, true},
    {&fsd__v1__push_rows_response__descriptor, "inserted", PUSH_ROWS_RESPONSE_INSERTED,
     PROTOBUF_C_TYPE_UINT64, false},
    {&fsd__v1__push_rows_response__descriptor, "replaced", PUSH_ROWS_RESPONSE_REPLACED,
     PROTOBUF_C_TYPE_UINT64, false},
    {&fsd__v1__push_rows_response__descriptor, "not_newer", PUSH_ROWS_RESPONSE_NOT_NEWER,
     PROTOBUF_C_TYPE_UINT64, false},
    {&fsd__v1__push_rows_response__descriptor, "deleted", PUSH_ROWS_RESPONSE_DELETED,
     PROTOBUF_C_TYPE_UINT64, false},
    {&fsd__v1__push_snapshot_response__descriptor, "version", PUSH_SNAPSHOT_RESPONSE_VERSION,
     PROTOBUF_C_TYPE_UINT64, false},
    {&fsd__v1__push_snapshot_response__descriptor, "rows_received",
     PUSH_SNAPSHOT_RESPONSE_ROWS_RECEIVED, PROTOBUF_C_TYPE_UINT64, false},
    {&fsd__v1__push_snapshot_response__descriptor, "rows_kept", PUSH_SNAPSHOT_RESPONSE_ROWS_KEPT,
     PROTOBUF_C_TYPE_UINT64, false},
    {&fsd__v1__push_snapshot_response__descriptor, "updates_replayed",
     PUSH_SNAPSHOT_RESPONSE_UPDATES_REPLAYED, PROTOBUF_C_TYPE_UINT64, false},
};

static void test_field_numbers_match_the_proto(void **state) {
    (void)state;
    size_t n = sizeof expected / sizeof expected[0];
    for (size_t i = 0; i < n; i++) {
        const struct expected_field *e = &expected[i];
        char name[64];
        size_t k = 0;
        for (; e->name[k] != '\0' && k + 1 < sizeof name; k++) {
            name[k] = (char)(e->name[k] >= 'A' && e->name[k] <= 'Z' ? e->name[k] + 32 : e->name[k]);
        }
        name[k] = '\0';
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(e->message, name);
        if (f == NULL || f->id != e->number || f->type != e->type ||
            (f->label == PROTOBUF_C_LABEL_REPEATED) != e->repeated) {
            fail_msg("%s.%s: the .proto says %s%u type %d, fields.h %u type %d", e->message->name,
                     name, f ? "" : "(no such field) ", f ? f->id : 0, f ? (int)f->type : -1,
                     e->number, (int)e->type);
        }
    }
    /* and every field of those messages is one fields.h names */
    const ProtobufCMessageDescriptor *messages[] = {
        &fsd__v1__get_features_response__descriptor, &fsd__v1__feature_column__descriptor,
        &fsd__v1__view_staleness__descriptor, &fsd__v1__push_rows_response__descriptor,
        &fsd__v1__push_snapshot_response__descriptor};
    size_t fields = 0;
    for (size_t m = 0; m < sizeof messages / sizeof messages[0]; m++) {
        fields += messages[m]->n_fields;
    }
    assert_int_equal(fields, n);
}

/* The same for the Feast messages feast_serving.c writes (proto/feast/). */
static void test_feast_field_numbers_match_the_proto(void **state) {
    (void)state;
    const ProtobufCMessageDescriptor
        *resp = &feast__serving__get_online_features_response__descriptor,
        *meta = &feast__serving__get_online_features_response_metadata__descriptor,
        *list = &feast__serving__feature_list__descriptor,
        *vec = &feast__serving__get_online_features_response__feature_vector__descriptor,
        *ts = &google__protobuf__timestamp__descriptor, *val = &feast__types__value__descriptor,
        *info = &feast__serving__get_feast_serving_info_response__descriptor;
    const struct {
        const ProtobufCMessageDescriptor *message;
        const char *name;
        unsigned number;
        ProtobufCType type;
    } fields[] = {
        {resp, "metadata", FEAST_RESPONSE_METADATA, PROTOBUF_C_TYPE_MESSAGE},
        {resp, "results", FEAST_RESPONSE_RESULTS, PROTOBUF_C_TYPE_MESSAGE},
        {meta, "feature_names", FEAST_METADATA_FEATURE_NAMES, PROTOBUF_C_TYPE_MESSAGE},
        {list, "val", FEAST_FEATURE_LIST_VAL, PROTOBUF_C_TYPE_STRING},
        {vec, "values", FEAST_VECTOR_VALUES, PROTOBUF_C_TYPE_MESSAGE},
        {vec, "statuses", FEAST_VECTOR_STATUSES, PROTOBUF_C_TYPE_ENUM},
        {vec, "event_timestamps", FEAST_VECTOR_EVENT_TIMESTAMPS, PROTOBUF_C_TYPE_MESSAGE},
        {ts, "seconds", FEAST_TIMESTAMP_SECONDS, PROTOBUF_C_TYPE_INT64},
        {ts, "nanos", FEAST_TIMESTAMP_NANOS, PROTOBUF_C_TYPE_INT32},
        {info, "version", FEAST_SERVING_INFO_VERSION, PROTOBUF_C_TYPE_STRING},
        {val, "bytes_val", FEAST_VALUE_BYTES, PROTOBUF_C_TYPE_BYTES},
        {val, "string_val", FEAST_VALUE_STRING, PROTOBUF_C_TYPE_BYTES}, /* fsd:c-bytes */
        {val, "int32_val", FEAST_VALUE_INT32, PROTOBUF_C_TYPE_INT32},
        {val, "int64_val", FEAST_VALUE_INT64, PROTOBUF_C_TYPE_INT64},
        {val, "double_val", FEAST_VALUE_DOUBLE, PROTOBUF_C_TYPE_DOUBLE},
        {val, "float_val", FEAST_VALUE_FLOAT, PROTOBUF_C_TYPE_FLOAT},
        {val, "bool_val", FEAST_VALUE_BOOL, PROTOBUF_C_TYPE_BOOL},
        {val, "unix_timestamp_val", FEAST_VALUE_UNIX_TIMESTAMP, PROTOBUF_C_TYPE_INT64},
        {val, "string_list_val", FEAST_VALUE_STRING_LIST, PROTOBUF_C_TYPE_MESSAGE},
        {val, "int64_list_val", FEAST_VALUE_INT64_LIST, PROTOBUF_C_TYPE_MESSAGE},
        {val, "float_list_val", FEAST_VALUE_FLOAT_LIST, PROTOBUF_C_TYPE_MESSAGE},
        {&feast__types__float_list__descriptor, "val", FEAST_LIST_VAL, PROTOBUF_C_TYPE_FLOAT},
        {&feast__types__int64_list__descriptor, "val", FEAST_LIST_VAL, PROTOBUF_C_TYPE_INT64},
        {&feast__types__string_list__descriptor, "val", FEAST_LIST_VAL, PROTOBUF_C_TYPE_BYTES},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(fields[i].message, fields[i].name);
        if (f == NULL || f->id != fields[i].number || f->type != fields[i].type) {
            fail_msg("%s.%s: the .proto says %u type %d, fields.h %u type %d",
                     fields[i].message->name, fields[i].name, f ? f->id : 0, f ? (int)f->type : -1,
                     fields[i].number, (int)fields[i].type);
        }
    }
    /* Feast's FieldStatus numbers */
    assert_int_equal(FEAST__SERVING__FIELD_STATUS__PRESENT, FEAST_STATUS_PRESENT);
    assert_int_equal(FEAST__SERVING__FIELD_STATUS__NULL_VALUE, FEAST_STATUS_NULL_VALUE);
    assert_int_equal(FEAST__SERVING__FIELD_STATUS__NOT_FOUND, FEAST_STATUS_NOT_FOUND);
    assert_int_equal(FEAST__SERVING__FIELD_STATUS__OUTSIDE_MAX_AGE, FEAST_STATUS_OUTSIDE_MAX_AGE);
}

/* A response written field by field as get_features.c writes one, with values around the
 * boundaries: varints of 1..10 bytes, a nested message longer than 127 bytes (a 2-byte
 * length moved into its reserved 5 bytes), packed arrays, NaN bits, empty strings. */
static void test_writer_output_decodes_as_written(void **state) {
    (void)state;
    static const int64_t ints[] = {0, 1, -1, 127, 128, INT64_MAX, INT64_MIN, 300};
    static const double doubles[] = {0.0, -0.0, 1.5, 1e300, INFINITY};
    const size_t nints = sizeof ints / sizeof ints[0];
    const size_t ndoubles = sizeof doubles / sizeof doubles[0];
    char long_name[300];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';

    struct pbw w;
    pbw_init(&w);
    pbw_uint_field(&w, GET_FEATURES_RESPONSE_ENTITIES, 8);
    pbw_begin(&w, GET_FEATURES_RESPONSE_COLUMNS);
    pbw_bytes_field(&w, FEATURE_COLUMN_NAME, long_name, strlen(long_name));
    pbw_uint_field(&w, FEATURE_COLUMN_TYPE, FSD__V1__FEATURE_TYPE__INT64);
    pbw_begin(&w, FEATURE_COLUMN_INT64_VALUES);
    for (size_t i = 0; i < nints; i++) {
        pbw_varint(&w, (uint64_t)ints[i]);
    }
    pbw_end(&w);
    pbw_begin(&w, FEATURE_COLUMN_DOUBLE_VALUES);
    for (size_t i = 0; i < ndoubles; i++) {
        uint64_t bits;
        memcpy(&bits, &doubles[i], sizeof bits);
        pbw_fixed64(&w, bits);
    }
    pbw_end(&w);
    pbw_bytes_field(&w, FEATURE_COLUMN_STRING_VALUES, "", 0);
    pbw_bytes_field(&w, FEATURE_COLUMN_STRING_VALUES, "b\0c", 3);
    pbw_uint_field(&w, FEATURE_COLUMN_HAS_DEFAULT, 1);
    pbw_end(&w);
    pbw_begin(&w, GET_FEATURES_RESPONSE_VIEWS);
    pbw_bytes_field(&w, VIEW_STALENESS_VIEW, "v", 1);
    pbw_begin(&w, VIEW_STALENESS_STALENESS_MS);
    pbw_varint(&w, (uint64_t)(int64_t)-1);
    pbw_varint(&w, 86400000);
    pbw_end(&w);
    pbw_end(&w);
    pbw_uint_field(&w, GET_FEATURES_RESPONSE_SERVER_TIME_US, UINT64_MAX);
    assert_false(w.failed);
    assert_int_equal(w.depth, 0);

    Fsd__V1__GetFeaturesResponse *r = fsd__v1__get_features_response__unpack(NULL, w.len, w.buf);
    assert_non_null(r);
    assert_int_equal(r->entities, 8);
    assert_int_equal(r->server_time_us, UINT64_MAX);
    assert_int_equal(r->n_columns, 1);
    const Fsd__V1__FeatureColumn *c = r->columns[0];
    assert_string_equal(c->name, long_name);
    assert_int_equal(c->type, FSD__V1__FEATURE_TYPE__INT64);
    assert_int_equal(c->n_int64_values, nints);
    for (size_t i = 0; i < nints; i++) {
        assert_true(c->int64_values[i] == ints[i]);
    }
    assert_int_equal(c->n_double_values, ndoubles);
    for (size_t i = 0; i < ndoubles; i++) {
        assert_memory_equal(&c->double_values[i], &doubles[i], sizeof(double));
    }
    assert_int_equal(c->n_string_values, 2);
    assert_string_equal(c->string_values[0], "");
    assert_true(c->has_default);
    assert_int_equal(r->n_views, 1);
    assert_string_equal(r->views[0]->view, "v");
    assert_int_equal(r->views[0]->n_staleness_ms, 2);
    assert_true(r->views[0]->staleness_ms[0] == -1);
    assert_true(r->views[0]->staleness_ms[1] == 86400000);
    fsd__v1__get_features_response__free_unpacked(r, NULL);

    /* reset keeps the memory and starts empty; trim gives a big buffer back */
    size_t cap = w.cap;
    pbw_reset(&w);
    assert_int_equal(w.len, 0);
    assert_int_equal(w.cap, cap);
    pbw_trim(&w, 16);
    assert_null(w.buf);
    pbw_uint_field(&w, PUSH_ROWS_RESPONSE_DELETED, 3);
    Fsd__V1__PushRowsResponse *p = fsd__v1__push_rows_response__unpack(NULL, w.len, w.buf);
    assert_non_null(p);
    assert_int_equal(p->deleted, 3);
    assert_int_equal(p->inserted, 0);
    fsd__v1__push_rows_response__free_unpacked(p, NULL);
    pbw_deinit(&w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_field_numbers_match_the_proto),
        cmocka_unit_test(test_feast_field_numbers_match_the_proto),
        cmocka_unit_test(test_writer_output_decodes_as_written),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
