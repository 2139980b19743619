/* The option machinery (options.h): text forms, setting and formatting values, the docs. */
#include "options.h"
#include "errors.h"

#include <inttypes.h>
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

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- text forms -------------------------------------------------------------------------- */

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
        return errors_set(err, err_len,
                          "invalid duration \"%.80s\" (expected 0, 500ms, 30s, 5m, 24h, 7d or a "
                          "number of seconds)",
                          text);
    }
    *us = (int64_t)v;
    return 0;
}

int option_parse_size(const char *text, uint64_t *bytes, char *err, size_t err_len) {
    if (_parse_with_units(text, size_units, COUNT(size_units), 1, UINT64_MAX, bytes) != 0) {
        return errors_set(err, err_len,
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
    return errors_set(err, err_len, "%.80s is out of bounds (%s..%s)", text, lo, hi);
}

int option_set(const struct option_def *def, void *values, const char *text, char *err,
               size_t err_len) {
    void *field = (char *)values + def->offset;
    switch (def->type) {
    case OPTION_BOOL:
        if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0) {
            *(bool *)field = text[0] == 't';
            return 0;
        }
        return errors_set(err, err_len, "invalid bool \"%.80s\" (expected true or false)", text);
    case OPTION_UINT: {
        uint64_t v = 0;
        size_t n = _digits(text, &v);
        if (n == 0 || text[n] != '\0') {
            if (n == 0 && text[0] >= '0' && text[0] <= '9') {
                return _out_of_bounds(def, text, err, err_len); /* digits that overflow */
            }
            return errors_set(err, err_len, "invalid uint \"%.80s\" (expected decimal digits)",
                              text);
        }
        if (v < def->min || v > def->max) {
            return _out_of_bounds(def, text, err, err_len);
        }
        if ((def->flags & OPTION_POWER_OF_TWO) && (v & (v - 1)) != 0) {
            return errors_set(err, err_len, "%" PRIu64 " is not a power of two", v);
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
        if (len < def->min || len > def->max || len >= def->size) {
            return errors_set(err, err_len,
                              "length %zu is out of bounds (%" PRIu64 "..%" PRIu64 ")", len,
                              def->min, def->max);
        }
        memcpy(field, text, len + 1);
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
        return errors_set(err, err_len, "unknown value \"%.80s\" (expected %s)", text, expected);
    }
    }
    return errors_set(err, err_len, "option type %d not handled", (int)def->type);
}

void option_format(const struct option_def *def, const void *values, char *buf, size_t buf_len) {
    const void *field = (const char *)values + def->offset;
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
    case OPTION_STRING:
        snprintf(buf, buf_len, "%s", (const char *)field);
        return;
    case OPTION_ENUM:
        snprintf(buf, buf_len, "%s", def->choices[*(const int *)field]);
        return;
    }
    snprintf(buf, buf_len, "?");
}

/* ---- the table ---------------------------------------------------------------------------- */

const struct option_section *option_table_section(const struct option_table *table,
                                                  const char *name) {
    for (size_t s = 0; s < table->nsections; s++) {
        if (strcmp(table->sections[s].name, name) == 0) {
            return &table->sections[s];
        }
    }
    return NULL;
}

const struct option_def *option_table_find(const struct option_table *table, const char *section,
                                           const char *name, size_t *offset) {
    for (size_t b = 0; b < table->nbindings; b++) {
        const struct option_group *g = table->bindings[b].group;
        if (strcmp(g->section, section) != 0) {
            continue;
        }
        for (size_t i = 0; i < g->ndefs; i++) {
            if (strcmp(g->defs[i].name, name) == 0) {
                if (offset != NULL) {
                    *offset = table->bindings[b].offset;
                }
                return &g->defs[i];
            }
        }
    }
    return NULL;
}

int option_group_defaults(const struct option_group *group, void *values, size_t size, char *err,
                          size_t err_len) {
    memset(values, 0, size);
    if (group->init != NULL) {
        group->init(values);
    }
    for (size_t i = 0; i < group->ndefs; i++) {
        const struct option_def *def = &group->defs[i];
        char why[256];
        if (option_set(def, values, def->default_text, why, sizeof why) != 0) {
            return errors_set(err, err_len, "default of %s.%s: %s", group->section, def->name, why);
        }
    }
    return 0;
}

int option_table_defaults(const struct option_table *table, void *block, char *err,
                          size_t err_len) {
    memset(block, 0, table->block_size);
    for (size_t b = 0; b < table->nbindings; b++) {
        const struct option_binding *binding = &table->bindings[b];
        if (option_group_defaults(binding->group, (char *)block + binding->offset, binding->size,
                                  err, err_len) != 0) {
            return -1;
        }
    }
    return 0;
}

int option_reload_check(const struct option_table *table, const void *current, const void *next,
                        char *err, size_t err_len) {
    size_t o = 0;
    if (err_len > 0) {
        err[0] = '\0';
    }
    for (size_t s = 0; s < table->nsections; s++) {
        const char *section = table->sections[s].name;
        for (size_t b = 0; b < table->nbindings; b++) {
            const struct option_group *g = table->bindings[b].group;
            if (strcmp(g->section, section) != 0) {
                continue;
            }
            size_t at = table->bindings[b].offset;
            for (size_t i = 0; i < g->ndefs; i++) {
                const struct option_def *def = &g->defs[i];
                char was[300], now[300];
                option_format(def, (const char *)current + at, was, sizeof was);
                option_format(def, (const char *)next + at, now, sizeof now);
                if ((def->flags & OPTION_RELOADABLE) || strcmp(was, now) == 0) {
                    continue;
                }
                if (o < err_len) {
                    o += (size_t)snprintf(err + o, err_len - o,
                                          "%s%s.%s: %s -> %s (needs a restart)", o ? "; " : "",
                                          section, def->name, was, now);
                } else {
                    o++; /* still count it so the result is -1 */
                }
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

size_t option_table_section_defs(const struct option_table *table, const char *name,
                                 const struct option_def **out, size_t max) {
    size_t n = 0;
    for (size_t b = 0; b < table->nbindings; b++) {
        const struct option_group *g = table->bindings[b].group;
        for (size_t i = 0; strcmp(g->section, name) == 0 && i < g->ndefs && n < max; i++) {
            out[n++] = &g->defs[i];
        }
    }
    return n;
}

#define MAX_SECTION_OPTIONS OPTION_SECTION_MAX

void option_print_help(const struct option_table *table, FILE *out) {
    fprintf(out, "Options of the fsd config file (YAML). Durations: 0, 500ms, 30s, 5m, 24h, 7d,\n"
                 "or a number of seconds. Sizes: 4MiB, 512KiB, or a number of bytes.\n");
    for (size_t s = 0; s < table->nsections; s++) {
        const struct option_section *section = &table->sections[s];
        fprintf(out, "\n%s:  %s\n", section->name, section->description);
        const struct option_def *defs[MAX_SECTION_OPTIONS];
        size_t n = option_table_section_defs(table, section->name, defs, MAX_SECTION_OPTIONS);
        for (size_t i = 0; i < n; i++) {
            const struct option_def *def = defs[i];
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

/* The sections nested in `parent` ("server.auth" in "server"), or the top-level ones when
 * `parent` is NULL: true when `name` is one. */
static bool _is_child(const char *name, const char *parent) {
    if (parent == NULL) {
        return strchr(name, '.') == NULL;
    }
    size_t len = strlen(parent);
    return strncmp(name, parent, len) == 0 && name[len] == '.' &&
           strchr(name + len + 1, '.') == NULL;
}

const char *option_section_child(const char *section, const char *parent) {
    return _is_child(section, parent) ? (parent ? section + strlen(parent) + 1 : section) : NULL;
}

/* One section's options at `indent`, then its nested sections one level deeper. */
static void _print_reference_section(const struct option_table *table,
                                     const struct option_section *section, int indent, FILE *out) {
    char prefix[32];
    snprintf(prefix, sizeof prefix, "%*s# ", indent, "");
    _print_wrapped(out, prefix, section->description, 96);
    const char *dot = strrchr(section->name, '.');
    fprintf(out, "%*s%s:\n", indent, "", dot ? dot + 1 : section->name);
    snprintf(prefix, sizeof prefix, "%*s# ", indent + 2, "");
    const struct option_def *defs[MAX_SECTION_OPTIONS];
    size_t n = option_table_section_defs(table, section->name, defs, MAX_SECTION_OPTIONS);
    for (size_t i = 0; i < n; i++) {
        const struct option_def *def = defs[i];
        char bounds[256];
        _format_bounds(def, bounds, sizeof bounds);
        if (i > 0) {
            fputc('\n', out);
        }
        _print_wrapped(out, prefix, def->description, 96);
        fprintf(out, "%s%s, %s; %s\n", prefix, _type_name(def->type), bounds,
                (def->flags & OPTION_RELOADABLE) ? "reloadable (SIGHUP)" : "restart to change");
        fprintf(out, "%*s%s: ", indent + 2, "", def->name);
        _print_yaml_scalar(out, def->default_text);
        fputc('\n', out);
    }
    for (size_t s = 0; s < table->nsections; s++) {
        if (_is_child(table->sections[s].name, section->name)) {
            fputc('\n', out);
            _print_reference_section(table, &table->sections[s], indent + 2, out);
        }
    }
}

void option_print_reference(const struct option_table *table, FILE *out) {
    bool first = true;
    for (size_t s = 0; s < table->nsections; s++) {
        if (!_is_child(table->sections[s].name, NULL)) {
            continue;
        }
        if (!first) {
            fputc('\n', out);
        }
        first = false;
        _print_reference_section(table, &table->sections[s], 0, out);
    }
}
