/* The `views:` part of the config: each view becomes a finalized store_schema plus its source. */
#include "config_internal.h"

#include "store/schema.h"
#include "common/parse.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* "int32, int64, ..., string_list", from the store's own type names. */
static void _type_list(char *buf, size_t len) {
    size_t o = 0;
    buf[0] = '\0';
    for (int t = 0; t < STORE_TYPE_COUNT && o < len; t++) {
        o += (size_t)snprintf(buf + o, len - o, "%s%s", t ? ", " : "",
                              store_type_name((enum store_type)t));
    }
}

/* Copies an optional string field of `map` into *dst (left NULL when absent). */
static void _string_field(struct config_ctx *ctx, const yaml_node_t *map, const char *key,
                          bool required, char **dst) {
    const yaml_node_t *node = config_get(ctx, map, key, required);
    if (node == NULL) {
        return;
    }
    const char *text = config_scalar(ctx, node, key);
    if (text != NULL && (*dst = strdup(text)) == NULL) {
        config_error(ctx, node, key, "out of memory");
    }
}

/* source.allowed_paths: a sequence of directories ([] allowed: no path override at all). */
static void _allowed_paths(struct config_ctx *ctx, const yaml_node_t *map,
                           struct mat_source *source) {
    const yaml_node_t *seq = config_get(ctx, map, "allowed_paths", false);
    if (seq == NULL) {
        return;
    }
    if (seq->type != YAML_SEQUENCE_NODE) {
        config_error(ctx, seq, "allowed_paths",
                     "expected a sequence of directories (e.g. [/data/snapshots])");
        return;
    }
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    source->allowed_paths = calloc(n + 1, sizeof(*source->allowed_paths));
    if (source->allowed_paths == NULL) {
        config_error(ctx, seq, "allowed_paths", "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = config_node(ctx, seq->data.sequence.items.start[i]);
        const char *text = item != NULL ? config_scalar(ctx, item, "allowed_paths") : NULL;
        if (text == NULL) {
            continue; /* config_scalar said why */
        }
        if (text[0] == '\0') {
            config_error(ctx, item, "allowed_paths", "an empty path (give a directory)");
        } else if ((source->allowed_paths[i] = strdup(text)) == NULL) {
            config_error(ctx, item, "allowed_paths", "out of memory");
            return;
        }
    }
}

/* A field that only one source type may have. */
static void _forbid(struct config_ctx *ctx, const yaml_node_t *map, const char *key,
                    const char *only_for) {
    const yaml_node_t *node = config_get(ctx, map, key, false);
    if (node != NULL) {
        config_error(ctx, node, key, "only for %s sources", only_for);
    }
}

/*
 * A bound of the source, `key`, that overrides the materializer's option `option`: parsed
 * and bounded as that option is (its row in mat_option_group), into *us.
 */
static void _timeout_field(struct config_ctx *ctx, const yaml_node_t *map, const char *key,
                           const char *option, int64_t *us) {
    const yaml_node_t *node = config_get(ctx, map, key, false);
    const char *text = node != NULL ? config_scalar(ctx, node, key) : NULL;
    if (text == NULL) {
        return;
    }
    for (size_t i = 0; i < mat_option_group.ndefs; i++) {
        const struct option_def *def = &mat_option_group.defs[i];
        if (strcmp(def->name, option) == 0) {
            struct mat_options scratch;
            char why[256];
            if (option_set(def, &scratch, text, why, sizeof why) != 0) {
                config_error(ctx, node, key, "%s", why);
            } else {
                memcpy(us, (const char *)&scratch + def->offset, sizeof *us);
            }
            return;
        }
    }
}

static void _parse_source(struct config_ctx *ctx, struct mat_source *source,
                          const yaml_node_t *map) {
    static const char *const keys[] = {"type",
                                       "path",
                                       "dsn",
                                       "table",
                                       "query",
                                       "event_timestamp_column",
                                       "created_timestamp_column",
                                       "load_timeout",
                                       "connect_timeout",
                                       "statement_timeout",
                                       "read_timeout",
                                       "tcp_user_timeout",
                                       "allowed_paths",
                                       NULL};
    source->timeouts =
        (struct mat_source_timeouts){MAT_TIMEOUT_UNSET, MAT_TIMEOUT_UNSET, MAT_TIMEOUT_UNSET,
                                     MAT_TIMEOUT_UNSET, MAT_TIMEOUT_UNSET};
    size_t mark = config_path_push(ctx, ".source");
    if (!config_check_keys(ctx, map, keys)) {
        config_path_pop(ctx, mark);
        return;
    }
    const yaml_node_t *type_node = config_get(ctx, map, "type", true);
    const char *type = type_node ? config_scalar(ctx, type_node, "type") : NULL;
    if (type != NULL) {
        if (strcmp(type, "parquet") == 0) {
            source->type = MAT_SOURCE_PARQUET;
        } else if (strcmp(type, "postgres") == 0) {
            source->type = MAT_SOURCE_POSTGRES;
        } else {
            config_error(ctx, type_node, "type",
                         "unknown source type \"%.80s\" (expected parquet, postgres)", type);
        }
    }
    _string_field(ctx, map, "event_timestamp_column", true, &source->event_timestamp_column);
    _string_field(ctx, map, "created_timestamp_column", false, &source->created_timestamp_column);
    _timeout_field(ctx, map, "load_timeout", "load_timeout", &source->timeouts.load_us);
    _allowed_paths(ctx, map, source);
    if (source->type == MAT_SOURCE_PARQUET) {
        _string_field(ctx, map, "path", true, &source->path);
        _forbid(ctx, map, "dsn", "postgres");
        _forbid(ctx, map, "table", "postgres");
        _forbid(ctx, map, "query", "postgres");
        static const char *const pg_only[] = {"connect_timeout", "statement_timeout",
                                              "read_timeout", "tcp_user_timeout", NULL};
        for (const char *const *k = pg_only; *k != NULL; k++) {
            _forbid(ctx, map, *k, "postgres");
        }
    } else if (source->type == MAT_SOURCE_POSTGRES) {
        _forbid(ctx, map, "path", "parquet");
        struct mat_source_timeouts *t = &source->timeouts;
        _timeout_field(ctx, map, "connect_timeout", "postgres_connect_timeout", &t->connect_us);
        _timeout_field(ctx, map, "statement_timeout", "postgres_statement_timeout",
                       &t->statement_us);
        _timeout_field(ctx, map, "read_timeout", "postgres_read_timeout", &t->read_us);
        _timeout_field(ctx, map, "tcp_user_timeout", "postgres_tcp_user_timeout", &t->tcp_user_us);
        _string_field(ctx, map, "dsn", false, &source->dsn);
        _string_field(ctx, map, "table", false, &source->table);
        _string_field(ctx, map, "query", false, &source->query);
        const yaml_node_t *table = config_get(ctx, map, "table", false);
        const yaml_node_t *query = config_get(ctx, map, "query", false);
        if (table != NULL && query != NULL) {
            config_error(ctx, query, "query", "give either table or query, not both");
        } else if (table == NULL && query == NULL) {
            config_error(ctx, map, NULL, "a postgres source needs table or query");
        }
    }
    config_path_pop(ctx, mark);
}

static void _parse_keys(struct config_ctx *ctx, struct store_schema *schema,
                        const yaml_node_t *seq) {
    static const char *const keys[] = {"name", "type", NULL};
    size_t mark = config_path_push(ctx, ".join_keys");
    if (seq->type != YAML_SEQUENCE_NODE) {
        config_error(ctx, seq, NULL, "expected a sequence of { name, type }, found %s",
                     seq->type == YAML_MAPPING_NODE ? "a mapping" : "a scalar");
        config_path_pop(ctx, mark);
        return;
    }
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (n == 0 || n > STORE_MAX_JOIN_KEYS) {
        config_error(ctx, seq, NULL, "a view needs 1 to %d join keys, found %zu",
                     STORE_MAX_JOIN_KEYS, n);
    }
    for (size_t i = 0; i < n && i < STORE_MAX_JOIN_KEYS; i++) {
        const yaml_node_t *map = config_node(ctx, seq->data.sequence.items.start[i]);
        size_t item = config_path_push(ctx, "[%zu]", i);
        if (config_check_keys(ctx, map, keys)) {
            const yaml_node_t *name_node = config_get(ctx, map, "name", true);
            const yaml_node_t *type_node = config_get(ctx, map, "type", true);
            const char *name = name_node ? config_scalar(ctx, name_node, "name") : NULL;
            const char *type = type_node ? config_scalar(ctx, type_node, "type") : NULL;
            enum store_key_type key_type;
            bool type_ok = type != NULL && store_key_type_parse(type, &key_type);
            if (type != NULL && !type_ok) {
                config_error(ctx, type_node, "type",
                             "unknown join key type \"%.80s\" (expected int64, string)", type);
            }
            char why[512];
            if (name != NULL && config_check_name(ctx, name_node, "name", name) && type_ok &&
                store_schema_add_key(schema, name, key_type, why, sizeof why) != 0) {
                config_error(ctx, name_node, "name", "%s", why);
            }
        }
        config_path_pop(ctx, item);
    }
    config_path_pop(ctx, mark);
}

static void _parse_feature(struct config_ctx *ctx, struct store_schema *schema,
                           const yaml_node_t *map) {
    static const char *const keys[] = {"name", "type", "default", NULL};
    if (!config_check_keys(ctx, map, keys)) {
        return;
    }
    const yaml_node_t *name_node = config_get(ctx, map, "name", true);
    const yaml_node_t *type_node = config_get(ctx, map, "type", true);
    const yaml_node_t *default_node = config_get(ctx, map, "default", false);
    const char *name = name_node ? config_scalar(ctx, name_node, "name") : NULL;
    const char *type_text = type_node ? config_scalar(ctx, type_node, "type") : NULL;
    enum store_type type;
    bool type_ok = type_text != NULL && store_type_parse(type_text, &type);
    if (type_text != NULL && !type_ok) {
        char types[256];
        _type_list(types, sizeof types);
        config_error(ctx, type_node, "type", "unknown type \"%.80s\" (expected %s)", type_text,
                     types);
    }
    bool name_ok = name != NULL && config_check_name(ctx, name_node, "name", name);
    if (!name_ok || !type_ok) {
        return;
    }
    char why[512];
    int index = store_schema_add_feature(schema, name, type, why, sizeof why);
    if (index < 0) {
        config_error(ctx, name_node, "name", "%s", why);
        return;
    }
    if (default_node == NULL) {
        return; /* STORE_DEFAULT_NONE */
    }
    size_t mark = config_path_push(ctx, ".default");
    enum store_default_kind kind;
    struct store_value literal;
    void *owned = NULL;
    if (config_default_parse(ctx, default_node, type, &kind, &literal, &owned) == 0 &&
        store_schema_set_default(schema, (uint32_t)index, kind, &literal, why, sizeof why) != 0) {
        config_error(ctx, default_node, NULL, "%s", why);
    }
    free(owned);
    config_path_pop(ctx, mark);
}

static void _parse_features(struct config_ctx *ctx, struct store_schema *schema,
                            const yaml_node_t *seq) {
    size_t mark = config_path_push(ctx, ".features");
    if (seq->type != YAML_SEQUENCE_NODE ||
        seq->data.sequence.items.top == seq->data.sequence.items.start) {
        config_error(ctx, seq, NULL, "expected a non-empty sequence of { name, type, default }");
        config_path_pop(ctx, mark);
        return;
    }
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    for (size_t i = 0; i < n; i++) {
        size_t item = config_path_push(ctx, "[%zu]", i);
        _parse_feature(ctx, schema, config_node(ctx, seq->data.sequence.items.start[i]));
        config_path_pop(ctx, item);
    }
    config_path_pop(ctx, mark);
}

/* ---- the data contract and incremental loads --------------------------------------------- */

/* A number under `key` in [min, max] (error reported, -1 returned when invalid). */
static int _number(struct config_ctx *ctx, const yaml_node_t *node, const char *key, double min,
                   double max, double *out) {
    const char *text = config_scalar(ctx, node, key);
    char why[256];
    if (text == NULL) {
        return -1;
    }
    if (parse_double(text, out, why, sizeof why) != 0) {
        config_error(ctx, node, key, "%s", why);
        return -1;
    }
    if (!(*out >= min && *out <= max)) {
        config_error(ctx, node, key, "%s is out of bounds (%g..%g)", text, min, max);
        return -1;
    }
    return 0;
}

static void _parse_bool(struct config_ctx *ctx, const yaml_node_t *node, const char *key,
                        bool *out) {
    const char *text = config_scalar(ctx, node, key);
    if (text == NULL) {
        return;
    }
    if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0) {
        *out = text[0] == 't';
    } else {
        config_error(ctx, node, key, "expected true or false, found \"%.80s\"", text);
    }
}

/* `range: [lo, hi]` of a numeric feature. */
static void _parse_range(struct config_ctx *ctx, const yaml_node_t *seq,
                         struct mat_feature_check *check) {
    if (seq->type != YAML_SEQUENCE_NODE ||
        seq->data.sequence.items.top - seq->data.sequence.items.start != 2) {
        config_error(ctx, seq, "range", "expected [min, max]");
        return;
    }
    double bounds[2];
    for (int i = 0; i < 2; i++) {
        if (_number(ctx, config_node(ctx, seq->data.sequence.items.start[i]), "range", -HUGE_VAL,
                    HUGE_VAL, &bounds[i]) != 0) {
            return;
        }
    }
    if (bounds[0] > bounds[1]) {
        config_error(ctx, seq, "range", "min %g is greater than max %g", bounds[0], bounds[1]);
        return;
    }
    check->has_range = true;
    check->range_min = bounds[0];
    check->range_max = bounds[1];
}

static void _parse_feature_checks(struct config_ctx *ctx, struct config_view *view,
                                  const yaml_node_t *map) {
    static const char *const keys[] = {"max_null_rate", "range", NULL};
    size_t mark = config_path_push(ctx, ".features");
    if (map->type != YAML_MAPPING_NODE) {
        config_error(ctx, map, NULL, "expected a mapping of feature name to checks");
        config_path_pop(ctx, mark);
        return;
    }
    struct mat_contract *contract = &view->snapshot.contract;
    for (yaml_node_pair_t *pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top;
         pair++) {
        const yaml_node_t *key = config_node(ctx, pair->key);
        const yaml_node_t *value = config_node(ctx, pair->value);
        const char *name = config_scalar(ctx, key, NULL);
        if (name == NULL) {
            continue;
        }
        size_t item = config_path_push(ctx, ".%s", name);
        int index = store_schema_feature_index(view->schema, name);
        if (index < 0) {
            config_error(ctx, key, NULL, "the view has no feature \"%.80s\"", name);
        } else if (contract->nfeatures == MAT_MAX_CHECKED_FEATURES) {
            config_error(ctx, key, NULL, "at most %d features may have checks",
                         MAT_MAX_CHECKED_FEATURES);
        } else if (config_check_keys(ctx, value, keys)) {
            struct mat_feature_check *check = &contract->features[contract->nfeatures];
            *check = (struct mat_feature_check){.feature = (uint32_t)index, .max_null_rate = 1};
            const yaml_node_t *rate = config_get(ctx, value, "max_null_rate", false);
            const yaml_node_t *range = config_get(ctx, value, "range", false);
            if (rate != NULL) {
                _number(ctx, rate, "max_null_rate", 0, 1, &check->max_null_rate);
            }
            if (range != NULL) {
                enum store_type type = view->schema->features[index].type;
                if (!store_type_has_mean(type)) {
                    config_error(ctx, range, "range",
                                 "a range needs a numeric feature (int32, int64, float, double), "
                                 "not %s",
                                 store_type_name(type));
                } else {
                    _parse_range(ctx, range, check);
                }
            }
            if (rate == NULL && range == NULL) {
                config_error(ctx, value, NULL, "give max_null_rate, range or both");
            }
            contract->nfeatures++;
        }
        config_path_pop(ctx, item);
    }
    config_path_pop(ctx, mark);
}

static void _parse_contract(struct config_ctx *ctx, struct config_view *view,
                            const yaml_node_t *map) {
    static const char *const keys[] = {"min_rows", "max_row_drop_percent", "features", NULL};
    size_t mark = config_path_push(ctx, ".contract");
    if (!config_check_keys(ctx, map, keys)) {
        config_path_pop(ctx, mark);
        return;
    }
    const yaml_node_t *min_rows = config_get(ctx, map, "min_rows", false);
    const yaml_node_t *drop = config_get(ctx, map, "max_row_drop_percent", false);
    const yaml_node_t *features = config_get(ctx, map, "features", false);
    if (min_rows != NULL) {
        const char *text = config_scalar(ctx, min_rows, "min_rows");
        int64_t n;
        char why[256];
        if (text != NULL && parse_int(text, 0, INT64_MAX, "min_rows", &n, why, sizeof why) != 0) {
            config_error(ctx, min_rows, "min_rows", "%s", why);
        } else if (text != NULL) {
            view->snapshot.contract.min_rows = (uint64_t)n;
        }
    }
    if (drop != NULL) {
        _number(ctx, drop, "max_row_drop_percent", 0, 100,
                &view->snapshot.contract.max_row_drop_percent);
    }
    if (features != NULL) {
        _parse_feature_checks(ctx, view, features);
    }
    config_path_pop(ctx, mark);
}

/* ---- stream: a Redis stream of row updates ------------------------------------------------ */

/* Copies `len` bytes of `text` into `dst` (`cap` bytes); false when they do not fit. */
static bool _copy(char *dst, size_t cap, const char *text, size_t len) {
    if (len >= cap) {
        return false;
    }
    memcpy(dst, text, len);
    dst[len] = '\0';
    return true;
}

/* A decimal without sign into *out (at most `max`); false when it is not one. */
static bool _decimal(const char *text, size_t len, uint64_t max, uint64_t *out) {
    if (len == 0 || len > 20) {
        return false;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9') {
            return false;
        }
        unsigned d = (unsigned)(text[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return v <= max;
}

/*
 * `redis:` as host[:port], [v6addr][:port] or redis://[[user]:password@]host[:port][/db].
 * Returns 0, or -1 with the reason in `why`.
 */
static int _parse_redis_address(const char *text, struct mat_stream_config *s, char *why,
                                size_t why_len) {
    const char *p = text;
    bool url = strncmp(p, "redis://", 8) == 0;
    if (url) {
        p += 8;
        const char *at = strrchr(p, '@');
        if (at != NULL) {
            const char *colon = memchr(p, ':', (size_t)(at - p));
            if (colon == NULL) {
                snprintf(why, why_len, "expected redis://[[user]:password@]host[:port][/db]");
                return -1;
            }
            if (!_copy(s->user, sizeof s->user, p, (size_t)(colon - p)) ||
                !_copy(s->password, sizeof s->password, colon + 1, (size_t)(at - colon - 1))) {
                snprintf(why, why_len, "user or password longer than %d bytes",
                         MAT_STREAM_SECRET_LEN - 1);
                return -1;
            }
            p = at + 1;
        }
    } else if (strstr(p, "://") != NULL) {
        snprintf(why, why_len, "only redis:// URLs are supported");
        return -1;
    }
    const char *end = p + strlen(p);
    const char *slash = url ? strchr(p, '/') : NULL;
    if (slash != NULL) {
        uint64_t db;
        if (!_decimal(slash + 1, strlen(slash + 1), INT32_MAX, &db)) {
            snprintf(why, why_len, "database \"%.40s\" is not a number", slash + 1);
            return -1;
        }
        s->db = (uint32_t)db;
        end = slash;
    }
    const char *host = p, *host_end, *port = NULL;
    if (*p == '[') {
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(end - host));
        if (host_end == NULL || (host_end + 1 != end && host_end[1] != ':')) {
            snprintf(why, why_len, "expected [address]:port");
            return -1;
        }
        port = host_end + 1 != end ? host_end + 2 : NULL;
    } else {
        host_end = memchr(host, ':', (size_t)(end - host));
        if (host_end != NULL) {
            port = host_end + 1;
        } else {
            host_end = end;
        }
    }
    if (host_end == host) {
        snprintf(why, why_len, "no host");
        return -1;
    }
    if (!_copy(s->host, sizeof s->host, host, (size_t)(host_end - host))) {
        snprintf(why, why_len, "host longer than %d bytes", MAT_STREAM_HOST_LEN - 1);
        return -1;
    }
    s->port = MAT_STREAM_DEFAULT_PORT;
    if (port != NULL) {
        uint64_t n;
        if (!_decimal(port, (size_t)(end - port), 65535, &n) || n == 0) {
            snprintf(why, why_len, "port \"%.*s\" is not in 1..65535", (int)(end - port), port);
            return -1;
        }
        s->port = (uint16_t)n;
    }
    return 0;
}

/* `start:` "$", "0", or an entry ID "<ms>" / "<ms>-<seq>". */
static int _parse_stream_start(const char *text, struct mat_stream_config *s) {
    if (strcmp(text, "$") == 0) {
        s->start = MAT_STREAM_START_NEW;
        return 0;
    }
    if (strcmp(text, "snapshot") == 0) {
        s->start = MAT_STREAM_START_SNAPSHOT;
        return 0;
    }
    const char *dash = strchr(text, '-');
    size_t ms_len = dash ? (size_t)(dash - text) : strlen(text);
    if (!_decimal(text, ms_len, UINT64_MAX, &s->start_ms) ||
        (dash != NULL && !_decimal(dash + 1, strlen(dash + 1), UINT64_MAX, &s->start_seq))) {
        return -1;
    }
    s->start =
        s->start_ms == 0 && s->start_seq == 0 ? MAT_STREAM_START_ALL : MAT_STREAM_START_AFTER;
    return 0;
}

/* A string field into a fixed array; `dflt` (may be NULL) when absent. */
static void _fixed_field(struct config_ctx *ctx, const yaml_node_t *map, const char *key,
                         bool required, const char *dflt, char *dst, size_t cap) {
    const yaml_node_t *node = config_get(ctx, map, key, required);
    if (node == NULL) {
        if (dflt != NULL) {
            _copy(dst, cap, dflt, strlen(dflt));
        }
        return;
    }
    const char *text = config_scalar(ctx, node, key);
    if (text != NULL && !_copy(dst, cap, text, strlen(text))) {
        config_error(ctx, node, key, "longer than %zu bytes", cap - 1);
    }
}

static void _uint_field(struct config_ctx *ctx, const yaml_node_t *map, const char *key,
                        int64_t min, int64_t max, uint32_t dflt, uint32_t *out) {
    *out = dflt;
    const yaml_node_t *node = config_get(ctx, map, key, false);
    const char *text = node ? config_scalar(ctx, node, key) : NULL;
    int64_t n;
    char why[256];
    if (text == NULL) {
        return;
    }
    if (parse_int(text, min, max, key, &n, why, sizeof why) != 0) {
        config_error(ctx, node, key, "%s", why);
    } else {
        *out = (uint32_t)n;
    }
}

/* In the fields format, a timestamp field's name must not also name a key or a feature. */
static void _check_field_name(struct config_ctx *ctx, const struct store_schema *schema,
                              const yaml_node_t *map, const char *key, const char *name) {
    const yaml_node_t *node = config_get(ctx, map, key, false);
    bool taken =
        strcmp(name, MAT_STREAM_DELETE_FIELD) == 0 || store_schema_feature_index(schema, name) >= 0;
    for (uint32_t k = 0; k < schema->nkeys; k++) {
        taken = taken || strcmp(schema->keys[k].name, name) == 0;
    }
    if (taken) {
        config_error(ctx, node ? node : map, node ? key : NULL,
                     "field \"%.80s\" is also a join key, a feature or " MAT_STREAM_DELETE_FIELD,
                     name);
    }
}

/* A field that only one entry format uses. */
static void _only_with(struct config_ctx *ctx, const yaml_node_t *map, const char *key,
                       const char *format) {
    const yaml_node_t *node = config_get(ctx, map, key, false);
    if (node != NULL) {
        config_error(ctx, node, key, "only with format: %s", format);
    }
}

static void _parse_stream(struct config_ctx *ctx, struct config_view *view,
                          const yaml_node_t *map) {
    static const char *const keys[] = {"redis",
                                       "key",
                                       "format",
                                       "start",
                                       "event_timestamp_field",
                                       "created_timestamp_field",
                                       "row_field",
                                       "batch",
                                       "block_ms",
                                       NULL};
    struct mat_stream_config *s = &view->stream;
    size_t mark = config_path_push(ctx, ".stream");
    if (!config_check_keys(ctx, map, keys)) {
        config_path_pop(ctx, mark);
        return;
    }
    s->enabled = true;
    char why[256];
    const yaml_node_t *redis = config_get(ctx, map, "redis", true);
    const char *text = redis ? config_scalar(ctx, redis, "redis") : NULL;
    if (text != NULL && _parse_redis_address(text, s, why, sizeof why) != 0) {
        /* Not quoted back: the URL may hold a password. */
        config_error(ctx, redis, "redis", "%s", why);
    }
    _fixed_field(ctx, map, "key", true, NULL, s->key, sizeof s->key);
    const yaml_node_t *format = config_get(ctx, map, "format", false);
    text = format ? config_scalar(ctx, format, "format") : NULL;
    if (text != NULL && strcmp(text, "protobuf") == 0) {
        s->format = MAT_STREAM_PROTOBUF;
    } else if (text != NULL && strcmp(text, "fields") != 0) {
        config_error(ctx, format, "format", "unknown format \"%.80s\" (expected fields, protobuf)",
                     text);
    }
    const yaml_node_t *start = config_get(ctx, map, "start", false);
    text = start ? config_scalar(ctx, start, "start") : MAT_STREAM_DEFAULT_START;
    if (text != NULL && _parse_stream_start(text, s) != 0) {
        config_error(ctx, start, "start",
                     "expected \"$\" (new entries), 0 (all), an entry ID <ms>-<seq> or snapshot "
                     "(after the ID recorded with the view's snapshot), found \"%.80s\"",
                     text);
    }
    _uint_field(ctx, map, "batch", 1, MAT_STREAM_MAX_BATCH, MAT_STREAM_DEFAULT_BATCH, &s->batch);
    _uint_field(ctx, map, "block_ms", 1, MAT_STREAM_MAX_BLOCK_MS, MAT_STREAM_DEFAULT_BLOCK_MS,
                &s->block_ms);
    if (s->format == MAT_STREAM_PROTOBUF) {
        _only_with(ctx, map, "event_timestamp_field", "fields");
        _only_with(ctx, map, "created_timestamp_field", "fields");
        _fixed_field(ctx, map, "row_field", false, MAT_STREAM_DEFAULT_ROW_FIELD, s->row_field,
                     sizeof s->row_field);
    } else {
        _only_with(ctx, map, "row_field", "protobuf");
        _fixed_field(ctx, map, "event_timestamp_field", false, MAT_STREAM_DEFAULT_EVENT_TS,
                     s->event_timestamp_field, sizeof s->event_timestamp_field);
        _fixed_field(ctx, map, "created_timestamp_field", false, NULL, s->created_timestamp_field,
                     sizeof s->created_timestamp_field);
        _check_field_name(ctx, view->schema, map, "event_timestamp_field",
                          s->event_timestamp_field);
        if (s->created_timestamp_field[0] != '\0') {
            _check_field_name(ctx, view->schema, map, "created_timestamp_field",
                              s->created_timestamp_field);
            if (strcmp(s->created_timestamp_field, s->event_timestamp_field) == 0) {
                config_error(ctx, config_get(ctx, map, "created_timestamp_field", false),
                             "created_timestamp_field", "the same field as event_timestamp_field");
            }
        }
    }
    config_path_pop(ctx, mark);
}

/* Fills `view` from mapping `map`; errors are reported, `view` keeps what could be read. */
static void _parse_view(struct config_ctx *ctx, struct config_view *view, const yaml_node_t *map) {
    static const char *const keys[] = {
        "name",     "join_keys", "ttl",    "refresh_interval",   "source",      "incremental",
        "contract", "features",  "stream", "serve_before_ready", "push_source", NULL};
    view->line = (uint32_t)map->start_mark.line + 1;
    if (!config_check_keys(ctx, map, keys)) {
        return;
    }
    const yaml_node_t *name_node = config_get(ctx, map, "name", true);
    const char *name = name_node ? config_scalar(ctx, name_node, "name") : NULL;
    if (name != NULL && config_check_name(ctx, name_node, "name", name)) {
        for (size_t i = 0; i < ctx->config->nviews; i++) {
            const struct store_schema *other = ctx->config->views[i].schema;
            if (other != NULL && strcmp(other->view, name) == 0) {
                config_error(ctx, name_node, "name", "duplicate view \"%s\" (first on line %u)",
                             name, ctx->config->views[i].line);
                name = NULL;
                break;
            }
        }
    } else {
        name = NULL;
    }

    int64_t ttl_us = 0;
    const yaml_node_t *ttl = config_get(ctx, map, "ttl", true);
    if (ttl != NULL) {
        config_duration(ctx, ttl, "ttl", &ttl_us);
    }
    const yaml_node_t *refresh = config_get(ctx, map, "refresh_interval", false);
    if (refresh != NULL) {
        config_duration(ctx, refresh, "refresh_interval", &view->snapshot.refresh_interval_us);
    }
    const yaml_node_t *source = config_get(ctx, map, "source", false);
    if (source != NULL) {
        _parse_source(ctx, &view->snapshot.source, source);
    } else if (view->snapshot.refresh_interval_us > 0) {
        config_error(ctx, refresh, "refresh_interval",
                     "a view without a source has nothing "
                     "to refresh");
    }
    mat_contract_init(&view->snapshot.contract);
    const yaml_node_t *incremental = config_get(ctx, map, "incremental", false);
    if (incremental != NULL) {
        _parse_bool(ctx, incremental, "incremental", &view->snapshot.incremental);
        if (source == NULL && view->snapshot.incremental) {
            config_error(ctx, incremental, "incremental",
                         "a view without a source has nothing "
                         "to load incrementally");
        }
    }
    const yaml_node_t *early = config_get(ctx, map, "serve_before_ready", false);
    if (early != NULL) {
        _parse_bool(ctx, early, "serve_before_ready", &view->snapshot.serve_before_ready);
        if (source == NULL) {
            config_error(ctx, early, "serve_before_ready",
                         "a view without a source is served from the start; this is for views "
                         "with one");
        }
    }

    const yaml_node_t *push = config_get(ctx, map, "push_source", false);
    const char *push_name = push != NULL ? config_scalar(ctx, push, "push_source") : NULL;
    if (push_name != NULL && config_check_name(ctx, push, "push_source", push_name)) {
        snprintf(view->push_source, sizeof view->push_source, "%s", push_name);
    }

    /* Keys and features are read even when the name is bad, to report their errors too; the
     * schema is only kept under a valid, unique name. */
    struct store_schema *schema = store_schema_create(name ? name : "?", ttl_us);
    if (schema == NULL) {
        config_error(ctx, map, NULL, "out of memory");
        return;
    }
    const yaml_node_t *keys_node = config_get(ctx, map, "join_keys", true);
    if (keys_node != NULL) {
        _parse_keys(ctx, schema, keys_node);
    }
    const yaml_node_t *features = config_get(ctx, map, "features", true);
    if (features != NULL) {
        _parse_features(ctx, schema, features);
    }
    if (name == NULL) {
        store_schema_destroy(schema);
        return;
    }
    view->schema = schema;
    snprintf(view->snapshot.name, sizeof view->snapshot.name, "%s", name);
    snprintf(view->stream.view, sizeof view->stream.view, "%s", name);
    /* After the features: checks name them. */
    const yaml_node_t *contract = config_get(ctx, map, "contract", false);
    if (contract != NULL) {
        _parse_contract(ctx, view, contract);
    }
    /* After the keys and features too: its field names must not collide with theirs. */
    const yaml_node_t *stream = config_get(ctx, map, "stream", false);
    if (stream != NULL) {
        _parse_stream(ctx, view, stream);
    }
}

void config_parse_views(struct config_ctx *ctx, const yaml_node_t *seq) {
    size_t mark = config_path_push(ctx, "views");
    if (config_is_null(seq)) {
        config_path_pop(ctx, mark);
        return;
    }
    if (seq->type != YAML_SEQUENCE_NODE) {
        config_error(ctx, seq, NULL, "expected a sequence of views, found %s",
                     seq->type == YAML_MAPPING_NODE ? "a mapping" : "a scalar");
        config_path_pop(ctx, mark);
        return;
    }
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    ctx->config->views = calloc(n + 1, sizeof *ctx->config->views);
    ctx->view_broken = calloc(n + 1, sizeof *ctx->view_broken);
    if (ctx->config->views == NULL || ctx->view_broken == NULL) {
        config_error(ctx, seq, NULL, "out of memory");
        config_path_pop(ctx, mark);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *map = config_node(ctx, seq->data.sequence.items.start[i]);
        size_t item = config_path_push(ctx, "[%zu]", i);
        struct config_view *view = &ctx->config->views[i];
        size_t errors_before = ctx->nerrors;
        _parse_view(ctx, view, map);
        if (view->schema != NULL && ctx->nerrors == errors_before) {
            char why[512];
            if (store_schema_finalize(view->schema, why, sizeof why) != 0) {
                config_error(ctx, map, NULL, "%s", why);
            }
        }
        ctx->view_broken[i] = ctx->nerrors != errors_before;
        ctx->config->nviews = i + 1;
        config_path_pop(ctx, item);
    }
    config_path_pop(ctx, mark);
}
