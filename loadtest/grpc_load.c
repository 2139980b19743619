/*
 * grpc_load: the project's load generator for feature lookups: fsd's GetFeatures over HTTP/2
 * gRPC, and, for comparison on the same rows and the same load, Redis in the two layouts
 * feature stores use (grpc_load_redis.c). It also fills each target with the benchmark rows.
 *
 *   grpc_load [--target T] --fill N [--view bench]  write entities 0..N-1
 *   grpc_load [--target T] --entities N --batch B   look up B random entities per request
 *             [--connections C] [--threads T] [--inflight K] [--duration S] [--rate R]
 *   grpc_load --dump-request FILE --batch B          one framed request, for h2load -d FILE
 *
 * Targets: fsd (default), feast (fsd through Feast's GetOnlineFeatures), redis-hash
 * (pipelined HMGETs), redis-packed (one MGET).
 *
 * Closed loop (no --rate): every connection keeps K calls in flight, a new one leaves as one
 * completes: the peak throughput. Open loop (--rate R requests/s in all): each connection sends
 * on a fixed schedule, R/C per second, and a call's latency runs from its *intended* send time,
 * so a server (or generator) that falls behind shows up in the percentiles instead of slowing
 * the schedule down (coordinated omission). A call waits for its slot when K are in flight
 * already; the report says when that made the generator fall behind.
 *
 * Each of the T threads owns C/T connections and polls them together; latencies go into
 * per-thread histograms merged at the end. Every loop is bounded by
 * --duration (at most 600 s) and --max-requests; SIGUSR1 ends the measurement sooner (the
 * report then covers the time measured). --latency-log FILE also writes every measured call,
 * so a script can take percentiles over any window of the run.
 *
 * The benchmark view (loadtest/bench_view.yaml; its names in bench_view.h): join key
 * entity_id (int64) and 10 features: d0..d7 double, count int64, label string of 10-16 bytes.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ports.h"
#include "client/client.h"
#include "grpc_load_internal.h"
#include "histogram.h"

/* ---- output ------------------------------------------------------------------------------ */

static int _cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double _median(double *v, unsigned n) {
    qsort(v, n, sizeof(double), _cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Each figure's median over the runs (figures of different runs may mix: that is what a
 * median per column means). */
static struct result _median_result(const struct result *runs, unsigned n) {
    struct result m;
    double v[MAX_RUNS];
#define _MEDIAN_OF(field)                                                                          \
    do {                                                                                           \
        for (unsigned i = 0; i < n; i++) {                                                         \
            v[i] = (double)runs[i].field;                                                          \
        }                                                                                          \
        m.field = _median(v, n);                                                                   \
    } while (0)
    _MEDIAN_OF(requests_per_s);
    _MEDIAN_OF(lookups_per_s);
    _MEDIAN_OF(values_per_s);
    _MEDIAN_OF(p50_us);
    _MEDIAN_OF(p99_us);
    _MEDIAN_OF(p999_us);
    _MEDIAN_OF(max_us);
    _MEDIAN_OF(mean_us);
    _MEDIAN_OF(max_lag_us);
    _MEDIAN_OF(sent_p50_us);
    _MEDIAN_OF(sent_p99_us);
    _MEDIAN_OF(sent_p999_us);
    _MEDIAN_OF(measured_s);
#undef _MEDIAN_OF
    /* counts: the sum over the runs, so one bad run is not hidden by the median */
    m.requests = m.errors = m.late_sends = m.backlog = m.sent = 0;
    for (unsigned i = 0; i < n; i++) {
        m.requests += runs[i].requests;
        m.errors += runs[i].errors;
        m.late_sends += runs[i].late_sends;
        m.backlog += runs[i].backlog;
        m.sent += runs[i].sent;
    }
    return m;
}

static void _print_result(const struct options *o, const struct result *r) {
    const char *mode = o->rate > 0 ? "open" : "closed";
    char rate[32];
    if (o->rate > 0) {
        snprintf(rate, sizeof rate, "%.0f", o->rate);
    } else {
        snprintf(rate, sizeof rate, "-");
    }
    switch (o->output) {
    case OUT_MARKDOWN:
        if (o->header) {
            printf("| batch | mode | rate | requests/s | key lookups/s | feature values/s | p50 us "
                   "| p99 us | p999 us | max us | errors |\n"
                   "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        }
        printf("| %u | %s | %s | %.0f | %.0f | %.0f | %.1f | %.1f | %.1f | %.1f | %" PRIu64 " |\n",
               o->batch, mode, rate, r->requests_per_s, r->lookups_per_s, r->values_per_s,
               r->p50_us, r->p99_us, r->p999_us, r->max_us, r->errors);
        break;
    case OUT_CSV:
        if (o->header) {
            printf("batch,mode,rate,requests_per_s,lookups_per_s,values_per_s,p50_us,p99_us,"
                   "p999_us,max_us,mean_us,errors,requests,connections,threads,inflight,"
                   "duration_s,runs,late_sends,max_send_lag_us,backlog,target\n");
        }
        printf("%u,%s,%s,%.0f,%.0f,%.0f,%.1f,%.1f,%.1f,%.1f,%.1f,%" PRIu64 ",%" PRIu64
               ",%u,%u,%u,%g,%u,%" PRIu64 ",%.0f,%" PRIu64 ",%s\n",
               o->batch, mode, o->rate > 0 ? rate : "", r->requests_per_s, r->lookups_per_s,
               r->values_per_s, r->p50_us, r->p99_us, r->p999_us, r->max_us, r->mean_us, r->errors,
               r->requests, o->connections, o->threads, o->inflight, o->duration_s, o->runs,
               r->late_sends, r->max_lag_us, r->backlog, load_target_of(o)->name);
        break;
    case OUT_JSON:
        printf("{\"batch\": %u, \"mode\": \"%s\", \"rate\": %s, \"requests_per_s\": %.0f, "
               "\"lookups_per_s\": %.0f, \"values_per_s\": %.0f, \"p50_us\": %.1f, "
               "\"p99_us\": %.1f, \"p999_us\": %.1f, \"max_us\": %.1f, \"mean_us\": %.1f, "
               "\"errors\": %" PRIu64 ", \"requests\": %" PRIu64 ", \"connections\": %u, "
               "\"threads\": %u, \"inflight\": %u, \"duration_s\": %g, \"runs\": %u, "
               "\"late_sends\": %" PRIu64 ", \"max_send_lag_us\": %.0f, \"backlog\": %" PRIu64
               ", \"sent_p50_us\": %.1f, \"sent_p99_us\": %.1f, \"sent_p999_us\": %.1f, "
               "\"target\": \"%s\", \"measured_s\": %.3f}\n",
               o->batch, mode, o->rate > 0 ? rate : "null", r->requests_per_s, r->lookups_per_s,
               r->values_per_s, r->p50_us, r->p99_us, r->p999_us, r->max_us, r->mean_us, r->errors,
               r->requests, o->connections, o->threads, o->inflight, o->duration_s, o->runs,
               r->late_sends, r->max_lag_us, r->backlog, r->sent_p50_us, r->sent_p99_us,
               r->sent_p999_us, load_target_of(o)->name, r->measured_s);
        break;
    }
    if (o->rate > 0 && (r->late_sends > 0 || r->backlog > 0)) {
        fprintf(stderr,
                "grpc_load: the open loop fell behind its schedule: %" PRIu64 " of %" PRIu64
                " sends more than %d us late (max lag %.0f us), %" PRIu64
                " scheduled sends never made; latencies count from the intended send times "
                "(from the actual sends: p50 %.1f, p99 %.1f, p999 %.1f us)\n",
                r->late_sends, r->sent, LATE_SEND_US, r->max_lag_us, r->backlog, r->sent_p50_us,
                r->sent_p99_us, r->sent_p999_us);
    }
}

/* The percentile curve of `h`, for plotting: more points where the tail is. */
static int _write_histogram(const char *path, const struct histogram *h) {
    static const double percentiles[] = {
        0,     10,   20,    30,   40,    50,    60,    70,     75,    80,     85,     90,
        92.5,  95,   96,    97,   97.5,  98,    98.5,  99,     99.25, 99.5,   99.6,   99.7,
        99.75, 99.8, 99.85, 99.9, 99.92, 99.95, 99.97, 99.975, 99.99, 99.995, 99.999, 100};
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "grpc_load: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "percentile,latency_us\n");
    for (size_t i = 0; i < sizeof percentiles / sizeof percentiles[0]; i++) {
        fprintf(f, "%g,%.1f\n", percentiles[i],
                (double)histogram_percentile(h, percentiles[i]) / 1e3);
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "grpc_load: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int _lookups(const struct options *o) {
    uint32_t values_per_entity = 0;
    if (load_target_of(o)->probe(o, &values_per_entity) != 0) {
        return 1;
    }
    struct result runs[MAX_RUNS];
    struct histogram *all_runs = NULL;
    if (o->histogram_out != NULL && (all_runs = malloc(sizeof(*all_runs))) == NULL) {
        fprintf(stderr, "grpc_load: out of memory\n");
        return 1;
    }
    if (all_runs != NULL) {
        histogram_init(all_runs);
    }
    int rc = 0;
    unsigned done = 0;
    for (unsigned run = 0; run < o->runs && rc == 0 && (run == 0 || !load_stop_requested); run++) {
        if (load_run_once(o, values_per_entity, run, &runs[run], all_runs) != 0) {
            rc = 1;
            continue;
        }
        done++;
        if (o->verbose) {
            struct options one = *o;
            one.header = run == 0 && o->header;
            fprintf(stderr, "grpc_load: run %u of %u:\n", run + 1, o->runs);
            fflush(stderr);
            _print_result(&one, &runs[run]);
        }
    }
    if (rc == 0) {
        struct result median = done > 1 ? _median_result(runs, done) : runs[0];
        _print_result(o, &median);
        if (all_runs != NULL && _write_histogram(o->histogram_out, all_runs) != 0) {
            rc = 1;
        } else if (median.errors > 0) {
            rc = 3;
        }
    }
    free(all_runs);
    return rc;
}

static int _dump_request(const struct options *o) {
    struct request_encoder enc;
    uint64_t rng = o->seed;
    if (load_encoder_init(&enc, o) != 0) {
        fprintf(stderr, "grpc_load: out of memory\n");
        return 1;
    }
    size_t len = load_encode_request(&enc, &rng);
    uint8_t frame[5] = {0, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                        (uint8_t)len};
    FILE *f = fopen(o->dump_request, "wb");
    int rc = 0;
    if (f == NULL || fwrite(frame, 1, 5, f) != 5 || fwrite(enc.out, 1, len, f) != len ||
        fclose(f) != 0) {
        fprintf(stderr, "grpc_load: cannot write %s: %s\n", o->dump_request, strerror(errno));
        rc = 1;
    }
    load_encoder_deinit(&enc);
    return rc;
}

/* ---- main -------------------------------------------------------------------------------- */

static void _usage(FILE *out) {
    fprintf(out,
            "usage: grpc_load [--target T] [--addr HOST:PORT] --fill N [--view V]\n"
            "       grpc_load [--target T] [--addr HOST:PORT] [--view V] [--entities N]\n"
            "                 [--batch B] [--connections C] [--threads T] [--inflight K]\n"
            "                 [--duration S] [--rate R] [--warmup S] [--runs R] [--json | --csv]\n"
            "       grpc_load --dump-request FILE [--view V] [--entities N] [--batch B]\n\n"
            "  --target T         what to load (default fsd):\n"
            "                       fsd           GetFeatures of B entities over gRPC\n"
            "                       feast         the same lookups through Feast's\n"
            "                                     GetOnlineFeatures (feast.serving)\n"
            "                       redis-hash    Redis, a hash e:<id> per entity, B pipelined\n"
            "                                     HMGETs of its 10 features and _ts\n"
            "                       redis-packed  Redis, a protobuf string p:<id> per entity,\n"
            "                                     one MGET of B keys\n"
            "  --addr HOST:PORT   the target's address (default " FSD_GRPC_DEFAULT_ADDR
            " for fsd and\n"
            "                     feast, 127.0.0.1:6379 for Redis)\n"
            "  --fill N           write entities 0..N-1 (fsd: PushRows into the view, %d a\n"
            "                     batch; Redis: pipelined HSET or SET): d0..d7 double,\n"
            "                     count int64, label string of 10-16 bytes, the same values\n"
            "                     for every target\n"
            "  --view V           fsd's view (default bench)\n"
            "  --key-name NAME    its int64 join key (default entity_id)\n"
            "  --features LIST    fsd's refs to ask for, comma-separated (default V:*)\n"
            "  --entities N       ids are uniform in [0, N) (default 1000000)\n"
            "  --batch B          entities per request (default 1)\n"
            "  --connections C    HTTP/2 connections (default 1, at most %d)\n"
            "  --threads T        generator threads, each polling C/T connections (default 1)\n"
            "  --inflight K       calls in flight per connection at most (default 1)\n"
            "  --duration S       measured seconds (default 10, at most %d)\n"
            "  --warmup S         unmeasured seconds before (default 0)\n"
            "  --rate R           open loop: R requests/s over all connections, latency from\n"
            "                     the intended send time; without it, closed loop (peak)\n"
            "  --max-requests M   stop sending after M requests (default %llu)\n"
            "  --timeout MS       grpc-timeout of each fsd call (default none)\n"
            "  --runs R           repeat the measurement R times, print medians (default 1)\n"
            "  --seed N           random seed (default 1)\n"
            "  --json | --csv     machine-readable output instead of a Markdown table row\n"
            "  --no-header        no table/CSV header line\n"
            "  --verbose          print each run too, before the median\n"
            "  --histogram-out F  write the latency percentile curve of every measured call\n"
            "                     (all runs) to F as CSV: percentile,latency_us\n"
            "  --latency-log FILE also write every measured call to FILE, one a line:\n"
            "                     start_wall_us latency_us send_lag_us ok (one run only)\n"
            "  --token-file FILE  fsd: send the token on FILE's first line with every call\n"
            "                     (default: the file $FSD_TOKEN_FILE names, if set)\n"
            "  --tls-ca FILE      fsd: connect with TLS; FILE: the CAs of fsd's certificate\n"
            "  --tls-cert FILE, --tls-key FILE  fsd: a client certificate and key (mutual TLS)\n"
            "  --dump-request FILE  write one framed GetFeaturesRequest (batch B) for\n"
            "                     h2load -d FILE, and exit\n\n"
            "SIGUSR1 ends the measurement early; the report covers the time measured.\n"
            "exit status: 0 ok, 1 failed, 2 usage, 3 the run had errors\n",
            FILL_BATCH, MAX_CONNECTIONS, MAX_DURATION_S, (unsigned long long)DEFAULT_MAX_REQUESTS);
}

static int _parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0 || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

static int _parse_seconds(const char *text, double min, double max, double *out) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || errno != 0 || !(v >= min && v <= max)) {
        return -1;
    }
    *out = v;
    return 0;
}

static void _on_sigusr1(int sig) {
    (void)sig;
    load_stop_requested = 1;
}

int main(int argc, char **argv) {
    /* First, so a SIGUSR1 sent as soon as the process exists ends a run, not the process. */
    struct sigaction stop = {.sa_handler = _on_sigusr1, .sa_flags = SA_RESTART};
    sigemptyset(&stop.sa_mask);
    sigaction(SIGUSR1, &stop, NULL);
    enum {
        O_ADDR = 256,
        O_TARGET,
        O_FILL,
        O_VIEW,
        O_KEY,
        O_FEATURES,
        O_ENTITIES,
        O_BATCH,
        O_CONNS,
        O_THREADS,
        O_INFLIGHT,
        O_DURATION,
        O_WARMUP,
        O_RATE,
        O_MAXREQ,
        O_TIMEOUT,
        O_RUNS,
        O_SEED,
        O_JSON,
        O_CSV,
        O_NOHEADER,
        O_VERBOSE,
        O_DUMP,
        O_HISTOGRAM,
        O_LATENCY_LOG,
        O_TOKEN_FILE,
        O_TLS_CA,
        O_TLS_CERT,
        O_TLS_KEY,
        O_HELP,
    };
    static const struct option long_options[] = {
        {"addr", required_argument, NULL, O_ADDR},
        {"target", required_argument, NULL, O_TARGET},
        {"fill", required_argument, NULL, O_FILL},
        {"view", required_argument, NULL, O_VIEW},
        {"key-name", required_argument, NULL, O_KEY},
        {"features", required_argument, NULL, O_FEATURES},
        {"entities", required_argument, NULL, O_ENTITIES},
        {"batch", required_argument, NULL, O_BATCH},
        {"connections", required_argument, NULL, O_CONNS},
        {"threads", required_argument, NULL, O_THREADS},
        {"inflight", required_argument, NULL, O_INFLIGHT},
        {"duration", required_argument, NULL, O_DURATION},
        {"warmup", required_argument, NULL, O_WARMUP},
        {"rate", required_argument, NULL, O_RATE},
        {"max-requests", required_argument, NULL, O_MAXREQ},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"runs", required_argument, NULL, O_RUNS},
        {"seed", required_argument, NULL, O_SEED},
        {"json", no_argument, NULL, O_JSON},
        {"csv", no_argument, NULL, O_CSV},
        {"no-header", no_argument, NULL, O_NOHEADER},
        {"verbose", no_argument, NULL, O_VERBOSE},
        {"dump-request", required_argument, NULL, O_DUMP},
        {"histogram-out", required_argument, NULL, O_HISTOGRAM},
        {"latency-log", required_argument, NULL, O_LATENCY_LOG},
        {"token-file", required_argument, NULL, O_TOKEN_FILE},
        {"tls-ca", required_argument, NULL, O_TLS_CA},
        {"tls-cert", required_argument, NULL, O_TLS_CERT},
        {"tls-key", required_argument, NULL, O_TLS_KEY},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    struct options o = {
        .addr = NULL,
        .view = BENCH_VIEW_NAME,
        .key_name = BENCH_KEY_NAME,
        .entities = 1000000,
        .batch = 1,
        .connections = 1,
        .threads = 1,
        .inflight = 1,
        .duration_s = 10,
        .max_requests = DEFAULT_MAX_REQUESTS,
        .runs = 1,
        .seed = 1,
        .output = OUT_MARKDOWN,
        .header = true,
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        uint64_t u = 0;
        int bad = 0;
        switch (opt) {
        case O_ADDR:
            o.addr = optarg;
            break;
        case O_TARGET:
            if (strcmp(optarg, "fsd") == 0) {
                o.target = TARGET_FSD;
            } else if (strcmp(optarg, "feast") == 0) {
                o.target = TARGET_FEAST;
            } else if (strcmp(optarg, "redis-hash") == 0) {
                o.target = TARGET_REDIS_HASH;
            } else if (strcmp(optarg, "redis-packed") == 0) {
                o.target = TARGET_REDIS_PACKED;
            } else {
                bad = 1;
            }
            break;
        case O_FILL:
            bad = _parse_u64(optarg, 1, UINT64_C(1) << 40, &o.fill);
            break;
        case O_VIEW:
            o.view = optarg;
            break;
        case O_KEY:
            o.key_name = optarg;
            bad = strlen(optarg) == 0 || strlen(optarg) > 40;
            break;
        case O_FEATURES:
            o.features = optarg;
            bad = strlen(optarg) == 0 || strlen(optarg) > 4000;
            break;
        case O_ENTITIES:
            bad = _parse_u64(optarg, 1, UINT64_C(1) << 62, &o.entities);
            break;
        case O_BATCH:
            bad = _parse_u64(optarg, 1, 1000000, &u);
            o.batch = (uint32_t)u;
            break;
        case O_CONNS:
            bad = _parse_u64(optarg, 1, MAX_CONNECTIONS, &u);
            o.connections = (uint32_t)u;
            break;
        case O_THREADS:
            bad = _parse_u64(optarg, 1, MAX_THREADS, &u);
            o.threads = (uint32_t)u;
            break;
        case O_INFLIGHT:
            bad = _parse_u64(optarg, 1, 100000, &u);
            o.inflight = (uint32_t)u;
            break;
        case O_DURATION:
            bad = _parse_seconds(optarg, 0.01, MAX_DURATION_S, &o.duration_s);
            break;
        case O_WARMUP:
            bad = _parse_seconds(optarg, 0, 60, &o.warmup_s);
            break;
        case O_RATE:
            bad = _parse_seconds(optarg, 0.001, 1e8, &o.rate);
            break;
        case O_MAXREQ:
            bad = _parse_u64(optarg, 1, UINT64_C(1) << 40, &o.max_requests);
            break;
        case O_TIMEOUT:
            bad = _parse_u64(optarg, 1, 3600 * 1000, &u);
            o.timeout_ms = (uint32_t)u;
            break;
        case O_RUNS:
            bad = _parse_u64(optarg, 1, MAX_RUNS, &u);
            o.runs = (uint32_t)u;
            break;
        case O_SEED:
            bad = _parse_u64(optarg, 0, UINT64_MAX, &o.seed);
            break;
        case O_JSON:
            o.output = OUT_JSON;
            break;
        case O_CSV:
            o.output = OUT_CSV;
            break;
        case O_NOHEADER:
            o.header = false;
            break;
        case O_VERBOSE:
            o.verbose = true;
            break;
        case O_DUMP:
            o.dump_request = optarg;
            break;
        case O_HISTOGRAM:
            o.histogram_out = optarg;
            break;
        case O_LATENCY_LOG:
            o.latency_log = optarg;
            break;
        case O_TOKEN_FILE:
            o.token_file = optarg;
            break;
        case O_TLS_CA:
            o.tls_ca = optarg;
            break;
        case O_TLS_CERT:
            o.tls_cert = optarg;
            break;
        case O_TLS_KEY:
            o.tls_key = optarg;
            break;
        case 'h':
        case O_HELP:
            _usage(stdout);
            return 0;
        default:
            _usage(stderr);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "grpc_load: invalid value \"%s\" for --%s (see --help)\n", optarg,
                    long_options[opt - O_ADDR].name);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "grpc_load: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if (o.threads > o.connections) {
        fprintf(stderr, "grpc_load: --threads %u is more than --connections %u\n", o.threads,
                o.connections);
        return 2;
    }
    if (o.latency_log != NULL && o.runs != 1) {
        fprintf(stderr, "grpc_load: --latency-log records one run; drop --runs\n");
        return 2;
    }
    if (o.dump_request != NULL) {
        if (o.target != TARGET_FSD) {
            fprintf(stderr, "grpc_load: --dump-request writes a GetFeatures request: fsd only\n");
            return 2;
        }
        return _dump_request(&o);
    }
    if (o.addr == NULL) {
        o.addr = o.target == TARGET_FSD || o.target == TARGET_FEAST ? FSD_GRPC_DEFAULT_ADDR
                                                                    : "127.0.0.1:6379";
    }
    char err[512];
    if (client_parse_addr(o.addr, o.host, sizeof o.host, &o.port, err, sizeof err) != 0) {
        fprintf(stderr, "grpc_load: %s\n", err);
        return 2;
    }
    client_options_init(&o.client);
    if ((o.target == TARGET_FSD || o.target == TARGET_FEAST) &&
        (client_options_token_file(&o.client, o.token_file, err, sizeof err) != 0 ||
         client_options_tls(&o.client, o.tls_ca, o.tls_cert, o.tls_key, err, sizeof err) != 0)) {
        fprintf(stderr, "grpc_load: %s\n", err);
        return 2;
    }
    return o.fill > 0 ? load_target_of(&o)->fill(&o) : _lookups(&o);
}
