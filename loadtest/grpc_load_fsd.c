/*
 * grpc_load's fsd targets: GetFeatures of o->batch random entities over the project's HTTP/2
 * gRPC client (client/), or the same lookups through Feast's GetOnlineFeatures (--target
 * feast). Responses are checked in full one call in VALIDATE_EVERY: the generator must not
 * spend more CPU decoding than the server spends answering.
 */
#include "grpc_load_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "feast/serving/ServingService.pb-c.h"
#include "fsd/v1/feature_service.pb-c.h"

/* ---- requests ---------------------------------------------------------------------------- */

size_t load_varint(uint8_t *p, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static size_t _bytes_field(uint8_t *p, uint32_t field, const void *data, size_t len) {
    size_t n = load_varint(p, (uint64_t)field << 3 | 2);
    n += load_varint(p + n, len);
    memcpy(p + n, data, len);
    return n + len;
}

static size_t _request_capacity(const struct options *o) {
    return 64 + strlen(o->key_name) + 13 * (size_t)o->batch + 2 * 16;
}

int load_encoder_init(struct request_encoder *e, const struct options *o) {
    memset(e, 0, sizeof(*e));
    e->o = o;
    e->feast = o->target == TARGET_FEAST;
    char refs[4096];
    if (o->features != NULL) {
        snprintf(refs, sizeof refs, "%s", o->features);
    } else {
        snprintf(refs, sizeof refs, "%s:*", o->view);
    }
    e->features = malloc(strlen(refs) * 2 + 64);
    e->ids = malloc(13 * (size_t)o->batch + 16); /* Feast: a Value per id */
    e->out = malloc(_request_capacity(o) + strlen(refs) * 2 + 64);
    if (e->features == NULL || e->ids == NULL || e->out == NULL) {
        return -1;
    }
    for (char *item = refs; *item;) {
        size_t len = strcspn(item, ",");
        e->features_len += _bytes_field(e->features + e->features_len, 1, item, len);
        item += len + (item[len] == ',');
    }
    if (e->feast) { /* Feast: the refs inside field 2, a FeatureList */
        uint8_t *list = malloc(e->features_len + 16);
        if (list == NULL) {
            return -1;
        }
        size_t n = _bytes_field(list, 2, e->features, e->features_len);
        memcpy(e->features, list, n);
        e->features_len = n;
        free(list);
    }
    return 0;
}

/* Both requests: the encoded refs, then field 3 holding `head` and the e->ids bytes. */
static size_t _assemble(struct request_encoder *e, const uint8_t *head, size_t head_len,
                        size_t ids_len) {
    uint8_t *p = e->out;
    memcpy(p, e->features, e->features_len);
    p += e->features_len;
    p += load_varint(p, 3 << 3 | 2);
    p += load_varint(p, head_len + ids_len);
    memcpy(p, head, head_len);
    p += head_len;
    memcpy(p, e->ids, ids_len);
    p += ids_len;
    return (size_t)(p - e->out);
}

/*
 * Feast's GetOnlineFeaturesRequest: 2 features (FeatureList), 3 entities, one map entry
 * { 1: key name, 2: RepeatedValue { 1: Value { 4: int64_val } ... } }. A Value of id x takes
 * 2 + 1 + varint(x) bytes; e->ids holds them back to back.
 */
static size_t _encode_feast(struct request_encoder *e, uint64_t *rng) {
    const struct options *o = e->o;
    size_t values_len = 0;
    for (uint32_t i = 0; i < o->batch; i++) {
        uint8_t *v = e->ids + values_len;
        size_t id_len = load_varint(v + 3, load_splitmix(rng) % o->entities);
        v[0] = 1 << 3 | 2;
        v[1] = (uint8_t)(1 + id_len);
        v[2] = 4 << 3; /* int64_val, a varint */
        values_len += 3 + id_len;
    }
    uint8_t head[64];
    size_t name_len = strlen(o->key_name);
    size_t entry = _bytes_field(head, 1, o->key_name, name_len);
    size_t repeated_head = load_varint(head + entry, 2 << 3 | 2);
    repeated_head += load_varint(head + entry + repeated_head, values_len);
    entry += repeated_head;
    return _assemble(e, head, entry, values_len);
}

void load_encoder_deinit(struct request_encoder *e) {
    free(e->features);
    free(e->ids);
    free(e->out);
}

size_t load_encode_request(struct request_encoder *e, uint64_t *rng) {
    if (e->feast) {
        return _encode_feast(e, rng);
    }
    const struct options *o = e->o;
    size_t ids_len = 0;
    for (uint32_t i = 0; i < o->batch; i++) {
        ids_len += load_varint(e->ids + ids_len, load_splitmix(rng) % o->entities);
    }
    uint8_t column[64];
    size_t name_len = strlen(o->key_name);
    size_t column_head = _bytes_field(column, 1, o->key_name, name_len);
    column_head += load_varint(column + column_head, 2 << 3 | 2);
    column_head += load_varint(column + column_head, ids_len);
    return _assemble(e, column, column_head, ids_len);
}

/* ---- connections ------------------------------------------------------------------------- */

struct fsd_conn {
    struct client_conn *conn;
    struct request_encoder enc;
    const struct options *o;
    uint32_t columns;
    uint64_t answered;
    load_done_fn done;
    void *user;
    char error[512];
};

/* NULL if a response has the shape asked for and a row for every entity, else why not: a
 * server that answers OK with the wrong shape is broken, and a lookup of entities never
 * filled measures nothing (the Redis targets fail on a nil the same way). */
static const char *_check_response(const Fsd__V1__GetFeaturesResponse *resp, uint32_t batch,
                                   uint32_t columns) {
    const char *why = NULL;
    if (resp == NULL || resp->entities != batch || (columns > 0 && resp->n_columns != columns)) {
        why = "GetFeatures answered OK with a response of the wrong shape";
    } else {
        for (size_t v = 0; v < resp->n_views && why == NULL; v++) {
            for (size_t i = 0; i < resp->views[v]->n_staleness_ms; i++) {
                if (resp->views[v]->staleness_ms[i] < 0) {
                    why = "GetFeatures found no row for an entity: the view is missing rows "
                          "(was it filled with grpc_load --fill N, N >= --entities?)";
                    break;
                }
            }
        }
    }
    return why;
}

/* The same for Feast's response: the key's vector, then one per feature, all PRESENT. Sets
 * *columns to the features found. */
static const char *_check_feast(const uint8_t *data, size_t len, uint32_t batch,
                                uint32_t *columns) {
    Feast__Serving__GetOnlineFeaturesResponse *resp =
        feast__serving__get_online_features_response__unpack(NULL, len, data);
    const char *why = NULL;
    if (resp == NULL || resp->n_results < 2 || (*columns > 0 && resp->n_results != *columns + 1)) {
        why = "GetOnlineFeatures answered OK with a response of the wrong shape";
    }
    for (size_t r = 0; why == NULL && r < resp->n_results; r++) {
        const Feast__Serving__GetOnlineFeaturesResponse__FeatureVector *v = resp->results[r];
        if (v->n_values != batch || v->n_statuses != batch) {
            why = "GetOnlineFeatures answered OK with a vector of the wrong length";
        }
        for (size_t i = 0; why == NULL && i < v->n_statuses; i++) {
            if (v->statuses[i] == FEAST__SERVING__FIELD_STATUS__NOT_FOUND) {
                why = "GetOnlineFeatures found no row for an entity: the view is missing rows "
                      "(was it filled with grpc_load --fill N, N >= --entities?)";
            }
        }
    }
    if (why == NULL) {
        *columns = (uint32_t)resp->n_results - 1;
    }
    if (resp != NULL) {
        feast__serving__get_online_features_response__free_unpacked(resp, NULL);
    }
    return why;
}

static const char *_check_answer(const struct fsd_conn *c, const struct client_result *r) {
    if (c->enc.feast) {
        uint32_t columns = c->columns;
        return _check_feast(r->response, r->response_len, c->o->batch, &columns);
    }
    Fsd__V1__GetFeaturesResponse *resp =
        fsd__v1__get_features_response__unpack(NULL, r->response_len, r->response);
    const char *why = _check_response(resp, c->o->batch, c->columns);
    if (resp != NULL) {
        fsd__v1__get_features_response__free_unpacked(resp, NULL);
    }
    return why;
}

/* The method a target calls. */
static const char *_path(const struct options *o) {
    return o->target == TARGET_FEAST ? "/feast.serving.ServingService/GetOnlineFeatures"
                                     : LOAD_SERVICE "GetFeatures";
}

static void _on_done(void *user, const struct client_result *r) {
    struct fsd_conn *c = user;
    struct load_outcome out = {
        .start_us = r->start_us,
        .submit_us = r->submit_us,
        .done_us = r->start_us + r->latency_us,
    };
    if (r->status != CLIENT_OK) {
        snprintf(c->error, sizeof c->error, "%s: %s: %s", _path(c->o), client_code_name(r->status),
                 r->message);
        out.error = c->error;
    } else if ((c->answered++ % VALIDATE_EVERY) == 0) {
        out.error = _check_answer(c, r);
    }
    c->done(c->user, &out);
}

static void *_connect(const struct options *o, uint32_t columns, load_done_fn done, void *user,
                      char *err, size_t err_len) {
    struct fsd_conn *c = calloc(1, sizeof(*c));
    if (c == NULL || load_encoder_init(&c->enc, o) != 0) {
        snprintf(err, err_len, "out of memory");
        if (c != NULL) {
            load_encoder_deinit(&c->enc);
        }
        free(c);
        return NULL;
    }
    c->o = o;
    c->columns = columns;
    c->done = done;
    c->user = user;
    c->conn = client_conn_create(o->host, o->port, &o->client, err, err_len);
    if (c->conn == NULL) {
        load_encoder_deinit(&c->enc);
        free(c);
        return NULL;
    }
    return c;
}

static int _submit(void *conn, uint64_t *rng, int64_t start_us) {
    struct fsd_conn *c = conn;
    size_t len = load_encode_request(&c->enc, rng);
    struct client_request req = {
        .path = _path(c->o),
        .msg = c->enc.out,
        .len = len,
        .timeout_us = (int64_t)c->o->timeout_ms * 1000,
        .start_us = start_us,
    };
    return client_submit(c->conn, &req, _on_done, c);
}

static int _poll_many(void *const *conns, size_t n, int64_t timeout_us) {
    struct client_conn *raw[MAX_CONNECTIONS];
    for (size_t i = 0; i < n; i++) {
        raw[i] = ((struct fsd_conn *)conns[i])->conn;
    }
    return client_poll_many(raw, n, timeout_us);
}

static size_t _inflight(const void *conn) {
    return client_inflight(((const struct fsd_conn *)conn)->conn);
}

static const char *_conn_error(const void *conn) {
    return client_conn_error(((const struct fsd_conn *)conn)->conn);
}

static void _disconnect(void *conn) {
    struct fsd_conn *c = conn;
    if (c != NULL) {
        client_conn_destroy(c->conn);
        load_encoder_deinit(&c->enc);
        free(c);
    }
}

/* ---- probe ------------------------------------------------------------------------------- */

/* Fails early with the server's own words (unknown view, batch over max_batch) and learns how
 * many columns a response has. */
static int _probe(const struct options *o, uint32_t *columns) {
    char err[512];
    struct client_conn *conn = client_conn_create(o->host, o->port, &o->client, err, sizeof err);
    if (conn == NULL) {
        fprintf(stderr, "grpc_load: %s\n", err);
        return -1;
    }
    struct request_encoder enc;
    uint64_t rng = o->seed;
    int rc = -1;
    if (load_encoder_init(&enc, o) == 0) {
        size_t len = load_encode_request(&enc, &rng);
        struct client_request req = {
            .path = _path(o), .msg = enc.out, .len = len, .timeout_us = 10 * 1000000};
        struct client_response resp;
        client_call(conn, &req, &resp);
        Fsd__V1__GetFeaturesResponse *r =
            resp.status == CLIENT_OK && !enc.feast
                ? fsd__v1__get_features_response__unpack(NULL, resp.len, resp.data)
                : NULL;
        const char *why = NULL;
        if (resp.status != CLIENT_OK) {
            fprintf(stderr, "grpc_load: %s: %s: %s\n", _path(o), client_code_name(resp.status),
                    resp.message);
        } else if (enc.feast) {
            *columns = 0;
            why = _check_feast(resp.data, resp.len, o->batch, columns);
            if (why != NULL) {
                fprintf(stderr, "grpc_load: %s\n", why);
            } else {
                rc = 0;
            }
        } else if (_check_response(r, o->batch, 0) != NULL) {
            fprintf(stderr, "grpc_load: %s\n", _check_response(r, o->batch, 0));
        } else {
            *columns = (uint32_t)r->n_columns;
            rc = 0;
        }
        if (r != NULL) {
            fsd__v1__get_features_response__free_unpacked(r, NULL);
        }
        client_response_deinit(&resp);
    }
    load_encoder_deinit(&enc);
    client_conn_destroy(conn);
    return rc;
}

const struct load_target load_target_feast = {
    .name = "feast",
    .probe = _probe,
    .connect = _connect,
    .submit = _submit,
    .poll_many = _poll_many,
    .inflight = _inflight,
    .conn_error = _conn_error,
    .disconnect = _disconnect,
    .fill = load_fill_fsd,
};

const struct load_target load_target_fsd = {
    .name = "fsd",
    .probe = _probe,
    .connect = _connect,
    .submit = _submit,
    .poll_many = _poll_many,
    .inflight = _inflight,
    .conn_error = _conn_error,
    .disconnect = _disconnect,
    .fill = load_fill_fsd,
};
