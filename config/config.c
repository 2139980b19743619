#include "config_internal.h"

#include "store/schema.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors and paths -------------------------------------------------------------------- */

/* Records an error line. Past a sane number they are only counted: a file of garbage should
 * not make the loader allocate without bound. */
static void _record(struct config_ctx *ctx, size_t line, const char *text) {
    size_t seq = ctx->nerrors++;
    if (ctx->nstored == 4 * CONFIG_MAX_ERRORS) {
        return;
    }
    if (ctx->nstored == ctx->errors_cap) {
        size_t cap = ctx->errors_cap ? 2 * ctx->errors_cap : 16;
        struct config_message *grown = realloc(ctx->errors, cap * sizeof *grown);
        if (grown == NULL) {
            return;
        }
        ctx->errors = grown;
        ctx->errors_cap = cap;
    }
    /* A NULL text (out of memory) is still an error; _report() shows a placeholder. */
    ctx->errors[ctx->nstored++] = (struct config_message){line, seq, strdup(text)};
}

void config_error(struct config_ctx *ctx, const yaml_node_t *node, const char *key, const char *fmt,
                  ...) {
    char line[1024];
    int n;
    const char *dot = ctx->path_len > 0 && key != NULL ? "." : "";
    const char *field = key != NULL ? key : "";
    const char *colon = ctx->path_len > 0 || key != NULL ? ": " : "";
    if (node != NULL) {
        n = snprintf(line, sizeof line, "%s:%zu: %s%s%s%s", ctx->file, node->start_mark.line + 1,
                     ctx->path, dot, field, colon);
    } else {
        n = snprintf(line, sizeof line, "%s: %s%s%s%s", ctx->file, ctx->path, dot, field, colon);
    }
    if (n >= 0 && (size_t)n < sizeof line) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        va_end(ap);
    }
    _record(ctx, node != NULL ? node->start_mark.line + 1 : 0, line);
}

static int _by_line(const void *a, const void *b) {
    const struct config_message *x = a, *y = b;
    if (x->line != y->line) {
        return x->line < y->line ? -1 : 1;
    }
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Writes the first CONFIG_MAX_ERRORS errors in file order into `err`, whole lines only, and
 * frees them. */
static void _report(struct config_ctx *ctx, char *err, size_t err_len) {
    size_t stored = ctx->nstored;
    if (stored > 0) {
        qsort(ctx->errors, stored, sizeof *ctx->errors, _by_line);
    }
    size_t used = 0, shown = 0;
    for (size_t i = 0; i < stored; i++) {
        const char *text = ctx->errors[i].text ? ctx->errors[i].text : "(out of memory)";
        size_t len = strlen(text);
        if (shown < CONFIG_MAX_ERRORS && used + len + 2 <= err_len) {
            if (used > 0) {
                err[used++] = '\n';
            }
            memcpy(err + used, text, len + 1);
            used += len;
            shown++;
        }
        free(ctx->errors[i].text);
    }
    free(ctx->errors);
    ctx->errors = NULL;
    char more[128];
    int n = snprintf(more, sizeof more, "%s%s: %zu more errors not shown", used ? "\n" : "",
                     ctx->file, ctx->nerrors - shown);
    if (shown < ctx->nerrors && n > 0 && used + (size_t)n + 1 <= err_len) {
        memcpy(err + used, more, (size_t)n + 1);
    }
}

size_t config_path_push(struct config_ctx *ctx, const char *fmt, ...) {
    size_t old = ctx->path_len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(ctx->path + old, sizeof ctx->path - old, fmt, ap);
    va_end(ap);
    if (n > 0) {
        ctx->path_len = old + (size_t)n < sizeof ctx->path ? old + (size_t)n : sizeof ctx->path - 1;
    }
    return old;
}

void config_path_pop(struct config_ctx *ctx, size_t len) {
    ctx->path_len = len;
    ctx->path[len] = '\0';
}

/* ---- reading nodes ----------------------------------------------------------------------- */

yaml_node_t *config_node(struct config_ctx *ctx, int index) {
    return yaml_document_get_node(ctx->doc, index);
}

bool config_is_null(const yaml_node_t *node) {
    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        return false;
    }
    const char *v = (const char *)node->data.scalar.value;
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

bool config_is_plain(const yaml_node_t *node, const char *word) {
    return node->type == YAML_SCALAR_NODE && node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           strcmp((const char *)node->data.scalar.value, word) == 0;
}

static const char *_kind(const yaml_node_t *node) {
    switch (node->type) {
    case YAML_SCALAR_NODE:
        return "a scalar";
    case YAML_SEQUENCE_NODE:
        return "a sequence";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "nothing";
    }
}

const char *config_scalar(struct config_ctx *ctx, const yaml_node_t *node, const char *key) {
    if (node->type != YAML_SCALAR_NODE) {
        config_error(ctx, node, key, "expected a scalar, found %s", _kind(node));
        return NULL;
    }
    if (config_is_null(node)) {
        config_error(ctx, node, key, "missing value");
        return NULL;
    }
    const char *text = (const char *)node->data.scalar.value;
    if (strlen(text) != node->data.scalar.length) {
        config_error(ctx, node, key, "value contains a NUL byte");
        return NULL;
    }
    return text;
}

static const char *_key_text(const yaml_node_t *key) {
    return key->type == YAML_SCALAR_NODE ? (const char *)key->data.scalar.value : NULL;
}

static void _join(char *buf, size_t len, const char *const *words) {
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; words[i] != NULL && o < len; i++) {
        o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", words[i]);
    }
}

/* Edit distance (insertions, deletions, substitutions) of two short words, capped at 9. */
static size_t _distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) {
        return 9;
    }
    size_t row[64];
    for (size_t j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t above = row[j];
            size_t best = diagonal + (a[i - 1] != b[j - 1]);
            best = above + 1 < best ? above + 1 : best;
            best = row[j - 1] + 1 < best ? row[j - 1] + 1 : best;
            row[j] = best;
            diagonal = above;
        }
    }
    return row[lb] < 9 ? row[lb] : 9;
}

/* The allowed key a typo most likely meant (at most 2 edits away), or NULL. */
static const char *_closest(const char *name, const char *const *allowed) {
    const char *best = NULL;
    size_t best_distance = 3;
    for (size_t i = 0; allowed[i] != NULL; i++) {
        size_t d = _distance(name, allowed[i]);
        if (d < best_distance) {
            best = allowed[i];
            best_distance = d;
        }
    }
    return best;
}

bool config_check_keys(struct config_ctx *ctx, const yaml_node_t *map, const char *const *allowed) {
    if (map->type != YAML_MAPPING_NODE) {
        config_error(ctx, map, NULL, "expected a mapping, found %s", _kind(map));
        return false;
    }
    size_t listed_on = 0; /* the line whose error listed the allowed keys; 0: none yet */
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const yaml_node_t *key = config_node(ctx, p->key);
        const char *name = _key_text(key);
        if (name == NULL) {
            config_error(ctx, key, NULL, "keys must be scalars, found %s", _kind(key));
            continue;
        }
        bool known = false;
        for (size_t i = 0; allowed[i] != NULL; i++) {
            known = known || strcmp(allowed[i], name) == 0;
        }
        if (!known) {
            const char *closest = _closest(name, allowed);
            if (closest != NULL) {
                config_error(ctx, key, name, "unknown key (did you mean %s?)", closest);
                continue;
            }
            if (listed_on > 0) { /* the list once per mapping, not once per unknown key */
                config_error(ctx, key, name, "unknown key (allowed keys: see line %zu)", listed_on);
                continue;
            }
            char expected[1024];
            _join(expected, sizeof expected, allowed);
            config_error(ctx, key, name, "unknown key (expected %s)", expected);
            listed_on = key->start_mark.line + 1;
            continue;
        }
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            const yaml_node_t *earlier = config_node(ctx, q->key);
            const char *earlier_name = _key_text(earlier);
            if (earlier_name != NULL && strcmp(earlier_name, name) == 0) {
                config_error(ctx, key, name, "duplicate key (first on line %zu)",
                             earlier->start_mark.line + 1);
                break;
            }
        }
    }
    return true;
}

yaml_node_t *config_get(struct config_ctx *ctx, const yaml_node_t *map, const char *key,
                        bool required) {
    if (map->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
             p++) {
            const char *name = _key_text(config_node(ctx, p->key));
            if (name != NULL && strcmp(name, key) == 0) {
                return config_node(ctx, p->value);
            }
        }
    }
    if (required && map->type == YAML_MAPPING_NODE) {
        config_error(ctx, map, key, "missing (required)");
    }
    return NULL;
}

bool config_check_name(struct config_ctx *ctx, const yaml_node_t *node, const char *key,
                       const char *name) {
    size_t len = strlen(name);
    bool ok =
        len > 0 && len <= CONFIG_MAX_NAME && !(name[0] >= '0' && name[0] <= '9') &&
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == len;
    if (!ok) {
        config_error(ctx, node, key,
                     "invalid name \"%.*s\" (expected [A-Za-z_][A-Za-z0-9_]*, at most %d bytes)",
                     80, name, CONFIG_MAX_NAME);
    }
    return ok;
}

int config_duration(struct config_ctx *ctx, const yaml_node_t *node, const char *key, int64_t *us) {
    const char *text = config_scalar(ctx, node, key);
    if (text == NULL) {
        return -1;
    }
    char why[256];
    if (option_parse_duration(text, us, why, sizeof why) != 0) {
        config_error(ctx, node, key, "%s", why);
        return -1;
    }
    return 0;
}

/* ---- option sections --------------------------------------------------------------------- */

/* The keys of one section: every option of every group the table puts there. */
static void _parse_section(struct config_ctx *ctx, const struct option_section *section,
                           const yaml_node_t *map) {
    const struct option_table *table = ctx->options;
    const char *nested = strrchr(section->name, '.'); /* ".auth" within "server" */
    size_t mark = config_path_push(ctx, "%s", nested ? nested : section->name);
    if (config_is_null(map)) {
        config_path_pop(ctx, mark); /* "server:" with every option commented out */
        return;
    }
    const struct option_def *defs[OPTION_SECTION_MAX];
    size_t n = option_table_section_defs(table, section->name, defs, OPTION_SECTION_MAX);
    const char *allowed[2 * OPTION_SECTION_MAX + 1];
    for (size_t i = 0; i < n; i++) {
        allowed[i] = defs[i]->name;
    }
    /* Nested sections ("server.auth") are keys of their parent, with a mapping each. */
    for (size_t i = 0; i < table->nsections && n < 2 * OPTION_SECTION_MAX; i++) {
        const char *key = option_section_child(table->sections[i].name, section->name);
        if (key != NULL) {
            allowed[n++] = key;
        }
    }
    allowed[n] = NULL;
    if (config_check_keys(ctx, map, allowed)) {
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
             p++) {
            const char *name = _key_text(config_node(ctx, p->key));
            size_t offset = 0;
            const struct option_def *def =
                name ? option_table_find(table, section->name, name, &offset) : NULL;
            if (def == NULL) {
                continue; /* a nested section, below, or reported by config_check_keys */
            }
            const yaml_node_t *value = config_node(ctx, p->value);
            const char *text = config_scalar(ctx, value, name);
            char why[512];
            if (text != NULL && option_set(def, (char *)ctx->config->options + offset, text, why,
                                           sizeof why) != 0) {
                config_error(ctx, value, name, "%s", why);
            }
        }
        for (size_t i = 0; i < table->nsections; i++) {
            const char *key = option_section_child(table->sections[i].name, section->name);
            const yaml_node_t *child = key ? config_get(ctx, map, key, false) : NULL;
            if (child != NULL) {
                _parse_section(ctx, &table->sections[i], child);
            }
        }
    }
    config_path_pop(ctx, mark);
}

/* ---- feature services -------------------------------------------------------------------- */

static const struct config_view *_find_view(const struct fsd_config *config, const char *name,
                                            size_t *index) {
    for (size_t i = 0; i < config->nviews; i++) {
        const struct store_schema *schema = config->views[i].schema;
        if (schema != NULL && strcmp(schema->view, name) == 0) {
            *index = i;
            return &config->views[i];
        }
    }
    return NULL;
}

/*
 * Resolves one "view:feature" or "view:*" reference into `svc`. `seen` has one slot per
 * feature of every view (at `first[view] + feature`) holding 1 + the index of the reference
 * that included it, so a feature named twice is reported with the earlier reference.
 */
static void _resolve_ref(struct config_ctx *ctx, struct config_service *svc, const yaml_node_t *seq,
                         size_t ref_index, const size_t *first, uint32_t *seen) {
    const yaml_node_t *node = config_node(ctx, seq->data.sequence.items.start[ref_index]);
    size_t mark = config_path_push(ctx, "[%zu]", ref_index);
    const char *text = config_scalar(ctx, node, NULL);
    if (text == NULL) {
        config_path_pop(ctx, mark);
        return;
    }
    const char *colon = strchr(text, ':');
    if (colon == NULL || colon == text || colon[1] == '\0') {
        config_error(ctx, node, NULL, "expected \"view:feature\" or \"view:*\", found \"%.80s\"",
                     text);
        config_path_pop(ctx, mark);
        return;
    }
    char view_name[CONFIG_MAX_NAME + 1];
    size_t view_len = (size_t)(colon - text);
    snprintf(view_name, sizeof view_name, "%.*s",
             (int)(view_len < CONFIG_MAX_NAME ? view_len : CONFIG_MAX_NAME), text);
    const char *feature_name = colon + 1;
    size_t v;
    const struct config_view *view = _find_view(ctx->config, view_name, &v);
    if (view == NULL) {
        config_error(ctx, node, NULL, "unknown view \"%.80s\"", view_name);
        config_path_pop(ctx, mark);
        return;
    }
    if (ctx->view_broken[v]) {
        config_path_pop(ctx, mark); /* its errors are already reported */
        return;
    }
    const struct store_schema *schema = view->schema;
    uint32_t lo, hi;
    if (strcmp(feature_name, "*") == 0) {
        lo = 0;
        hi = schema->nfeatures;
    } else {
        int f = store_schema_feature_index(schema, feature_name);
        if (f < 0) {
            config_error(ctx, node, NULL, "view \"%s\" has no feature \"%.80s\"", view_name,
                         feature_name);
            config_path_pop(ctx, mark);
            return;
        }
        lo = (uint32_t)f;
        hi = lo + 1;
    }
    for (uint32_t f = lo; f < hi; f++) {
        uint32_t *slot = &seen[first[v] + f];
        if (*slot != 0) {
            const yaml_node_t *earlier =
                config_node(ctx, seq->data.sequence.items.start[*slot - 1]);
            config_error(ctx, node, NULL, "feature %s:%s is already included by [%u] \"%s\"",
                         view_name, schema->features[f].name, *slot - 1,
                         (const char *)earlier->data.scalar.value);
            continue;
        }
        *slot = (uint32_t)ref_index + 1;
        svc->features[svc->nfeatures++] = (struct config_feature_ref){(uint32_t)v, f};
    }
    config_path_pop(ctx, mark);
}

static void _parse_service(struct config_ctx *ctx, struct config_service *svc,
                           const yaml_node_t *map) {
    static const char *const keys[] = {"name", "features", NULL};
    if (!config_check_keys(ctx, map, keys)) {
        return;
    }
    const yaml_node_t *name_node = config_get(ctx, map, "name", true);
    const char *name = name_node ? config_scalar(ctx, name_node, "name") : NULL;
    if (name != NULL && config_check_name(ctx, name_node, "name", name)) {
        for (size_t i = 0; i < ctx->config->nservices; i++) {
            if (ctx->config->services[i].name && strcmp(ctx->config->services[i].name, name) == 0) {
                config_error(ctx, name_node, "name", "duplicate feature service \"%s\"", name);
                break;
            }
        }
        if ((svc->name = strdup(name)) == NULL) {
            config_error(ctx, name_node, "name", "out of memory");
        }
    }

    const yaml_node_t *seq = config_get(ctx, map, "features", true);
    if (seq == NULL) {
        return;
    }
    size_t mark = config_path_push(ctx, ".features");
    if (seq->type != YAML_SEQUENCE_NODE ||
        seq->data.sequence.items.top == seq->data.sequence.items.start) {
        config_error(ctx, seq, NULL,
                     "expected a non-empty sequence of \"view:feature\" or "
                     "\"view:*\"");
        config_path_pop(ctx, mark);
        return;
    }
    /* Every feature of every view at most once: size the arrays for that. */
    size_t *first = calloc(ctx->config->nviews + 1, sizeof *first);
    size_t total = 0;
    for (size_t v = 0; v < ctx->config->nviews; v++) {
        first[v] = total;
        const struct store_schema *schema = ctx->config->views[v].schema;
        total += schema ? schema->nfeatures : 0;
    }
    uint32_t *seen = calloc(total + 1, sizeof *seen);
    svc->features = calloc(total + 1, sizeof *svc->features);
    if (first == NULL || seen == NULL || svc->features == NULL) {
        config_error(ctx, seq, NULL, "out of memory");
    } else {
        size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
        for (size_t i = 0; i < n; i++) {
            _resolve_ref(ctx, svc, seq, i, first, seen);
        }
    }
    free(first);
    free(seen);
    config_path_pop(ctx, mark);
}

static void _parse_services(struct config_ctx *ctx, const yaml_node_t *seq) {
    size_t mark = config_path_push(ctx, "feature_services");
    if (config_is_null(seq)) {
        config_path_pop(ctx, mark);
        return;
    }
    if (seq->type != YAML_SEQUENCE_NODE) {
        config_error(ctx, seq, NULL, "expected a sequence of feature services, found %s",
                     _kind(seq));
        config_path_pop(ctx, mark);
        return;
    }
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    ctx->config->services = calloc(n + 1, sizeof *ctx->config->services);
    if (ctx->config->services == NULL) {
        config_error(ctx, seq, NULL, "out of memory");
        config_path_pop(ctx, mark);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *map = config_node(ctx, seq->data.sequence.items.start[i]);
        size_t item = config_path_push(ctx, "[%zu]", i);
        _parse_service(ctx, &ctx->config->services[i], map);
        ctx->config->nservices = i + 1;
        config_path_pop(ctx, item);
    }
    config_path_pop(ctx, mark);
}

/* ---- top level --------------------------------------------------------------------------- */

static void _parse_root(struct config_ctx *ctx, const yaml_node_t *root) {
    const struct option_table *table = ctx->options;
    const char *allowed[16];
    size_t n = 0;
    for (size_t i = 0; table != NULL && i < table->nsections && n < 13; i++) {
        if (option_section_child(table->sections[i].name, NULL) != NULL) {
            allowed[n++] = table->sections[i].name;
        }
    }
    allowed[n++] = "views";
    allowed[n++] = "feature_services";
    allowed[n] = NULL;
    if (root->type != YAML_MAPPING_NODE) {
        config_error(ctx, root, NULL,
                     "expected a mapping with keys such as server, views, "
                     "feature_services; found %s",
                     _kind(root));
        return;
    }
    /* Without a table the option sections are another program's: not read, not checked. */
    if (table != NULL) {
        config_check_keys(ctx, root, allowed);
    }
    for (size_t i = 0; table != NULL && i < table->nsections; i++) {
        if (option_section_child(table->sections[i].name, NULL) == NULL) {
            continue; /* nested: read with its parent */
        }
        const yaml_node_t *section = config_get(ctx, root, table->sections[i].name, false);
        if (section != NULL) {
            _parse_section(ctx, &table->sections[i], section);
        }
    }
    const yaml_node_t *views = config_get(ctx, root, "views", false);
    if (views != NULL) {
        config_parse_views(ctx, views);
    }
    const yaml_node_t *services = config_get(ctx, root, "feature_services", false);
    if (services != NULL) {
        _parse_services(ctx, services);
    }
}

static void _syntax_error(struct config_ctx *ctx, const yaml_parser_t *parser) {
    const char *problem = parser->problem ? parser->problem : "invalid YAML";
    if (parser->error == YAML_MEMORY_ERROR) {
        config_error(ctx, NULL, NULL, "out of memory");
        return;
    }
    /* libyaml's marks are 0-based; editors count lines from 1. */
    yaml_node_t at = {.start_mark = parser->problem_mark};
    if (parser->context != NULL) {
        config_error(ctx, &at, NULL, "YAML syntax error: %s (%s started on line %zu)", problem,
                     parser->context, parser->context_mark.line + 1);
    } else {
        config_error(ctx, &at, NULL, "YAML syntax error: %s", problem);
    }
}

static void _parse_text(struct config_ctx *ctx, const char *yaml, size_t yaml_len) {
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        config_error(ctx, NULL, NULL, "out of memory");
        return;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, yaml_len);
    if (!yaml_parser_load(&parser, &doc)) {
        _syntax_error(ctx, &parser);
        yaml_parser_delete(&parser);
        return;
    }
    ctx->doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root == NULL) {
        config_error(ctx, NULL, NULL, "the file is empty");
    } else {
        _parse_root(ctx, root);
        /* A second document ("---") would be ignored silently; say so instead. */
        yaml_document_t next;
        if (!yaml_parser_load(&parser, &next)) {
            _syntax_error(ctx, &parser);
        } else {
            yaml_node_t *extra = yaml_document_get_root_node(&next);
            if (extra != NULL) {
                config_error(ctx, extra, NULL,
                             "a second YAML document; a config is a single document");
            }
            yaml_document_delete(&next);
        }
    }
    ctx->doc = NULL;
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
}

int config_parse(const char *name, const char *yaml, size_t yaml_len,
                 const struct option_table *options, struct fsd_config **out, char *err,
                 size_t err_len) {
    *out = NULL;
    if (err_len > 0) {
        err[0] = '\0';
    }
    struct config_ctx ctx = {.file = name, .options = options};
    struct fsd_config *config = calloc(1, sizeof *config);
    char why[256];
    if (config == NULL || (config->path = strdup(name)) == NULL ||
        (options != NULL && (config->options = calloc(1, options->block_size)) == NULL)) {
        config_error(&ctx, NULL, NULL, "out of memory");
    } else if (options != NULL &&
               option_table_defaults(options, config->options, why, sizeof why) != 0) {
        config_error(&ctx, NULL, NULL, "%s", why);
    } else {
        ctx.config = config;
        _parse_text(&ctx, yaml, yaml_len);
    }
    free(ctx.view_broken);
    if (ctx.nerrors == 0) {
        config->snapshots = calloc(config->nviews + 1, sizeof(*config->snapshots));
        config->streams = calloc(config->nviews + 1, sizeof(*config->streams));
        if (config->snapshots == NULL || config->streams == NULL) {
            config_error(&ctx, NULL, NULL, "out of memory");
        }
        for (size_t i = 0; ctx.nerrors == 0 && i < config->nviews; i++) {
            config->snapshots[i] = &config->views[i].snapshot;
            config->streams[i] = &config->views[i].stream;
        }
    }
    if (ctx.nerrors > 0) {
        _report(&ctx, err, err_len);
        config_destroy(config);
        return -1;
    }
    *out = config;
    return 0;
}

int config_load(const char *path, const struct option_table *options, struct fsd_config **out,
                char *err, size_t err_len) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, err_len, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    /* Configs are small; reading it whole lets config_parse() work from memory (and fuzz). */
    char *data = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            char *grown = cap <= ((size_t)64 << 20) ? realloc(data, cap) : NULL;
            if (grown == NULL) {
                free(data);
                fclose(f);
                snprintf(err, err_len, "%s: too large or out of memory", path);
                return -1;
            }
            data = grown;
        }
        size_t n = fread(data + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            break;
        }
    }
    bool failed = ferror(f);
    int saved = errno;
    fclose(f);
    if (failed) {
        free(data);
        snprintf(err, err_len, "%s: cannot read: %s", path, strerror(saved));
        return -1;
    }
    int rc = config_parse(path, data, len, options, out, err, err_len);
    free(data);
    return rc;
}

void config_destroy(struct fsd_config *config) {
    if (config == NULL) {
        return;
    }
    for (size_t i = 0; i < config->nviews; i++) {
        store_schema_destroy(config->views[i].schema);
        mat_source_deinit(&config->views[i].snapshot.source);
    }
    free(config->views);
    free(config->snapshots);
    free(config->streams);
    for (size_t i = 0; i < config->nservices; i++) {
        free(config->services[i].name);
        free(config->services[i].features);
    }
    free(config->services);
    free(config->options);
    free(config->path);
    free(config);
}

const struct config_view *config_find_view(const struct fsd_config *config, const char *name) {
    size_t index;
    return _find_view(config, name, &index);
}

const struct config_service *config_find_service(const struct fsd_config *config,
                                                 const char *name) {
    for (size_t i = 0; i < config->nservices; i++) {
        if (strcmp(config->services[i].name, name) == 0) {
            return &config->services[i];
        }
    }
    return NULL;
}
