#pragma once
/*
 * The config file: option sections, feature views and feature services, read from YAML with
 * libyaml and checked completely before the program uses any of it.
 *
 *   server:, store:,   the sections of the option table the caller gives (common/options.h):
 *   materializer:      each key is one module's option, set in the config's block of values
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
#include "materializer/snapshot/snapshot.h"
#include "materializer/stream/stream.h"
#include "common/options.h"
#include "store/schema.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_MAX_ERRORS 50
#define CONFIG_ERR_LEN    16384          /* enough for CONFIG_MAX_ERRORS lines; a good err_len */
#define CONFIG_MAX_NAME   STORE_MAX_NAME /* bytes in a view, feature, join key or service name */

/*
 * One view: its schema (the store's), what its snapshot loads are made of (the materializer's
 * snapshot module) and the stream it follows (the materializer's stream module). The config
 * owns all of it; the modules copy what they keep.
 */
struct config_view {
    struct store_schema *schema;     /* owned; finalized; its name is the view's name */
    struct mat_view_config snapshot; /* name, source, refresh_interval, incremental, contract */
    struct mat_stream_config stream; /* stream.enabled: the view has a stream: section */
    /* The Feast push source the view takes rows from (Feast's POST /push names it); "" for
     * none. Views may share one: a push writes each of them. */
    char push_source[CONFIG_MAX_NAME + 1];
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
    char *path;                /* owned; as given to config_load() */
    void *options;             /* owned; the option table's block of values; NULL without a table */
    struct config_view *views; /* owned, nviews of them, in file order */
    size_t nviews;
    /* views[i].snapshot and views[i].stream, as the materializer's setup calls take them */
    const struct mat_view_config **snapshots;
    const struct mat_stream_config **streams;
    struct config_service *services; /* owned */
    size_t nservices;
};

/*
 * Reads and checks the config file at `path`. The option sections are those of `options`,
 * whose values the config holds in its block (config->options); with `options` NULL they are
 * another program's and are skipped unread (fsd-materialize reads only the views). On success
 * returns 0 and a config the caller owns (config_destroy). On failure returns -1, sets *out
 * to NULL and writes every error, one per line, into `err` (CONFIG_ERR_LEN is a good size;
 * lines that do not fit are dropped). Reads the file; does not touch anything else.
 */
int config_load(const char *path, const struct option_table *options, struct fsd_config **out,
                char *err, size_t err_len);

/* Like config_load(), from memory; `name` stands for the file name in messages. */
int config_parse(const char *name, const char *yaml, size_t yaml_len,
                 const struct option_table *options, struct fsd_config **out, char *err,
                 size_t err_len);

void config_destroy(struct fsd_config *config);

/* Returns the view or service with that name, or NULL. */
const struct config_view *config_find_view(const struct fsd_config *config, const char *name);
const struct config_service *config_find_service(const struct fsd_config *config, const char *name);

/*
 * `fsd --print-reference-config`: the option sections of `options`, then a commented example
 * of views and feature services. With the daemon's table the output is configs/reference.yaml
 * and passes --check-config.
 */
void config_print_reference(const struct option_table *options, FILE *out);
