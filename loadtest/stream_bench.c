/*
 * stream_bench: writes row updates into a Redis stream at a steady rate, as a stream processor
 * would, for loadtest/stream_bench.sh to measure how fast fsd applies them.
 *
 *   stream_bench [--redis HOST:PORT] [--key K] [--entities N] [--rate R] [--duration S]
 *                [--max-count N] [--chunk C] [--maxlen L]
 *
 * Each entry updates one entity of the benchmark view (loadtest/bench_view.yaml, the one
 * grpc_load fills: int64 key entity_id, d0..d7 double, count int64, label string; the names
 * from bench_view.h) in the fields format:
 *
 *   XADD K MAXLEN ~ L * entity_id <id> event_ts <now us> d0 <x> ... d7 <x> count <n> label <s>
 *
 * with event_ts taken when the entry is written, so fsd's visible-lag histogram measures from
 * the producer to a lookup seeing the row. Entries go out pipelined, at most C per round trip,
 * on a schedule of R per second (0: as fast as Redis takes them); a chunk is sent as soon as
 * it is due, so no entry waits in the producer for more than about a millisecond at 100k/s.
 * Bounded by --duration (at most 600 s) and --max-count. Prints one line of JSON: entries
 * written, seconds, rate achieved, errors.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "bench_view.h"
#include "common/clock.h"

#define MAX_DURATION_S 600
#define MAX_CHUNK      10000

struct options {
    char host[256];
    int port;
    const char *key;
    uint64_t entities;
    double rate;
    double duration_s;
    uint64_t max_count;
    unsigned chunk;
    uint64_t maxlen;
};

static uint64_t _next(uint64_t *s) {
    /* splitmix64: cheap and good enough to spread entity ids and values */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Returns 0, 1 after --help, or -1 after printing what is wrong. */
static int _parse(int argc, char **argv, struct options *o);

/* Appends one XADD for a random entity to the context's output buffer. */
static void _append_entry(redisContext *c, const struct options *o, uint64_t *rng, uint64_t seq) {
    /* XADD K MAXLEN ~ L *, then key, event_ts and every feature, each a name and a value */
    enum { NARGS = 6 + 2 * (2 + BENCH_FEATURES) };
    char bufs[3 + BENCH_FEATURES][32];
    static const struct bench_feature features[BENCH_FEATURES] = BENCH_FEATURE_LIST;
    const char *argv[NARGS];
    size_t lens[NARGS];
    int n = 0;
#define ARG(s)                                                                                     \
    do {                                                                                           \
        argv[n] = (s);                                                                             \
        lens[n] = strlen(argv[n]);                                                                 \
        n++;                                                                                       \
    } while (0)
    ARG("XADD");
    ARG(o->key);
    ARG("MAXLEN");
    ARG("~");
    snprintf(bufs[0], sizeof bufs[0], "%" PRIu64, o->maxlen);
    ARG(bufs[0]);
    ARG("*");
    ARG(BENCH_KEY_NAME);
    snprintf(bufs[1], sizeof bufs[1], "%" PRIu64, _next(rng) % o->entities);
    ARG(bufs[1]);
    ARG("event_ts");
    snprintf(bufs[2], sizeof bufs[2], "%" PRId64, clock_wall_us());
    ARG(bufs[2]);
    for (int d = 0; d < BENCH_DOUBLE_FEATURES; d++) {
        /* "0.dddddd" by hand: snprintf's %f would cost the producer more than fsd's parse */
        uint64_t v = _next(rng) % 1000000;
        char *b = bufs[3 + d];
        memcpy(b, "0.", 2);
        for (int k = 7; k >= 2; k--, v /= 10) {
            b[k] = (char)('0' + v % 10);
        }
        b[8] = '\0';
        ARG(features[d].name);
        ARG(b);
    }
    char *count = bufs[3 + BENCH_DOUBLE_FEATURES], *label = bufs[4 + BENCH_DOUBLE_FEATURES];
    ARG(features[BENCH_DOUBLE_FEATURES].name); /* count */
    snprintf(count, sizeof bufs[0], "%" PRIu64, seq);
    ARG(count);
    ARG(features[BENCH_DOUBLE_FEATURES + 1].name); /* label */
    snprintf(label, sizeof bufs[0], "stream-%" PRIu64, seq % 100000);
    ARG(label);
#undef ARG
    redisAppendCommandArgv(c, n, argv, lens);
}

static void _usage(FILE *out) {
    fprintf(out, "usage: stream_bench [--redis HOST:PORT] [--key K] [--entities N] [--rate R]\n"
                 "                    [--duration S] [--max-count N] [--chunk C] [--maxlen L]\n"
                 "  --redis HOST:PORT  Redis (default 127.0.0.1:6379)\n"
                 "  --key K            stream key (default bench_updates)\n"
                 "  --entities N       entity ids uniform in [0, N) (default 1000000)\n"
                 "  --rate R           entries per second; 0 = as fast as possible (default "
                 "100000)\n"
                 "  --duration S       seconds, at most 600 (default 10)\n"
                 "  --max-count N      stop after N entries (default: no limit)\n"
                 "  --chunk C          entries per round trip at most (default 200)\n"
                 "  --maxlen L         XADD MAXLEN ~ L keeps Redis' memory bounded (default "
                 "2000000)\n");
}

static int _parse(int argc, char **argv, struct options *o) {
    *o = (struct options){.port = 6379,
                          .key = "bench_updates",
                          .entities = 1000000,
                          .rate = 100000,
                          .duration_s = 10,
                          .max_count = UINT64_MAX,
                          .chunk = 200,
                          .maxlen = 2000000};
    snprintf(o->host, sizeof o->host, "127.0.0.1");
    static const struct option long_options[] = {
        {"redis", required_argument, NULL, 'r'},    {"key", required_argument, NULL, 'k'},
        {"entities", required_argument, NULL, 'e'}, {"rate", required_argument, NULL, 'R'},
        {"duration", required_argument, NULL, 'd'}, {"max-count", required_argument, NULL, 'm'},
        {"chunk", required_argument, NULL, 'c'},    {"maxlen", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        char *end = NULL;
        errno = 0;
        switch (opt) {
        case 'r': {
            const char *colon = strrchr(optarg, ':');
            if (colon == NULL || (size_t)(colon - optarg) >= sizeof o->host) {
                fprintf(stderr, "stream_bench: --redis wants HOST:PORT\n");
                return -1;
            }
            snprintf(o->host, sizeof o->host, "%.*s", (int)(colon - optarg), optarg);
            o->port = (int)strtol(colon + 1, &end, 10);
            break;
        }
        case 'k':
            o->key = optarg;
            end = optarg + strlen(optarg);
            break;
        case 'e':
            o->entities = strtoull(optarg, &end, 10);
            break;
        case 'R':
            o->rate = strtod(optarg, &end);
            break;
        case 'd':
            o->duration_s = strtod(optarg, &end);
            break;
        case 'm':
            o->max_count = strtoull(optarg, &end, 10);
            break;
        case 'c':
            o->chunk = (unsigned)strtoul(optarg, &end, 10);
            break;
        case 'l':
            o->maxlen = strtoull(optarg, &end, 10);
            break;
        case 'h':
            _usage(stdout);
            return 1;
        default:
            _usage(stderr);
            return -1;
        }
        if (errno != 0 || end == NULL || *end != '\0') {
            fprintf(stderr, "stream_bench: bad value \"%s\"\n", optarg);
            return -1;
        }
    }
    if (o->port <= 0 || o->port > 65535 || o->entities == 0 || o->rate < 0 ||
        !(o->duration_s > 0 && o->duration_s <= MAX_DURATION_S) || o->chunk == 0 ||
        o->chunk > MAX_CHUNK || o->maxlen == 0) {
        fprintf(stderr, "stream_bench: an option is out of range (see --help)\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    struct options o;
    int parsed = _parse(argc, argv, &o);
    if (parsed != 0) {
        return parsed > 0 ? 0 : 2;
    }
    struct timeval timeout = {5, 0};
    redisContext *c = redisConnectWithTimeout(o.host, o.port, timeout);
    if (c == NULL || c->err) {
        fprintf(stderr, "stream_bench: cannot connect to %s:%d: %s\n", o.host, o.port,
                c ? c->errstr : "out of memory");
        redisFree(c);
        return 1;
    }
    redisSetTimeout(c, timeout);
    uint64_t rng = 6, sent = 0, errors = 0;
    int64_t start = clock_mono_us();
    int64_t end = start + (int64_t)(o.duration_s * 1e6);
    int64_t now = start;
    while (now < end && sent < o.max_count) {
        uint64_t due =
            o.rate > 0 ? (uint64_t)((double)(now - start) * o.rate / 1e6) + 1 : UINT64_MAX;
        uint64_t n = due > sent ? due - sent : 0;
        n = n < o.chunk ? n : o.chunk;
        n = n < o.max_count - sent ? n : o.max_count - sent;
        if (n == 0) {
            struct timespec pause = {0, 50000};
            nanosleep(&pause, NULL);
            now = clock_mono_us();
            continue;
        }
        for (uint64_t i = 0; i < n; i++) {
            _append_entry(c, &o, &rng, sent + i);
        }
        for (uint64_t i = 0; i < n; i++) {
            redisReply *reply = NULL;
            if (redisGetReply(c, (void **)&reply) != REDIS_OK) {
                fprintf(stderr, "stream_bench: %s\n", c->errstr);
                redisFree(c);
                return 1;
            }
            errors += reply->type == REDIS_REPLY_ERROR;
            freeReplyObject(reply);
        }
        sent += n;
        now = clock_mono_us();
    }
    double seconds = (double)(now - start) / 1e6;
    printf("{\"entries\": %" PRIu64 ", \"seconds\": %.3f, \"entries_per_s\": %.0f, "
           "\"errors\": %" PRIu64 "}\n",
           sent, seconds, (double)sent / seconds, errors);
    redisFree(c);
    return errors > 0 ? 3 : 0;
}
