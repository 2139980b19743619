/*
 * The PostgreSQL source (postgres.h): connect, probe the result's columns, check them against
 * the view, then COPY the needed columns out in binary and hand the stream to the decoder
 * (postgres_decode.c), which writes the rows into the sink.
 */
#include "postgres.h"
#include "postgres_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "snapshot.h"
#include "snapshot_internal.h"
#include "store/schema.h"
#include "common/clock.h"
#include "common/options.h"

/* How often a wait looks at mat_stopping(): teardown never waits longer for a load. */
#define PG_WAIT_SLICE_US (100 * 1000)

/* ---- messages ------------------------------------------------------------------------- */

/*
 * Replaces every occurrence of `secret` in `msg` with "***" (in place; never longer). Neither
 * libpq nor the server echoes passwords; this is the second line of defence. Secrets under 4
 * bytes are left alone: scrubbing "ab" would garble every message and protect nothing.
 */
static void _scrub(char *msg, const char *secret) {
    if (secret == NULL || strlen(secret) < 4) {
        return;
    }
    size_t slen = strlen(secret);
    char *from = msg;
    char *hit;
    while ((hit = strstr(from, secret)) != NULL) {
        memset(hit, '*', 3);
        memmove(hit + 3, hit + slen, strlen(hit + slen) + 1);
        from = hit + 3;
    }
}

/* libpq's texts span lines and end with one; a message here is one line. */
static void _one_line(char *msg) {
    size_t out = 0;
    bool space = false;
    for (size_t i = 0; msg[i] != '\0'; i++) {
        char c = msg[i];
        if (c == '\n' || c == '\t' || c == '\r' || c == ' ') {
            space = out > 0;
            continue;
        }
        if (space) {
            msg[out++] = ' ';
            space = false;
        }
        msg[out++] = c;
    }
    msg[out] = '\0';
}

int mat_pg_fail(struct mat_pg_reader *r, const char *fmt, ...) {
    if (r->err_len == 0 || r->gave_up) {
        return -1; /* a read that gave up keeps the reason it gave up for */
    }
    int n = snprintf(r->err, r->err_len, "view %s: ", r->schema->view);
    if (n >= 0 && (size_t)n < r->err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err + n, r->err_len - (size_t)n, fmt, ap);
        va_end(ap);
    }
    _one_line(r->err);
    _scrub(r->err, r->secret);
    _scrub(r->err, getenv("PGPASSWORD"));
    return -1;
}

/* The server's error as one line: severity, message, detail, hint, SQLSTATE. */
static int _fail_result(struct mat_pg_reader *r, const char *what, const PGresult *res) {
    const char *primary = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (primary == NULL) {
        /* not a server error (lost connection, out of memory): libpq says what happened */
        return mat_pg_fail(r, "postgres: %s: %s", what, PQerrorMessage(r->conn));
    }
    const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY);
    const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    return mat_pg_fail(r, "postgres: %s: %s: %s%s%s%s%s (SQLSTATE %s)", what,
                       severity != NULL ? severity : "ERROR", primary, detail != NULL ? "; " : "",
                       detail != NULL ? detail : "", hint != NULL ? "; hint: " : "",
                       hint != NULL ? hint : "", state != NULL ? state : "?????");
}

/*
 * libpq's parse errors quote pieces of the connection string, which may be a password:
 * copies `in` to `out` with everything between double quotes replaced by "...".
 */
static void _redact_quoted(const char *in, char *out, size_t out_len) {
    bool inside = false;
    size_t n = 0;
    for (; *in != '\0' && n + 4 < out_len; in++) {
        if (*in == '"') {
            inside = !inside;
            if (inside) {
                memcpy(out + n, "\"...", 4);
                n += 4;
            } else {
                out[n++] = '"';
            }
        } else if (!inside) {
            out[n++] = *in;
        }
    }
    out[n] = '\0';
}

/*
 * True when a column of type `oid` can become a value of view type `want` without loss. A list
 * takes a one-dimensional array whose elements its element type takes.
 */
static bool _maps(enum store_type want, Oid oid) {
    if (store_type_is_list(want)) {
        Oid elem = mat_pg_array_elem(oid);
        /* float_list has always taken double precision[], as embeddings are often stored;
         * an element beyond float range is refused when read. */
        return (want == STORE_TYPE_FLOAT_LIST && elem == PG_FLOAT8) ||
               (elem != 0 && _maps(store_type_element(want), elem));
    }
    switch (want) {
    case STORE_TYPE_INT32:
    case STORE_TYPE_INT64:
        return mat_pg_is_int(oid);
    case STORE_TYPE_FLOAT:
        return oid == PG_FLOAT4 || oid == PG_INT2 || oid == PG_NUMERIC;
    case STORE_TYPE_DOUBLE:
        return oid == PG_FLOAT8 || oid == PG_FLOAT4 || oid == PG_INT2 || oid == PG_INT4 ||
               oid == PG_NUMERIC;
    case STORE_TYPE_BOOL:
        return oid == PG_BOOL;
    case STORE_TYPE_STRING:
        return mat_pg_is_text(oid);
    case STORE_TYPE_BYTES:
        return oid == PG_BYTEA;
    case STORE_TYPE_TIMESTAMP:
        return mat_pg_is_time(oid);
    default:
        return false;
    }
}

/* What a view type accepts, for error messages; lists take arrays of their element's types. */
static const char *_accepted(enum store_type want) {
    switch (store_type_element(want)) {
    case STORE_TYPE_INT32:
    case STORE_TYPE_INT64:
        return "smallint, integer, bigint";
    case STORE_TYPE_FLOAT:
        return store_type_is_list(want) ? "real, double precision, smallint, numeric"
                                        : "real, smallint, numeric";
    case STORE_TYPE_DOUBLE:
        return "double precision, real, smallint, integer, numeric";
    case STORE_TYPE_BOOL:
        return "boolean";
    case STORE_TYPE_STRING:
        return store_type_is_list(want) ? "text, varchar, char, name"
                                        : "text, varchar, char, name, an enum";
    case STORE_TYPE_BYTES:
        return "bytea";
    case STORE_TYPE_TIMESTAMP:
        return "timestamptz, timestamp, date";
    default:
        return "?";
    }
}

/* ---- waiting, bounded ------------------------------------------------------------------- */

/* Fails the read for good: the connection is left mid-exchange, so nothing more is asked of
 * it and this message is the one the load reports. Returns -1. */
__attribute__((format(printf, 3, 4))) static int _give_up(struct mat_pg_reader *r, const char *what,
                                                          const char *fmt, ...) {
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    mat_pg_fail(r, "postgres: %s: %s", what, why);
    r->gave_up = true;
    return -1;
}

/*
 * Waits until the socket is readable (or writable too, when `write`), for at most the read
 * timeout and not past the load's deadline or `until_us` (monotonic; INT64_MAX: none, else a
 * connect deadline, reported with `until_what`), looking at mat_stopping() every
 * PG_WAIT_SLICE_US. Returns 0 when the socket is ready, or -1 having given up.
 */
static int _wait(struct mat_pg_reader *r, const char *what, bool write, int64_t until_us,
                 const char *until_what) {
    int64_t now = clock_mono_us();
    int64_t silent_until = r->read_timeout_us > 0 ? now + r->read_timeout_us : INT64_MAX;
    char limit[32];
    for (;;) {
        int fd = PQsocket(r->conn);
        if (fd < 0) {
            return _give_up(r, what, "the connection is gone");
        }
        if (mat_stopping()) {
            return _give_up(r, what, "the materializer is shutting down; the read was abandoned");
        }
        if (now >= r->deadline_us) {
            option_format_duration(r->load_timeout_us, limit, sizeof limit);
            return _give_up(r, what,
                            "the load took longer than its load_timeout (%s); the read was "
                            "abandoned",
                            limit);
        }
        if (now >= until_us) {
            return _give_up(r, what, "%s", until_what);
        }
        if (now >= silent_until) {
            option_format_duration(r->read_timeout_us, limit, sizeof limit);
            return _give_up(r, what,
                            "no answer from the server for %s (read_timeout); the read was "
                            "abandoned",
                            limit);
        }
        int64_t wake = now + PG_WAIT_SLICE_US;
        wake = silent_until < wake ? silent_until : wake;
        wake = r->deadline_us < wake ? r->deadline_us : wake;
        wake = until_us < wake ? until_us : wake;
        struct pollfd pfd = {.fd = fd, .events = (short)(POLLIN | (write ? POLLOUT : 0))};
        int n = poll(&pfd, 1, (int)((wake - now + 999) / 1000));
        if (n > 0) {
            return 0;
        }
        if (n < 0 && errno != EINTR) {
            return _give_up(r, what, "poll: %s", strerror(errno));
        }
        now = clock_mono_us();
    }
}

/* Sends what libpq holds and reads until PQgetResult() would not block; then *out is its
 * next result (NULL: no more). Returns 0, or -1 having given up. */
static int _next_result(struct mat_pg_reader *r, const char *what, PGresult **out) {
    *out = NULL;
    for (;;) {
        int pending = PQflush(r->conn);
        if (pending < 0) {
            return _give_up(r, what, "%s", PQerrorMessage(r->conn));
        }
        if (pending == 0 && !PQisBusy(r->conn)) {
            *out = PQgetResult(r->conn);
            return 0;
        }
        if (_wait(r, what, pending > 0, INT64_MAX, NULL) != 0) {
            return -1;
        }
        if (PQconsumeInput(r->conn) == 0) {
            return _give_up(r, what, "%s", PQerrorMessage(r->conn));
        }
    }
}

/*
 * PQexecParams() with its waits bounded: sends `sql` (one parameter at most) and returns the
 * last of its results, as PQexec does (the caller clears it), or NULL having given up.
 */
static PGresult *_query(struct mat_pg_reader *r, const char *what, const char *sql,
                        const char *param) {
    if (r->gave_up) {
        return NULL;
    }
    if (PQsendQueryParams(r->conn, sql, param != NULL ? 1 : 0, NULL, &param, NULL, NULL, 0) == 0) {
        _give_up(r, what, "%s", PQerrorMessage(r->conn));
        return NULL;
    }
    PGresult *last = NULL;
    for (;;) {
        PGresult *res;
        if (_next_result(r, what, &res) != 0) {
            PQclear(last);
            return NULL;
        }
        if (res == NULL) {
            return last;
        }
        PQclear(last);
        last = res;
    }
}

/* ---- SQL helpers ---------------------------------------------------------------------- */

/* Runs `sql` (one parameter at most) and returns its result if it has `want` status. */
static PGresult *_exec(struct mat_pg_reader *r, const char *what, const char *sql,
                       const char *param, ExecStatusType want) {
    PGresult *res = _query(r, what, sql, param);
    if (PQresultStatus(res) != want) {
        _fail_result(r, what, res);
        PQclear(res);
        return NULL;
    }
    return res;
}

/* The type's SQL name ("double precision", "character varying(20)[]"), from the server. */
static void _type_name(struct mat_pg_reader *r, Oid oid, char *out, size_t out_len) {
    char param[16];
    snprintf(param, sizeof param, "%u", oid);
    PGresult *res = _query(r, "naming a type",
                           "SELECT pg_catalog.format_type($1::pg_catalog.oid, NULL)", param);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        snprintf(out, out_len, "%s", PQgetvalue(res, 0, 0));
    } else {
        snprintf(out, out_len, "type %u", oid);
    }
    PQclear(res);
}

/* Enums arrive in binary as their label's text; anything else unknown stays as it is. */
static Oid _resolve_oid(struct mat_pg_reader *r, Oid oid) {
    if (oid < 16384) {
        return oid; /* below FirstNormalObjectId: built in, never an enum */
    }
    char param[16];
    snprintf(param, sizeof param, "%u", oid);
    PGresult *res =
        _query(r, "looking up a type",
               "SELECT typtype FROM pg_catalog.pg_type WHERE oid = $1::pg_catalog.oid", param);
    bool is_enum = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
                   PQgetvalue(res, 0, 0)[0] == 'e';
    PQclear(res);
    return is_enum ? PG_TEXT : oid;
}

/* ---- connecting ----------------------------------------------------------------------- */

/* The connect_timeout in force: the dsn's, else the source's (libpq resolved which); whole
 * seconds, at least 2, as libpq counts it. */
static int64_t _connect_timeout_us(struct mat_pg_reader *r) {
    int64_t us = MAT_PG_CONNECT_TIMEOUT_US;
    PQconninfoOption *opts = PQconninfo(r->conn);
    for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++) {
        if (strcmp(o->keyword, "connect_timeout") == 0 && o->val != NULL && o->val[0] != '\0') {
            long s = strtol(o->val, NULL, 10);
            us = s > 0 ? (int64_t)s * 1000000 : INT64_MAX / 2; /* 0: libpq waits forever */
        }
    }
    PQconninfoFree(opts);
    int64_t seconds = (us + 999999) / 1000000;
    return (seconds < 2 ? 2 : seconds) * 1000000;
}

static int _connect(struct mat_pg_reader *r) {
    const char *dsn = r->source->dsn;
    if (dsn != NULL) {
        char *perr = NULL;
        PQconninfoOption *opts = PQconninfoParse(dsn, &perr);
        if (opts == NULL) {
            char why[256];
            _redact_quoted(perr != NULL ? perr : "out of memory", why, sizeof why);
            mat_pg_fail(
                r, "postgres: invalid connection string (not shown: it may hold a password): %s",
                why);
            PQfreemem(perr);
            return -1;
        }
        for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
            if (strcmp(o->keyword, "password") == 0 && o->val != NULL && o->val[0] != '\0') {
                r->secret = strdup(o->val);
            }
        }
        PQconninfoFree(opts);
    }

    /*
     * Keywords before "dbname" are defaults the dsn overrides (expand_dbname); the one after
     * it wins. Explicit keywords also beat PG* variables, so defaults that have a variable
     * are only set when the variable is not.
     */
    const struct mat_source_timeouts *t = &r->timeouts;
    char connect[24], idle[16], interval[16], count[16], user_timeout[24], options[64];
    int64_t connect_s =
        ((t->connect_us > 0 ? t->connect_us : MAT_PG_CONNECT_TIMEOUT_US) + 999999) / 1000000;
    snprintf(connect, sizeof connect, "%" PRId64, connect_s);
    snprintf(idle, sizeof idle, "%d", MAT_PG_KEEPALIVES_IDLE_S);
    snprintf(interval, sizeof interval, "%d", MAT_PG_KEEPALIVES_INTERVAL_S);
    snprintf(count, sizeof count, "%d", MAT_PG_KEEPALIVES_COUNT);
    /* libpq counts milliseconds; round up so that 250us is not 0, which means "none" */
    snprintf(user_timeout, sizeof user_timeout, "%" PRId64, (t->tcp_user_us + 999) / 1000);
    int64_t statement_us = t->statement_us > 0 ? t->statement_us : t->load_us;
    snprintf(options, sizeof options, "-c statement_timeout=%" PRId64, (statement_us + 999) / 1000);
    const char *keys[14];
    const char *vals[14];
    int n = 0;
    keys[n] = "connect_timeout", vals[n++] = connect; /* beats PGCONNECT_TIMEOUT: the config's */
    if (getenv("PGAPPNAME") == NULL) {
        keys[n] = "application_name", vals[n++] = MAT_PG_APPLICATION_NAME;
    }
    if (statement_us > 0 && getenv("PGOPTIONS") == NULL) {
        keys[n] = "options", vals[n++] = options;
    }
    keys[n] = "keepalives", vals[n++] = "1";
    keys[n] = "keepalives_idle", vals[n++] = idle;
    keys[n] = "keepalives_interval", vals[n++] = interval;
    keys[n] = "keepalives_count", vals[n++] = count;
    if (t->tcp_user_us > 0) {
        keys[n] = "tcp_user_timeout", vals[n++] = user_timeout;
    }
    if (dsn != NULL) {
        keys[n] = "dbname", vals[n++] = dsn;
    }
    /* binary text values are sent in the client encoding; the store's strings are UTF-8 */
    keys[n] = "client_encoding", vals[n++] = "UTF8";
    keys[n] = NULL, vals[n] = NULL;

    /* Connecting without blocking, so that the same waits apply (the load's deadline, the
     * materializer's stop); connect_timeout is enforced here, for the whole attempt. */
    r->conn = PQconnectStartParams(keys, vals, 1);
    if (r->conn == NULL) {
        return mat_pg_fail(r, "postgres: connecting: out of memory");
    }
    if (PQstatus(r->conn) == CONNECTION_BAD) {
        return mat_pg_fail(r, "postgres: connecting: %s", PQerrorMessage(r->conn));
    }
    int64_t connect_us = _connect_timeout_us(r);
    char limit[32], what[96];
    option_format_duration(connect_us, limit, sizeof limit);
    snprintf(what, sizeof what, "no connection within connect_timeout (%s)", limit);
    int64_t until = clock_mono_us() + connect_us;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK) {
        if (st == PGRES_POLLING_FAILED) {
            return mat_pg_fail(r, "postgres: connecting: %s", PQerrorMessage(r->conn));
        }
        if (_wait(r, "connecting", st == PGRES_POLLING_WRITING, until, what) != 0) {
            return -1;
        }
        st = PQconnectPoll(r->conn);
    }
    if (PQsetnonblocking(r->conn, 1) != 0) {
        return mat_pg_fail(r, "postgres: connecting: %s", PQerrorMessage(r->conn));
    }
    return 0;
}

/* ---- the plan: which columns, which types ----------------------------------------------- */

static void _add_column(struct mat_pg_reader *r, const char *name, enum mat_pg_role role,
                        uint32_t index) {
    struct mat_pg_column *c = &r->cols[r->ncols++];
    c->name = name;
    c->role = role;
    c->index = index;
    c->oid = 0;
}

/* Builds the FROM item: the server-resolved qualified table name, or the query. */
static int _build_from(struct mat_pg_reader *r) {
    const struct mat_source *src = r->source;
    if ((src->table == NULL) == (src->query == NULL)) {
        return mat_pg_fail(r, "postgres source needs exactly one of table and query");
    }
    if (src->query != NULL) {
        /* a trailing ';' is common in configs and invalid in a subquery */
        size_t len = strlen(src->query);
        while (len > 0 && (src->query[len - 1] == ';' || src->query[len - 1] == ' ' ||
                           src->query[len - 1] == '\n' || src->query[len - 1] == '\t' ||
                           src->query[len - 1] == '\r')) {
            len--;
        }
        /* newlines so a trailing -- comment cannot swallow the closing parenthesis */
        if (asprintf(&r->from, "(\n%.*s\n) AS fsd_src", (int)len, src->query) < 0) {
            r->from = NULL;
            return mat_pg_fail(r, "out of memory");
        }
        return 0;
    }
    /*
     * The server parses the name as SQL would (case folding, quotes, search_path) and quotes
     * the result itself: no identifier from the config is ever pasted into SQL.
     */
    PGresult *res = _exec(r, "looking up the table",
                          "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)"
                          "  FROM pg_catalog.pg_class c"
                          "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                          " WHERE c.oid = pg_catalog.to_regclass($1)",
                          src->table, PGRES_TUPLES_OK);
    if (res == NULL) {
        return -1;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        return mat_pg_fail(r, "postgres: table %s does not exist (or this user cannot see it)",
                           src->table);
    }
    int rc = asprintf(&r->from, "%s AS fsd_src", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (rc < 0) {
        r->from = NULL;
        return mat_pg_fail(r, "out of memory");
    }
    return 0;
}

static const char *_where(const struct mat_pg_reader *r) {
    return r->source->query != NULL ? "in the query result" : "in the table";
}

/* Finds each needed column in the probe's result and checks its type. */
static int _check_columns(struct mat_pg_reader *r, const PGresult *probe) {
    int nf = PQnfields(probe);
    for (uint32_t i = 0; i < r->ncols; i++) {
        struct mat_pg_column *c = &r->cols[i];
        int at = -1;
        for (int f = 0; f < nf; f++) {
            if (strcmp(PQfname(probe, f), c->name) == 0) {
                if (at >= 0) {
                    return mat_pg_fail(r, "column %s appears more than once %s", c->name,
                                       _where(r));
                }
                at = f;
            }
        }
        if (at < 0) {
            char have[512] = "";
            size_t used = 0;
            for (int f = 0; f < nf && used < sizeof have; f++) {
                int w = snprintf(have + used, sizeof have - used, "%s%s", f > 0 ? ", " : "",
                                 PQfname(probe, f));
                used += w > 0 ? (size_t)w : 0;
            }
            return mat_pg_fail(r, "column %s is not %s (it has: %s)", c->name, _where(r), have);
        }
        c->oid = _resolve_oid(r, PQftype(probe, at));

        bool ok;
        const char *want;
        const char *accepted;
        const char *array_of = "";
        if (c->role == MAT_PG_EVENT_TS || c->role == MAT_PG_CREATED_TS) {
            ok = mat_pg_is_time(c->oid);
            want = "a timestamp";
            accepted = "timestamptz, timestamp, date";
        } else if (c->role == MAT_PG_KEY) {
            enum store_key_type kt = r->schema->keys[c->index].type;
            ok = kt == STORE_KEY_INT64 ? mat_pg_is_int(c->oid) : mat_pg_is_text(c->oid);
            want = kt == STORE_KEY_INT64 ? "an int64 key" : "a string key";
            accepted = kt == STORE_KEY_INT64 ? "smallint, integer, bigint"
                                             : "text, varchar, char, name, an enum";
        } else {
            enum store_type t = r->schema->features[c->index].type;
            ok = _maps(t, c->oid);
            want = store_type_name(t);
            accepted = _accepted(t);
            array_of = store_type_is_list(t) ? "arrays of " : "";
        }
        if (!ok) {
            char type[128];
            _type_name(r, c->oid, type, sizeof type);
            return mat_pg_fail(r, "column %s is %s %s; the view wants %s (accepted: %s%s)", c->name,
                               type, _where(r), want, array_of, accepted);
        }
    }
    return 0;
}

/* Appends ", <quoted name>" for every column to a SELECT list. */
static char *_select_list(struct mat_pg_reader *r) {
    size_t cap = 64, len = 0;
    char *list = malloc(cap);
    if (list == NULL) {
        return NULL;
    }
    list[0] = '\0';
    for (uint32_t i = 0; i < r->ncols; i++) {
        char *q = PQescapeIdentifier(r->conn, r->cols[i].name, strlen(r->cols[i].name));
        if (q == NULL) {
            free(list);
            return NULL;
        }
        size_t need = len + strlen(q) + 3;
        if (need > cap) {
            cap = need * 2;
            char *grown = realloc(list, cap);
            if (grown == NULL) {
                PQfreemem(q);
                free(list);
                return NULL;
            }
            list = grown;
        }
        len += (size_t)sprintf(list + len, "%s%s", i > 0 ? ", " : "", q);
        PQfreemem(q);
    }
    return list;
}

/* `us` as a SQL timestamp literal body: 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC. */
static int _ts_literal(int64_t us, char *out, size_t out_len) {
    int64_t secs = us / 1000000;
    int64_t frac = us % 1000000;
    if (frac < 0) {
        secs -= 1;
        frac += 1000000;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999) {
        return -1;
    }
    snprintf(out, out_len, "%04d-%02d-%02d %02d:%02d:%02d.%06" PRId64, tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    return 0;
}

/* The SELECT the COPY runs (and EXPLAIN estimates). Caller frees. */
static char *_build_select(struct mat_pg_reader *r, int64_t watermark_us) {
    char *list = _select_list(r);
    if (list == NULL) {
        mat_pg_fail(r, "out of memory");
        return NULL;
    }
    char *where = NULL;
    if (watermark_us != INT64_MIN) {
        char lit[64];
        if (_ts_literal(watermark_us, lit, sizeof lit) != 0) {
            free(list);
            mat_pg_fail(r, "watermark %" PRId64 " us is outside years 1..9999", watermark_us);
            return NULL;
        }
        char *q = PQescapeIdentifier(r->conn, r->cols[0].name, strlen(r->cols[0].name));
        if (q == NULL) {
            free(list);
            mat_pg_fail(r, "out of memory");
            return NULL;
        }
        /*
         * timestamp without time zone holds UTC here, so it compares with a zoneless literal;
         * a date column compares as midnight, the time it is read as
         */
        int rc = r->cols[0].oid == PG_TIMESTAMPTZ
                     ? asprintf(&where, " WHERE %s > '%s+00'::pg_catalog.timestamptz", q, lit)
                     : asprintf(&where, " WHERE %s > '%s'::pg_catalog.timestamp", q, lit);
        PQfreemem(q);
        if (rc < 0) {
            free(list);
            mat_pg_fail(r, "out of memory");
            return NULL;
        }
    }
    char *sql = NULL;
    if (asprintf(&sql, "SELECT %s FROM %s%s", list, r->from, where != NULL ? where : "") < 0) {
        sql = NULL;
        mat_pg_fail(r, "out of memory");
    }
    free(where);
    free(list);
    return sql;
}

/* The planner's row estimate for `select`, or 0. */
static uint64_t _estimate_rows(struct mat_pg_reader *r, const char *select) {
    char *sql = NULL;
    if (asprintf(&sql, "EXPLAIN (FORMAT JSON) %s", select) < 0) {
        return 0;
    }
    PGresult *res = _query(r, "estimating the rows", sql, NULL);
    free(sql);
    uint64_t rows = 0;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) >= 1) {
        const char *at = strstr(PQgetvalue(res, 0, 0), "\"Plan Rows\":");
        if (at != NULL) {
            rows = strtoull(at + strlen("\"Plan Rows\":"), NULL, 10);
        }
    }
    PQclear(res);
    return rows;
}

static int _copy(struct mat_pg_reader *r, const char *select) {
    char *sql = NULL;
    if (asprintf(&sql, "COPY (%s) TO STDOUT (FORMAT binary)", select) < 0) {
        return mat_pg_fail(r, "out of memory");
    }
    /* Not _query(): its first result (COPY_OUT) opens the stream, read below. */
    PGresult *res = NULL;
    int sent = PQsendQuery(r->conn, sql);
    free(sql);
    if (sent == 0) {
        return _give_up(r, "starting the COPY", "%s", PQerrorMessage(r->conn));
    }
    if (_next_result(r, "starting the COPY", &res) != 0) {
        return -1;
    }
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        _fail_result(r, "starting the COPY", res);
        PQclear(res);
        return -1;
    }
    PQclear(res);

    char what[64];
    for (;;) {
        char *buf = NULL;
        int n = PQgetCopyData(r->conn, &buf, 1);
        if (n > 0) {
            int rc = mat_pg_feed(r, (const uint8_t *)buf, (size_t)n);
            PQfreemem(buf);
            if (rc != 0) {
                return -1; /* the caller closes the connection, which ends the COPY */
            }
            continue;
        }
        snprintf(what, sizeof what, "reading the COPY after %" PRIu64 " rows", r->row);
        if (n == 0) {
            /* nothing whole yet: wait (bounded) for more */
            if (_wait(r, what, false, INT64_MAX, NULL) != 0) {
                return -1;
            }
            if (PQconsumeInput(r->conn) == 0) {
                return mat_pg_fail(r, "postgres: %s: %s", what, PQerrorMessage(r->conn));
            }
            continue;
        }
        if (n == -2) {
            return mat_pg_fail(r, "postgres: %s: %s", what, PQerrorMessage(r->conn));
        }
        break; /* -1: the COPY is over; its result says how it went */
    }
    int rc = 0;
    snprintf(what, sizeof what, "the COPY after %" PRIu64 " rows", r->row);
    for (;;) {
        if (_next_result(r, what, &res) != 0) {
            return -1;
        }
        if (res == NULL) {
            break;
        }
        if (rc == 0 && PQresultStatus(res) != PGRES_COMMAND_OK) {
            rc = _fail_result(r, what, res);
        }
        PQclear(res);
    }
    if (rc == 0 && (!r->trailer_seen || r->stage_len != 0)) {
        rc = mat_pg_fail(
            r, "postgres: the COPY ended without its end marker after %" PRIu64 " rows", r->row);
    }
    return rc;
}

/* ---- the read ----------------------------------------------------------------------- */

int mat_pg_plan(struct mat_pg_reader *r) {
    const struct store_schema *s = r->schema;
    const struct mat_source *src = r->source;
    if (src->type != MAT_SOURCE_POSTGRES) {
        return mat_pg_fail(r, "the source is %s, not postgres", mat_source_type_name(src->type));
    }
    if (src->event_timestamp_column == NULL) {
        return mat_pg_fail(r, "postgres source has no event_timestamp_column");
    }
    r->ncols = 0;
    r->cols = calloc(2 + s->nkeys + s->nfeatures, sizeof *r->cols);
    r->fields = calloc(2 + s->nkeys + s->nfeatures, sizeof *r->fields);
    if (r->cols == NULL || r->fields == NULL) {
        return mat_pg_fail(r, "out of memory");
    }
    _add_column(r, src->event_timestamp_column, MAT_PG_EVENT_TS, 0);
    r->has_created = src->created_timestamp_column != NULL;
    if (r->has_created) {
        _add_column(r, src->created_timestamp_column, MAT_PG_CREATED_TS, 0);
    }
    for (uint32_t i = 0; i < s->nkeys; i++) {
        _add_column(r, s->keys[i].name, MAT_PG_KEY, i);
    }
    for (uint32_t i = 0; i < s->nfeatures; i++) {
        _add_column(r, s->features[i].name, MAT_PG_FEATURE, i);
    }
    return 0;
}

static int _run(struct mat_pg_reader *r, int64_t watermark_us, uint64_t *expected_rows_out) {
    if (mat_pg_plan(r) != 0 || _connect(r) != 0) {
        return -1;
    }
    /* one read-only transaction: the probe's locks hold the column types until the COPY */
    PGresult *res = _exec(r, "starting a transaction", "BEGIN READ ONLY", NULL, PGRES_COMMAND_OK);
    if (res == NULL) {
        return -1;
    }
    PQclear(res);
    if (_build_from(r) != 0) {
        return -1;
    }

    char *probe_sql = NULL;
    if (asprintf(&probe_sql, "SELECT * FROM %s LIMIT 0", r->from) < 0) {
        return mat_pg_fail(r, "out of memory");
    }
    res = _exec(r, r->source->query != NULL ? "the query" : "reading the table", probe_sql, NULL,
                PGRES_TUPLES_OK);
    free(probe_sql);
    if (res == NULL) {
        return -1;
    }
    int rc = _check_columns(r, res);
    PQclear(res);
    if (rc != 0) {
        return -1;
    }

    char *select = _build_select(r, watermark_us);
    if (select == NULL) {
        return -1;
    }
    if (expected_rows_out != NULL) {
        *expected_rows_out = _estimate_rows(r, select);
    }
    rc = _copy(r, select);
    free(select);
    if (rc != 0) {
        return -1;
    }
    res = _exec(r, "ending the transaction", "COMMIT", NULL, PGRES_COMMAND_OK);
    if (res == NULL) {
        return -1;
    }
    PQclear(res);
    return 0;
}

void mat_pg_reader_deinit(struct mat_pg_reader *r) {
    /* closing the connection also ends a COPY we stopped reading and rolls back */
    PQfinish(r->conn);
    r->conn = NULL;
    if (r->secret != NULL) {
        explicit_bzero(r->secret, strlen(r->secret));
        free(r->secret);
    }
    free(r->from);
    free(r->cols);
    free(r->fields);
    free(r->stage);
    free(r->elements);
    free(r->strs);
    free(r->lens);
    free(r->digits);
}

int mat_pg_read(const struct mat_source *source, const struct store_schema *schema,
                struct mat_sink *sink, int64_t watermark_us, uint64_t *expected_rows_out, char *err,
                size_t err_len) {
    struct mat_pg_reader r = {
        .source = source,
        .schema = schema,
        .sink = sink,
        .timeouts = source->timeouts,
        .deadline_us = INT64_MAX,
        .err = err,
        .err_len = err_len,
    };
    mat_source_timeouts_resolve(&r.timeouts, NULL);
    r.load_timeout_us = r.timeouts.load_us;
    r.read_timeout_us = r.timeouts.read_us;
    if (r.timeouts.load_us > 0) {
        r.deadline_us = clock_mono_us() + r.timeouts.load_us;
    }
    if (err_len > 0) {
        err[0] = '\0';
    }
    if (expected_rows_out != NULL) {
        *expected_rows_out = 0;
    }
    int rc = _run(&r, watermark_us, expected_rows_out);
    mat_pg_reader_deinit(&r);
    return rc;
}
