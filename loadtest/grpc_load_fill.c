/*
 * The benchmark's rows, and grpc_load --fill N for fsd: pushes entities 0..N-1 into the
 * benchmark view with PushRows, FILL_BATCH rows a call and FILL_INFLIGHT calls in flight, so
 * encoding the next batch overlaps the server applying the last one.
 */
#include "grpc_load_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/client.h"
#include "fsd/v1/feature_service.pb-c.h"
#include "common/clock.h"

/* ---- rows -------------------------------------------------------------------------------- */

const struct bench_feature load_features[BENCH_FEATURES] = BENCH_FEATURE_LIST;

void load_bench_row(uint64_t id, struct bench_row *row) {
    /* Doubles in [0, 1) with all 53 bits used, as model outputs and normalised features are:
     * short decimals like 12.5 would flatter every text encoding (Redis hashes store text). */
    for (int f = 0; f < BENCH_DOUBLE_FEATURES; f++) {
        uint64_t state = id * 8 + (uint64_t)f;
        row->d[f] = (double)(load_splitmix(&state) >> 11) * 0x1p-53;
    }
    row->count = (int64_t)(id % 1000);
    /* 10 to 16 bytes, varying with the id */
    snprintf(row->label, sizeof row->label, "lbl%0*" PRIu64, 7 + (int)(id % 7), id % 10000000);
}

/* ---- fill -------------------------------------------------------------------------------- */

struct fill_state {
    uint64_t acked, inserted, replaced, not_newer, deleted;
    uint64_t errors;
    size_t inflight;
    char error[512];
};

static void _on_fill_done(void *user, const struct client_result *r) {
    struct fill_state *f = user;
    f->inflight--;
    if (r->status != CLIENT_OK) {
        if (f->errors++ == 0) {
            snprintf(f->error, sizeof f->error, "PushRows: %s: %s", client_code_name(r->status),
                     r->message);
        }
        return;
    }
    Fsd__V1__PushRowsResponse *resp =
        fsd__v1__push_rows_response__unpack(NULL, r->response_len, r->response);
    if (resp == NULL) {
        f->errors++;
        return;
    }
    f->inserted += resp->inserted;
    f->replaced += resp->replaced;
    f->not_newer += resp->not_newer;
    f->deleted += resp->deleted;
    f->acked += resp->inserted + resp->replaced + resp->not_newer + resp->deleted;
    fsd__v1__push_rows_response__free_unpacked(resp, NULL);
}

/* The rows of entities [first, first + n), packed as a PushRowsRequest into *out. */
struct fill_batch {
    Fsd__V1__Row rows[FILL_BATCH];
    Fsd__V1__Row *row_ptrs[FILL_BATCH];
    Fsd__V1__KeyPart keys[FILL_BATCH];
    Fsd__V1__KeyPart *key_ptrs[FILL_BATCH];
    Fsd__V1__FeatureValue values[FILL_BATCH][BENCH_FEATURES];
    Fsd__V1__FeatureValue *value_ptrs[FILL_BATCH][BENCH_FEATURES];
    Fsd__V1__Value typed[FILL_BATCH][BENCH_FEATURES];
    struct bench_row bench[FILL_BATCH];
};

static size_t _encode_fill(struct fill_batch *b, const struct options *o, uint64_t first,
                           uint32_t n, int64_t now_us, uint8_t **out, size_t *cap) {
    for (uint32_t i = 0; i < n; i++) {
        uint64_t id = first + i;
        fsd__v1__key_part__init(&b->keys[i]);
        b->keys[i].name = (char *)o->key_name;
        b->keys[i].value_case = FSD__V1__KEY_PART__VALUE_INT64_VALUE;
        b->keys[i].int64_value = (int64_t)id;
        b->key_ptrs[i] = &b->keys[i];
        struct bench_row *row = &b->bench[i];
        load_bench_row(id, row);
        for (int f = 0; f < BENCH_FEATURES; f++) {
            Fsd__V1__Value *v = &b->typed[i][f];
            fsd__v1__value__init(v);
            if (f < BENCH_DOUBLE_FEATURES) {
                v->kind_case = FSD__V1__VALUE__KIND_DOUBLE_VALUE;
                v->double_value = row->d[f];
            } else if (f == BENCH_DOUBLE_FEATURES) {
                v->kind_case = FSD__V1__VALUE__KIND_INT64_VALUE;
                v->int64_value = row->count;
            } else {
                v->kind_case = FSD__V1__VALUE__KIND_STRING_VALUE;
                /* a length-carrying bytes field in the C structs (proto's fsd:c-bytes) */
                v->string_value.len = strlen(row->label);
                v->string_value.data = (uint8_t *)row->label;
            }
            fsd__v1__feature_value__init(&b->values[i][f]);
            b->values[i][f].name = (char *)load_features[f].name;
            b->values[i][f].value = v;
            b->value_ptrs[i][f] = &b->values[i][f];
        }
        fsd__v1__row__init(&b->rows[i]);
        b->rows[i].n_keys = 1;
        b->rows[i].keys = &b->key_ptrs[i];
        b->rows[i].event_timestamp_us = now_us;
        b->rows[i].n_values = BENCH_FEATURES;
        b->rows[i].values = b->value_ptrs[i];
        b->row_ptrs[i] = &b->rows[i];
    }
    Fsd__V1__PushRowsRequest req = FSD__V1__PUSH_ROWS_REQUEST__INIT;
    req.view = (char *)o->view;
    req.n_rows = n;
    req.rows = b->row_ptrs;
    size_t len = fsd__v1__push_rows_request__get_packed_size(&req);
    if (len > *cap) {
        uint8_t *grown = realloc(*out, len);
        if (grown == NULL) {
            return 0;
        }
        *out = grown;
        *cap = len;
    }
    return fsd__v1__push_rows_request__pack(&req, *out);
}

int load_fill_fsd(const struct options *o) {
    char err[512];
    struct client_conn *conn = client_conn_create(o->host, o->port, &o->client, err, sizeof err);
    if (conn == NULL) {
        fprintf(stderr, "grpc_load: %s\n", err);
        return 1;
    }
    struct fill_batch *batch = malloc(sizeof(*batch));
    uint8_t *msg = NULL;
    size_t cap = 0;
    struct fill_state f = {0};
    int64_t now_wall = clock_wall_us(); /* one event time: a refill is "not newer", not a rewrite */
    int64_t start = clock_mono_us();
    int64_t deadline = start + (int64_t)MAX_DURATION_S * 1000000;
    uint64_t next = 0;
    while (batch != NULL && (next < o->fill || f.inflight > 0) && f.errors == 0 &&
           client_conn_error(conn) == NULL && clock_mono_us() < deadline) {
        while (next < o->fill && f.inflight < FILL_INFLIGHT) {
            uint32_t n = o->fill - next < FILL_BATCH ? (uint32_t)(o->fill - next) : FILL_BATCH;
            size_t len = _encode_fill(batch, o, next, n, now_wall, &msg, &cap);
            struct client_request req = {.path = LOAD_SERVICE "PushRows", .msg = msg, .len = len};
            if (len == 0 || client_submit(conn, &req, _on_fill_done, &f) != 0) {
                break;
            }
            f.inflight++;
            next += n;
        }
        client_poll(conn, 100 * 1000);
    }
    double elapsed_s = (double)(clock_mono_us() - start) / 1e6;
    int rc = 0;
    if (batch == NULL) {
        fprintf(stderr, "grpc_load: out of memory\n");
        rc = 1;
    } else if (f.errors > 0 || f.acked != o->fill) {
        fprintf(stderr, "grpc_load: fill failed after %" PRIu64 " of %" PRIu64 " rows: %s\n",
                f.acked, o->fill,
                f.error[0]                ? f.error
                : client_conn_error(conn) ? client_conn_error(conn)
                                          : "time limit reached");
        rc = 1;
    } else {
        printf("filled %" PRIu64 " rows into %s in %.2f s: %.0f rows/s (inserted %" PRIu64
               ", replaced %" PRIu64 ", not newer %" PRIu64 ")\n",
               f.acked, o->view, elapsed_s, (double)f.acked / elapsed_s, f.inserted, f.replaced,
               f.not_newer);
    }
    free(batch);
    free(msg);
    client_conn_destroy(conn);
    return rc;
}
