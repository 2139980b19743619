/*
 * Replaying the log into the catalog at start: each batch goes to its view if the view is
 * still configured with the layout the rows were written for.
 */
#include "wal_internal.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/errors.h"
#include "common/log.h"
#include "store/catalog.h"
#include "store/rcu.h"
#include "store/row.h"

struct into_catalog {
    struct store_catalog *catalog;
    uint64_t *fingerprints;       /* per view index */
    const uint64_t *skip_through; /* per view index, or NULL */
    bool *warned;                 /* per view index: its "layout changed" line was logged */
    uint64_t rows;
    char unknown_view[STORE_MAX_NAME + 1]; /* the last unknown view logged, to log it once */
};

/* A read section per batch, not per replay: rows replaced meanwhile are freed as it goes. */
static enum wal_replay_outcome _apply_batch(const struct wal_batch *batch, struct into_catalog *c);

static enum wal_replay_outcome _apply(const struct wal_batch *batch, void *arg) {
    store_read_lock();
    enum wal_replay_outcome outcome = _apply_batch(batch, arg);
    store_read_unlock();
    return outcome;
}

static enum wal_replay_outcome _apply_batch(const struct wal_batch *batch, struct into_catalog *c) {
    struct store_view *view = store_catalog_find(c->catalog, wal_batch_view(batch));
    if (view == NULL) {
        if (strcmp(c->unknown_view, wal_batch_view(batch)) != 0) {
            log_warn("wal: rows of a view no longer configured are not replayed", "view=%s",
                     LOG_QUOTE(wal_batch_view(batch)));
            snprintf(c->unknown_view, sizeof c->unknown_view, "%s", wal_batch_view(batch));
        }
        return WAL_REPLAY_UNKNOWN_VIEW;
    }
    uint32_t index = store_view_index(view);
    if (c->skip_through != NULL && wal_batch_seq(batch) <= c->skip_through[index]) {
        return WAL_REPLAY_IN_CHECKPOINT;
    }
    if (wal_batch_fingerprint(batch) != c->fingerprints[index]) {
        if (!c->warned[index]) {
            log_warn("wal: the view's keys or features changed since its rows were logged; they "
                     "are not replayed (the view loads from its source)",
                     "view=%s", LOG_QUOTE(store_view_name(view)));
            c->warned[index] = true;
        }
        return WAL_REPLAY_LAYOUT_CHANGED;
    }
    const struct store_schema *schema = store_view_schema(view);
    for (size_t i = 0; i < wal_batch_rows(batch); i++) {
        const struct store_row *row = wal_batch_row(batch, i);
        /* Its record's hash checked, but a row whose own lengths disagree with the bytes it
         * came in would be read past its end: refused, as a record fsd cannot apply. */
        char why[200];
        if (store_row_check(schema, row, wal_batch_row_bytes(batch, i), why, sizeof why) != 0) {
            log_error("wal: a logged row does not check", "view=%s row=%zu error=%s",
                      LOG_QUOTE(store_view_name(view)), i, LOG_QUOTE(why));
            return WAL_REPLAY_FAILED;
        }
        if (store_view_upsert_image(view, row) == STORE_UPSERT_ERROR) {
            return WAL_REPLAY_FAILED;
        }
    }
    const char *position = wal_batch_stream_position(batch);
    if (position != NULL) {
        store_view_set_stream_applied(view, position); /* fits: parsed from the record */
    }
    c->rows += wal_batch_rows(batch);
    return WAL_REPLAY_APPLIED;
}

int64_t wal_replay_into_catalog(struct store_catalog *catalog, const uint64_t *skip_through,
                                char *err, size_t err_len) {
    size_t n = store_catalog_count(catalog);
    struct into_catalog c = {.catalog = catalog,
                             .skip_through = skip_through,
                             .fingerprints = calloc(n ? n : 1, sizeof(uint64_t)),
                             .warned = calloc(n ? n : 1, sizeof(bool))};
    if (c.fingerprints == NULL || c.warned == NULL) {
        free(c.fingerprints);
        free(c.warned);
        return errors_set(err, err_len, "wal: out of memory");
    }
    store_read_lock();
    for (size_t i = 0; i < n; i++) {
        c.fingerprints[i] =
            store_schema_layout_fingerprint(store_view_schema(store_catalog_at(catalog, i)));
    }
    store_read_unlock(); /* views live as long as the catalog; schemas do not change yet */
    int64_t started = clock_mono_us();
    uint64_t held_through = 0;
    for (size_t i = 0; skip_through != NULL && i < n; i++) {
        held_through = skip_through[i] > held_through ? skip_through[i] : held_through;
    }
    int64_t batches = wal_replay(_apply, &c, held_through, err, err_len);
    if (batches >= 0 && wal_enabled()) {
        log_info("wal: replayed", "batches=%" PRId64 " rows=%" PRIu64 " ms=%" PRId64, batches,
                 c.rows, (clock_mono_us() - started) / 1000);
    }
    free(c.fingerprints);
    free(c.warned);
    return batches;
}
