#pragma once
/*
 * Errors. A module that fails returns -1 and writes why into its caller's buffer
 * (errors_set); only main exits. Errors worth a person's attention (a failed snapshot load, a
 * stream that lost Redis) are also recorded in the recent list below.
 *
 * Recent errors worth a person's attention: a failed snapshot load, a stream that lost Redis.
 * Any module records them here; the stats port shows the last ERRORS_KEPT on /status and the
 * status page. This is not a log (every event is logged as well): it is the short list an
 * operator reads first, kept in memory and lost on restart.
 */
#include <stddef.h>
#include <stdint.h>

#define ERRORS_KEPT 16 /* the last this many are kept */

/* Writes the printf-formatted message into `err` (`err_len` bytes, always terminated; nothing
 * when err_len is 0) and returns -1, so a failing path can `return errors_set(...)`. */
__attribute__((format(printf, 3, 4))) int errors_set(char *err, size_t err_len, const char *fmt,
                                                     ...);

struct error_entry {
    int64_t at_us;     /* wall clock */
    char source[32];   /* the module: "load", "streams", ... */
    char view[129];    /* "" when the error is not about one view */
    char message[384]; /* cut to fit */
};

/*
 * Records an error at the current time. `view` may be NULL; every string is copied (cut to
 * fit). Any thread; takes a mutex held only for the copy; never blocks on I/O.
 */
void errors_record(const char *source, const char *view, const char *message);

/*
 * Copies the kept errors, newest first, into `out` (room for `max`), and returns how many it
 * copied; *total (may be NULL) gets how many were ever recorded. Any thread.
 */
size_t errors_recent(struct error_entry *out, size_t max, uint64_t *total);

/* Forgets every error (for tests). */
void errors_clear(void);
