/* fsctl's output helpers: JSON strings and numbers, values as text for people, tables. */
#include "fsctl_internal.h"

#include "common/utf8.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Wider cells are cut (with "...") so one long string does not push the table off screen;
 * --json has every value whole. */
#define _CELL_MAX_CHARS 48

/* Indexed by fsd.v1.FeatureType. */
static const char *const _type_names[] = {
    "unspecified", "int32",       "int64",     "float",      "double",         "bool",
    "string",      "bytes",       "timestamp", "float_list", "int64_list",     "string_list",
    "int32_list",  "double_list", "bool_list", "bytes_list", "timestamp_list",
};

const char *fsctl_type_name(int feature_type) {
    if (feature_type < 0 || (size_t)feature_type >= sizeof _type_names / sizeof _type_names[0]) {
        return "unknown";
    }
    return _type_names[feature_type];
}

/* ---- UTF-8 ------------------------------------------------------------------------------- */

/* Characters on screen, counting each UTF-8 sequence (or stray byte) as one. */
static size_t _display_width(const char *s) {
    size_t width = 0, len = strlen(s);
    for (size_t i = 0; i < len;) {
        size_t n = utf8_sequence_len((const uint8_t *)s + i, len - i);
        i += n ? n : 1;
        width++;
    }
    return width;
}

/* ---- text for people --------------------------------------------------------------------- */

void format_quoted(struct buf *b, const char *s, size_t len) {
    /* JSON's escaping is what people expect of a quoted string: \n, \", \u0001. */
    json_string(b, s, len);
}

void format_duration_s(char *out, size_t out_len, int64_t seconds) {
    static const struct {
        int64_t s;
        const char *unit;
    } units[] = {{86400, "d"}, {3600, "h"}, {60, "m"}};
    if (seconds == 0) {
        snprintf(out, out_len, "0 (never stale)");
        return;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (seconds % units[i].s == 0) {
            snprintf(out, out_len, "%" PRId64 "%s", seconds / units[i].s, units[i].unit);
            return;
        }
    }
    snprintf(out, out_len, "%" PRId64 "s", seconds);
}

void format_time_us(char *out, size_t out_len, int64_t us) {
    if (us <= 0) {
        snprintf(out, out_len, "never");
        return;
    }
    text_time_utc(out, out_len, us);
}

void format_staleness_ms(char *out, size_t out_len, int64_t ms) {
    if (ms < 0) {
        snprintf(out, out_len, "no row");
    } else if (ms < 1000) {
        snprintf(out, out_len, "%" PRId64 "ms", ms);
    } else if (ms < 60 * 1000) {
        snprintf(out, out_len, "%.1fs", (double)ms / 1e3);
    } else if (ms < 3600 * 1000) {
        snprintf(out, out_len, "%.1fm", (double)ms / 6e4);
    } else if (ms < 86400 * 1000) {
        snprintf(out, out_len, "%.1fh", (double)ms / 3.6e6);
    } else {
        snprintf(out, out_len, "%.1fd", (double)ms / 8.64e7);
    }
}

/* ---- table ------------------------------------------------------------------------------- */

struct table {
    size_t ncolumns;
    char **cells;
    size_t ncells, cap;
};

struct table *table_create(size_t ncolumns) {
    struct table *t = calloc(1, sizeof(*t));
    if (t != NULL) {
        t->ncolumns = ncolumns ? ncolumns : 1;
    }
    return t;
}

/* Cuts `s` to _CELL_MAX_CHARS characters on a UTF-8 boundary. */
static char *_cell_copy(const char *s) {
    size_t len = strlen(s), i = 0, chars = 0;
    while (i < len && chars < _CELL_MAX_CHARS) {
        size_t n = utf8_sequence_len((const uint8_t *)s + i, len - i);
        i += n ? n : 1;
        chars++;
    }
    bool cut = i < len;
    char *copy = malloc(i + (cut ? 4 : 1));
    if (copy != NULL) {
        memcpy(copy, s, i);
        strcpy(copy + i, cut ? "..." : "");
    }
    return copy;
}

void table_add(struct table *t, const char *cell) {
    if (t == NULL) {
        return;
    }
    if (t->ncells == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        char **grown = realloc(t->cells, cap * sizeof(*grown));
        if (grown == NULL) {
            return;
        }
        t->cells = grown;
        t->cap = cap;
    }
    char *copy = _cell_copy(cell);
    if (copy != NULL) {
        t->cells[t->ncells++] = copy;
    }
}

void table_print(const struct table *t, FILE *out, const char *indent) {
    if (t == NULL) {
        return;
    }
    size_t *width = calloc(t->ncolumns, sizeof(*width));
    if (width == NULL) {
        return;
    }
    for (size_t i = 0; i < t->ncells; i++) {
        size_t w = _display_width(t->cells[i]);
        if (w > width[i % t->ncolumns]) {
            width[i % t->ncolumns] = w;
        }
    }
    for (size_t i = 0; i < t->ncells; i++) {
        size_t c = i % t->ncolumns;
        bool last = c + 1 == t->ncolumns || i + 1 == t->ncells;
        if (c == 0) {
            fputs(indent, out);
        }
        fputs(t->cells[i], out);
        if (last) {
            fputc('\n', out);
        } else {
            for (size_t pad = _display_width(t->cells[i]); pad < width[c] + 2; pad++) {
                fputc(' ', out);
            }
        }
    }
    free(width);
}

void table_destroy(struct table *t) {
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->ncells; i++) {
        free(t->cells[i]);
    }
    free(t->cells);
    free(t);
}
