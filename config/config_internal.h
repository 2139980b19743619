#pragma once
/*
 * Shared by config.c (top level, options, services), config_views.c (views) and
 * config_literal.c (default literals). Not for other modules; tests may use it.
 *
 * The loader walks a libyaml document. A struct config_ctx carries the file name, the field
 * path of the node being read ("views[0].features[2]") and the collected errors, so a helper
 * deep in the walk can report "file:line: path.key: message" and carry on.
 */
#include "config.h"
#include "store/schema.h"

#include <stdbool.h>
#include <stdint.h>
#include <yaml.h>

#define CONFIG_PATH_MAX 256

struct config_message {
    size_t line; /* 0 when the error has no place in the file */
    size_t seq;  /* order of reporting: keeps the sort by line stable */
    char *text;  /* owned */
};

struct config_ctx {
    const char *file;
    const struct option_table *options; /* NULL: option sections are not read */
    yaml_document_t *doc;
    struct fsd_config *config;
    char path[CONFIG_PATH_MAX];
    size_t path_len;
    struct config_message *errors; /* the first nstored errors; sorted by line at the end */
    size_t nstored, errors_cap;
    size_t nerrors;    /* all errors, stored or only counted */
    bool *view_broken; /* per config->views entry: it had errors, so refs to it are not checked */
};

/* ---- errors and paths -------------------------------------------------------------------- */

/*
 * Records "file:line: path[.key]: message" with the line of `node` (or no line when NULL).
 * `key` (may be NULL) is appended to the current path.
 */
__attribute__((format(printf, 4, 5))) void config_error(struct config_ctx *ctx,
                                                        const yaml_node_t *node, const char *key,
                                                        const char *fmt, ...);

/* Appends a printf-formatted segment ("views[3]", ".source") to the path; returns the length
 * to give back to config_path_pop(). */
__attribute__((format(printf, 2, 3))) size_t config_path_push(struct config_ctx *ctx,
                                                              const char *fmt, ...);
void config_path_pop(struct config_ctx *ctx, size_t len);

/* ---- reading nodes ----------------------------------------------------------------------- */

yaml_node_t *config_node(struct config_ctx *ctx, int index);

/* A plain scalar that YAML reads as null: empty, ~, null, Null, NULL. */
bool config_is_null(const yaml_node_t *node);
/* A plain (unquoted) scalar equal to `word`: how the keywords zero and mean are told apart
 * from the string literals "zero" and "mean". */
bool config_is_plain(const yaml_node_t *node, const char *word);

/*
 * Returns the text of a scalar node, or NULL after reporting an error under `key`: not a
 * scalar, empty/null, or containing a NUL byte. The text lives as long as the document.
 */
const char *config_scalar(struct config_ctx *ctx, const yaml_node_t *node, const char *key);

/*
 * Checks the keys of mapping `map`: each must be one of `allowed` (NULL-terminated) and appear
 * once. Reports every offender. Returns false (after reporting) when `map` is not a mapping.
 */
bool config_check_keys(struct config_ctx *ctx, const yaml_node_t *map, const char *const *allowed);

/* The value of `key` in mapping `map`, or NULL. When `required`, a missing key is reported. */
yaml_node_t *config_get(struct config_ctx *ctx, const yaml_node_t *map, const char *key,
                        bool required);

/* Reports and returns false unless `name` matches [A-Za-z_][A-Za-z0-9_]* and fits
 * CONFIG_MAX_NAME. */
bool config_check_name(struct config_ctx *ctx, const yaml_node_t *node, const char *key,
                       const char *name);

/* A duration under `key` (error reported, -1 returned when invalid). */
int config_duration(struct config_ctx *ctx, const yaml_node_t *node, const char *key, int64_t *us);

/* ---- parts ------------------------------------------------------------------------------- */

/* views: fills ctx->config->views and ctx->view_broken. */
void config_parse_views(struct config_ctx *ctx, const yaml_node_t *seq);

/*
 * A feature's `default:` node for a feature of `type`. On success returns 0 and sets *kind and,
 * for a literal, *literal; variable-width literal data either points into the document or into
 * *owned, which the caller frees after store_schema_set_default() has copied it.
 */
int config_default_parse(struct config_ctx *ctx, const yaml_node_t *node, enum store_type type,
                         enum store_default_kind *kind, struct store_value *literal, void **owned);
