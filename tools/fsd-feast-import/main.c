/*
 * fsd-feast-import: a Feast feature repo's registry as an fsd config.
 *
 *   fsd-feast-import [--feature-store FILE] [--project NAME] [-o OUT] REGISTRY
 *
 * REGISTRY is a serialized feast.core.Registry (Feast's local registry.db). With
 * --feature-store (the repo's feature_store.yaml) the project defaults to the repo's, a
 * PostgreSQL offline store gives the sources their connection (db_schema as its search_path),
 * and relative file paths are taken from the repo's folder. The YAML goes to OUT (or
 * stdout); what could not be translated is listed on stderr and at the top of the YAML, each
 * with the reason, and left out:
 *
 *   entities          -> views' join_keys (int64 and string; int32 keys widen to int64)
 *   feature views     -> views: features and types, ttl, FileSource -> parquet source,
 *                        PostgreSQLSource -> postgres source (a field_mapping as a query
 *                        that renames), PushSource -> push_source
 *   feature services  -> feature_services ("view:feature" refs)
 *   left out          on-demand and stream feature views, other sources (Spark, BigQuery,
 *                     Snowflake, Kafka, ...: the view stays, fed by pushes), field mappings
 *                     of Parquet sources, types fsd lacks (maps, JSON, structs, sets, UUIDs)
 *
 * Exit status: 0 when a config was written (check it with fsd --check-config), 1 when the
 * registry or feature_store.yaml cannot be read or no feature view could be imported, 2 on
 * bad usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import.h"

#define MAX_REGISTRY_BYTES (512u << 20)

static uint8_t *_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "fsd-feast-import: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *data = malloc(cap);
    size_t got;
    while (data != NULL && (got = fread(data + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            uint8_t *more = cap < MAX_REGISTRY_BYTES ? realloc(data, cap * 2) : NULL;
            if (more == NULL) {
                fprintf(stderr, "fsd-feast-import: %s: larger than %u MiB, or out of memory\n",
                        path, MAX_REGISTRY_BYTES >> 20);
                free(data);
                data = NULL;
                break;
            }
            data = more;
            cap *= 2;
        }
    }
    fclose(f);
    *len = n;
    return data;
}

static void _usage(FILE *f) {
    fprintf(f, "usage: fsd-feast-import [--feature-store FILE] [--project NAME] [-o OUT] "
               "REGISTRY\n"
               "  REGISTRY           a Feast registry file (feast.core.Registry; registry.db)\n"
               "  --feature-store F  the repo's feature_store.yaml: project, the PostgreSQL\n"
               "                     offline store's connection, relative paths' folder\n"
               "  --project NAME     import this project's objects only\n"
               "  -o OUT             write the config here (default: stdout)\n");
}

int main(int argc, char **argv) {
    struct repo repo = {0};
    const char *store = NULL, *out_path = NULL, *registry = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--feature-store") == 0 && i + 1 < argc) {
            store = argv[++i];
        } else if (strcmp(argv[i], "--project") == 0 && i + 1 < argc) {
            snprintf(repo.project, sizeof repo.project, "%s", argv[++i]);
        } else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
            out_path = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            _usage(stdout);
            return 0;
        } else if (argv[i][0] != '-' && registry == NULL) {
            registry = argv[i];
        } else {
            _usage(stderr);
            return 2;
        }
    }
    if (registry == NULL) {
        _usage(stderr);
        return 2;
    }
    struct report store_report = {0};
    if (store != NULL && import_read_feature_store(store, &repo, &store_report) != 0) {
        return 1;
    }
    size_t len;
    uint8_t *data = _read_file(registry, &len);
    if (data == NULL) {
        return 1;
    }
    Feast__Core__Registry *reg = feast__core__registry__unpack(NULL, len, data);
    free(data);
    if (reg == NULL) {
        fprintf(stderr, "fsd-feast-import: %s: not a Feast registry (feast.core.Registry)\n",
                registry);
        return 1;
    }
    FILE *out = out_path != NULL ? fopen(out_path, "w") : stdout;
    if (out == NULL) {
        fprintf(stderr, "fsd-feast-import: %s: %s\n", out_path, strerror(errno));
        feast__core__registry__free_unpacked(reg, NULL);
        return 1;
    }
    for (size_t i = 0; i < store_report.n; i++) {
        fprintf(stderr, "fsd-feast-import: left out: %s\n", store_report.lines[i]);
        free(store_report.lines[i]);
    }
    free(store_report.lines);
    int rc = import_convert(reg, &repo, out, stderr);
    feast__core__registry__free_unpacked(reg, NULL);
    if (out != stdout && fclose(out) != 0) {
        fprintf(stderr, "fsd-feast-import: %s: %s\n", out_path, strerror(errno));
        return 1;
    }
    return rc;
}
