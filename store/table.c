#include "table.h"

#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rcu.h"

#define SLOT_EMPTY   UINT64_C(0)
#define SLOT_DELETED UINT64_C(1)
#define SLOT_PTR     UINT64_C(0x0000ffffffffffff)
#define SLOT_TAG     UINT64_C(0xffff000000000000)

#define ROW_FROM_ARENA STORE_ROW_TABLE_PRIVATE /* lives in a shard arena, freed with it */

#define MIN_CAPACITY        8
#define MAX_LOAD_PERCENT    80 /* occupied + deleted slots, before the index is rebuilt */
#define TARGET_LOAD_PERCENT 50 /* load right after growing */
#define HINT_LOAD_PERCENT   75 /* load a table sized by expected_rows reaches when full */

#define ARENA_FIRST_CHUNK (4u << 10)
#define ARENA_CHUNK       (64u << 10) /* small enough that a half-used chunk wastes little */
#define RETIRE_BATCH      256

struct store_index {
    struct store_rcu_head rcu;
    uint32_t capacity;
    _Atomic uint64_t slots[];
};

/* Rows start at a cache line boundary, so a 128-byte row spans two lines, not three. */
struct arena_chunk {
    struct arena_chunk *next;
    size_t size;
    size_t used;
    _Alignas(64) uint8_t data[];
};

struct retire_batch {
    struct store_rcu_head rcu;
    uint32_t count;
    void *ptrs[RETIRE_BATCH];
};

/* Writer-side fields are guarded by `lock`; readers touch only `index`. */
struct store_shard {
    _Alignas(64) pthread_mutex_t lock;
    _Atomic(struct store_index *) index;
    uint32_t occupied; /* slots holding a row or a tombstone row */
    uint32_t deleted;  /* slots marked SLOT_DELETED */
    struct arena_chunk *arena;
    struct retire_batch *retired;
};

struct store_table {
    struct store_rcu_head rcu;
    const struct store_schema *schema;
    uint32_t nshards;
    uint32_t shard_mask;
    atomic_bool published;
    /* References: the view's (dropped a grace period after retire) and pins (checkpoints
     * reading a table that may be replaced meanwhile). The last one frees it. */
    _Atomic uint32_t refs;
    _Atomic uint64_t rows;
    _Atomic uint64_t tombstones;
    _Atomic uint64_t memory_bytes;
    _Atomic uint64_t dead_bytes;
    struct store_value *defaults; /* per feature; valid where has_default */
    bool *has_default;
    uint32_t sweep_shard; /* sweeper cursor */
    uint32_t sweep_slot;
    struct store_shard *shards;
};

/* ---- slots and hashing -------------------------------------------------------------------- */

static inline uint32_t _slot_pos(uint64_t hash, uint32_t capacity) {
    return (uint32_t)(((uint64_t)(uint32_t)hash * capacity) >> 32);
}

static inline uint32_t _shard_of(const struct store_table *table, uint64_t hash) {
    return (uint32_t)(hash >> 32) & table->shard_mask;
}

static inline const struct store_row *_slot_row(uint64_t slot) {
    return (const struct store_row *)(uintptr_t)(slot & SLOT_PTR);
}

static inline bool _key_equals(const struct store_row *row, const struct store_key *key) {
    return row->key_len == key->len && memcmp(store_row_key(row), key->data, key->len) == 0;
}

static void _add(_Atomic uint64_t *counter, int64_t delta) {
    atomic_fetch_add_explicit(counter, (uint64_t)delta, memory_order_relaxed);
}

/* ---- indexes ------------------------------------------------------------------------------ */

static size_t _index_bytes(uint32_t capacity) {
    return sizeof(struct store_index) + (size_t)capacity * sizeof(uint64_t);
}

static struct store_index *_index_create(uint32_t capacity) {
    struct store_index *index = calloc(1, _index_bytes(capacity));
    if (index != NULL) {
        index->capacity = capacity;
    }
    return index;
}

static void _index_free_deferred(struct store_rcu_head *head) {
    free(caa_container_of(head, struct store_index, rcu));
}

/* Places `slot` (a row) in `index`, which must not hold its key. Writer only. */
static void _index_place(struct store_index *index, uint64_t hash, uint64_t slot) {
    uint32_t pos = _slot_pos(hash, index->capacity);
    while (atomic_load_explicit(&index->slots[pos], memory_order_relaxed) != SLOT_EMPTY) {
        pos = pos + 1 == index->capacity ? 0 : pos + 1;
    }
    atomic_store_explicit(&index->slots[pos], slot, memory_order_relaxed);
}

/*
 * Replaces the shard's index with one of `capacity` slots holding the same rows and no deleted
 * slots, and retires the old one. Readers keep using whichever index they loaded. Shard lock.
 */
static int _shard_rebuild(struct store_table *table, struct store_shard *shard, uint32_t capacity) {
    struct store_index *old = atomic_load_explicit(&shard->index, memory_order_relaxed);
    struct store_index *fresh = _index_create(capacity);
    if (fresh == NULL) {
        return -1;
    }
    for (uint32_t i = 0; i < old->capacity; i++) {
        uint64_t slot = atomic_load_explicit(&old->slots[i], memory_order_relaxed);
        if (slot > SLOT_DELETED) {
            const struct store_row *row = _slot_row(slot);
            _index_place(fresh, store_key_hash(store_row_key(row), row->key_len), slot);
        }
    }
    /* Release: a reader that loads the new index sees its slots filled in. */
    atomic_store_explicit(&shard->index, fresh, memory_order_release);
    shard->deleted = 0;
    _add(&table->memory_bytes,
         (int64_t)_index_bytes(capacity) - (int64_t)_index_bytes(old->capacity));
    if (atomic_load_explicit(&table->published, memory_order_relaxed)) {
        store_rcu_defer(&old->rcu, _index_free_deferred);
    } else {
        free(old);
    }
    return 0;
}

static uint32_t _capacity_for(uint64_t rows, uint32_t load_percent) {
    uint64_t capacity = rows * 100 / load_percent + 1;
    if (capacity < MIN_CAPACITY) {
        capacity = MIN_CAPACITY;
    }
    return capacity > UINT32_MAX / 2 ? UINT32_MAX / 2 : (uint32_t)capacity;
}

/* Makes room for one more occupied slot. Shard lock. */
static int _shard_reserve(struct store_table *table, struct store_shard *shard) {
    struct store_index *index = atomic_load_explicit(&shard->index, memory_order_relaxed);
    uint64_t used = (uint64_t)shard->occupied + shard->deleted + 1;
    if (used * 100 <= (uint64_t)index->capacity * MAX_LOAD_PERCENT) {
        return 0;
    }
    uint32_t capacity = index->capacity;
    if (shard->deleted < shard->occupied / 4) {
        capacity = _capacity_for((uint64_t)shard->occupied + 1, TARGET_LOAD_PERCENT);
    }
    return _shard_rebuild(table, shard, capacity);
}

/* ---- rows: allocation and retirement ------------------------------------------------------ */

/* Rows of a table being built come from its arenas (no per-row malloc overhead). */
static struct store_row *_row_alloc(struct store_table *table, struct store_shard *shard,
                                    size_t size, bool *from_arena_out) {
    struct store_row *row = NULL;
    bool from_arena =
        !atomic_load_explicit(&table->published, memory_order_relaxed) && size <= ARENA_CHUNK / 4;
    *from_arena_out = from_arena;
    if (from_arena) {
        struct arena_chunk *chunk = shard->arena;
        if (chunk == NULL || chunk->size - chunk->used < size) {
            /* Header included, so the allocation is exactly a malloc size class. A row bigger
             * than the small first chunk gets a full one (it holds any arena row). */
            size_t chunk_size = (chunk == NULL ? ARENA_FIRST_CHUNK : ARENA_CHUNK) - sizeof(*chunk);
            if (chunk_size < size) {
                chunk_size = ARENA_CHUNK - sizeof(*chunk);
            }
            struct arena_chunk *fresh = aligned_alloc(64, sizeof(*fresh) + chunk_size);
            if (fresh == NULL) {
                return NULL;
            }
            fresh->next = chunk;
            fresh->size = chunk_size;
            fresh->used = 0;
            shard->arena = chunk = fresh;
            _add(&table->memory_bytes, (int64_t)(sizeof(*fresh) + chunk_size));
        }
        row = (struct store_row *)(chunk->data + chunk->used);
        chunk->used += size;
    } else {
        row = malloc(size);
        if (row == NULL) {
            return NULL;
        }
        _add(&table->memory_bytes, (int64_t)malloc_usable_size(row));
    }
    /* Slots keep 48 pointer bits; user space addresses on x86-64 and arm64 Linux fit. */
    if (((uintptr_t)row & ~SLOT_PTR) != 0) {
        if (!from_arena) {
            free(row);
        }
        return NULL;
    }
    return row;
}

static void _retire_batch_free(struct store_rcu_head *head) {
    struct retire_batch *batch = caa_container_of(head, struct retire_batch, rcu);
    for (uint32_t i = 0; i < batch->count; i++) {
        free(batch->ptrs[i]);
    }
    free(batch);
}

static void _shard_flush_retired(struct store_shard *shard) {
    if (shard->retired != NULL && shard->retired->count > 0) {
        store_rcu_defer(&shard->retired->rcu, _retire_batch_free);
        shard->retired = NULL;
    }
}

/* Frees `row`, which the shard no longer points to, once no reader can hold it. Shard lock. */
static void _row_retire(struct store_table *table, struct store_shard *shard,
                        const struct store_row *row) {
    if (row->flags & ROW_FROM_ARENA) {
        _add(&table->dead_bytes, (int64_t)store_row_total_size(table->schema, row));
        return;
    }
    _add(&table->memory_bytes, -(int64_t)malloc_usable_size((void *)row));
    if (!atomic_load_explicit(&table->published, memory_order_relaxed)) {
        free((void *)row);
        return;
    }
    if (shard->retired == NULL) {
        shard->retired = malloc(sizeof(*shard->retired));
        if (shard->retired == NULL) {
            /* Out of memory: leaking one row is safer than freeing it under a reader. */
            return;
        }
        shard->retired->count = 0;
    }
    shard->retired->ptrs[shard->retired->count++] = (void *)row;
    if (shard->retired->count == RETIRE_BATCH) {
        _shard_flush_retired(shard);
    }
}

/* ---- create / destroy --------------------------------------------------------------------- */

static void _compute_literal_defaults(struct store_table *table) {
    const struct store_schema *schema = table->schema;
    for (uint32_t i = 0; i < schema->nfeatures; i++) {
        const struct store_feature *feature = &schema->features[i];
        table->has_default[i] = feature->default_kind != STORE_DEFAULT_NONE;
        if (feature->default_kind == STORE_DEFAULT_LITERAL) {
            table->defaults[i] = feature->default_literal;
        } else {
            /* zero, and mean until store_table_seal() computes it */
            table->defaults[i] = store_value_zero(feature->type);
        }
    }
}

struct store_table *store_table_create(const struct store_schema *schema,
                                       const struct store_table_options *options, char *err,
                                       size_t err_len) {
    uint32_t nshards = options != NULL && options->shards ? options->shards : STORE_DEFAULT_SHARDS;
    if (nshards > STORE_MAX_SHARDS || (nshards & (nshards - 1)) != 0) {
        snprintf(err, err_len, "shards must be a power of two from 1 to %d, not %u",
                 STORE_MAX_SHARDS, nshards);
        return NULL;
    }
    if (!schema->finalized) {
        snprintf(err, err_len, "view %s: schema not finalized", schema->view);
        return NULL;
    }
    struct store_table *table = calloc(1, sizeof(*table));
    if (table == NULL) {
        goto oom;
    }
    table->schema = schema;
    table->nshards = nshards;
    table->shard_mask = nshards - 1;
    table->shards = aligned_alloc(64, sizeof(struct store_shard) * nshards);
    table->defaults = calloc(schema->nfeatures + 1, sizeof(*table->defaults));
    table->has_default = calloc(schema->nfeatures + 1, sizeof(*table->has_default));
    if (table->shards == NULL || table->defaults == NULL || table->has_default == NULL) {
        goto oom;
    }
    memset(table->shards, 0, sizeof(struct store_shard) * nshards);
    uint64_t expected = options != NULL ? options->expected_rows : 0;
    uint32_t capacity = _capacity_for((expected + nshards - 1) / nshards, HINT_LOAD_PERCENT);
    uint64_t bytes = sizeof(*table) + sizeof(struct store_shard) * nshards;
    for (uint32_t s = 0; s < nshards; s++) {
        struct store_shard *shard = &table->shards[s];
        pthread_mutex_init(&shard->lock, NULL);
        struct store_index *index = _index_create(capacity);
        if (index == NULL) {
            table->nshards = s; /* destroy only what was set up */
            goto oom;
        }
        atomic_init(&shard->index, index);
        bytes += _index_bytes(capacity);
    }
    atomic_init(&table->memory_bytes, bytes);
    atomic_init(&table->refs, 1);
    _compute_literal_defaults(table);
    return table;
oom:
    snprintf(err, err_len, "view %s: out of memory creating a table", schema->view);
    store_table_destroy(table);
    return NULL;
}

void store_table_destroy(struct store_table *table) {
    if (table == NULL) {
        return;
    }
    for (uint32_t s = 0; s < table->nshards; s++) {
        struct store_shard *shard = &table->shards[s];
        struct store_index *index = atomic_load_explicit(&shard->index, memory_order_relaxed);
        for (uint32_t i = 0; index != NULL && i < index->capacity; i++) {
            uint64_t slot = atomic_load_explicit(&index->slots[i], memory_order_relaxed);
            if (slot > SLOT_DELETED && !(_slot_row(slot)->flags & ROW_FROM_ARENA)) {
                free((void *)_slot_row(slot));
            }
        }
        free(index);
        for (struct arena_chunk *chunk = shard->arena, *next; chunk != NULL; chunk = next) {
            next = chunk->next;
            free(chunk);
        }
        if (shard->retired != NULL) {
            /* Nobody can see the table any more, so retired rows can go now. */
            for (uint32_t i = 0; i < shard->retired->count; i++) {
                free(shard->retired->ptrs[i]);
            }
            free(shard->retired);
        }
        pthread_mutex_destroy(&shard->lock);
    }
    free(table->shards);
    free(table->defaults);
    free(table->has_default);
    free(table);
}

struct store_table *store_table_copy(const struct store_table *source,
                                     const struct store_schema *schema,
                                     const struct store_table_options *options, char *err,
                                     size_t err_len) {
    if (!store_schema_same_layout(source->schema, schema)) {
        snprintf(err, err_len, "view %s: the new schema lays rows out differently", schema->view);
        return NULL;
    }
    struct store_table_stats stats;
    store_table_stats(source, &stats);
    struct store_table_options sized = options != NULL ? *options : (struct store_table_options){0};
    sized.expected_rows = stats.rows + stats.tombstones;
    struct store_table *copy = store_table_create(schema, &sized, err, err_len);
    if (copy == NULL) {
        return NULL;
    }
    for (uint32_t s = 0; s < source->nshards; s++) {
        const struct store_index *index =
            atomic_load_explicit(&source->shards[s].index, memory_order_acquire);
        for (uint32_t i = 0; i < index->capacity; i++) {
            uint64_t slot = atomic_load_explicit(&index->slots[i], memory_order_acquire);
            if (slot <= SLOT_DELETED) {
                continue;
            }
            const struct store_row *row = _slot_row(slot);
            size_t size = store_row_total_size(source->schema, row);
            struct store_key key = {store_row_key(row), row->key_len,
                                    store_key_hash(store_row_key(row), row->key_len)};
            struct store_shard *shard = &copy->shards[_shard_of(copy, key.hash)];
            bool from_arena = false;
            struct store_row *dst = NULL;
            if (_shard_reserve(copy, shard) == 0) {
                dst = _row_alloc(copy, shard, size, &from_arena);
            }
            if (dst == NULL) {
                snprintf(err, err_len, "view %s: out of memory copying the table", schema->view);
                store_table_destroy(copy);
                return NULL;
            }
            memcpy(dst, row, size);
            dst->flags =
                (uint8_t)((row->flags & ~ROW_FROM_ARENA) | (from_arena ? ROW_FROM_ARENA : 0));
            struct store_index *cindex = atomic_load_explicit(&shard->index, memory_order_relaxed);
            _index_place(cindex, key.hash, (key.hash & SLOT_TAG) | (uint64_t)(uintptr_t)dst);
            shard->occupied++;
            _add((row->flags & STORE_ROW_TOMBSTONE) ? &copy->tombstones : &copy->rows, 1);
        }
    }
    store_table_seal(copy);
    return copy;
}

static void _table_unref(struct store_table *table) {
    if (atomic_fetch_sub_explicit(&table->refs, 1, memory_order_acq_rel) == 1) {
        store_table_destroy(table);
    }
}

static void _table_destroy_deferred(struct store_rcu_head *head) {
    _table_unref(caa_container_of(head, struct store_table, rcu));
}

void store_table_pin(struct store_table *table) {
    /* Inside a read section the view's reference is still held: refs >= 1 here. */
    atomic_fetch_add_explicit(&table->refs, 1, memory_order_relaxed);
}

void store_table_unpin(struct store_table *table) {
    _table_unref(table);
}

int store_table_scan_shard(const struct store_table *table, uint32_t shard,
                           int (*fn)(const struct store_row *row, void *arg), void *arg) {
    if (shard >= table->nshards) {
        return 0;
    }
    const struct store_index *index =
        atomic_load_explicit(&table->shards[shard].index, memory_order_acquire);
    for (uint32_t i = 0; i < index->capacity; i++) {
        uint64_t slot = atomic_load_explicit(&index->slots[i], memory_order_acquire);
        if (slot > SLOT_DELETED) {
            int rc = fn(_slot_row(slot), arg);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

void store_table_retire(struct store_table *table) {
    store_table_flush_retired(table);
    store_rcu_defer(&table->rcu, _table_destroy_deferred);
}

const struct store_schema *store_table_schema(const struct store_table *table) {
    return table->schema;
}

uint32_t store_table_shards(const struct store_table *table) {
    return table->nshards;
}

void store_table_mark_published(struct store_table *table) {
    atomic_store_explicit(&table->published, true, memory_order_release);
}

void store_table_flush_retired(struct store_table *table) {
    for (uint32_t s = 0; s < table->nshards; s++) {
        struct store_shard *shard = &table->shards[s];
        pthread_mutex_lock(&shard->lock);
        _shard_flush_retired(shard);
        pthread_mutex_unlock(&shard->lock);
    }
}

/* ---- writes ------------------------------------------------------------------------------- */

/*
 * Finds `key` in the shard's index. Returns the slot position holding it, or -1 and sets
 * *insert_at to where it would go (the first deleted slot on its probe path, else the empty
 * slot that ended it). Shard lock.
 */
static int64_t _shard_find(const struct store_index *index, const struct store_key *key,
                           uint32_t *insert_at) {
    uint64_t tag = key->hash & SLOT_TAG;
    uint32_t pos = _slot_pos(key->hash, index->capacity);
    int64_t first_deleted = -1;
    for (;;) {
        uint64_t slot = atomic_load_explicit(&index->slots[pos], memory_order_relaxed);
        if (slot == SLOT_EMPTY) {
            *insert_at = first_deleted >= 0 ? (uint32_t)first_deleted : pos;
            return -1;
        }
        if (slot == SLOT_DELETED) {
            if (first_deleted < 0) {
                first_deleted = pos;
            }
        } else if ((slot & SLOT_TAG) == tag && _key_equals(_slot_row(slot), key)) {
            return pos;
        }
        pos = pos + 1 == index->capacity ? 0 : pos + 1;
    }
}

typedef void (*row_writer)(struct store_row *dst, const struct store_key *key, const void *arg);

struct tombstone_arg {
    int64_t event_ts_us;
    int64_t created_ts_us;
};

static void _write_from_builder(struct store_row *dst, const struct store_key *key,
                                const void *arg) {
    store_row_write(arg, key->data, key->len, dst);
}

static void _write_tombstone(struct store_row *dst, const struct store_key *key, const void *arg) {
    const struct tombstone_arg *t = arg;
    store_row_write_tombstone(dst, key->data, key->len, t->event_ts_us, t->created_ts_us);
}

/* Upsert-if-newer of a row of `size` bytes that `write` fills in; `mark` is added to its
 * flags (STORE_ROW_LIVE or 0). */
static enum store_upsert_result _upsert(struct store_table *table, const struct store_key *key,
                                        int64_t event_ts_us, int64_t created_ts_us, size_t size,
                                        row_writer write, const void *arg, uint8_t mark) {
    if (key->len > STORE_MAX_KEY_BYTES || size > UINT32_MAX) {
        return STORE_UPSERT_ERROR;
    }
    struct store_shard *shard = &table->shards[_shard_of(table, key->hash)];
    enum store_upsert_result result = STORE_UPSERT_ERROR;
    pthread_mutex_lock(&shard->lock);
    struct store_index *index = atomic_load_explicit(&shard->index, memory_order_relaxed);
    uint32_t insert_at = 0;
    int64_t found = _shard_find(index, key, &insert_at);
    const struct store_row *old = NULL;
    if (found >= 0) {
        old = _slot_row(atomic_load_explicit(&index->slots[found], memory_order_relaxed));
        if (!store_row_is_older_than(old, event_ts_us, created_ts_us)) {
            result = STORE_UPSERT_NOT_NEWER;
            goto out;
        }
    } else if (atomic_load_explicit(&index->slots[insert_at], memory_order_relaxed) == SLOT_EMPTY) {
        if (_shard_reserve(table, shard) != 0) {
            goto out;
        }
        struct store_index *now = atomic_load_explicit(&shard->index, memory_order_relaxed);
        if (now != index) {
            index = now;
            _shard_find(index, key, &insert_at);
        }
    }
    bool from_arena = false;
    struct store_row *row = _row_alloc(table, shard, size, &from_arena);
    if (row == NULL) {
        goto out;
    }
    write(row, key, arg);
    row->flags |= mark;
    if (from_arena) {
        row->flags |= ROW_FROM_ARENA;
    }
    bool tombstone = row->flags & STORE_ROW_TOMBSTONE;
    uint64_t slot = (key->hash & SLOT_TAG) | (uint64_t)(uintptr_t)row;
    /* Release: a reader that loads this slot sees the row's bytes. */
    if (found >= 0) {
        atomic_store_explicit(&index->slots[found], slot, memory_order_release);
        bool was_tombstone = old->flags & STORE_ROW_TOMBSTONE;
        if (was_tombstone != tombstone) {
            _add(&table->rows, tombstone ? -1 : 1);
            _add(&table->tombstones, tombstone ? 1 : -1);
        }
        _row_retire(table, shard, old);
        result = STORE_UPSERT_REPLACED;
    } else {
        if (atomic_load_explicit(&index->slots[insert_at], memory_order_relaxed) == SLOT_DELETED) {
            shard->deleted--;
        }
        atomic_store_explicit(&index->slots[insert_at], slot, memory_order_release);
        shard->occupied++;
        _add(tombstone ? &table->tombstones : &table->rows, 1);
        result = STORE_UPSERT_INSERTED;
    }
out:
    pthread_mutex_unlock(&shard->lock);
    return result;
}

static enum store_upsert_result _upsert_builder(struct store_table *table,
                                                const struct store_key *key,
                                                const struct store_row_builder *builder,
                                                uint8_t mark) {
    size_t size = store_row_size(builder, key->len);
    return _upsert(table, key, builder->event_ts_us, builder->created_ts_us, size,
                   _write_from_builder, builder, mark);
}

static enum store_upsert_result _delete(struct store_table *table, const struct store_key *key,
                                        int64_t event_ts_us, int64_t created_ts_us, uint8_t mark) {
    struct tombstone_arg arg = {event_ts_us, created_ts_us};
    return _upsert(table, key, event_ts_us, created_ts_us,
                   store_row_size_tombstone(key->len, created_ts_us), _write_tombstone, &arg, mark);
}

enum store_upsert_result store_table_upsert(struct store_table *table, const struct store_key *key,
                                            const struct store_row_builder *builder) {
    return _upsert_builder(table, key, builder, 0);
}

enum store_upsert_result store_table_delete(struct store_table *table, const struct store_key *key,
                                            int64_t event_ts_us, int64_t created_ts_us) {
    return _delete(table, key, event_ts_us, created_ts_us, 0);
}

enum store_upsert_result store_table_upsert_live(struct store_table *table,
                                                 const struct store_key *key,
                                                 const struct store_row_builder *builder) {
    return _upsert_builder(table, key, builder, STORE_ROW_LIVE);
}

enum store_upsert_result store_table_delete_live(struct store_table *table,
                                                 const struct store_key *key, int64_t event_ts_us,
                                                 int64_t created_ts_us) {
    return _delete(table, key, event_ts_us, created_ts_us, STORE_ROW_LIVE);
}

struct image_arg {
    const struct store_row *row;
    size_t size;
};

static void _copy_image(struct store_row *dst, const struct store_key *key, const void *arg) {
    const struct image_arg *image = arg;
    (void)key;
    memcpy(dst, image->row, image->size);
    dst->flags &= (uint8_t)~ROW_FROM_ARENA; /* _upsert sets it again if dst is from an arena */
}

enum store_upsert_result store_table_upsert_row(struct store_table *table,
                                                const struct store_row *row) {
    struct store_key key = {store_row_key(row), row->key_len,
                            store_key_hash(store_row_key(row), row->key_len)};
    struct image_arg image = {row, store_row_total_size(table->schema, row)};
    return _upsert(table, &key, row->event_ts_us, store_row_created_us(row), image.size,
                   _copy_image, &image, 0);
}

size_t store_row_image_size(const struct store_key *key, const struct store_row_builder *builder,
                            int64_t created_ts_us) {
    return builder != NULL ? store_row_size(builder, key->len)
                           : store_row_size_tombstone(key->len, created_ts_us);
}

void store_row_image_write(struct store_row *dst, const struct store_key *key,
                           const struct store_row_builder *builder, int64_t event_ts_us,
                           int64_t created_ts_us) {
    if (builder != NULL) {
        store_row_write(builder, key->data, key->len, dst);
    } else {
        store_row_write_tombstone(dst, key->data, key->len, event_ts_us, created_ts_us);
    }
}

struct store_row *store_row_image(const struct store_schema *schema, const struct store_key *key,
                                  const struct store_row_builder *builder, int64_t event_ts_us,
                                  int64_t created_ts_us) {
    (void)schema;
    struct store_row *row = aligned_alloc(8, store_row_image_size(key, builder, created_ts_us));
    if (row != NULL) {
        store_row_image_write(row, key, builder, event_ts_us, created_ts_us);
    }
    return row;
}

/* ---- reads -------------------------------------------------------------------------------- */

static inline const struct store_index *_load_index(const struct store_table *table,
                                                    uint64_t hash) {
    /* Acquire: the index's slots were filled in before it was published. */
    return atomic_load_explicit(&table->shards[_shard_of(table, hash)].index, memory_order_acquire);
}

/* Probes from `pos` for `key`; returns its live row or NULL. */
static const struct store_row *_probe_from(const struct store_index *index,
                                           const struct store_key *key, uint32_t pos) {
    uint64_t tag = key->hash & SLOT_TAG;
    for (;;) {
        uint64_t slot = atomic_load_explicit(&index->slots[pos], memory_order_acquire);
        if (slot == SLOT_EMPTY) {
            return NULL;
        }
        if ((slot & SLOT_TAG) == tag && slot != SLOT_DELETED) {
            const struct store_row *row = _slot_row(slot);
            if (_key_equals(row, key)) {
                return (row->flags & STORE_ROW_TOMBSTONE) ? NULL : row;
            }
        }
        pos = pos + 1 == index->capacity ? 0 : pos + 1;
    }
}

const struct store_row *store_table_get(const struct store_table *table,
                                        const struct store_key *key) {
    const struct store_index *index = _load_index(table, key->hash);
    return _probe_from(index, key, _slot_pos(key->hash, index->capacity));
}

/*
 * A software pipeline so the cache misses of many keys overlap instead of queueing: key i has
 * its first slot prefetched, key i - D is probed up to its first tag match and has that row
 * prefetched, and key i - 2D has its key compared. A tag match on another key (1 in 65536)
 * falls back to a plain probe.
 */
#define PIPELINE_DISTANCE 16

static inline void _batch_prefetch_slot(const struct store_table *table,
                                        const struct store_key *key,
                                        const struct store_index **index, uint32_t *pos) {
    *index = _load_index(table, key->hash);
    *pos = _slot_pos(key->hash, (*index)->capacity);
    __builtin_prefetch(&(*index)->slots[*pos]);
}

static inline const struct store_row *
_batch_find_candidate(const struct store_index *index, const struct store_key *key, uint32_t *pos) {
    uint64_t tag = key->hash & SLOT_TAG;
    for (uint32_t p = *pos;; p = p + 1 == index->capacity ? 0 : p + 1) {
        uint64_t slot = atomic_load_explicit(&index->slots[p], memory_order_acquire);
        if (slot == SLOT_EMPTY) {
            return NULL;
        }
        if ((slot & SLOT_TAG) == tag && slot != SLOT_DELETED) {
            const struct store_row *row = _slot_row(slot);
            *pos = p;
            /* The lines a row of up to 128 bytes can touch, wherever it starts. */
            __builtin_prefetch(row);
            __builtin_prefetch((const char *)row + 64);
            __builtin_prefetch((const char *)row + 127);
            return row;
        }
    }
}

static inline const struct store_row *_batch_confirm(const struct store_index *index,
                                                     const struct store_key *key,
                                                     const struct store_row *row, uint32_t pos) {
    if (row == NULL) {
        return NULL;
    }
    if (__builtin_expect(!_key_equals(row, key), 0)) {
        return _probe_from(index, key, pos + 1 == index->capacity ? 0 : pos + 1);
    }
    return (row->flags & STORE_ROW_TOMBSTONE) ? NULL : row;
}

void store_table_get_batch(const struct store_table *table, const struct store_key *keys, size_t n,
                           const struct store_row **rows) {
    enum { RING = 4 * PIPELINE_DISTANCE }; /* power of two, more than 2 * distance */
    const struct store_index *indexes[RING];
    uint32_t pos[RING];
    const size_t d = PIPELINE_DISTANCE;
    for (size_t i = 0; i < n + 2 * d; i++) {
        if (i < n) {
            _batch_prefetch_slot(table, &keys[i], &indexes[i % RING], &pos[i % RING]);
        }
        if (i >= d && i - d < n) {
            size_t k = i - d;
            rows[k] = _batch_find_candidate(indexes[k % RING], &keys[k], &pos[k % RING]);
        }
        if (i >= 2 * d && i - 2 * d < n) {
            size_t k = i - 2 * d;
            rows[k] = _batch_confirm(indexes[k % RING], &keys[k], rows[k], pos[k % RING]);
        }
    }
}

bool store_table_default(const struct store_table *table, uint32_t index, struct store_value *out) {
    *out = table->defaults[index];
    return table->has_default[index];
}

enum store_status store_table_read(const struct store_table *table, const struct store_row *row,
                                   uint32_t index, int64_t now_us, struct store_value *value,
                                   bool *has_value) {
    enum store_status status = STORE_NOT_FOUND;
    if (row != NULL) {
        status = store_row_status(table->schema, row, now_us);
        if (status == STORE_PRESENT && store_row_is_null(table->schema, row, index)) {
            status = STORE_NULL;
        }
    }
    if (status == STORE_PRESENT) {
        store_row_get(table->schema, row, index, value);
        *has_value = true;
    } else {
        *has_value = store_table_default(table, index, value);
    }
    return status;
}

/* ---- live rows across snapshot swaps ------------------------------------------------------ */

/*
 * Visits every row and tombstone of `source` marked STORE_ROW_LIVE until `fn` returns
 * non-zero (which it returns). Reads like a lookup, so writers may be changing `source`.
 */
static int _foreach_live(const struct store_table *source,
                         int (*fn)(const struct store_row *row, void *arg), void *arg) {
    for (uint32_t s = 0; s < source->nshards; s++) {
        const struct store_index *index =
            atomic_load_explicit(&source->shards[s].index, memory_order_acquire);
        for (uint32_t i = 0; i < index->capacity; i++) {
            uint64_t slot = atomic_load_explicit(&index->slots[i], memory_order_acquire);
            if (slot > SLOT_DELETED && (_slot_row(slot)->flags & STORE_ROW_LIVE)) {
                int rc = fn(_slot_row(slot), arg);
                if (rc != 0) {
                    return rc;
                }
            }
        }
    }
    return 0;
}

struct merge_arg {
    struct store_table *table;
    uint64_t merged;
};

static int _merge_one(const struct store_row *row, void *arg) {
    struct merge_arg *m = arg;
    enum store_upsert_result result = store_table_upsert_row(m->table, row);
    if (result == STORE_UPSERT_ERROR) {
        return -1;
    }
    m->merged += result != STORE_UPSERT_NOT_NEWER;
    return 0;
}

int store_table_merge_live(struct store_table *table, const struct store_table *source,
                           uint64_t *merged) {
    struct merge_arg m = {table, 0};
    int rc = store_schema_same_layout(source->schema, table->schema)
                 ? _foreach_live(source, _merge_one, &m)
                 : -1;
    if (merged != NULL) {
        *merged = m.merged;
    }
    return rc;
}

/* The key's row or tombstone, or NULL. */
static const struct store_row *_find_any(const struct store_table *table,
                                         const struct store_key *key) {
    const struct store_index *index = _load_index(table, key->hash);
    uint64_t tag = key->hash & SLOT_TAG;
    for (uint32_t pos = _slot_pos(key->hash, index->capacity);;
         pos = pos + 1 == index->capacity ? 0 : pos + 1) {
        uint64_t slot = atomic_load_explicit(&index->slots[pos], memory_order_acquire);
        if (slot == SLOT_EMPTY) {
            return NULL;
        }
        if ((slot & SLOT_TAG) == tag && slot != SLOT_DELETED && _key_equals(_slot_row(slot), key)) {
            return _slot_row(slot);
        }
    }
}

struct preview_arg {
    const struct store_table *table;
    int64_t delta; /* rows gained minus rows lost */
};

static int _preview_one(const struct store_row *row, void *arg) {
    struct preview_arg *p = arg;
    struct store_key key = {store_row_key(row), row->key_len,
                            store_key_hash(store_row_key(row), row->key_len)};
    const struct store_row *there = _find_any(p->table, &key);
    if (there != NULL &&
        !store_row_is_older_than(there, row->event_ts_us, store_row_created_us(row))) {
        return 0; /* the merge would keep `there` */
    }
    p->delta += !(row->flags & STORE_ROW_TOMBSTONE);
    p->delta -= there != NULL && !(there->flags & STORE_ROW_TOMBSTONE);
    return 0;
}

uint64_t store_table_rows_after_merge_live(const struct store_table *table,
                                           const struct store_table *source) {
    struct preview_arg p = {table, 0};
    if (store_schema_same_layout(source->schema, table->schema)) {
        _foreach_live(source, _preview_one, &p);
    }
    int64_t rows = (int64_t)atomic_load_explicit(&table->rows, memory_order_relaxed) + p.delta;
    return rows > 0 ? (uint64_t)rows : 0;
}

/* ---- sealing: mean defaults --------------------------------------------------------------- */

struct mean_acc {
    const struct store_schema *schema;
    double *sum; /* Neumaier-compensated sums: long snapshots must not drift */
    double *compensation;
    uint64_t *count;
};

static void _accumulate(double *sum, double *comp, double x) {
    double t = *sum + x;
    if (fabs(*sum) >= fabs(x)) {
        *comp += (*sum - t) + x;
    } else {
        *comp += (x - t) + *sum;
    }
    *sum = t;
}

static void _mean_visit(const struct store_row *row, void *arg) {
    struct mean_acc *acc = arg;
    const struct store_schema *schema = acc->schema;
    for (uint32_t i = 0; i < schema->nfeatures; i++) {
        if (schema->features[i].default_kind != STORE_DEFAULT_MEAN ||
            store_row_is_null(schema, row, i)) {
            continue;
        }
        struct store_value v;
        store_row_get(schema, row, i, &v);
        double x = v.type == STORE_TYPE_INT32   ? (double)v.i32
                   : v.type == STORE_TYPE_INT64 ? (double)v.i64
                   : v.type == STORE_TYPE_FLOAT ? (double)v.f32
                                                : v.f64;
        if (isfinite(x)) {
            _accumulate(&acc->sum[i], &acc->compensation[i], x);
            acc->count[i]++;
        }
    }
}

void store_table_seal(struct store_table *table) {
    const struct store_schema *schema = table->schema;
    bool any_mean = false;
    for (uint32_t i = 0; i < schema->nfeatures; i++) {
        any_mean |= schema->features[i].default_kind == STORE_DEFAULT_MEAN;
    }
    if (!any_mean) {
        return;
    }
    size_t n = schema->nfeatures;
    struct mean_acc acc = {schema, calloc(n, sizeof(double)), calloc(n, sizeof(double)),
                           calloc(n, sizeof(uint64_t))};
    if (acc.sum != NULL && acc.compensation != NULL && acc.count != NULL) {
        store_table_foreach(table, _mean_visit, &acc);
        for (uint32_t i = 0; i < n; i++) {
            if (schema->features[i].default_kind != STORE_DEFAULT_MEAN) {
                continue;
            }
            /* An empty snapshot has no mean; zero is the only neutral answer left. */
            double mean = acc.count[i] ? (acc.sum[i] + acc.compensation[i]) / acc.count[i] : 0;
            struct store_value *d = &table->defaults[i];
            switch (d->type) {
            case STORE_TYPE_INT32:
                d->i32 = (int32_t)llround(mean);
                break;
            case STORE_TYPE_INT64:
                d->i64 = (int64_t)llround(mean);
                break;
            case STORE_TYPE_FLOAT:
                d->f32 = (float)mean;
                break;
            default:
                d->f64 = mean;
                break;
            }
        }
    }
    free(acc.sum);
    free(acc.compensation);
    free(acc.count);
}

void store_table_foreach(const struct store_table *table,
                         void (*fn)(const struct store_row *row, void *arg), void *arg) {
    for (uint32_t s = 0; s < table->nshards; s++) {
        const struct store_index *index =
            atomic_load_explicit(&table->shards[s].index, memory_order_acquire);
        for (uint32_t i = 0; i < index->capacity; i++) {
            uint64_t slot = atomic_load_explicit(&index->slots[i], memory_order_acquire);
            if (slot > SLOT_DELETED && !(_slot_row(slot)->flags & STORE_ROW_TOMBSTONE)) {
                fn(_slot_row(slot), arg);
            }
        }
    }
}

/* ---- expiry ------------------------------------------------------------------------------- */

/* Empties slot `pos`; if the next slot is empty no probe passes through it, so it can be
 * truly empty, and so can deleted slots just before it. Shard lock. */
static void _slot_clear(struct store_shard *shard, struct store_index *index, uint32_t pos) {
    uint32_t cap = index->capacity;
    uint32_t next = pos + 1 == cap ? 0 : pos + 1;
    if (atomic_load_explicit(&index->slots[next], memory_order_relaxed) != SLOT_EMPTY) {
        atomic_store_explicit(&index->slots[pos], SLOT_DELETED, memory_order_release);
        shard->deleted++;
        return;
    }
    atomic_store_explicit(&index->slots[pos], SLOT_EMPTY, memory_order_release);
    for (uint32_t p = pos == 0 ? cap - 1 : pos - 1;
         atomic_load_explicit(&index->slots[p], memory_order_relaxed) == SLOT_DELETED;
         p = p == 0 ? cap - 1 : p - 1) {
        atomic_store_explicit(&index->slots[p], SLOT_EMPTY, memory_order_release);
        shard->deleted--;
    }
}

static bool _expired(const struct store_table *table, const struct store_row *row, int64_t now_us,
                     int64_t grace_us) {
    if (row->flags & STORE_ROW_TOMBSTONE) {
        return now_us - row->event_ts_us > grace_us;
    }
    int64_t ttl = table->schema->ttl_us;
    return ttl > 0 && now_us - row->event_ts_us > ttl + grace_us;
}

uint64_t store_table_sweep(struct store_table *table, int64_t now_us, int64_t grace_us,
                           uint64_t max_slots) {
    uint64_t removed = 0;
    while (max_slots > 0) {
        struct store_shard *shard = &table->shards[table->sweep_shard];
        pthread_mutex_lock(&shard->lock);
        struct store_index *index = atomic_load_explicit(&shard->index, memory_order_relaxed);
        uint32_t pos = table->sweep_slot;
        for (; pos < index->capacity && max_slots > 0; pos++, max_slots--) {
            uint64_t slot = atomic_load_explicit(&index->slots[pos], memory_order_relaxed);
            if (slot <= SLOT_DELETED || !_expired(table, _slot_row(slot), now_us, grace_us)) {
                continue;
            }
            const struct store_row *row = _slot_row(slot);
            _slot_clear(shard, index, pos);
            shard->occupied--;
            _add((row->flags & STORE_ROW_TOMBSTONE) ? &table->tombstones : &table->rows, -1);
            _row_retire(table, shard, row);
            removed++;
        }
        bool shard_done = pos >= index->capacity;
        if (shard_done && shard->deleted > index->capacity / 4) {
            _shard_rebuild(table, shard, _capacity_for(shard->occupied, TARGET_LOAD_PERCENT));
        }
        pthread_mutex_unlock(&shard->lock);
        if (!shard_done) {
            table->sweep_slot = pos;
            break;
        }
        table->sweep_slot = 0;
        table->sweep_shard = (table->sweep_shard + 1) & table->shard_mask;
        if (table->sweep_shard == 0) {
            break; /* one full pass per call at most */
        }
    }
    return removed;
}

void store_table_stats(const struct store_table *table, struct store_table_stats *stats) {
    stats->rows = atomic_load_explicit(&table->rows, memory_order_relaxed);
    stats->tombstones = atomic_load_explicit(&table->tombstones, memory_order_relaxed);
    stats->memory_bytes = atomic_load_explicit(&table->memory_bytes, memory_order_relaxed);
    stats->dead_bytes = atomic_load_explicit(&table->dead_bytes, memory_order_relaxed);
}
