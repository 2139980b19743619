#pragma once
/*
 * Options declared once. Every option of the config file's plain sections (`server:`, `store:`,
 * `materializer:`) is one row of a table in options.c: section, name, type, default, bounds,
 * whether it may change on reload, and a description. The YAML loader, `fsd --help-config` and
 * `fsd --print-reference-config` (which generates configs/reference.yaml) all read that table,
 * so they cannot disagree.
 *
 * Values live in a plain struct so code reads `values->server.grpc_port`, not a lookup by
 * name; each table row records where its value lives (offset and C type checked at compile
 * time).
 *
 * Text forms (the same for defaults, the config file and the reference config):
 *   bool      true | false
 *   uint      decimal digits, no sign
 *   duration  0, 500ms, 30s, 5m, 24h, 7d, or bare digits meaning seconds
 *   size      4MiB, 512KiB, 1GiB, 100B, or bare digits meaning bytes
 *   string    any scalar
 *   enum      one of the listed words
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- values ------------------------------------------------------------------------------ */

/* server: where the daemon listens and how it bounds requests. */
struct option_server {
    char *grpc_bind; /* owned */
    uint32_t grpc_port;
    char *stats_bind; /* owned */
    uint32_t stats_port;
    char *stats_token; /* owned; "" = the stats port asks for no token */
    uint32_t workers;  /* 0 = one per core */
    uint32_t max_batch;
    uint64_t max_message_bytes;
    uint32_t default_budget_us;
    int log_level; /* enum log_level */
};

/*
 * store: passed to the store as plain numbers (the store does not include daemon headers; the
 * daemon copies these into the store's own options struct).
 */
struct option_store {
    uint32_t shards; /* power of two */
    uint32_t sweep_interval_ms;
    int64_t expiry_grace_us;
};

/* materializer: how snapshot loads use the machine; copied into struct mat_options. */
struct option_materializer {
    uint32_t duckdb_threads; /* 0 = cores - workers - 1, at least 1 (daemon/main.c) */
    uint32_t nice;           /* of the load thread and its DuckDB threads */
};

struct option_values {
    struct option_server server;
    struct option_store store;
    struct option_materializer materializer;
};

/* ---- the table --------------------------------------------------------------------------- */

enum option_type {
    OPTION_BOOL,     /* bool */
    OPTION_UINT,     /* uint32_t */
    OPTION_DURATION, /* int64_t, microseconds */
    OPTION_SIZE,     /* uint64_t, bytes */
    OPTION_STRING,   /* char *, owned by the values struct */
    OPTION_ENUM,     /* int, the index of the word in `choices` */
};

#define OPTION_RELOADABLE   (1u << 0) /* may change on SIGHUP without a restart */
#define OPTION_POWER_OF_TWO (1u << 1) /* uint only */

struct option_def {
    const char *name;
    enum option_type type;
    const char *default_text; /* in the text form above; parsed exactly like a config value */
    /* Inclusive bounds: uint and size in their unit, duration in microseconds, string in bytes
     * of length. Unused for bool and enum. */
    uint64_t min, max;
    const char *const *choices; /* enum only: NULL-terminated */
    uint32_t flags;
    size_t offset; /* of the value in struct option_values */
    const char *description;
};

struct option_section {
    const char *name;
    const char *description;
    const struct option_def *defs;
    size_t ndefs;
};

extern const struct option_section option_sections[];
extern const size_t option_nsections;

/* Returns the section or option with that name, or NULL. */
const struct option_section *option_section_find(const char *name);
const struct option_def *option_def_find(const struct option_section *section, const char *name);

/* ---- values lifecycle -------------------------------------------------------------------- */

/* Fills `values` with every option's default. Fails only when out of memory. */
int option_values_init(struct option_values *values, char *err, size_t err_len);
/* Frees the strings `values` owns. Safe on a zeroed struct and after a failed init. */
void option_values_deinit(struct option_values *values);

/*
 * Parses `text` as option `def` and stores it in `values`, replacing the old value. On error
 * returns -1, leaves the old value in place, and writes a message that quotes `text` and the
 * expected form or bounds (but not the option's name: the caller knows where it came from).
 */
int option_set(struct option_values *values, const struct option_def *def, const char *text,
               char *err, size_t err_len);

/* Writes the current value of `def` in its text form (as the config file would spell it). */
void option_format(const struct option_values *values, const struct option_def *def, char *buf,
                   size_t buf_len);

/*
 * For a reload: returns 0 when `next` differs from `current` only in reloadable options, else
 * -1 with `err` naming every option that would need a restart ("server.grpc_port: 6566 ->
 * 7000; ...").
 */
int option_reload_check(const struct option_values *current, const struct option_values *next,
                        char *err, size_t err_len);

/* ---- text forms shared with the config loader -------------------------------------------- */

/* Parse a duration/size text form; -1 with `err` set on bad syntax or overflow. */
int option_parse_duration(const char *text, int64_t *us, char *err, size_t err_len);
int option_parse_size(const char *text, uint64_t *bytes, char *err, size_t err_len);
/* The shortest exact text form: 0, 500ms, 90s, 24h, 7d, 4MiB, 1000B... */
void option_format_duration(int64_t us, char *buf, size_t buf_len);
void option_format_size(uint64_t bytes, char *buf, size_t buf_len);

/* ---- documentation ----------------------------------------------------------------------- */

/* `fsd --help-config`: every option with type, default, bounds, reloadable and description. */
void option_print_help(FILE *out);

/* The sections part of configs/reference.yaml: every option set to its default, commented. */
void option_print_reference(FILE *out);
