#pragma once
/*
 * What grpc_load's files share: the options, a run's result, and the functions one file calls
 * in another.
 *
 *   grpc_load.c       options, output (Markdown, CSV, JSON), medians, --dump-request
 *   grpc_load_run.c   the lookup runs: threads, connections, open and closed loops
 *   grpc_load_fill.c  --fill: PushRows of the benchmark view's rows
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

struct options {
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
};

struct result {
    double requests_per_s, lookups_per_s, values_per_s;
    double p50_us, p99_us, p999_us, max_us, mean_us;
    uint64_t requests, errors, late_sends, backlog, sent;
    double max_lag_us;
    /* latency from the actual send rather than the intended one: the difference is time the
     * generator was late (open loop) */
    double sent_p50_us, sent_p99_us, sent_p999_us;
};

/*
 * A GetFeaturesRequest with random ids, encoded by hand (grpc_load_run.c): building
 * protobuf-c structs per call would cost the generator more CPU than the server spends on a
 * small lookup.   1: features (repeated string)   3: keys { 1: name, 2: int64_values packed }
 */
struct request_encoder {
    uint8_t *features; /* the encoded field-1 entries, the same every time */
    size_t features_len;
    uint8_t *ids; /* scratch for the packed ids */
    uint8_t *out;
    const struct options *o;
};

uint64_t load_splitmix(uint64_t *state);
int load_encoder_init(struct request_encoder *e, const struct options *o);
void load_encoder_deinit(struct request_encoder *e);
/* Encodes a request of o->batch uniform random ids into e->out; returns its length. */
size_t load_encode_request(struct request_encoder *e, uint64_t *rng);

/* One GetFeatures before the runs: prints the server's error and returns -1 if it fails;
 * else sets how many columns a response has. */
int load_probe(const struct options *o, uint32_t *columns);
/* One measured run (warm-up included); -1 if it could not run at all. */
int load_run_once(const struct options *o, uint32_t columns, unsigned run, struct result *out);

/* --fill: returns the exit status. */
int load_fill(const struct options *o);
