#include "options.h"

#include "common/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define US_PER_MS  INT64_C(1000)
#define US_PER_SEC INT64_C(1000000)
#define US_PER_MIN (60 * US_PER_SEC)
#define US_PER_H   (60 * US_PER_MIN)
#define US_PER_DAY (24 * US_PER_H)
#define KIB        UINT64_C(1024)
#define MIB        (1024 * KIB)
#define GIB        (1024 * MIB)

/*
 * Where an option's value lives, with its C type checked at compile time: a row whose type
 * does not match the struct field fails to compile (no _Generic association matches).
 */
#define AT(member, ctype)                                                                          \
    _Generic(((struct option_values *)0)->member, ctype : offsetof(struct option_values, member))
#define AT_BOOL(m)     AT(m, bool)
#define AT_UINT(m)     AT(m, uint32_t)
#define AT_DURATION(m) AT(m, int64_t)
#define AT_SIZE(m)     AT(m, uint64_t)
#define AT_STRING(m)   AT(m, char *)
#define AT_ENUM(m)     AT(m, int)

/* Indexed by enum log_level, so the stored index is the level. */
static const char *const log_level_choices[] = {
    [LOG_DEBUG] = "debug", [LOG_INFO] = "info",    [LOG_WARN] = "warn",
    [LOG_ERROR] = "error", [LOG_ERROR + 1] = NULL,
};

/* ---- the options ------------------------------------------------------------------------- */

static const struct option_def server_defs[] = {
    {
        .name = "grpc_bind",
        .type = OPTION_STRING,
        .default_text = "127.0.0.1",
        .min = 1,
        .max = 255,
        .offset = AT_STRING(server.grpc_bind),
        .description = "Address the gRPC server listens on: an IPv4 or IPv6 address or a host "
                       "name; 0.0.0.0 or :: for every interface.",
    },
    {
        .name = "grpc_port",
        .type = OPTION_UINT,
        .default_text = "6566",
        .min = 0,
        .max = 65535,
        .offset = AT_UINT(server.grpc_port),
        .description = "TCP port of the gRPC server; 0 picks a free port (logged at start).",
    },
    {
        .name = "stats_bind",
        .type = OPTION_STRING,
        .default_text = "127.0.0.1",
        .min = 1,
        .max = 255,
        .offset = AT_STRING(server.stats_bind),
        .description = "Address of the HTTP stats endpoint (Prometheus metrics, health).",
    },
    {
        .name = "stats_port",
        .type = OPTION_UINT,
        .default_text = "9466",
        .min = 0,
        .max = 65535,
        .offset = AT_UINT(server.stats_port),
        .description =
            "TCP port of the HTTP stats endpoint; 0 picks a free port (logged at start).",
    },
    {
        .name = "stats_token",
        .type = OPTION_STRING,
        .default_text = "",
        .min = 0,
        .max = 255,
        .offset = AT_STRING(server.stats_token),
        .description = "Bearer token the stats endpoint's /status and / pages require "
                       "(Authorization: Bearer <token>); empty means no token. /metrics, "
                       "/healthz and /readyz stay open.",
    },
    {
        .name = "workers",
        .type = OPTION_UINT,
        .default_text = "0",
        .min = 0,
        .max = 256,
        .offset = AT_UINT(server.workers),
        .description = "Worker threads answering lookups; 0 means one per CPU core.",
    },
    {
        .name = "max_batch",
        .type = OPTION_UINT,
        .default_text = "10000",
        .min = 1,
        .max = 1000000,
        .offset = AT_UINT(server.max_batch),
        .description = "Most entities one request may ask for; larger requests are rejected.",
    },
    {
        .name = "max_message_bytes",
        .type = OPTION_SIZE,
        .default_text = "4MiB",
        .min = 64 * KIB,
        .max = 1 * GIB,
        .offset = AT_SIZE(server.max_message_bytes),
        .description = "Largest gRPC message received or sent.",
    },
    {
        .name = "default_budget_us",
        .type = OPTION_UINT,
        .default_text = "1000",
        .min = 1,
        .max = 10000000,
        .offset = AT_UINT(server.default_budget_us),
        .description = "Time budget, in microseconds, of a request that does not set its own.",
    },
    {
        .name = "log_level",
        .type = OPTION_ENUM,
        .default_text = "info",
        .choices = log_level_choices,
        .flags = OPTION_RELOADABLE,
        .offset = AT_ENUM(server.log_level),
        .description = "Least severe level that is logged.",
    },
};

static const struct option_def store_defs[] = {
    {
        .name = "shards",
        .type = OPTION_UINT,
        .default_text = "64",
        .min = 1,
        .max = 4096,
        .flags = OPTION_POWER_OF_TWO,
        .offset = AT_UINT(store.shards),
        .description = "Shards per view table (a power of two); entity keys are spread over "
                       "them by hash.",
    },
    {
        .name = "sweep_interval_ms",
        .type = OPTION_UINT,
        .default_text = "1000",
        .min = 10,
        .max = 3600000,
        .offset = AT_UINT(store.sweep_interval_ms),
        .description = "How often, in milliseconds, the sweeper looks for expired rows.",
    },
    {
        .name = "expiry_grace",
        .type = OPTION_DURATION,
        .default_text = "1h",
        .min = 0,
        .max = 365 * US_PER_DAY,
        .offset = AT_DURATION(store.expiry_grace_us),
        .description = "How long a row is kept after its view's ttl has passed before the "
                       "sweeper frees it.",
    },
};

/*
 * Restart to change: the scheduler copies it when it starts. Loads are rare and the right
 * value depends on the machine, not on the moment.
 */
static const struct option_def materializer_defs[] = {
    {
        .name = "duckdb_threads",
        .type = OPTION_UINT,
        .default_text = "0",
        .min = 0,
        .max = 256,
        .offset = AT_UINT(materializer.duckdb_threads),
        .description = "Threads DuckDB may use to read a Parquet snapshot; 0 means the CPU "
                       "cores the workers leave, less one for the thread that builds the table "
                       "(at least 1). More threads than that fight the workers and the builder "
                       "for the same cores: on 2 cores with 1 worker, one DuckDB thread loaded "
                       "faster than two and cost lookups less latency.",
    },
    {
        .name = "nice",
        .type = OPTION_UINT,
        .default_text = "10",
        .min = 0,
        .max = 19,
        .offset = AT_UINT(materializer.nice),
        .description = "Nice value of the thread that runs snapshot loads and of the DuckDB "
                       "threads it starts, so that a load uses the CPU the workers leave idle "
                       "and yields it when lookups arrive; 0 runs loads at the daemon's own "
                       "priority. PushSnapshot streams are built on the worker threads and are "
                       "not affected.",
    },
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const struct option_section option_sections[] = {
    {"server", "Network endpoints, worker threads and request limits.", server_defs,
     COUNT(server_defs)},
    {"store", "The in-memory store; read by the store as plain numbers.", store_defs,
     COUNT(store_defs)},
    {"materializer", "Snapshot loads: how much of the machine a load may use.", materializer_defs,
     COUNT(materializer_defs)},
};
const size_t option_nsections = COUNT(option_sections);

/* ---- lookup ------------------------------------------------------------------------------ */

const struct option_section *option_section_find(const char *name) {
    for (size_t i = 0; i < option_nsections; i++) {
        if (strcmp(option_sections[i].name, name) == 0) {
            return &option_sections[i];
        }
    }
    return NULL;
}

const struct option_def *option_def_find(const struct option_section *section, const char *name) {
    for (size_t i = 0; i < section->ndefs; i++) {
        if (strcmp(section->defs[i].name, name) == 0) {
            return &section->defs[i];
        }
    }
    return NULL;
}

/* ---- text forms -------------------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static int _fail(char *err, size_t err_len, const char *fmt,
                                                       ...) {
    if (err_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Reads the leading digits of `text` into `*value`; returns the number of digits (0 if none
 * or on overflow). */
static size_t _digits(const char *text, uint64_t *value) {
    uint64_t v = 0;
    size_t n = 0;
    for (; text[n] >= '0' && text[n] <= '9'; n++) {
        unsigned d = (unsigned)(text[n] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return 0;
        }
        v = v * 10 + d;
    }
    *value = v;
    return n;
}

struct unit {
    const char *suffix;
    uint64_t factor;
};

static const struct unit duration_units[] = {
    {"d", (uint64_t)US_PER_DAY}, {"h", (uint64_t)US_PER_H},   {"m", (uint64_t)US_PER_MIN},
    {"s", (uint64_t)US_PER_SEC}, {"ms", (uint64_t)US_PER_MS}, {"us", 1},
};

static const struct unit size_units[] = {
    {"GiB", GIB},
    {"MiB", MIB},
    {"KiB", KIB},
    {"B", 1},
};

static int _parse_with_units(const char *text, const struct unit *units, size_t nunits,
                             uint64_t bare_factor, uint64_t max, uint64_t *out) {
    uint64_t v = 0;
    size_t n = _digits(text, &v);
    if (n == 0) {
        return -1;
    }
    uint64_t factor = 0;
    if (text[n] == '\0') {
        factor = bare_factor;
    } else {
        for (size_t i = 0; i < nunits; i++) {
            if (strcmp(text + n, units[i].suffix) == 0) {
                factor = units[i].factor;
                break;
            }
        }
    }
    if (factor == 0 || v > max / factor) {
        return -1;
    }
    *out = v * factor;
    return 0;
}

int option_parse_duration(const char *text, int64_t *us, char *err, size_t err_len) {
    uint64_t v = 0;
    if (_parse_with_units(text, duration_units, COUNT(duration_units), (uint64_t)US_PER_SEC,
                          INT64_MAX, &v) != 0) {
        return _fail(err, err_len,
                     "invalid duration \"%.80s\" (expected 0, 500ms, 30s, 5m, 24h, 7d or a "
                     "number of seconds)",
                     text);
    }
    *us = (int64_t)v;
    return 0;
}

int option_parse_size(const char *text, uint64_t *bytes, char *err, size_t err_len) {
    if (_parse_with_units(text, size_units, COUNT(size_units), 1, UINT64_MAX, bytes) != 0) {
        return _fail(err, err_len,
                     "invalid size \"%.80s\" (expected a number of bytes, or a number with B, "
                     "KiB, MiB or GiB as in 4MiB)",
                     text);
    }
    return 0;
}

static void _format_with_units(uint64_t v, const struct unit *units, size_t nunits, char *buf,
                               size_t buf_len) {
    if (v == 0) {
        snprintf(buf, buf_len, "0");
        return;
    }
    for (size_t i = 0; i < nunits; i++) {
        if (v % units[i].factor == 0) {
            snprintf(buf, buf_len, "%" PRIu64 "%s", v / units[i].factor, units[i].suffix);
            return;
        }
    }
    snprintf(buf, buf_len, "%" PRIu64, v);
}

void option_format_duration(int64_t us, char *buf, size_t buf_len) {
    _format_with_units(us < 0 ? 0 : (uint64_t)us, duration_units, COUNT(duration_units), buf,
                       buf_len);
}

void option_format_size(uint64_t bytes, char *buf, size_t buf_len) {
    /* Bare bytes rather than "100B": the common spelling of a byte count. */
    _format_with_units(bytes, size_units, COUNT(size_units) - 1, buf, buf_len);
}

/* The bounds as the user would write them, in the option's own unit. */
static void _format_bound(const struct option_def *def, uint64_t v, char *buf, size_t buf_len) {
    switch (def->type) {
    case OPTION_DURATION:
        option_format_duration((int64_t)v, buf, buf_len);
        break;
    case OPTION_SIZE:
        option_format_size(v, buf, buf_len);
        break;
    default:
        snprintf(buf, buf_len, "%" PRIu64, v);
    }
}

static int _out_of_bounds(const struct option_def *def, const char *text, char *err,
                          size_t err_len) {
    char lo[32], hi[32];
    _format_bound(def, def->min, lo, sizeof lo);
    _format_bound(def, def->max, hi, sizeof hi);
    return _fail(err, err_len, "%.80s is out of bounds (%s..%s)", text, lo, hi);
}

static void *_field(struct option_values *values, const struct option_def *def) {
    return (char *)values + def->offset;
}

static const void *_cfield(const struct option_values *values, const struct option_def *def) {
    return (const char *)values + def->offset;
}

int option_set(struct option_values *values, const struct option_def *def, const char *text,
               char *err, size_t err_len) {
    void *field = _field(values, def);
    switch (def->type) {
    case OPTION_BOOL:
        if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0) {
            *(bool *)field = text[0] == 't';
            return 0;
        }
        return _fail(err, err_len, "invalid bool \"%.80s\" (expected true or false)", text);
    case OPTION_UINT: {
        uint64_t v = 0;
        size_t n = _digits(text, &v);
        if (n == 0 || text[n] != '\0') {
            if (n == 0 && text[0] >= '0' && text[0] <= '9') {
                return _out_of_bounds(def, text, err, err_len); /* digits that overflow */
            }
            return _fail(err, err_len, "invalid uint \"%.80s\" (expected decimal digits)", text);
        }
        if (v < def->min || v > def->max) {
            return _out_of_bounds(def, text, err, err_len);
        }
        if ((def->flags & OPTION_POWER_OF_TWO) && (v & (v - 1)) != 0) {
            return _fail(err, err_len, "%" PRIu64 " is not a power of two", v);
        }
        *(uint32_t *)field = (uint32_t)v;
        return 0;
    }
    case OPTION_DURATION: {
        int64_t us = 0;
        if (option_parse_duration(text, &us, err, err_len) != 0) {
            return -1;
        }
        if ((uint64_t)us < def->min || (uint64_t)us > def->max) {
            return _out_of_bounds(def, text, err, err_len);
        }
        *(int64_t *)field = us;
        return 0;
    }
    case OPTION_SIZE: {
        uint64_t bytes;
        if (option_parse_size(text, &bytes, err, err_len) != 0) {
            return -1;
        }
        if (bytes < def->min || bytes > def->max) {
            return _out_of_bounds(def, text, err, err_len);
        }
        *(uint64_t *)field = bytes;
        return 0;
    }
    case OPTION_STRING: {
        size_t len = strlen(text);
        if (len < def->min || len > def->max) {
            return _fail(err, err_len, "length %zu is out of bounds (%" PRIu64 "..%" PRIu64 ")",
                         len, def->min, def->max);
        }
        char *copy = strdup(text);
        if (copy == NULL) {
            return _fail(err, err_len, "out of memory");
        }
        free(*(char **)field);
        *(char **)field = copy;
        return 0;
    }
    case OPTION_ENUM: {
        for (int i = 0; def->choices[i] != NULL; i++) {
            if (strcmp(text, def->choices[i]) == 0) {
                *(int *)field = i;
                return 0;
            }
        }
        char expected[256] = "";
        size_t o = 0;
        for (int i = 0; def->choices[i] != NULL && o < sizeof expected; i++) {
            o += (size_t)snprintf(expected + o, sizeof expected - o, "%s%s", i ? ", " : "",
                                  def->choices[i]);
        }
        return _fail(err, err_len, "unknown value \"%.80s\" (expected %s)", text, expected);
    }
    }
    return _fail(err, err_len, "option type %d not handled", (int)def->type);
}

void option_format(const struct option_values *values, const struct option_def *def, char *buf,
                   size_t buf_len) {
    const void *field = _cfield(values, def);
    switch (def->type) {
    case OPTION_BOOL:
        snprintf(buf, buf_len, "%s", *(const bool *)field ? "true" : "false");
        return;
    case OPTION_UINT:
        snprintf(buf, buf_len, "%" PRIu32, *(const uint32_t *)field);
        return;
    case OPTION_DURATION:
        option_format_duration(*(const int64_t *)field, buf, buf_len);
        return;
    case OPTION_SIZE:
        option_format_size(*(const uint64_t *)field, buf, buf_len);
        return;
    case OPTION_STRING: {
        const char *s = *(char *const *)field;
        snprintf(buf, buf_len, "%s", s ? s : "");
        return;
    }
    case OPTION_ENUM:
        snprintf(buf, buf_len, "%s", def->choices[*(const int *)field]);
        return;
    }
    snprintf(buf, buf_len, "?");
}

/* ---- values lifecycle -------------------------------------------------------------------- */

int option_values_init(struct option_values *values, char *err, size_t err_len) {
    memset(values, 0, sizeof *values);
    for (size_t s = 0; s < option_nsections; s++) {
        const struct option_section *section = &option_sections[s];
        for (size_t i = 0; i < section->ndefs; i++) {
            const struct option_def *def = &section->defs[i];
            char why[256];
            if (option_set(values, def, def->default_text, why, sizeof why) != 0) {
                /* Only out-of-memory in practice: tests check every default parses. */
                _fail(err, err_len, "default of %s.%s: %s", section->name, def->name, why);
                option_values_deinit(values);
                return -1;
            }
        }
    }
    return 0;
}

void option_values_deinit(struct option_values *values) {
    for (size_t s = 0; s < option_nsections; s++) {
        const struct option_section *section = &option_sections[s];
        for (size_t i = 0; i < section->ndefs; i++) {
            if (section->defs[i].type == OPTION_STRING) {
                char **field = _field(values, &section->defs[i]);
                free(*field);
                *field = NULL;
            }
        }
    }
}

int option_reload_check(const struct option_values *current, const struct option_values *next,
                        char *err, size_t err_len) {
    size_t o = 0;
    if (err_len > 0) {
        err[0] = '\0';
    }
    for (size_t s = 0; s < option_nsections; s++) {
        const struct option_section *section = &option_sections[s];
        for (size_t i = 0; i < section->ndefs; i++) {
            const struct option_def *def = &section->defs[i];
            char a[300], b[300];
            option_format(current, def, a, sizeof a);
            option_format(next, def, b, sizeof b);
            if ((def->flags & OPTION_RELOADABLE) || strcmp(a, b) == 0) {
                continue;
            }
            if (o < err_len) {
                o += (size_t)snprintf(err + o, err_len - o, "%s%s.%s: %s -> %s (needs a restart)",
                                      o ? "; " : "", section->name, def->name, a, b);
            } else {
                o++; /* still count it so the result is -1 */
            }
        }
    }
    return o == 0 ? 0 : -1;
}

/* ---- documentation ----------------------------------------------------------------------- */

static const char *_type_name(enum option_type type) {
    switch (type) {
    case OPTION_BOOL:
        return "bool";
    case OPTION_UINT:
        return "uint";
    case OPTION_DURATION:
        return "duration";
    case OPTION_SIZE:
        return "size";
    case OPTION_STRING:
        return "string";
    case OPTION_ENUM:
        return "enum";
    }
    return "?";
}

/* "1..65535, a power of two", "debug | info | warn | error", "length 1..255", ... */
static void _format_bounds(const struct option_def *def, char *buf, size_t buf_len) {
    char lo[32], hi[32];
    switch (def->type) {
    case OPTION_BOOL:
        snprintf(buf, buf_len, "true | false");
        return;
    case OPTION_ENUM: {
        size_t o = 0;
        buf[0] = '\0';
        for (int i = 0; def->choices[i] != NULL && o < buf_len; i++) {
            o += (size_t)snprintf(buf + o, buf_len - o, "%s%s", i ? " | " : "", def->choices[i]);
        }
        return;
    }
    case OPTION_STRING:
        snprintf(buf, buf_len, "length %" PRIu64 "..%" PRIu64, def->min, def->max);
        return;
    default:
        _format_bound(def, def->min, lo, sizeof lo);
        _format_bound(def, def->max, hi, sizeof hi);
        snprintf(buf, buf_len, "%s..%s%s", lo, hi,
                 (def->flags & OPTION_POWER_OF_TWO) ? ", a power of two" : "");
    }
}

/* Prints `text` word-wrapped at `width` columns, each line starting with `prefix`. */
static void _print_wrapped(FILE *out, const char *prefix, const char *text, size_t width) {
    size_t col = 0;
    const char *p = text;
    while (*p) {
        size_t word = strcspn(p, " ");
        if (col > 0 && col + 1 + word > width) {
            fputc('\n', out);
            col = 0;
        }
        if (col == 0) {
            fputs(prefix, out);
            col = strlen(prefix);
        } else {
            fputc(' ', out);
            col++;
        }
        fwrite(p, 1, word, out);
        col += word;
        p += word;
        p += strspn(p, " ");
    }
    if (col > 0) {
        fputc('\n', out);
    }
}

void option_print_help(FILE *out) {
    fprintf(out, "Options of the fsd config file (YAML). Durations: 0, 500ms, 30s, 5m, 24h, 7d,\n"
                 "or a number of seconds. Sizes: 4MiB, 512KiB, or a number of bytes.\n");
    for (size_t s = 0; s < option_nsections; s++) {
        const struct option_section *section = &option_sections[s];
        fprintf(out, "\n%s:  %s\n", section->name, section->description);
        for (size_t i = 0; i < section->ndefs; i++) {
            const struct option_def *def = &section->defs[i];
            char bounds[256];
            _format_bounds(def, bounds, sizeof bounds);
            fprintf(out, "\n  %s.%s (%s)\n", section->name, def->name, _type_name(def->type));
            fprintf(out, "      default: %s    bounds: %s    reload: %s\n", def->default_text,
                    bounds, (def->flags & OPTION_RELOADABLE) ? "yes" : "no (restart)");
            _print_wrapped(out, "      ", def->description, 96);
        }
    }
}

/* YAML plain scalars may not hold everything; quote a default that is not obviously safe. */
static void _print_yaml_scalar(FILE *out, const char *text) {
    if (text[0] != '\0' && strspn(text, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789._/-") == strlen(text)) {
        fputs(text, out);
        return;
    }
    fputc('"', out);
    for (const char *p = text; *p; p++) {
        if (*p == '"' || *p == '\\') {
            fputc('\\', out);
        }
        fputc(*p, out);
    }
    fputc('"', out);
}

void option_print_reference(FILE *out) {
    for (size_t s = 0; s < option_nsections; s++) {
        const struct option_section *section = &option_sections[s];
        if (s > 0) {
            fputc('\n', out);
        }
        _print_wrapped(out, "# ", section->description, 96);
        fprintf(out, "%s:\n", section->name);
        for (size_t i = 0; i < section->ndefs; i++) {
            const struct option_def *def = &section->defs[i];
            char bounds[256];
            _format_bounds(def, bounds, sizeof bounds);
            if (i > 0) {
                fputc('\n', out);
            }
            _print_wrapped(out, "  # ", def->description, 96);
            fprintf(out, "  # %s, %s; %s\n", _type_name(def->type), bounds,
                    (def->flags & OPTION_RELOADABLE) ? "reloadable (SIGHUP)" : "restart to change");
            fprintf(out, "  %s: ", def->name);
            _print_yaml_scalar(out, def->default_text);
            fputc('\n', out);
        }
    }
}
