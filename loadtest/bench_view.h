#pragma once
/*
 * The benchmark view (loadtest/bench_view.yaml) for C programs.
 *
 * Its names as they travel on the wire, for the programs that write rows without reading a
 * config: grpc_load (--fill's PushRows, the Redis targets' fields) and stream_bench (XADD
 * fields). tests/loadtest/test_bench_view.c checks that they and their types equal the
 * template's, so the two cannot drift apart.
 *
 * And, for the programs that parse a config (materialize_bench, pg_bench, store_bench, the
 * test), bench_view_config() and bench_view_parse() (bench_view.c, library fsd_bench_view):
 * the template read at run time and its placeholders filled in.
 */
#include <stddef.h>

struct fsd_config;

#define BENCH_VIEW_NAME "bench"
#define BENCH_KEY_NAME  "entity_id" /* int64 */

#define BENCH_FEATURES        10
#define BENCH_DOUBLE_FEATURES 8 /* the first 8 features are the doubles */

/* Name and config type of each feature, in the view's order; an initializer, so each program
 * that uses it has its own array and the others get no unused one. */
struct bench_feature {
    const char *name;
    const char *type;
};

#define BENCH_FEATURE_LIST                                                                         \
    {                                                                                              \
        {"d0", "double"}, {"d1", "double"}, {"d2", "double"}, {"d3", "double"}, {"d4", "double"},  \
            {"d5", "double"}, {"d6", "double"}, {"d7", "double"}, {"count", "int64"},              \
            {"label", "string"},                                                                   \
    }

/*
 * A config of the one benchmark view: "views:\n" and the template with @VIEW_KEYS@ replaced
 * by `view_keys` (YAML of the view's other keys, each line indented as the placeholder; NULL
 * or "" for none) and @NUMERIC_DEFAULT@ by ", default: <numeric_default>" (NULL: none).
 * Returns a string the caller frees, or NULL with the reason in `err`.
 */
char *bench_view_config(const char *view_keys, const char *numeric_default, char *err,
                        size_t err_len);

/* bench_view_config() parsed by config_parse() (no option sections): the caller owns the
 * config (config_destroy); NULL with every error in `err` (CONFIG_ERR_LEN is a good size). */
struct fsd_config *bench_view_parse(const char *view_keys, const char *numeric_default, char *err,
                                    size_t err_len);
