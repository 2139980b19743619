#pragma once
/*
 * A lookup's plan, shared by the APIs that look features up (fsd's GetFeatures, Feast's
 * GetOnlineFeatures): the requested refs resolved into columns grouped by view, the entity
 * key columns checked and encoded per view, then every view's entities looked up in one
 * batch. Each API decodes its own request into refs and key columns and writes its own
 * response from the plan. Worker threads, inside one RCU read section from planning to the
 * response, so the answer comes from one snapshot of each view.
 *
 *   refs ──plan_add_ref / plan_add_service──> columns [view, feature]
 *   key columns ──plan_set_keys──> N entities ──plan_encode_keys──> keys per view
 *   plan_lookup ──> rows per view ──the API's writer──> response
 */
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "daemon/grpc/grpc.h"
#include "rpc_stats.h"
#include "store/row.h"
#include "store/schema.h"

struct fsd_config;
struct rpc_worker;
struct store_row;
struct store_table;
struct store_view;

/* Refs and key columns one request may name: a bound on the work before any lookup. */
#define PLAN_MAX_REFS        4096
#define PLAN_MAX_KEY_COLUMNS 64

/* One column of entity keys as a request gave it: int64 or string values, n of them. */
struct plan_key_column {
    const char *name;
    size_t n;
    const int64_t *i64;             /* int64 keys, or NULL */
    const ProtobufCBinaryData *str; /* string keys, or NULL */
};

struct plan_view {
    struct store_view *view;
    const struct store_schema *schema;
    uint8_t *planned; /* [nfeatures]: 1 once a column of the feature is in the plan */
    struct store_table *table;
    struct store_key *keys;
    const struct store_row **rows;
};

struct plan_column {
    uint32_t view; /* index into plan.views */
    uint32_t feature;
};

struct plan {
    struct plan_view *views;
    uint32_t nviews;
    uint32_t views_cap;
    struct plan_column *columns;
    uint32_t ncolumns;
    uint32_t columns_cap;
    size_t n; /* entities */
    const struct plan_key_column *keys;
    size_t nkeys;
};

struct plan_error {
    enum grpc_code code;
    char message[512];
    /* The exception Feast's servers raise for the same mistake ("FeatureViewNotFoundException"),
     * named in Feast's HTTP error bodies; NULL when Feast has none of its own. */
    const char *feast_class;
};

/* Sets the error (no Feast class); returns -1. */
int plan_error(struct plan_error *e, enum grpc_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Names the error's Feast exception; returns -1. */
int plan_error_feast(struct plan_error *e, const char *feast_class);

/* Adds the columns of one "view:feature" or "view:*" ref (a feature asked for twice is served
 * once). Returns 0, or -1 with `e` set (INVALID_ARGUMENT naming the ref). */
int plan_add_ref(struct arena *a, struct plan *p, const char *ref, struct plan_error *e);
/* Adds the columns of a feature service of `config` (NOT_FOUND when there is none). */
int plan_add_service(struct arena *a, struct plan *p, const struct fsd_config *config,
                     const char *name, struct plan_error *e);

/* Takes the request's key columns (kept, not copied): they must agree on the entity count,
 * at most `max_batch`, and not repeat a name. Returns 0, or -1 with `e` set. */
int plan_set_keys(struct plan *p, const struct plan_key_column *keys, size_t nkeys,
                  uint32_t max_batch, struct plan_error *e);

/* UNAVAILABLE when a planned view with a source has no snapshot yet (and is not
 * serve_before_ready). */
int plan_check_ready(const struct plan *p, const struct fsd_config *config, struct plan_error *e);

/* Encodes every planned view's N entity keys from the key columns its join keys name. */
int plan_encode_keys(struct arena *a, struct plan *p, struct plan_error *e);

/* Looks every view's entities up (plan.views[v].rows). */
void plan_lookup(struct plan *p);

/* Counts, per view, the entities looked up and not found and the staleness of the rows
 * found, in the worker's counters; vc[v] gets the view's counters (NULL when it has none). */
void plan_count_lookups(struct rpc_worker *wk, const struct plan *p, int64_t now_us,
                        struct rpc_view_counters **vc);

/* now - event time, without overflow whatever a source stored. */
int64_t plan_age_us(int64_t now_us, int64_t event_ts_us);

/* The fallback a status other than present counts as. */
enum rpc_fallback_reason plan_fallback_reason(enum store_status status);
