#pragma once
/*
 * A view's table: entity key -> latest row, sharded by key hash.
 *
 *   hash (XXH3, 64 bits):  63 ........ 48 | 47 .. 44 | 43 ..... 32 | 31 .......... 0
 *                          slot tag        | unused   | shard        | slot position
 *
 *   table ──shards[2^k]──> shard { writer mutex, arena, index* }
 *                                   index { capacity, slots[] }   (RCU-published)
 *                                   slot: 0 = empty, 1 = deleted,
 *                                         else tag << 48 | row pointer (48 bits)
 *
 * Each shard is an open-addressing table with linear probing. A slot packs a 16-bit tag of the
 * hash with the row pointer, so a probe rejects almost every other key without touching its
 * row, and a lookup costs one cache line of slots plus the row itself.
 *
 * Readers never lock: they load the shard's index and slots with acquire loads inside an RCU
 * read section. Writers (upsert, delete, sweep) take the shard's mutex, publish new rows and
 * new indexes with release stores, and retire what they replaced to be freed after a grace
 * period. Before a table is published (a snapshot being built) rows come from per-shard
 * arenas and nothing needs retiring; after, rows are malloc'd so updates can free them.
 *
 * Time never comes from the system clock here: callers pass `now_us`, so tests control it.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "key.h"
#include "row.h"
#include "schema.h"

#define STORE_DEFAULT_SHARDS 64
#define STORE_MAX_SHARDS     4096

struct store_table;

struct store_table_options {
    uint32_t shards;        /* a power of two, 1..STORE_MAX_SHARDS; 0 = STORE_DEFAULT_SHARDS */
    uint64_t expected_rows; /* sizes the shards up front when known; 0 = grow as needed */
};

enum store_upsert_result {
    STORE_UPSERT_ERROR = -1, /* out of memory, or a row or key too large */
    STORE_UPSERT_INSERTED,   /* the key was new */
    STORE_UPSERT_REPLACED,   /* the row was newer than the stored one and replaced it */
    STORE_UPSERT_NOT_NEWER,  /* the stored row is as new or newer: nothing changed */
};

/* Table-wide counters, read without locks (the figures may lag by one operation). */
struct store_table_stats {
    uint64_t rows; /* live rows, tombstones excluded */
    uint64_t tombstones;
    uint64_t memory_bytes; /* rows, arenas, indexes and the table itself */
    uint64_t dead_bytes;   /* arena bytes of rows that were replaced (freed with the table) */
};

/*
 * Returns a new empty table for `schema` (finalized; must outlive the table), or NULL when
 * out of memory or the options are invalid (`err` says which).
 */
struct store_table *store_table_create(const struct store_schema *schema,
                                       const struct store_table_options *options, char *err,
                                       size_t err_len);

/*
 * Returns a new unpublished table for `schema` (same layout as the source's, see
 * store_schema_same_layout) holding copies of every row and tombstone of `source` (live
 * marks included), sealed.
 * For applying a changed TTL or defaults. Reads `source` like store_table_foreach(): call it
 * from the thread that writes the source, or accept that writes made meanwhile may be missed.
 */
struct store_table *store_table_copy(const struct store_table *source,
                                     const struct store_schema *schema,
                                     const struct store_table_options *options, char *err,
                                     size_t err_len);

/* Frees the table and all its rows at once. No reader or writer may still use it. */
void store_table_destroy(struct store_table *table);

/* Frees the table after a grace period (for a table readers may still see), or when the last
 * pin is dropped if later. Never blocks. */
void store_table_retire(struct store_table *table);

/*
 * Keeps a published table from being freed when it is retired, until store_table_unpin(), so
 * a long reader (a checkpoint) can read it shard by shard in short read sections while the
 * view swaps in another table. Pin inside store_read_lock(), while the table is reachable
 * (store_view_table()); unpin from any thread. The table's schema is not pinned: a pinned
 * reader that outlives its read section keeps its own copy (store_schema_clone).
 */
void store_table_pin(struct store_table *table);
void store_table_unpin(struct store_table *table);

/*
 * Calls `fn` for every row and tombstone of shard `shard` (0..store_table_shards()-1), as a
 * lookup reads them: inside store_read_lock(), while writers go on (a row replaced meanwhile
 * is seen in one of its versions); rows are valid until the read section ends. Stops at the
 * first non-zero return of `fn` and returns it; 0 otherwise.
 */
int store_table_scan_shard(const struct store_table *table, uint32_t shard,
                           int (*fn)(const struct store_row *row, void *arg), void *arg);

const struct store_schema *store_table_schema(const struct store_table *table);
uint32_t store_table_shards(const struct store_table *table);

/*
 * Stores the row in `builder` under `key` if it is newer (event time, then created time) than
 * the stored row for that key, else leaves the table as it is. Readers see the old row or the
 * new one, never a partial row. Takes the key's shard mutex; may allocate.
 */
enum store_upsert_result store_table_upsert(struct store_table *table, const struct store_key *key,
                                            const struct store_row_builder *builder);

/*
 * Deletes `key` as of `event_ts_us`: writes a tombstone if that is newer than the stored row,
 * so an older update that arrives later cannot bring the values back. A tombstone reads as not
 * found and is reclaimed by the sweeper. Returns like store_table_upsert().
 */
enum store_upsert_result store_table_delete(struct store_table *table, const struct store_key *key,
                                            int64_t event_ts_us, int64_t created_ts_us);

/*
 * Like store_table_upsert() and store_table_delete(), for rows written through the live path
 * (pushes, streams): the stored row is marked STORE_ROW_LIVE, so that store_table_merge_live()
 * carries it into the next snapshot. A row that loses to the stored one is not stored, mark
 * or not.
 */
enum store_upsert_result store_table_upsert_live(struct store_table *table,
                                                 const struct store_key *key,
                                                 const struct store_row_builder *builder);
enum store_upsert_result store_table_delete_live(struct store_table *table,
                                                 const struct store_key *key, int64_t event_ts_us,
                                                 int64_t created_ts_us);

/*
 * Upsert-if-newer of a whole row image (a row or tombstone read from another table of the
 * same layout), copied with its STORE_ROW_LIVE mark. For replaying logged updates into a new
 * snapshot.
 */
enum store_upsert_result store_table_upsert_row(struct store_table *table,
                                                const struct store_row *row);

/*
 * Carries the live rows of `source` (the view's current table) into `table` (a snapshot being
 * built for the same layout): every row and tombstone of `source` marked STORE_ROW_LIVE is
 * upserted if newer (store_table_upsert_row), keeping its mark. So the newest event time wins
 * (created time breaking ties; on a full tie the row already in `table` stays), a live tombstone
 * newer than the snapshot's row keeps the entity deleted, and live rows the snapshot lacks are
 * kept. Sets *merged (may be NULL) to the rows and tombstones stored. Returns 0, or -1 when out
 * of memory or the layouts differ (`table` is then partly merged: destroy it).
 *
 * Reads `source` like a lookup, so its writers need not stop: a row they replace or sweep
 * during the call may be seen in either version (callers replay what was written meanwhile).
 * Call inside store_read_lock(); `table` must have no other writer. Takes `table`'s shard
 * mutexes; allocates.
 */
int store_table_merge_live(struct store_table *table, const struct store_table *source,
                           uint64_t *merged);

/*
 * The number of rows (tombstones excluded) `table` would hold after
 * store_table_merge_live(table, source), changing neither table. For a data contract that
 * judges what the view will serve after the swap. Same reading rules as the merge.
 */
uint64_t store_table_rows_after_merge_live(const struct store_table *table,
                                           const struct store_table *source);

/*
 * Copies the row `builder` describes (or, with builder NULL, a tombstone at the given times)
 * for `key` into a new malloc'd row image, or returns NULL when out of memory. Free with free().
 */
struct store_row *store_row_image(const struct store_schema *schema, const struct store_key *key,
                                  const struct store_row_builder *builder, int64_t event_ts_us,
                                  int64_t created_ts_us);

/* store_row_image() in memory the caller owns: the bytes it takes (a multiple of 8), and the
 * image written into `dst` (8-byte aligned, that many bytes). */
size_t store_row_image_size(const struct store_key *key, const struct store_row_builder *builder,
                            int64_t created_ts_us);
void store_row_image_write(struct store_row *dst, const struct store_key *key,
                           const struct store_row_builder *builder, int64_t event_ts_us,
                           int64_t created_ts_us);

/*
 * Finds `key`. Returns its row, or NULL when absent or deleted. Call inside store_read_lock();
 * the row stays valid until store_read_unlock(). Never blocks, never allocates.
 */
const struct store_row *store_table_get(const struct store_table *table,
                                        const struct store_key *key);

/*
 * Finds `n` keys at once, overlapping their cache misses; rows[i] is as store_table_get()
 * would return for keys[i]. Same rules as store_table_get().
 */
void store_table_get_batch(const struct store_table *table, const struct store_key *keys, size_t n,
                           const struct store_row **rows);

/*
 * Finishes a snapshot build: computes `mean` defaults over the present values. Call before
 * publishing the table, from the thread that built it.
 */
void store_table_seal(struct store_table *table);

/*
 * The value to serve for feature `index` when it is not present: the literal, zero, or the
 * snapshot mean. Returns false when the feature has no default. Var data points into the
 * schema or the table.
 */
bool store_table_default(const struct store_table *table, uint32_t index, struct store_value *out);

/*
 * Reads feature `index` for a lookup result `row` (NULL = not found) at `now_us`: returns its
 * status and sets *value to the row's value when present, else to the feature's default.
 * *has_value is false when the value is not present and there is no default.
 */
enum store_status store_table_read(const struct store_table *table, const struct store_row *row,
                                   uint32_t index, int64_t now_us, struct store_value *value,
                                   bool *has_value);

/*
 * Marks the table as published: from now on readers may see it, so replaced rows are retired
 * through RCU instead of freed at once. Called by store_view_swap_table().
 */
void store_table_mark_published(struct store_table *table);

/*
 * Reclaims up to `max_slots` slots' worth of expired entries, continuing where the last call
 * stopped: rows with event time older than now - ttl - grace (views with a TTL), and tombstones
 * older than now - grace. Shards crowded with deleted slots are rebuilt. Locks one shard at a
 * time, so readers never stall and writers wait at most one shard's pass. Returns the number
 * of rows and tombstones removed.
 */
uint64_t store_table_sweep(struct store_table *table, int64_t now_us, int64_t grace_us,
                           uint64_t max_slots);

/* Hands rows retired by earlier writes to RCU now instead of when the batch fills. */
void store_table_flush_retired(struct store_table *table);

void store_table_stats(const struct store_table *table, struct store_table_stats *stats);

/*
 * Calls `fn` for every live row (tombstones skipped), shard by shard. For a table no writer is
 * changing (a snapshot being built or sealed); the rows are valid during the call.
 */
void store_table_foreach(const struct store_table *table,
                         void (*fn)(const struct store_row *row, void *arg), void *arg);
