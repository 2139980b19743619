/*
 * grpc_load's Redis targets: the same benchmark rows (load_bench_row) in the two layouts Redis
 * feature stores use, read the way those stores read them.
 *
 *   redis-hash    one hash per entity, e:<id> -> d0..d7 count label _ts, all as text (doubles
 *                 in the shortest form that reads back bit for bit); a lookup of B
 *                 entities is B pipelined HMGETs of the 10 features and _ts.
 *   redis-packed  one string per entity, p:<id> -> a protobuf message
 *                 { 1: repeated double d (packed), 2: int64 count, 3: string label,
 *                   4: int64 event_time_us }; a lookup of B entities is one MGET of B keys.
 *
 * Both keep the event time, as fsd does for every row: a feature server needs it to report
 * staleness and honour a TTL, so leaving it out would compare less work with more.
 *
 * Connections are hiredis contexts switched to non-blocking after a blocking connect. Replies
 * are parsed by hiredis' reader with our own object functions, which only count what arrives
 * (elements, nils, errors) and allocate nothing: at millions of values per second, building
 * reply objects would make the generator, not Redis, the bottleneck. Redis answers a
 * connection's commands in order, so calls in flight wait in a FIFO ring.
 */
#include "grpc_load_internal.h"
#include "common/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HASH_FIELDS   (BENCH_FEATURES + 1) /* the features and _ts */
#define CONNECT_S     5
#define FILL_PIPELINE 2000 /* commands per round trip while filling */

/* ---- commands ---------------------------------------------------------------------------- */

/* A growing buffer of RESP-encoded commands. */
struct resp {
    char *data;
    size_t len, cap;
};

static int _resp_reserve(struct resp *r, size_t more) {
    if (r->len + more <= r->cap) {
        return 0;
    }
    size_t cap = r->cap ? r->cap : 4096;
    while (cap < r->len + more) {
        cap *= 2;
    }
    char *grown = realloc(r->data, cap);
    if (grown == NULL) {
        return -1;
    }
    r->data = grown;
    r->cap = cap;
    return 0;
}

static int _resp_array(struct resp *r, size_t n) {
    if (_resp_reserve(r, 24) != 0) {
        return -1;
    }
    r->len += (size_t)sprintf(r->data + r->len, "*%zu\r\n", n);
    return 0;
}

static int _resp_bulk(struct resp *r, const void *data, size_t len) {
    if (_resp_reserve(r, len + 24) != 0) {
        return -1;
    }
    r->len += (size_t)sprintf(r->data + r->len, "$%zu\r\n", len);
    memcpy(r->data + r->len, data, len);
    r->len += len;
    memcpy(r->data + r->len, "\r\n", 2);
    r->len += 2;
    return 0;
}

static int _resp_text(struct resp *r, const char *text) {
    return _resp_bulk(r, text, strlen(text));
}

static int _resp_key(struct resp *r, enum target_kind kind, uint64_t id) {
    char key[32];
    int n = snprintf(key, sizeof key, "%s:%" PRIu64, kind == TARGET_REDIS_HASH ? "e" : "p", id);
    return _resp_bulk(r, key, (size_t)n);
}

/* The redis-packed value of one row; `out` holds 128 bytes. */
static size_t _pack_row(const struct bench_row *row, int64_t event_time_us, uint8_t *out) {
    size_t n = 0;
    out[n++] = 1 << 3 | 2;
    out[n++] = sizeof row->d;
    for (int f = 0; f < BENCH_DOUBLE_FEATURES; f++) {
        memcpy(out + n, &row->d[f], 8); /* protobuf doubles are little-endian, like x86 */
        n += 8;
    }
    out[n++] = 2 << 3 | 0;
    n += load_varint(out + n, (uint64_t)row->count);
    size_t label_len = strlen(row->label);
    out[n++] = 3 << 3 | 2;
    out[n++] = (uint8_t)label_len;
    memcpy(out + n, row->label, label_len);
    n += label_len;
    out[n++] = 4 << 3 | 0;
    n += load_varint(out + n, (uint64_t)event_time_us);
    return n;
}

/* The shortest decimal that reads back as exactly `d`, as a careful writer stores it: 962.39,
 * not 962.38999999999999. */
static void _format_double(char *text, size_t len, double d) {
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(text, len, "%.*g", digits, d);
        if (strtod(text, NULL) == d) {
            return;
        }
    }
}

/* One entity's write: HSET with every field, or SET of the packed row. */
static int _resp_write_row(struct resp *r, enum target_kind kind, uint64_t id,
                           int64_t event_time_us) {
    struct bench_row row;
    load_bench_row(id, &row);
    if (kind == TARGET_REDIS_PACKED) {
        uint8_t packed[128];
        size_t len = _pack_row(&row, event_time_us, packed);
        return _resp_array(r, 3) || _resp_text(r, "SET") || _resp_key(r, kind, id) ||
                       _resp_bulk(r, packed, len)
                   ? -1
                   : 0;
    }
    char text[32];
    if (_resp_array(r, 2 + 2 * HASH_FIELDS) || _resp_text(r, "HSET") || _resp_key(r, kind, id)) {
        return -1;
    }
    for (int f = 0; f < BENCH_FEATURES; f++) {
        if (f < BENCH_DOUBLE_FEATURES) {
            _format_double(text, sizeof text, row.d[f]);
        } else if (f == BENCH_DOUBLE_FEATURES) {
            snprintf(text, sizeof text, "%" PRId64, row.count);
        } else {
            snprintf(text, sizeof text, "%s", row.label);
        }
        if (_resp_text(r, load_features[f].name) || _resp_text(r, text)) {
            return -1;
        }
    }
    snprintf(text, sizeof text, "%" PRId64, event_time_us);
    return _resp_text(r, "_ts") || _resp_text(r, text) ? -1 : 0;
}

/* One lookup of `batch` random entities. Returns the number of replies it will get. */
static int _resp_lookup(struct resp *r, const struct options *o, uint64_t *rng, uint32_t *replies) {
    if (o->target == TARGET_REDIS_PACKED) {
        *replies = 1;
        if (_resp_array(r, 1 + (size_t)o->batch) || _resp_text(r, "MGET")) {
            return -1;
        }
        for (uint32_t i = 0; i < o->batch; i++) {
            if (_resp_key(r, o->target, load_splitmix(rng) % o->entities)) {
                return -1;
            }
        }
        return 0;
    }
    *replies = o->batch;
    for (uint32_t i = 0; i < o->batch; i++) {
        if (_resp_array(r, 2 + HASH_FIELDS) || _resp_text(r, "HMGET") ||
            _resp_key(r, o->target, load_splitmix(rng) % o->entities)) {
            return -1;
        }
        for (int f = 0; f < BENCH_FEATURES; f++) {
            if (_resp_text(r, load_features[f].name)) {
                return -1;
            }
        }
        if (_resp_text(r, "_ts")) {
            return -1;
        }
    }
    return 0;
}

/* ---- replies ----------------------------------------------------------------------------- */

/* What one top-level reply held, counted by the reader's object functions. */
struct reply_tally {
    int top_type;
    long long top_elements;
    uint64_t nils;
    char error[160]; /* the first error reply's text */
};

/* What the object functions return: hiredis takes NULL for out of memory, and hiredis 1.x
 * reads a reply's `type` (to spot RESP3 pushes), so it is a zeroed redisReply, not a byte. */
static redisReply _placeholder;

static void *_tally_top(const redisReadTask *task, long long elements) {
    struct reply_tally *t = task->privdata;
    if (task->parent == NULL) {
        t->top_type = task->type;
        t->top_elements = elements;
    }
    return &_placeholder;
}

static void *_on_string(const redisReadTask *task, char *str, size_t len) {
    struct reply_tally *t = task->privdata;
    if (task->type == REDIS_REPLY_ERROR && t->error[0] == '\0') {
        snprintf(t->error, sizeof t->error, "%.*s", (int)(len < 150 ? len : 150), str);
    }
    return _tally_top(task, 0);
}

#if HIREDIS_MAJOR >= 1
static void *_on_array(const redisReadTask *task, size_t elements) {
    return _tally_top(task, (long long)elements);
}
#else
static void *_on_array(const redisReadTask *task, int elements) {
    return _tally_top(task, elements);
}
#endif

static void *_on_integer(const redisReadTask *task, long long value) {
    (void)value;
    return _tally_top(task, 0);
}

static void *_on_nil(const redisReadTask *task) {
    struct reply_tally *t = task->privdata;
    t->nils++;
    return _tally_top(task, 0);
}

static void _free_nothing(void *obj) {
    (void)obj;
}

static redisReplyObjectFunctions _tally_functions = {
    .createString = _on_string,
    .createArray = _on_array,
    .createInteger = _on_integer,
    .createNil = _on_nil,
    .freeObject = _free_nothing,
};

/* NULL if a lookup's reply is what a filled Redis answers, else why not. */
static const char *_check_reply(const struct options *o, const struct reply_tally *t, char *why,
                                size_t why_len) {
    long long want = o->target == TARGET_REDIS_PACKED ? (long long)o->batch : HASH_FIELDS;
    const char *command = o->target == TARGET_REDIS_PACKED ? "MGET" : "HMGET";
    if (t->error[0] != '\0') {
        snprintf(why, why_len, "%s: %s", command, t->error);
    } else if (t->top_type != REDIS_REPLY_ARRAY || t->top_elements != want) {
        snprintf(why, why_len, "%s answered something other than an array of %lld", command, want);
    } else if (t->nils > 0) {
        snprintf(why, why_len,
                 "%s answered %" PRIu64 " nil values: the keys are missing (was Redis filled "
                 "with grpc_load --target %s --fill N, N >= --entities?)",
                 command, t->nils,
                 o->target == TARGET_REDIS_PACKED ? "redis-packed" : "redis-hash");
    } else {
        return NULL;
    }
    return why;
}

/* ---- connections ------------------------------------------------------------------------- */

struct pending_call {
    int64_t start_us, submit_us;
    uint32_t replies_left;
    bool failed;
};

struct redis_conn {
    redisContext *ctx;
    const struct options *o;
    load_done_fn done;
    void *user;
    struct pending_call *ring; /* calls in flight, oldest at head */
    uint32_t ring_cap, head, count;
    bool want_write; /* the context's output buffer is not empty */
    struct resp cmd;
    struct reply_tally tally;
    char error[256];
};

/* A blocking connection, for the probe and --fill. */
static redisContext *_connect_blocking(const struct options *o, char *err, size_t err_len) {
    struct timeval timeout = {CONNECT_S, 0};
    redisContext *ctx = redisConnectWithTimeout(o->host, o->port, timeout);
    if (ctx == NULL || ctx->err) {
        snprintf(err, err_len, "cannot connect to Redis at %s:%u: %s", o->host, o->port,
                 ctx != NULL ? ctx->errstr : "out of memory");
        redisFree(ctx);
        return NULL;
    }
    return ctx;
}

static void *_connect(const struct options *o, uint32_t values_per_entity, load_done_fn done,
                      void *user, char *err, size_t err_len) {
    (void)values_per_entity;
    struct redis_conn *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->ring = calloc(o->inflight, sizeof(*c->ring))) == NULL) {
        snprintf(err, err_len, "out of memory");
        free(c);
        return NULL;
    }
    c->ctx = _connect_blocking(o, err, err_len);
    if (c->ctx == NULL) {
        free(c->ring);
        free(c);
        return NULL;
    }
    /* hiredis' buffer reads and writes treat EAGAIN as "nothing now" once the context is not
     * flagged blocking: that is all a poll loop needs of it. */
    int flags = fcntl(c->ctx->fd, F_GETFL);
    fcntl(c->ctx->fd, F_SETFL, flags | O_NONBLOCK);
    c->ctx->flags &= ~REDIS_BLOCK;
    c->ctx->reader->fn = &_tally_functions;
    c->ctx->reader->privdata = &c->tally;
    c->o = o;
    c->ring_cap = o->inflight;
    c->done = done;
    c->user = user;
    return c;
}

static int _submit(void *conn, uint64_t *rng, int64_t start_us) {
    struct redis_conn *c = conn;
    if (c->ctx->err || c->count == c->ring_cap) {
        return -1;
    }
    int64_t now = clock_mono_us();
    uint32_t replies = 0;
    c->cmd.len = 0;
    if (_resp_lookup(&c->cmd, c->o, rng, &replies) != 0 ||
        redisAppendFormattedCommand(c->ctx, c->cmd.data, c->cmd.len) != REDIS_OK) {
        return -1;
    }
    c->ring[(c->head + c->count) % c->ring_cap] = (struct pending_call){
        .start_us = start_us != 0 ? start_us : now,
        .submit_us = now,
        .replies_left = replies,
    };
    c->count++;
    c->want_write = true;
    return 0;
}

/* Completes every call whose replies are all in; returns how many. */
static int _take_replies(struct redis_conn *c) {
    int completed = 0;
    void *reply;
    while (c->count > 0) {
        /* the tally carries over while a reply arrives in pieces; it restarts after one */
        if (redisReaderGetReply(c->ctx->reader, &reply) != REDIS_OK) {
            /* the context reports the reader's error from here on */
            memcpy(c->ctx->errstr, c->ctx->reader->errstr, sizeof c->ctx->errstr);
            c->ctx->err = REDIS_ERR_PROTOCOL;
            break;
        }
        if (reply == NULL) {
            break;
        }
        struct pending_call *call = &c->ring[c->head];
        char why[256];
        if (!call->failed && _check_reply(c->o, &c->tally, why, sizeof why) != NULL) {
            call->failed = true;
            snprintf(c->error, sizeof c->error, "%s", why);
        }
        memset(&c->tally, 0, sizeof c->tally);
        if (--call->replies_left > 0) {
            continue;
        }
        struct load_outcome out = {
            .start_us = call->start_us,
            .submit_us = call->submit_us,
            .done_us = clock_mono_us(),
            .error = call->failed ? c->error : NULL,
        };
        c->head = (c->head + 1) % c->ring_cap;
        c->count--;
        completed++;
        c->done(c->user, &out);
    }
    return completed;
}

/* A broken connection completes its calls in flight with the connection's error. */
static int _fail_inflight(struct redis_conn *c) {
    int completed = 0;
    snprintf(c->error, sizeof c->error, "Redis connection: %s", c->ctx->errstr);
    while (c->count > 0) {
        struct pending_call *call = &c->ring[c->head];
        struct load_outcome out = {
            .start_us = call->start_us,
            .submit_us = call->submit_us,
            .done_us = clock_mono_us(),
            .error = c->error,
        };
        c->head = (c->head + 1) % c->ring_cap;
        c->count--;
        completed++;
        c->done(c->user, &out);
    }
    return completed;
}

static void _flush(struct redis_conn *c) {
    int done = 0;
    if (c->want_write && !c->ctx->err && redisBufferWrite(c->ctx, &done) == REDIS_OK) {
        c->want_write = !done;
    }
}

static int _poll_many(void *const *conns, size_t n, int64_t timeout_us) {
    struct pollfd fds[MAX_CONNECTIONS];
    int completed = 0;
    for (size_t i = 0; i < n; i++) {
        struct redis_conn *c = conns[i];
        _flush(c); /* what was queued since the last poll leaves now */
        if (c->ctx->err) {
            completed += _fail_inflight(c);
        }
        fds[i] = (struct pollfd){.fd = c->ctx->err ? -1 : c->ctx->fd,
                                 .events = (short)(POLLIN | (c->want_write ? POLLOUT : 0))};
    }
    if (completed > 0) {
        timeout_us = 0;
    }
    struct timespec wait = {timeout_us / 1000000, (timeout_us % 1000000) * 1000};
    int ready = ppoll(fds, n, timeout_us < 0 ? NULL : &wait, NULL);
    if (ready < 0) {
        /* EINTR (SIGUSR1 ending the run, say) is not a failure: the loop looks again */
        return errno == EINTR || completed > 0 ? completed : -1;
    }
    for (size_t i = 0; i < n && ready > 0; i++) {
        struct redis_conn *c = conns[i];
        if (fds[i].revents == 0) {
            continue;
        }
        if (fds[i].revents & POLLOUT) {
            _flush(c);
        }
        if ((fds[i].revents & (POLLIN | POLLERR | POLLHUP)) && !c->ctx->err) {
            if (redisBufferRead(c->ctx) == REDIS_OK) {
                completed += _take_replies(c);
            }
        }
        if (c->ctx->err) {
            completed += _fail_inflight(c);
        }
    }
    return completed;
}

static size_t _inflight(const void *conn) {
    return ((const struct redis_conn *)conn)->count;
}

static const char *_conn_error(const void *conn) {
    const struct redis_conn *c = conn;
    return c->ctx->err ? c->ctx->errstr : NULL;
}

static void _disconnect(void *conn) {
    struct redis_conn *c = conn;
    if (c != NULL) {
        redisFree(c->ctx);
        free(c->ring);
        free(c->cmd.data);
        free(c);
    }
}

/* ---- probe and fill ---------------------------------------------------------------------- */

/* One lookup on a blocking connection: no Redis, or an empty one, stops the benchmark here. */
static int _probe(const struct options *o, uint32_t *values_per_entity) {
    char err[512];
    redisContext *ctx = _connect_blocking(o, err, sizeof err);
    if (ctx == NULL) {
        fprintf(stderr, "grpc_load: %s\n", err);
        return -1;
    }
    struct reply_tally tally;
    ctx->reader->fn = &_tally_functions;
    ctx->reader->privdata = &tally;
    struct resp cmd = {0};
    uint64_t rng = o->seed;
    uint32_t replies = 0;
    int rc = -1;
    if (_resp_lookup(&cmd, o, &rng, &replies) == 0 &&
        redisAppendFormattedCommand(ctx, cmd.data, cmd.len) == REDIS_OK) {
        rc = 0;
        for (uint32_t i = 0; i < replies && rc == 0; i++) {
            void *reply = NULL;
            memset(&tally, 0, sizeof tally);
            if (redisGetReply(ctx, &reply) != REDIS_OK) {
                fprintf(stderr, "grpc_load: Redis: %s\n", ctx->errstr);
                rc = -1;
            } else if (_check_reply(o, &tally, err, sizeof err) != NULL) {
                fprintf(stderr, "grpc_load: %s\n", err);
                rc = -1;
            }
        }
    }
    free(cmd.data);
    redisFree(ctx);
    *values_per_entity = BENCH_FEATURES;
    return rc;
}

/* Writes entities 0..N-1, FILL_PIPELINE commands a round trip. */
static int _fill(const struct options *o) {
    char err[512];
    redisContext *ctx = _connect_blocking(o, err, sizeof err);
    if (ctx == NULL) {
        fprintf(stderr, "grpc_load: %s\n", err);
        return 1;
    }
    const char *name = o->target == TARGET_REDIS_PACKED ? "redis-packed" : "redis-hash";
    struct resp cmd = {0};
    int64_t event_time_us = clock_wall_us();
    int64_t start = clock_mono_us();
    int64_t deadline = start + (int64_t)MAX_DURATION_S * 1000000;
    uint64_t written = 0;
    int rc = 0;
    while (written < o->fill && rc == 0) {
        if (clock_mono_us() >= deadline) {
            snprintf(err, sizeof err, "time limit reached");
            rc = 1;
            break;
        }
        uint64_t n = o->fill - written < FILL_PIPELINE ? o->fill - written : FILL_PIPELINE;
        cmd.len = 0;
        for (uint64_t i = 0; i < n && rc == 0; i++) {
            rc = _resp_write_row(&cmd, o->target, written + i, event_time_us) != 0;
        }
        if (rc != 0 || redisAppendFormattedCommand(ctx, cmd.data, cmd.len) != REDIS_OK) {
            snprintf(err, sizeof err, "out of memory");
            rc = 1;
            break;
        }
        for (uint64_t i = 0; i < n; i++) {
            redisReply *reply = NULL;
            if (redisGetReply(ctx, (void **)&reply) != REDIS_OK) {
                snprintf(err, sizeof err, "%s", ctx->errstr);
                rc = 1;
                break;
            }
            if (reply->type == REDIS_REPLY_ERROR && rc == 0) {
                snprintf(err, sizeof err, "%s", reply->str);
                rc = 1;
            }
            freeReplyObject(reply);
        }
        written += rc == 0 ? n : 0;
    }
    double elapsed_s = (double)(clock_mono_us() - start) / 1e6;
    if (rc != 0) {
        fprintf(stderr, "grpc_load: fill of %s failed after %" PRIu64 " of %" PRIu64 " rows: %s\n",
                name, written, o->fill, err);
    } else {
        printf("filled %" PRIu64 " rows into %s in %.2f s: %.0f rows/s\n", written, name, elapsed_s,
               (double)written / elapsed_s);
    }
    free(cmd.data);
    redisFree(ctx);
    return rc;
}

#define REDIS_TARGET(target_name)                                                                  \
    {                                                                                              \
        .name = target_name, .probe = _probe, .connect = _connect, .submit = _submit,              \
        .poll_many = _poll_many, .inflight = _inflight, .conn_error = _conn_error,                 \
        .disconnect = _disconnect, .fill = _fill,                                                  \
    }

const struct load_target load_target_redis_hash = REDIS_TARGET("redis-hash");
const struct load_target load_target_redis_packed = REDIS_TARGET("redis-packed");
