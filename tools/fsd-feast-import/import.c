/*
 * fsd-feast-import's conversion (main.c has the command line): a Feast registry and its
 * repo's feature_store.yaml into an fsd config. See main.c for what maps.
 */
#include "import.h"

#include <errno.h>
#include <json-c/json.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/buf.h"

void import_skip(struct report *r, const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    char **lines = realloc(r->lines, (r->n + 1) * sizeof(*lines));
    if (lines == NULL || (lines[r->n] = strdup(line)) == NULL) {
        fprintf(stderr, "fsd-feast-import: out of memory\n");
        exit(1);
    }
    r->lines = lines;
    r->n++;
}

/* fsd's rule for names: [A-Za-z_][A-Za-z0-9_]*, at most 64 bytes. */
static bool _name_ok(const char *name) {
    size_t len = strlen(name);
    return len > 0 && len <= 64 && !(name[0] >= '0' && name[0] <= '9') &&
           strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == len;
}

/* A YAML double-quoted scalar. */
static void _quoted(FILE *out, const char *s) {
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            fprintf(out, "\\%c", c);
        } else if (c < 0x20) {
            fprintf(out, "\\x%02x", c);
        } else {
            fputc(c, out);
        }
    }
    fputc('"', out);
}

/* fsd's type for a Feast ValueType, or NULL (with why) when fsd has none. */
static const char *_fsd_type(Feast__Types__ValueType__Enum t, const char **why) {
    switch (t) {
    case FEAST__TYPES__VALUE_TYPE__ENUM__BYTES:
        return "bytes";
    case FEAST__TYPES__VALUE_TYPE__ENUM__STRING:
        return "string";
    case FEAST__TYPES__VALUE_TYPE__ENUM__INT32:
        return "int32";
    case FEAST__TYPES__VALUE_TYPE__ENUM__INT64:
        return "int64";
    case FEAST__TYPES__VALUE_TYPE__ENUM__DOUBLE:
        return "double";
    case FEAST__TYPES__VALUE_TYPE__ENUM__FLOAT:
        return "float";
    case FEAST__TYPES__VALUE_TYPE__ENUM__BOOL:
        return "bool";
    case FEAST__TYPES__VALUE_TYPE__ENUM__UNIX_TIMESTAMP:
        return "timestamp";
    case FEAST__TYPES__VALUE_TYPE__ENUM__STRING_LIST:
        return "string_list";
    case FEAST__TYPES__VALUE_TYPE__ENUM__INT64_LIST:
        return "int64_list";
    case FEAST__TYPES__VALUE_TYPE__ENUM__FLOAT_LIST:
        return "float_list";
    case FEAST__TYPES__VALUE_TYPE__ENUM__BYTES_LIST:
        return "bytes_list";
    case FEAST__TYPES__VALUE_TYPE__ENUM__INT32_LIST:
        return "int32_list";
    case FEAST__TYPES__VALUE_TYPE__ENUM__DOUBLE_LIST:
        return "double_list";
    case FEAST__TYPES__VALUE_TYPE__ENUM__BOOL_LIST:
        return "bool_list";
    case FEAST__TYPES__VALUE_TYPE__ENUM__UNIX_TIMESTAMP_LIST:
        return "timestamp_list";
    default:
        *why = "a type fsd does not serve (map, JSON, struct, set, UUID or unknown)";
        return NULL;
    }
}

/* ---- feature_store.yaml ------------------------------------------------------------------ */

static const yaml_node_t *_get(yaml_document_t *doc, const yaml_node_t *map, const char *key) {
    if (map == NULL || map->type != YAML_MAPPING_NODE) {
        return NULL;
    }
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (k != NULL && k->type == YAML_SCALAR_NODE &&
            strcmp((char *)k->data.scalar.value, key) == 0) {
            return yaml_document_get_node(doc, p->value);
        }
    }
    return NULL;
}

static const char *_scalar(const yaml_node_t *n) {
    return n != NULL && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Appends a libpq keyword='value' to `dsn`; false when it does not fit (nothing is added). */
static bool _dsn_add(char *dsn, size_t len, const char *key, const char *value) {
    if (value == NULL || value[0] == '\0') {
        return true;
    }
    char quoted[sizeof((struct repo *)0)->dsn];
    size_t n = 0;
    for (const char *c = value; *c; c++) {
        if (n + 3 >= sizeof quoted) {
            return false;
        }
        if (*c == '\'' || *c == '\\') {
            quoted[n++] = '\\';
        }
        quoted[n++] = *c;
    }
    quoted[n] = '\0';
    size_t at = strlen(dsn);
    int wrote = snprintf(dsn + at, len - at, "%s%s='%s'", at > 0 ? " " : "", key, quoted);
    if (wrote < 0 || (size_t)wrote >= len - at) {
        dsn[at] = '\0';
        return false;
    }
    return true;
}

int import_read_feature_store(const char *path, struct repo *repo, struct report *r) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "fsd-feast-import: %s: %s\n", path, strerror(errno));
        return -1;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    int rc = -1;
    if (!yaml_parser_load(&parser, &doc)) {
        fprintf(stderr, "fsd-feast-import: %s: not YAML: %s (line %zu)\n", path,
                parser.problem ? parser.problem : "?", parser.problem_mark.line + 1);
    } else {
        const yaml_node_t *root = yaml_document_get_root_node(&doc);
        const char *project = _scalar(_get(&doc, root, "project"));
        if (project != NULL && repo->project[0] == '\0') {
            snprintf(repo->project, sizeof repo->project, "%s", project);
        }
        const yaml_node_t *offline = _get(&doc, root, "offline_store");
        const char *type = _scalar(_get(&doc, offline, "type"));
        if (type != NULL && strcmp(type, "postgres") == 0) {
            /* Feast's own connection, TLS included, with its schema first in the search path
             * (unqualified table names resolve there), as Feast connects. */
            static const struct {
                const char *libpq, *feast;
            } settings[] = {
                {"host", "host"},
                {"port", "port"},
                {"dbname", "database"},
                {"user", "user"},
                {"password", "password"},
                {"sslmode", "sslmode"},
                {"sslkey", "sslkey_path"},
                {"sslcert", "sslcert_path"},
                {"sslrootcert", "sslrootcert_path"},
            };
            bool fits = true;
            for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
                fits &= _dsn_add(repo->dsn, sizeof repo->dsn, settings[i].libpq,
                                 _scalar(_get(&doc, offline, settings[i].feast)));
            }
            const char *schema = _scalar(_get(&doc, offline, "db_schema"));
            if (schema != NULL && schema[0] != '\0') {
                char options[sizeof repo->dsn];
                int n = snprintf(options, sizeof options, "-c search_path=%s", schema);
                fits &= n > 0 && (size_t)n < sizeof options &&
                        _dsn_add(repo->dsn, sizeof repo->dsn, "options", options);
            }
            if (!fits) {
                import_skip(r,
                            "offline_store: connection settings longer than %zu bytes; give "
                            "the sources a dsn by hand",
                            sizeof repo->dsn - 1);
            }
        }
        char copy[PATH_MAX];
        snprintf(copy, sizeof copy, "%s", path);
        if (realpath(dirname(copy), repo->dir) == NULL) {
            repo->dir[0] = '\0';
        }
        yaml_document_delete(&doc);
        rc = 0;
    }
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}

/* ---- the registry ------------------------------------------------------------------------ */

static bool _in_project(const struct repo *repo, const char *project) {
    return repo->project[0] == '\0' || project == NULL || project[0] == '\0' ||
           strcmp(repo->project, project) == 0;
}

static const Feast__Core__EntitySpecV2 *_entity(const Feast__Core__Registry *reg,
                                                const struct repo *repo, const char *name) {
    for (size_t i = 0; i < reg->n_entities; i++) {
        const Feast__Core__EntitySpecV2 *e = reg->entities[i]->spec;
        if (e != NULL && strcmp(e->name, name) == 0 && _in_project(repo, e->project)) {
            return e;
        }
    }
    return NULL;
}

/* A view's translatable features: their indexes into spec->features. */
struct view_plan {
    const Feast__Core__FeatureViewSpec *spec;
    const char *keys[8];
    const char *key_types[8];
    size_t nkeys;
    size_t *features;
    size_t nfeatures;
};

/* Plans view `spec`; false (reported) when nothing of it can be served. */
static bool _plan_view(const Feast__Core__Registry *reg, const struct repo *repo,
                       const Feast__Core__FeatureViewSpec *spec, struct view_plan *v,
                       struct report *r) {
    memset(v, 0, sizeof(*v));
    v->spec = spec;
    if (!_name_ok(spec->name)) {
        import_skip(r, "feature view %s: the name is not one fsd takes ([A-Za-z_][A-Za-z0-9_]*)",
                    spec->name);
        return false;
    }
    for (size_t i = 0; i < spec->n_entities; i++) {
        if (strcmp(spec->entities[i], "__dummy") == 0) {
            import_skip(r, "feature view %s: it has no entity (fsd views are looked up by key)",
                        spec->name);
            return false;
        }
        const Feast__Core__EntitySpecV2 *e = _entity(reg, repo, spec->entities[i]);
        if (e == NULL || v->nkeys == 8) {
            import_skip(r, "feature view %s: entity %s is %s", spec->name, spec->entities[i],
                        e == NULL ? "not in the registry" : "one too many (fsd takes 8 join keys)");
            return false;
        }
        const char *key = e->join_key[0] != '\0' ? e->join_key : e->name;
        Feast__Types__ValueType__Enum t = e->value_type;
        for (size_t c = 0; c < spec->n_entity_columns; c++) { /* newer registries say here */
            if (strcmp(spec->entity_columns[c]->name, key) == 0) {
                t = spec->entity_columns[c]->value_type;
            }
        }
        const char *type = t == FEAST__TYPES__VALUE_TYPE__ENUM__STRING ? "string"
                           : t == FEAST__TYPES__VALUE_TYPE__ENUM__INT64 ||
                                   t == FEAST__TYPES__VALUE_TYPE__ENUM__INT32
                               ? "int64"
                               : NULL;
        if (type == NULL || !_name_ok(key)) {
            import_skip(r, "feature view %s: join key %s is %s", spec->name, key,
                        type == NULL ? "neither an integer nor a string" : "not a name fsd takes");
            return false;
        }
        v->keys[v->nkeys] = key;
        v->key_types[v->nkeys++] = type;
    }
    if (v->nkeys == 0) {
        import_skip(r, "feature view %s: no entities", spec->name);
        return false;
    }
    v->features = calloc(spec->n_features + 1, sizeof(*v->features));
    for (size_t f = 0; v->features != NULL && f < spec->n_features; f++) {
        const char *why = NULL;
        const Feast__Core__FeatureSpecV2 *fs = spec->features[f];
        if (_fsd_type(fs->value_type, &why) == NULL) {
            import_skip(r, "feature %s:%s: %s", spec->name, fs->name, why);
        } else if (!_name_ok(fs->name)) {
            import_skip(r, "feature %s:%s: not a name fsd takes", spec->name, fs->name);
        } else {
            v->features[v->nfeatures++] = f;
        }
    }
    if (v->nfeatures == 0) {
        import_skip(r, "feature view %s: none of its features can be served", spec->name);
        free(v->features);
        return false;
    }
    return true;
}

static bool _planned(const struct view_plan *v, const char *feature) {
    for (size_t i = 0; i < v->nfeatures; i++) {
        if (strcmp(v->spec->features[v->features[i]]->name, feature) == 0) {
            return true;
        }
    }
    return false;
}

/* The source column Feast's field_mapping renames to `name`; `name` when none does. */
static const char *_source_column(const Feast__Core__DataSource *s, const char *name) {
    for (size_t i = 0; i < s->n_field_mapping; i++) {
        if (strcmp(s->field_mapping[i]->value, name) == 0) {
            return s->field_mapping[i]->key;
        }
    }
    return name;
}

/* `name` as a quoted PostgreSQL identifier. */
static void _identifier(struct buf *b, const char *name) {
    buf_add(b, "\"", 1);
    for (const char *c = name; *c; c++) {
        buf_add(b, c, 1);
        if (*c == '"') {
            buf_add(b, "\"", 1); /* doubled inside quotes */
        }
    }
    buf_add(b, "\"", 1);
}

/*
 * A PostgreSQL source with a field_mapping, as one query: every column fsd reads, selected
 * from its source column under the name the mapping gives it (join keys and features; the
 * time columns keep their names, as timestamp_field names the source's column). `from` is
 * the table as Feast's config gives it, or its query. The caller frees; NULL out of memory.
 */
static char *_mapped_query(const struct view_plan *v, const Feast__Core__DataSource *s,
                           const char *table, const char *query) {
    struct buf b = {0};
    buf_puts(&b, "SELECT ");
    const Feast__Core__FeatureViewSpec *spec = v->spec;
    for (size_t i = 0; i < v->nkeys + v->nfeatures; i++) {
        const char *name =
            i < v->nkeys ? v->keys[i] : spec->features[v->features[i - v->nkeys]]->name;
        const char *column = _source_column(s, name);
        _identifier(&b, column);
        if (strcmp(column, name) != 0) {
            buf_puts(&b, " AS ");
            _identifier(&b, name);
        }
        buf_puts(&b, ", ");
    }
    _identifier(&b, s->timestamp_field);
    if (s->created_timestamp_column[0] != '\0') {
        buf_puts(&b, ", ");
        _identifier(&b, s->created_timestamp_column);
    }
    buf_puts(&b, " FROM ");
    if (table[0] != '\0') {
        buf_puts(&b, table); /* SQL as Feast puts it after FROM: may be schema-qualified */
    } else {
        buf_printf(&b, "(%s) AS feast_source", query);
    }
    if (b.failed) {
        buf_free(&b);
        return NULL;
    }
    return b.data;
}

/* The view's batch source as fsd's source: block; reported when it is not one fsd reads. */
static void _write_source(FILE *out, const struct repo *repo, const struct view_plan *v,
                          struct report *r) {
    const Feast__Core__FeatureViewSpec *spec = v->spec;
    const Feast__Core__DataSource *s = spec->batch_source;
    if (s == NULL) {
        return;
    }
    const char *ts = s->timestamp_field;
    bool file = s->type == FEAST__CORE__DATA_SOURCE__SOURCE_TYPE__BATCH_FILE &&
                s->options_case == FEAST__CORE__DATA_SOURCE__OPTIONS_FILE_OPTIONS;
    bool postgres = s->type == FEAST__CORE__DATA_SOURCE__SOURCE_TYPE__CUSTOM_SOURCE &&
                    s->options_case == FEAST__CORE__DATA_SOURCE__OPTIONS_CUSTOM_OPTIONS &&
                    strstr(s->data_source_class_type, "PostgreSQLSource") != NULL;
    if ((!file && !postgres) || ts[0] == '\0') {
        import_skip(r,
                    "feature view %s: source %s is not one fsd reads (%s); the view is fed by "
                    "pushes only",
                    spec->name, s->name,
                    ts[0] == '\0' ? "it names no timestamp_field"
                                  : "fsd reads Parquet files and PostgreSQL");
        return;
    }
    if (file && s->n_field_mapping > 0) {
        import_skip(r,
                    "feature view %s: its Parquet source's field_mapping (fsd reads a file's "
                    "columns by feature name: rename them in the file)",
                    spec->name);
    }
    if (file) {
        const char *uri = s->file_options->uri;
        char path[PATH_MAX * 2];
        if (strncmp(uri, "file://", 7) == 0) {
            uri += 7;
        }
        if (strstr(uri, "://") != NULL) {
            import_skip(r, "feature view %s: source %s is at %s: fsd reads local files only",
                        spec->name, s->name, uri);
            return;
        }
        if (uri[0] != '/' && repo->dir[0] != '\0') {
            snprintf(path, sizeof path, "%s/%s", repo->dir, uri);
        } else {
            snprintf(path, sizeof path, "%s", uri);
        }
        fprintf(out, "    source:\n      type: parquet\n      path: ");
        _quoted(out, path);
        fprintf(out, "\n");
    } else {
        const ProtobufCBinaryData *raw = &s->custom_options->configuration;
        char *text = malloc(raw->len + 1); /* the bytes are not NUL-terminated */
        if (text == NULL) {
            return;
        }
        if (raw->len > 0) {
            memcpy(text, raw->data, raw->len);
        }
        text[raw->len] = '\0';
        json_object *cfg = json_tokener_parse(text);
        free(text);
        json_object *table = NULL, *query = NULL;
        if (cfg != NULL) {
            json_object_object_get_ex(cfg, "table", &table);
            json_object_object_get_ex(cfg, "query", &query);
        }
        const char *t = table ? json_object_get_string(table) : "";
        const char *q = query ? json_object_get_string(query) : "";
        if ((t[0] == '\0') == (q[0] == '\0')) {
            import_skip(r, "feature view %s: PostgreSQL source %s names %s table or query",
                        spec->name, s->name, t[0] == '\0' ? "no" : "both a");
            json_object_put(cfg);
            return;
        }
        char *mapped = s->n_field_mapping > 0 ? _mapped_query(v, s, t, q) : NULL;
        if (s->n_field_mapping > 0 && mapped == NULL) {
            import_skip(r, "feature view %s: out of memory writing its source", spec->name);
            json_object_put(cfg);
            return;
        }
        fprintf(out, "    source:\n      type: postgres\n");
        if (repo->dsn[0] != '\0') {
            fprintf(out, "      dsn: ");
            _quoted(out, repo->dsn);
            fprintf(out, "\n");
        }
        fprintf(out, "      %s: ", t[0] != '\0' && mapped == NULL ? "table" : "query");
        _quoted(out, mapped != NULL ? mapped : t[0] != '\0' ? t : q);
        fprintf(out, "\n");
        free(mapped);
        json_object_put(cfg);
    }
    fprintf(out, "      event_timestamp_column: ");
    _quoted(out, ts);
    fprintf(out, "\n");
    if (s->created_timestamp_column[0] != '\0') {
        fprintf(out, "      created_timestamp_column: ");
        _quoted(out, s->created_timestamp_column);
        fprintf(out, "\n");
    }
}

static void _write_view(FILE *out, const struct repo *repo, const struct view_plan *v,
                        struct report *r) {
    const Feast__Core__FeatureViewSpec *spec = v->spec;
    fprintf(out, "  - name: %s\n    join_keys:\n", spec->name);
    for (size_t k = 0; k < v->nkeys; k++) {
        fprintf(out, "      - {name: %s, type: %s}\n", v->keys[k], v->key_types[k]);
    }
    int64_t ttl = spec->ttl != NULL ? spec->ttl->seconds + (spec->ttl->nanos > 0) : 0;
    fprintf(out, "    ttl: %llds\n", (long long)(ttl > 0 ? ttl : 0));
    _write_source(out, repo, v, r);
    const Feast__Core__DataSource *stream = spec->stream_source;
    if (stream != NULL && stream->type == FEAST__CORE__DATA_SOURCE__SOURCE_TYPE__PUSH_SOURCE) {
        if (_name_ok(stream->name)) {
            fprintf(out, "    push_source: %s\n", stream->name);
        } else {
            import_skip(r, "feature view %s: push source name %s is not one fsd takes", spec->name,
                        stream->name);
        }
    } else if (stream != NULL && stream->type != FEAST__CORE__DATA_SOURCE__SOURCE_TYPE__INVALID) {
        import_skip(r,
                    "feature view %s: stream source %s (Kafka, Kinesis: fsd follows Redis streams; "
                    "configure one by hand)",
                    spec->name, stream->name);
    }
    fprintf(out, "    features:\n");
    for (size_t i = 0; i < v->nfeatures; i++) {
        const Feast__Core__FeatureSpecV2 *fs = spec->features[v->features[i]];
        const char *why;
        fprintf(out, "      - {name: %s, type: %s}\n", fs->name, _fsd_type(fs->value_type, &why));
    }
}

static const struct view_plan *_find_plan(const struct view_plan *plans, size_t n,
                                          const char *name) {
    for (size_t i = 0; i < n; i++) {
        if (strcmp(plans[i].spec->name, name) == 0) {
            return &plans[i];
        }
    }
    return NULL;
}

int import_convert(const Feast__Core__Registry *reg, const struct repo *repo, FILE *out,
                   FILE *log) {
    struct report r = {0};
    for (size_t i = 0; i < reg->n_on_demand_feature_views; i++) {
        const Feast__Core__OnDemandFeatureViewSpec *s = reg->on_demand_feature_views[i]->spec;
        if (s != NULL && _in_project(repo, s->project)) {
            import_skip(&r, "on-demand feature view %s: fsd runs no transformations", s->name);
        }
    }
    for (size_t i = 0; i < reg->n_stream_feature_views; i++) {
        const Feast__Core__StreamFeatureViewSpec *s = reg->stream_feature_views[i]->spec;
        if (s != NULL && _in_project(repo, s->project)) {
            import_skip(&r,
                        "stream feature view %s: fsd runs no aggregations (declare a view with a "
                        "Redis stream instead)",
                        s->name);
        }
    }
    struct view_plan *plans = calloc(reg->n_feature_views + 1, sizeof(*plans));
    size_t nplans = 0;
    for (size_t i = 0; plans != NULL && i < reg->n_feature_views; i++) {
        const Feast__Core__FeatureViewSpec *spec = reg->feature_views[i]->spec;
        if (spec != NULL && _in_project(repo, spec->project) &&
            _plan_view(reg, repo, spec, &plans[nplans], &r)) {
            nplans++;
        }
    }
    /* The views first, into memory: writing them finds more to report, and the report heads
     * the file. Then the services: refs to what was imported; anything else is reported. */
    char *views = NULL;
    size_t views_len = 0;
    FILE *vw = open_memstream(&views, &views_len);
    for (size_t i = 0; vw != NULL && i < nplans; i++) {
        _write_view(vw, repo, &plans[i], &r);
    }
    if (vw == NULL || fclose(vw) != 0) {
        fprintf(stderr, "fsd-feast-import: out of memory\n");
        return 1;
    }
    char *services = NULL;
    size_t services_len = 0;
    FILE *svc = open_memstream(&services, &services_len);
    size_t nservices = 0;
    for (size_t i = 0; svc != NULL && i < reg->n_feature_services; i++) {
        const Feast__Core__FeatureServiceSpec *s = reg->feature_services[i]->spec;
        if (s == NULL || !_in_project(repo, s->project)) {
            continue;
        }
        if (!_name_ok(s->name)) {
            import_skip(&r, "feature service %s: not a name fsd takes", s->name);
            continue;
        }
        size_t refs = 0;
        char *block = NULL;
        size_t block_len = 0;
        FILE *b = open_memstream(&block, &block_len);
        for (size_t p = 0; b != NULL && p < s->n_features; p++) {
            const Feast__Core__FeatureViewProjection *proj = s->features[p];
            const struct view_plan *v = _find_plan(plans, nplans, proj->feature_view_name);
            if (proj->feature_view_name_alias[0] != '\0' || proj->n_join_key_map > 0) {
                import_skip(&r,
                            "feature service %s: the projection of %s renames it or its keys "
                            "(with_name, with_join_key_map)",
                            s->name, proj->feature_view_name);
                continue;
            }
            for (size_t f = 0; f < proj->n_feature_columns; f++) {
                const char *feature = proj->feature_columns[f]->name;
                if (v == NULL || !_planned(v, feature)) {
                    import_skip(&r, "feature service %s: %s:%s was not imported", s->name,
                                proj->feature_view_name, feature);
                    continue;
                }
                fprintf(b, "%s\"%s:%s\"", refs++ > 0 ? ", " : "", proj->feature_view_name, feature);
            }
        }
        if (b != NULL) {
            fclose(b);
        }
        if (refs == 0) {
            import_skip(&r, "feature service %s: none of its features was imported", s->name);
        } else {
            fprintf(svc, "  - name: %s\n    features: [%s]\n", s->name, block);
            nservices++;
        }
        free(block);
    }
    if (svc != NULL) {
        fclose(svc);
    }
    fprintf(out, "# fsd config written by fsd-feast-import from a Feast registry%s%s.\n",
            repo->project[0] ? ", project " : "", repo->project);
    if (r.n > 0) {
        fprintf(out, "# Left out (%zu):\n", r.n);
        for (size_t i = 0; i < r.n; i++) {
            fprintf(out, "#   - %s\n", r.lines[i]);
            fprintf(log, "fsd-feast-import: left out: %s\n", r.lines[i]);
        }
    }
    fprintf(out, "views:\n%s", views);
    free(views);
    for (size_t i = 0; i < nplans; i++) {
        free(plans[i].features);
    }
    if (nservices > 0) {
        fprintf(out, "feature_services:\n%s", services);
    }
    free(services);
    free(plans);
    for (size_t i = 0; i < r.n; i++) {
        free(r.lines[i]);
    }
    free(r.lines);
    fprintf(log, "fsd-feast-import: %zu views, %zu feature services\n", nplans, nservices);
    if (nplans == 0) {
        fprintf(log, "fsd-feast-import: no feature view could be imported: the output is no "
                     "config\n");
        return 1;
    }
    return 0;
}
