#pragma once
/*
 * What grpc_load's files share: the options, a run's result, and the functions one file calls
 * in another.
 *
 *   grpc_load.c        options, output (Markdown, CSV, JSON), medians, --dump-request
 *   grpc_load_run.c    the lookup runs: threads, connections, open and closed loops, for any
 *                      target
 *   grpc_load_fsd.c    the fsd targets: GetFeatures, or Feast's GetOnlineFeatures, over gRPC
 *                      (client/)
 *   grpc_load_redis.c  the Redis targets: HMGET of hashes, MGET of packed rows (hiredis)
 *   grpc_load_fill.c   the benchmark rows, and --fill for fsd (PushRows)
 */
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench_view.h"
#include "client/client.h"

#define MAX_DURATION_S       600
#define MAX_CONNECTIONS      256
#define MAX_THREADS          64
#define MAX_RUNS             20
#define FILL_BATCH           5000
#define FILL_INFLIGHT        4
#define DRAIN_TIMEOUT_US     (5 * 1000000) /* after the run, for the calls still in flight */
#define LATE_SEND_US         1000          /* an open-loop send this late counts as behind */
#define VALIDATE_EVERY       1024          /* responses between full checks, per thread */
#define DEFAULT_MAX_REQUESTS 100000000ULL

#define LOAD_SERVICE "/fsd.v1.FeatureService/"

enum output { OUT_MARKDOWN, OUT_JSON, OUT_CSV };

/* What the lookups are sent to; every target serves the same rows (load_bench_row). */
enum target_kind { TARGET_FSD, TARGET_FEAST, TARGET_REDIS_HASH, TARGET_REDIS_PACKED };

struct options {
    enum target_kind target;
    const char *addr;
    char host[256];
    uint16_t port;
    const char *view;
    const char *key_name;
    const char *features; /* comma-separated refs; NULL: VIEW:* */
    uint64_t fill;
    uint64_t entities;
    uint32_t batch;
    uint32_t connections;
    uint32_t threads;
    uint32_t inflight;
    double duration_s;
    double warmup_s;
    double rate; /* requests/s over every connection; 0: closed loop */
    uint64_t max_requests;
    uint32_t timeout_ms; /* grpc-timeout per call; 0: none */
    uint32_t runs;
    uint64_t seed;
    enum output output;
    bool header;
    bool verbose;
    const char *dump_request;
    const char *histogram_out; /* the percentile curve of every measured call, as CSV */
    const char *latency_log;   /* every measured call, one a line; NULL: none */
    const char *token_file;    /* --token-file; NULL: $FSD_TOKEN_FILE, if set */
    const char *tls_ca, *tls_cert, *tls_key; /* --tls-*; NULL: not given (cleartext) */
    struct client_options client;            /* fsd's connections (the token each call carries) */
};

struct result {
    double requests_per_s, lookups_per_s, values_per_s;
    double p50_us, p99_us, p999_us, max_us, mean_us;
    uint64_t requests, errors, late_sends, backlog, sent;
    double measured_s; /* --duration, or less when SIGUSR1 ended the run early */
    double max_lag_us;
    /* latency from the actual send rather than the intended one: the difference is time the
     * generator was late (open loop) */
    double sent_p50_us, sent_p99_us, sent_p999_us;
};

/* ---- the benchmark rows ------------------------------------------------------------------ */

/* Entity `id`'s values, the same for every target so all of them serve the same data: the
 * benchmark view's features (bench_view.h) in its order, the doubles first. */
struct bench_row {
    double d[BENCH_DOUBLE_FEATURES];
    int64_t count;
    char label[24]; /* 10 to 16 bytes, NUL-terminated */
};

/* The view's features, as bench_view.h lists them: the names the rows are written under. */
extern const struct bench_feature load_features[BENCH_FEATURES];
_Static_assert(BENCH_FEATURES == BENCH_DOUBLE_FEATURES + 2, "a bench_row is the doubles, count "
                                                            "and label");

void load_bench_row(uint64_t id, struct bench_row *row);
uint64_t load_splitmix(uint64_t *state);
/* Writes `v` as a protobuf varint at `p` (at most 10 bytes); returns its length. */
size_t load_varint(uint8_t *p, uint64_t v);

/* ---- targets ----------------------------------------------------------------------------- */

/* One finished lookup call, whatever the target. */
struct load_outcome {
    int64_t start_us;  /* when it should have been sent (open loop), else when it was */
    int64_t submit_us; /* when it was */
    int64_t done_us;
    const char *error; /* NULL when the call succeeded with a response of the right shape */
};

typedef void (*load_done_fn)(void *user, const struct load_outcome *outcome);

/*
 * What grpc_load_run.c needs of a target: connections that take lookups of o->batch random
 * entities and report each when it completes. A connection belongs to one thread.
 */
struct load_target {
    const char *name; /* as --target spells it */
    /* One lookup before the runs: prints the server's own error and returns -1 if it fails,
     * so a wrong view or an empty Redis stops the benchmark before it starts. Sets how many
     * feature values a lookup of one entity returns. */
    int (*probe)(const struct options *o, uint32_t *values_per_entity);
    /* A connection whose every call reports to done(user, ...); `values_per_entity` is what
     * probe found, for checking responses. */
    void *(*connect)(const struct options *o, uint32_t values_per_entity, load_done_fn done,
                     void *user, char *err, size_t err_len);
    /* Queues one lookup of o->batch ids drawn from *rng; `done` runs from poll_many. Returns
     * -1 (done not called) when the connection is broken. */
    int (*submit)(void *conn, uint64_t *rng, int64_t start_us);
    /* Drives the I/O of n connections for up to timeout_us; < 0 when polling failed. */
    int (*poll_many)(void *const *conns, size_t n, int64_t timeout_us);
    size_t (*inflight)(const void *conn);
    const char *(*conn_error)(const void *conn); /* NULL while usable */
    void (*disconnect)(void *conn);
    /* --fill: entities 0..o->fill-1; returns the exit status. */
    int (*fill)(const struct options *o);
};

extern const struct load_target load_target_fsd;
extern const struct load_target load_target_feast; /* fsd through Feast's GetOnlineFeatures */
extern const struct load_target load_target_redis_hash;
extern const struct load_target load_target_redis_packed;

const struct load_target *load_target_of(const struct options *o);

/* ---- the fsd target's request (also --dump-request) -------------------------------------- */

/*
 * A GetFeaturesRequest with random ids, encoded by hand (grpc_load_fsd.c): building
 * protobuf-c structs per call would cost the generator more CPU than the server spends on a
 * small lookup.   1: features (repeated string)   3: keys { 1: name, 2: int64_values packed }
 */
struct request_encoder {
    bool feast;        /* a feast.serving.GetOnlineFeaturesRequest instead */
    uint8_t *features; /* the encoded field-1 entries, the same every time */
    size_t features_len;
    uint8_t *ids; /* scratch for the packed ids */
    uint8_t *out;
    const struct options *o;
};

int load_encoder_init(struct request_encoder *e, const struct options *o);
void load_encoder_deinit(struct request_encoder *e);
/* Encodes a request of o->batch uniform random ids into e->out; returns its length. */
size_t load_encode_request(struct request_encoder *e, uint64_t *rng);

/* fsd's --fill (PushRows); returns the exit status. */
int load_fill_fsd(const struct options *o);

/* ---- runs -------------------------------------------------------------------------------- */

struct histogram;

/*
 * Set by SIGUSR1: the measurement ends now (calls in flight are still awaited), the report
 * covers the time measured so far and further runs are skipped. Lets a script end a run when
 * what it measures (a snapshot load, say) is over instead of guessing a duration.
 */
extern volatile sig_atomic_t load_stop_requested;

/* One measured run (warm-up included), and o->latency_log written if set; -1 if it could not
 * run at all or the log could not be written. The run's measured latencies are also added to
 * `all_runs` when not NULL. */
int load_run_once(const struct options *o, uint32_t values_per_entity, unsigned run,
                  struct result *out, struct histogram *all_runs);
