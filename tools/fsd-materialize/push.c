/*
 * The local table to fsd: one PushSnapshot call, every row in batches, then the answer.
 *
 *   foreach row ──fm_encoder_add──> batch full? ──take──> client_stream_send ──> progress
 *   end ──take (the rest)──> client_stream_send ──> client_stream_finish ──> PushSnapshotResponse
 *
 * At most two messages wait in the stream's queue, so memory stays at the local table plus a
 * few messages however large the snapshot. Any failure cancels the call: fsd then drops its
 * staging table and the live snapshot stays as it was.
 */
#include "materialize.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "client/client.h"
#include "fsd/v1/feature_service.pb-c.h"
#include "store/table.h"

#define FM_PUSH_PATH    "/fsd.v1.FeatureService/PushSnapshot"
#define FM_PUSH_POLL_US 100000

struct push {
    struct fm_encoder *enc;
    struct client_stream *stream;
    struct fm_progress *progress;
    uint64_t max_message_bytes;
    uint64_t max_queued_bytes; /* a message waiting, another being sent: then wait */
    uint64_t rows_sent;        /* in messages handed to the stream */
    bool failed;               /* stop: the call ended or a row cannot be sent */
    char *err;
    size_t err_len;
};

/* Sends the batch being built. */
static int _send(struct push *p) {
    size_t rows = fm_encoder_rows(p->enc);
    size_t len;
    const uint8_t *msg = fm_encoder_take(p->enc, &len);
    if (msg == NULL) {
        snprintf(p->err, p->err_len, "out of memory encoding a message");
        return -1;
    }
    if (client_stream_send(p->stream, msg, len) != 0) {
        if (!client_stream_ended(p->stream)) {
            snprintf(p->err, p->err_len, "out of memory queueing a message");
        }
        return -1; /* else the call ended: client_stream_finish() says why */
    }
    p->rows_sent += rows;
    fm_progress_update(p->progress, p->rows_sent);
    /* Wait for fsd to take more; the progress keeps ticking (rows/s falls) while it stalls. */
    while (client_stream_queued(p->stream) > p->max_queued_bytes) {
        /* Send what the windows allow without waiting; wait only if that was not enough. */
        if (!client_stream_poll(p->stream, 0) ||
            (client_stream_queued(p->stream) > p->max_queued_bytes &&
             !client_stream_poll(p->stream, FM_PUSH_POLL_US))) {
            return -1;
        }
        fm_progress_update(p->progress, p->rows_sent);
    }
    return 0;
}

static void _visit(const struct store_row *row, void *arg) {
    struct push *p = arg;
    if (p->failed) {
        return; /* the table has no early exit; skipping the rest is cheap */
    }
    enum fm_add added = fm_encoder_add(p->enc, row);
    if (added == FM_FULL) {
        if (_send(p) != 0) {
            p->failed = true;
            return;
        }
        added = fm_encoder_add(p->enc, row);
    }
    if (added == FM_TOO_BIG) {
        snprintf(p->err, p->err_len,
                 "a row is larger than a message may be (--max-message-bytes %" PRIu64 ")",
                 p->max_message_bytes);
        p->failed = true;
    } else if (added != FM_ADDED) {
        snprintf(p->err, p->err_len, "out of memory encoding a row");
        p->failed = true;
    }
}

int fm_push(const struct fm_options *options, const struct store_schema *schema,
            const struct fm_local *local, struct fm_progress *progress, struct fm_result *result,
            char *err, size_t err_len) {
    *result = (struct fm_result){0};
    err[0] = '\0';
    struct push p = {
        .enc = fm_encoder_create(schema, options->batch_rows, options->max_message_bytes),
        .progress = progress,
        .max_message_bytes = options->max_message_bytes,
        .max_queued_bytes = options->max_message_bytes,
        .err = err,
        .err_len = err_len,
    };
    if (p.enc == NULL) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    if (options->stream_position != NULL) {
        fm_encoder_set_stream_position(p.enc, options->stream_position);
    }
    p.stream = client_stream_open(options->addr, FM_PUSH_PATH, options->timeout_ms * 1000,
                                  &options->client, err, err_len);
    if (p.stream == NULL) {
        fm_encoder_destroy(p.enc);
        return -1;
    }
    store_table_foreach(local->table, _visit, &p);
    /* The rest; also the one message naming the view when the table is empty. */
    if (!p.failed && (fm_encoder_rows(p.enc) > 0 || p.rows_sent == 0) && _send(&p) != 0) {
        p.failed = true;
    }
    fm_encoder_destroy(p.enc);
    if (p.failed && !client_stream_ended(p.stream)) {
        /* Our own failure, rows unsent: reset the call so fsd drops what it has. Never
         * finish it, which would commit part of the snapshot. */
        client_stream_cancel(p.stream);
        return -1;
    }
    if (!p.failed) {
        fm_progress_finish(progress);
    }
    struct client_response resp;
    int status = client_stream_finish(p.stream, &resp);
    int rc = -1;
    if (status != CLIENT_OK) {
        snprintf(err, err_len, "PushSnapshot: %s: %s", client_code_name(status),
                 resp.message != NULL && resp.message[0] ? resp.message : "(no message)");
    } else {
        Fsd__V1__PushSnapshotResponse *r =
            fsd__v1__push_snapshot_response__unpack(NULL, resp.len, resp.data);
        if (r == NULL) {
            snprintf(err, err_len, "PushSnapshot: the response is not a PushSnapshotResponse");
        } else {
            *result =
                (struct fm_result){r->version, p.rows_sent, r->rows_kept, r->updates_replayed};
            if (r->rows_received != p.rows_sent) {
                snprintf(err, err_len,
                         "PushSnapshot: fsd received %" PRIu64 " rows, %" PRIu64 " were sent",
                         r->rows_received, p.rows_sent);
            } else {
                rc = 0;
            }
            fsd__v1__push_snapshot_response__free_unpacked(r, NULL);
        }
    }
    client_response_deinit(&resp);
    return rc;
}
