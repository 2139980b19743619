/*
 * Which JSON library parses Feast's request bodies fastest: the numbers behind fsd's choice of
 * a parser for the HTTP JSON API (daemon/rpc/feast_http.c). Each of the three Debian packages
 * (jansson, json-c, cJSON) and fsd's own reader (common/json_reader.h) parses the same
 * bodies, built as Feast's Python client sends them, and walks the result the way a handler
 * does (every entity value and every ref read once), so a library that defers work to access
 * is not flattered.
 *
 *   build/bin/json_parse_bench [--runs R]
 *
 * Prints, per body, the median over R runs of microseconds per parse and walk, and each
 * library's time over the fastest one's.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t _now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A get-online-features body: `n` int64 entities, `f` refs of one view. */
static char *_lookup_body(int n, int f) {
    size_t cap = 256 + (size_t)n * 24 + (size_t)f * 48;
    char *b = malloc(cap), *p = b;
    p += sprintf(p, "{\"entities\": {\"user_id\": [");
    for (int i = 0; i < n; i++) {
        p += sprintf(p, "%s%d", i ? ", " : "", 1000003 + i * 7919);
    }
    p += sprintf(p, "]}, \"full_feature_names\": false, \"features\": [");
    for (int j = 0; j < f; j++) {
        p += sprintf(p, "%s\"user_features:feature_%d\"", j ? ", " : "", j);
    }
    sprintf(p, "]}");
    return b;
}

/* A push body: `n` rows of a key, `f` double features and an event timestamp, by column. */
static char *_push_body(int n, int f) {
    size_t cap = 256 + (size_t)n * (size_t)(f + 2) * 32;
    char *b = malloc(cap), *p = b;
    p += sprintf(p, "{\"push_source_name\": \"user_push\", \"df\": {\"user_id\": [");
    for (int i = 0; i < n; i++) {
        p += sprintf(p, "%s%d", i ? ", " : "", 1000003 + i);
    }
    p += sprintf(p, "]");
    for (int j = 0; j < f; j++) {
        p += sprintf(p, ", \"feature_%d\": [", j);
        for (int i = 0; i < n; i++) {
            p += sprintf(p, "%s%.17g", i ? ", " : "", (i * 31 + j) / 7.0);
        }
        p += sprintf(p, "]");
    }
    p += sprintf(p, ", \"event_timestamp\": [");
    for (int i = 0; i < n; i++) {
        p += sprintf(p, "%s\"2026-12-03T10:%02d:%02d.123456\"", i ? ", " : "", i / 60 % 60, i % 60);
    }
    sprintf(p, "]}, \"to\": \"online\"}");
    return b;
}

/* One per library, each in its own file: jansson's and json-c's headers cannot meet. */
double json_bench_walk_jansson(const char *body, size_t len);
double json_bench_walk_jsonc(const char *body, size_t len);
double json_bench_walk_cjson(const char *body, size_t len);
double json_bench_walk_reader(const char *body, size_t len);

struct library {
    const char *name;
    double (*walk)(const char *body, size_t len);
};

static const struct library _libraries[] = {
    {"jansson", json_bench_walk_jansson},
    {"json-c", json_bench_walk_jsonc},
    {"cJSON", json_bench_walk_cjson},
    {"fsd json_reader", json_bench_walk_reader},
};
#define NLIB (sizeof _libraries / sizeof _libraries[0])

static int _cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median microseconds per parse of `body` by `lib` over `runs` runs of ~50 ms each. */
static double _measure(const struct library *lib, const char *body, int runs, double *check) {
    size_t len = strlen(body);
    double per[64];
    for (int r = 0; r < runs; r++) {
        int iters = 0;
        int64_t start = _now_ns(), now;
        do {
            for (int k = 0; k < 16; k++, iters++) {
                *check += lib->walk(body, len);
            }
            now = _now_ns();
        } while (now - start < 50000000);
        per[r] = (double)(now - start) / iters / 1000.0;
    }
    qsort(per, (size_t)runs, sizeof per[0], _cmp_double);
    return per[runs / 2];
}

int main(int argc, char **argv) {
    int runs = 5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--runs R]\n", argv[0]);
            return 2;
        }
    }
    if (runs < 1 || runs > 64) {
        fprintf(stderr, "--runs: 1 to 64\n");
        return 2;
    }
    struct {
        const char *name;
        char *body;
    } bodies[] = {
        {"get-online-features b1 x 10", _lookup_body(1, 10)},
        {"get-online-features b10 x 10", _lookup_body(10, 10)},
        {"get-online-features b100 x 10", _lookup_body(100, 10)},
        {"push 100 rows x 10", _push_body(100, 10)},
    };
    printf("median us per parse+walk over %d runs (ratio to the fastest)\n", runs);
    printf("%-32s %8s", "body", "bytes");
    for (size_t l = 0; l < NLIB; l++) {
        printf(" %16s", _libraries[l].name);
    }
    printf("\n");
    double check = 0;
    for (size_t b = 0; b < sizeof bodies / sizeof bodies[0]; b++) {
        double us[NLIB], best = 1e30;
        for (size_t l = 0; l < NLIB; l++) {
            us[l] = _measure(&_libraries[l], bodies[b].body, runs, &check);
            best = us[l] < best ? us[l] : best;
        }
        printf("%-32s %8zu", bodies[b].name, strlen(bodies[b].body));
        for (size_t l = 0; l < NLIB; l++) {
            printf(" %8.2f (%4.2fx)", us[l], us[l] / best);
        }
        printf("\n");
        free(bodies[b].body);
    }
    fflush(stdout);
    fprintf(stderr, "checksum %g\n", check);
    return 0;
}
