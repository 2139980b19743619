/* The Parquet source (parquet.h): DuckDB reads the files, this file maps its vectors to rows. */
#include "parquet.h"

#include <duckdb.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "parquet_internal.h"
#include "sink.h"
#include "snapshot_internal.h"
#include "store/row.h"
#include "store/schema.h"
#include "common/clock.h"
#include "common/errors.h"
#include "common/options.h"

/* How one result column becomes one value of the view. */
enum conv {
    CONV_INT,        /* an integer type -> int32 / int64 / float / double / key */
    CONV_FLOAT,      /* FLOAT -> float */
    CONV_FLOAT_WIDE, /* FLOAT -> double */
    CONV_DOUBLE,     /* DOUBLE -> double */
    CONV_DECIMAL,    /* DECIMAL -> float / double */
    CONV_BOOL,
    CONV_STRING, /* VARCHAR / BLOB -> string / bytes / key */
    CONV_TIME,   /* a timestamp type or DATE -> timestamp / event / created */
    CONV_LIST,   /* LIST -> a list type; its elements convert as `element` says */
};

/* How a list's elements become the list type's element type: the scalar plan, for the
 * element type, of the LIST's child type. */
struct element_plan {
    enum conv conv;
    duckdb_type type;
    duckdb_type decimal_int;
    uint8_t decimal_scale;
    bool direct; /* the child's bytes are the row's: copied as they are */
};

enum role { ROLE_KEY, ROLE_EVENT, ROLE_CREATED, ROLE_FEATURE };

struct column {
    enum role role;
    uint32_t index;         /* key or feature index */
    const char *name;       /* as configured */
    char *file_name;        /* as the files spell it (matched case-insensitively) */
    enum store_type target; /* features; keys use INT64 / STRING */
    enum conv conv;
    duckdb_type type;        /* the column's type */
    duckdb_type decimal_int; /* DECIMAL: its storage type */
    uint8_t decimal_scale;
    struct element_plan element; /* LIST */
};

/* Why the watchdog interrupted DuckDB. */
enum watch_cause { WATCH_NONE, WATCH_TIMEOUT, WATCH_STOPPING };

/*
 * The watchdog: a thread beside the one reading, from open to close, that interrupts DuckDB
 * (duckdb_interrupt) once the read's time is up or the materializer stops. DuckDB clears an
 * interrupt when the next query starts, so it interrupts again every WATCH_TICK_US until the
 * reader, which checks `cause` between queries and chunks, gives up.
 */
#define WATCH_TICK_US (100 * 1000)
struct watchdog {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* CLOCK_MONOTONIC */
    bool started;
    bool done;           /* under lock: the reader closes */
    int64_t deadline_us; /* monotonic; INT64_MAX: none */
    int64_t timeout_us;  /* as configured, for messages; 0: none */
    _Atomic int cause;   /* enum watch_cause */
    duckdb_connection conn;
};

struct mat_parquet {
    const struct store_schema *schema;
    char *path;    /* as configured, for messages */
    char *pattern; /* what read_parquet() reads */
    char **files;  /* what the pattern matched, in glob order */
    size_t nfiles;
    uint64_t rows_read; /* rows of the result read so far, for messages */
    struct watchdog watch;
    bool hive;
    char *created_name;
    int64_t watermark_us;
    uint64_t expected_rows;
    duckdb_database db;
    duckdb_connection conn;
    bool connected;
    struct column *columns; /* result order: keys, event, [created], features */
    uint32_t ncolumns;
    /* per-row scratch for list conversions */
    uint8_t *elements; /* an array list's elements, 8 bytes each at most */
    const char **strs;
    uint32_t *lens;
    size_t scratch_cap;
};

/* ---- small helpers ------------------------------------------------------------------------ */

/* Appends `text` to `buf` quoted with `quote` (' for literals, " for identifiers), doubling
 * any quote inside: the only way config text reaches SQL. Returns -1 when it does not fit. */
static int _append_quoted(char *buf, size_t cap, size_t *len, const char *text, char quote) {
    if (*len + 2 >= cap) {
        return -1;
    }
    buf[(*len)++] = quote;
    for (const char *p = text; *p; p++) {
        if (*len + 3 >= cap) {
            return -1;
        }
        if (*p == quote) {
            buf[(*len)++] = quote;
        }
        buf[(*len)++] = *p;
    }
    buf[(*len)++] = quote;
    buf[*len] = '\0';
    return 0;
}

__attribute__((format(printf, 4, 5))) static int _append(char *buf, size_t cap, size_t *len,
                                                         const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap - *len) {
        return -1;
    }
    *len += (size_t)n;
    return 0;
}

static bool _is_int(duckdb_type t) {
    switch (t) {
    case DUCKDB_TYPE_TINYINT:
    case DUCKDB_TYPE_SMALLINT:
    case DUCKDB_TYPE_INTEGER:
    case DUCKDB_TYPE_BIGINT:
    case DUCKDB_TYPE_UTINYINT:
    case DUCKDB_TYPE_USMALLINT:
    case DUCKDB_TYPE_UINTEGER:
    case DUCKDB_TYPE_UBIGINT:
        return true;
    default:
        return false;
    }
}

/* Integer types whose every value a float (24-bit) or double (53-bit) holds exactly. */
static bool _int_fits_float(duckdb_type t) {
    return t == DUCKDB_TYPE_TINYINT || t == DUCKDB_TYPE_SMALLINT || t == DUCKDB_TYPE_UTINYINT ||
           t == DUCKDB_TYPE_USMALLINT;
}

static bool _int_fits_double(duckdb_type t) {
    return _int_fits_float(t) || t == DUCKDB_TYPE_INTEGER || t == DUCKDB_TYPE_UINTEGER;
}

static bool _is_time(duckdb_type t) {
    return t == DUCKDB_TYPE_TIMESTAMP || t == DUCKDB_TYPE_TIMESTAMP_S ||
           t == DUCKDB_TYPE_TIMESTAMP_MS || t == DUCKDB_TYPE_TIMESTAMP_NS ||
           t == DUCKDB_TYPE_TIMESTAMP_TZ || t == DUCKDB_TYPE_DATE;
}

/*
 * Decides how column `c` (DuckDB type `type`) becomes its target. Returns false when it
 * cannot: the caller reports the mismatch.
 */
static bool _plan_conversion(struct column *c, duckdb_logical_type type) {
    duckdb_type t = duckdb_get_type_id(type);
    c->type = t;
    if (c->role == ROLE_EVENT || c->role == ROLE_CREATED) {
        c->conv = CONV_TIME;
        return _is_time(t);
    }
    if (c->role == ROLE_KEY) {
        c->conv = c->target == STORE_TYPE_INT64 ? CONV_INT : CONV_STRING;
        return c->target == STORE_TYPE_INT64 ? _is_int(t) : t == DUCKDB_TYPE_VARCHAR;
    }
    switch (c->target) {
    case STORE_TYPE_INT32:
    case STORE_TYPE_INT64:
        c->conv = CONV_INT;
        return _is_int(t);
    case STORE_TYPE_FLOAT:
        if (t == DUCKDB_TYPE_DECIMAL) {
            c->conv = CONV_DECIMAL;
            c->decimal_int = duckdb_decimal_internal_type(type);
            c->decimal_scale = duckdb_decimal_scale(type);
            return true;
        }
        c->conv = t == DUCKDB_TYPE_FLOAT ? CONV_FLOAT : CONV_INT;
        return t == DUCKDB_TYPE_FLOAT || _int_fits_float(t);
    case STORE_TYPE_DOUBLE:
        if (t == DUCKDB_TYPE_DECIMAL) {
            c->conv = CONV_DECIMAL;
            c->decimal_int = duckdb_decimal_internal_type(type);
            c->decimal_scale = duckdb_decimal_scale(type);
            return true;
        }
        c->conv = t == DUCKDB_TYPE_DOUBLE  ? CONV_DOUBLE
                  : t == DUCKDB_TYPE_FLOAT ? CONV_FLOAT_WIDE
                                           : CONV_INT;
        return t == DUCKDB_TYPE_DOUBLE || t == DUCKDB_TYPE_FLOAT || _int_fits_double(t);
    case STORE_TYPE_BOOL:
        c->conv = CONV_BOOL;
        return t == DUCKDB_TYPE_BOOLEAN;
    case STORE_TYPE_STRING:
    case STORE_TYPE_BYTES:
        c->conv = CONV_STRING;
        return t == DUCKDB_TYPE_VARCHAR || t == DUCKDB_TYPE_BLOB;
    case STORE_TYPE_TIMESTAMP:
        c->conv = CONV_TIME;
        return _is_time(t);
    default:
        break;
    }
    /* lists: the child type must convert to the element type as a scalar would */
    if (t != DUCKDB_TYPE_LIST) {
        return false;
    }
    c->conv = CONV_LIST;
    duckdb_logical_type child = duckdb_list_type_child_type(type);
    struct column element = {.role = ROLE_FEATURE, .target = store_type_element(c->target)};
    bool ok = _plan_conversion(&element, child);
    duckdb_destroy_logical_type(&child);
    /* float_list has always taken DOUBLE lists, as embeddings are often written; an element
     * beyond float range is refused when read */
    if (!ok && c->target == STORE_TYPE_FLOAT_LIST && element.type == DUCKDB_TYPE_DOUBLE) {
        element.conv = CONV_DOUBLE;
        ok = true;
    }
    duckdb_type et = element.type;
    c->element = (struct element_plan){
        .conv = element.conv,
        .type = et,
        .decimal_int = element.decimal_int,
        .decimal_scale = element.decimal_scale,
        .direct = (c->target == STORE_TYPE_FLOAT_LIST && et == DUCKDB_TYPE_FLOAT) ||
                  (c->target == STORE_TYPE_DOUBLE_LIST && et == DUCKDB_TYPE_DOUBLE) ||
                  (c->target == STORE_TYPE_INT32_LIST && et == DUCKDB_TYPE_INTEGER) ||
                  (c->target == STORE_TYPE_INT64_LIST && et == DUCKDB_TYPE_BIGINT) ||
                  (c->target == STORE_TYPE_BOOL_LIST && et == DUCKDB_TYPE_BOOLEAN) ||
                  (c->target == STORE_TYPE_TIMESTAMP_LIST &&
                   (et == DUCKDB_TYPE_TIMESTAMP || et == DUCKDB_TYPE_TIMESTAMP_TZ)),
    };
    return ok;
}

/* ---- values ------------------------------------------------------------------------------- */

/* Integer `row` of a vector of integer type `t`. *big is set for a UBIGINT above INT64_MAX. */
static inline int64_t _int_at(duckdb_type t, const void *data, uint64_t row, bool *big) {
    switch (t) {
    case DUCKDB_TYPE_TINYINT:
        return ((const int8_t *)data)[row];
    case DUCKDB_TYPE_SMALLINT:
        return ((const int16_t *)data)[row];
    case DUCKDB_TYPE_INTEGER:
        return ((const int32_t *)data)[row];
    case DUCKDB_TYPE_BIGINT:
        return ((const int64_t *)data)[row];
    case DUCKDB_TYPE_UTINYINT:
        return ((const uint8_t *)data)[row];
    case DUCKDB_TYPE_USMALLINT:
        return ((const uint16_t *)data)[row];
    case DUCKDB_TYPE_UINTEGER:
        return ((const uint32_t *)data)[row];
    default: {
        uint64_t v = ((const uint64_t *)data)[row];
        *big = v > INT64_MAX;
        return (int64_t)v;
    }
    }
}

/* Microseconds since the epoch for `row` of a time vector. -1 when it does not fit. */
static inline int _time_at(duckdb_type t, const void *data, uint64_t row, int64_t *us) {
    int64_t v;
    switch (t) {
    case DUCKDB_TYPE_TIMESTAMP:
    case DUCKDB_TYPE_TIMESTAMP_TZ:
        /* TIMESTAMP WITH TIME ZONE is stored as the UTC instant: no zone to undo. */
        *us = ((const int64_t *)data)[row];
        return 0;
    case DUCKDB_TYPE_TIMESTAMP_NS:
        v = ((const int64_t *)data)[row];
        /* Round down, also before 1970: a sub-µs instant belongs to the µs it falls in. */
        *us = v / 1000 - (v % 1000 < 0);
        return 0;
    case DUCKDB_TYPE_TIMESTAMP_MS:
        return __builtin_mul_overflow(((const int64_t *)data)[row], 1000, us) ? -1 : 0;
    case DUCKDB_TYPE_TIMESTAMP_S:
        return __builtin_mul_overflow(((const int64_t *)data)[row], 1000000, us) ? -1 : 0;
    default: /* DATE: days since the epoch, as midnight UTC */
        *us = (int64_t)((const int32_t *)data)[row] * 86400 * 1000000;
        return 0;
    }
}

static inline bool _valid(const uint64_t *validity, uint64_t row) {
    return validity == NULL || ((validity[row >> 6] >> (row & 63)) & 1);
}

static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static __int128 _decimal_raw(const struct column *c, const void *data, uint64_t row) {
    switch (c->decimal_int) {
    case DUCKDB_TYPE_SMALLINT:
        return ((const int16_t *)data)[row];
    case DUCKDB_TYPE_INTEGER:
        return ((const int32_t *)data)[row];
    case DUCKDB_TYPE_BIGINT:
        return ((const int64_t *)data)[row];
    default: {
        const duckdb_hugeint *h = &((const duckdb_hugeint *)data)[row];
        return (__int128)(((unsigned __int128)(uint64_t)h->upper << 64) | h->lower);
    }
    }
}

static double _decimal_double(const struct column *c, const void *data, uint64_t row) {
    __int128 v = _decimal_raw(c, data, row);
    /* Both operands exact, so the one division rounds correctly. */
    if (c->decimal_scale <= 22 && v <= ((__int128)1 << 53) && v >= -((__int128)1 << 53)) {
        return (double)(int64_t)v / POW10[c->decimal_scale];
    }
    char text[64];
    mat_parquet_decimal_text(v, c->decimal_scale, text, sizeof text);
    return strtod(text, NULL);
}

static float _decimal_float(const struct column *c, const void *data, uint64_t row) {
    char text[64];
    mat_parquet_decimal_text(_decimal_raw(c, data, row), c->decimal_scale, text, sizeof text);
    return strtof(text, NULL);
}

/* ---- open --------------------------------------------------------------------------------- */

static int _open_db(struct mat_parquet *p, uint32_t threads, char *err, size_t err_len) {
    duckdb_config config;
    if (duckdb_create_config(&config) != DuckDBSuccess) {
        return errors_set(err, err_len, "view %s: cannot configure DuckDB", p->schema->view);
    }
    char nthreads[16];
    snprintf(nthreads, sizeof nthreads, "%u", threads);
    /* Parquet is built into libduckdb: never fetch an extension at run time. */
    bool ok = duckdb_set_config(config, "autoinstall_known_extensions", "false") == DuckDBSuccess &&
              duckdb_set_config(config, "autoload_known_extensions", "false") == DuckDBSuccess &&
              (threads == 0 || duckdb_set_config(config, "threads", nthreads) == DuckDBSuccess);
    char *open_err = NULL;
    if (ok && duckdb_open_ext(NULL, &p->db, config, &open_err) != DuckDBSuccess) {
        errors_set(err, err_len, "view %s: cannot start DuckDB: %s", p->schema->view,
                   open_err != NULL ? open_err : "(no message)");
        duckdb_free(open_err);
        duckdb_destroy_config(&config);
        return -1;
    }
    duckdb_destroy_config(&config);
    if (!ok) {
        return errors_set(err, err_len, "view %s: cannot configure DuckDB", p->schema->view);
    }
    if (duckdb_connect(p->db, &p->conn) != DuckDBSuccess) {
        duckdb_close(&p->db);
        return errors_set(err, err_len, "view %s: cannot connect to DuckDB", p->schema->view);
    }
    p->connected = true;
    return 0;
}

/* ---- the watchdog ------------------------------------------------------------------------- */

static void *_watch_thread(void *arg) {
    struct watchdog *w = arg;
    pthread_mutex_lock(&w->lock);
    while (!w->done) {
        int64_t now = clock_mono_us();
        if (atomic_load(&w->cause) == WATCH_NONE) {
            if (now >= w->deadline_us) {
                atomic_store(&w->cause, WATCH_TIMEOUT);
            } else if (mat_stopping()) {
                atomic_store(&w->cause, WATCH_STOPPING);
            }
        }
        if (atomic_load(&w->cause) != WATCH_NONE) {
            duckdb_interrupt(w->conn);
        }
        int64_t until = now + WATCH_TICK_US;
        if (atomic_load(&w->cause) == WATCH_NONE && w->deadline_us < until) {
            until = w->deadline_us;
        }
        struct timespec ts = {.tv_sec = until / 1000000, .tv_nsec = (long)(until % 1000000) * 1000};
        pthread_cond_timedwait(&w->wake, &w->lock, &ts);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* Starts the watchdog on the open connection; `timeout_us` 0: only the materializer's stop. */
static int _watch_start(struct mat_parquet *p, int64_t timeout_us, char *err, size_t err_len) {
    struct watchdog *w = &p->watch;
    w->timeout_us = timeout_us > 0 ? timeout_us : 0;
    w->deadline_us = timeout_us > 0 ? clock_mono_us() + timeout_us : INT64_MAX;
    w->conn = p->conn;
    atomic_init(&w->cause, WATCH_NONE);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&w->lock, NULL);
    /* Started from the loads thread, it inherits its name and nice value. */
    int rc = pthread_create(&w->thread, NULL, _watch_thread, w);
    if (rc != 0) {
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        return errors_set(err, err_len, "view %s: cannot start the read's watchdog: %s",
                          p->schema->view, strerror(rc));
    }
    w->started = true;
    return 0;
}

static void _watch_stop(struct mat_parquet *p) {
    struct watchdog *w = &p->watch;
    if (!w->started) {
        return;
    }
    pthread_mutex_lock(&w->lock);
    w->done = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    w->started = false;
}

static bool _interrupted(const struct mat_parquet *p) {
    return p->watch.started && atomic_load(&p->watch.cause) != WATCH_NONE;
}

/* Replaces whatever DuckDB said with why the watchdog stopped it. Returns -1. */
static int _interrupted_error(const struct mat_parquet *p, char *err, size_t err_len) {
    if (atomic_load(&p->watch.cause) == WATCH_STOPPING) {
        return errors_set(err, err_len,
                          "view %s: %s: the materializer is shutting down; the read was "
                          "interrupted after %llu rows",
                          p->schema->view, p->path, (unsigned long long)p->rows_read);
    }
    char limit[32];
    option_format_duration(p->watch.timeout_us, limit, sizeof limit);
    return errors_set(err, err_len,
                      "view %s: %s: the read took longer than its load_timeout (%s) and was "
                      "interrupted after %llu rows",
                      p->schema->view, p->path, limit, (unsigned long long)p->rows_read);
}

/* Runs `sql` (a statement or a query whose result is small). */
static int _query(struct mat_parquet *p, const char *sql, duckdb_result *result, char *err,
                  size_t err_len) {
    if (duckdb_query(p->conn, sql, result) != DuckDBSuccess) {
        errors_set(err, err_len, "view %s: %s: %s", p->schema->view, p->path,
                   duckdb_result_error(result));
        duckdb_destroy_result(result);
        return -1;
    }
    return 0;
}

/* Turns the configured path into a pattern for read_parquet() and checks it matches files. */
static int _find_files(struct mat_parquet *p, char *err, size_t err_len) {
    const char *path = p->path;
    size_t len = strlen(path);
    struct stat st;
    bool glob = strpbrk(path, "*?[") != NULL;
    if (!glob && stat(path, &st) != 0) {
        return errors_set(err, err_len, "view %s: %s: %s", p->schema->view, path, strerror(errno));
    }
    if (!glob && S_ISDIR(st.st_mode)) {
        while (len > 1 && path[len - 1] == '/') {
            len--;
        }
        if (asprintf(&p->pattern, "%.*s/**/*.parquet", (int)len, path) < 0) {
            p->pattern = NULL;
        }
    } else {
        p->pattern = strdup(path);
    }
    if (p->pattern == NULL) {
        return errors_set(err, err_len, "view %s: out of memory", p->schema->view);
    }
    char sql[8192];
    size_t n = 0;
    if (_append(sql, sizeof sql, &n, "SELECT file FROM glob(") != 0 ||
        _append_quoted(sql, sizeof sql, &n, p->pattern, '\'') != 0 ||
        _append(sql, sizeof sql, &n, ")") != 0) {
        return errors_set(err, err_len, "view %s: path too long: %s", p->schema->view, path);
    }
    duckdb_result result;
    if (_query(p, sql, &result, err, err_len) != 0) {
        return -1;
    }
    idx_t files = duckdb_row_count(&result);
    p->files = calloc(files + 1, sizeof(*p->files));
    if (p->files == NULL) {
        duckdb_destroy_result(&result);
        return errors_set(err, err_len, "view %s: out of memory", p->schema->view);
    }
    /* Hive partitioning when any folder on the way to a file is named k=v. */
    for (idx_t i = 0; i < files; i++) {
        char *file = duckdb_value_varchar(&result, 0, i);
        p->files[p->nfiles] = file != NULL ? strdup(file) : NULL;
        duckdb_free(file);
        if (p->files[p->nfiles] == NULL) {
            duckdb_destroy_result(&result);
            return errors_set(err, err_len, "view %s: out of memory", p->schema->view);
        }
        const char *slash = strrchr(p->files[p->nfiles], '/');
        for (const char *c = p->files[p->nfiles]; slash != NULL && c < slash; c++) {
            p->hive |= *c == '=';
        }
        p->nfiles++;
    }
    duckdb_destroy_result(&result);
    if (files == 0) {
        return errors_set(err, err_len, "view %s: no Parquet files match %s", p->schema->view,
                          path);
    }
    return 0;
}

/* read_parquet(...) for the files. */
static int _append_source(const struct mat_parquet *p, char *sql, size_t cap, size_t *n) {
    if (_append(sql, cap, n, "read_parquet(") != 0 ||
        _append_quoted(sql, cap, n, p->pattern, '\'') != 0) {
        return -1;
    }
    return _append(sql, cap, n, ", hive_partitioning = %s, union_by_name = true)",
                   p->hive ? "true" : "false");
}

static int _add_column(struct mat_parquet *p, enum role role, uint32_t index, const char *name,
                       enum store_type target) {
    struct column *c = &p->columns[p->ncolumns++];
    *c = (struct column){.role = role, .index = index, .name = name, .target = target};
    return 0;
}

/* What the view wants of column `c`, for messages. */
static const char *_wants(const struct column *c) {
    return c->role == ROLE_EVENT || c->role == ROLE_CREATED ? "a timestamp"
                                                            : store_type_name(c->target);
}

/* Whether a folder on the way to `file` is the hive partition `name=...`. */
static bool _hive_key(const char *file, const char *name) {
    size_t len = strlen(name);
    const char *slash = strrchr(file, '/');
    const char *c = file;
    while (slash != NULL && c < slash) {
        if (strncasecmp(c, name, len) == 0 && c[len] == '=') {
            return true;
        }
        c = strchr(c, '/') + 1; /* c < slash: a '/' follows */
    }
    return false;
}

/*
 * Checks each file of a glob or directory alone. DuckDB reads several files as the union of
 * their columns (union_by_name): a column one file lacks would read as null in every row of
 * that file, and one it has with another type would be cast to the union's. So every file must
 * have each needed column (a hive partition key may come from its path instead) with a type
 * that maps to the view's. Returns 0, or -1 with the file and the column in `err`. Reads each
 * file's footer once more.
 */
static int _check_each_file(struct mat_parquet *p, char *err, size_t err_len) {
    const struct store_schema *schema = p->schema;
    for (size_t i = 0; i < p->nfiles; i++) {
        if (_interrupted(p)) {
            return _interrupted_error(p, err, err_len);
        }
        const char *file = p->files[i];
        char sql[8192];
        size_t n = 0;
        if (_append(sql, sizeof sql, &n, "SELECT * FROM read_parquet(") != 0 ||
            _append_quoted(sql, sizeof sql, &n, file, '\'') != 0 ||
            _append(sql, sizeof sql, &n, ") LIMIT 0") != 0) {
            return errors_set(err, err_len, "view %s: path too long: %s", schema->view, file);
        }
        duckdb_prepared_statement stmt;
        if (duckdb_prepare(p->conn, sql, &stmt) != DuckDBSuccess) {
            errors_set(err, err_len, "view %s: file %s: %s", schema->view, file,
                       duckdb_prepare_error(stmt));
            duckdb_destroy_prepare(&stmt);
            return -1;
        }
        idx_t ncols = duckdb_prepared_statement_column_count(stmt);
        int rc = 0;
        for (uint32_t c = 0; c < p->ncolumns && rc == 0; c++) {
            struct column probe = p->columns[c];
            idx_t found = ncols;
            for (idx_t j = 0; j < ncols && found == ncols; j++) {
                char *name = (char *)duckdb_prepared_statement_column_name(stmt, j);
                if (name != NULL && strcasecmp(name, probe.name) == 0) {
                    found = j;
                }
                duckdb_free(name);
            }
            if (found == ncols) {
                if (!p->hive || !_hive_key(file, probe.name)) {
                    rc = errors_set(err, err_len,
                                    "view %s: file %s has no column %s (other files of %s have "
                                    "it; it would read as null in every row of this file)",
                                    schema->view, file, probe.name, p->path);
                }
                continue;
            }
            duckdb_logical_type type = duckdb_prepared_statement_column_logical_type(stmt, found);
            if (!_plan_conversion(&probe, type)) {
                char have[96];
                mat_parquet_type_name(type, have, sizeof have);
                const char *wants = _wants(&probe);
                rc = errors_set(err, err_len,
                                "view %s: column %s is %s in file %s; the view wants %s",
                                schema->view, probe.name, have, file, wants);
            }
            duckdb_destroy_logical_type(&type);
        }
        duckdb_destroy_prepare(&stmt);
        if (rc != 0) {
            return _interrupted(p) ? _interrupted_error(p, err, err_len) : -1;
        }
    }
    return 0;
}

/* Matches the needed columns against the files' and plans each conversion. */
static int _check_columns(struct mat_parquet *p, const struct mat_parquet_options *o, char *err,
                          size_t err_len) {
    const struct store_schema *schema = p->schema;
    p->columns = calloc(schema->nkeys + 2 + schema->nfeatures, sizeof(*p->columns));
    if (p->columns == NULL) {
        return errors_set(err, err_len, "view %s: out of memory", schema->view);
    }
    for (uint32_t k = 0; k < schema->nkeys; k++) {
        _add_column(p, ROLE_KEY, k, schema->keys[k].name,
                    schema->keys[k].type == STORE_KEY_INT64 ? STORE_TYPE_INT64 : STORE_TYPE_STRING);
    }
    _add_column(p, ROLE_EVENT, 0, o->event_timestamp_column, STORE_TYPE_TIMESTAMP);
    if (o->created_timestamp_column != NULL) {
        _add_column(p, ROLE_CREATED, 0, o->created_timestamp_column, STORE_TYPE_TIMESTAMP);
    }
    for (uint32_t f = 0; f < schema->nfeatures; f++) {
        _add_column(p, ROLE_FEATURE, f, schema->features[f].name, schema->features[f].type);
    }

    char sql[8192];
    size_t n = 0;
    if (_append(sql, sizeof sql, &n, "SELECT * FROM ") != 0 ||
        _append_source(p, sql, sizeof sql, &n) != 0 ||
        _append(sql, sizeof sql, &n, " LIMIT 0") != 0) {
        return errors_set(err, err_len, "view %s: path too long: %s", schema->view, p->path);
    }
    duckdb_prepared_statement stmt;
    if (duckdb_prepare(p->conn, sql, &stmt) != DuckDBSuccess) {
        errors_set(err, err_len, "view %s: %s: %s", schema->view, p->path,
                   duckdb_prepare_error(stmt));
        duckdb_destroy_prepare(&stmt);
        return -1;
    }
    idx_t ncols = duckdb_prepared_statement_column_count(stmt);
    /* The files' column names (each a copy the caller frees with duckdb_free). */
    char **names = calloc(ncols + 1, sizeof(*names));
    int rc = 0;
    bool mismatch = false; /* a column's type in the union does not map */
    if (names == NULL) {
        rc = errors_set(err, err_len, "view %s: out of memory", schema->view);
    }
    for (idx_t j = 0; j < ncols && rc == 0; j++) {
        names[j] = (char *)duckdb_prepared_statement_column_name(stmt, j);
    }
    for (uint32_t i = 0; i < p->ncolumns && rc == 0; i++) {
        struct column *c = &p->columns[i];
        idx_t found = ncols;
        for (idx_t j = 0; j < ncols && found == ncols; j++) {
            if (names[j] != NULL && strcasecmp(names[j], c->name) == 0) {
                found = j;
            }
        }
        if (found == ncols) {
            char have[1024];
            size_t h = 0;
            have[0] = '\0';
            for (idx_t j = 0; j < ncols; j++) {
                _append(have, sizeof have, &h, "%s%s", j ? ", " : "", names[j] ? names[j] : "?");
            }
            rc = errors_set(err, err_len, "view %s: column %s is missing in %s (it has: %s)",
                            schema->view, c->name, p->path, have);
            break;
        }
        c->file_name = strdup(names[found]);
        duckdb_logical_type type = duckdb_prepared_statement_column_logical_type(stmt, found);
        if (c->file_name == NULL) {
            rc = errors_set(err, err_len, "view %s: out of memory", schema->view);
        } else if (!_plan_conversion(c, type)) {
            char have[96];
            mat_parquet_type_name(type, have, sizeof have);
            const char *wants = _wants(c);
            rc = errors_set(err, err_len, "view %s: column %s is %s in %s; the view wants %s",
                            schema->view, c->name, have, p->path, wants);
            mismatch = true;
        }
        duckdb_destroy_logical_type(&type);
    }
    for (idx_t j = 0; names != NULL && j < ncols; j++) {
        duckdb_free(names[j]);
    }
    free(names);
    duckdb_destroy_prepare(&stmt);
    /* The union of several files can hide a file that lacks a column or has it with another
     * type; when the union's type is already wrong, a file is to blame: name it. */
    if (p->nfiles > 1 && (rc == 0 || mismatch)) {
        char why[MAT_ERROR_LEN];
        if (_check_each_file(p, why, sizeof why) != 0) {
            rc = errors_set(err, err_len, "%s", why);
        }
    }
    return rc;
}

static void _count_rows(struct mat_parquet *p) {
    char sql[8192];
    size_t n = 0;
    char ignored[256];
    if (_append(sql, sizeof sql, &n, "SELECT sum(num_rows)::BIGINT FROM parquet_file_metadata(") !=
            0 ||
        _append_quoted(sql, sizeof sql, &n, p->pattern, '\'') != 0 ||
        _append(sql, sizeof sql, &n, ")") != 0) {
        return;
    }
    duckdb_result result;
    if (_query(p, sql, &result, ignored, sizeof ignored) == 0) {
        int64_t rows = duckdb_value_int64(&result, 0, 0);
        p->expected_rows = rows > 0 ? (uint64_t)rows : 0;
        duckdb_destroy_result(&result);
    }
}

int mat_parquet_open(const struct store_schema *schema, const struct mat_parquet_options *options,
                     struct mat_parquet **out, char *err, size_t err_len) {
    *out = NULL;
    if (options->path == NULL || options->event_timestamp_column == NULL) {
        return errors_set(err, err_len,
                          "view %s: a Parquet source needs a path and an event "
                          "timestamp column",
                          schema->view);
    }
    struct mat_parquet *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->path = strdup(options->path)) == NULL) {
        free(p);
        return errors_set(err, err_len, "view %s: out of memory", schema->view);
    }
    p->schema = schema;
    p->watermark_us = options->watermark_us;
    if (_open_db(p, options->threads, err, err_len) != 0 ||
        _watch_start(p, options->timeout_us, err, err_len) != 0 ||
        _find_files(p, err, err_len) != 0 || _check_columns(p, options, err, err_len) != 0) {
        if (_interrupted(p)) {
            _interrupted_error(p, err, err_len);
        }
        mat_parquet_close(p);
        return -1;
    }
    _count_rows(p);
    if (_interrupted(p)) {
        _interrupted_error(p, err, err_len);
        mat_parquet_close(p);
        return -1;
    }
    *out = p;
    return 0;
}

uint64_t mat_parquet_expected_rows(const struct mat_parquet *source) {
    return source->expected_rows;
}

void mat_parquet_close(struct mat_parquet *p) {
    if (p == NULL) {
        return;
    }
    _watch_stop(p); /* before the connection it interrupts goes */
    if (p->connected) {
        duckdb_disconnect(&p->conn);
        duckdb_close(&p->db);
    }
    for (uint32_t i = 0; i < p->ncolumns; i++) {
        free(p->columns[i].file_name);
    }
    for (size_t i = 0; i < p->nfiles; i++) {
        free(p->files[i]);
    }
    free(p->files);
    free(p->columns);
    free(p->path);
    free(p->pattern);
    free(p->elements);
    free(p->strs);
    free(p->lens);
    free(p);
}

/* ---- read --------------------------------------------------------------------------------- */

/* One chunk's view of a column. */
struct vec {
    const void *data;
    const uint64_t *validity;
    /* LIST: the elements */
    const void *child_data;
    const uint64_t *child_validity;
};

/* Where a row came from, for messages: vecs[ncolumns] (the file) and after it the row number
 * inside that file. */
struct origin {
    const struct vec *file;
    const struct vec *row;
};

static int _value_error(const struct mat_parquet *p, const struct column *c, const struct origin *o,
                        uint64_t r, char *err, size_t err_len, const char *what) {
    duckdb_string_t s = ((const duckdb_string_t *)o->file->data)[r];
    const char *file = duckdb_string_t_data(&s);
    return errors_set(err, err_len, "view %s: column %s, file %.*s, row %lld: %s", p->schema->view,
                      c->name, (int)duckdb_string_t_length(s), file,
                      (long long)((const int64_t *)o->row->data)[r], what);
}

static int _grow_scratch(struct mat_parquet *p, size_t n) {
    if (n <= p->scratch_cap) {
        return 0;
    }
    size_t cap = n < 64 ? 64 : n * 2;
    uint8_t *elements = realloc(p->elements, cap * 8);
    if (elements != NULL) {
        p->elements = elements;
    }
    const char **strs = realloc(p->strs, cap * sizeof(*strs));
    if (strs != NULL) {
        p->strs = strs;
    }
    uint32_t *lens = realloc(p->lens, cap * sizeof(*lens));
    if (lens != NULL) {
        p->lens = lens;
    }
    if (elements == NULL || strs == NULL || lens == NULL) {
        return -1;
    }
    p->scratch_cap = cap;
    return 0;
}

/*
 * Value `r` of vector data `data`, converted as column `c` planned (a scalar conversion), into
 * `out` of type c->target; strings and bytes point into the vector. Returns 0, or -1 with
 * what is wrong with the value in `what`.
 */
static int _scalar_value(const struct column *c, const void *data, uint64_t r,
                         struct store_value *out, char *what, size_t what_len) {
    out->type = c->target;
    switch (c->conv) {
    case CONV_INT: {
        bool big = false;
        int64_t x = _int_at(c->type, data, r, &big);
        switch (c->target) {
        case STORE_TYPE_INT32:
            if (big || x < INT32_MIN || x > INT32_MAX) {
                snprintf(what, what_len, "%s%lld does not fit int32", big ? "a value over " : "",
                         big ? (long long)INT64_MAX : (long long)x);
                return -1;
            }
            out->i32 = (int32_t)x;
            return 0;
        case STORE_TYPE_INT64:
            if (big) {
                snprintf(what, what_len, "the value does not fit int64");
                return -1;
            }
            out->i64 = x;
            return 0;
        case STORE_TYPE_FLOAT:
            out->f32 = (float)x; /* exact: planned for small types only */
            return 0;
        default:
            out->f64 = (double)x; /* exact: up to 32-bit types */
            return 0;
        }
    }
    case CONV_FLOAT:
        out->f32 = ((const float *)data)[r];
        return 0;
    case CONV_FLOAT_WIDE:
        out->f64 = (double)((const float *)data)[r];
        return 0;
    case CONV_DOUBLE: {
        double d = ((const double *)data)[r];
        if (c->target == STORE_TYPE_DOUBLE) {
            out->f64 = d;
            return 0;
        }
        out->f32 = (float)d; /* a float_list element from a DOUBLE list */
        if (isinf(out->f32) && !isinf(d)) {
            snprintf(what, what_len, "%g is beyond float range", d);
            return -1;
        }
        return 0;
    }
    case CONV_DECIMAL:
        if (c->target == STORE_TYPE_FLOAT) {
            out->f32 = _decimal_float(c, data, r);
        } else {
            out->f64 = _decimal_double(c, data, r);
        }
        return 0;
    case CONV_BOOL:
        out->b = ((const bool *)data)[r];
        return 0;
    case CONV_STRING: {
        duckdb_string_t *s = &((duckdb_string_t *)data)[r];
        out->var.data = duckdb_string_t_data(s);
        out->var.bytes = duckdb_string_t_length(*s);
        out->var.count = 0;
        return 0;
    }
    case CONV_TIME:
        if (_time_at(c->type, data, r, &out->ts_us) != 0) {
            snprintf(what, what_len, "the timestamp is out of range");
            return -1;
        }
        return 0;
    default:
        snprintf(what, what_len, "not a scalar");
        return -1;
    }
}

static int _set_list(struct mat_parquet *p, const struct column *c, const struct vec *v, uint64_t r,
                     struct store_row_builder *b, const struct origin *o, char *err,
                     size_t err_len) {
    duckdb_list_entry e = ((const duckdb_list_entry *)v->data)[r];
    if (e.length > UINT32_MAX / 8) {
        return _value_error(p, c, o, r, err, err_len, "list too long");
    }
    uint32_t n = (uint32_t)e.length;
    if (v->child_validity != NULL) {
        for (uint64_t i = e.offset; i < e.offset + n; i++) {
            if (!_valid(v->child_validity, i)) {
                return _value_error(p, c, o, r, err, err_len,
                                    "a list element is null; the view's lists cannot hold nulls");
            }
        }
    }
    uint32_t size = store_type_element_size(c->target); /* 0: string or bytes items */
    int rc;
    if (c->element.direct) {
        rc = store_row_set_list(b, c->index, (const uint8_t *)v->child_data + e.offset * size, n);
    } else {
        if (_grow_scratch(p, n) != 0) {
            return errors_set(err, err_len, "view %s: out of memory", p->schema->view);
        }
        const struct column element = {
            .role = ROLE_FEATURE,
            .name = c->name,
            .target = store_type_element(c->target),
            .conv = c->element.conv,
            .type = c->element.type,
            .decimal_int = c->element.decimal_int,
            .decimal_scale = c->element.decimal_scale,
        };
        for (uint32_t i = 0; i < n; i++) {
            struct store_value x;
            char what[128], why[160];
            if (_scalar_value(&element, v->child_data, e.offset + i, &x, what, sizeof what) != 0) {
                snprintf(why, sizeof why, "list element %u: %s", i, what);
                return _value_error(p, c, o, r, err, err_len, why);
            }
            if (size == 0) {
                p->strs[i] = x.var.data;
                p->lens[i] = x.var.bytes;
            } else if (size == 1) {
                p->elements[i] = x.b ? 1 : 0;
            } else if (size == 4) {
                memcpy(p->elements + 4 * (size_t)i,
                       element.target == STORE_TYPE_INT32 ? (void *)&x.i32 : &x.f32, 4);
            } else {
                memcpy(p->elements + 8 * (size_t)i, &x.i64, 8); /* int64, double, timestamp */
            }
        }
        rc = size == 0 ? store_row_set_packed_list(b, c->index, p->strs, p->lens, n)
                       : store_row_set_list(b, c->index, p->elements, n);
    }
    return rc == 0 ? 0 : errors_set(err, err_len, "view %s: out of memory", p->schema->view);
}

static int _set_feature(struct mat_parquet *p, const struct column *c, const struct vec *v,
                        uint64_t r, struct store_row_builder *b, const struct origin *o, char *err,
                        size_t err_len) {
    if (c->conv == CONV_LIST) {
        return _set_list(p, c, v, r, b, o, err, err_len);
    }
    struct store_value x;
    char what[128];
    if (_scalar_value(c, v->data, r, &x, what, sizeof what) != 0) {
        return _value_error(p, c, o, r, err, err_len, what);
    }
    if (store_row_set_value(b, c->index, &x) != 0) {
        return errors_set(err, err_len, "view %s: out of memory", p->schema->view);
    }
    return 0;
}

/* Feeds one chunk to the sink. */
static int _chunk(struct mat_parquet *p, duckdb_data_chunk chunk, struct mat_sink *sink,
                  struct vec *vecs, char *err, size_t err_len) {
    uint64_t rows = duckdb_data_chunk_get_size(chunk);
    for (uint32_t i = 0; i < p->ncolumns + 2; i++) {
        duckdb_vector vector = duckdb_data_chunk_get_vector(chunk, i);
        vecs[i].data = duckdb_vector_get_data(vector);
        vecs[i].validity = duckdb_vector_get_validity(vector);
        if (i < p->ncolumns && p->columns[i].conv == CONV_LIST) {
            duckdb_vector child = duckdb_list_vector_get_child(vector);
            vecs[i].child_data = duckdb_vector_get_data(child);
            vecs[i].child_validity = duckdb_vector_get_validity(child);
        }
    }
    const struct origin where = {&vecs[p->ncolumns], &vecs[p->ncolumns + 1]};
    const struct origin *origin = &where;
    const uint32_t nkeys = p->schema->nkeys;
    const struct column *event = &p->columns[nkeys];
    const bool has_created = p->ncolumns > nkeys + 1 && p->columns[nkeys + 1].role == ROLE_CREATED;
    const uint32_t first_feature = nkeys + 1 + has_created;
    struct store_row_builder *b = mat_sink_values(sink);
    for (uint64_t r = 0; r < rows; r++) {
        int64_t event_us, created_us = STORE_CREATED_NONE;
        const struct vec *ev = &vecs[nkeys];
        if (!_valid(ev->validity, r)) {
            return _value_error(p, event, origin, r, err, err_len,
                                "the event time is null; every row needs one");
        }
        if (_time_at(event->type, ev->data, r, &event_us) != 0) {
            return _value_error(p, event, origin, r, err, err_len, "the timestamp is out of range");
        }
        if (has_created && _valid(vecs[nkeys + 1].validity, r) &&
            _time_at(p->columns[nkeys + 1].type, vecs[nkeys + 1].data, r, &created_us) != 0) {
            return _value_error(p, &p->columns[nkeys + 1], origin, r, err, err_len,
                                "the timestamp is out of range");
        }
        mat_sink_begin_row(sink, event_us, created_us);
        for (uint32_t k = 0; k < nkeys; k++) {
            const struct column *c = &p->columns[k];
            const struct vec *v = &vecs[k];
            if (!_valid(v->validity, r)) {
                mat_sink_key_null(sink, k);
            } else if (c->conv == CONV_INT) {
                bool big = false;
                int64_t x = _int_at(c->type, v->data, r, &big);
                if (big) {
                    return _value_error(p, c, origin, r, err, err_len,
                                        "the key does not fit int64");
                }
                mat_sink_key_int64(sink, k, x);
            } else {
                duckdb_string_t *s = &((duckdb_string_t *)v->data)[r];
                mat_sink_key_string(sink, k, duckdb_string_t_data(s), duckdb_string_t_length(*s));
            }
        }
        for (uint32_t i = first_feature; i < p->ncolumns; i++) {
            if (_valid(vecs[i].validity, r) &&
                _set_feature(p, &p->columns[i], &vecs[i], r, b, origin, err, err_len) != 0) {
                return -1;
            }
        }
        if (mat_sink_end_row(sink) != 0) {
            return errors_set(err, err_len, "%s", mat_sink_error(sink));
        }
    }
    return 0;
}

/* `"col" > <watermark as the column's type>`: the comparison DuckDB pushes into the scan. */
static int _append_watermark(const struct mat_parquet *p, char *sql, size_t cap, size_t *n) {
    const struct column *event = &p->columns[p->schema->nkeys];
    const char *cast = "TIMESTAMP";
    const char *op = ">";
    switch (event->type) {
    case DUCKDB_TYPE_TIMESTAMP_NS:
        cast = "TIMESTAMP_NS";
        break;
    case DUCKDB_TYPE_TIMESTAMP_TZ:
        cast = "TIMESTAMPTZ"; /* the session's zone is UTC, so the cast shifts nothing */
        break;
    case DUCKDB_TYPE_TIMESTAMP_S:
    case DUCKDB_TYPE_TIMESTAMP_MS:
    case DUCKDB_TYPE_DATE:
        /* Coarser than µs: the cast truncates, so >= keeps every row after the watermark
         * (rows at the watermark itself come again; upsert-if-newer ignores them). */
        cast = event->type == DUCKDB_TYPE_DATE          ? "DATE"
               : event->type == DUCKDB_TYPE_TIMESTAMP_S ? "TIMESTAMP_S"
                                                        : "TIMESTAMP_MS";
        op = ">=";
        break;
    default:
        break;
    }
    if (_append(sql, cap, n, " WHERE ") != 0 ||
        _append_quoted(sql, cap, n, event->file_name, '"') != 0) {
        return -1;
    }
    return _append(sql, cap, n, " %s CAST(make_timestamp(%lld::BIGINT) AS %s)", op,
                   (long long)p->watermark_us, cast);
}

int mat_parquet_read(struct mat_parquet *p, struct mat_sink *sink, char *err, size_t err_len) {
    const struct store_schema *schema = p->schema;
    size_t cap = 16384 + strlen(p->pattern) * 2;
    for (uint32_t i = 0; i < p->ncolumns; i++) {
        cap += strlen(p->columns[i].file_name) * 2 + 8;
    }
    char *sql = malloc(cap);
    struct vec *vecs = calloc(p->ncolumns + 2, sizeof(*vecs));
    if (sql == NULL || vecs == NULL) {
        free(sql);
        free(vecs);
        return errors_set(err, err_len, "view %s: out of memory", schema->view);
    }
    size_t n = 0;
    int rc = _append(sql, cap, &n, "SELECT ");
    for (uint32_t i = 0; i < p->ncolumns && rc == 0; i++) {
        rc = _append_quoted(sql, cap, &n, p->columns[i].file_name, '"');
        if (rc == 0) {
            rc = _append(sql, cap, &n, ", ");
        }
    }
    if (rc == 0) {
        rc = _append(sql, cap, &n, "filename, file_row_number FROM ");
    }
    if (rc == 0) {
        rc = _append_source(p, sql, cap, &n);
    }
    if (rc == 0 && p->watermark_us != INT64_MIN) {
        rc = _append_watermark(p, sql, cap, &n);
    }
    if (rc != 0) {
        free(sql);
        free(vecs);
        return errors_set(err, err_len, "view %s: query too long for %s", schema->view, p->path);
    }

    duckdb_result setup;
    if (_query(p, "SET TimeZone = 'UTC'", &setup, err, err_len) != 0) {
        free(sql);
        free(vecs);
        return _interrupted(p) ? _interrupted_error(p, err, err_len) : -1;
    }
    duckdb_destroy_result(&setup);

    duckdb_prepared_statement stmt = NULL;
    duckdb_pending_result pending = NULL;
    duckdb_result result;
    bool have_result = false;
    bool stopped = false;
    rc = -1;
    if (duckdb_prepare(p->conn, sql, &stmt) != DuckDBSuccess) {
        errors_set(err, err_len, "view %s: %s: %s", schema->view, p->path,
                   duckdb_prepare_error(stmt));
    } else if (duckdb_pending_prepared_streaming(stmt, &pending) != DuckDBSuccess) {
        errors_set(err, err_len, "view %s: %s: %s", schema->view, p->path,
                   duckdb_pending_error(pending));
    } else if (duckdb_execute_pending(pending, &result) != DuckDBSuccess) {
        have_result = true;
        errors_set(err, err_len, "view %s: %s: %s", schema->view, p->path,
                   duckdb_result_error(&result));
    } else {
        have_result = true;
        rc = 0;
        duckdb_data_chunk chunk;
        while (rc == 0) {
            if (_interrupted(p)) {
                stopped = true; /* also when the time ran out in the sink, not in DuckDB */
                break;
            }
            if ((chunk = duckdb_fetch_chunk(result)) == NULL) {
                break;
            }
            rc = _chunk(p, chunk, sink, vecs, err, err_len);
            p->rows_read += duckdb_data_chunk_get_size(chunk);
            duckdb_destroy_data_chunk(&chunk);
        }
        const char *why = duckdb_result_error(&result);
        if (rc == 0 && why != NULL) {
            rc = errors_set(err, err_len, "view %s: %s: %s", schema->view, p->path, why);
        }
    }
    /* Interrupted: whatever DuckDB or the chunk loop said, the watchdog's reason is the one. */
    if (stopped || (rc != 0 && _interrupted(p))) {
        rc = _interrupted_error(p, err, err_len);
    }
    if (have_result) {
        duckdb_destroy_result(&result);
    }
    duckdb_destroy_pending(&pending);
    duckdb_destroy_prepare(&stmt);
    free(sql);
    free(vecs);
    return rc;
}
