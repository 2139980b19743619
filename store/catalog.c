#include "catalog.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rcu.h"
#include "schema.h"
#include "table.h"

struct store_view {
    uint32_t index; /* position in the catalog, stable: views are never removed */
    char *name;     /* the schema's view name, copied: it outlives any one schema */
    _Atomic(struct store_schema *) schema;
    _Atomic(struct store_table *) table;
    _Atomic uint64_t version;
    _Atomic int64_t loaded_at_us;
    /* Writers of live rows and the loader's commit serialize here; readers never do. */
    pthread_mutex_t write_lock;
    _Atomic uint64_t changes; /* rows live and sourced writes changed, ever; written under
                               * write_lock, read by anyone */
    bool loading;
    struct store_row **log; /* row images applied while loading, in order */
    size_t nlog;
    size_t log_cap;
    bool log_failed; /* out of memory while logging: the commit must not lose updates */
    char pending_position[STORE_STREAM_POSITION_LEN]; /* the load's; under write_lock */
    /* The current snapshot's stream position: written at a commit, read by any thread. */
    pthread_mutex_t position_lock;
    char stream_position[STORE_STREAM_POSITION_LEN];
    /* The last stream entry applied to the view through the log: written by the log writer,
     * read by the stream consumer at start and by checkpoints. Under position_lock. */
    char stream_applied[STORE_STREAM_POSITION_LEN];
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

static const struct option_def store_option_defs[] = {
    {
        .name = "shards",
        .type = OPTION_UINT,
        .default_text = "64",
        .min = 1,
        .max = STORE_MAX_SHARDS,
        .flags = OPTION_POWER_OF_TWO,
        OPTION_UINT_AT(struct store_options, shards),
        .description = "Shards per view table (a power of two); entity keys are spread over "
                       "them by hash.",
    },
};

const struct option_group store_option_group = {"store", store_option_defs, 1, NULL};

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

static void _log_clear(struct store_view *view) {
    for (size_t i = 0; i < view->nlog; i++) {
        free(view->log[i]);
    }
    free(view->log);
    view->log = NULL;
    view->nlog = view->log_cap = 0;
    view->log_failed = false;
}

static void _view_destroy(struct store_view *view) {
    _log_clear(view);
    pthread_mutex_destroy(&view->write_lock);
    pthread_mutex_destroy(&view->position_lock);
    store_table_destroy(atomic_load_explicit(&view->table, memory_order_relaxed));
    store_schema_destroy(atomic_load_explicit(&view->schema, memory_order_relaxed));
    free(view->name);
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
    if (view == NULL || fresh == NULL || (view->name = strdup(schema->view)) == NULL) {
        snprintf(err, err_len, "view %s: out of memory", schema->view);
        goto fail;
    }
    atomic_init(&view->schema, schema);
    pthread_mutex_init(&view->write_lock, NULL);
    pthread_mutex_init(&view->position_lock, NULL);
    struct store_table_options options = {.shards = catalog->shards};
    struct store_table *empty = store_table_create(schema, &options, err, err_len);
    if (empty == NULL) {
        pthread_mutex_destroy(&view->write_lock);
        pthread_mutex_destroy(&view->position_lock);
        goto fail;
    }
    store_table_mark_published(empty);
    atomic_init(&view->table, empty);
    atomic_init(&view->version, 0);
    atomic_init(&view->loaded_at_us, 0);
    fresh->count = old->count + 1;
    memcpy(fresh->views, old->views, old->count * sizeof(old->views[0]));
    view->index = (uint32_t)old->count;
    fresh->views[old->count] = view;
    atomic_store_explicit(&catalog->list, fresh, memory_order_release);
    pthread_mutex_unlock(&catalog->writer_lock);
    store_rcu_defer(&old->rcu, _list_free_deferred);
    return 0;
fail:
    pthread_mutex_unlock(&catalog->writer_lock);
    if (view != NULL) {
        free(view->name);
    }
    free(view);
    free(fresh);
    store_schema_destroy(schema);
    return -1;
}

struct store_view *store_catalog_find(const struct store_catalog *catalog, const char *name) {
    /* Views are few (tens); a linear scan over a short array beats hashing the name. */
    struct view_list *list = _list(catalog);
    for (size_t i = 0; i < list->count; i++) {
        if (strcmp(list->views[i]->name, name) == 0) {
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

uint32_t store_view_index(const struct store_view *view) {
    return view->index;
}

const char *store_view_name(const struct store_view *view) {
    return view->name;
}

const struct store_schema *store_view_schema(const struct store_view *view) {
    return atomic_load_explicit(&((struct store_view *)view)->schema, memory_order_acquire);
}

struct retired_schema {
    struct store_rcu_head rcu;
    struct store_schema *schema;
};

static void _schema_free_deferred(struct store_rcu_head *head) {
    struct retired_schema *r = caa_container_of(head, struct retired_schema, rcu);
    store_schema_destroy(r->schema);
    free(r);
}

int store_view_replace_schema(struct store_view *view, struct store_schema *schema, char *err,
                              size_t err_len) {
    if (strcmp(schema->view, view->name) != 0) {
        snprintf(err, err_len, "view %s: a schema for view %s cannot replace its own", view->name,
                 schema->view);
        store_schema_destroy(schema);
        return -1;
    }
    pthread_mutex_lock(&view->write_lock); /* no live write may slip between copy and swap */
    if (view->loading) {
        pthread_mutex_unlock(&view->write_lock);
        snprintf(err, err_len, "view %s: a snapshot load is in progress; reload again after it",
                 schema->view);
        store_schema_destroy(schema);
        return -1;
    }
    struct store_table *old_table = atomic_load_explicit(&view->table, memory_order_acquire);
    struct store_table_options options = {.shards = store_table_shards(old_table)};
    struct store_table *table = store_table_copy(old_table, schema, &options, err, err_len);
    if (table == NULL) {
        pthread_mutex_unlock(&view->write_lock);
        store_schema_destroy(schema);
        return -1;
    }
    store_table_mark_published(table);
    struct store_schema *old_schema =
        atomic_exchange_explicit(&view->schema, schema, memory_order_acq_rel);
    atomic_store_explicit(&view->table, table, memory_order_release);
    pthread_mutex_unlock(&view->write_lock);
    /* Deferred callbacks run in order: the old table goes before the schema it points to. */
    store_table_retire(old_table);
    struct retired_schema *r = malloc(sizeof(*r));
    if (r == NULL) {
        return 0; /* leaking a schema beats freeing it under a reader */
    }
    r->schema = old_schema;
    store_rcu_defer(&r->rcu, _schema_free_deferred);
    return 0;
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

void store_view_restore(struct store_view *view, struct store_table *table, uint64_t version,
                        int64_t loaded_at_us, const char *stream_position) {
    pthread_mutex_lock(&view->write_lock);
    store_table_mark_published(table);
    atomic_store_explicit(&view->loaded_at_us, loaded_at_us, memory_order_relaxed);
    struct store_table *old = atomic_exchange_explicit(&view->table, table, memory_order_acq_rel);
    atomic_store_explicit(&view->version, version, memory_order_relaxed);
    pthread_mutex_lock(&view->position_lock);
    snprintf(view->stream_position, sizeof view->stream_position, "%s",
             stream_position != NULL ? stream_position : "");
    pthread_mutex_unlock(&view->position_lock);
    pthread_mutex_unlock(&view->write_lock);
    store_table_retire(old);
}

uint64_t store_view_version(const struct store_view *view) {
    return atomic_load_explicit(&((struct store_view *)view)->version, memory_order_relaxed);
}

int64_t store_view_loaded_at_us(const struct store_view *view) {
    return atomic_load_explicit(&((struct store_view *)view)->loaded_at_us, memory_order_relaxed);
}

/* ---- live writes and loads ------------------------------------------------------------- */

/* Keeps `image` (malloc'd, taken also on failure) for the load in progress: replayed into
 * its table at commit. Out of memory marks the log failed, and the commit fails the load. */
static void _log_keep(struct store_view *view, struct store_row *image) {
    if (image != NULL && view->nlog == view->log_cap) {
        size_t cap = view->log_cap ? view->log_cap * 2 : 1024;
        struct store_row **grown = realloc(view->log, cap * sizeof(*grown));
        if (grown == NULL) {
            free(image);
            image = NULL;
        } else {
            view->log = grown;
            view->log_cap = cap;
        }
    }
    if (image == NULL) {
        view->log_failed = true;
        return;
    }
    view->log[view->nlog++] = image;
}

static void _log_append(struct store_view *view, const struct store_key *key,
                        const struct store_row_builder *row, int64_t event_ts_us,
                        int64_t created_ts_us) {
    struct store_row *image =
        store_row_image(store_view_schema(view), key, row, event_ts_us, created_ts_us);
    if (image != NULL) {
        image->flags |= STORE_ROW_LIVE; /* replayed as what it is: a live row */
    }
    _log_keep(view, image);
}

/* A copy of a whole row image, its flags as they are. */
static void _log_append_image(struct store_view *view, const struct store_row *row) {
    size_t bytes = store_row_total_size(store_view_schema(view), row);
    struct store_row *image = malloc(bytes);
    if (image != NULL) {
        memcpy(image, row, bytes);
    }
    _log_keep(view, image);
}

static uint64_t _changed(enum store_upsert_result result) {
    return result == STORE_UPSERT_INSERTED || result == STORE_UPSERT_REPLACED;
}

enum store_upsert_result store_view_upsert_image(struct store_view *view,
                                                 const struct store_row *row) {
    pthread_mutex_lock(&view->write_lock);
    struct store_table *table = atomic_load_explicit(&view->table, memory_order_acquire);
    enum store_upsert_result result = store_table_upsert_row(table, row);
    if (view->loading && result != STORE_UPSERT_ERROR) {
        _log_append_image(view, row);
    }
    atomic_fetch_add_explicit(&view->changes, _changed(result), memory_order_relaxed);
    pthread_mutex_unlock(&view->write_lock);
    return result;
}

enum store_upsert_result store_view_upsert(struct store_view *view, const struct store_key *key,
                                           const struct store_row_builder *row) {
    pthread_mutex_lock(&view->write_lock);
    /* The lock keeps the loader from swapping, so this table stays current until unlock. */
    struct store_table *table = atomic_load_explicit(&view->table, memory_order_acquire);
    enum store_upsert_result result = store_table_upsert_live(table, key, row);
    if (view->loading && result != STORE_UPSERT_ERROR) {
        _log_append(view, key, row, row->event_ts_us, row->created_ts_us);
    }
    atomic_fetch_add_explicit(&view->changes, _changed(result), memory_order_relaxed);
    pthread_mutex_unlock(&view->write_lock);
    return result;
}

enum store_upsert_result store_view_delete(struct store_view *view, const struct store_key *key,
                                           int64_t event_ts_us, int64_t created_ts_us) {
    pthread_mutex_lock(&view->write_lock);
    struct store_table *table = atomic_load_explicit(&view->table, memory_order_acquire);
    enum store_upsert_result result =
        store_table_delete_live(table, key, event_ts_us, created_ts_us);
    if (view->loading && result != STORE_UPSERT_ERROR) {
        _log_append(view, key, NULL, event_ts_us, created_ts_us);
    }
    atomic_fetch_add_explicit(&view->changes, _changed(result), memory_order_relaxed);
    pthread_mutex_unlock(&view->write_lock);
    return result;
}

enum store_upsert_result store_view_upsert_sourced(struct store_view *view,
                                                   const struct store_key *key,
                                                   const struct store_row_builder *row) {
    pthread_mutex_lock(&view->write_lock);
    struct store_table *table = atomic_load_explicit(&view->table, memory_order_acquire);
    enum store_upsert_result result = store_table_upsert(table, key, row);
    atomic_fetch_add_explicit(&view->changes, _changed(result), memory_order_relaxed);
    pthread_mutex_unlock(&view->write_lock);
    return result;
}

int store_view_load_begin(struct store_view *view) {
    pthread_mutex_lock(&view->write_lock);
    if (view->loading) {
        pthread_mutex_unlock(&view->write_lock);
        return -1;
    }
    _log_clear(view);
    view->loading = true;
    view->pending_position[0] = '\0';
    pthread_mutex_unlock(&view->write_lock);
    return 0;
}

int store_view_load_set_stream_position(struct store_view *view, const char *position) {
    size_t len = position != NULL ? strlen(position) : 0;
    if (len >= STORE_STREAM_POSITION_LEN) {
        return -1;
    }
    pthread_mutex_lock(&view->write_lock);
    memcpy(view->pending_position, position != NULL ? position : "", len + 1);
    pthread_mutex_unlock(&view->write_lock);
    return 0;
}

bool store_view_stream_position(const struct store_view *view, char *buf, size_t len) {
    struct store_view *v = (struct store_view *)view;
    pthread_mutex_lock(&v->position_lock);
    snprintf(buf, len, "%s", v->stream_position);
    bool have = v->stream_position[0] != '\0';
    pthread_mutex_unlock(&v->position_lock);
    return have;
}

void store_view_capture(struct store_view *view, struct store_view_capture *out) {
    pthread_mutex_lock(&view->write_lock);
    store_read_lock();
    out->table = store_view_table(view);
    store_table_pin(out->table);
    out->schema = store_schema_clone(store_table_schema(out->table));
    store_read_unlock();
    out->version = store_view_version(view);
    out->loaded_at_us = store_view_loaded_at_us(view);
    out->changes = atomic_load_explicit(&view->changes, memory_order_relaxed);
    pthread_mutex_lock(&view->position_lock);
    memcpy(out->stream_position, view->stream_position, sizeof out->stream_position);
    memcpy(out->stream_applied, view->stream_applied, sizeof out->stream_applied);
    pthread_mutex_unlock(&view->position_lock);
    pthread_mutex_unlock(&view->write_lock);
}

uint64_t store_view_changes(const struct store_view *view) {
    return atomic_load_explicit(&((struct store_view *)view)->changes, memory_order_relaxed);
}

int store_view_set_stream_applied(struct store_view *view, const char *position) {
    if (strlen(position) >= STORE_STREAM_POSITION_LEN) {
        return -1;
    }
    pthread_mutex_lock(&view->position_lock);
    snprintf(view->stream_applied, sizeof view->stream_applied, "%s", position);
    pthread_mutex_unlock(&view->position_lock);
    return 0;
}

bool store_view_stream_applied(const struct store_view *view, char *buf, size_t len) {
    struct store_view *v = (struct store_view *)view;
    pthread_mutex_lock(&v->position_lock);
    snprintf(buf, len, "%s", v->stream_applied);
    bool have = v->stream_applied[0] != '\0';
    pthread_mutex_unlock(&v->position_lock);
    return have;
}

uint64_t store_view_load_commit(struct store_view *view, struct store_table *table,
                                int64_t loaded_at_us) {
    /*
     * Live rows written before the load began are carried over first, outside the writer
     * mutex, so pushes and streams do not wait for a pass over the whole table. That is safe
     * because the load pins the live table (no swap, no schema replacement until it ends) and
     * every live write made since the load began is in the log replayed below: a row the
     * merge saw in its older version, or missed, is put right by the replay.
     */
    bool merged = false;
    if (store_table_schema(table) == store_view_schema(view)) {
        store_read_lock();
        merged = store_table_merge_live(table, store_view_table(view), NULL) == 0;
        store_read_unlock();
    }
    pthread_mutex_lock(&view->write_lock);
    if (!merged || view->log_failed) {
        _log_clear(view);
        view->loading = false;
        pthread_mutex_unlock(&view->write_lock);
        return 0;
    }
    /* Replayed with upsert-if-newer: an update older than the snapshot's row changes nothing. */
    for (size_t i = 0; i < view->nlog; i++) {
        store_table_upsert_row(table, view->log[i]);
    }
    uint64_t version = store_view_swap_table(view, table, loaded_at_us);
    pthread_mutex_lock(&view->position_lock);
    memcpy(view->stream_position, view->pending_position, sizeof view->stream_position);
    pthread_mutex_unlock(&view->position_lock);
    _log_clear(view);
    view->loading = false;
    pthread_mutex_unlock(&view->write_lock);
    return version;
}

void store_view_load_abort(struct store_view *view) {
    pthread_mutex_lock(&view->write_lock);
    _log_clear(view);
    view->loading = false;
    pthread_mutex_unlock(&view->write_lock);
}

size_t store_view_load_logged(const struct store_view *view) {
    struct store_view *v = (struct store_view *)view;
    pthread_mutex_lock(&v->write_lock);
    size_t n = v->nlog;
    pthread_mutex_unlock(&v->write_lock);
    return n;
}
