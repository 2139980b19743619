/*
 * Fuzz target for the RPC handlers (daemon/rpc), fed the bytes a client sends as request
 * messages: each method's protobuf decoding, its checks and its handler, through the method
 * table the transport registers (rpc_methods()), each call first through its method's
 * authorizer with the call's authorization header, as the transport runs it; against a
 * catalog of two views built here (no config file), the materializer's scheduler, which
 * commits pushed snapshots, and three tokens (TOKENS below: admin, write limited to view u,
 * read):
 *
 *   view u   int64 key id; a feature of every type (i32 i64 f d b s by ts fl il sl), a TTL
 *            of an hour, defaults literal (i32 = -1), mean (d) and zero (s); known to the
 *            scheduler with a contract (at least one row, d at most half null, i64 in
 *            [-1e6, 1e6]); rows for ids 1 (fresh), 2 (nulls) and 3 (past the TTL)
 *   view it  keys sku (string) and id (int64); features p (double, default zero), n (string);
 *            rows ("a", 1) and ("b", 2)
 *   service  svc = u:i32, u:s, it:p
 *
 * Every input starts from the same rows (each view's table is replaced, as by a load) with a
 * fresh scheduler, so inputs do not depend on each other; the catalog and the worker (arena,
 * response buffer, counters) live across inputs, as they do in the daemon.
 * The transport is replaced by the grpc_call functions below: a call in memory that keeps the
 * reply, with the transport's rules (a unary handler finishes its call; a streaming call gets
 * no callback once finished; on_abort when the client resets it; a suspended call is resumed
 * on this thread when the loads thread posts it, or with call NULL when it was reset).
 *
 * Checked after each call: it finished; an error carries a code and a message; a reply is at
 * most the response limit and decodes with protobuf-c, and says what the request asked
 * (GetFeatures: a status and a value slot per entity and column, list lengths that add up;
 * PushRows: every row counted once; PushSnapshot: every row received; ListViews: every view
 * and service); no per-call state is left on the call, the worker's arena is reset, and no
 * view's load is left open. ASan: nothing leaks, nothing is read out of bounds.
 *
 * Input layout:
 *
 *   byte 0     bits 0-2: the method, modulo RPC_METHOD_COUNT (enum rpc_method_id order; 6 and
 *              7 are Feast's GetOnlineFeatures and GetFeastServingInfo); with 7, bits 5-6
 *              add 0-3 (Feast's HTTP JSON get-online-features, materialize and
 *              materialize-incremental follow it), and with 6, bit 5 picks GET /health
 *              bits 3-4: the authorization header: 0 the admin token, 1 the write token,
 *                     2 the read token, 3 taken from the input (below)
 *              bit 5: PushSnapshot: the client resets the stream while the commit runs
 *              bit 6: PushSnapshot: the client resets the stream instead of half-closing
 *              bit 7: the call sent no grpc-timeout (else one of an hour); as every call
 *                     waited a second before its handler ran, the default budget is spent
 *   then       with bits 3-4 = 3: [u8 length][the header's value] (length 0: no header)
 *   then       unary: the request message
 *              PushSnapshot: messages, each [u16 length, little endian][bytes] (a length past
 *              the end takes what is left; a lone last byte is ignored)
 *
 * A LoadSnapshot of view u with a path is skipped: the scheduler would read that path.
 *
 * Built with libFuzzer when the compiler is Clang (fuzz_rpc); always built as fuzz_rpc_replay,
 * whose main() runs the target over the files it is given (corpus/, seeded by
 * make_corpus.py), their prefixes and byte corruptions, so CTest replays them under
 * every build, sanitizers too.
 *
 *   mkdir -p /tmp/corpus && build/tests/fuzz_rpc /tmp/corpus tests/daemon/rpc/corpus \
 *       -max_total_time=300    (new inputs go to the first folder)
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/clock.h"
#include "common/log.h"
#include "config/config.h"
#include "daemon/auth/auth.h"
#include "daemon/grpc/grpc.h"
#include "daemon/grpc/wire.h"
#include "daemon/rpc/rpc_internal.h"
#include "feast/serving/ServingService.pb-c.h"
#include "fsd/v1/feature_service.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "materializer/snapshot/snapshot.h"
#include "store/catalog.h"
#include "store/key.h"
#include "store/rcu.h"
#include "store/row.h"
#include "store/schema.h"
#include "store/table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifndef FSD_FUZZ_REPLAY
/*
 * libFuzzer's leak check after each input: rows written through the live path (PushRows) are
 * malloc'd one by one and held in the table's slots with a hash tag in the pointer's top 16
 * bits (store/table.c), where LeakSanitizer cannot see them, so a row still in its table looks
 * leaked. They are freed with their table: the replay, which frees everything before it exits,
 * checks that without this suppression, as do the store's tests under ASan.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) {
    return "leak:_row_alloc\n";
}
#endif

#define HOUR_US         (3600LL * 1000000)
#define RESUME_WAIT_S   30 /* a commit that takes longer is a hang */
#define METHOD_MASK     0x07
#define TOKEN_SHIFT     3
#define TOKEN_FROM_DATA 3
#define FLAG_LATE_RESET 0x20
#define FLAG_RESET      0x40
#define FLAG_NO_TIMEOUT 0x80

enum { VIEW_U, VIEW_IT, NVIEWS };

/* The tokens file: name, role, views, the SHA-256 of the token (`echo -n TOKEN | sha256sum`). */
static const struct {
    const char *token;
    const char *line;
} TOKENS[TOKEN_FROM_DATA] = {
    {"fuzz-admin-token-0123456789abcdef",
     "a admin * sha256:f67cbe702a76cded9d08328b6a444163419c36e5b7ced4bbc9d741cf3abbf62f"},
    {"fuzz-write-token-0123456789abcdef",
     "w write u sha256:6102f3dcaff2b8b9d2cf4c22f7db36a84a1a49a8847d5ec42ad7d294f3341716"},
    {"fuzz-read-token-0123456789abcdef0",
     "r read * sha256:da00c0155209b617160663f78c2494182ea925c07b9d7800f2c6b490707cd92c"},
};

/* View u's features, in enum store_type order: the feature index is the type. */
static const char *const U_FEATURES[STORE_TYPE_COUNT] = {
    "i32", "i64", "f",  "d",    "b",  "s",  "by",  "ts",
    "fl",  "il",  "sl", "i32l", "dl", "bl", "byl", "tsl",
};

static void _die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void _die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz_rpc: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* ---- the transport, in memory -------------------------------------------------------------- */

struct grpc_call {
    struct rpc_worker *worker;
    size_t method_index;
    struct clock_cache clock;
    int64_t start_us;
    int64_t ready_us;
    int64_t deadline_us;
    void *user;
    uint64_t auth;
    bool finished;
    enum grpc_code code;
    char message[GRPC_MESSAGE_MAX + 1];
    uint8_t *response; /* the reply message (malloc'd), code OK only */
    size_t response_len;
    size_t reserved; /* grpc_call_reply_reserve()'s length, until sent */
    struct grpc_resume *suspended;
};

/* A suspended call's resume; posted by the loads thread. */
struct grpc_resume {
    struct grpc_call *call; /* NULL once the client reset the call */
    grpc_resume_fn fn;
    void *arg;
    bool posted;
};

static pthread_mutex_t resume_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t resume_posted = PTHREAD_COND_INITIALIZER;

void *grpc_call_worker_context(const struct grpc_call *call) {
    return call->worker;
}

unsigned grpc_call_worker_index(const struct grpc_call *call) {
    (void)call;
    return 0;
}

int grpc_call_add_trailer(struct grpc_call *call, const char *name, const char *value) {
    (void)call;
    if (name[0] == '\0' || strlen(value) >= GRPC_CALL_TRAILER_VALUE_MAX) {
        _die("a trailer %s of %zu bytes", name, strlen(value));
    }
    return 0;
}

size_t grpc_call_method_index(const struct grpc_call *call) {
    return call->method_index;
}

const struct clock_cache *grpc_call_clock(const struct grpc_call *call) {
    return &call->clock;
}

int64_t grpc_call_start_us(const struct grpc_call *call) {
    return call->start_us;
}

int64_t grpc_call_ready_us(const struct grpc_call *call) {
    return call->ready_us;
}

int64_t grpc_call_deadline_us(const struct grpc_call *call) {
    return call->deadline_us;
}

const char *grpc_call_peer(const struct grpc_call *call) {
    (void)call;
    return "fuzz:0";
}
/* A cleartext connection: the calls authenticate by their header alone. */
const char *grpc_call_tls_subject(const struct grpc_call *call) {
    (void)call;
    return "";
}

uint64_t grpc_call_auth(const struct grpc_call *call) {
    return call->auth;
}

void grpc_call_set_auth(struct grpc_call *call, uint64_t auth) {
    call->auth = auth;
}

void *grpc_call_user(const struct grpc_call *call) {
    return call->user;
}

void grpc_call_set_user(struct grpc_call *call, void *user) {
    call->user = user;
}

void *grpc_call_reply_reserve(struct grpc_call *call, size_t len) {
    if (call->finished) {
        return NULL;
    }
    free(call->response);
    call->response = malloc(len ? len : 1);
    call->reserved = len;
    return call->response;
}

void grpc_call_reply_send(struct grpc_call *call) {
    if (call->finished || call->response == NULL) {
        return;
    }
    call->finished = true;
    call->code = GRPC_OK;
    call->response_len = call->reserved;
}

void grpc_call_reply(struct grpc_call *call, const void *msg, size_t len) {
    void *dst = grpc_call_reply_reserve(call, len);
    if (dst == NULL) {
        return;
    }
    if (len > 0) {
        memcpy(dst, msg, len);
    }
    grpc_call_reply_send(call);
}

void grpc_call_fail(struct grpc_call *call, enum grpc_code code, const char *message) {
    if (call->finished) {
        return;
    }
    call->finished = true;
    call->code = code;
    snprintf(call->message, sizeof call->message, "%s", message != NULL ? message : "");
    free(call->response);
    call->response = NULL;
}

bool grpc_call_is_http1(const struct grpc_call *call) {
    return rpc_methods(&(size_t){0})[call->method_index].path[0] != '/';
}

void grpc_call_http_reply(struct grpc_call *call, enum grpc_code code, unsigned status,
                          const char *content_type, const void *body, size_t len) {
    if (call->finished) {
        return;
    }
    if (!grpc_call_is_http1(call) || strcmp(content_type, "application/json") != 0 ||
        (code == GRPC_OK) != (status >= 200 && status < 300)) {
        _die("%s: HTTP reply %u (code %d, %s) does not fit the call",
             rpc_method_name(call->method_index), status, (int)code, content_type);
    }
    if (code != GRPC_OK) { /* the body says why: it stands for the gRPC message */
        snprintf(call->message, sizeof call->message, "%.*s", (int)len, (const char *)body);
        call->finished = true;
        call->code = code;
        return;
    }
    grpc_call_reply(call, body, len);
}

void grpc_call_failf(struct grpc_call *call, enum grpc_code code, const char *fmt, ...) {
    char message[GRPC_MESSAGE_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    grpc_call_fail(call, code, message);
}

struct grpc_resume *grpc_call_suspend(struct grpc_call *call, grpc_resume_fn resume, void *arg) {
    if (call->finished || call->suspended != NULL) {
        return NULL;
    }
    struct grpc_resume *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return NULL;
    }
    *r = (struct grpc_resume){.call = call, .fn = resume, .arg = arg};
    call->suspended = r;
    return r;
}

void grpc_resume_post(struct grpc_resume *r) {
    pthread_mutex_lock(&resume_lock);
    r->posted = true;
    pthread_cond_broadcast(&resume_posted);
    pthread_mutex_unlock(&resume_lock);
}

/* Waits for the suspended call's resume and runs it here, as the worker would. */
static void _resume(struct grpc_resume *r) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += RESUME_WAIT_S;
    pthread_mutex_lock(&resume_lock);
    while (!r->posted) {
        if (pthread_cond_timedwait(&resume_posted, &resume_lock, &deadline) == ETIMEDOUT) {
            _die("a suspended call was not resumed within %d s", RESUME_WAIT_S);
        }
    }
    pthread_mutex_unlock(&resume_lock);
    struct grpc_call *call = r->call;
    if (call != NULL) {
        call->suspended = NULL;
    }
    r->fn(call, r->arg);
    if (call != NULL && !call->finished) {
        _die("a resume returned without finishing the call");
    }
    free(r);
}

/* ---- the views, the config, the scheduler -------------------------------------------------- */

static struct {
    bool ready;
    const struct grpc_method *methods;
    size_t nmethods;
    struct rpc_worker *worker;
    struct config_view config_views[NVIEWS];
    struct config_feature_ref service_refs[3];
    struct config_service service;
    struct fsd_config config;
    struct mat_view_config u_snapshot; /* view u as the scheduler knows it */
    struct store_catalog *catalog;
    struct store_view *views[NVIEWS];
    uint64_t outcomes[RPC_METHOD_COUNT][GRPC_CODE_COUNT + 1]; /* [code]; [GRPC_CODE_COUNT]: reset */
} g;

static char service_name[] = "svc";

static void _check_rc(int rc, const char *what, const char *err) {
    if (rc < 0) {
        _die("%s: %s", what, err);
    }
}

static struct store_schema *_schema_u(void) {
    char err[256];
    struct store_schema *s = store_schema_create("u", HOUR_US);
    _check_rc(store_schema_add_key(s, "id", STORE_KEY_INT64, err, sizeof err), "u", err);
    for (int t = 0; t < STORE_TYPE_COUNT; t++) {
        _check_rc(store_schema_add_feature(s, U_FEATURES[t], (enum store_type)t, err, sizeof err),
                  "u", err);
    }
    struct store_value literal = {.type = STORE_TYPE_INT32, .i32 = -1};
    _check_rc(store_schema_set_default(s, STORE_TYPE_INT32, STORE_DEFAULT_LITERAL, &literal, err,
                                       sizeof err),
              "u", err);
    _check_rc(
        store_schema_set_default(s, STORE_TYPE_DOUBLE, STORE_DEFAULT_MEAN, NULL, err, sizeof err),
        "u", err);
    _check_rc(
        store_schema_set_default(s, STORE_TYPE_STRING, STORE_DEFAULT_ZERO, NULL, err, sizeof err),
        "u", err);
    _check_rc(store_schema_finalize(s, err, sizeof err), "u", err);
    return s;
}

static struct store_schema *_schema_it(void) {
    char err[256];
    struct store_schema *s = store_schema_create("it", 0);
    _check_rc(store_schema_add_key(s, "sku", STORE_KEY_STRING, err, sizeof err), "it", err);
    _check_rc(store_schema_add_key(s, "id", STORE_KEY_INT64, err, sizeof err), "it", err);
    _check_rc(store_schema_add_feature(s, "p", STORE_TYPE_DOUBLE, err, sizeof err), "it", err);
    _check_rc(store_schema_add_feature(s, "n", STORE_TYPE_STRING, err, sizeof err), "it", err);
    _check_rc(store_schema_set_default(s, 0, STORE_DEFAULT_ZERO, NULL, err, sizeof err), "it", err);
    _check_rc(store_schema_finalize(s, err, sizeof err), "it", err);
    return s;
}

/* Upserts the row `b` holds for the entity (sku, id) into `table` (sku unused by view u). */
static void _put(struct store_table *table, const char *sku, int64_t id,
                 const struct store_row_builder *b) {
    const struct store_schema *schema = store_table_schema(table);
    struct store_key_part parts[STORE_MAX_JOIN_KEYS];
    for (uint32_t k = 0; k < schema->nkeys; k++) {
        parts[k].type = schema->keys[k].type;
        if (parts[k].type == STORE_KEY_INT64) {
            parts[k].i64 = id;
        } else {
            parts[k].str = sku;
            parts[k].str_len = (uint32_t)strlen(sku);
        }
    }
    uint8_t buf[STORE_MAX_KEY_BYTES];
    char err[256];
    int len = store_key_encode(schema, parts, buf, sizeof buf, err, sizeof err);
    _check_rc(len, "key", err);
    struct store_key key = {buf, (uint32_t)len, store_key_hash(buf, (uint32_t)len)};
    if (store_table_upsert(table, &key, b) == STORE_UPSERT_ERROR) {
        _die("upsert into %s failed", schema->view);
    }
}

/* A sealed table for `view` holding its rows as of `now_us`. */
static struct store_table *_table(struct store_view *view, bool with_rows, int64_t now_us) {
    const struct store_schema *schema = store_view_schema(view);
    struct store_table_options options = {.shards = store_catalog_shards(g.catalog)};
    char err[256];
    struct store_table *t = store_table_create(schema, &options, err, sizeof err);
    struct store_row_builder b;
    if (t == NULL || store_row_builder_init(&b, schema) != 0) {
        _die("out of memory");
    }
    if (with_rows && view == g.views[VIEW_U]) {
        static const float floats[] = {0.5f, -2.0f};
        static const int64_t ints[] = {INT64_MIN, 0, 7};
        static const char *const strs[] = {"x", "", "\xc3\xa9"};
        static const uint32_t lens[] = {1, 0, 2};
        static const int32_t ints32[] = {-1, INT32_MAX};
        static const double doubles[] = {0.1, -0.0};
        static const uint8_t bools[] = {1, 0};
        static const char *const blobs[] = {"\x00\xff", "="};
        static const uint32_t blob_lens[] = {2, 1};
        const int64_t stamps[] = {now_us - HOUR_US, 0};
        store_row_builder_reset(&b, now_us - 60 * 1000000, 0);
        store_row_set_int32(&b, STORE_TYPE_INT32, 42);
        store_row_set_int64(&b, STORE_TYPE_INT64, -5);
        store_row_set_float(&b, STORE_TYPE_FLOAT, 1.25f);
        store_row_set_double(&b, STORE_TYPE_DOUBLE, 3.5);
        store_row_set_bool(&b, STORE_TYPE_BOOL, true);
        store_row_set_timestamp(&b, STORE_TYPE_TIMESTAMP, now_us - HOUR_US);
        if (store_row_set_bytes(&b, STORE_TYPE_STRING, "caf\xc3\xa9", 5) != 0 ||
            store_row_set_bytes(&b, STORE_TYPE_BYTES, "\x00\xff", 2) != 0 ||
            store_row_set_list(&b, STORE_TYPE_FLOAT_LIST, floats, 2) != 0 ||
            store_row_set_list(&b, STORE_TYPE_INT64_LIST, ints, 3) != 0 ||
            store_row_set_packed_list(&b, STORE_TYPE_STRING_LIST, strs, lens, 3) != 0 ||
            store_row_set_list(&b, STORE_TYPE_INT32_LIST, ints32, 2) != 0 ||
            store_row_set_list(&b, STORE_TYPE_DOUBLE_LIST, doubles, 2) != 0 ||
            store_row_set_list(&b, STORE_TYPE_BOOL_LIST, bools, 2) != 0 ||
            store_row_set_packed_list(&b, STORE_TYPE_BYTES_LIST, blobs, blob_lens, 2) != 0 ||
            store_row_set_list(&b, STORE_TYPE_TIMESTAMP_LIST, stamps, 2) != 0) {
            _die("out of memory");
        }
        _put(t, NULL, 1, &b);
        store_row_builder_reset(&b, now_us - 1000000, 5); /* every feature null */
        _put(t, NULL, 2, &b);
        store_row_builder_reset(&b, now_us - 2 * HOUR_US, 0); /* past the TTL */
        store_row_set_double(&b, STORE_TYPE_DOUBLE, -1.0);
        _put(t, NULL, 3, &b);
    } else if (with_rows) {
        store_row_builder_reset(&b, now_us - 1000000, 0);
        store_row_set_double(&b, 0, 9.75);
        if (store_row_set_bytes(&b, 1, "a1", 2) != 0) {
            _die("out of memory");
        }
        _put(t, "a", 1, &b);
        store_row_builder_reset(&b, now_us - 2000000, 0);
        _put(t, "b", 2, &b);
    }
    store_row_builder_deinit(&b);
    store_table_seal(t);
    return t;
}

/*
 * Gives every view its first rows again, as a load would, and starts a scheduler. An empty
 * table swapped in first drops the rows pushed by the last input (a commit would carry live
 * rows over); the commit then sets the rows and forgets the stream position.
 */
static void _world_create(void) {
    char err[512];
    int64_t now_us = clock_wall_us();
    for (int v = 0; v < NVIEWS; v++) {
        store_view_swap_table(g.views[v], _table(g.views[v], false, now_us), now_us);
        if (store_view_load_begin(g.views[v]) != 0 ||
            store_view_load_commit(g.views[v], _table(g.views[v], true, now_us), now_us) == 0) {
            _die("view %s could not be reset", store_view_name(g.views[v]));
        }
    }
    struct mat_options options;
    mat_options_init(&options);
    options.load_at_start = false;
    const struct mat_view_config *views[] = {&g.u_snapshot};
    _check_rc(mat_setup(g.catalog, views, 1, &options, err, sizeof err), "mat_setup", err);
}

/* Stops the scheduler (a load it runs ends first) and checks no load was left open. */
static void _world_destroy(void) {
    mat_teardown();
    for (int v = 0; v < NVIEWS; v++) {
        if (store_view_load_begin(g.views[v]) != 0) {
            _die("the load of view %s was left open", store_view_name(g.views[v]));
        }
        store_view_load_abort(g.views[v]);
    }
}

/* Writes TOKENS to a file of a temporary folder, has auth read it, and removes both. */
static void _setup_auth(void) {
    char dir[] = "/tmp/fuzz_rpc.XXXXXX";
    if (mkdtemp(dir) == NULL) {
        _die("mkdtemp: %s", strerror(errno));
    }
    struct auth_options options;
    snprintf(options.tokens_file, sizeof options.tokens_file, "%s/tokens", dir);
    FILE *f = fopen(options.tokens_file, "w");
    if (f == NULL) {
        _die("%s: %s", options.tokens_file, strerror(errno));
    }
    for (int i = 0; i < TOKEN_FROM_DATA; i++) {
        fprintf(f, "%s\n", TOKENS[i].line);
    }
    fclose(f);
    char err[512];
    int rc = auth_setup(&options, err, sizeof err);
    unlink(options.tokens_file);
    rmdir(dir);
    _check_rc(rc, "auth_setup", err);
}

static void _setup(void) {
    log_set_level(LOG_ERROR); /* the handlers and the scheduler log every push and load */
    store_rcu_thread_online();
    g.methods = rpc_methods(&g.nmethods);
    /* What rpc_setup() publishes, without its metrics: the catalog changes with each input. */
    rpc_state.options = (struct rpc_options){
        .max_batch = 256,
        .default_budget_us = 1000,
        .max_response_bytes = GRPC_MAX_MESSAGE_BYTES_MIN,
    };
    g.config_views[VIEW_U].schema = _schema_u();
    g.config_views[VIEW_IT].schema = _schema_it();
    g.service_refs[0] = (struct config_feature_ref){VIEW_U, STORE_TYPE_INT32};
    g.service_refs[1] = (struct config_feature_ref){VIEW_U, STORE_TYPE_STRING};
    g.service_refs[2] = (struct config_feature_ref){VIEW_IT, 0};
    g.service = (struct config_service){service_name, g.service_refs, 3};
    g.config = (struct fsd_config){
        .views = g.config_views, .nviews = NVIEWS, .services = &g.service, .nservices = 1};
    atomic_store(&rpc_state.config, &g.config);
    atomic_store(&rpc_state.serving, 1);

    snprintf(g.u_snapshot.name, sizeof g.u_snapshot.name, "u");
    g.u_snapshot.source.type = MAT_SOURCE_NONE;
    mat_contract_init(&g.u_snapshot.contract);
    g.u_snapshot.contract.min_rows = 1;
    g.u_snapshot.contract.nfeatures = 2;
    g.u_snapshot.contract.features[0] =
        (struct mat_feature_check){.feature = STORE_TYPE_DOUBLE, .max_null_rate = 0.5};
    g.u_snapshot.contract.features[1] = (struct mat_feature_check){.feature = STORE_TYPE_INT64,
                                                                   .max_null_rate = 1,
                                                                   .has_range = true,
                                                                   .range_min = -1e6,
                                                                   .range_max = 1e6};

    char err[512];
    g.catalog = store_catalog_create(2);
    if (g.catalog == NULL) {
        _die("out of memory");
    }
    _check_rc(store_catalog_add_view(g.catalog, _schema_u(), err, sizeof err), "catalog", err);
    _check_rc(store_catalog_add_view(g.catalog, _schema_it(), err, sizeof err), "catalog", err);
    g.views[VIEW_U] = store_catalog_find(g.catalog, "u");
    g.views[VIEW_IT] = store_catalog_find(g.catalog, "it");
    rpc_state.catalog = g.catalog;
    _setup_auth();
    g.worker = rpc_worker_create(0);
    if (g.worker == NULL) {
        _die("out of memory");
    }
    g.ready = true;
}

/* ---- the checks of a reply ------------------------------------------------------------------- */

static const Fsd__V1__KeyColumn *_key_column(const Fsd__V1__GetFeaturesRequest *req) {
    return req->n_keys > 0 ? req->keys[0] : NULL;
}

static void _check_column(const Fsd__V1__FeatureColumn *c, size_t n, bool timestamps) {
    const char *colon = c->name != NULL ? strchr(c->name, ':') : NULL;
    if (colon == NULL || colon == c->name || colon[1] == '\0') {
        _die("GetFeatures: column name \"%s\" is not view:feature", c->name ? c->name : "");
    }
    if (c->n_statuses != n) {
        _die("GetFeatures: column %s has %zu statuses for %zu entities", c->name, c->n_statuses, n);
    }
    if (timestamps && c->n_event_timestamps_us != n) {
        _die("GetFeatures: column %s has %zu event times for %zu entities", c->name,
             c->n_event_timestamps_us, n);
    }
    size_t values = 0, elements = 0;
    bool list = false;
    switch ((int)c->type - 1) {
    case STORE_TYPE_INT32:
        values = c->n_int32_values;
        break;
    case STORE_TYPE_INT64:
    case STORE_TYPE_TIMESTAMP:
        values = c->n_int64_values;
        break;
    case STORE_TYPE_FLOAT:
        values = c->n_float_values;
        break;
    case STORE_TYPE_DOUBLE:
        values = c->n_double_values;
        break;
    case STORE_TYPE_BOOL:
        values = c->n_bool_values;
        break;
    case STORE_TYPE_STRING:
        values = c->n_string_values;
        break;
    case STORE_TYPE_BYTES:
        values = c->n_bytes_values;
        break;
    case STORE_TYPE_FLOAT_LIST:
        list = true;
        elements = c->n_float_values;
        break;
    case STORE_TYPE_INT64_LIST:
        list = true;
        elements = c->n_int64_values;
        break;
    case STORE_TYPE_STRING_LIST:
        list = true;
        elements = c->n_string_values;
        break;
    case STORE_TYPE_INT32_LIST:
        list = true;
        elements = c->n_int32_values;
        break;
    case STORE_TYPE_DOUBLE_LIST:
        list = true;
        elements = c->n_double_values;
        break;
    case STORE_TYPE_BOOL_LIST:
        list = true;
        elements = c->n_bool_values;
        break;
    case STORE_TYPE_BYTES_LIST:
        list = true;
        elements = c->n_bytes_values;
        break;
    case STORE_TYPE_TIMESTAMP_LIST:
        list = true;
        elements = c->n_int64_values;
        break;
    default:
        _die("GetFeatures: column %s has type %d", c->name, (int)c->type);
    }
    if (!list) {
        if (values != n) {
            _die("GetFeatures: column %s has %zu values for %zu entities", c->name, values, n);
        }
        return;
    }
    if (c->n_list_lengths != n) {
        _die("GetFeatures: column %s has %zu list lengths for %zu entities", c->name,
             c->n_list_lengths, n);
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        sum += c->list_lengths[i];
    }
    if (sum != elements) {
        _die("GetFeatures: column %s lists add up to %llu elements, %zu sent", c->name,
             (unsigned long long)sum, elements);
    }
}

static void _check_get_features(const uint8_t *msg, size_t len, const struct grpc_call *call) {
    Fsd__V1__GetFeaturesRequest *req = fsd__v1__get_features_request__unpack(NULL, len, msg);
    Fsd__V1__GetFeaturesResponse *resp =
        fsd__v1__get_features_response__unpack(NULL, call->response_len, call->response);
    if (req == NULL || resp == NULL) {
        _die("GetFeatures: OK for %s that does not decode", req == NULL ? "a request" : "a reply");
    }
    const Fsd__V1__KeyColumn *col = _key_column(req);
    size_t n = col != NULL ? col->n_int64_values + col->n_string_values : 0;
    if (resp->entities != n || resp->n_columns == 0 || resp->n_views == 0 ||
        resp->values_served != (uint64_t)resp->n_columns * n) {
        _die("GetFeatures: %u entities, %zu columns, %zu views, %llu values for %zu entities",
             resp->entities, resp->n_columns, resp->n_views,
             (unsigned long long)resp->values_served, n);
    }
    for (size_t c = 0; c < resp->n_columns; c++) {
        _check_column(resp->columns[c], n, req->include_event_timestamps);
    }
    for (size_t v = 0; v < resp->n_views; v++) {
        if (resp->views[v]->n_staleness_ms != n ||
            store_catalog_find(g.catalog, resp->views[v]->view) == NULL) {
            _die("GetFeatures: view \"%s\" with %zu staleness values for %zu entities",
                 resp->views[v]->view, resp->views[v]->n_staleness_ms, n);
        }
    }
    fsd__v1__get_features_response__free_unpacked(resp, NULL);
    fsd__v1__get_features_request__free_unpacked(req, NULL);
}

static void _check_push_rows(const uint8_t *msg, size_t len, const struct grpc_call *call) {
    Fsd__V1__PushRowsRequest *req = fsd__v1__push_rows_request__unpack(NULL, len, msg);
    Fsd__V1__PushRowsResponse *resp =
        fsd__v1__push_rows_response__unpack(NULL, call->response_len, call->response);
    if (req == NULL || resp == NULL) {
        _die("PushRows: OK for %s that does not decode", req == NULL ? "a request" : "a reply");
    }
    uint64_t counted = resp->inserted + resp->replaced + resp->not_newer + resp->deleted;
    if (counted != req->n_rows) {
        _die("PushRows: %llu rows counted of %zu", (unsigned long long)counted, req->n_rows);
    }
    fsd__v1__push_rows_response__free_unpacked(resp, NULL);
    fsd__v1__push_rows_request__free_unpacked(req, NULL);
}

static void _check_list_views(const struct grpc_call *call) {
    Fsd__V1__ListViewsResponse *resp =
        fsd__v1__list_views_response__unpack(NULL, call->response_len, call->response);
    if (resp == NULL || resp->n_views != NVIEWS || resp->n_feature_services != 1) {
        _die("ListViews: a reply that does not decode or lists %zu views, %zu services",
             resp ? resp->n_views : 0, resp ? resp->n_feature_services : 0);
    }
    for (size_t v = 0; v < NVIEWS; v++) {
        if (strcmp(resp->views[v]->name, store_view_name(g.views[v])) != 0) {
            _die("ListViews: view %zu is \"%s\"", v, resp->views[v]->name);
        }
    }
    fsd__v1__list_views_response__free_unpacked(resp, NULL);
}

static void _check_load_snapshot(const uint8_t *msg, size_t len, const struct grpc_call *call) {
    Fsd__V1__LoadSnapshotRequest *req = fsd__v1__load_snapshot_request__unpack(NULL, len, msg);
    Fsd__V1__LoadSnapshotResponse *resp =
        fsd__v1__load_snapshot_response__unpack(NULL, call->response_len, call->response);
    struct store_view *view = req != NULL ? store_catalog_find(g.catalog, req->view) : NULL;
    /* No load of this target swaps (view u has no source), so the version stays. */
    if (resp == NULL || view == NULL || resp->current_version != store_view_version(view)) {
        _die("LoadSnapshot: OK with a reply that does not decode, or for an unknown view");
    }
    fsd__v1__load_snapshot_response__free_unpacked(resp, NULL);
    fsd__v1__load_snapshot_request__free_unpacked(req, NULL);
}

/* Feast's GetOnlineFeatures: one vector per name, each with a value, a status (1..4) and a
 * timestamp per entity; the join keys first. */
static void _check_feast(const uint8_t *msg, size_t len, const struct grpc_call *call) {
    Feast__Serving__GetOnlineFeaturesRequest *req =
        feast__serving__get_online_features_request__unpack(NULL, len, msg);
    Feast__Serving__GetOnlineFeaturesResponse *resp =
        feast__serving__get_online_features_response__unpack(NULL, call->response_len,
                                                             call->response);
    if (req == NULL || resp == NULL || resp->metadata == NULL ||
        resp->metadata->feature_names == NULL) {
        _die("GetOnlineFeatures: OK for %s that does not decode",
             req == NULL ? "a request" : "a reply");
    }
    size_t n = req->n_entities > 0 && req->entities[0]->value ? req->entities[0]->value->n_val : 0;
    size_t names = resp->metadata->feature_names->n_val;
    if (resp->n_results != names || names <= req->n_entities) {
        _die("GetOnlineFeatures: %zu vectors for %zu names and %zu entity columns", resp->n_results,
             names, req->n_entities);
    }
    for (size_t r = 0; r < resp->n_results; r++) {
        const Feast__Serving__GetOnlineFeaturesResponse__FeatureVector *v = resp->results[r];
        if (v->n_values != n || v->n_statuses != n || v->n_event_timestamps != n) {
            _die("GetOnlineFeatures: %s has %zu values, %zu statuses, %zu timestamps for %zu",
                 resp->metadata->feature_names->val[r], v->n_values, v->n_statuses,
                 v->n_event_timestamps, n);
        }
        for (size_t i = 0; i < n; i++) {
            if (v->statuses[i] < 1 || v->statuses[i] > 4 ||
                (r < req->n_entities && v->statuses[i] != 1)) {
                _die("GetOnlineFeatures: %s: status %d", resp->metadata->feature_names->val[r],
                     (int)v->statuses[i]);
            }
        }
    }
    feast__serving__get_online_features_response__free_unpacked(resp, NULL);
    feast__serving__get_online_features_request__free_unpacked(req, NULL);
}

static void _check_health(const struct grpc_call *call) {
    Grpc__Health__V1__HealthCheckResponse *resp =
        grpc__health__v1__health_check_response__unpack(NULL, call->response_len, call->response);
    if (resp == NULL ||
        resp->status != GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING) {
        _die("Check: a reply that does not decode or is not SERVING");
    }
    grpc__health__v1__health_check_response__free_unpacked(resp, NULL);
}

/* Feast's JSON lookup reply: one result per name, each with a value, a status and a time per
 * entity (the request may be anything, so the shape is what is checked). */
static void _check_http_lookup(const struct grpc_call *call) {
    char *text = malloc(call->response_len + 1);
    memcpy(text, call->response, call->response_len);
    text[call->response_len] = '\0';
    json_object *doc = json_tokener_parse(text), *meta, *names, *results;
    free(text);
    if (doc == NULL || !json_object_object_get_ex(doc, "metadata", &meta) ||
        !json_object_object_get_ex(meta, "feature_names", &names) ||
        !json_object_object_get_ex(doc, "results", &results) ||
        json_object_array_length(names) != json_object_array_length(results)) {
        _die("get-online-features: a reply that is not Feast's JSON response");
    }
    size_t n = SIZE_MAX;
    for (size_t r = 0; r < json_object_array_length(results); r++) {
        json_object *vec = json_object_array_get_idx(results, r), *values, *statuses, *times;
        if (!json_object_object_get_ex(vec, "values", &values) ||
            !json_object_object_get_ex(vec, "statuses", &statuses) ||
            !json_object_object_get_ex(vec, "event_timestamps", &times)) {
            _die("get-online-features: result %zu lacks values, statuses or event_timestamps", r);
        }
        size_t nv = json_object_array_length(values);
        if (n == SIZE_MAX) {
            n = nv;
        }
        if (nv != n || json_object_array_length(statuses) != n ||
            json_object_array_length(times) != n) {
            _die("get-online-features: result %zu has %zu values for %zu entities", r, nv, n);
        }
    }
    json_object_put(doc);
}

/* What every finished call must look like; a unary reply also against its request. */
static void _check_call(const struct grpc_call *call, const uint8_t *msg, size_t len) {
    if (call->code != GRPC_OK) {
        if ((unsigned)call->code >= GRPC_CODE_COUNT || call->message[0] == '\0') {
            _die("%s failed with code %d and message \"%s\"", rpc_method_name(call->method_index),
                 (int)call->code, call->message);
        }
        return;
    }
    if (call->response_len > rpc_state.options.max_response_bytes) {
        _die("%s replied %zu bytes, past the limit of %llu", rpc_method_name(call->method_index),
             call->response_len, (unsigned long long)rpc_state.options.max_response_bytes);
    }
    switch (call->method_index) {
    case RPC_GET_FEATURES:
        _check_get_features(msg, len, call);
        break;
    case RPC_LIST_VIEWS:
        _check_list_views(call);
        break;
    case RPC_PUSH_ROWS:
        _check_push_rows(msg, len, call);
        break;
    case RPC_LOAD_SNAPSHOT:
        _check_load_snapshot(msg, len, call);
        break;
    case RPC_HEALTH_CHECK:
        _check_health(call);
        break;
    case RPC_FEAST_GET_ONLINE_FEATURES:
        _check_feast(msg, len, call);
        break;
    case RPC_FEAST_SERVING_INFO: {
        Feast__Serving__GetFeastServingInfoResponse *info =
            feast__serving__get_feast_serving_info_response__unpack(NULL, call->response_len,
                                                                    call->response);
        if (info == NULL || strncmp(info->version, "fsd ", 4) != 0) {
            _die("GetFeastServingInfo: a reply that does not decode or names no fsd version");
        }
        feast__serving__get_feast_serving_info_response__free_unpacked(info, NULL);
        break;
    }
    case RPC_HTTP_GET_ONLINE_FEATURES:
        _check_http_lookup(call);
        break;
    case RPC_HTTP_MATERIALIZE:
    case RPC_HTTP_MATERIALIZE_INCREMENTAL:
    case RPC_HTTP_HEALTH:
        if (call->response_len > 0) {
            json_object *doc = json_tokener_parse((const char *)call->response);
            if (doc == NULL) {
                _die("%s: a reply that is not JSON", rpc_method_name(call->method_index));
            }
            json_object_put(doc);
        }
        break;
    default:
        break; /* PushSnapshot: checked by _run_stream, which knows every message */
    }
}

/* ---- one call -------------------------------------------------------------------------------- */

static void _call_init(struct grpc_call *call, size_t method_index, uint8_t flags) {
    memset(call, 0, sizeof(*call));
    call->worker = g.worker;
    call->method_index = method_index;
    clock_cache_update(&call->clock);
    /* Every call waited a second in the queue: latency budgets below that are spent whatever
     * the machine's speed, those above it are not (so the outcome does not depend on timing). */
    call->start_us = call->clock.mono_us - 1000000;
    call->deadline_us = flags & FLAG_NO_TIMEOUT ? INT64_MAX : call->start_us + HOUR_US;
    call->ready_us = call->start_us;
}

/* A copy of a message in memory of its own size, so ASan sees a read past its end. */
static uint8_t *_copy(const uint8_t *msg, size_t len) {
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL) {
        _die("out of memory");
    }
    memcpy(copy, msg, len);
    return copy;
}

static void _run_unary(const struct grpc_method *m, struct grpc_call *call, const uint8_t *msg,
                       size_t len) {
    uint8_t *copy = _copy(msg, len);
    m->unary(call, copy, len);
    free(copy);
    if (!call->finished) {
        _die("%s returned without finishing the call", m->path);
    }
    _check_call(call, msg, len);
}

static void _run_stream(const struct grpc_method *m, struct grpc_call *call, const uint8_t *in,
                        size_t len, uint8_t flags) {
    bool handler_called = false;
    uint64_t rows = 0;
    char first_view[STORE_MAX_NAME + 1] = ""; /* the view the first message names */
    size_t at = 0;
    while (len - at >= 2 && !call->finished) {
        size_t n = (size_t)in[at] | (size_t)in[at + 1] << 8;
        at += 2;
        n = n < len - at ? n : len - at;
        Fsd__V1__PushSnapshotRequest *req =
            fsd__v1__push_snapshot_request__unpack(NULL, n, in + at);
        if (req != NULL) {
            if (!handler_called) {
                snprintf(first_view, sizeof first_view, "%s", req->view);
            }
            rows += req->n_rows;
            fsd__v1__push_snapshot_request__free_unpacked(req, NULL);
        }
        uint8_t *copy = _copy(in + at, n);
        handler_called = true;
        m->on_message(call, copy, n);
        free(copy);
        at += n;
    }
    if (call->finished) {
        /* a message was refused */
    } else if (flags & FLAG_RESET) {
        if (handler_called && m->on_abort != NULL) {
            m->on_abort(call);
        }
    } else {
        m->on_end(call);
        if (!call->finished && call->suspended == NULL) {
            _die("%s: on_end returned without finishing or suspending the call", m->path);
        }
        if (call->suspended != NULL) {
            struct grpc_resume *r = call->suspended;
            if (flags & FLAG_LATE_RESET) {
                r->call = NULL; /* the transport's release of a suspended call */
                call->suspended = NULL;
            }
            _resume(r);
        }
    }
    if (call->user != NULL) {
        _die("%s: the call ended with handler state still on it", m->path);
    }
    if (!call->finished) {
        return; /* reset: nothing was answered */
    }
    _check_call(call, NULL, 0);
    if (call->code == GRPC_OK) {
        Fsd__V1__PushSnapshotResponse *resp =
            fsd__v1__push_snapshot_response__unpack(NULL, call->response_len, call->response);
        struct store_view *view = store_catalog_find(g.catalog, first_view);
        if (resp == NULL || view == NULL || resp->rows_received != rows || resp->version == 0 ||
            resp->version != store_view_version(view)) {
            _die("PushSnapshot: OK for view \"%s\" with %llu rows received of %llu, version %llu",
                 first_view, resp ? (unsigned long long)resp->rows_received : 0ull,
                 (unsigned long long)rows, resp ? (unsigned long long)resp->version : 0ull);
        }
        fsd__v1__push_snapshot_response__free_unpacked(resp, NULL);
    }
}

/* LoadSnapshot of view u with a path: the scheduler would read files from it. */
static bool _reads_files(const uint8_t *msg, size_t len) {
    Fsd__V1__LoadSnapshotRequest *req = fsd__v1__load_snapshot_request__unpack(NULL, len, msg);
    bool reads = req != NULL && req->path[0] != '\0' && strcmp(req->view, "u") == 0;
    if (req != NULL) {
        fsd__v1__load_snapshot_request__free_unpacked(req, NULL);
    }
    return reads;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g.ready) {
        _setup();
    }
    if (size == 0) {
        return 0;
    }
    uint8_t flags = data[0];
    size_t method_index = (size_t)(flags & METHOD_MASK);
    if (method_index == RPC_FEAST_SERVING_INFO) { /* the HTTP JSON methods follow it */
        method_index += (flags >> 5) & 3;
    } else if (method_index == RPC_FEAST_GET_ONLINE_FEATURES && (flags & FLAG_LATE_RESET)) {
        method_index = RPC_HTTP_HEALTH;
    }
    method_index %= g.nmethods;
    const struct grpc_method *m = &g.methods[method_index];
    unsigned token = (flags >> TOKEN_SHIFT) & 3;
    uint8_t *header = NULL;
    const uint8_t *body = data + 1;
    size_t header_len = 0, len = size - 1;
    if (token < TOKEN_FROM_DATA) {
        header_len = strlen(TOKENS[token].token) + strlen("Bearer ");
        header = malloc(header_len + 1);
        snprintf((char *)header, header_len + 1, "Bearer %s", TOKENS[token].token);
    } else if (len > 0) {
        header_len = body[0] < len - 1 ? body[0] : len - 1;
        header = header_len > 0 ? _copy(body + 1, header_len) : NULL;
        body += 1 + header_len;
        len -= 1 + header_len;
    }
    if (method_index == RPC_LOAD_SNAPSHOT && _reads_files(body, len)) {
        free(header);
        return 0;
    }
    _world_create();
    struct grpc_call call;
    _call_init(&call, method_index, flags);
    /* The transport runs the authorizer once the header is decoded (or the headers end
     * without one) and fails the call with what it says, before any handler. */
    char message[GRPC_MESSAGE_MAX + 1] = "";
    enum grpc_code code = m->authorize != NULL
                              ? m->authorize(&call, header, header_len, message, sizeof message)
                              : GRPC_OK;
    free(header);
    if (code != GRPC_OK) {
        grpc_call_fail(&call, code, message);
        _check_call(&call, NULL, 0);
    } else if (m->unary != NULL) {
        _run_unary(m, &call, body, len);
    } else {
        _run_stream(m, &call, body, len, flags);
    }
    g.outcomes[method_index][call.finished ? call.code : GRPC_CODE_COUNT]++;
    free(call.response);
    if (g.worker->arena.used != 0 || g.worker->arena.overflow != NULL) {
        _die("%s left %zu bytes in the worker's arena", m->path, g.worker->arena.used);
    }
    _world_destroy();
    return 0;
}

#ifdef FSD_FUZZ_REPLAY
/* Runs each file, its prefixes and single-byte corruptions of it (about 64 of each). */
int main(int argc, char **argv) {
    static uint8_t buf[1 << 16], mutated[1 << 16];
    static const uint8_t values[] = {0x00, 0x01, 0x7f, 0x80, 0xff};
    long cases = 0;
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (f == NULL) {
            perror(argv[i]);
            return 1;
        }
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
        cases++;
        size_t step = n / 64 + 1;
        for (size_t cut = 1; cut < n; cut += step, cases++) {
            LLVMFuzzerTestOneInput(buf, cut);
        }
        for (size_t at = 1; at < n; at += step) {
            for (size_t v = 0; v < sizeof values; v++, cases++) {
                memcpy(mutated, buf, n);
                mutated[at] = values[v];
                LLVMFuzzerTestOneInput(mutated, n);
            }
        }
    }
    printf("replayed %d files, %ld inputs with their prefixes and byte corruptions\n", argc - 1,
           cases);
    for (int m = 0; m < RPC_METHOD_COUNT && g.ready; m++) {
        printf("  %-12s", rpc_method_name((enum rpc_method_id)m));
        for (int c = 0; c <= GRPC_CODE_COUNT; c++) {
            if (g.outcomes[m][c] > 0) {
                printf(" %s=%llu",
                       c < GRPC_CODE_COUNT ? grpc_code_name((enum grpc_code)c) : "reset",
                       (unsigned long long)g.outcomes[m][c]);
            }
        }
        printf("\n");
    }
    if (g.ready) {
        rpc_worker_destroy(g.worker);
        rpc_counters_free_all();
        auth_teardown();
        rpc_state.catalog = NULL;
        store_catalog_destroy(g.catalog);
        for (int v = 0; v < NVIEWS; v++) {
            store_schema_destroy(g.config_views[v].schema);
        }
        store_rcu_barrier();
        store_rcu_thread_offline();
    }
    return 0;
}
#endif
