/*
 * common/metrics: the Prometheus text writer and the collector registry, without the daemon.
 * The text is checked byte for byte, so a change to the format shows up here first; the
 * integration tests parse real scrapes with prometheus_client.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/metrics.h"

enum { M_REQUESTS, M_TEMPERATURE, M_LATENCY, M_EMPTY, M_COUNT };
static const struct metric_def defs[M_COUNT] = {
    [M_REQUESTS] = {"t_requests_total", METRIC_COUNTER, "method,code", "Requests.\nBy code \\ x."},
    [M_TEMPERATURE] = {"t_temperature", METRIC_GAUGE, "", "A gauge."},
    [M_LATENCY] = {"t_latency_seconds", METRIC_HISTOGRAM, "view", "A histogram."},
    [M_EMPTY] = {"t_empty", METRIC_GAUGE, "view", "No samples yet."},
};

static void _collect_counters(struct metric_writer *w, void *ctx) {
    const uint64_t *n = ctx;
    metrics_write_count(w, &defs[M_REQUESTS], (const char *[]){"Get", "OK"}, n[0]);
    metrics_write_count(w, &defs[M_REQUESTS], (const char *[]){"a\"b\\c\nd", "x"}, n[1]);
    metrics_write_value(w, &defs[M_TEMPERATURE], NULL, 0.1);
    metrics_write_family(w, &defs[M_EMPTY]);
}

static void _collect_special(struct metric_writer *w, void *ctx) {
    (void)ctx;
    static const double bounds[] = {0.001, 0.5};
    static const uint64_t cumulative[] = {1, 3, 4};
    metrics_write_histogram(w, &defs[M_LATENCY], (const char *[]){"v"}, bounds, 2, cumulative,
                            1.25);
    metrics_write_value(w, &defs[M_TEMPERATURE], NULL, NAN);
    metrics_write_value(w, &defs[M_TEMPERATURE], NULL, -INFINITY);
}

static void _collect_failing(struct metric_writer *w, void *ctx) {
    (void)ctx;
    metrics_writer_fail(w);
}

static void test_text_format(void **state) {
    (void)state;
    uint64_t counts[2] = {7, UINT64_MAX};
    assert_int_equal(metrics_register(_collect_counters, counts), 0);
    struct buf out = {0};
    assert_int_equal(metrics_collect_all(&out), 0);
    assert_string_equal(out.data, "# HELP t_requests_total Requests.\\nBy code \\\\ x.\n"
                                  "# TYPE t_requests_total counter\n"
                                  "t_requests_total{method=\"Get\",code=\"OK\"} 7\n"
                                  "t_requests_total{method=\"a\\\"b\\\\c\\nd\",code=\"x\"} "
                                  "18446744073709551615\n"
                                  "# HELP t_temperature A gauge.\n"
                                  "# TYPE t_temperature gauge\n"
                                  "t_temperature 0.1\n"
                                  "# HELP t_empty No samples yet.\n"
                                  "# TYPE t_empty gauge\n");

    metrics_unregister(_collect_counters, counts);
    assert_int_equal(metrics_register(_collect_special, NULL), 0);
    assert_int_equal(metrics_collect_all(&out), 0);
    assert_string_equal(out.data, "# HELP t_latency_seconds A histogram.\n"
                                  "# TYPE t_latency_seconds histogram\n"
                                  "t_latency_seconds_bucket{view=\"v\",le=\"0.001\"} 1\n"
                                  "t_latency_seconds_bucket{view=\"v\",le=\"0.5\"} 3\n"
                                  "t_latency_seconds_bucket{view=\"v\",le=\"+Inf\"} 4\n"
                                  "t_latency_seconds_sum{view=\"v\"} 1.25\n"
                                  "t_latency_seconds_count{view=\"v\"} 4\n"
                                  "# HELP t_temperature A gauge.\n"
                                  "# TYPE t_temperature gauge\n"
                                  "t_temperature NaN\n"
                                  "t_temperature -Inf\n");
    metrics_unregister(_collect_special, NULL);
    buf_free(&out);
}

static void test_registry_order_and_failure(void **state) {
    (void)state;
    uint64_t a[2] = {1, 2};
    struct buf out = {0};
    assert_int_equal(metrics_collect_all(&out), 0);
    assert_int_equal(out.len, 0); /* nothing registered */
    assert_int_equal(metrics_register(_collect_special, NULL), 0);
    assert_int_equal(metrics_register(_collect_counters, a), 0);
    assert_int_equal(metrics_collect_all(&out), 0);
    /* in registration order */
    assert_true(strstr(out.data, "t_latency_seconds") < strstr(out.data, "t_requests_total"));
    /* the same collector with another context is another registration */
    uint64_t b[2] = {3, 4};
    assert_int_equal(metrics_register(_collect_failing, b), 0);
    assert_int_equal(metrics_collect_all(&out), -1);
    assert_true(out.failed);
    metrics_unregister(_collect_failing, a); /* not registered with a: nothing happens */
    assert_int_equal(metrics_collect_all(&out), -1);
    metrics_unregister(_collect_failing, b);
    assert_int_equal(metrics_collect_all(&out), 0);
    metrics_unregister(_collect_counters, a);
    metrics_unregister(_collect_special, NULL);
    assert_int_equal(metrics_collect_all(&out), 0);
    assert_int_equal(out.len, 0);
    buf_free(&out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_format),
        cmocka_unit_test(test_registry_order_and_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
