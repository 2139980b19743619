#pragma once
/*
 * Logging: one logfmt line per event, written to stderr with a single write(2) so lines from
 * different threads never interleave.
 *
 *   ts=2026-11-22T02:42:38.123Z level=info msg="loaded config" file=configs/demo.yaml views=3
 *
 * The caller gives the message and, optionally, the remaining key=value fields as a printf
 * format. Values that may contain spaces, quotes or '=' go through LOG_QUOTE():
 *
 *   log_info("loaded config", "file=%s views=%zu", LOG_QUOTE(path), nviews);
 *   log_info("fsd ready", NULL);
 *
 * The level can change at any time from any thread (SIGHUP reload); reading it is one relaxed
 * atomic load, so a disabled log_debug() costs almost nothing.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "options.h"

enum log_level {
    LOG_DEBUG,
    LOG_INFO,
    LOG_WARN,
    LOG_ERROR,
};

#define LOG_LEVEL_DEFAULT LOG_INFO
#define LOG_LINE_MAX      4096 /* longer lines are cut and end in "..." */
#define LOG_QUOTE_MAX     512  /* longer quoted values are cut and end in "..." */

/* The config file's server.log_level (reloadable): log_set_level() takes it. */
struct log_options {
    int level; /* enum log_level */
};
extern const struct option_group log_option_group;

/* "debug", "info", "warn", "error". */
const char *log_level_name(enum log_level level);
/* Returns false when `name` is not one of the level names. */
bool log_level_parse(const char *name, enum log_level *out);

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
static inline bool log_enabled(enum log_level level);

/* Where lines go: stderr (fd 2) unless changed. For tests; not thread-safe with writers. */
void log_set_fd(int fd);

/*
 * Writes `ts=... level=... msg=<msg> <fields>` and a newline in one write(2), or nothing when
 * `level` is below the current level. `msg` is quoted when it needs to be; `fields_fmt` (may be
 * NULL) is a printf format whose values the caller quotes with LOG_QUOTE() where needed.
 * Thread-safe; never allocates; blocks only as long as write(2) to stderr does.
 */
__attribute__((format(printf, 3, 4))) void log_write(enum log_level level, const char *msg,
                                                     const char *fields_fmt, ...);

#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

/*
 * Writes `value` into `buf` as a logfmt value and returns `buf`: unchanged when it has no
 * space, quote, '=', backslash or control character and is not empty; otherwise in double
 * quotes with \" \\ \n \r \t and \xNN escapes. A NULL value is written as "(null)".
 */
const char *log_quote(char *buf, size_t buf_len, const char *value);

/*
 * log_quote() into a buffer that lives until the end of the enclosing block, so it can be used
 * inline in a log_write() argument list, several times in one call.
 */
#define LOG_QUOTE(value) log_quote((char[LOG_QUOTE_MAX]){0}, LOG_QUOTE_MAX, (value))

/*
 * A budget of one line per `interval_us` for events a client can cause at will (refused
 * calls, closed connections): a flood of bad requests must not become a flood of log lines.
 * One per writing thread (a worker's), not shared.
 *
 *   if (log_limit_allow(&w->refusal_log, now_us, 100000, &left_out))
 *       log_warn("call refused", "... not_logged_before=%llu", (unsigned long long)left_out);
 */
struct log_limit {
    int64_t last_us;
    uint64_t left_out; /* lines not written since the last one */
};

/* True when a line may be written at `now_us`; *left_out then gets how many were left out
 * since the last one written. False counts one more left out. */
bool log_limit_allow(struct log_limit *limit, int64_t now_us, int64_t interval_us,
                     uint64_t *left_out);

/* ---- inline ------------------------------------------------------------------------------ */

extern _Atomic int log_level_current;

static inline bool log_enabled(enum log_level level) {
    return (int)level >= atomic_load_explicit(&log_level_current, memory_order_relaxed);
}
