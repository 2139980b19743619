#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fixtures.h"
#include "store/row.h"

static struct store_row *_finish(struct store_row_builder *b, const uint8_t *key, uint32_t len) {
    size_t size = store_row_size(b, len);
    assert_int_equal(size % 8, 0);
    struct store_row *row = aligned_alloc(8, size);
    memset(row, 0xAB, size);
    store_row_write(b, key, len, row);
    assert_int_equal(store_row_total_size(b->schema, row), size);
    return row;
}

static void test_every_type_round_trips_exactly(void **state) {
    (void)state;
    struct store_schema *s = fixture_all_types_schema(0);
    struct store_row_builder b;
    assert_int_equal(store_row_builder_init(&b, s), 0);
    store_row_builder_reset(&b, 1700000000123456, 7);
    const float floats[] = {1.5f, -0.0f, 3.4028235e38f};
    const int64_t ints[] = {INT64_MIN, 0, INT64_MAX};
    const char *strs[] = {"a", "", "ccc"};
    const uint32_t lens[] = {1, 0, 3};
    const uint8_t blob[] = {0, 1, 2, 255};
    store_row_set_int32(&b, STORE_TYPE_INT32, INT32_MIN);
    store_row_set_int64(&b, STORE_TYPE_INT64, INT64_MAX);
    store_row_set_float(&b, STORE_TYPE_FLOAT, 0.1f);
    store_row_set_double(&b, STORE_TYPE_DOUBLE, 0.1);
    store_row_set_bool(&b, STORE_TYPE_BOOL, true);
    assert_int_equal(store_row_set_bytes(&b, STORE_TYPE_STRING, "héllo", 6), 0);
    assert_int_equal(store_row_set_bytes(&b, STORE_TYPE_BYTES, blob, sizeof blob), 0);
    store_row_set_timestamp(&b, STORE_TYPE_TIMESTAMP, -1);
    assert_int_equal(store_row_set_list(&b, STORE_TYPE_FLOAT_LIST, floats, 3), 0);
    assert_int_equal(store_row_set_list(&b, STORE_TYPE_INT64_LIST, ints, 3), 0);
    assert_int_equal(store_row_set_packed_list(&b, STORE_TYPE_STRING_LIST, strs, lens, 3), 0);
    const int32_t ints32[] = {INT32_MIN, -1, INT32_MAX, 5};
    const double doubles[] = {0.1, -0.0};
    const uint8_t bools[] = {1, 0, 1};
    const char *items[] = {"\0\xff", "z"};
    const uint32_t item_lens[] = {2, 1};
    const int64_t stamps[] = {-1, 1700000000000000};
    assert_int_equal(store_row_set_list(&b, STORE_TYPE_INT32_LIST, ints32, 4), 0);
    assert_int_equal(store_row_set_list(&b, STORE_TYPE_DOUBLE_LIST, doubles, 2), 0);
    assert_int_equal(store_row_set_list(&b, STORE_TYPE_BOOL_LIST, bools, 3), 0);
    assert_int_equal(store_row_set_packed_list(&b, STORE_TYPE_BYTES_LIST, items, item_lens, 2), 0);
    assert_int_equal(store_row_set_list(&b, STORE_TYPE_TIMESTAMP_LIST, stamps, 2), 0);

    uint8_t kb[8];
    struct store_key key = fixture_int_key(99, kb);
    struct store_row *row = _finish(&b, key.data, key.len);
    assert_int_equal(row->event_ts_us, 1700000000123456);
    assert_int_equal(store_row_created_us(row), 7);
    assert_int_equal(row->key_len, 8);
    assert_memory_equal(store_row_key(row), kb, 8);

    struct store_value v;
    for (uint32_t i = 0; i < s->nfeatures; i++) {
        assert_false(store_row_is_null(s, row, i));
    }
    store_row_get(s, row, STORE_TYPE_INT32, &v);
    assert_int_equal(v.i32, INT32_MIN);
    store_row_get(s, row, STORE_TYPE_INT64, &v);
    assert_true(v.i64 == INT64_MAX);
    store_row_get(s, row, STORE_TYPE_FLOAT, &v);
    assert_memory_equal(&v.f32, &(float){0.1f}, 4);
    store_row_get(s, row, STORE_TYPE_DOUBLE, &v);
    assert_memory_equal(&v.f64, &(double){0.1}, 8);
    store_row_get(s, row, STORE_TYPE_BOOL, &v);
    assert_true(v.b);
    store_row_get(s, row, STORE_TYPE_STRING, &v);
    assert_int_equal(v.var.bytes, 6);
    assert_memory_equal(v.var.data, "héllo", 6);
    store_row_get(s, row, STORE_TYPE_BYTES, &v);
    assert_int_equal(v.var.bytes, 4);
    assert_memory_equal(v.var.data, blob, 4);
    store_row_get(s, row, STORE_TYPE_TIMESTAMP, &v);
    assert_int_equal(v.ts_us, -1);
    store_row_get(s, row, STORE_TYPE_FLOAT_LIST, &v);
    assert_int_equal(v.var.count, 3);
    assert_int_equal((uintptr_t)v.var.data % 8, 0); /* usable in place */
    assert_memory_equal(v.var.data, floats, sizeof floats);
    store_row_get(s, row, STORE_TYPE_INT64_LIST, &v);
    assert_int_equal(v.var.count, 3);
    assert_int_equal((uintptr_t)v.var.data % 8, 0);
    assert_memory_equal(v.var.data, ints, sizeof ints);
    store_row_get(s, row, STORE_TYPE_STRING_LIST, &v);
    assert_int_equal(v.var.count, 3);
    for (uint32_t i = 0; i < 3; i++) {
        const char *data;
        uint32_t len;
        store_packed_list_at(&v, i, &data, &len);
        assert_int_equal(len, lens[i]);
        assert_memory_equal(data, strs[i], len);
    }
    const struct {
        enum store_type type;
        const void *data;
        uint32_t count, bytes;
    } arrays[] = {
        {STORE_TYPE_INT32_LIST, ints32, 4, sizeof ints32},
        {STORE_TYPE_DOUBLE_LIST, doubles, 2, sizeof doubles},
        {STORE_TYPE_BOOL_LIST, bools, 3, sizeof bools},
        {STORE_TYPE_TIMESTAMP_LIST, stamps, 2, sizeof stamps},
    };
    for (size_t a = 0; a < sizeof arrays / sizeof arrays[0]; a++) {
        store_row_get(s, row, arrays[a].type, &v);
        assert_int_equal(v.type, arrays[a].type);
        assert_int_equal(v.var.count, arrays[a].count);
        assert_int_equal(v.var.bytes, arrays[a].bytes);
        assert_int_equal((uintptr_t)v.var.data % 8, 0);
        assert_memory_equal(v.var.data, arrays[a].data, arrays[a].bytes);
    }
    store_row_get(s, row, STORE_TYPE_BYTES_LIST, &v);
    assert_int_equal(v.var.count, 2);
    for (uint32_t i = 0; i < 2; i++) {
        const char *data;
        uint32_t len;
        store_packed_list_at(&v, i, &data, &len);
        assert_int_equal(len, item_lens[i]);
        assert_memory_equal(data, items[i], len);
    }
    char why[160];
    assert_int_equal(store_row_check(s, row, store_row_total_size(s, row), why, sizeof why), 0);
    /* A bool list byte other than 0 or 1 (a damaged file) is refused, not read as true. */
    store_row_get(s, row, STORE_TYPE_BOOL_LIST, &v);
    ((uint8_t *)v.var.data)[1] = 2;
    assert_int_equal(store_row_check(s, row, store_row_total_size(s, row), why, sizeof why), -1);
    assert_non_null(strstr(why, "bool list"));
    ((uint8_t *)v.var.data)[1] = 0;

    /* Writing the string list back through the generic setter reproduces it. */
    store_row_get(s, row, STORE_TYPE_STRING_LIST, &v);
    struct store_row_builder b2;
    store_row_builder_init(&b2, s);
    store_row_builder_reset(&b2, 1, 1);
    assert_int_equal(store_row_set_value(&b2, STORE_TYPE_STRING_LIST, &v), 0);
    struct store_row *row2 = _finish(&b2, key.data, key.len);
    struct store_value v2;
    store_row_get(s, row2, STORE_TYPE_STRING_LIST, &v2);
    assert_int_equal(v2.var.count, 3);
    assert_int_equal(v2.var.bytes, v.var.bytes);
    assert_memory_equal(v2.var.data, v.var.data, v.var.bytes);
    /* A type mismatch is refused by the checked setter. */
    struct store_value wrong = {.type = STORE_TYPE_INT32, .i32 = 1};
    assert_int_equal(store_row_set_value(&b2, STORE_TYPE_DOUBLE, &wrong), -1);

    free(row2);
    free(row);
    store_row_builder_deinit(&b2);
    store_row_builder_deinit(&b);
    store_schema_destroy(s);
}

static void test_unset_features_are_null_and_reset_clears(void **state) {
    (void)state;
    struct store_schema *s = fixture_all_types_schema(0);
    struct store_row_builder b;
    store_row_builder_init(&b, s);
    store_row_builder_reset(&b, 10, 0);
    store_row_set_double(&b, STORE_TYPE_DOUBLE, 2.5);
    assert_int_equal(store_row_set_bytes(&b, STORE_TYPE_STRING, "x", 1), 0);
    store_row_set_null(&b, STORE_TYPE_STRING);
    uint8_t kb[8];
    struct store_key key = fixture_int_key(1, kb);
    struct store_row *row = _finish(&b, key.data, key.len);
    for (uint32_t i = 0; i < s->nfeatures; i++) {
        assert_int_equal(store_row_is_null(s, row, i), i != STORE_TYPE_DOUBLE);
    }
    /* A nulled var value takes no room in the row. */
    assert_int_equal(row->var_bytes, 0);
    free(row);
    store_row_builder_reset(&b, 11, 0);
    row = _finish(&b, key.data, key.len);
    for (uint32_t i = 0; i < s->nfeatures; i++) {
        assert_true(store_row_is_null(s, row, i));
    }
    free(row);
    store_row_builder_deinit(&b);
    store_schema_destroy(s);
}

/* The created time comes back as written however it is kept: 0 and STORE_CREATED_NONE in a
 * flag, anything else in 8 bytes before the key; the key and values move with it. */
static void test_created_time_round_trips_in_every_encoding(void **state) {
    (void)state;
    struct store_schema *s = fixture_all_types_schema(0);
    struct store_row_builder b;
    store_row_builder_init(&b, s);
    const int64_t created[] = {0, STORE_CREATED_NONE, 1, -1, INT64_MAX};
    const size_t extra[] = {0, 0, 8, 8, 8};
    uint8_t kb[8];
    struct store_key key = fixture_int_key(42, kb);
    size_t base = 0;
    for (size_t i = 0; i < sizeof created / sizeof created[0]; i++) {
        store_row_builder_reset(&b, 100, created[i]);
        store_row_set_double(&b, STORE_TYPE_DOUBLE, 2.5);
        assert_int_equal(store_row_set_bytes(&b, STORE_TYPE_STRING, "xyz", 3), 0);
        struct store_row *row = _finish(&b, key.data, key.len);
        size_t size = store_row_total_size(s, row);
        assert_int_equal(size, store_row_size(&b, key.len));
        base = i == 0 ? size : base;
        assert_int_equal(size, base + extra[i]);
        assert_int_equal(store_row_created_us(row), created[i]);
        assert_memory_equal(store_row_key(row), kb, 8);
        struct store_value v;
        store_row_get(s, row, STORE_TYPE_DOUBLE, &v);
        assert_true(v.f64 == 2.5);
        store_row_get(s, row, STORE_TYPE_STRING, &v);
        assert_int_equal(v.var.bytes, 3);
        assert_memory_equal(v.var.data, "xyz", 3);
        /* ties on the event time go to the later created time */
        assert_false(store_row_is_older_than(row, 100, created[i]));
        if (created[i] < INT64_MAX) {
            assert_true(store_row_is_older_than(row, 100, created[i] + 1));
        }
        free(row);
        struct store_row *tomb = aligned_alloc(8, store_row_size_tombstone(8, created[i]));
        store_row_write_tombstone(tomb, kb, 8, 100, created[i]);
        assert_int_equal(store_row_total_size(s, tomb), store_row_size_tombstone(8, created[i]));
        assert_int_equal(store_row_created_us(tomb), created[i]);
        assert_memory_equal(store_row_key(tomb), kb, 8);
        free(tomb);
    }
    store_row_builder_deinit(&b);
    store_schema_destroy(s);
}

static void test_benchmark_row_is_compact(void **state) {
    (void)state;
    /* 8 doubles, 1 int64, 1 string of 10 bytes, int64 key: the layout row.h promises. */
    char err[256];
    struct store_schema *s = store_schema_create("bench", 0);
    store_schema_add_key(s, "id", STORE_KEY_INT64, err, sizeof err);
    for (int i = 0; i < 8; i++) {
        char name[8];
        snprintf(name, sizeof name, "d%d", i);
        store_schema_add_feature(s, name, STORE_TYPE_DOUBLE, err, sizeof err);
    }
    store_schema_add_feature(s, "n", STORE_TYPE_INT64, err, sizeof err);
    store_schema_add_feature(s, "s", STORE_TYPE_STRING, err, sizeof err);
    store_schema_finalize(s, err, sizeof err);
    struct store_row_builder b;
    store_row_builder_init(&b, s);
    store_row_builder_reset(&b, 1, 0);
    for (uint32_t i = 0; i < 8; i++) {
        store_row_set_double(&b, i, i);
    }
    store_row_set_int64(&b, 8, 8);
    store_row_set_bytes(&b, 9, "0123456789", 10);
    assert_int_equal(store_row_size(&b, 8), 120); /* 116 bytes, padded to 8 */
    /* a created time other than 0 or STORE_CREATED_NONE takes 8 bytes more */
    store_row_builder_reset(&b, 1, 1);
    for (uint32_t i = 0; i < 8; i++) {
        store_row_set_double(&b, i, i);
    }
    store_row_set_int64(&b, 8, 8);
    store_row_set_bytes(&b, 9, "0123456789", 10);
    assert_int_equal(store_row_size(&b, 8), 128);
    store_row_builder_deinit(&b);
    store_schema_destroy(s);
}

static void test_tombstone_has_key_and_no_values(void **state) {
    (void)state;
    uint8_t key[3] = {'a', 'b', 'c'};
    size_t size = store_row_size_tombstone(3, 6);
    assert_int_equal(size, sizeof(struct store_row) + 8 + 8); /* created time, key */
    struct store_row *row = aligned_alloc(8, size);
    store_row_write_tombstone(row, key, 3, 5, 6);
    assert_true(row->flags & STORE_ROW_TOMBSTONE);
    assert_int_equal(row->event_ts_us, 5);
    assert_memory_equal(store_row_key(row), key, 3);
    assert_true(store_row_is_older_than(row, 6, 0));
    assert_true(store_row_is_older_than(row, 5, 7));
    assert_false(store_row_is_older_than(row, 5, 6));
    assert_false(store_row_is_older_than(row, 4, 100));
    free(row);
}

/* Regression: an empty first variable-width value offset a NULL staging buffer (clang UBSan). */
static void test_empty_first_var_value_on_a_fresh_builder(void **state) {
    (void)state;
    struct store_schema *s = fixture_all_types_schema(0);
    struct store_row_builder b;
    assert_int_equal(store_row_builder_init(&b, s), 0);
    store_row_builder_reset(&b, 1, 0);
    assert_int_equal(store_row_set_bytes(&b, STORE_TYPE_STRING, "", 0), 0);
    uint8_t kb[8];
    struct store_key key = fixture_int_key(3, kb);
    struct store_row *row = _finish(&b, key.data, key.len);
    struct store_value v;
    assert_false(store_row_is_null(s, row, STORE_TYPE_STRING));
    store_row_get(s, row, STORE_TYPE_STRING, &v);
    assert_int_equal(v.var.bytes, 0);
    free(row);
    store_row_builder_deinit(&b);
    store_schema_destroy(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type_round_trips_exactly),
        cmocka_unit_test(test_unset_features_are_null_and_reset_clears),
        cmocka_unit_test(test_created_time_round_trips_in_every_encoding),
        cmocka_unit_test(test_benchmark_row_is_compact),
        cmocka_unit_test(test_tombstone_has_key_and_no_values),
        cmocka_unit_test(test_empty_first_var_value_on_a_fresh_builder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
