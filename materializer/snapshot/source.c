/* A view's source as the config describes it: names, copies, freeing (snapshot.h). */
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"

const char *mat_source_type_name(enum mat_source_type type) {
    switch (type) {
    case MAT_SOURCE_NONE:
        return "none";
    case MAT_SOURCE_PARQUET:
        return "parquet";
    case MAT_SOURCE_POSTGRES:
        return "postgres";
    }
    return "?";
}

void mat_source_deinit(struct mat_source *source) {
    free(source->path);
    free(source->dsn);
    free(source->table);
    free(source->query);
    free(source->event_timestamp_column);
    free(source->created_timestamp_column);
    memset(source, 0, sizeof(*source));
}

static char *_dup(const char *s, bool *ok) {
    if (s == NULL) {
        return NULL;
    }
    char *copy = strdup(s);
    *ok &= copy != NULL;
    return copy;
}

static void _resolve(int64_t *value, int64_t fallback) {
    if (*value == MAT_TIMEOUT_UNSET) {
        *value = fallback;
    }
}

void mat_source_timeouts_resolve(struct mat_source_timeouts *t,
                                 const struct mat_source_timeouts *defaults) {
    if (defaults == NULL) {
        defaults = mat_default_timeouts();
    }
    _resolve(&t->load_us, defaults->load_us);
    _resolve(&t->connect_us, defaults->connect_us);
    _resolve(&t->statement_us, defaults->statement_us);
    _resolve(&t->read_us, defaults->read_us);
    _resolve(&t->tcp_user_us, defaults->tcp_user_us);
}

int mat_source_copy(struct mat_source *dst, const struct mat_source *src) {
    bool ok = true;
    *dst = (struct mat_source){
        .type = src->type,
        .timeouts = src->timeouts,
        .path = _dup(src->path, &ok),
        .dsn = _dup(src->dsn, &ok),
        .table = _dup(src->table, &ok),
        .query = _dup(src->query, &ok),
        .event_timestamp_column = _dup(src->event_timestamp_column, &ok),
        .created_timestamp_column = _dup(src->created_timestamp_column, &ok),
    };
    if (!ok) {
        mat_source_deinit(dst);
        return -1;
    }
    return 0;
}
