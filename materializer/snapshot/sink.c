/* The row sink (sink.h): source rows -> latest row per entity in a table being built. */
#include "sink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/catalog.h"
#include "store/key.h"
#include "store/row.h"
#include "store/schema.h"
#include "store/table.h"

struct mat_sink {
    const struct store_schema *schema;
    struct store_table *table; /* a snapshot being built, or NULL ... */
    struct store_view *view;   /* ... for a live sink, which writes through the view */
    int64_t now_us;
    /* the row under construction */
    int64_t event_ts_us;
    bool key_null;
    struct store_key_part parts[STORE_MAX_JOIN_KEYS];
    uint32_t key_str_len[STORE_MAX_JOIN_KEYS];
    /* String key parts are copied: a source may reuse its buffer before the row ends. */
    char key_str[STORE_MAX_JOIN_KEYS][STORE_MAX_KEY_BYTES];
    uint8_t key_buf[STORE_MAX_KEY_BYTES];
    struct store_row_builder builder;
    struct mat_sink_stats stats;
    char error[512];
};

static struct mat_sink *_create(const struct store_schema *schema, int64_t now_us) {
    struct mat_sink *sink = calloc(1, sizeof(*sink));
    if (sink == NULL) {
        return NULL;
    }
    sink->schema = schema;
    sink->now_us = now_us;
    sink->stats.max_event_ts_us = INT64_MIN;
    sink->stats.feature_nulls = calloc(schema->nfeatures + 1, sizeof(uint64_t));
    if (sink->stats.feature_nulls == NULL || store_row_builder_init(&sink->builder, schema) != 0) {
        free(sink->stats.feature_nulls);
        free(sink);
        return NULL;
    }
    return sink;
}

struct mat_sink *mat_sink_create(const struct store_schema *schema, struct store_table *table,
                                 int64_t now_us) {
    struct mat_sink *sink = _create(schema, now_us);
    if (sink != NULL) {
        sink->table = table;
    }
    return sink;
}

struct mat_sink *mat_sink_create_live(const struct store_schema *schema, struct store_view *view,
                                      int64_t now_us) {
    struct mat_sink *sink = _create(schema, now_us);
    if (sink != NULL) {
        sink->view = view;
    }
    return sink;
}

void mat_sink_destroy(struct mat_sink *sink) {
    if (sink == NULL) {
        return;
    }
    store_row_builder_deinit(&sink->builder);
    free(sink->stats.feature_nulls);
    free(sink);
}

void mat_sink_begin_row(struct mat_sink *sink, int64_t event_ts_us, int64_t created_ts_us) {
    sink->event_ts_us = event_ts_us;
    sink->key_null = false;
    store_row_builder_reset(&sink->builder, event_ts_us, created_ts_us);
}

void mat_sink_key_int64(struct mat_sink *sink, uint32_t key_index, int64_t value) {
    struct store_key_part *part = &sink->parts[key_index];
    part->type = STORE_KEY_INT64;
    part->i64 = value;
}

void mat_sink_key_string(struct mat_sink *sink, uint32_t key_index, const char *value,
                         uint32_t len) {
    struct store_key_part *part = &sink->parts[key_index];
    part->type = STORE_KEY_STRING;
    /* A part longer than a whole key cannot encode; keep the length so the encoder says so. */
    uint32_t copy = len < STORE_MAX_KEY_BYTES ? len : STORE_MAX_KEY_BYTES;
    memcpy(sink->key_str[key_index], value, copy);
    part->str = sink->key_str[key_index];
    part->str_len = copy;
    sink->key_str_len[key_index] = len;
}

void mat_sink_key_null(struct mat_sink *sink, uint32_t key_index) {
    (void)key_index;
    sink->key_null = true;
}

struct store_row_builder *mat_sink_values(struct mat_sink *sink) {
    return &sink->builder;
}

int mat_sink_end_row(struct mat_sink *sink) {
    const struct store_schema *schema = sink->schema;
    struct mat_sink_stats *stats = &sink->stats;
    stats->rows_read++;
    if (sink->key_null) {
        stats->null_keys++;
        return 0;
    }
    if (sink->event_ts_us > sink->now_us) {
        stats->skipped_future++;
        return 0;
    }
    /* The same test the store serves by (store_row_status), so a kept row is never stale. */
    if (schema->ttl_us > 0 && sink->now_us - sink->event_ts_us > schema->ttl_us) {
        stats->skipped_expired++;
        return 0;
    }
    for (uint32_t k = 0; k < schema->nkeys; k++) {
        if (schema->keys[k].type == STORE_KEY_STRING &&
            sink->key_str_len[k] >= STORE_MAX_KEY_BYTES) {
            snprintf(sink->error, sizeof sink->error,
                     "view %s: join key %s is %u bytes, longer than a key may be (%d)",
                     schema->view, schema->keys[k].name, sink->key_str_len[k], STORE_MAX_KEY_BYTES);
            return -1;
        }
    }
    char why[256];
    int len =
        store_key_encode(schema, sink->parts, sink->key_buf, sizeof sink->key_buf, why, sizeof why);
    if (len < 0) {
        snprintf(sink->error, sizeof sink->error, "view %s: %s", schema->view, why);
        return -1;
    }
    struct store_key key = {sink->key_buf, (uint32_t)len,
                            store_key_hash(sink->key_buf, (uint32_t)len)};
    enum store_upsert_result result =
        sink->view != NULL ? store_view_upsert_sourced(sink->view, &key, &sink->builder)
                           : store_table_upsert(sink->table, &key, &sink->builder);
    switch (result) {
    case STORE_UPSERT_INSERTED:
    case STORE_UPSERT_REPLACED:
        stats->rows_kept++;
        if (sink->event_ts_us > stats->max_event_ts_us) {
            stats->max_event_ts_us = sink->event_ts_us;
        }
        for (uint32_t i = 0; i < schema->nfeatures; i++) {
            stats->feature_nulls[i] += (sink->builder.nulls[i >> 3] >> (i & 7)) & 1;
        }
        return 0;
    case STORE_UPSERT_NOT_NEWER:
        stats->rows_superseded++;
        return 0;
    default:
        snprintf(sink->error, sizeof sink->error,
                 "view %s: out of memory storing a row (or the row is over 4 GiB)", schema->view);
        return -1;
    }
}

const char *mat_sink_error(const struct mat_sink *sink) {
    return sink->error;
}

const struct mat_sink_stats *mat_sink_stats(const struct mat_sink *sink) {
    return &sink->stats;
}
