/* The Prometheus text writer (exposition format 0.0.4) and the collector registry. */
#include "metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "text.h"

struct metric_writer {
    struct buf *buf;
    const char *family; /* name of the family whose header was written last */
};

/* A sample value as Prometheus reads it: shortest exact digits, NaN, +Inf, -Inf. */
static void _write_double(struct buf *b, double v) {
    if (isnan(v)) {
        buf_puts(b, "NaN");
    } else if (isinf(v)) {
        buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    } else {
        char text[40];
        text_double(text, sizeof text, v);
        buf_puts(b, text);
    }
}

static const char *_type_name(enum metric_type type) {
    switch (type) {
    case METRIC_COUNTER:
        return "counter";
    case METRIC_GAUGE:
        return "gauge";
    case METRIC_HISTOGRAM:
        return "histogram";
    }
    return "untyped";
}

/* HELP text escapes only backslash and newline (label values also escape the quote). */
static void _escape(struct buf *b, const char *s, bool quote) {
    size_t start = 0, i = 0;
    for (; s[i]; i++) {
        const char *rep = s[i] == '\\'             ? "\\\\"
                          : s[i] == '\n'           ? "\\n"
                          : (quote && s[i] == '"') ? "\\\""
                                                   : NULL;
        if (rep != NULL) {
            buf_add(b, s + start, i - start);
            buf_puts(b, rep);
            start = i + 1;
        }
    }
    buf_add(b, s + start, i - start);
}

void metrics_write_family(struct metric_writer *w, const struct metric_def *def) {
    if (w->family != NULL && strcmp(w->family, def->name) == 0) {
        return;
    }
    w->family = def->name;
    buf_printf(w->buf, "# HELP %s ", def->name);
    _escape(w->buf, def->help, false);
    buf_printf(w->buf, "\n# TYPE %s %s\n", def->name, _type_name(def->type));
}

/*
 * Writes `name{l1="v1",...,extra_name="extra_value"} ` — the braces only when there is a
 * label. `suffix` goes after the family name (_bucket, _sum, _count).
 */
static void _series(struct metric_writer *w, const struct metric_def *def, const char *suffix,
                    const char *const *label_values, const char *extra_name,
                    const char *extra_value) {
    struct buf *b = w->buf;
    buf_puts(b, def->name);
    buf_puts(b, suffix);
    const char *names = def->labels;
    bool any = false;
    for (size_t i = 0; names[0] != '\0'; i++) {
        size_t len = strcspn(names, ",");
        buf_add(b, any ? "," : "{", 1);
        buf_add(b, names, len);
        buf_puts(b, "=\"");
        _escape(b, label_values != NULL && label_values[i] != NULL ? label_values[i] : "", true);
        buf_add(b, "\"", 1);
        any = true;
        names += len + (names[len] == ',');
    }
    if (extra_name != NULL) {
        buf_add(b, any ? "," : "{", 1);
        buf_printf(b, "%s=\"%s\"", extra_name, extra_value);
        any = true;
    }
    buf_puts(b, any ? "} " : " ");
}

void metrics_write_value(struct metric_writer *w, const struct metric_def *def,
                         const char *const *label_values, double value) {
    metrics_write_family(w, def);
    _series(w, def, "", label_values, NULL, NULL);
    _write_double(w->buf, value);
    buf_add(w->buf, "\n", 1);
}

void metrics_write_count(struct metric_writer *w, const struct metric_def *def,
                         const char *const *label_values, uint64_t value) {
    metrics_write_family(w, def);
    _series(w, def, "", label_values, NULL, NULL);
    buf_printf(w->buf, "%" PRIu64 "\n", value);
}

void metrics_write_histogram(struct metric_writer *w, const struct metric_def *def,
                             const char *const *label_values, const double *bounds, size_t nbounds,
                             const uint64_t *cumulative, double sum) {
    metrics_write_family(w, def);
    for (size_t i = 0; i <= nbounds; i++) {
        char le[40] = "+Inf";
        if (i < nbounds) {
            text_double(le, sizeof le, bounds[i]);
        }
        _series(w, def, "_bucket", label_values, "le", le);
        buf_printf(w->buf, "%" PRIu64 "\n", cumulative[i]);
    }
    _series(w, def, "_sum", label_values, NULL, NULL);
    _write_double(w->buf, sum);
    buf_add(w->buf, "\n", 1);
    _series(w, def, "_count", label_values, NULL, NULL);
    buf_printf(w->buf, "%" PRIu64 "\n", cumulative[nbounds]);
}

/* ---- collector registry ------------------------------------------------------------------ */

struct collector {
    metric_collector_fn fn;
    void *ctx;
};

/*
 * Not tied to setup: a module may register before the stats port starts or after it stops.
 * The lock is held through a scrape, so unregister returning means the collector is idle.
 */
static struct {
    pthread_mutex_t lock;
    struct collector *list;
    size_t count;
    size_t cap;
} registry = {.lock = PTHREAD_MUTEX_INITIALIZER};

int metrics_register(metric_collector_fn fn, void *ctx) {
    pthread_mutex_lock(&registry.lock);
    if (registry.count == registry.cap) {
        size_t cap = registry.cap ? registry.cap * 2 : 16;
        struct collector *list = realloc(registry.list, cap * sizeof(*list));
        if (list == NULL) {
            pthread_mutex_unlock(&registry.lock);
            return -1;
        }
        registry.list = list;
        registry.cap = cap;
    }
    registry.list[registry.count++] = (struct collector){fn, ctx};
    pthread_mutex_unlock(&registry.lock);
    return 0;
}

void metrics_unregister(metric_collector_fn fn, void *ctx) {
    pthread_mutex_lock(&registry.lock);
    for (size_t i = 0; i < registry.count; i++) {
        if (registry.list[i].fn == fn && registry.list[i].ctx == ctx) {
            memmove(&registry.list[i], &registry.list[i + 1],
                    (registry.count - i - 1) * sizeof(registry.list[0]));
            registry.count--;
            break;
        }
    }
    if (registry.count == 0) {
        /* Nothing left (teardown): give the memory back so leak checkers stay quiet. */
        free(registry.list);
        registry.list = NULL;
        registry.cap = 0;
    }
    pthread_mutex_unlock(&registry.lock);
}

int metrics_collect_all(struct buf *out) {
    buf_reset(out);
    struct metric_writer w = {.buf = out, .family = NULL};
    pthread_mutex_lock(&registry.lock);
    for (size_t i = 0; i < registry.count; i++) {
        registry.list[i].fn(&w, registry.list[i].ctx);
    }
    pthread_mutex_unlock(&registry.lock);
    return out->failed ? -1 : 0;
}

void metrics_writer_fail(struct metric_writer *w) {
    w->buf->failed = true;
}
