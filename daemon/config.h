#pragma once
/*
 * The config file: option sections (see options.h), feature views and feature services, read
 * from YAML with libyaml and checked completely before the daemon uses any of it.
 *
 *   server:            options (options.h)
 *   store:             options (options.h)
 *   views:             [ view, ... ]     -> struct config_view, each with a finalized schema
 *   feature_services:  [ service, ... ]  -> struct config_service, references resolved
 *
 * Every error names the file, the line and the field path, e.g.
 *   configs/x.yaml:12: views[0].features[2].type: unknown type "flaot" (expected int32, ...)
 * and loading goes on after an error so that one run reports all of them (up to
 * CONFIG_MAX_ERRORS).
 *
 * Ownership: a struct fsd_config owns everything it points to; config_destroy() frees it all.
 * Nothing in it is shared with the store: the daemon hands the store clones of the schemas.
 */
#include "options.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct store_schema;

#define CONFIG_MAX_ERRORS 50
#define CONFIG_ERR_LEN    16384 /* enough for CONFIG_MAX_ERRORS lines; a good err_len */
#define CONFIG_MAX_NAME   128   /* bytes in a view, feature, join key or service name */

enum config_source_type {
    CONFIG_SOURCE_NONE, /* no source: rows only arrive by other means (push, later issues) */
    CONFIG_SOURCE_PARQUET,
    CONFIG_SOURCE_POSTGRES,
};

/* Where the materializer reads a view from. Strings are owned; absent ones are NULL. */
struct config_source {
    enum config_source_type type;
    char *path;  /* parquet: a file, a glob or a directory */
    char *dsn;   /* postgres: libpq connection string; NULL = the PG* environment variables */
    char *table; /* postgres: exactly one of table and query */
    char *query;
    char *event_timestamp_column;   /* required when there is a source */
    char *created_timestamp_column; /* optional tie-breaker between equal event timestamps */
};

/* A feature's data-contract checks: `contract.features.<name>: { max_null_rate, range }`. */
struct config_feature_check {
    uint32_t feature;     /* index in the view's schema */
    double max_null_rate; /* 0..1: share of the snapshot's entities with a null value; 1 = any */
    bool has_range;       /* numeric features: every present value in [range_min, range_max] */
    double range_min;
    double range_max;
};

/*
 * What a new snapshot must satisfy before it replaces the live one (the materializer checks
 * it). The defaults check nothing but the rule every view has: no null entity keys. A fixed
 * array keeps the config free of another allocation; few features carry checks.
 */
#define CONFIG_MAX_CHECKED_FEATURES 64
struct config_contract {
    uint64_t min_rows;           /* 0 = no minimum */
    double max_row_drop_percent; /* vs the live snapshot's rows, 0..100; 100 = no limit */
    uint32_t nfeatures;
    struct config_feature_check features[CONFIG_MAX_CHECKED_FEATURES];
};

/*
 * A Redis stream the view follows (`stream:`; the materializer's stream consumer reads it).
 * Fixed arrays, like the contract's, so config_destroy() needs to know nothing of it; values
 * longer than these are config errors.
 */
#define CONFIG_STREAM_HOST_LEN   256
#define CONFIG_STREAM_SECRET_LEN 256 /* user and password of redis://user:password@host */
#define CONFIG_STREAM_KEY_LEN    512
#define CONFIG_STREAM_FIELD_LEN  CONFIG_MAX_NAME
#define CONFIG_STREAM_ID_LEN     48 /* "<ms>-<seq>": two 20-digit numbers and a dash */

#define CONFIG_STREAM_DEFAULT_PORT      6379
#define CONFIG_STREAM_DEFAULT_START     "$"
#define CONFIG_STREAM_DEFAULT_EVENT_TS  "event_ts"
#define CONFIG_STREAM_DEFAULT_ROW_FIELD "row"
#define CONFIG_STREAM_DEFAULT_BATCH     1000
#define CONFIG_STREAM_MAX_BATCH         100000
#define CONFIG_STREAM_DEFAULT_BLOCK_MS  1000
#define CONFIG_STREAM_MAX_BLOCK_MS      60000
#define CONFIG_STREAM_DELETE_FIELD      "__delete" /* fields format: the entry is a tombstone */

enum config_stream_format {
    CONFIG_STREAM_FIELDS,   /* one field per join key, timestamp and feature, values as text */
    CONFIG_STREAM_PROTOBUF, /* one field (row_field) holding an encoded fsd.v1.Row */
};

enum config_stream_start {
    CONFIG_STREAM_START_NEW,     /* "$": entries added after fsd first connects */
    CONFIG_STREAM_START_ALL,     /* "0": every entry still in the stream */
    CONFIG_STREAM_START_AFTER,   /* an entry ID: the entries after it */
    CONFIG_STREAM_START_SNAPSHOT /* "snapshot": after the ID recorded with the view's snapshot,
                                    once it has one (PushSnapshot/LoadSnapshot stream_position) */
};

struct config_stream {
    bool enabled; /* the view has a stream: section */
    char host[CONFIG_STREAM_HOST_LEN];
    uint16_t port;
    uint32_t db;
    char user[CONFIG_STREAM_SECRET_LEN];     /* "" = AUTH with the password alone */
    char password[CONFIG_STREAM_SECRET_LEN]; /* "" = no AUTH; never logged */
    char key[CONFIG_STREAM_KEY_LEN];
    enum config_stream_format format;
    enum config_stream_start start;
    uint64_t start_ms, start_seq; /* CONFIG_STREAM_START_AFTER: the entry ID */
    char event_timestamp_field[CONFIG_STREAM_FIELD_LEN];   /* fields format */
    char created_timestamp_field[CONFIG_STREAM_FIELD_LEN]; /* fields format; "" = none */
    char row_field[CONFIG_STREAM_FIELD_LEN];               /* protobuf format */
    uint32_t batch;                                        /* XREAD COUNT */
    uint32_t block_ms;                                     /* XREAD BLOCK */
};

struct config_view {
    struct store_schema *schema; /* owned; finalized; its name is the view's name */
    struct config_source source;
    struct config_stream stream;
    int64_t refresh_interval_us; /* 0 = materialize only on demand */
    bool incremental;            /* load only rows newer than the watermark into the live table */
    struct config_contract contract;
    uint32_t line; /* where the view starts in the file, for later messages */
};

/* One feature a service serves: indexes into fsd_config.views and that view's features. */
struct config_feature_ref {
    uint32_t view;
    uint32_t feature;
};

struct config_service {
    char *name;                          /* owned */
    struct config_feature_ref *features; /* owned; "view:*" expanded, in the order written */
    uint32_t nfeatures;
};

struct fsd_config {
    char *path; /* owned; as given to config_load() */
    struct option_values options;
    struct config_view *views; /* owned, nviews of them, in file order */
    size_t nviews;
    struct config_service *services; /* owned */
    size_t nservices;
};

/*
 * Reads and checks the config file at `path`. On success returns 0 and a config the caller
 * owns (config_destroy). On failure returns -1, sets *out to NULL and writes every error, one
 * per line, into `err` (CONFIG_ERR_LEN is a good size; lines that do not fit are dropped).
 * Reads the file; does not touch anything else.
 */
int config_load(const char *path, struct fsd_config **out, char *err, size_t err_len);

/* Like config_load(), from memory; `name` stands for the file name in messages. */
int config_parse(const char *name, const char *yaml, size_t yaml_len, struct fsd_config **out,
                 char *err, size_t err_len);

void config_destroy(struct fsd_config *config);

/* Returns the view or service with that name, or NULL. */
const struct config_view *config_find_view(const struct fsd_config *config, const char *name);
const struct config_service *config_find_service(const struct fsd_config *config, const char *name);

const char *config_source_type_name(enum config_source_type type); /* "none", "parquet", ... */
const char *config_stream_format_name(enum config_stream_format format); /* "fields", ... */

/*
 * `fsd --print-reference-config`: the option sections from the option table, then a commented
 * example of views and feature services. The output is configs/reference.yaml and passes
 * --check-config.
 */
void config_print_reference(FILE *out);
