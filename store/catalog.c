#include "catalog.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rcu.h"
#include "schema.h"
#include "table.h"

struct store_view {
    struct store_schema *schema;
    _Atomic(struct store_table *) table;
    _Atomic uint64_t version;
    _Atomic int64_t loaded_at_us;
};

/* The list of views is copied on every add and published whole, so readers never lock. */
struct view_list {
    struct store_rcu_head rcu;
    size_t count;
    struct store_view *views[];
};

struct store_catalog {
    uint32_t shards;
    pthread_mutex_t writer_lock; /* serializes adds */
    _Atomic(struct view_list *) list;
};

static struct view_list *_list(const struct store_catalog *catalog) {
    return atomic_load_explicit(&((struct store_catalog *)catalog)->list, memory_order_acquire);
}

struct store_catalog *store_catalog_create(uint32_t shards) {
    if (shards == 0) {
        shards = STORE_DEFAULT_SHARDS;
    }
    if (shards > STORE_MAX_SHARDS || (shards & (shards - 1)) != 0) {
        return NULL;
    }
    struct store_catalog *catalog = calloc(1, sizeof(*catalog));
    struct view_list *list = calloc(1, sizeof(*list));
    if (catalog == NULL || list == NULL) {
        free(catalog);
        free(list);
        return NULL;
    }
    catalog->shards = shards;
    pthread_mutex_init(&catalog->writer_lock, NULL);
    atomic_init(&catalog->list, list);
    return catalog;
}

uint32_t store_catalog_shards(const struct store_catalog *catalog) {
    return catalog->shards;
}

static void _view_destroy(struct store_view *view) {
    store_table_destroy(atomic_load_explicit(&view->table, memory_order_relaxed));
    store_schema_destroy(view->schema);
    free(view);
}

void store_catalog_destroy(struct store_catalog *catalog) {
    if (catalog == NULL) {
        return;
    }
    /* Tables retired by earlier swaps may still be queued; let them go first. */
    store_rcu_barrier();
    struct view_list *list = atomic_load_explicit(&catalog->list, memory_order_relaxed);
    for (size_t i = 0; i < list->count; i++) {
        _view_destroy(list->views[i]);
    }
    free(list);
    pthread_mutex_destroy(&catalog->writer_lock);
    free(catalog);
}

static void _list_free_deferred(struct store_rcu_head *head) {
    free(caa_container_of(head, struct view_list, rcu));
}

int store_catalog_add_view(struct store_catalog *catalog, struct store_schema *schema, char *err,
                           size_t err_len) {
    struct store_view *view = NULL;
    struct view_list *fresh = NULL;
    pthread_mutex_lock(&catalog->writer_lock);
    struct view_list *old = atomic_load_explicit(&catalog->list, memory_order_relaxed);
    if (!schema->finalized) {
        snprintf(err, err_len, "view %s: schema not finalized", schema->view);
        goto fail;
    }
    if (store_catalog_find(catalog, schema->view) != NULL) {
        snprintf(err, err_len, "view %s already exists", schema->view);
        goto fail;
    }
    view = calloc(1, sizeof(*view));
    fresh = malloc(sizeof(*fresh) + (old->count + 1) * sizeof(fresh->views[0]));
    if (view == NULL || fresh == NULL) {
        snprintf(err, err_len, "view %s: out of memory", schema->view);
        goto fail;
    }
    view->schema = schema;
    struct store_table_options options = {.shards = catalog->shards};
    struct store_table *empty = store_table_create(schema, &options, err, err_len);
    if (empty == NULL) {
        goto fail;
    }
    store_table_mark_published(empty);
    atomic_init(&view->table, empty);
    atomic_init(&view->version, 0);
    atomic_init(&view->loaded_at_us, 0);
    fresh->count = old->count + 1;
    memcpy(fresh->views, old->views, old->count * sizeof(old->views[0]));
    fresh->views[old->count] = view;
    atomic_store_explicit(&catalog->list, fresh, memory_order_release);
    pthread_mutex_unlock(&catalog->writer_lock);
    store_rcu_defer(&old->rcu, _list_free_deferred);
    return 0;
fail:
    pthread_mutex_unlock(&catalog->writer_lock);
    free(view);
    free(fresh);
    store_schema_destroy(schema);
    return -1;
}

struct store_view *store_catalog_find(const struct store_catalog *catalog, const char *name) {
    /* Views are few (tens); a linear scan over a short array beats hashing the name. */
    struct view_list *list = _list(catalog);
    for (size_t i = 0; i < list->count; i++) {
        if (strcmp(list->views[i]->schema->view, name) == 0) {
            return list->views[i];
        }
    }
    return NULL;
}

size_t store_catalog_count(const struct store_catalog *catalog) {
    return _list(catalog)->count;
}

struct store_view *store_catalog_at(const struct store_catalog *catalog, size_t index) {
    struct view_list *list = _list(catalog);
    return index < list->count ? list->views[index] : NULL;
}

const struct store_schema *store_view_schema(const struct store_view *view) {
    return view->schema;
}

struct store_table *store_view_table(const struct store_view *view) {
    return atomic_load_explicit(&((struct store_view *)view)->table, memory_order_acquire);
}

uint64_t store_view_swap_table(struct store_view *view, struct store_table *table,
                               int64_t loaded_at_us) {
    store_table_mark_published(table);
    atomic_store_explicit(&view->loaded_at_us, loaded_at_us, memory_order_relaxed);
    struct store_table *old = atomic_exchange_explicit(&view->table, table, memory_order_acq_rel);
    uint64_t version = atomic_fetch_add_explicit(&view->version, 1, memory_order_relaxed) + 1;
    store_table_retire(old);
    return version;
}

uint64_t store_view_version(const struct store_view *view) {
    return atomic_load_explicit(&((struct store_view *)view)->version, memory_order_relaxed);
}

int64_t store_view_loaded_at_us(const struct store_view *view) {
    return atomic_load_explicit(&((struct store_view *)view)->loaded_at_us, memory_order_relaxed);
}
