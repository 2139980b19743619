#include "reload.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "options.h"
#include "common/log.h"
#include "daemon/grpc/grpc.h"
#include "materializer/snapshot/snapshot.h"
#include "daemon/rpc/rpc.h"
#include "daemon/stats/stats.h"
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

/*
 * Writes the names of the `stream:` settings that differ between `a` and `b` into `out`,
 * comma-separated ("" when none). Names only: the address may hold a password.
 */
static void _stream_changes(const struct mat_stream_config *a, const struct mat_stream_config *b,
                            char *out, size_t out_len) {
    const struct {
        const char *name;
        bool changed;
    } fields[] = {
        {"stream", a->enabled != b->enabled},
        {"redis", strcmp(a->host, b->host) != 0 || a->port != b->port || a->db != b->db ||
                      strcmp(a->user, b->user) != 0 || strcmp(a->password, b->password) != 0},
        {"key", strcmp(a->key, b->key) != 0},
        {"format", a->format != b->format},
        {"start",
         a->start != b->start || a->start_ms != b->start_ms || a->start_seq != b->start_seq},
        {"event_timestamp_field", strcmp(a->event_timestamp_field, b->event_timestamp_field) != 0},
        {"created_timestamp_field",
         strcmp(a->created_timestamp_field, b->created_timestamp_field) != 0},
        {"row_field", strcmp(a->row_field, b->row_field) != 0},
        {"batch", a->batch != b->batch},
        {"block_ms", a->block_ms != b->block_ms},
    };
    size_t n = 0;
    out[0] = '\0';
    /* A stream added or removed says so once; its settings then differ as a matter of course. */
    size_t count = a->enabled != b->enabled ? 1 : sizeof fields / sizeof fields[0];
    for (size_t i = 0; i < count && n < out_len; i++) {
        if (fields[i].changed) {
            int w = snprintf(out + n, out_len - n, "%s%s", n > 0 ? "," : "", fields[i].name);
            n += w > 0 ? (size_t)w : 0;
        }
    }
}

/*
 * The stream consumers take their settings at start-up, so a reload cannot apply a changed
 * `stream:` block: warn, per view, that the old settings stay until a restart.
 */
static void _warn_stream_changes(const struct fsd_config *current, const struct fsd_config *next) {
    for (size_t i = 0; i < next->nviews; i++) {
        const struct config_view *view = &next->views[i];
        const struct config_view *was = config_find_view(current, view->schema->view);
        static const struct mat_stream_config none = {0};
        char changes[256];
        _stream_changes(was != NULL ? &was->stream : &none, &view->stream, changes, sizeof changes);
        if (changes[0] == '\0') {
            continue;
        }
        if (was == NULL) {
            log_warn("reload: a new view's stream is not followed until a restart", "view=%s",
                     view->schema->view);
        } else {
            log_warn("reload: a view's stream settings changed; they need a restart, the "
                     "consumer keeps the old ones until then",
                     "view=%s changes=%s", view->schema->view, changes);
        }
    }
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
    /* Tokens first, and whatever becomes of the config: revoking a token must not wait for a
     * config file without mistakes. */
    if (auth_reload(err, sizeof err) != 0) {
        log_error("reload: cannot read the tokens file; the old tokens stay", "error=%s",
                  LOG_QUOTE(err));
    }
    /* Certificates likewise: a rotated one is picked up for new connections at once. */
    if (tls_reload(err, sizeof err) != 0) {
        log_error("reload: cannot read the TLS files; the old certificate stays", "error=%s",
                  LOG_QUOTE(err));
    } else if (tls_enabled()) {
        log_info("reload: TLS certificate re-read", NULL);
    }
    struct fsd_config *next;
    if (config_load(path, &daemon_option_table, &next, err, sizeof err) != 0) {
        for (char *line = strtok(err, "\n"); line != NULL; line = strtok(NULL, "\n")) {
            log_error("reload refused: invalid config; still serving the old one", "error=%s",
                      LOG_QUOTE(line));
        }
        return current;
    }
    /* The log level applies even when nothing else can. */
    log_set_level((enum log_level)daemon_options(next)->log.level);
    bool options_ok = option_reload_check(&daemon_option_table, current->options, next->options,
                                          err, sizeof err) == 0;
    if (!options_ok) {
        log_error("reload refused: options that need a restart changed", "changes=%s",
                  LOG_QUOTE(err));
    }
    if (!options_ok || !_views_compatible(next, catalog)) {
        config_destroy(next);
        return current;
    }
    _warn_stream_changes(current, next);
    _apply_views(next, catalog);
    mat_reconfigure(next->snapshots, next->nviews);
    reload_show_config(next);
    const struct fsd_config *old = rpc_replace_config(next); /* waits for a grace period */
    config_destroy((struct fsd_config *)old);
    log_info("config reloaded", "file=%s views=%zu feature_services=%zu", LOG_QUOTE(path),
             next->nviews, next->nservices);
    return next;
}

void reload_show_config(const struct fsd_config *config) {
    char *summary = daemon_config_summary(config);
    char address[GRPC_BIND_LEN + 16];
    snprintf(address, sizeof address, "%s:%u", daemon_options(config)->grpc.bind,
             (unsigned)grpc_server_port());
    if (summary == NULL || stats_set_config_summary(summary, address) != 0) {
        log_warn("stats: out of memory taking the config summary; /status may be out of date",
                 NULL);
    }
    free(summary);
}
