#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "store/schema.h"

static char err[256];

static void test_type_names_round_trip(void **state) {
    (void)state;
    for (int t = 0; t < STORE_TYPE_COUNT; t++) {
        enum store_type parsed;
        assert_true(store_type_parse(store_type_name((enum store_type)t), &parsed));
        assert_int_equal(parsed, t);
    }
    enum store_type parsed;
    assert_false(store_type_parse("flaot", &parsed));
    enum store_key_type key_type;
    assert_true(store_key_type_parse("string", &key_type));
    assert_int_equal(key_type, STORE_KEY_STRING);
    assert_false(store_key_type_parse("double", &key_type));
}

static void test_layout_packs_widest_first(void **state) {
    (void)state;
    struct store_schema *s = store_schema_create("v", 0);
    assert_int_equal(store_schema_add_key(s, "id", STORE_KEY_INT64, err, sizeof err), 0);
    assert_int_equal(store_schema_add_feature(s, "flag", STORE_TYPE_BOOL, err, sizeof err), 0);
    assert_int_equal(store_schema_add_feature(s, "n", STORE_TYPE_INT32, err, sizeof err), 1);
    assert_int_equal(store_schema_add_feature(s, "x", STORE_TYPE_DOUBLE, err, sizeof err), 2);
    assert_int_equal(store_schema_add_feature(s, "name", STORE_TYPE_STRING, err, sizeof err), 3);
    assert_int_equal(store_schema_finalize(s, err, sizeof err), 0);
    /* 8-byte values (x, name's reference) first, then int32, then bool; padded to 8. */
    assert_int_equal(s->features[2].fixed_offset, 0);
    assert_int_equal(s->features[3].fixed_offset, 8);
    assert_int_equal(s->features[1].fixed_offset, 16);
    assert_int_equal(s->features[0].fixed_offset, 20);
    assert_int_equal(s->fixed_size, 24);
    assert_int_equal(s->null_bytes, 1);
    store_schema_destroy(s);
}

static void test_rejects_bad_schemas(void **state) {
    (void)state;
    struct store_schema *s = store_schema_create("v", 0);
    assert_int_equal(store_schema_finalize(s, err, sizeof err), -1);
    assert_non_null(strstr(err, "at least one join key"));
    assert_int_equal(store_schema_add_key(s, "id", STORE_KEY_INT64, err, sizeof err), 0);
    assert_int_equal(store_schema_add_feature(s, "id", STORE_TYPE_INT64, err, sizeof err), -1);
    assert_non_null(strstr(err, "duplicate name \"id\""));
    int f = store_schema_add_feature(s, "name", STORE_TYPE_STRING, err, sizeof err);
    assert_int_equal(f, 0);
    assert_int_equal(store_schema_add_feature(s, "name", STORE_TYPE_INT32, err, sizeof err), -1);
    assert_int_equal(store_schema_set_default(s, 0, STORE_DEFAULT_MEAN, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "default \"mean\" needs a numeric type"));
    struct store_value wrong = {.type = STORE_TYPE_INT32, .i32 = 1};
    assert_int_equal(store_schema_set_default(s, 0, STORE_DEFAULT_LITERAL, &wrong, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "default must be a string"));
    store_schema_destroy(s);
}

static void test_clone_is_deep(void **state) {
    (void)state;
    struct store_schema *s = store_schema_create("users", 3600);
    store_schema_add_key(s, "user_id", STORE_KEY_INT64, err, sizeof err);
    store_schema_add_key(s, "country", STORE_KEY_STRING, err, sizeof err);
    store_schema_add_feature(s, "name", STORE_TYPE_STRING, err, sizeof err);
    store_schema_add_feature(s, "score", STORE_TYPE_DOUBLE, err, sizeof err);
    char text[] = "anon";
    struct store_value lit = {.type = STORE_TYPE_STRING, .var = {text, 4, 0}};
    assert_int_equal(store_schema_set_default(s, 0, STORE_DEFAULT_LITERAL, &lit, err, sizeof err),
                     0);
    text[0] = 'X'; /* the schema keeps its own copy */
    assert_int_equal(store_schema_set_default(s, 1, STORE_DEFAULT_MEAN, NULL, err, sizeof err), 0);
    assert_int_equal(store_schema_finalize(s, err, sizeof err), 0);
    struct store_schema *c = store_schema_clone(s);
    store_schema_destroy(s);
    assert_non_null(c);
    assert_string_equal(c->view, "users");
    assert_int_equal(c->ttl_us, 3600);
    assert_int_equal(c->nkeys, 2);
    assert_string_equal(c->keys[1].name, "country");
    assert_int_equal(c->keys[1].type, STORE_KEY_STRING);
    assert_true(c->finalized);
    assert_int_equal(c->features[0].default_kind, STORE_DEFAULT_LITERAL);
    assert_memory_equal(c->features[0].default_literal.var.data, "anon", 4);
    assert_int_equal(c->features[1].default_kind, STORE_DEFAULT_MEAN);
    assert_int_equal(store_schema_feature_index(c, "score"), 1);
    assert_int_equal(store_schema_feature_index(c, "nope"), -1);
    store_schema_destroy(c);
}

static struct store_schema *_fp_schema(const char *view, int64_t ttl_us, const char *feature,
                                       enum store_type type, bool extra) {
    struct store_schema *s = store_schema_create(view, ttl_us);
    store_schema_add_key(s, "id", STORE_KEY_INT64, err, sizeof err);
    store_schema_add_feature(s, feature, type, err, sizeof err);
    if (extra) {
        store_schema_add_feature(s, "extra", STORE_TYPE_INT64, err, sizeof err);
    }
    assert_int_equal(store_schema_finalize(s, err, sizeof err), 0);
    return s;
}

static void test_the_layout_fingerprint_changes_exactly_when_the_layout_does(void **state) {
    (void)state;
    struct store_schema *a = _fp_schema("v", 0, "x", STORE_TYPE_INT64, false);
    struct store_schema *same[] = {
        _fp_schema("v", 3600, "x", STORE_TYPE_INT64, false), /* another TTL */
        _fp_schema("w", 0, "x", STORE_TYPE_INT64, false),    /* another view name */
    };
    struct store_schema *other[] = {
        _fp_schema("v", 0, "y", STORE_TYPE_INT64, false),  /* a renamed feature */
        _fp_schema("v", 0, "x", STORE_TYPE_DOUBLE, false), /* a changed type */
        _fp_schema("v", 0, "x", STORE_TYPE_INT64, true),   /* a feature added */
    };
    uint64_t fp = store_schema_layout_fingerprint(a);
    for (size_t i = 0; i < 2; i++) {
        assert_true(store_schema_same_layout(a, same[i]));
        assert_int_equal(store_schema_layout_fingerprint(same[i]), fp);
        store_schema_destroy(same[i]);
    }
    for (size_t i = 0; i < 3; i++) {
        assert_false(store_schema_same_layout(a, other[i]));
        assert_int_not_equal(store_schema_layout_fingerprint(other[i]), fp);
        store_schema_destroy(other[i]);
    }
    /* A key of another type. */
    struct store_schema *k = store_schema_create("v", 0);
    store_schema_add_key(k, "id", STORE_KEY_STRING, err, sizeof err);
    store_schema_add_feature(k, "x", STORE_TYPE_INT64, err, sizeof err);
    assert_int_equal(store_schema_finalize(k, err, sizeof err), 0);
    assert_int_not_equal(store_schema_layout_fingerprint(k), fp);
    store_schema_destroy(k);
    store_schema_destroy(a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_names_round_trip),
        cmocka_unit_test(test_layout_packs_widest_first),
        cmocka_unit_test(test_rejects_bad_schemas),
        cmocka_unit_test(test_clone_is_deep),
        cmocka_unit_test(test_the_layout_fingerprint_changes_exactly_when_the_layout_does),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
