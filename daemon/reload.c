#include "reload.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "materializer/materializer.h"
#include "rpc/rpc.h"
#include "stats/stats.h"
#include "store/catalog.h"
#include "store/rcu.h"
#include "store/schema.h"
#include "store/table.h"

static bool _same_defaults(const struct store_schema *a, const struct store_schema *b) {
    for (uint32_t i = 0; i < a->nfeatures; i++) {
        const struct store_feature *fa = &a->features[i], *fb = &b->features[i];
        if (fa->default_kind != fb->default_kind) {
            return false;
        }
        if (fa->default_kind != STORE_DEFAULT_LITERAL) {
            continue;
        }
        const struct store_value *x = &fa->default_literal, *y = &fb->default_literal;
        if (store_type_is_var(fa->type)
                ? x->var.bytes != y->var.bytes || x->var.count != y->var.count ||
                      memcmp(x->var.data, y->var.data, x->var.bytes) != 0
                : memcmp(&x->i64, &y->i64, store_type_fixed_size(fa->type)) != 0) {
            return false;
        }
    }
    return true;
}

/* Checks that every served view keeps its layout; logs each one that does not. */
static bool _views_compatible(const struct fsd_config *next, struct store_catalog *catalog) {
    bool ok = true;
    store_read_lock();
    for (size_t i = 0; i < next->nviews; i++) {
        const struct store_schema *schema = next->views[i].schema;
        struct store_view *view = store_catalog_find(catalog, schema->view);
        if (view != NULL && !store_schema_same_layout(store_view_schema(view), schema)) {
            log_error("reload refused: a view's join keys or features changed; restart to apply",
                      "view=%s", schema->view);
            ok = false;
        }
    }
    for (size_t v = 0; v < store_catalog_count(catalog); v++) {
        const char *name = store_view_schema(store_catalog_at(catalog, v))->view;
        if (config_find_view(next, name) == NULL) {
            log_error("reload refused: a served view was removed; restart to apply", "view=%s",
                      name);
            ok = false;
        }
    }
    store_read_unlock();
    return ok;
}

/* Adds new views and re-schemas changed ones. Layouts were checked first. */
static void _apply_views(const struct fsd_config *next, struct store_catalog *catalog) {
    for (size_t i = 0; i < next->nviews; i++) {
        const struct store_schema *schema = next->views[i].schema;
        char err[512];
        struct store_view *view = store_catalog_find(catalog, schema->view);
        if (view == NULL) {
            struct store_schema *copy = store_schema_clone(schema);
            if (copy == NULL || store_catalog_add_view(catalog, copy, err, sizeof err) != 0) {
                log_error("reload: cannot add view", "view=%s error=%s", schema->view,
                          LOG_QUOTE(copy == NULL ? "out of memory" : err));
            } else {
                log_info("reload: view added", "view=%s", schema->view);
            }
            continue;
        }
        const struct store_schema *current = store_view_schema(view);
        if (current->ttl_us == schema->ttl_us && _same_defaults(current, schema)) {
            continue;
        }
        struct store_schema *copy = store_schema_clone(schema);
        if (copy == NULL) {
            log_error("reload: cannot apply the new TTL or defaults", "view=%s error=%s",
                      schema->view, LOG_QUOTE("out of memory"));
            continue;
        }
        if (store_view_replace_schema(view, copy, err, sizeof err) != 0) {
            log_error("reload: cannot apply the new TTL or defaults", "view=%s error=%s",
                      schema->view, LOG_QUOTE(err));
            continue;
        }
        log_info("reload: TTL and defaults applied", "view=%s ttl_us=%lld", schema->view,
                 (long long)schema->ttl_us);
    }
}

struct fsd_config *reload_config(const char *path, struct fsd_config *current,
                                 struct store_catalog *catalog) {
    static char err[CONFIG_ERR_LEN];
    struct fsd_config *next;
    if (config_load(path, &next, err, sizeof err) != 0) {
        for (char *line = strtok(err, "\n"); line != NULL; line = strtok(NULL, "\n")) {
            log_error("reload refused: invalid config; still serving the old one", "error=%s",
                      LOG_QUOTE(line));
        }
        return current;
    }
    /* The log level applies even when nothing else can. */
    log_set_level((enum log_level)next->options.server.log_level);
    bool options_ok = option_reload_check(&current->options, &next->options, err, sizeof err) == 0;
    if (!options_ok) {
        log_error("reload refused: options that need a restart changed", "changes=%s",
                  LOG_QUOTE(err));
    }
    if (!options_ok || !_views_compatible(next, catalog)) {
        config_destroy(next);
        return current;
    }
    _apply_views(next, catalog);
    mat_reconfigure(next);
    stats_update_config(next);
    const struct fsd_config *old = rpc_replace_config(next); /* waits for a grace period */
    config_destroy((struct fsd_config *)old);
    log_info("config reloaded", "file=%s views=%zu feature_services=%zu", LOG_QUOTE(path),
             next->nviews, next->nservices);
    return next;
}
