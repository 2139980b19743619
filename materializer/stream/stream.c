/*
 * The stream consumers: one control thread, one libevent base, one hiredis async connection
 * per view with a stream (see stream.h for what they do, stream_entry.c for the entries).
 *
 * Per view, a small state machine driven by hiredis callbacks and two timers:
 *
 *   WAITING ──retry timer──> CONNECTING: connect, [AUTH], [SELECT], XINFO STREAM (position)
 *      ^                          │ reply
 *      │ failure, error reply,    v
 *      │ watchdog, out of memory  READING: [XINFO STREAM every lag_sample_us] XREAD BLOCK ──┐
 *      └──────────────────────────────┘                        ^   reply: apply the batch  │
 *                                                              └───────────────────────────┘
 *
 * The retry timer waits backoff_us (first MAT_STREAM_RECONNECT_FIRST_US, doubling to
 * MAT_STREAM_RECONNECT_MAX_US, back to the first after a good XREAD reply). The watchdog drops
 * a connection that stays silent for block_ms + reply_grace_us (or connect_timeout_us while
 * connecting): hiredis 0.14 has no timeouts of its own on async connections.
 *
 * Positions: `last` is the ID of the last entry applied or skipped as bad; every XREAD asks
 * for the entries after it, so nothing is lost to a reconnect. An entry the store could not
 * take (out of memory) stops the batch before it and drops the connection: it is read again
 * after the backoff.
 *
 * Lag in entries: Redis 7's XINFO STREAM counts entries ever added (entries-added). Once the
 * consumer knows how many of those lie at or before `last` (it does when it starts from "$" or
 * 0, and whenever it is caught up), lag = entries-added - that count, which grows by one per
 * entry read. Entries deleted with XDEL before being read make it an overestimate until the
 * consumer catches up.
 */
#include "stream.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
/* The adapter's functions are static: this is the one file that includes it. */
#include <hiredis/adapters/libevent.h>

#include "common/log.h"
#include "common/errors.h"
#include "common/metrics.h"
#include "durability/wal.h"
#include "store/catalog.h"
#include "store/rcu.h"
#include "store/row.h"
#include "stream_internal.h"
#include "common/clock.h"

enum consumer_state {
    C_WAITING,    /* for the retry timer */
    C_CONNECTING, /* connected or not yet, the position not yet known */
    C_READING,    /* an XREAD is in flight */
    C_LOGGING,    /* connected; the last batch is on its way through the log, no XREAD yet */
};

/* What XINFO STREAM said. */
struct xinfo {
    bool exists;
    struct mat_stream_id last_generated;
    uint64_t length;
    bool has_added; /* Redis >= 7.0 */
    uint64_t entries_added;
    bool has_first;
    struct mat_stream_id first;
};

struct consumer {
    char view_name[MAT_STREAM_VIEW_LEN];
    struct store_view *view;
    struct mat_stream_config cfg;
    struct mat_stream_parser *parser;
    redisAsyncContext *ac; /* NULL while waiting; callbacks of any other context are stale */
    enum consumer_state state;
    struct event *retry_timer;
    struct event *watchdog;
    struct event *snapshot_timer; /* start: snapshot, until the view's snapshot has a position */
    int64_t backoff_us;
    bool ever_connected;
    bool have_position;
    struct mat_stream_id last;
    bool count_known;       /* entries_read is calibrated */
    uint64_t entries_read;  /* entries of the stream at or before `last` (entries-added scale) */
    uint64_t added_seen;    /* entries-added at the last XINFO (or more, once read) */
    int64_t next_sample_us; /* monotonic */
    /* bad-entry log limit */
    int64_t log_window_us;
    uint32_t logged;
    uint64_t suppressed;
    struct mat_stream_field *fields;
    size_t fields_cap;
    struct mat_stream_entry entry; /* 4 KiB of key buffer: not on the stack per entry */
    struct mat_stream_metrics metrics;
    /* With a log (durability/wal.h): the batch on its way through it. The log writer applies
     * it, then activates logged_ev; until then no XREAD is sent. */
    struct event *logged_ev;
    bool logging;
    struct mat_stream_id pending_from, pending_last;
    size_t pending_read;    /* entries the XREAD reply held */
    size_t pending_counted; /* of them, those past `last` that count towards entries_read */
    _Atomic int log_result; /* set by the log writer: 1 applied, -1 not */
    char logged_error[256]; /* why not; written before `logged` */
};

static struct {
    bool running;
    struct mat_stream_options options;
    struct event_base *base;
    struct event *wake;
    int wake_fd;
    pthread_t thread;
    struct consumer *consumers;
    size_t n;
    struct mat_stream_metrics **metric_views;
    struct mat_stream_metrics_set set;
    bool collector_registered;
    _Atomic size_t in_log; /* batches the log writer has not finished with: teardown waits */
} streams = {.wake_fd = -1};

void mat_stream_options_init(struct mat_stream_options *o) {
    *o = (struct mat_stream_options){
        .reconnect_first_us = MAT_STREAM_RECONNECT_FIRST_US,
        .reconnect_max_us = MAT_STREAM_RECONNECT_MAX_US,
        .connect_timeout_us = MAT_STREAM_CONNECT_TIMEOUT_US,
        .reply_grace_us = MAT_STREAM_REPLY_GRACE_US,
        .lag_sample_us = MAT_STREAM_LAG_SAMPLE_US,
    };
}

static struct timeval _tv(int64_t us) {
    return (struct timeval){.tv_sec = us / 1000000, .tv_usec = us % 1000000};
}

static void _id_text(struct mat_stream_id id, char *buf, size_t len) {
    snprintf(buf, len, "%" PRIu64 "-%" PRIu64, id.ms, id.seq);
}

static bool _is_zero(struct mat_stream_id id) {
    return id.ms == 0 && id.seq == 0;
}

/* ---- connection lifecycle ------------------------------------------------------------------ */

static void _connect(struct consumer *c);

static void _schedule_retry(struct consumer *c) {
    c->state = C_WAITING;
    atomic_store_explicit(&c->metrics.connected, 0, memory_order_relaxed);
    event_del(c->watchdog);
    struct timeval tv = _tv(c->backoff_us);
    evtimer_add(c->retry_timer, &tv);
    c->backoff_us = c->backoff_us * 2 < streams.options.reconnect_max_us
                        ? c->backoff_us * 2
                        : streams.options.reconnect_max_us;
}

/*
 * Abandons the connection and retries after the backoff. Inside a hiredis callback the free
 * is deferred by hiredis until the callback returns; either way the context's remaining
 * callbacks find c->ac changed and do nothing.
 */
static void _drop(struct consumer *c) {
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    if (ac != NULL) {
        redisAsyncFree(ac);
    }
    _schedule_retry(c);
}

/* A command failed with an error reply: worth a person's attention (wrong type, auth). */
static void _fail(struct consumer *c, const char *command, const char *error) {
    char message[512];
    snprintf(message, sizeof message, "%s on stream %.200s: %.250s", command, c->cfg.key, error);
    log_error("redis refused a stream command; retrying", "view=%s redis=%s:%u key=%s error=%s",
              c->view_name, c->cfg.host, c->cfg.port, LOG_QUOTE(c->cfg.key), LOG_QUOTE(message));
    errors_record("streams", c->view_name, message);
    _drop(c);
}

static void _arm_watchdog(struct consumer *c, int64_t us) {
    struct timeval tv = _tv(us);
    evtimer_add(c->watchdog, &tv);
}

static void _on_watchdog(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    struct consumer *c = arg;
    log_warn("redis did not answer in time; reconnecting", "view=%s redis=%s:%u state=%s",
             c->view_name, c->cfg.host, c->cfg.port,
             c->state == C_CONNECTING ? "connecting" : "reading");
    _drop(c);
}

static void _on_retry(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    _connect(arg);
}

static void _on_connect(const redisAsyncContext *ac, int status) {
    struct consumer *c = ac->data;
    if (c->ac != ac) {
        return;
    }
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback. */
        log_warn("cannot connect to redis; retrying", "view=%s redis=%s:%u error=%s retry_ms=%lld",
                 c->view_name, c->cfg.host, c->cfg.port, LOG_QUOTE(ac->errstr),
                 (long long)(c->backoff_us / 1000));
        c->ac = NULL;
        _schedule_retry(c);
        return;
    }
    if (c->ever_connected) {
        atomic_fetch_add_explicit(&c->metrics.reconnects, 1, memory_order_relaxed);
    }
    c->ever_connected = true;
}

static void _on_disconnect(const redisAsyncContext *ac, int status) {
    (void)status;
    struct consumer *c = ac->data;
    if (c->ac != ac) {
        return; /* dropped on purpose, already handled */
    }
    c->ac = NULL;
    log_warn("lost the connection to redis; reconnecting", "view=%s redis=%s:%u error=%s",
             c->view_name, c->cfg.host, c->cfg.port,
             LOG_QUOTE(ac->err ? ac->errstr : "closed by the server"));
    _schedule_retry(c);
}

/* ---- positions and lag --------------------------------------------------------------------- */

/* XINFO STREAM's flat key/value reply (RESP2) into *info. */
static int _parse_xinfo(const redisReply *r, struct xinfo *info) {
    *info = (struct xinfo){.exists = true};
    bool have_last = false;
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0) {
        return -1;
    }
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type != REDIS_REPLY_STRING && k->type != REDIS_REPLY_STATUS) {
            continue;
        }
        if (strcmp(k->str, "length") == 0 && v->type == REDIS_REPLY_INTEGER) {
            info->length = (uint64_t)v->integer;
        } else if (strcmp(k->str, "last-generated-id") == 0 && v->type == REDIS_REPLY_STRING) {
            have_last = mat_stream_id_parse(v->str, v->len, &info->last_generated);
        } else if (strcmp(k->str, "entries-added") == 0 && v->type == REDIS_REPLY_INTEGER) {
            info->has_added = true;
            info->entries_added = (uint64_t)v->integer;
        } else if (strcmp(k->str, "first-entry") == 0 && v->type == REDIS_REPLY_ARRAY &&
                   v->elements >= 1 && v->element[0]->type == REDIS_REPLY_STRING) {
            info->has_first =
                mat_stream_id_parse(v->element[0]->str, v->element[0]->len, &info->first);
        }
    }
    return have_last ? 0 : -1;
}

static void _set_lag(struct consumer *c, int64_t entries) {
    atomic_store_explicit(&c->metrics.lag_entries, entries, memory_order_relaxed);
}

/* After a batch of `n` entries: a short batch means nothing more was there when Redis answered;
 * otherwise the lag shrinks by what was read until the next XINFO says more. */
static void _lag_after_batch(struct consumer *c, size_t n) {
    if (n < c->cfg.batch) {
        if (c->count_known && c->entries_read > c->added_seen) {
            c->added_seen = c->entries_read;
        }
        _set_lag(c, 0);
    } else if (c->count_known) {
        _set_lag(c,
                 (int64_t)(c->added_seen > c->entries_read ? c->added_seen - c->entries_read : 0));
    }
}

/* Sets entries_read from what XINFO says, where it can, and publishes the lag. */
static void _calibrate(struct consumer *c, const struct xinfo *info) {
    c->added_seen = info->entries_added;
    if (!info->exists) {
        c->count_known = _is_zero(c->last);
        c->entries_read = 0;
        _set_lag(c, 0);
        return;
    }
    if (mat_stream_id_cmp(c->last, info->last_generated) >= 0) {
        c->count_known = info->has_added;
        c->entries_read = info->entries_added;
        _set_lag(c, 0);
    } else if (!info->has_added) {
        c->count_known = false;
        _set_lag(c, -1);
    } else if (!info->has_first || mat_stream_id_cmp(c->last, info->first) < 0) {
        /* before every entry still in the stream: the trimmed ones count as read */
        c->count_known = true;
        c->entries_read = info->entries_added - info->length;
        _set_lag(c, (int64_t)info->length);
    } else if (c->count_known) {
        uint64_t behind =
            info->entries_added > c->entries_read ? info->entries_added - c->entries_read : 0;
        _set_lag(c, (int64_t)behind);
    } else {
        _set_lag(c, -1);
    }
}

/*
 * Where to read from after (re)connecting: the configured start the first time, else after
 * the last applied entry, unless the stream is gone or was recreated (its last ID is below
 * ours): then from its beginning, since every entry in it is new to us.
 */
static void _position(struct consumer *c, const struct xinfo *info) {
    char last[MAT_STREAM_ID_LEN], generated[MAT_STREAM_ID_LEN];
    if (!c->have_position) {
        c->have_position = true;
        if (c->cfg.start == MAT_STREAM_START_AFTER || c->cfg.start == MAT_STREAM_START_SNAPSHOT) {
            /* for snapshot: the position _on_snapshot_poll found */
            c->last = (struct mat_stream_id){c->cfg.start_ms, c->cfg.start_seq};
        } else if (c->cfg.start == MAT_STREAM_START_NEW && info->exists) {
            c->last = info->last_generated;
        } else {
            c->last = (struct mat_stream_id){0, 0};
        }
    } else if (!info->exists && !_is_zero(c->last)) {
        _id_text(c->last, last, sizeof last);
        log_warn("stream not found in redis: reading it from its beginning once it exists",
                 "view=%s key=%s last_applied=%s", c->view_name, LOG_QUOTE(c->cfg.key), last);
        c->last = (struct mat_stream_id){0, 0};
    } else if (info->exists && mat_stream_id_cmp(info->last_generated, c->last) < 0) {
        _id_text(c->last, last, sizeof last);
        _id_text(info->last_generated, generated, sizeof generated);
        log_warn("stream was recreated (its last ID is below the last applied one): reading it "
                 "from its beginning",
                 "view=%s key=%s last_applied=%s last_generated=%s", c->view_name,
                 LOG_QUOTE(c->cfg.key), last, generated);
        c->last = (struct mat_stream_id){0, 0};
        c->count_known = false;
    }
    mat_stream_metrics_set_last_id(&c->metrics, c->last);
    _calibrate(c, info);
}

/* ---- reading ------------------------------------------------------------------------------- */

static void _on_xread(redisAsyncContext *ac, void *r, void *privdata);
static void _on_info_sample(redisAsyncContext *ac, void *r, void *privdata);

static void _send_xread(struct consumer *c) {
    if (c->logging) {
        c->state = C_LOGGING;   /* reconnected meanwhile: _on_logged_event sends it */
        event_del(c->watchdog); /* the disk, not redis, is what is awaited */
        return;
    }
    int64_t now = clock_mono_us();
    if (now >= c->next_sample_us) {
        c->next_sample_us = now + streams.options.lag_sample_us;
        const char *info[] = {"XINFO", "STREAM", c->cfg.key};
        redisAsyncCommandArgv(c->ac, _on_info_sample, c, 3, info, NULL);
    }
    char count[16], block[16], id[MAT_STREAM_ID_LEN];
    snprintf(count, sizeof count, "%u", c->cfg.batch);
    snprintf(block, sizeof block, "%u", c->cfg.block_ms);
    _id_text(c->last, id, sizeof id);
    const char *argv[] = {"XREAD", "COUNT", count, "BLOCK", block, "STREAMS", c->cfg.key, id};
    if (redisAsyncCommandArgv(c->ac, _on_xread, c, 8, argv, NULL) != REDIS_OK) {
        log_warn("cannot send XREAD; reconnecting", "view=%s", c->view_name);
        _drop(c);
        return;
    }
    c->state = C_READING;
    _arm_watchdog(c, (int64_t)c->cfg.block_ms * 1000 + streams.options.reply_grace_us);
}

static void _log_bad(struct consumer *c, const char *id, const char *why) {
    int64_t now = clock_mono_us();
    if (now - c->log_window_us >= 1000000) {
        if (c->suppressed > 0) {
            log_warn("more bad stream entries skipped, not logged one by one",
                     "view=%s count=%" PRIu64, c->view_name, c->suppressed);
        }
        c->log_window_us = now;
        c->logged = 0;
        c->suppressed = 0;
    }
    if (c->logged >= MAT_STREAM_BAD_LOG_PER_S) {
        c->suppressed++;
        return;
    }
    if (c->logged++ == 0) {
        char message[600];
        snprintf(message, sizeof message, "bad entry %s: %s", id, why);
        errors_record("streams", c->view_name, message);
    }
    log_warn("bad stream entry skipped", "view=%s key=%s id=%s error=%s", c->view_name,
             LOG_QUOTE(c->cfg.key), id, LOG_QUOTE(why));
}

/* The fields of entry reply `fr` into c->fields: OK, BAD (not a field list) or OOM. */
static int _fields(struct consumer *c, const redisReply *fr, size_t *n, char *why, size_t why_len) {
    if (fr->type != REDIS_REPLY_ARRAY || fr->elements % 2 != 0) {
        snprintf(why, why_len, "no fields, or an odd number of field names and values");
        return MAT_STREAM_ENTRY_BAD;
    }
    size_t pairs = fr->elements / 2;
    if (pairs > c->fields_cap) {
        struct mat_stream_field *grown = realloc(c->fields, pairs * sizeof(*grown));
        if (grown == NULL) {
            return MAT_STREAM_ENTRY_OOM;
        }
        c->fields = grown;
        c->fields_cap = pairs;
    }
    for (size_t i = 0; i < pairs; i++) {
        const redisReply *k = fr->element[2 * i], *v = fr->element[2 * i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            snprintf(why, why_len, "field %zu is not a string", i);
            return MAT_STREAM_ENTRY_BAD;
        }
        c->fields[i] = (struct mat_stream_field){k->str, k->len, v->str, v->len};
    }
    *n = pairs;
    return MAT_STREAM_ENTRY_OK;
}

/*
 * Reads one XREAD entry into c->entry and `b`. Returns MAT_STREAM_ENTRY_OK, _OOM, or _BAD (a
 * bad entry, counted and logged). *has_id says whether the entry had an ID (*id): the position
 * moves past a bad entry that has one, and never to an entry without one.
 */
static int _read_entry(struct consumer *c, const redisReply *e, int64_t now_us,
                       struct store_row_builder *b, struct mat_stream_id *id, bool *has_id) {
    struct mat_stream_metrics *m = &c->metrics;
    *has_id = e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
              e->element[0]->type == REDIS_REPLY_STRING &&
              mat_stream_id_parse(e->element[0]->str, e->element[0]->len, id);
    if (!*has_id) {
        atomic_fetch_add_explicit(&m->bad, 1, memory_order_relaxed);
        _log_bad(c, "?", "not an entry ([id, [field, value, ...]])");
        return MAT_STREAM_ENTRY_BAD;
    }
    char why[512] = "";
    size_t nfields = 0;
    int rc = _fields(c, e->element[1], &nfields, why, sizeof why);
    if (rc == MAT_STREAM_ENTRY_OK) {
        rc = mat_stream_parse_entry(c->parser, c->fields, nfields, now_us, b, &c->entry, why,
                                    sizeof why);
    }
    if (rc == MAT_STREAM_ENTRY_BAD) {
        atomic_fetch_add_explicit(&m->bad, 1, memory_order_relaxed);
        _log_bad(c, e->element[0]->str, why);
    }
    return rc;
}

/*
 * Applies one XREAD batch. Returns 0, or -1 after dropping the connection when the store ran
 * out of memory (the batch stops before the entry that failed, to be read again).
 */
static int _apply(struct consumer *c, const redisReply *entries) {
    struct mat_stream_metrics *m = &c->metrics;
    struct mat_stream_entry *entry = &c->entry;
    struct store_row_builder b;
    int64_t now_us = clock_wall_us();
    bool oom = false;
    store_read_lock();
    if (store_row_builder_init(&b, store_view_schema(c->view)) != 0) {
        store_read_unlock();
        log_error("out of memory applying stream entries; retrying", "view=%s", c->view_name);
        _drop(c);
        return -1;
    }
    for (size_t i = 0; i < entries->elements && !oom; i++) {
        struct mat_stream_id id;
        bool has_id;
        int rc = _read_entry(c, entries->element[i], now_us, &b, &id, &has_id);
        if (!has_id) {
            continue;
        }
        if (rc == MAT_STREAM_ENTRY_OK) {
            enum store_upsert_result result =
                entry->is_delete ? store_view_delete(c->view, &entry->key, entry->event_ts_us,
                                                     entry->created_ts_us)
                                 : store_view_upsert(c->view, &entry->key, &b);
            if (result == STORE_UPSERT_ERROR) {
                rc = MAT_STREAM_ENTRY_OOM;
            } else {
                atomic_fetch_add_explicit(&m->applied, 1, memory_order_relaxed);
                if (result == STORE_UPSERT_NOT_NEWER) {
                    atomic_fetch_add_explicit(&m->not_newer, 1, memory_order_relaxed);
                }
                mat_stream_metrics_observe_lag(m, clock_wall_us() - entry->event_ts_us);
            }
        }
        if (rc == MAT_STREAM_ENTRY_OOM) {
            oom = true;
            break;
        }
        c->last = id;
        c->entries_read += c->count_known;
    }
    store_read_unlock();
    store_row_builder_deinit(&b);
    mat_stream_metrics_set_last_id(m, c->last);
    if (oom) {
        log_error("out of memory applying a stream entry; retrying it", "view=%s", c->view_name);
        _drop(c);
        return -1;
    }
    return 0;
}

/*
 * With a log: the batch's rows go to it as one record that ends with the position of its last
 * entry, and the log writer applies them once they are durable (_on_logged). So a restart
 * replays exactly the entries that were applied and resumes the stream after the last of them.
 * Returns 1 when a batch went to the log (the consumer waits for it), 0 when there was nothing
 * to log (only bad entries: `last` moves past them), -1 after dropping the connection when out
 * of memory (the entries are read again).
 */
static void _on_logged(struct wal_batch *batch, const char *error, void *arg);

static int _log_entries(struct consumer *c, const redisReply *entries) {
    struct mat_stream_metrics *m = &c->metrics;
    struct mat_stream_entry *entry = &c->entry;
    struct store_row_builder b;
    int64_t now_us = clock_wall_us();
    store_read_lock();
    const struct store_schema *schema = store_view_schema(c->view);
    struct wal_batch *batch =
        wal_batch_create(c->view_name, store_schema_layout_fingerprint(schema));
    if (batch == NULL || store_row_builder_init(&b, schema) != 0) {
        store_read_unlock();
        wal_batch_destroy(batch);
        log_error("out of memory logging stream entries; retrying", "view=%s", c->view_name);
        _drop(c);
        return -1;
    }
    struct mat_stream_id last = c->last;
    size_t counted = 0;
    bool oom = false;
    for (size_t i = 0; i < entries->elements && !oom; i++) {
        struct mat_stream_id id;
        bool has_id;
        int rc = _read_entry(c, entries->element[i], now_us, &b, &id, &has_id);
        if (!has_id) {
            continue;
        }
        if (rc == MAT_STREAM_ENTRY_OK) {
            const struct store_row_builder *built = entry->is_delete ? NULL : &b;
            int64_t event_ts_us = built ? b.event_ts_us : entry->event_ts_us;
            int64_t created_ts_us = built ? b.created_ts_us : entry->created_ts_us;
            struct store_row *dst =
                wal_batch_add_space(batch, store_row_image_size(&entry->key, built, created_ts_us));
            if (dst == NULL) {
                oom = true;
                break;
            }
            store_row_image_write(dst, &entry->key, built, event_ts_us, created_ts_us);
            dst->flags |= STORE_ROW_LIVE;
        } else if (rc == MAT_STREAM_ENTRY_OOM) {
            oom = true;
            break;
        }
        last = id;
        counted++;
    }
    store_read_unlock();
    store_row_builder_deinit(&b);
    char position[MAT_STREAM_ID_LEN];
    _id_text(last, position, sizeof position);
    if (!oom && wal_batch_rows(batch) > 0 &&
        wal_batch_end_at_stream_position(batch, position) != 0) {
        oom = true;
    }
    if (oom) {
        wal_batch_destroy(batch);
        log_error("out of memory logging stream entries; retrying", "view=%s", c->view_name);
        _drop(c);
        return -1;
    }
    if (wal_batch_rows(batch) == 0) { /* only bad entries: nothing to log */
        wal_batch_destroy(batch);
        c->last = last;
        c->entries_read += c->count_known ? counted : 0;
        mat_stream_metrics_set_last_id(m, c->last);
        return 0;
    }
    c->logging = true;
    c->state = C_LOGGING;
    event_del(c->watchdog); /* the reply came; the disk, not redis, is what is awaited */
    c->pending_from = c->last;
    c->pending_last = last;
    c->pending_read = entries->elements;
    c->pending_counted = counted;
    atomic_store_explicit(&c->log_result, 0, memory_order_relaxed);
    atomic_fetch_add_explicit(&streams.in_log, 1, memory_order_relaxed);
    wal_append(batch, _on_logged, c); /* on failure `done` has run already */
    return 1;
}

/* On the log writer, in log order, inside a read section: the batch is durable (apply it) or
 * not (apply nothing; the consumer reads the entries again). */
static void _on_logged(struct wal_batch *batch, const char *error, void *arg) {
    struct consumer *c = arg;
    struct mat_stream_metrics *m = &c->metrics;
    int result = 1;
    if (error != NULL) {
        snprintf(c->logged_error, sizeof c->logged_error, "%s", error);
        result = -1;
    }
    for (size_t r = 0; result > 0 && r < wal_batch_rows(batch); r++) {
        const struct store_row *row = wal_batch_row(batch, r);
        enum store_upsert_result applied = store_view_upsert_image(c->view, row);
        if (applied == STORE_UPSERT_ERROR) {
            snprintf(c->logged_error, sizeof c->logged_error,
                     "out of memory applying entry %zu of the batch", r);
            result = -1;
            break;
        }
        atomic_fetch_add_explicit(&m->applied, 1, memory_order_relaxed);
        if (applied == STORE_UPSERT_NOT_NEWER) {
            atomic_fetch_add_explicit(&m->not_newer, 1, memory_order_relaxed);
        }
        mat_stream_metrics_observe_lag(m, clock_wall_us() - row->event_ts_us);
    }
    if (result > 0) {
        store_view_set_stream_applied(c->view, wal_batch_stream_position(batch));
    }
    atomic_store_explicit(&c->log_result, result, memory_order_release);
    event_active(c->logged_ev, EV_READ, 0);
    atomic_fetch_sub_explicit(&streams.in_log, 1, memory_order_release);
}

/* On the consumer thread, once the log writer is done with the batch. */
static void _on_logged_event(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    struct consumer *c = arg;
    c->logging = false;
    if (atomic_load_explicit(&c->log_result, memory_order_acquire) < 0) {
        log_error("stream entries could not be made durable, none applied; reading them again",
                  "view=%s error=%s", c->view_name, LOG_QUOTE(c->logged_error));
        errors_record("streams", c->view_name, c->logged_error);
        if (c->ac != NULL) {
            _drop(c);
        }
        return;
    }
    /* A batch went through: reconnects start from the first backoff again (a log that keeps
     * refusing batches makes each reconnect wait longer, as a failing redis does). */
    c->backoff_us = streams.options.reconnect_first_us;
    if (mat_stream_id_cmp(c->last, c->pending_from) == 0) { /* not moved by a recreation */
        c->last = c->pending_last;
        c->entries_read += c->count_known ? c->pending_counted : 0;
    }
    mat_stream_metrics_set_last_id(&c->metrics, c->last);
    if (c->ac != NULL && c->state == C_LOGGING) {
        _lag_after_batch(c, c->pending_read);
        _send_xread(c);
    }
}

static void _on_xread(redisAsyncContext *ac, void *r, void *privdata) {
    struct consumer *c = privdata;
    const redisReply *reply = r;
    if (reply == NULL || c->ac != ac) {
        return; /* the connection is going away */
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        _fail(c, "XREAD", reply->str);
        return;
    }
    if (!wal_enabled() || reply->type == REDIS_REPLY_NIL) {
        c->backoff_us = streams.options.reconnect_first_us; /* else once the batch is applied */
    }
    if (reply->type == REDIS_REPLY_NIL) {
        _set_lag(c, 0); /* nothing new for block_ms: caught up */
    } else if (reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements; i++) {
            const redisReply *s = reply->element[i];
            if (s->type == REDIS_REPLY_ARRAY && s->elements == 2 &&
                s->element[1]->type == REDIS_REPLY_ARRAY) {
                int rc = wal_enabled() ? _log_entries(c, s->element[1]) : _apply(c, s->element[1]);
                if (rc != 0) {
                    return; /* dropped, or in the log: _on_logged_event goes on */
                }
                _lag_after_batch(c, s->element[1]->elements);
            }
        }
    }
    _send_xread(c);
}

static void _on_info_sample(redisAsyncContext *ac, void *r, void *privdata) {
    struct consumer *c = privdata;
    const redisReply *reply = r;
    struct xinfo info;
    if (reply == NULL || c->ac != ac) {
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        if (strstr(reply->str, "no such key") != NULL) {
            _set_lag(c, 0);
        }
        return;
    }
    if (_parse_xinfo(reply, &info) != 0) {
        return;
    }
    if (mat_stream_id_cmp(info.last_generated, c->last) < 0) {
        _position(c, &info); /* recreated while we were connected: the next XREAD rereads */
        return;
    }
    _calibrate(c, &info);
}

/* The first XINFO STREAM of a connection: where to read from. */
static void _on_info_start(redisAsyncContext *ac, void *r, void *privdata) {
    struct consumer *c = privdata;
    const redisReply *reply = r;
    struct xinfo info = {.exists = false};
    if (reply == NULL || c->ac != ac) {
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR && strstr(reply->str, "no such key") == NULL) {
        _fail(c, "XINFO STREAM", reply->str);
        return;
    }
    if (reply->type != REDIS_REPLY_ERROR && _parse_xinfo(reply, &info) != 0) {
        _fail(c, "XINFO STREAM", "unexpected reply");
        return;
    }
    _position(c, &info);
    char id[MAT_STREAM_ID_LEN];
    _id_text(c->last, id, sizeof id);
    log_info("stream consumer reading", "view=%s redis=%s:%u db=%u key=%s format=%s after_id=%s",
             c->view_name, c->cfg.host, c->cfg.port, c->cfg.db, LOG_QUOTE(c->cfg.key),
             mat_stream_format_name(c->cfg.format), id);
    atomic_store_explicit(&c->metrics.connected, 1, memory_order_relaxed);
    c->next_sample_us = clock_mono_us() + streams.options.lag_sample_us;
    _send_xread(c);
}

/* AUTH and SELECT: anything but OK stops this connection. */
static void _on_setup_reply(redisAsyncContext *ac, void *r, void *privdata) {
    struct consumer *c = privdata;
    const redisReply *reply = r;
    if (reply == NULL || c->ac != ac) {
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        _fail(c, "AUTH/SELECT", reply->str);
    }
}

static void _connect(struct consumer *c) {
    redisAsyncContext *ac = redisAsyncConnect(c->cfg.host, c->cfg.port);
    if (ac == NULL || ac->err) {
        log_warn("cannot connect to redis; retrying", "view=%s redis=%s:%u error=%s retry_ms=%lld",
                 c->view_name, c->cfg.host, c->cfg.port,
                 LOG_QUOTE(ac ? ac->errstr : "out of memory"), (long long)(c->backoff_us / 1000));
        if (ac != NULL) {
            redisAsyncFree(ac);
        }
        _schedule_retry(c);
        return;
    }
    ac->data = c;
    c->ac = ac;
    c->state = C_CONNECTING;
    if (redisLibeventAttach(ac, streams.base) != REDIS_OK) {
        _drop(c);
        return;
    }
    redisAsyncSetConnectCallback(ac, _on_connect);
    redisAsyncSetDisconnectCallback(ac, _on_disconnect);
    _arm_watchdog(c, streams.options.connect_timeout_us);
    /* Pipelined: hiredis sends them once connected, and Redis answers in order. */
    if (c->cfg.password[0] != '\0') {
        const char *with_user[] = {"AUTH", c->cfg.user, c->cfg.password};
        const char *without[] = {"AUTH", c->cfg.password};
        if (c->cfg.user[0] != '\0') {
            redisAsyncCommandArgv(ac, _on_setup_reply, c, 3, with_user, NULL);
        } else {
            redisAsyncCommandArgv(ac, _on_setup_reply, c, 2, without, NULL);
        }
    }
    if (c->cfg.db != 0) {
        redisAsyncCommand(ac, _on_setup_reply, c, "SELECT %u", c->cfg.db);
    }
    const char *info[] = {"XINFO", "STREAM", c->cfg.key};
    redisAsyncCommandArgv(ac, _on_info_start, c, 3, info, NULL);
}

/* ---- start: snapshot ----------------------------------------------------------------------- */

/*
 * Polls the view for the stream position recorded with its snapshot (published by whichever
 * thread committed the load; store_view_stream_position copies it under the view's position
 * mutex). Once there is one, it becomes the consumer's start and the consumer connects; the
 * timer is not armed again, so later snapshots do not move the consumer.
 */
static void _on_snapshot_poll(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    struct consumer *c = arg;
    char position[STORE_STREAM_POSITION_LEN];
    struct mat_stream_id id;
    if (!store_view_stream_position(c->view, position, sizeof position)) {
        struct timeval tv = _tv(MAT_STREAM_SNAPSHOT_POLL_US);
        evtimer_add(c->snapshot_timer, &tv);
        return;
    }
    if (!mat_stream_id_parse(position, strlen(position), &id)) {
        /* The RPCs check positions; this would be a bug. Keep waiting rather than guess. */
        log_error("snapshot stream position is not an entry ID; still waiting", "view=%s id=%s",
                  c->view_name, LOG_QUOTE(position));
        struct timeval tv = _tv(MAT_STREAM_SNAPSHOT_POLL_US);
        evtimer_add(c->snapshot_timer, &tv);
        return;
    }
    c->cfg.start_ms = id.ms;
    c->cfg.start_seq = id.seq;
    atomic_store_explicit(&c->metrics.waiting_snapshot, 0, memory_order_relaxed);
    log_info("snapshot with a stream position found; starting the stream consumer",
             "view=%s key=%s after_id=%s version=%" PRIu64, c->view_name, LOG_QUOTE(c->cfg.key),
             position, store_view_version(c->view));
    _connect(c);
}

/* The first step of a consumer: connect, or (start: snapshot) wait for a position first. */
static void _start(struct consumer *c) {
    char applied[STORE_STREAM_POSITION_LEN];
    struct mat_stream_id id;
    if (store_view_stream_applied(c->view, applied, sizeof applied) &&
        mat_stream_id_parse(applied, strlen(applied), &id)) {
        /* Restored from store.data_dir: every entry up to it is in the view already. */
        log_info("stream resumes after the last entry store.data_dir holds", "view=%s after_id=%s",
                 c->view_name, applied);
        c->cfg.start = MAT_STREAM_START_AFTER;
        c->cfg.start_ms = id.ms;
        c->cfg.start_seq = id.seq;
    }
    if (c->cfg.start != MAT_STREAM_START_SNAPSHOT) {
        _connect(c);
        return;
    }
    char position[STORE_STREAM_POSITION_LEN];
    if (!store_view_stream_position(c->view, position, sizeof position)) {
        atomic_store_explicit(&c->metrics.waiting_snapshot, 1, memory_order_relaxed);
        log_info("stream consumer waiting for a snapshot with a stream position (start: "
                 "snapshot)",
                 "view=%s key=%s", c->view_name, LOG_QUOTE(c->cfg.key));
    }
    _on_snapshot_poll(-1, 0, c);
}

/* ---- the thread ---------------------------------------------------------------------------- */

static void _on_wake(evutil_socket_t fd, short what, void *arg) {
    (void)what, (void)arg;
    uint64_t v;
    if (read(fd, &v, sizeof v) < 0 && errno != EAGAIN) {
        log_warn("stream consumers: reading the wake-up eventfd failed", "error=%s",
                 LOG_QUOTE(strerror(errno)));
    }
    for (size_t i = 0; i < streams.n; i++) {
        struct consumer *c = &streams.consumers[i];
        event_del(c->retry_timer);
        event_del(c->watchdog);
        event_del(c->snapshot_timer);
        redisAsyncContext *ac = c->ac;
        c->ac = NULL;
        if (ac != NULL) {
            redisAsyncFree(ac);
        }
        atomic_store_explicit(&c->metrics.connected, 0, memory_order_relaxed);
    }
    event_base_loopbreak(streams.base);
}

static void *_run(void *arg) {
    (void)arg;
    store_rcu_thread_online(); /* store_view_upsert retires replaced rows through RCU */
    for (size_t i = 0; i < streams.n; i++) {
        _start(&streams.consumers[i]);
    }
    event_base_dispatch(streams.base);
    store_rcu_thread_offline();
    return NULL;
}

/* ---- setup / teardown ---------------------------------------------------------------------- */

static void _cleanup(void) {
    for (size_t i = 0; streams.consumers != NULL && i < streams.n; i++) {
        struct consumer *c = &streams.consumers[i];
        mat_stream_parser_destroy(c->parser);
        if (c->retry_timer != NULL) {
            event_free(c->retry_timer);
        }
        if (c->watchdog != NULL) {
            event_free(c->watchdog);
        }
        if (c->snapshot_timer != NULL) {
            event_free(c->snapshot_timer);
        }
        if (c->logged_ev != NULL) {
            event_free(c->logged_ev);
        }
        free(c->fields);
        mat_stream_metrics_deinit(&c->metrics);
    }
    free(streams.consumers);
    free(streams.metric_views);
    if (streams.wake != NULL) {
        event_free(streams.wake);
    }
    if (streams.wake_fd >= 0) {
        close(streams.wake_fd);
    }
    if (streams.base != NULL) {
        event_base_free(streams.base);
    }
    memset(&streams, 0, sizeof streams);
    streams.wake_fd = -1;
}

static int _setup_consumer(struct consumer *c, struct store_catalog *catalog,
                           const struct mat_stream_config *stream, char *err, size_t err_len) {
    snprintf(c->view_name, sizeof c->view_name, "%s", stream->view);
    c->cfg = *stream;
    mat_stream_metrics_init(&c->metrics, c->view_name);
    c->backoff_us = streams.options.reconnect_first_us;
    c->view = store_catalog_find(catalog, c->view_name);
    if (c->view == NULL) {
        snprintf(err, err_len, "view %s is not in the store", c->view_name);
        return -1;
    }
    /* The parser copies the names and types it needs: a reload may replace the schema (never
     * its keys or features), so it is read inside a read section once. */
    store_read_lock();
    c->parser = mat_stream_parser_create(store_view_schema(c->view), stream);
    store_read_unlock();
    c->retry_timer = evtimer_new(streams.base, _on_retry, c);
    c->watchdog = evtimer_new(streams.base, _on_watchdog, c);
    c->snapshot_timer = evtimer_new(streams.base, _on_snapshot_poll, c);
    c->logged_ev = event_new(streams.base, -1, 0, _on_logged_event, c);
    if (c->parser == NULL || c->retry_timer == NULL || c->watchdog == NULL ||
        c->snapshot_timer == NULL || c->logged_ev == NULL) {
        snprintf(err, err_len, "out of memory for the stream of view %s", c->view_name);
        return -1;
    }
    return 0;
}

int mat_stream_setup(struct store_catalog *catalog,
                     const struct mat_stream_config *const *streams_in, size_t nstreams,
                     const struct mat_stream_options *options, char *err, size_t err_len) {
    if (streams.running) {
        snprintf(err, err_len, "stream consumers already running");
        return -1;
    }
    if (options != NULL) {
        streams.options = *options;
    } else {
        mat_stream_options_init(&streams.options);
    }
    size_t n = 0;
    for (size_t i = 0; i < nstreams; i++) {
        n += streams_in[i]->enabled;
    }
    if (n == 0) {
        return 0;
    }
    streams.consumers = calloc(n, sizeof(*streams.consumers));
    streams.metric_views = calloc(n, sizeof(*streams.metric_views));
    /* The log writer activates a consumer's event from its own thread (_on_logged). */
    if (evthread_use_pthreads() != 0) {
        snprintf(err, err_len, "cannot set up libevent for threads");
        return -1;
    }
    streams.base = event_base_new();
    streams.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (streams.consumers == NULL || streams.metric_views == NULL || streams.base == NULL ||
        streams.wake_fd < 0) {
        snprintf(err, err_len, "cannot set up the stream consumers: out of memory or descriptors");
        _cleanup();
        return -1;
    }
    streams.wake = event_new(streams.base, streams.wake_fd, EV_READ | EV_PERSIST, _on_wake, NULL);
    if (streams.wake == NULL || event_add(streams.wake, NULL) != 0) {
        snprintf(err, err_len, "cannot set up the stream consumers' event loop");
        _cleanup();
        return -1;
    }
    for (size_t i = 0; i < nstreams; i++) {
        if (!streams_in[i]->enabled) {
            continue;
        }
        struct consumer *c = &streams.consumers[streams.n++];
        if (_setup_consumer(c, catalog, streams_in[i], err, err_len) != 0) {
            _cleanup();
            return -1;
        }
        streams.metric_views[streams.n - 1] = &c->metrics;
    }
    streams.set = (struct mat_stream_metrics_set){streams.metric_views, streams.n};
    if (metrics_register(mat_stream_collect, &streams.set) != 0) {
        snprintf(err, err_len, "out of memory registering the stream metrics");
        _cleanup();
        return -1;
    }
    streams.collector_registered = true;
    int rc = pthread_create(&streams.thread, NULL, _run, NULL);
    if (rc != 0) {
        snprintf(err, err_len, "cannot start the stream thread: %s", strerror(rc));
        metrics_unregister(mat_stream_collect, &streams.set);
        _cleanup();
        return -1;
    }
    pthread_setname_np(streams.thread, "fsd-streams");
    streams.running = true;
    log_info("stream consumers started", "views=%zu", streams.n);
    return 0;
}

void mat_stream_teardown(void) {
    if (streams.collector_registered) {
        metrics_unregister(mat_stream_collect, &streams.set);
    }
    if (streams.running) {
        uint64_t one = 1;
        if (write(streams.wake_fd, &one, sizeof one) != (ssize_t)sizeof one) {
            log_error("cannot wake the stream thread to stop it", "error=%s",
                      LOG_QUOTE(strerror(errno)));
        }
        pthread_join(streams.thread, NULL);
    }
    /* The log writer may still apply a batch and activate its consumer's event: both must
     * outlive it. It gets there without this thread (wal_teardown comes after). */
    while (atomic_load_explicit(&streams.in_log, memory_order_acquire) > 0) {
        usleep(1000);
    }
    _cleanup();
}

bool mat_stream_status(const char *view, struct mat_stream_status *out) {
    for (size_t i = 0; i < streams.n; i++) {
        struct mat_stream_metrics *m = &streams.consumers[i].metrics;
        if (strcmp(m->view, view) != 0) {
            continue;
        }
        out->connected = atomic_load_explicit(&m->connected, memory_order_relaxed) != 0;
        out->waiting_for_snapshot =
            atomic_load_explicit(&m->waiting_snapshot, memory_order_relaxed) != 0;
        out->applied = atomic_load_explicit(&m->applied, memory_order_relaxed);
        out->not_newer = atomic_load_explicit(&m->not_newer, memory_order_relaxed);
        out->bad = atomic_load_explicit(&m->bad, memory_order_relaxed);
        out->reconnects = atomic_load_explicit(&m->reconnects, memory_order_relaxed);
        out->lag_entries = atomic_load_explicit(&m->lag_entries, memory_order_relaxed);
        pthread_mutex_lock(&m->id_lock);
        memcpy(out->last_id, m->last_id, sizeof out->last_id);
        pthread_mutex_unlock(&m->id_lock);
        return true;
    }
    return false;
}
