/* A view's source as the config describes it: names, copies, freeing, the paths a load may
 * be pointed at (snapshot.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapshot.h"

const char *mat_source_type_name(enum mat_source_type type) {
    switch (type) {
    case MAT_SOURCE_NONE:
        return "none";
    case MAT_SOURCE_PARQUET:
        return "parquet";
    case MAT_SOURCE_POSTGRES:
        return "postgres";
    }
    return "?";
}

void mat_source_deinit(struct mat_source *source) {
    free(source->path);
    free(source->dsn);
    free(source->table);
    free(source->query);
    free(source->event_timestamp_column);
    free(source->created_timestamp_column);
    for (char **p = source->allowed_paths; p != NULL && *p != NULL; p++) {
        free(*p);
    }
    free(source->allowed_paths);
    memset(source, 0, sizeof(*source));
}

static char *_dup(const char *s, bool *ok) {
    if (s == NULL) {
        return NULL;
    }
    char *copy = strdup(s);
    *ok &= copy != NULL;
    return copy;
}

static void _resolve(int64_t *value, int64_t fallback) {
    if (*value == MAT_TIMEOUT_UNSET) {
        *value = fallback;
    }
}

void mat_source_timeouts_resolve(struct mat_source_timeouts *t,
                                 const struct mat_source_timeouts *defaults) {
    if (defaults == NULL) {
        defaults = mat_default_timeouts();
    }
    _resolve(&t->load_us, defaults->load_us);
    _resolve(&t->connect_us, defaults->connect_us);
    _resolve(&t->statement_us, defaults->statement_us);
    _resolve(&t->read_us, defaults->read_us);
    _resolve(&t->tcp_user_us, defaults->tcp_user_us);
}

int mat_source_copy(struct mat_source *dst, const struct mat_source *src) {
    bool ok = true;
    *dst = (struct mat_source){
        .type = src->type,
        .timeouts = src->timeouts,
        .path = _dup(src->path, &ok),
        .dsn = _dup(src->dsn, &ok),
        .table = _dup(src->table, &ok),
        .query = _dup(src->query, &ok),
        .event_timestamp_column = _dup(src->event_timestamp_column, &ok),
        .created_timestamp_column = _dup(src->created_timestamp_column, &ok),
    };
    if (ok && src->allowed_paths != NULL) {
        size_t n = 0;
        while (src->allowed_paths[n] != NULL) {
            n++;
        }
        dst->allowed_paths = calloc(n + 1, sizeof(*dst->allowed_paths));
        ok = dst->allowed_paths != NULL;
        for (size_t i = 0; ok && i < n; i++) {
            dst->allowed_paths[i] = _dup(src->allowed_paths[i], &ok);
        }
    }
    if (!ok) {
        mat_source_deinit(dst);
        return -1;
    }
    return 0;
}

/* ---- allowed paths ------------------------------------------------------------------------ */

/* A path as components of an absolute one, from the string alone. */
struct lexical_path {
    char buf[PATH_MAX];
    const char *parts[PATH_MAX / 2];
    size_t nparts;
};

/*
 * Splits `path` (relative: to the working directory) into `out`, dropping "" and ".". A ".."
 * pops the component before it when `resolve_dotdot` (a configured root, trusted) and refuses
 * the path otherwise. Returns 0, or -1 (too long, a refused "..", no working directory).
 */
static int _lexical(const char *path, bool resolve_dotdot, struct lexical_path *out) {
    size_t n = 0;
    if (path[0] != '/') {
        if (getcwd(out->buf, sizeof out->buf) == NULL) {
            return -1;
        }
        n = strlen(out->buf);
    }
    int len = snprintf(out->buf + n, sizeof out->buf - n, "/%s", path);
    if (len < 0 || (size_t)len >= sizeof out->buf - n) {
        return -1;
    }
    out->nparts = 0;
    char *save = NULL;
    for (char *part = strtok_r(out->buf, "/", &save); part != NULL;
         part = strtok_r(NULL, "/", &save)) {
        if (strcmp(part, ".") == 0) {
            continue;
        }
        if (strcmp(part, "..") == 0) {
            if (!resolve_dotdot) {
                return -1;
            }
            out->nparts -= out->nparts > 0;
            continue;
        }
        out->parts[out->nparts++] = part;
    }
    return 0;
}

/* Whether `path` is `root` or lies under it, component by component. */
static bool _under(const struct lexical_path *path, const struct lexical_path *root) {
    if (path->nparts < root->nparts) {
        return false;
    }
    for (size_t i = 0; i < root->nparts; i++) {
        if (strcmp(path->parts[i], root->parts[i]) != 0) {
            return false;
        }
    }
    return true;
}

/* The default root of a parquet source: the folder before the first component with a
 * wildcard, else the folder holding the path. */
static int _default_root(const char *configured, struct lexical_path *root) {
    if (_lexical(configured, true, root) != 0) {
        return -1;
    }
    size_t keep = root->nparts > 0 ? root->nparts - 1 : 0;
    for (size_t i = 0; i < root->nparts; i++) {
        if (strpbrk(root->parts[i], "*?[{") != NULL) {
            keep = i;
            break;
        }
    }
    root->nparts = keep;
    return 0;
}

bool mat_source_path_allowed(const struct mat_source *source, const char *path, char *err,
                             size_t err_len) {
    static const char how[] = "list it in the view's source.allowed_paths";
    /* PATH_MAX-sized each: on the heap */
    struct lexical_path *want = malloc(sizeof(*want));
    struct lexical_path *root = malloc(sizeof(*root));
    bool allowed = false;
    if (want == NULL || root == NULL) {
        snprintf(err, err_len, "out of memory");
    } else if (path[0] == '\0' || _lexical(path, false, want) != 0) {
        snprintf(err, err_len,
                 "path \"%.200s\" is refused: it must be a path without \"..\" components, "
                 "shorter than %d bytes",
                 path, PATH_MAX);
    } else if (source->allowed_paths == NULL) {
        if (source->type == MAT_SOURCE_PARQUET && source->path != NULL &&
            _default_root(source->path, root) == 0) {
            allowed = _under(want, root);
        }
        if (!allowed) {
            snprintf(err, err_len,
                     "path \"%.200s\" is not under the directory of the view's configured "
                     "path; %s",
                     path, how);
        }
    } else {
        for (char *const *r = source->allowed_paths; *r != NULL && !allowed; r++) {
            allowed = _lexical(*r, true, root) == 0 && _under(want, root);
        }
        if (!allowed) {
            snprintf(err, err_len, "path \"%.200s\" is not under the view's allowed_paths; %s",
                     path, how);
        }
    }
    free(want);
    free(root);
    return allowed;
}
