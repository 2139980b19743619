/*
 * fsctl get: look entities up with GetFeatures and show every value with its status.
 *
 * The key types come from ListViews, so `--key user_id=42` is sent as an int64 and
 * `--key item_id=42` as a string when that is what the view says. Values of a key are
 * collected in the order given: with join keys (user_id, item_id),
 *   --key user_id=1 --key item_id=a --key user_id=2 --key item_id=b
 * is the two entities (1, a) and (2, b).
 */
#include "fsctl_internal.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/client.h"

#define _MAX_KEYS 32 /* distinct join keys over every view of one request */

struct key_spec {
    const char *name; /* the view's, owned by the ListViews response */
    Fsd__V1__KeyType type;
    const char *view; /* the first view that needs it, for messages */
    size_t n;
    size_t cap;
    int64_t *ints;
    char **strs; /* point into argv */
};

struct get_args {
    const char *view;
    const char *service;
    char **keys; /* "name=value", in the order given */
    size_t nkeys;
    struct buf features; /* every --features value, joined with ',' */
    bool json;
};

static const char *const _status_names[] = {"PRESENT", "NOT_FOUND", "NULL", "OUTSIDE_MAX_AGE"};

static const char *_status_name(int status) {
    if (status < 0 || (size_t)status >= sizeof _status_names / sizeof _status_names[0]) {
        return "UNKNOWN_STATUS";
    }
    return _status_names[status];
}

/* ---- parsing ----------------------------------------------------------------------------- */

/* Strict int64: an optional '-', then decimal digits, nothing else. */
static int _parse_int64(const char *text, int64_t *out) {
    const char *p = text + (text[0] == '-');
    if (*p == '\0') {
        return -1;
    }
    for (const char *c = p; *c; c++) {
        if (*c < '0' || *c > '9') {
            return -1;
        }
    }
    errno = 0;
    char *end;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0') {
        return -1;
    }
    *out = v;
    return 0;
}

static int _parse_args(struct fsctl *ctx, int argc, char **argv, struct get_args *a) {
    static const struct option options[] = {
        {"view", required_argument, NULL, 'v'}, {"service", required_argument, NULL, 's'},
        {"key", required_argument, NULL, 'k'},  {"features", required_argument, NULL, 'f'},
        {"json", no_argument, NULL, 'j'},       {"addr", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    a->keys = calloc((size_t)argc + 1, sizeof(*a->keys));
    if (a->keys == NULL) {
        fprintf(stderr, "fsctl: out of memory\n");
        return FSCTL_FAILED;
    }
    int opt;
    while ((opt = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
        switch (opt) {
        case 'v':
            a->view = optarg;
            break;
        case 's':
            a->service = optarg;
            break;
        case 'k':
            a->keys[a->nkeys++] = optarg;
            break;
        case 'f':
            if (optarg[0] == '\0') {
                return fsctl_usage_error("get", "--features needs a name");
            }
            buf_printf(&a->features, "%s%s", a->features.len ? "," : "", optarg);
            break;
        case 'j':
            a->json = true;
            break;
        case 'a':
            ctx->addr = optarg;
            break;
        case 'h':
            printf("usage: fsctl [--addr HOST:PORT] get (--view VIEW | --service NAME)\n"
                   "                 --key NAME=VALUE [--key NAME=VALUE ...] [--features a,b]"
                   " [--json]\n\n"
                   "  --view VIEW        look up features of VIEW (all of them by default)\n"
                   "  --service NAME     look up the features of a feature service instead\n"
                   "  --key NAME=VALUE   one join key value; give every join key once per "
                   "entity, in order:\n"
                   "                     --key user_id=1 --key item_id=a --key user_id=2 "
                   "--key item_id=b\n"
                   "                     is two entities. int64 keys must be decimal "
                   "integers.\n"
                   "  --features a,b     feature names of VIEW, or view:feature refs "
                   "(repeatable)\n"
                   "  --json             one JSON document: per entity its keys, staleness "
                   "and\n"
                   "                     values (bytes in base64), then the response's counts\n"
                   "\nThe table shows each value with its status: PRESENT, NOT_FOUND, NULL or\n"
                   "OUTSIDE_MAX_AGE, and \"(default)\" where the feature's default was served\n"
                   "(\"-\" where the feature has none); then each row's staleness.\n");
            return -1;
        default:
            return fsctl_usage_error("get", "invalid option");
        }
    }
    if (optind < argc) {
        return fsctl_usage_error("get", "unexpected argument \"%s\"", argv[optind]);
    }
    if ((a->view == NULL) == (a->service == NULL)) {
        return fsctl_usage_error("get", "give one of --view VIEW or --service NAME");
    }
    if (a->nkeys == 0) {
        return fsctl_usage_error("get", "give the entities with --key NAME=VALUE");
    }
    if (a->features.failed) {
        fprintf(stderr, "fsctl: out of memory\n");
        return FSCTL_FAILED;
    }
    return FSCTL_OK;
}

/* ---- planning the request ---------------------------------------------------------------- */

static const Fsd__V1__ViewInfo *_find_view(const Fsd__V1__ListViewsResponse *views,
                                           const char *name, size_t name_len) {
    for (size_t v = 0; v < views->n_views; v++) {
        if (strlen(views->views[v]->name) == name_len &&
            memcmp(views->views[v]->name, name, name_len) == 0) {
            return views->views[v];
        }
    }
    return NULL;
}

static void _print_view_names(const Fsd__V1__ListViewsResponse *views) {
    fprintf(stderr, "(served views:");
    for (size_t v = 0; v < views->n_views; v++) {
        fprintf(stderr, "%s %s", v ? "," : "", views->views[v]->name);
    }
    fprintf(stderr, "%s)\n", views->n_views ? "" : " none");
}

struct plan {
    char **refs; /* "view:feature", malloc'd */
    size_t nrefs;
    const Fsd__V1__ViewInfo *views[64];
    size_t nviews;
    struct key_spec keys[_MAX_KEYS];
    size_t nkeys;
};

static void _plan_free(struct plan *p) {
    for (size_t i = 0; i < p->nrefs; i++) {
        free(p->refs[i]);
    }
    free(p->refs);
    for (size_t k = 0; k < p->nkeys; k++) {
        free(p->keys[k].ints);
        free(p->keys[k].strs);
    }
}

/* Adds a view (once) and its join keys to the plan. */
static int _use_view(struct plan *p, const Fsd__V1__ViewInfo *view) {
    for (size_t v = 0; v < p->nviews; v++) {
        if (p->views[v] == view) {
            return FSCTL_OK;
        }
    }
    if (p->nviews == sizeof p->views / sizeof p->views[0]) {
        fprintf(stderr, "fsctl: a request may use at most %zu views\n", p->nviews);
        return FSCTL_USAGE;
    }
    p->views[p->nviews++] = view;
    for (size_t j = 0; j < view->n_join_keys; j++) {
        const Fsd__V1__JoinKeyInfo *jk = view->join_keys[j];
        size_t k = 0;
        while (k < p->nkeys && strcmp(p->keys[k].name, jk->name) != 0) {
            k++;
        }
        if (k < p->nkeys) {
            if (p->keys[k].type != jk->type) {
                fprintf(stderr,
                        "fsctl: join key %s is %s in view %s but %s in view %s: one request "
                        "cannot carry both\n",
                        jk->name,
                        p->keys[k].type == FSD__V1__KEY_TYPE__KEY_INT64 ? "int64" : "string",
                        p->keys[k].view,
                        jk->type == FSD__V1__KEY_TYPE__KEY_INT64 ? "int64" : "string", view->name);
                return FSCTL_FAILED;
            }
            continue;
        }
        if (p->nkeys == _MAX_KEYS) {
            fprintf(stderr, "fsctl: a request may carry at most %d join keys\n", _MAX_KEYS);
            return FSCTL_USAGE;
        }
        p->keys[p->nkeys++] =
            (struct key_spec){.name = jk->name, .type = jk->type, .view = view->name};
    }
    return FSCTL_OK;
}

static int _add_ref(struct plan *p, const Fsd__V1__ListViewsResponse *views, const char *ref) {
    const char *colon = strchr(ref, ':');
    const Fsd__V1__ViewInfo *view = _find_view(views, ref, (size_t)(colon - ref));
    if (view == NULL) {
        fprintf(stderr, "fsctl: unknown view \"%.*s\" in feature ref \"%s\" ", (int)(colon - ref),
                ref, ref);
        _print_view_names(views);
        return FSCTL_FAILED;
    }
    char *copy = strdup(ref);
    if (copy == NULL) {
        fprintf(stderr, "fsctl: out of memory\n");
        return FSCTL_FAILED;
    }
    p->refs[p->nrefs++] = copy;
    return _use_view(p, view);
}

/* Works out the refs, the views they touch and the join keys those need. */
static int _plan_refs(struct plan *p, const struct get_args *a,
                      const Fsd__V1__ListViewsResponse *views) {
    size_t nfeatures = 1;
    for (size_t i = 0; i < a->features.len; i++) {
        nfeatures += a->features.data[i] == ',';
    }
    p->refs = calloc(nfeatures + 1, sizeof(*p->refs));
    if (p->refs == NULL) {
        fprintf(stderr, "fsctl: out of memory\n");
        return FSCTL_FAILED;
    }
    int rc;
    if (a->view != NULL) {
        const Fsd__V1__ViewInfo *view = _find_view(views, a->view, strlen(a->view));
        if (view == NULL) {
            fprintf(stderr, "fsctl: unknown view \"%s\" ", a->view);
            _print_view_names(views);
            return FSCTL_FAILED;
        }
        if ((rc = _use_view(p, view)) != FSCTL_OK) {
            return rc;
        }
    } else {
        const Fsd__V1__FeatureServiceInfo *service = NULL;
        for (size_t s = 0; s < views->n_feature_services && service == NULL; s++) {
            if (strcmp(views->feature_services[s]->name, a->service) == 0) {
                service = views->feature_services[s];
            }
        }
        if (service == NULL) {
            fprintf(stderr, "fsctl: unknown feature service \"%s\" (served:", a->service);
            for (size_t s = 0; s < views->n_feature_services; s++) {
                fprintf(stderr, "%s %s", s ? "," : "", views->feature_services[s]->name);
            }
            fprintf(stderr, "%s)\n", views->n_feature_services ? "" : " none");
            return FSCTL_FAILED;
        }
        for (size_t f = 0; f < service->n_features; f++) {
            const char *ref = service->features[f];
            const char *colon = strchr(ref, ':');
            const Fsd__V1__ViewInfo *view =
                colon ? _find_view(views, ref, (size_t)(colon - ref)) : NULL;
            if (view != NULL && (rc = _use_view(p, view)) != FSCTL_OK) {
                return rc;
            }
        }
    }
    /* --features: names of --view's features, or view:feature refs */
    for (const char *item = a->features.data; item != NULL && *item != '\0';) {
        size_t len = strcspn(item, ",");
        char name[512];
        if (len == 0 || len >= sizeof name) {
            return fsctl_usage_error("get", "--features: %s feature name",
                                     len ? "overlong" : "empty");
        }
        memcpy(name, item, len);
        name[len] = '\0';
        if (strchr(name, ':') != NULL) {
            if ((rc = _add_ref(p, views, name)) != FSCTL_OK) {
                return rc;
            }
        } else if (a->view == NULL) {
            return fsctl_usage_error("get",
                                     "with --service, --features takes view:feature refs "
                                     "(\"%s\" has no view)",
                                     name);
        } else {
            char ref[1024];
            snprintf(ref, sizeof ref, "%s:%s", a->view, name);
            if ((rc = _add_ref(p, views, ref)) != FSCTL_OK) {
                return rc;
            }
        }
        item += len + (item[len] == ',');
    }
    if (a->view != NULL && p->nrefs == 0) {
        char ref[1024];
        snprintf(ref, sizeof ref, "%s:*", a->view);
        return _add_ref(p, views, ref);
    }
    return FSCTL_OK;
}

static void _print_needed_keys(const struct plan *p) {
    fprintf(stderr, "(join keys needed:");
    for (size_t k = 0; k < p->nkeys; k++) {
        fprintf(stderr, "%s %s", k ? "," : "", p->keys[k].name);
    }
    fprintf(stderr, ")\n");
}

/* Sorts the --key values into their join keys, typed. */
static int _plan_keys(struct plan *p, const struct get_args *a) {
    for (size_t i = 0; i < a->nkeys; i++) {
        char *arg = a->keys[i];
        char *eq = strchr(arg, '=');
        if (eq == NULL || eq == arg) {
            return fsctl_usage_error("get", "--key \"%s\" is not NAME=VALUE", arg);
        }
        size_t name_len = (size_t)(eq - arg);
        struct key_spec *spec = NULL;
        for (size_t k = 0; k < p->nkeys && spec == NULL; k++) {
            if (strlen(p->keys[k].name) == name_len &&
                memcmp(p->keys[k].name, arg, name_len) == 0) {
                spec = &p->keys[k];
            }
        }
        if (spec == NULL) {
            fprintf(stderr, "fsctl: --key %.*s: not a join key of the views requested ",
                    (int)name_len, arg);
            _print_needed_keys(p);
            return FSCTL_USAGE;
        }
        if (spec->n == spec->cap) {
            size_t cap = spec->cap ? spec->cap * 2 : 8;
            int64_t *ints = realloc(spec->ints, cap * sizeof(*ints));
            if (ints != NULL) {
                spec->ints = ints;
            }
            char **strs = realloc(spec->strs, cap * sizeof(*strs));
            if (strs != NULL) {
                spec->strs = strs;
            }
            if (ints == NULL || strs == NULL) {
                fprintf(stderr, "fsctl: out of memory\n");
                return FSCTL_FAILED;
            }
            spec->cap = cap;
        }
        const char *value = eq + 1;
        if (spec->type == FSD__V1__KEY_TYPE__KEY_INT64) {
            if (_parse_int64(value, &spec->ints[spec->n]) != 0) {
                return fsctl_usage_error("get",
                                         "--key %s=%s: %s is an int64 key of view %s; give a "
                                         "decimal integer",
                                         spec->name, value, spec->name, spec->view);
            }
        }
        spec->strs[spec->n] = (char *)value;
        spec->n++;
    }
    size_t n = 0;
    for (size_t k = 0; k < p->nkeys; k++) {
        if (p->keys[k].n == 0) {
            fprintf(stderr, "fsctl: missing --key %s=... (view %s needs it) ", p->keys[k].name,
                    p->keys[k].view);
            _print_needed_keys(p);
            return FSCTL_USAGE;
        }
        if (k > 0 && p->keys[k].n != n) {
            return fsctl_usage_error("get",
                                     "%zu values for --key %s but %zu for --key %s: give every "
                                     "join key once per entity",
                                     n, p->keys[0].name, p->keys[k].n, p->keys[k].name);
        }
        n = p->keys[k].n;
    }
    return FSCTL_OK;
}

/* ---- showing the response ---------------------------------------------------------------- */

/* Element offsets of entity i in a list column: off[i] .. off[i + 1]. */
static size_t *_list_offsets(const Fsd__V1__FeatureColumn *c, size_t n) {
    size_t *off = calloc(n + 1, sizeof(*off));
    if (off == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        off[i + 1] = off[i] + (i < c->n_list_lengths ? c->list_lengths[i] : 0);
    }
    return off;
}

static void _hex(struct buf *b, const uint8_t *data, size_t len) {
    buf_printf(b, "0x");
    for (size_t i = 0; i < len; i++) {
        buf_printf(b, "%02x", data[i]);
    }
}

/* The type of a list column's elements (they are in that type's array); a scalar's own. */
static Fsd__V1__FeatureType _element_type(Fsd__V1__FeatureType type) {
    switch (type) {
    case FSD__V1__FEATURE_TYPE__FLOAT_LIST:
        return FSD__V1__FEATURE_TYPE__FLOAT;
    case FSD__V1__FEATURE_TYPE__INT64_LIST:
        return FSD__V1__FEATURE_TYPE__INT64;
    case FSD__V1__FEATURE_TYPE__STRING_LIST:
        return FSD__V1__FEATURE_TYPE__STRING;
    case FSD__V1__FEATURE_TYPE__INT32_LIST:
        return FSD__V1__FEATURE_TYPE__INT32;
    case FSD__V1__FEATURE_TYPE__DOUBLE_LIST:
        return FSD__V1__FEATURE_TYPE__DOUBLE;
    case FSD__V1__FEATURE_TYPE__BOOL_LIST:
        return FSD__V1__FEATURE_TYPE__BOOL;
    case FSD__V1__FEATURE_TYPE__BYTES_LIST:
        return FSD__V1__FEATURE_TYPE__BYTES;
    case FSD__V1__FEATURE_TYPE__TIMESTAMP_LIST:
        return FSD__V1__FEATURE_TYPE__TIMESTAMP;
    default:
        return type;
    }
}

/*
 * Element j of column c's array for scalar type `type`, as JSON or as text: a scalar column's
 * entity j, or a list's element j. Returns -1 if the response lacks it.
 */
static int _scalar(struct buf *b, const Fsd__V1__FeatureColumn *c, Fsd__V1__FeatureType type,
                   size_t i, bool json) {
    char text[64];
    switch (type) {
    case FSD__V1__FEATURE_TYPE__INT32:
        if (i >= c->n_int32_values) {
            return -1;
        }
        buf_printf(b, "%" PRId32, c->int32_values[i]);
        return 0;
    case FSD__V1__FEATURE_TYPE__INT64:
        if (i >= c->n_int64_values) {
            return -1;
        }
        buf_printf(b, "%" PRId64, c->int64_values[i]);
        return 0;
    case FSD__V1__FEATURE_TYPE__TIMESTAMP:
        if (i >= c->n_int64_values) {
            return -1;
        }
        if (json || c->int64_values[i] <= 0) {
            buf_printf(b, "%" PRId64, c->int64_values[i]);
        } else {
            format_time_us(text, sizeof text, c->int64_values[i]);
            text[strlen(text) - 1] = '\0'; /* drop the Z: the fraction goes before it */
            buf_printf(b, "%s.%06" PRId64 "Z", text, c->int64_values[i] % 1000000);
        }
        return 0;
    case FSD__V1__FEATURE_TYPE__FLOAT:
        if (i >= c->n_float_values) {
            return -1;
        }
        if (json) {
            json_float(b, c->float_values[i]);
        } else {
            text_float(text, sizeof text, c->float_values[i]);
            buf_printf(b, "%s", text);
        }
        return 0;
    case FSD__V1__FEATURE_TYPE__DOUBLE:
        if (i >= c->n_double_values) {
            return -1;
        }
        if (json) {
            json_double(b, c->double_values[i]);
        } else {
            text_double(text, sizeof text, c->double_values[i]);
            buf_printf(b, "%s", text);
        }
        return 0;
    case FSD__V1__FEATURE_TYPE__BOOL:
        if (i >= c->n_bool_values) {
            return -1;
        }
        buf_printf(b, "%s", c->bool_values[i] ? "true" : "false");
        return 0;
    case FSD__V1__FEATURE_TYPE__STRING:
        if (i >= c->n_string_values) {
            return -1;
        }
        json_string(b, c->string_values[i], strlen(c->string_values[i]));
        return 0;
    case FSD__V1__FEATURE_TYPE__BYTES:
        if (i >= c->n_bytes_values) {
            return -1;
        }
        if (json) {
            json_base64(b, c->bytes_values[i].data, c->bytes_values[i].len);
        } else {
            _hex(b, c->bytes_values[i].data, c->bytes_values[i].len);
        }
        return 0;
    default:
        return -1;
    }
}

/* Entity i's value of column c, as JSON or as text. Returns -1 if the response lacks it. */
static int _value(struct buf *b, const Fsd__V1__FeatureColumn *c, size_t i, const size_t *off,
                  bool json) {
    Fsd__V1__FeatureType element = _element_type(c->type);
    if (element == c->type) {
        return _scalar(b, c, c->type, i, json);
    }
    if (off == NULL) {
        return -1;
    }
    buf_printf(b, "[");
    for (size_t j = off[i]; j < off[i + 1]; j++) {
        if (j > off[i]) {
            buf_printf(b, ", ");
        }
        if (_scalar(b, c, element, j, json) != 0) {
            return -1;
        }
    }
    buf_printf(b, "]");
    return 0;
}

static int _status_of(const Fsd__V1__FeatureColumn *c, size_t i) {
    return i < c->n_statuses ? (int)c->statuses[i] : -1;
}

static int64_t _staleness(const Fsd__V1__ViewStaleness *v, size_t i) {
    return i < v->n_staleness_ms ? v->staleness_ms[i] : -1;
}

static void _key_value(struct buf *b, const struct key_spec *k, size_t i, bool json) {
    if (k->type == FSD__V1__KEY_TYPE__KEY_INT64) {
        buf_printf(b, "%" PRId64, k->ints[i]);
    } else if (json) {
        json_string(b, k->strs[i], strlen(k->strs[i]));
    } else {
        buf_printf(b, "%s", k->strs[i]);
    }
}

static void _print_json(const struct plan *p, const Fsd__V1__GetFeaturesResponse *r, size_t n) {
    struct buf b = {0};
    size_t **offs = calloc(r->n_columns + 1, sizeof(*offs));
    buf_printf(&b, "{\"entities\": %" PRIu32 ",\n \"features\": [", r->entities);
    for (size_t c = 0; c < r->n_columns; c++) {
        const Fsd__V1__FeatureColumn *col = r->columns[c];
        if (offs != NULL) {
            offs[c] = _list_offsets(col, n);
        }
        buf_printf(&b, "%s{\"name\": ", c ? ", " : "");
        json_string(&b, col->name, strlen(col->name));
        buf_printf(&b, ", \"type\": \"%s\", \"has_default\": %s}", fsctl_type_name(col->type),
                   col->has_default ? "true" : "false");
    }
    buf_printf(&b, "],\n \"rows\": [");
    for (size_t i = 0; i < n; i++) {
        buf_printf(&b, "%s\n  {\"keys\": {", i ? "," : "");
        for (size_t k = 0; k < p->nkeys; k++) {
            buf_printf(&b, "%s", k ? ", " : "");
            json_string(&b, p->keys[k].name, strlen(p->keys[k].name));
            buf_printf(&b, ": ");
            _key_value(&b, &p->keys[k], i, true);
        }
        buf_printf(&b, "}, \"staleness_ms\": {");
        for (size_t v = 0; v < r->n_views; v++) {
            int64_t ms = _staleness(r->views[v], i);
            buf_printf(&b, "%s", v ? ", " : "");
            json_string(&b, r->views[v]->view, strlen(r->views[v]->view));
            if (ms < 0) {
                buf_printf(&b, ": null");
            } else {
                buf_printf(&b, ": %" PRId64, ms);
            }
        }
        buf_printf(&b, "},\n   \"values\": {");
        for (size_t c = 0; c < r->n_columns; c++) {
            const Fsd__V1__FeatureColumn *col = r->columns[c];
            int status = _status_of(col, i);
            buf_printf(&b, "%s", c ? ",\n              " : "");
            json_string(&b, col->name, strlen(col->name));
            buf_printf(&b, ": {\"value\": ");
            if (status != FSD__V1__VALUE_STATUS__PRESENT && !col->has_default) {
                buf_printf(&b, "null");
            } else if (_value(&b, col, i, offs ? offs[c] : NULL, true) != 0) {
                buf_printf(&b, "null");
            }
            buf_printf(&b, ", \"status\": \"%s\", \"default\": %s}", _status_name(status),
                       status != FSD__V1__VALUE_STATUS__PRESENT && col->has_default ? "true"
                                                                                    : "false");
        }
        buf_printf(&b, "}}");
    }
    buf_printf(&b,
               "],\n \"values_served\": %" PRIu64 ", \"defaults_not_found\": %" PRIu64
               ", \"defaults_null_value\": %" PRIu64 ", \"defaults_outside_max_age\": %" PRIu64
               ", \"server_time_us\": %" PRIu64 "}\n",
               r->values_served, r->defaults_not_found, r->defaults_null_value,
               r->defaults_outside_max_age, r->server_time_us);
    fputs(b.data ? b.data : "", stdout);
    buf_free(&b);
    for (size_t c = 0; offs != NULL && c < r->n_columns; c++) {
        free(offs[c]);
    }
    free(offs);
}

static void _print_table(const struct plan *p, const struct get_args *a,
                         const Fsd__V1__GetFeaturesResponse *r, size_t n) {
    struct table *t = table_create(p->nkeys + r->n_columns + r->n_views);
    struct buf cell = {0};
    size_t view_len = a->view ? strlen(a->view) : 0;
    for (size_t k = 0; k < p->nkeys; k++) {
        table_add(t, p->keys[k].name);
    }
    for (size_t c = 0; c < r->n_columns; c++) {
        const char *name = r->columns[c]->name;
        /* with --view every column is that view's: its feature names are enough */
        if (a->view != NULL && strncmp(name, a->view, view_len) == 0 && name[view_len] == ':') {
            name += view_len + 1;
        }
        table_add(t, name);
    }
    for (size_t v = 0; v < r->n_views; v++) {
        cell.len = 0;
        buf_printf(&cell, "staleness%s%s", r->n_views > 1 ? " " : "",
                   r->n_views > 1 ? r->views[v]->view : "");
        table_add(t, cell.data ? cell.data : "");
    }
    size_t **offs = calloc(r->n_columns + 1, sizeof(*offs));
    for (size_t c = 0; offs != NULL && c < r->n_columns; c++) {
        offs[c] = _list_offsets(r->columns[c], n);
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < p->nkeys; k++) {
            cell.len = 0;
            _key_value(&cell, &p->keys[k], i, false);
            table_add(t, cell.data ? cell.data : "");
        }
        for (size_t c = 0; c < r->n_columns; c++) {
            const Fsd__V1__FeatureColumn *col = r->columns[c];
            int status = _status_of(col, i);
            bool present = status == FSD__V1__VALUE_STATUS__PRESENT;
            cell.len = 0;
            if (!present && !col->has_default) {
                buf_printf(&cell, "-");
            } else if (_value(&cell, col, i, offs ? offs[c] : NULL, false) != 0) {
                buf_printf(&cell, "?");
            }
            buf_printf(&cell, " %s%s", _status_name(status),
                       present            ? ""
                       : col->has_default ? " (default)"
                                          : "");
            table_add(t, cell.data ? cell.data : "");
        }
        for (size_t v = 0; v < r->n_views; v++) {
            char text[32];
            format_staleness_ms(text, sizeof text, _staleness(r->views[v], i));
            table_add(t, text);
        }
    }
    table_print(t, stdout, "");
    table_destroy(t);
    buf_free(&cell);
    for (size_t c = 0; offs != NULL && c < r->n_columns; c++) {
        free(offs[c]);
    }
    free(offs);
    printf("\n%" PRIu32 " entit%s, %" PRIu64 " values served; defaults served: %" PRIu64
           " not found, %" PRIu64 " null, %" PRIu64 " outside max age; server time %" PRIu64
           " us\n",
           r->entities, r->entities == 1 ? "y" : "ies", r->values_served, r->defaults_not_found,
           r->defaults_null_value, r->defaults_outside_max_age, r->server_time_us);
}

/* ---- the command ------------------------------------------------------------------------- */

static int _call_get(struct fsctl *ctx, const struct plan *p, const struct get_args *a,
                     Fsd__V1__KeyColumn **columns);

/* Builds the key columns, then _call_get(). */
static int _request(struct fsctl *ctx, const struct plan *p, const struct get_args *a) {
    Fsd__V1__KeyColumn columns[_MAX_KEYS];
    Fsd__V1__KeyColumn *column_ptrs[_MAX_KEYS];
    /* string keys travel as bytes in the C structs (proto's fsd:c-bytes): keep a length */
    ProtobufCBinaryData *strings[_MAX_KEYS] = {NULL};
    int rc = FSCTL_OK;
    for (size_t k = 0; k < p->nkeys; k++) {
        fsd__v1__key_column__init(&columns[k]);
        columns[k].name = (char *)p->keys[k].name;
        if (p->keys[k].type == FSD__V1__KEY_TYPE__KEY_INT64) {
            columns[k].n_int64_values = p->keys[k].n;
            columns[k].int64_values = p->keys[k].ints;
        } else {
            strings[k] = calloc(p->keys[k].n, sizeof(*strings[k]));
            if (strings[k] == NULL) {
                rc = FSCTL_FAILED;
                break;
            }
            for (size_t i = 0; i < p->keys[k].n; i++) {
                strings[k][i].len = strlen(p->keys[k].strs[i]);
                strings[k][i].data = (uint8_t *)p->keys[k].strs[i];
            }
            columns[k].n_string_values = p->keys[k].n;
            columns[k].string_values = strings[k];
        }
        column_ptrs[k] = &columns[k];
    }
    if (rc == FSCTL_OK) {
        rc = _call_get(ctx, p, a, column_ptrs);
    } else {
        fprintf(stderr, "fsctl: out of memory\n");
    }
    for (size_t k = 0; k < p->nkeys; k++) {
        free(strings[k]);
    }
    return rc;
}

/* Packs the request, calls GetFeatures and prints the response. */
static int _call_get(struct fsctl *ctx, const struct plan *p, const struct get_args *a,
                     Fsd__V1__KeyColumn **columns) {
    Fsd__V1__GetFeaturesRequest req = FSD__V1__GET_FEATURES_REQUEST__INIT;
    req.n_features = p->nrefs;
    req.features = p->refs;
    req.feature_service = a->service ? (char *)a->service : "";
    req.n_keys = p->nkeys;
    req.keys = columns;
    size_t len = fsd__v1__get_features_request__get_packed_size(&req);
    uint8_t *msg = malloc(len + 1);
    if (msg == NULL) {
        fprintf(stderr, "fsctl: out of memory\n");
        return FSCTL_FAILED;
    }
    fsd__v1__get_features_request__pack(&req, msg);
    uint8_t *resp_bytes;
    size_t resp_len;
    int rc =
        fsctl_call(ctx, "/fsd.v1.FeatureService/GetFeatures", msg, len, &resp_bytes, &resp_len);
    free(msg);
    if (rc != FSCTL_OK) {
        return rc;
    }
    Fsd__V1__GetFeaturesResponse *r =
        fsd__v1__get_features_response__unpack(NULL, resp_len, resp_bytes);
    free(resp_bytes);
    if (r == NULL) {
        fprintf(stderr, "fsctl: GetFeatures: the response is not a valid GetFeaturesResponse\n");
        return FSCTL_FAILED;
    }
    size_t n = p->keys[0].n;
    if (r->entities != n) {
        fprintf(stderr,
                "fsctl: GetFeatures: asked for %zu entities, the response has %" PRIu32 "\n", n,
                r->entities);
        rc = FSCTL_FAILED;
    } else if (a->json) {
        _print_json(p, r, n);
    } else {
        _print_table(p, a, r, n);
    }
    fsd__v1__get_features_response__free_unpacked(r, NULL);
    return rc;
}

int fsctl_cmd_get(struct fsctl *ctx, int argc, char **argv) {
    struct get_args a = {0};
    struct plan p = {0};
    Fsd__V1__ListViewsResponse *views = NULL;
    int rc = _parse_args(ctx, argc, argv, &a);
    if (rc < 0) {
        rc = FSCTL_OK; /* --help */
    } else if (rc == FSCTL_OK) {
        views = fsctl_list_views(ctx);
        if (views == NULL) {
            rc = FSCTL_FAILED;
        } else if ((rc = _plan_refs(&p, &a, views)) == FSCTL_OK &&
                   (rc = _plan_keys(&p, &a)) == FSCTL_OK) {
            rc = _request(ctx, &p, &a);
        }
    }
    _plan_free(&p);
    if (views != NULL) {
        fsd__v1__list_views_response__free_unpacked(views, NULL);
    }
    free(a.keys);
    buf_free(&a.features);
    return rc;
}
