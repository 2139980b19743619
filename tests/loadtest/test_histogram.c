/*
 * grpc_load's latency histogram (loadtest/histogram.c): bucket bounds, the 1% precision it
 * promises from 1 us to 60 s, percentiles, merging. Lives with the client tests because
 * grpc_load is the client that uses it; it needs nothing but the histogram.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "histogram.h"

static void test_buckets_tile_the_range_without_gaps(void **state) {
    (void)state;
    assert_int_equal(histogram_bucket(0), 0);
    assert_int_equal(histogram_bucket(255), 255);
    assert_int_equal(histogram_bucket(256), 256);
    assert_int_equal(histogram_bucket(HISTOGRAM_MAX_NS), HISTOGRAM_BUCKETS - 1);
    assert_int_equal(histogram_bucket(INT64_MAX), HISTOGRAM_BUCKETS - 1);
    assert_int_equal(histogram_bucket(-5), 0);
    for (uint32_t i = 0; i + 1 < HISTOGRAM_BUCKETS; i++) {
        int64_t low = histogram_bucket_low(i), high = histogram_bucket_high(i);
        assert_true(low <= high);
        assert_int_equal(histogram_bucket_low(i + 1), high + 1);
        assert_int_equal(histogram_bucket(low), i);
        assert_int_equal(histogram_bucket(high), i);
    }
    assert_int_equal(histogram_bucket_high(HISTOGRAM_BUCKETS - 1), HISTOGRAM_MAX_NS);
}

static void test_one_percent_precision_from_1us_to_60s(void **state) {
    (void)state;
    for (int64_t v = 1000; v <= INT64_C(60000000000); v = v * 101 / 100 + 7) {
        uint32_t b = histogram_bucket(v);
        double width = (double)(histogram_bucket_high(b) - histogram_bucket_low(b) + 1);
        assert_true(width / (double)v <= 0.01);
        struct histogram h;
        histogram_init(&h);
        histogram_record(&h, v);
        histogram_record(&h, 2 * v); /* so max does not cap the answer */
        int64_t p = histogram_percentile(&h, 50);
        assert_true(llabs(p - v) <= v / 100);
    }
}

static void test_percentiles_of_a_known_distribution(void **state) {
    (void)state;
    struct histogram *h = malloc(sizeof(*h));
    histogram_init(h);
    assert_int_equal(histogram_percentile(h, 99), 0);
    /* 1..10000 us, each once */
    for (int64_t us = 1; us <= 10000; us++) {
        histogram_record(h, us * 1000);
    }
    assert_int_equal(h->count, 10000);
    assert_int_equal(h->min_ns, 1000);
    assert_int_equal(h->max_ns, 10000000);
    double p50 = (double)histogram_percentile(h, 50), p99 = (double)histogram_percentile(h, 99);
    double p999 = (double)histogram_percentile(h, 99.9);
    assert_true(fabs(p50 - 5000e3) <= 5000e3 * 0.01);
    assert_true(fabs(p99 - 9900e3) <= 9900e3 * 0.01);
    assert_true(fabs(p999 - 9990e3) <= 9990e3 * 0.01);
    assert_int_equal(histogram_percentile(h, 100), 10000000);
    assert_int_equal(histogram_percentile(h, 0), 1000);
    assert_true(fabs(histogram_mean(h) - 5000.5e3) < 1);
    /* one huge outlier: p99 stays put, max is exact */
    histogram_record(h, INT64_C(90000000000));
    assert_true(fabs((double)histogram_percentile(h, 99) - 9900e3) <= 9900e3 * 0.01);
    assert_int_equal(histogram_percentile(h, 100), INT64_C(90000000000));
    free(h);
}

static void test_merge_equals_recording_into_one(void **state) {
    (void)state;
    struct histogram *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b)), *all = malloc(sizeof(*all));
    histogram_init(a);
    histogram_init(b);
    histogram_init(all);
    uint64_t x = 12345;
    for (int i = 0; i < 100000; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        int64_t v = (int64_t)(x >> 40);
        histogram_record(i % 3 ? a : b, v);
        histogram_record(all, v);
    }
    histogram_merge(a, b);
    assert_int_equal(a->count, all->count);
    assert_int_equal(a->min_ns, all->min_ns);
    assert_int_equal(a->max_ns, all->max_ns);
    for (double p = 1; p < 100; p += 7.5) {
        assert_int_equal(histogram_percentile(a, p), histogram_percentile(all, p));
    }
    free(a);
    free(b);
    free(all);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets_tile_the_range_without_gaps),
        cmocka_unit_test(test_one_percent_precision_from_1us_to_60s),
        cmocka_unit_test(test_percentiles_of_a_known_distribution),
        cmocka_unit_test(test_merge_equals_recording_into_one),
    };
    return cmocka_run_group_tests_name("histogram", tests, NULL, NULL);
}
