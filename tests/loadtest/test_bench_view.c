/*
 * The benchmark view's two C forms agree: the names and types bench_view.h gives the programs
 * that write rows without a config (grpc_load, stream_bench) are the features of
 * loadtest/bench_view.yaml as config_parse() reads it, in its order, with the same view name
 * and join key. Also that bench_view_config() fills the template's placeholders in: a source,
 * a contract and `default: mean` reach the parsed view, the plain view has none of them, and
 * its text is loadtest/bench_view.py's for the same arguments (test_bench_view.py compares
 * bench_view.py with bench_lib.sh's bench_view_yaml).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bench_view.h"
#include "config/config.h"

static const struct bench_feature header_features[BENCH_FEATURES] = BENCH_FEATURE_LIST;

static char err[CONFIG_ERR_LEN];

static struct fsd_config *_parse(const char *view_keys, const char *numeric_default) {
    struct fsd_config *config = bench_view_parse(view_keys, numeric_default, err, sizeof err);
    if (config == NULL) {
        fail_msg("%s", err);
    }
    assert_int_equal(config->nviews, 1);
    return config;
}

static void test_header_names_and_types_are_the_templates(void **state) {
    (void)state;
    struct fsd_config *config = _parse(NULL, NULL);
    const struct store_schema *schema = config->views[0].schema;
    assert_string_equal(schema->view, BENCH_VIEW_NAME);
    assert_int_equal(schema->nkeys, 1);
    assert_string_equal(schema->keys[0].name, BENCH_KEY_NAME);
    assert_string_equal(store_key_type_name(schema->keys[0].type), "int64");
    assert_int_equal(schema->nfeatures, BENCH_FEATURES);
    for (uint32_t f = 0; f < BENCH_FEATURES; f++) {
        assert_string_equal(schema->features[f].name, header_features[f].name);
        assert_string_equal(store_type_name(schema->features[f].type), header_features[f].type);
    }
    config_destroy(config);
}

static void test_header_doubles_come_first(void **state) {
    (void)state;
    /* grpc_load's rows and stream_bench's entries are the doubles, then count and label */
    for (uint32_t f = 0; f < BENCH_FEATURES; f++) {
        const char *expected = f < BENCH_DOUBLE_FEATURES        ? "double"
                               : f == BENCH_DOUBLE_FEATURES     ? "int64"
                               : f == BENCH_DOUBLE_FEATURES + 1 ? "string"
                                                                : "none";
        assert_string_equal(header_features[f].type, expected);
    }
    assert_int_equal(BENCH_FEATURES, BENCH_DOUBLE_FEATURES + 2);
}

static void test_plain_view_has_no_source_contract_or_defaults(void **state) {
    (void)state;
    struct fsd_config *config = _parse("", NULL);
    const struct config_view *view = &config->views[0];
    assert_int_equal(view->schema->ttl_us, 0);
    assert_int_equal(view->snapshot.source.type, MAT_SOURCE_NONE);
    assert_false(view->stream.enabled);
    for (uint32_t f = 0; f < view->schema->nfeatures; f++) {
        assert_int_equal(view->schema->features[f].default_kind, STORE_DEFAULT_NONE);
    }
    config_destroy(config);
}

static void test_placeholders_reach_the_parsed_view(void **state) {
    (void)state;
    struct fsd_config *config =
        _parse("source: {type: parquet, path: \"/tmp/x.parquet\", event_timestamp_column: ev}\n"
               "contract:\n"
               "  min_rows: 1000\n",
               "mean");
    const struct config_view *view = &config->views[0];
    assert_int_equal(view->snapshot.source.type, MAT_SOURCE_PARQUET);
    assert_string_equal(view->snapshot.source.event_timestamp_column, "ev");
    assert_int_equal(view->snapshot.contract.min_rows, 1000);
    for (uint32_t f = 0; f < view->schema->nfeatures; f++) {
        const struct store_feature *feature = &view->schema->features[f];
        assert_int_equal(feature->default_kind, store_type_has_mean(feature->type)
                                                    ? STORE_DEFAULT_MEAN
                                                    : STORE_DEFAULT_NONE);
    }
    config_destroy(config);
}

static void test_filled_in_text_has_no_placeholder_or_template_comment(void **state) {
    (void)state;
    char *yaml = bench_view_config("stream:\n  key: k\n", "mean", err, sizeof err);
    assert_non_null(yaml);
    assert_null(strchr(yaml, '@'));
    assert_null(strchr(yaml, '#'));
    assert_non_null(strstr(yaml, "\n    stream:\n      key: k\n"));
    assert_true(strncmp(yaml, "views:\n  - name: ", strlen("views:\n  - name: ")) == 0);
    free(yaml);
}

/* What `python3 loadtest/bench_view.py [--numeric-default D] 'KEYS'` prints (KEYS has no
 * single quote); NULL without Debian's python3. The caller frees it. */
static char *_python_view(const char *view_keys, const char *numeric_default) {
    if (access("/usr/bin/python3", X_OK) != 0) {
        return NULL;
    }
    char command[2048];
    snprintf(command, sizeof command,
             "/usr/bin/python3 '" FSD_SOURCE_DIR "/loadtest/bench_view.py' %s%s '%s'",
             numeric_default != NULL ? "--numeric-default " : "",
             numeric_default != NULL ? numeric_default : "", view_keys);
    FILE *p = popen(command, "r");
    assert_non_null(p);
    char *out = calloc(1, 65536);
    assert_non_null(out);
    size_t n = fread(out, 1, 65535, p);
    assert_int_equal(pclose(p), 0);
    out[n] = '\0';
    return out;
}

static void test_text_is_the_python_helpers(void **state) {
    (void)state;
    static const char *const cases[][2] = {
        {"", NULL},
        {"source: {type: parquet, path: \"/tmp/a b.parquet\", event_timestamp_column: ev}", NULL},
        {"contract:\n  min_rows: 1000\n\n  features: {}\n", "mean"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *python = _python_view(cases[i][0], cases[i][1]);
        if (python == NULL) {
            skip();
        }
        char *c = bench_view_config(cases[i][0], cases[i][1], err, sizeof err);
        assert_non_null(c);
        /* bench_view.py gives the entry; bench_view_config() the config, "views:\n" first */
        assert_true(strncmp(c, "views:\n", strlen("views:\n")) == 0);
        assert_string_equal(c + strlen("views:\n"), python);
        free(c);
        free(python);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_names_and_types_are_the_templates),
        cmocka_unit_test(test_header_doubles_come_first),
        cmocka_unit_test(test_plain_view_has_no_source_contract_or_defaults),
        cmocka_unit_test(test_placeholders_reach_the_parsed_view),
        cmocka_unit_test(test_filled_in_text_has_no_placeholder_or_template_comment),
        cmocka_unit_test(test_text_is_the_python_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
