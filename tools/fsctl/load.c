/*
 * fsctl load --view V [--path P] [--stream-position ID] [--wait S]: asks fsd to load the
 * view's snapshot now
 * (LoadSnapshot answers at once) and follows the load through ListViews until its result is
 * in, so a person sees "loaded version 7, 1,000,000 rows" or the reason it failed.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fsctl_internal.h"

#define LOAD_DEFAULT_WAIT_S 600
#define LOAD_POLL_MS        100

struct load_state {
    uint64_t version;
    uint64_t completed;
    uint64_t failed;
    bool loading;
    bool found;
};

static struct load_state _state(struct fsctl *ctx, const char *view, Fsd__V1__ViewInfo *copy,
                                char *error, size_t error_len) {
    struct load_state st = {0};
    Fsd__V1__ListViewsResponse *resp = fsctl_list_views(ctx);
    if (resp == NULL) {
        return st;
    }
    for (size_t i = 0; i < resp->n_views; i++) {
        const Fsd__V1__ViewInfo *v = resp->views[i];
        if (strcmp(v->name, view) != 0) {
            continue;
        }
        st = (struct load_state){v->snapshot_version, v->loads_completed, v->loads_failed,
                                 v->loading, true};
        if (copy != NULL) {
            copy->rows = v->rows;
            copy->rows_read = v->rows_read;
            copy->rows_kept = v->rows_kept;
            copy->rows_skipped = v->rows_skipped;
            copy->load_duration_us = v->load_duration_us;
        }
        snprintf(error, error_len, "%s", v->last_error != NULL ? v->last_error : "");
    }
    fsd__v1__list_views_response__free_unpacked(resp, NULL);
    return st;
}

int fsctl_cmd_load(struct fsctl *ctx, int argc, char **argv) {
    static const struct option options[] = {
        {"view", required_argument, NULL, 'v'},
        {"path", required_argument, NULL, 'p'},
        {"wait", required_argument, NULL, 'w'},
        {"addr", required_argument, NULL, 'a'},
        {"stream-position", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *view = NULL, *path = NULL, *stream_position = NULL;
    long wait_s = LOAD_DEFAULT_WAIT_S;
    int opt;
    while ((opt = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
        switch (opt) {
        case 'v':
            view = optarg;
            break;
        case 'p':
            path = optarg;
            break;
        case 's':
            stream_position = optarg;
            break;
        case 'w': {
            char *end;
            wait_s = strtol(optarg, &end, 10);
            if (*end != '\0' || wait_s < 0 || wait_s > 86400) {
                return fsctl_usage_error("load", "--wait takes seconds, 0..86400");
            }
            break;
        }
        case 'a':
            ctx->addr = optarg;
            break;
        case 'h':
            printf("usage: fsctl load --view V [--path P] [--stream-position ID] [--wait S]\n"
                   "  loads the view's snapshot now, from its configured source or from P\n"
                   "  (under the view's source.allowed_paths), and waits up to S seconds\n"
                   "  (default %d; 0 = do not wait) for the result;\n"
                   "  ID: the stream entry ID the data covers, recorded with the snapshot\n",
                   LOAD_DEFAULT_WAIT_S);
            return FSCTL_OK;
        default:
            return fsctl_usage_error("load", "invalid option");
        }
    }
    if (view == NULL || optind < argc) {
        return fsctl_usage_error("load", "give --view V (and optionally --path P)");
    }
    char error[1024];
    struct load_state before = _state(ctx, view, NULL, error, sizeof error);
    if (!before.found) {
        fprintf(stderr, "fsctl: unknown view \"%s\"\n", view);
        return FSCTL_FAILED;
    }
    Fsd__V1__LoadSnapshotRequest req = FSD__V1__LOAD_SNAPSHOT_REQUEST__INIT;
    req.view = (char *)view;
    req.path = (char *)(path != NULL ? path : "");
    req.stream_position = (char *)(stream_position != NULL ? stream_position : "");
    uint8_t buf[4096];
    size_t len = fsd__v1__load_snapshot_request__get_packed_size(&req);
    if (len > sizeof buf) {
        return fsctl_usage_error("load", "--path or --stream-position is too long");
    }
    fsd__v1__load_snapshot_request__pack(&req, buf);
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    int rc = fsctl_call(ctx, "/fsd.v1.FeatureService/LoadSnapshot", buf, len, &resp, &resp_len);
    if (rc != FSCTL_OK) {
        free(resp);
        return rc;
    }
    Fsd__V1__LoadSnapshotResponse *answer =
        fsd__v1__load_snapshot_response__unpack(NULL, resp_len, resp);
    free(resp);
    bool joined = answer != NULL && answer->already_queued;
    fsd__v1__load_snapshot_response__free_unpacked(answer, NULL);
    printf("load of %s %s (serving version %llu)\n", view,
           joined ? "already queued: waiting for it" : "queued",
           (unsigned long long)before.version);
    for (long waited_ms = 0; waited_ms < wait_s * 1000; waited_ms += LOAD_POLL_MS) {
        nanosleep(&(struct timespec){0, LOAD_POLL_MS * 1000000L}, NULL);
        Fsd__V1__ViewInfo info = FSD__V1__VIEW_INFO__INIT;
        struct load_state now = _state(ctx, view, &info, error, sizeof error);
        if (!now.found) {
            return FSCTL_FAILED;
        }
        if (now.loading) {
            continue;
        }
        if (now.completed > before.completed) {
            printf("loaded %s: version %llu, %llu rows (read %llu, kept %llu, skipped %llu) in "
                   "%.1f s\n",
                   view, (unsigned long long)now.version, (unsigned long long)info.rows,
                   (unsigned long long)info.rows_read, (unsigned long long)info.rows_kept,
                   (unsigned long long)info.rows_skipped, (double)info.load_duration_us / 1e6);
            return FSCTL_OK;
        }
        if (now.failed > before.failed) {
            fprintf(stderr, "fsctl: load of %s failed; version %llu keeps serving: %s\n", view,
                    (unsigned long long)now.version, error);
            return FSCTL_FAILED;
        }
    }
    if (wait_s > 0) {
        fprintf(stderr, "fsctl: load of %s still running after %ld s; see fsctl views\n", view,
                wait_s);
        return FSCTL_FAILED;
    }
    return FSCTL_OK;
}
