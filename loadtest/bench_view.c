/*
 * The benchmark view's template (loadtest/bench_view.yaml) read at run time and filled in, for
 * the C benchmarks that build a config from it; the same rules as bench_view.py, which
 * tests/loadtest/test_bench_view.c compares.
 * FSD_BENCH_VIEW is the template's path, set by CMake.
 */
#include "bench_view.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "config/config.h"

#define VIEW_KEYS       "@VIEW_KEYS@"
#define NUMERIC_DEFAULT "@NUMERIC_DEFAULT@"

/* `keys`, each of its lines after `indent` (indent_len bytes); nothing for "". */
static void _append_indented(struct buf *t, const char *indent, size_t indent_len,
                             const char *keys) {
    while (*keys != '\0') {
        const char *eol = strchr(keys, '\n');
        size_t n = eol != NULL ? (size_t)(eol - keys) : strlen(keys);
        buf_add(t, indent, indent_len);
        buf_add(t, keys, n);
        buf_add(t, "\n", 1);
        keys += n + (eol != NULL);
    }
}

/* One line of the template (without its newline), the placeholders filled in. */
static void _append_line(struct buf *t, const char *line, size_t len, const char *view_keys,
                         const char *numeric_default) {
    size_t indent = strspn(line, " ");
    if (len == indent + strlen(VIEW_KEYS) && strncmp(line + indent, VIEW_KEYS, len - indent) == 0) {
        _append_indented(t, line, indent, view_keys != NULL ? view_keys : "");
        return;
    }
    const char *end = line + len;
    for (const char *p = line; p < end;) {
        const char *hit = strstr(p, NUMERIC_DEFAULT);
        if (hit == NULL || hit >= end) {
            buf_add(t, p, (size_t)(end - p));
            break;
        }
        buf_add(t, p, (size_t)(hit - p));
        if (numeric_default != NULL) {
            buf_puts(t, ", default: ");
            buf_puts(t, numeric_default);
        }
        p = hit + strlen(NUMERIC_DEFAULT);
    }
    buf_add(t, "\n", 1);
}

char *bench_view_config(const char *view_keys, const char *numeric_default, char *err,
                        size_t err_len) {
    FILE *f = fopen(FSD_BENCH_VIEW, "r");
    if (f == NULL) {
        snprintf(err, err_len, "cannot open the benchmark view's template %s", FSD_BENCH_VIEW);
        return NULL;
    }
    struct buf t = {0};
    buf_puts(&t, "views:\n");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) >= 0) {
        size_t len = (size_t)n;
        if (len > 0 && line[len - 1] == '\n') {
            len--;
        }
        if (line[0] != '#') { /* the template's own comment */
            _append_line(&t, line, len, view_keys, numeric_default);
        }
    }
    int read_failed = ferror(f);
    free(line);
    fclose(f);
    if (read_failed || t.failed) {
        snprintf(err, err_len, "%s %s", read_failed ? "cannot read" : "out of memory reading",
                 FSD_BENCH_VIEW);
        buf_free(&t);
        return NULL;
    }
    return t.data;
}

struct fsd_config *bench_view_parse(const char *view_keys, const char *numeric_default, char *err,
                                    size_t err_len) {
    char *yaml = bench_view_config(view_keys, numeric_default, err, err_len);
    if (yaml == NULL) {
        return NULL;
    }
    struct fsd_config *config = NULL;
    /* lines count in the filled-in text, not the template: say so in every message */
    int rc =
        config_parse("bench_view.yaml, filled in", yaml, strlen(yaml), NULL, &config, err, err_len);
    free(yaml);
    return rc == 0 ? config : NULL;
}
