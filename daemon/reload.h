#pragma once
/*
 * SIGHUP: re-read the config file and apply what can change while serving: the log level and
 * other reloadable options, new views, new or changed feature services, and changed TTLs or
 * defaults of existing views (their tables are copied under the new schema and swapped in).
 * What cannot change without a restart (ports, workers, a view's keys or feature types,
 * removing a view) is logged and left as it was; a reload that would need it changes nothing
 * but the log level.
 */
struct fsd_config;
struct store_catalog;

/*
 * Loads `path` and applies it. On success returns the new config, which the handlers now use,
 * and destroys `current` once no handler can see it. On failure logs why and returns
 * `current` unchanged. Control thread; blocks for the table copies and a grace period.
 */
struct fsd_config *reload_config(const char *path, struct fsd_config *current,
                                 struct store_catalog *catalog);

/* Gives the stats port the summary of `config` that /status shows (and the page's gRPC
 * address). At start, once the servers listen, and after each reload. */
void reload_show_config(const struct fsd_config *config);
