#include "log.h"

#include "clock.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

_Atomic int log_level_current = LOG_LEVEL_DEFAULT;
static _Atomic int log_fd = STDERR_FILENO;

static const char *const log_level_names[] = {
    [LOG_DEBUG] = "debug",
    [LOG_INFO] = "info",
    [LOG_WARN] = "warn",
    [LOG_ERROR] = "error",
};

/* Indexed by enum log_level, so the stored index is the level. */
static const char *const log_level_choices[] = {
    [LOG_DEBUG] = "debug", [LOG_INFO] = "info",    [LOG_WARN] = "warn",
    [LOG_ERROR] = "error", [LOG_ERROR + 1] = NULL,
};

static const struct option_def log_option_defs[] = {
    {
        .name = "log_level",
        .type = OPTION_ENUM,
        .default_text = "info",
        .choices = log_level_choices,
        .flags = OPTION_RELOADABLE,
        OPTION_ENUM_AT(struct log_options, level),
        .description = "Least severe level that is logged.",
    },
};

const struct option_group log_option_group = {"server", log_option_defs, 1, NULL};

const char *log_level_name(enum log_level level) {
    if ((unsigned)level >= sizeof log_level_names / sizeof log_level_names[0]) {
        return "unknown";
    }
    return log_level_names[level];
}

bool log_level_parse(const char *name, enum log_level *out) {
    for (size_t i = 0; i < sizeof log_level_names / sizeof log_level_names[0]; i++) {
        if (strcmp(name, log_level_names[i]) == 0) {
            *out = (enum log_level)i;
            return true;
        }
    }
    return false;
}

void log_set_level(enum log_level level) {
    atomic_store_explicit(&log_level_current, (int)level, memory_order_relaxed);
}

enum log_level log_get_level(void) {
    return (enum log_level)atomic_load_explicit(&log_level_current, memory_order_relaxed);
}

bool log_limit_allow(struct log_limit *limit, int64_t now_us, int64_t interval_us,
                     uint64_t *left_out) {
    if (limit->last_us != 0 && now_us - limit->last_us < interval_us) {
        limit->left_out++;
        return false;
    }
    limit->last_us = now_us;
    *left_out = limit->left_out;
    limit->left_out = 0;
    return true;
}

void log_set_fd(int fd) {
    atomic_store_explicit(&log_fd, fd, memory_order_relaxed);
}

static bool _needs_quotes(const char *value) {
    if (*value == '\0') {
        return true;
    }
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f) {
            return true;
        }
    }
    return false;
}

const char *log_quote(char *buf, size_t buf_len, const char *value) {
    if (buf_len == 0) {
        return "";
    }
    if (value == NULL) {
        value = "(null)";
    }
    if (!_needs_quotes(value)) {
        size_t n = strlen(value);
        if (n < buf_len) {
            memcpy(buf, value, n + 1);
            return buf;
        }
        /* Too long: fall through and quote it, which marks the cut with "...". */
    }
    /* Reserve room for the closing quote, a possible "..." and the terminator. */
    size_t limit = buf_len > 6 ? buf_len - 5 : 1;
    size_t o = 0;
    if (o < limit) {
        buf[o++] = '"';
    }
    const unsigned char *p = (const unsigned char *)value;
    for (; *p; p++) {
        char esc[5];
        size_t n;
        switch (*p) {
        case '"':
            n = (size_t)snprintf(esc, sizeof esc, "\\\"");
            break;
        case '\\':
            n = (size_t)snprintf(esc, sizeof esc, "\\\\");
            break;
        case '\n':
            n = (size_t)snprintf(esc, sizeof esc, "\\n");
            break;
        case '\r':
            n = (size_t)snprintf(esc, sizeof esc, "\\r");
            break;
        case '\t':
            n = (size_t)snprintf(esc, sizeof esc, "\\t");
            break;
        default:
            if (*p < ' ' || *p == 0x7f) {
                n = (size_t)snprintf(esc, sizeof esc, "\\x%02x", *p);
            } else {
                esc[0] = (char)*p;
                n = 1;
            }
        }
        if (o + n > limit) {
            break;
        }
        memcpy(buf + o, esc, n);
        o += n;
    }
    if (*p != '\0' && buf_len > 6) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    if (o + 1 < buf_len) {
        buf[o++] = '"';
    }
    buf[o] = '\0';
    return buf;
}

static void _write_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return; /* nowhere left to report a failing log */
        }
        data += n;
        len -= (size_t)n;
    }
}

void log_write(enum log_level level, const char *msg, const char *fields_fmt, ...) {
    if (!log_enabled(level)) {
        return;
    }
    int saved_errno = errno; /* callers often log and then report errno */
    char line[LOG_LINE_MAX];
    int64_t now_us = clock_wall_us();
    time_t now_s = (time_t)(now_us / 1000000);
    struct tm tm;
    gmtime_r(&now_s, &tm);

    char quoted_msg[LOG_QUOTE_MAX];
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (long)(now_us % 1000000 / 1000), log_level_name(level),
                     log_quote(quoted_msg, sizeof quoted_msg, msg));
    size_t len = n < 0 ? 0 : (size_t)n;
    /* Keep room for " ..." and the newline in every case below. */
    const size_t room = sizeof line - 5;
    if (len < room && fields_fmt != NULL) {
        line[len++] = ' ';
        va_list ap;
        va_start(ap, fields_fmt);
        n = vsnprintf(line + len, room - len, fields_fmt, ap);
        va_end(ap);
        len = n < 0 ? len - 1 : len + (size_t)n;
    }
    if (len >= room) {
        len = room - 1;
        memcpy(line + len, " ...", 4);
        len += 4;
    }
    line[len++] = '\n';
    _write_all(atomic_load_explicit(&log_fd, memory_order_relaxed), line, len);
    errno = saved_errno;
}
