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
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/options.h"
#include "table.h"

/* A snapshot's stream position, as its loader gave it (opaque here), with the NUL. */
#define STORE_STREAM_POSITION_LEN 48

struct store_schema;
struct store_catalog;
struct store_view;

/* The config file's store.shards: how many shards each view's table has. */
struct store_options {
    uint32_t shards; /* a power of two */
};
extern const struct option_group store_option_group;

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

/* The view's position in the catalog (0, 1, ...): stable, for per-view counter arrays. */
uint32_t store_view_index(const struct store_view *view);

/*
 * The view's name (its schema's): never changes and lives as long as the catalog, so any
 * thread may read it without a read section, e.g. for an error message.
 */
const char *store_view_name(const struct store_view *view);

/* The view's schema. Inside store_read_lock() when a reload may replace it concurrently. */
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

/*
 * Installs `table` (sealed, built for this view's schema) as the view's current table with the
 * version, load time and stream position a checkpoint recorded, as if that snapshot had just
 * been swapped in (version 0 stays "not loaded yet"). For start-up, before the view is served
 * or written; retires the table it replaces. Control thread.
 */
void store_view_restore(struct store_view *view, struct store_table *table, uint64_t version,
                        int64_t loaded_at_us, const char *stream_position);

/*
 * Replaces the view's schema with `schema` (same name and layout, e.g. a new TTL or new defaults
 * from a reload): copies the current table under it (store_table_copy) and swaps both in, holding
 * the view's writer mutex so no live write is lost. Refused while a snapshot load is in
 * progress (its table is being built for the current schema). Takes ownership of `schema`,
 * also on failure. The old schema and table are freed after a grace period; the snapshot version
 * does not change. Returns 0, or -1 with `err` set. Control thread; blocks for the copy.
 */
int store_view_replace_schema(struct store_view *view, struct store_schema *schema, char *err,
                              size_t err_len);

/*
 * Row-by-row writes to a view's live table (pushes, streams). Each call stores the row in the
 * current table with upsert-if-newer, marked live (store_table_upsert_live /
 * store_table_delete_live). While a snapshot load is in progress for the view
 * (store_view_load_begin), the row is also logged. store_view_load_commit() carries the live
 * rows into the new table and replays the log before swapping it in, so an update is never
 * lost to a swap, whether made before the load or during it: every entity serves the newest
 * of what the snapshot and the updates said. Takes the view's writer mutex (never held by
 * readers); may allocate.
 */
enum store_upsert_result store_view_upsert(struct store_view *view, const struct store_key *key,
                                           const struct store_row_builder *row);
enum store_upsert_result store_view_delete(struct store_view *view, const struct store_key *key,
                                           int64_t event_ts_us, int64_t created_ts_us);

/*
 * store_view_upsert() or store_view_delete() of a whole row image built for this view's layout
 * (store_row_image; a tombstone when STORE_ROW_TOMBSTONE is set), stored with the flags it
 * carries: a write made durable in the log (durability/wal.h) and applied from there, or
 * replayed from it at start. Same locking and load logging as store_view_upsert().
 */
enum store_upsert_result store_view_upsert_image(struct store_view *view,
                                                 const struct store_row *row);

/*
 * Upsert-if-newer of a row read from the view's own source (an incremental load) into the
 * live table, not marked live: the next full load reads the same source, so its snapshot
 * supersedes the row (an entity the source no longer has goes away, as with any full load).
 * Not logged: the incremental load holds the view's load (store_view_load_begin) while it
 * writes, so no snapshot is being built meanwhile. Takes the view's writer mutex.
 */
enum store_upsert_result store_view_upsert_sourced(struct store_view *view,
                                                   const struct store_key *key,
                                                   const struct store_row_builder *row);

/*
 * A snapshot load: begin before the first source row is read; then commit the new table or
 * abort (drops the log; the caller destroys its table). While a load runs, the view's schema
 * cannot be replaced (store_view_replace_schema refuses), so the loader may use it without
 * holding a read section. Begin returns -1 when a load is already in progress.
 *
 * Commit makes the newest event time win across the swap: it carries the live table's live
 * rows and tombstones into the new table with upsert-if-newer (store_table_merge_live), then
 * replays the updates logged during the load the same way, publishes the table and returns
 * the new version. A snapshot row newer than an entity's live row replaces it; an older one
 * does not. Commit returns 0 and publishes nothing when out of memory (logging or merging) or
 * when the table was not built for the view's schema: the caller then destroys its table and
 * fails the load. Commit passes over the live table once, inside an RCU read section, before
 * taking the writer mutex (live writers wait only for the log replay). The calling thread
 * must be RCU-online. Control thread, or the worker finishing a PushSnapshot.
 */
int store_view_load_begin(struct store_view *view);
uint64_t store_view_load_commit(struct store_view *view, struct store_table *table,
                                int64_t loaded_at_us);
void store_view_load_abort(struct store_view *view);

/*
 * The stream position the snapshot being loaded covers (e.g. a Redis stream entry ID the job
 * read up to; opaque to the store): set between load_begin and load_commit; NULL or "" for
 * none. A commit records it with the new snapshot (none when the load set none); an abort
 * forgets it. Returns -1 when `position` does not fit STORE_STREAM_POSITION_LEN. Takes the
 * view's writer mutex briefly.
 */
int store_view_load_set_stream_position(struct store_view *view, const char *position);

/*
 * Copies the stream position recorded with the current snapshot into `buf` ("" for none) and
 * returns whether there is one. Any thread; takes a mutex held only for a copy. A snapshot
 * swapped in with store_view_swap_table() keeps the previous snapshot's position.
 */
bool store_view_stream_position(const struct store_view *view, char *buf, size_t len);

/*
 * The view as a checkpoint records it, taken at one instant: the current table (pinned:
 * store_table_unpin() when done with it), its snapshot version, load time and stream position,
 * all of the same snapshot (taken under the view's writer mutex, which a snapshot's commit
 * holds across its swap). Any thread, RCU-online, outside a read section.
 */
struct store_view_capture {
    struct store_table *table;
    struct store_schema *schema; /* a copy of the table's (pins do not keep it): the caller's to
                                  * destroy; NULL when out of memory */
    uint64_t version;
    int64_t loaded_at_us;
    uint64_t changes; /* rows live writes and incremental loads have changed, ever */
    char stream_position[STORE_STREAM_POSITION_LEN];
    char stream_applied[STORE_STREAM_POSITION_LEN]; /* store_view_stream_applied() */
};
void store_view_capture(struct store_view *view, struct store_view_capture *out);

/* The view's change count (store_view_capture's `changes`) as of now: cheap, any thread. */
uint64_t store_view_changes(const struct store_view *view);

/*
 * The position (opaque here) of the last stream entry applied to the view through the log of
 * live writes, "" for none: a restart resumes the view's stream after it. Set by whoever applies
 * a logged stream batch (the log writer, the log's replay, a restored checkpoint); -1 when
 * `position` does not fit STORE_STREAM_POSITION_LEN. Any thread; a mutex held for a copy.
 */
int store_view_set_stream_applied(struct store_view *view, const char *position);
bool store_view_stream_applied(const struct store_view *view, char *buf, size_t len);

/* Updates logged during the load in progress (for logs and tests). */
size_t store_view_load_logged(const struct store_view *view);

/* The version of the current snapshot: 0 before the first swap. */
uint64_t store_view_version(const struct store_view *view);

/* When the current snapshot was swapped in (as the caller reported it); 0 before that. */
int64_t store_view_loaded_at_us(const struct store_view *view);
