#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "store/key.h"

static char err[256];

static struct store_schema *_schema(int nkeys, const enum store_key_type *types) {
    struct store_schema *s = store_schema_create("v", 0);
    const char *names[] = {"a", "b", "c"};
    for (int i = 0; i < nkeys; i++) {
        assert_int_equal(store_schema_add_key(s, names[i], types[i], err, sizeof err), 0);
    }
    assert_int_equal(store_schema_finalize(s, err, sizeof err), 0);
    return s;
}

static void test_int64_key_is_eight_little_endian_bytes(void **state) {
    (void)state;
    struct store_schema *s = _schema(1, (enum store_key_type[]){STORE_KEY_INT64});
    struct store_key_part part = {.type = STORE_KEY_INT64, .i64 = 42};
    uint8_t buf[64];
    assert_int_equal(store_key_encode(s, &part, buf, sizeof buf, err, sizeof err), 8);
    assert_memory_equal(buf, "\x2a\0\0\0\0\0\0\0", 8);
    part.i64 = -1;
    assert_int_equal(store_key_encode(s, &part, buf, sizeof buf, err, sizeof err), 8);
    assert_memory_equal(buf, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
    struct store_key_part back;
    assert_int_equal(store_key_decode(s, buf, 8, &back), 0);
    assert_int_equal(back.i64, -1);
    store_schema_destroy(s);
}

static void test_composite_keys_round_trip(void **state) {
    (void)state;
    enum store_key_type types[] = {STORE_KEY_STRING, STORE_KEY_INT64, STORE_KEY_STRING};
    struct store_schema *s = _schema(3, types);
    char long_str[300];
    memset(long_str, 'z', sizeof long_str);
    struct store_key_part parts[3] = {
        {.type = STORE_KEY_STRING, .str = long_str, .str_len = sizeof long_str},
        {.type = STORE_KEY_INT64, .i64 = INT64_MIN},
        {.type = STORE_KEY_STRING, .str = "item-7", .str_len = 6},
    };
    uint8_t buf[512];
    int len = store_key_encode(s, parts, buf, sizeof buf, err, sizeof err);
    /* 2-byte varint for 300, the string, 8 bytes, and the last string without a length */
    assert_int_equal(len, 2 + 300 + 8 + 6);
    struct store_key_part back[3];
    assert_int_equal(store_key_decode(s, buf, (uint32_t)len, back), 0);
    assert_int_equal(back[0].str_len, 300);
    assert_memory_equal(back[0].str, long_str, 300);
    assert_int_equal(back[1].i64, INT64_MIN);
    assert_int_equal(back[2].str_len, 6);
    assert_memory_equal(back[2].str, "item-7", 6);
    /* Truncated input is rejected, not read past its end. */
    assert_int_equal(store_key_decode(s, buf, 100, back), -1);
    store_schema_destroy(s);
}

static void test_string_boundaries_change_the_key(void **state) {
    (void)state;
    enum store_key_type types[] = {STORE_KEY_STRING, STORE_KEY_STRING};
    struct store_schema *s = _schema(2, types);
    struct store_key_part ab_c[2] = {{.type = STORE_KEY_STRING, .str = "ab", .str_len = 2},
                                     {.type = STORE_KEY_STRING, .str = "c", .str_len = 1}};
    struct store_key_part a_bc[2] = {{.type = STORE_KEY_STRING, .str = "a", .str_len = 1},
                                     {.type = STORE_KEY_STRING, .str = "bc", .str_len = 2}};
    uint8_t k1[16], k2[16];
    int n1 = store_key_encode(s, ab_c, k1, sizeof k1, err, sizeof err);
    int n2 = store_key_encode(s, a_bc, k2, sizeof k2, err, sizeof err);
    assert_int_equal(n1, n2);
    assert_true(memcmp(k1, k2, (size_t)n1) != 0);
    assert_true(store_key_hash(k1, (uint32_t)n1) != store_key_hash(k2, (uint32_t)n2));
    assert_int_equal(store_key_hash(k1, (uint32_t)n1), store_key_hash(k1, (uint32_t)n1));
    store_schema_destroy(s);
}

static void test_wrong_type_and_too_long_fail_with_a_message(void **state) {
    (void)state;
    struct store_schema *s = _schema(1, (enum store_key_type[]){STORE_KEY_INT64});
    struct store_key_part part = {.type = STORE_KEY_STRING, .str = "42", .str_len = 2};
    uint8_t buf[8];
    assert_int_equal(store_key_encode(s, &part, buf, sizeof buf, err, sizeof err), -1);
    assert_string_equal(err, "join key a of view v is int64, got string");
    store_schema_destroy(s);
    s = _schema(1, (enum store_key_type[]){STORE_KEY_STRING});
    part.str_len = 9;
    part.str = "123456789";
    assert_int_equal(store_key_encode(s, &part, buf, sizeof buf, err, sizeof err), -1);
    assert_non_null(strstr(err, "longer than 8 bytes"));
    store_schema_destroy(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int64_key_is_eight_little_endian_bytes),
        cmocka_unit_test(test_composite_keys_round_trip),
        cmocka_unit_test(test_string_boundaries_change_the_key),
        cmocka_unit_test(test_wrong_type_and_too_long_fail_with_a_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
