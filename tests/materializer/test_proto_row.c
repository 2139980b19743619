/*
 * The protobuf row rules PushRows, PushSnapshot and protobuf stream entries share
 * (materializer/proto_row.h): each rejection names the row and the field, rows without a name
 * (stream entries) get the same words without the prefix, and an accepted row builds into the
 * store row it describes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fsd/v1/feature_service.pb-c.h"
#include "materializer/proto_row.h"
#include "store/key.h"
#include "store/row.h"
#include "store/schema.h"

#define NOW_US (1717200000LL * 1000000) /* 2024-06-01 */

static struct store_schema *schema;

/* v: id int64, region string; features x double, n int32, s string, tags string_list */
static int _setup(void **state) {
    (void)state;
    char err[256];
    schema = store_schema_create("v", 0);
    store_schema_add_key(schema, "id", STORE_KEY_INT64, err, sizeof err);
    store_schema_add_key(schema, "region", STORE_KEY_STRING, err, sizeof err);
    store_schema_add_feature(schema, "x", STORE_TYPE_DOUBLE, err, sizeof err);
    store_schema_add_feature(schema, "n", STORE_TYPE_INT32, err, sizeof err);
    store_schema_add_feature(schema, "s", STORE_TYPE_STRING, err, sizeof err);
    store_schema_add_feature(schema, "tags", STORE_TYPE_STRING_LIST, err, sizeof err);
    return store_schema_finalize(schema, err, sizeof err);
}

static int _teardown(void **state) {
    (void)state;
    store_schema_destroy(schema);
    return 0;
}

/* A row under construction, all in one struct so tests can break one part at a time. */
struct row {
    Fsd__V1__Row row;
    Fsd__V1__KeyPart parts[3];
    Fsd__V1__KeyPart *part_ptrs[3];
    Fsd__V1__FeatureValue fvs[4];
    Fsd__V1__FeatureValue *fv_ptrs[4];
    Fsd__V1__Value values[4];
    Fsd__V1__StringList list;
    ProtobufCBinaryData list_items[2];
};

/* id=7, region="eu", x=1.5, n=3, s="hi", tags=["a", "bc"] at NOW_US - 1 s. */
static void _good(struct row *r) {
    memset(r, 0, sizeof(*r));
    r->row = (Fsd__V1__Row)FSD__V1__ROW__INIT;
    r->row.event_timestamp_us = NOW_US - 1000000;
    r->row.created_timestamp_us = 5;
    for (int i = 0; i < 3; i++) {
        r->parts[i] = (Fsd__V1__KeyPart)FSD__V1__KEY_PART__INIT;
        r->part_ptrs[i] = &r->parts[i];
    }
    r->parts[0].name = "id";
    r->parts[0].value_case = FSD__V1__KEY_PART__VALUE_INT64_VALUE;
    r->parts[0].int64_value = 7;
    r->parts[1].name = "region";
    r->parts[1].value_case = FSD__V1__KEY_PART__VALUE_STRING_VALUE;
    r->parts[1].string_value = (ProtobufCBinaryData){2, (uint8_t *)"eu"};
    r->row.n_keys = 2;
    r->row.keys = r->part_ptrs;
    static const char *const names[] = {"x", "n", "s", "tags"};
    for (int i = 0; i < 4; i++) {
        r->fvs[i] = (Fsd__V1__FeatureValue)FSD__V1__FEATURE_VALUE__INIT;
        r->values[i] = (Fsd__V1__Value)FSD__V1__VALUE__INIT;
        r->fvs[i].name = (char *)names[i];
        r->fvs[i].value = &r->values[i];
        r->fv_ptrs[i] = &r->fvs[i];
    }
    r->values[0].kind_case = FSD__V1__VALUE__KIND_DOUBLE_VALUE;
    r->values[0].double_value = 1.5;
    r->values[1].kind_case = FSD__V1__VALUE__KIND_INT32_VALUE;
    r->values[1].int32_value = 3;
    r->values[2].kind_case = FSD__V1__VALUE__KIND_STRING_VALUE;
    r->values[2].string_value = (ProtobufCBinaryData){2, (uint8_t *)"hi"};
    r->list = (Fsd__V1__StringList)FSD__V1__STRING_LIST__INIT;
    r->list_items[0] = (ProtobufCBinaryData){1, (uint8_t *)"a"};
    r->list_items[1] = (ProtobufCBinaryData){2, (uint8_t *)"bc"};
    r->list.n_values = 2;
    r->list.values = r->list_items;
    r->values[3].kind_case = FSD__V1__VALUE__KIND_STRING_LIST;
    r->values[3].string_list = &r->list;
    r->row.n_values = 4;
    r->row.values = r->fv_ptrs;
}

static char err[512];
static uint8_t key_buf[STORE_MAX_KEY_BYTES];

static void _expect_bad(const struct row *r, size_t index, const char *want) {
    int len = mat_proto_row_check(schema, &r->row, index, NOW_US, key_buf, err, sizeof err);
    if (len >= 0 || strcmp(err, want) != 0) {
        print_error("want \"%s\", got %d \"%s\"\n", want, len, err);
    }
    assert_int_equal(len, -1);
    assert_string_equal(err, want);
}

static void test_rejections_name_the_row_and_the_field(void **state) {
    (void)state;
    struct row r;
    _good(&r);
    r.row.event_timestamp_us = 0;
    _expect_bad(&r, 3,
                "row 3: event_timestamp_us must be set (microseconds since the Unix epoch), got 0");
    _good(&r);
    r.row.event_timestamp_us = NOW_US + 3601LL * 1000000;
    _expect_bad(&r, 0,
                "row 0: event_timestamp_us 1717203601000000 is more than an hour in the "
                "future");
    _good(&r);
    r.row.event_timestamp_us = NOW_US + 3600LL * 1000000; /* exactly an hour: allowed */
    assert_true(mat_proto_row_check(schema, &r.row, 0, NOW_US, key_buf, err, sizeof err) > 0);

    _good(&r);
    r.parts[1].name = "other";
    _expect_bad(&r, 1, "row 1: \"other\" is not a join key of view v");
    _good(&r);
    r.parts[1] = r.parts[0];
    _expect_bad(&r, 1, "row 1: join key id given twice");
    _good(&r);
    r.row.n_keys = 1;
    _expect_bad(&r, 1, "row 1: join key region of view v is missing");
    _good(&r);
    r.parts[1].value_case = FSD__V1__KEY_PART__VALUE__NOT_SET;
    _expect_bad(&r, 1, "row 1: join key region has no value");
    _good(&r);
    r.parts[1].string_value = (ProtobufCBinaryData){2, (uint8_t *)"\xff\xfe"};
    _expect_bad(&r, 1, "row 1: join key region is not valid UTF-8");
    _good(&r);
    r.parts[0].value_case = FSD__V1__KEY_PART__VALUE_STRING_VALUE;
    r.parts[0].string_value = (ProtobufCBinaryData){1, (uint8_t *)"7"};
    _expect_bad(&r, 1, "row 1: join key id of view v is int64, got string");

    _good(&r);
    r.fvs[2].name = "colour";
    _expect_bad(&r, 2, "row 2: view v has no feature \"colour\"");
    _good(&r);
    r.fvs[3].name = "x";
    _expect_bad(&r, 2, "row 2: feature x given twice");
    _good(&r);
    r.values[0].kind_case = FSD__V1__VALUE__KIND_STRING_VALUE;
    r.values[0].string_value = (ProtobufCBinaryData){1, (uint8_t *)"1"};
    _expect_bad(&r, 2, "row 2: feature x is double, got string_value");
    _good(&r);
    r.list_items[1] = (ProtobufCBinaryData){1, (uint8_t *)"\xc3"};
    _expect_bad(&r, 2, "row 2: feature tags is not valid UTF-8");

    /* an unnamed row (a stream entry): the same words, no prefix */
    _good(&r);
    r.values[1].kind_case = FSD__V1__VALUE__KIND_INT64_VALUE;
    _expect_bad(&r, MAT_PROTO_ROW_UNNAMED, "feature n is int32, got int64_value");
    /* a long name from the wire is cut, the message stays whole */
    static char long_name[1000];
    memset(long_name, 'q', sizeof long_name - 1);
    _good(&r);
    r.fvs[0].name = long_name;
    assert_int_equal(mat_proto_row_check(schema, &r.row, 9, NOW_US, key_buf, err, sizeof err), -1);
    assert_non_null(strstr(err, "row 9: view v has no feature \"qqq"));
    assert_int_equal(strlen(err), strlen("row 9: view v has no feature \"\"") + 128);
}

static void *_scratch(void *ctx, size_t bytes) {
    (void)ctx;
    static uint64_t mem[8]; /* room for a string list of up to 4 items */
    return bytes <= sizeof mem ? mem : NULL;
}

static void test_accepted_rows_build_what_they_say(void **state) {
    (void)state;
    struct row r;
    _good(&r);
    /* features in any order, one null (a value with no kind), one left out */
    Fsd__V1__FeatureValue *order[3] = {&r.fvs[3], &r.fvs[0], &r.fvs[2]};
    r.values[2].kind_case = FSD__V1__VALUE__KIND__NOT_SET;
    r.row.values = order;
    r.row.n_values = 3;
    int len = mat_proto_row_check(schema, &r.row, 0, NOW_US, key_buf, err, sizeof err);
    assert_true(len > 0);
    struct store_key_part parts[2] = {{.type = STORE_KEY_INT64, .i64 = 7},
                                      {.type = STORE_KEY_STRING, .str = "eu", .str_len = 2}};
    uint8_t want[64];
    assert_int_equal(store_key_encode(schema, parts, want, sizeof want, err, sizeof err), len);
    assert_memory_equal(key_buf, want, (size_t)len);

    struct store_row_builder b;
    assert_int_equal(store_row_builder_init(&b, schema), 0);
    assert_int_equal(mat_proto_row_build(&b, &r.row, _scratch, NULL), 0);
    assert_int_equal(b.event_ts_us, NOW_US - 1000000);
    assert_int_equal(b.created_ts_us, 5);
    size_t size = store_row_size(&b, (uint32_t)len);
    struct store_row *row = aligned_alloc(8, (size + 7) & ~(size_t)7);
    store_row_write(&b, key_buf, (uint32_t)len, row);
    struct store_value v;
    store_row_get(schema, row, 0, &v);
    assert_true(v.f64 == 1.5);
    assert_true(store_row_is_null(schema, row, 1)); /* left out */
    assert_true(store_row_is_null(schema, row, 2)); /* sent without a value */
    store_row_get(schema, row, 3, &v);
    assert_int_equal(v.var.count, 2);
    free(row);
    /* a scratch that fails is out of memory */
    r.list.n_values = 9;
    assert_int_equal(mat_proto_row_build(&b, &r.row, _scratch, NULL), -1);
    store_row_builder_deinit(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rejections_name_the_row_and_the_field),
        cmocka_unit_test(test_accepted_rows_build_what_they_say),
    };
    return cmocka_run_group_tests(tests, _setup, _teardown);
}
