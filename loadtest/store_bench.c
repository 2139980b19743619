/*
 * store_bench: how fast the store builds a snapshot, how fast it answers batched lookups, and
 * how many bytes it spends per feature value. Prints the median of several runs.
 *
 *   build/bin/store_bench [--rows N] [--runs R] [--threads T] [--lookups N] [--shards S]
 *
 * The table is the project's benchmark view (loadtest/bench_view.yaml): an int64 entity key
 * and 10 features (8 double, 1 int64, 1 string of 10-16 bytes). A lookup is what a worker
 * does for a request: encode and hash each key, find the rows in one batch, and read every
 * feature's status and value.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jemalloc/jemalloc.h>

#include "bench_view.h"
#include "config/config.h"
#include "store/key.h"
#include "store/rcu.h"
#include "store/table.h"
#include "common/clock.h"

#define NFEATURES BENCH_FEATURES

struct options {
    uint64_t rows;
    int runs;
    int threads;
    uint64_t lookups; /* keys looked up per thread per run */
    uint32_t shards;
};

static uint64_t _splitmix(uint64_t *state) {
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static int _cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double _median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), _cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static uint64_t _allocated_bytes(void) {
    uint64_t epoch = 1;
    size_t len = sizeof(epoch);
    mallctl("epoch", &epoch, &len, &epoch, len);
    size_t allocated = 0;
    len = sizeof(allocated);
    if (mallctl("stats.allocated", &allocated, &len, NULL, 0) != 0) {
        return 0;
    }
    return allocated;
}

/* The benchmark view's schema, from loadtest/bench_view.yaml. The rows below are written by
 * position, so the view must still be what they fill: 8 doubles, an int64, a string. */
static struct fsd_config *_bench_config(void) {
    static char err[CONFIG_ERR_LEN];
    struct fsd_config *config = bench_view_parse(NULL, NULL, err, sizeof err);
    if (config == NULL) {
        fprintf(stderr, "store_bench: %s\n", err);
        exit(1);
    }
    const struct store_schema *s = config->views[0].schema;
    bool as_written = s->nkeys == 1 && s->keys[0].type == STORE_KEY_INT64 &&
                      s->nfeatures == NFEATURES && s->features[8].type == STORE_TYPE_INT64 &&
                      s->features[9].type == STORE_TYPE_STRING;
    for (uint32_t f = 0; as_written && f < 8; f++) {
        as_written = s->features[f].type == STORE_TYPE_DOUBLE;
    }
    if (!as_written) {
        fprintf(stderr, "store_bench: the benchmark view is no longer an int64 key, 8 doubles, "
                        "an int64 and a string: update the rows store_bench writes\n");
        exit(1);
    }
    return config;
}

static const struct store_schema *bench_schema;

static struct store_key _key(int64_t id, uint8_t *buf) {
    struct store_key_part part = {.type = STORE_KEY_INT64, .i64 = id};
    char err[64];
    /* The bench schema has one int64 key: encoding cannot fail. */
    int len = store_key_encode(bench_schema, &part, buf, 8, err, sizeof err);
    struct store_key key = {buf, (uint32_t)len, store_key_hash(buf, (uint32_t)len)};
    return key;
}

/* Builds a table of `rows` rows; returns rows/s and sets *bytes to the allocator's growth. */
static double _build(const struct store_schema *schema, const struct options *o,
                     struct store_table **out, uint64_t *bytes) {
    char err[256];
    struct store_row_builder b;
    store_row_builder_init(&b, schema);
    uint64_t before = _allocated_bytes();
    double t0 = (clock_mono_us() / 1e6);
    struct store_table_options topts = {.shards = o->shards, .expected_rows = o->rows};
    struct store_table *table = store_table_create(schema, &topts, err, sizeof err);
    if (table == NULL) {
        fprintf(stderr, "store_bench: %s\n", err);
        exit(1);
    }
    uint64_t seed = 42;
    for (uint64_t id = 0; id < o->rows; id++) {
        store_row_builder_reset(&b, 1700000000000000 + (int64_t)id, 0);
        for (uint32_t f = 0; f < 8; f++) {
            store_row_set_double(&b, f, (double)(_splitmix(&seed) >> 11) * 0x1.0p-53);
        }
        store_row_set_int64(&b, 8, (int64_t)id);
        char label[24];
        int n = snprintf(label, sizeof label, "label-%07llu", (unsigned long long)(id % 10000000));
        store_row_set_bytes(&b, 9, label, (uint32_t)(n - (int)(id % 4))); /* 10-13 bytes */
        uint8_t kb[8];
        struct store_key key = _key((int64_t)id, kb);
        if (store_table_upsert(table, &key, &b) != STORE_UPSERT_INSERTED) {
            fprintf(stderr, "store_bench: insert of %llu failed\n", (unsigned long long)id);
            exit(1);
        }
    }
    store_table_seal(table);
    double elapsed = (clock_mono_us() / 1e6) - t0;
    *bytes = _allocated_bytes() - before;
    store_row_builder_deinit(&b);
    *out = table;
    return (double)o->rows / elapsed;
}

struct lookup_job {
    const struct store_table *table;
    const struct options *o;
    uint32_t batch;
    uint64_t seed;
    double keys_per_s;
    double checksum; /* keeps the reads from being optimized away */
    uint64_t found;
};

static void *_lookup_thread(void *arg) {
    struct lookup_job *job = arg;
    store_rcu_thread_online();
    const struct store_schema *schema = store_table_schema(job->table);
    uint32_t batch = job->batch;
    uint8_t *kbuf = malloc((size_t)batch * 8);
    struct store_key *keys = malloc(batch * sizeof(*keys));
    const struct store_row **rows = malloc(batch * sizeof(*rows));
    uint64_t seed = job->seed;
    uint64_t batches = job->o->lookups / batch;
    int64_t now_us = 1700000000000000 + (int64_t)job->o->rows;
    double checksum = 0;
    uint64_t found = 0;
    double t0 = (clock_mono_us() / 1e6);
    for (uint64_t i = 0; i < batches; i++) {
        for (uint32_t j = 0; j < batch; j++) {
            keys[j] = _key((int64_t)(_splitmix(&seed) % job->o->rows), kbuf + 8 * j);
        }
        store_read_lock();
        store_table_get_batch(job->table, keys, batch, rows);
        for (uint32_t j = 0; j < batch; j++) {
            for (uint32_t f = 0; f < schema->nfeatures; f++) {
                struct store_value v;
                bool has;
                if (store_table_read(job->table, rows[j], f, now_us, &v, &has) == STORE_PRESENT) {
                    checksum += f < 8 ? v.f64 : f == 8 ? (double)v.i64 : v.var.bytes;
                }
            }
            found += rows[j] != NULL;
        }
        store_read_unlock();
    }
    job->keys_per_s = (double)(batches * batch) / ((clock_mono_us() / 1e6) - t0);
    job->checksum = checksum;
    job->found = found;
    free(kbuf);
    free(keys);
    free(rows);
    store_rcu_thread_offline();
    return NULL;
}

/* Runs `threads` lookup threads; returns the mean per-thread rate in keys/s. */
static double _lookups(const struct store_table *table, const struct options *o, uint32_t batch,
                       int threads, int run) {
    pthread_t tids[64];
    struct lookup_job jobs[64];
    for (int t = 0; t < threads; t++) {
        jobs[t] = (struct lookup_job){table, o, batch, (uint64_t)(run * 1000 + t + 1), 0, 0, 0};
        pthread_create(&tids[t], NULL, _lookup_thread, &jobs[t]);
    }
    double sum = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tids[t], NULL);
        sum += jobs[t].keys_per_s;
        uint64_t expected = o->lookups / batch * batch;
        if (jobs[t].found != expected) {
            fprintf(stderr, "store_bench: found %llu of %llu keys\n",
                    (unsigned long long)jobs[t].found, (unsigned long long)expected);
            exit(1);
        }
    }
    return sum / threads;
}

static void _usage(FILE *out) {
    fprintf(out, "usage: store_bench [--rows N] [--runs R] [--threads T] [--lookups N] "
                 "[--shards S]\n"
                 "  --rows N      rows in the table (default 1000000)\n"
                 "  --runs R      runs per figure; the median is printed (default 5)\n"
                 "  --threads T   lookup threads for the multi-thread figure (default 2)\n"
                 "  --lookups N   keys each thread looks up per run (default 2000000)\n"
                 "  --shards S    table shards, a power of two (default 64)\n");
}

int main(int argc, char **argv) {
    struct options o = {.rows = 1000000, .runs = 5, .threads = 2, .lookups = 2000000, .shards = 64};
    static const struct option longopts[] = {
        {"rows", required_argument, NULL, 'r'},
        {"runs", required_argument, NULL, 'n'},
        {"threads", required_argument, NULL, 't'},
        {"lookups", required_argument, NULL, 'l'},
        {"shards", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'r':
            o.rows = strtoull(optarg, NULL, 10);
            break;
        case 'n':
            o.runs = atoi(optarg);
            break;
        case 't':
            o.threads = atoi(optarg);
            break;
        case 'l':
            o.lookups = strtoull(optarg, NULL, 10);
            break;
        case 's':
            o.shards = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'h':
            _usage(stdout);
            return 0;
        default:
            _usage(stderr);
            return 2;
        }
    }
    if (o.rows == 0 || o.runs < 1 || o.runs > 100 || o.threads < 1 || o.threads > 64 ||
        o.lookups < 1000) {
        _usage(stderr);
        return 2;
    }
    store_rcu_thread_online();
    struct fsd_config *config = _bench_config();
    const struct store_schema *schema = config->views[0].schema;
    bench_schema = schema;
    double build[100], mem_per_value[100], mem_per_numeric[100];
    double one_b1[100], one_b100[100], many_b1[100], many_b100[100];
    printf("store_bench: %llu rows x %d features (8 double, 1 int64, 1 string), %u shards, "
           "%d runs\n",
           (unsigned long long)o.rows, NFEATURES, o.shards, o.runs);
    for (int run = 0; run < o.runs; run++) {
        struct store_table *table;
        uint64_t bytes;
        build[run] = _build(schema, &o, &table, &bytes);
        mem_per_value[run] = (double)bytes / ((double)o.rows * NFEATURES);
        mem_per_numeric[run] = (double)bytes / ((double)o.rows * 9);
        one_b1[run] = _lookups(table, &o, 1, 1, run);
        one_b100[run] = _lookups(table, &o, 100, 1, run);
        many_b1[run] = _lookups(table, &o, 1, o.threads, run);
        many_b100[run] = _lookups(table, &o, 100, o.threads, run);
        fprintf(stderr,
                "  run %d: build %.2fM rows/s, %.1f B/value, lookups/s per thread: "
                "b1 %.2fM b100 %.2fM (%d threads: b1 %.2fM b100 %.2fM)\n",
                run + 1, build[run] / 1e6, mem_per_value[run], one_b1[run] / 1e6,
                one_b100[run] / 1e6, o.threads, many_b1[run] / 1e6, many_b100[run] / 1e6);
        store_table_destroy(table);
    }
    printf("| figure (median of %d runs) | value |\n|---|---|\n", o.runs);
    printf("| build | %.2fM rows/s |\n", _median(build, o.runs) / 1e6);
    printf("| memory per feature value (all 10) | %.1f bytes |\n", _median(mem_per_value, o.runs));
    printf("| memory per numeric feature value (total / 9) | %.1f bytes |\n",
           _median(mem_per_numeric, o.runs));
    printf("| key lookups/s, 1 thread, batch 1 | %.2fM |\n", _median(one_b1, o.runs) / 1e6);
    printf("| key lookups/s, 1 thread, batch 100 | %.2fM |\n", _median(one_b100, o.runs) / 1e6);
    printf("| key lookups/s per thread, %d threads, batch 1 | %.2fM |\n", o.threads,
           _median(many_b1, o.runs) / 1e6);
    printf("| key lookups/s per thread, %d threads, batch 100 | %.2fM |\n", o.threads,
           _median(many_b100, o.runs) / 1e6);
    config_destroy(config);
    store_rcu_thread_offline();
    return 0;
}
