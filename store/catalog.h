#pragma once
/*
 * The catalog: every feature view the daemon serves, by name, each with its current table.
 *
 *   catalog ──views[]──> view "user_features" ──current──> table v7 (shards → rows)
 *                        view "item_features" ──current──> table v3
 *
 * Readers (worker threads) find a view and read its current table inside an RCU read-side
 * critical section (store_read_lock) and take no locks. The control thread adds views and
 * replaces tables; replaced tables are freed after a grace period, so a reader sees either the
 * old snapshot or the new one, never a mix.
 */
#include <stddef.h>
#include <stdint.h>

struct store_schema;
struct store_table;
struct store_catalog;
struct store_view;

/*
 * Returns an empty catalog whose views' tables have `shards` shards (a power of two; 0 = the
 * store's default), or NULL when out of memory or `shards` is invalid.
 */
struct store_catalog *store_catalog_create(uint32_t shards);

/* The shard count to build this catalog's tables with. */
uint32_t store_catalog_shards(const struct store_catalog *catalog);

/* Frees the catalog, its views and their tables. No reader may be inside it. */
void store_catalog_destroy(struct store_catalog *catalog);

/*
 * Adds a view serving `schema` (finalized; the catalog takes ownership, also on failure) with
 * an empty table. Fails when the name is taken. Control thread only; may block briefly.
 */
int store_catalog_add_view(struct store_catalog *catalog, struct store_schema *schema, char *err,
                           size_t err_len);

/* Returns the view named `name`, or NULL. Views live as long as the catalog. */
struct store_view *store_catalog_find(const struct store_catalog *catalog, const char *name);

size_t store_catalog_count(const struct store_catalog *catalog);
struct store_view *store_catalog_at(const struct store_catalog *catalog, size_t index);

const struct store_schema *store_view_schema(const struct store_view *view);

/* The view's current table. Call inside store_read_lock(); valid until store_read_unlock(). */
struct store_table *store_view_table(const struct store_view *view);

/*
 * Publishes `table` (sealed, built for this view's schema) as the view's current table and
 * retires the old one, which is freed once no reader can see it. `loaded_at_us` is the wall
 * time the caller reports for the load. Returns the new snapshot version (1 for the first
 * swap, then +1). Control thread only; does not wait for readers.
 */
uint64_t store_view_swap_table(struct store_view *view, struct store_table *table,
                               int64_t loaded_at_us);

/* The version of the current snapshot: 0 before the first swap. */
uint64_t store_view_version(const struct store_view *view);

/* When the current snapshot was swapped in (as the caller reported it); 0 before that. */
int64_t store_view_loaded_at_us(const struct store_view *view);
