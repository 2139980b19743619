/*
 * The gRPC client library against a real fsd (started here with fork/exec on a free port)
 * and against fake servers made of a bare listening socket: unary calls, errors with their
 * decoded messages, many pipelined calls, a response over 1 MB, the response size limit, a
 * deadline the server never answers, a server that hangs up, connection refused.
 *
 *   test_client FSD_BINARY
 */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "client/client.h"
#include "fsd/v1/feature_service.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "common/clock.h"

#define SERVICE "/fsd.v1.FeatureService/"

static const char *fsd_binary;
static pid_t fsd_pid = -1;
static uint16_t fsd_port;
static char config_path[] = "/tmp/fsd-client-test-XXXXXX.yaml";

static const char config_yaml[] = "server:\n"
                                  "  grpc_port: 0\n"
                                  "  stats_port: 0\n"
                                  "  workers: 2\n"
                                  "views:\n"
                                  "  - name: users\n"
                                  "    join_keys: [{name: user_id, type: int64}]\n"
                                  "    ttl: 1h\n"
                                  "    features:\n"
                                  "      - {name: age, type: int32, default: 0}\n"
                                  "      - {name: blob, type: string}\n";

/* ---- starting fsd ------------------------------------------------------------------------ */

/* Starts fsd on `config_yaml` and reads its stderr until "fsd ready ... grpc=HOST:PORT". */
static int _start_fsd(void **state) {
    (void)state;
    int fd = mkstemps(config_path, 5);
    if (fd < 0 || write(fd, config_yaml, sizeof config_yaml - 1) != sizeof config_yaml - 1) {
        return -1;
    }
    close(fd);
    int pipefd[2];
    if (pipe(pipefd) != 0) {
        return -1;
    }
    fsd_pid = fork();
    if (fsd_pid == 0) {
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        close(pipefd[1]);
        execl(fsd_binary, fsd_binary, "--config", config_path, (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    FILE *log = fdopen(pipefd[0], "r");
    char line[2048];
    alarm(20); /* a daemon that never gets ready fails the test instead of hanging it */
    while (fsd_port == 0 && fgets(line, sizeof line, log) != NULL) {
        fputs(line, stderr);
        const char *grpc = strstr(line, " grpc=");
        if (strstr(line, "msg=\"fsd ready\"") != NULL && grpc != NULL) {
            const char *colon = strchr(grpc, ':');
            fsd_port = colon ? (uint16_t)atoi(colon + 1) : 0;
        }
    }
    alarm(0);
    /* Keep draining its log in the background so the daemon never blocks on a full pipe. */
    if (fork() == 0) {
        while (fgets(line, sizeof line, log) != NULL) {
            fputs(line, stderr);
        }
        _exit(0);
    }
    fclose(log);
    return fsd_port != 0 ? 0 : -1;
}

static int _stop_fsd(void **state) {
    (void)state;
    unlink(config_path);
    if (fsd_pid <= 0) {
        return 0;
    }
    kill(fsd_pid, SIGTERM);
    int status = 0;
    waitpid(fsd_pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static struct client_conn *_connect(const struct client_options *options) {
    char err[256];
    struct client_conn *conn = client_conn_create("127.0.0.1", fsd_port, options, err, sizeof err);
    if (conn == NULL) {
        fail_msg("connect: %s", err);
    }
    return conn;
}

/* A listening socket on a free loopback port that never accepts (the kernel still completes
 * handshakes into its backlog): a server that never answers. */
static int _silent_server(uint16_t *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    *port = ntohs(addr.sin_port);
    return fd;
}

/* ---- requests ---------------------------------------------------------------------------- */

static uint8_t *_pack_get(const char *feature, const int64_t *ids, size_t n, size_t *len) {
    Fsd__V1__KeyColumn column = FSD__V1__KEY_COLUMN__INIT;
    column.name = "user_id";
    column.n_int64_values = n;
    column.int64_values = (int64_t *)ids;
    Fsd__V1__KeyColumn *columns[] = {&column};
    char *features[] = {(char *)feature};
    Fsd__V1__GetFeaturesRequest req = FSD__V1__GET_FEATURES_REQUEST__INIT;
    req.n_features = 1;
    req.features = features;
    req.n_keys = 1;
    req.keys = columns;
    *len = fsd__v1__get_features_request__get_packed_size(&req);
    uint8_t *out = malloc(*len + 1);
    fsd__v1__get_features_request__pack(&req, out);
    return out;
}

/* Pushes users 0..n-1, each with a `blob_bytes` string, newer than any earlier push. */
static void _push_users(struct client_conn *conn, size_t n, size_t blob_bytes) {
    static int64_t pushes;
    int64_t event_ts_us = 1000000 * (int64_t)time(NULL) + ++pushes;
    Fsd__V1__Row *rows = calloc(n, sizeof(*rows));
    Fsd__V1__Row **row_ptrs = calloc(n, sizeof(*row_ptrs));
    Fsd__V1__KeyPart *keys = calloc(n, sizeof(*keys));
    Fsd__V1__KeyPart **key_ptrs = calloc(n, sizeof(*key_ptrs));
    Fsd__V1__FeatureValue *values = calloc(2 * n, sizeof(*values));
    Fsd__V1__FeatureValue **value_ptrs = calloc(2 * n, sizeof(*value_ptrs));
    Fsd__V1__Value *typed = calloc(2 * n, sizeof(*typed));
    char *blob = malloc(blob_bytes + 1);
    memset(blob, 'x', blob_bytes);
    blob[blob_bytes] = '\0';
    for (size_t i = 0; i < n; i++) {
        fsd__v1__key_part__init(&keys[i]);
        keys[i].name = "user_id";
        keys[i].value_case = FSD__V1__KEY_PART__VALUE_INT64_VALUE;
        keys[i].int64_value = (int64_t)i;
        key_ptrs[i] = &keys[i];
        fsd__v1__value__init(&typed[2 * i]);
        typed[2 * i].kind_case = FSD__V1__VALUE__KIND_INT32_VALUE;
        typed[2 * i].int32_value = (int32_t)i;
        fsd__v1__value__init(&typed[2 * i + 1]);
        typed[2 * i + 1].kind_case = FSD__V1__VALUE__KIND_STRING_VALUE;
        typed[2 * i + 1].string_value.len = blob_bytes; /* bytes in C: proto's fsd:c-bytes */
        typed[2 * i + 1].string_value.data = (uint8_t *)blob;
        for (int f = 0; f < 2; f++) {
            fsd__v1__feature_value__init(&values[2 * i + f]);
            values[2 * i + f].name = f ? "blob" : "age";
            values[2 * i + f].value = &typed[2 * i + f];
            value_ptrs[2 * i + f] = &values[2 * i + f];
        }
        fsd__v1__row__init(&rows[i]);
        rows[i].n_keys = 1;
        rows[i].keys = &key_ptrs[i];
        rows[i].event_timestamp_us = event_ts_us;
        rows[i].n_values = 2;
        rows[i].values = &value_ptrs[2 * i];
        row_ptrs[i] = &rows[i];
    }
    Fsd__V1__PushRowsRequest req = FSD__V1__PUSH_ROWS_REQUEST__INIT;
    req.view = "users";
    req.n_rows = n;
    req.rows = row_ptrs;
    size_t len = fsd__v1__push_rows_request__get_packed_size(&req);
    uint8_t *msg = malloc(len);
    fsd__v1__push_rows_request__pack(&req, msg);
    struct client_request call = {
        .path = SERVICE "PushRows", .msg = msg, .len = len, .timeout_us = 10000000};
    struct client_response resp;
    assert_int_equal(client_call(conn, &call, &resp), CLIENT_OK);
    Fsd__V1__PushRowsResponse *pushed =
        fsd__v1__push_rows_response__unpack(NULL, resp.len, resp.data);
    assert_non_null(pushed);
    assert_int_equal(pushed->inserted + pushed->replaced, n);
    fsd__v1__push_rows_response__free_unpacked(pushed, NULL);
    client_response_deinit(&resp);
    free(msg);
    free(blob);
    free(typed);
    free(value_ptrs);
    free(values);
    free(key_ptrs);
    free(keys);
    free(row_ptrs);
    free(rows);
}

/* ---- tests: pure helpers ----------------------------------------------------------------- */

static void test_percent_decode_keeps_malformed_escapes(void **state) {
    (void)state;
    char out[64];
    const char *in = "a%20b%zz%4%C3%B1%25";
    assert_int_equal(client_percent_decode(in, strlen(in), out, sizeof out), 11);
    assert_string_equal(out, "a b%zz%4\xC3\xB1%");
    /* cut to the buffer, still terminated */
    assert_int_equal(client_percent_decode("abcdef", 6, out, 4), 3);
    assert_string_equal(out, "abc");
}

static void test_parse_addr(void **state) {
    (void)state;
    char host[64], err[128];
    uint16_t port;
    assert_int_equal(client_parse_addr("127.0.0.1:6566", host, sizeof host, &port, err, 128), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 6566);
    assert_int_equal(client_parse_addr("[::1]:80", host, sizeof host, &port, err, 128), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 80);
    assert_int_equal(client_parse_addr("localhost", host, sizeof host, &port, err, 128), -1);
    assert_non_null(strstr(err, "expected HOST:PORT"));
    assert_int_equal(client_parse_addr("h:70000", host, sizeof host, &port, err, 128), -1);
    assert_int_equal(client_parse_addr("h:+1", host, sizeof host, &port, err, 128), -1);
    assert_int_equal(client_parse_addr(":1", host, sizeof host, &port, err, 128), -1);
}

static void test_code_names(void **state) {
    (void)state;
    assert_string_equal(client_code_name(CLIENT_OK), "OK");
    assert_string_equal(client_code_name(CLIENT_UNAVAILABLE), "UNAVAILABLE");
    assert_string_equal(client_code_name(CLIENT_UNAUTHENTICATED), "UNAUTHENTICATED");
    assert_string_equal(client_code_name(17), "INVALID_CODE");
    assert_string_equal(client_code_name(-1), "INVALID_CODE");
}

/* ---- tests: fake servers ----------------------------------------------------------------- */

static void test_connection_refused(void **state) {
    (void)state;
    uint16_t port;
    int fd = _silent_server(&port);
    close(fd); /* nothing listens there now */
    char err[256], want[256];
    assert_null(client_conn_create("127.0.0.1", port, NULL, err, sizeof err));
    snprintf(want, sizeof want, "cannot connect to 127.0.0.1:%u: Connection refused", port);
    assert_string_equal(err, want);
}

static void test_deadline_of_a_server_that_never_answers(void **state) {
    (void)state;
    uint16_t port;
    int fd = _silent_server(&port);
    char err[256];
    struct client_conn *conn = client_conn_create("127.0.0.1", port, NULL, err, sizeof err);
    assert_non_null(conn);
    struct client_request req = {.path = SERVICE "ListViews", .timeout_us = 200000};
    struct client_response resp;
    int64_t start = clock_mono_us();
    assert_int_equal(client_call(conn, &req, &resp), CLIENT_DEADLINE_EXCEEDED);
    int64_t waited = clock_mono_us() - start;
    assert_true(waited >= 200000);
    assert_true(waited < 2000000);
    assert_true(resp.latency_us >= 200000);
    assert_non_null(strstr(resp.message, "deadline of 200000 us exceeded"));
    client_response_deinit(&resp);
    assert_int_equal(client_inflight(conn), 0);
    client_conn_destroy(conn);
    close(fd);
}

static void test_server_that_hangs_up(void **state) {
    (void)state;
    uint16_t port;
    int fd = _silent_server(&port);
    char err[256];
    struct client_conn *conn = client_conn_create("127.0.0.1", port, NULL, err, sizeof err);
    assert_non_null(conn);
    int accepted = accept(fd, NULL, NULL);
    assert_true(accepted >= 0);
    close(accepted);
    struct client_request req = {.path = SERVICE "ListViews", .timeout_us = 5000000};
    struct client_response resp;
    assert_int_equal(client_call(conn, &req, &resp), CLIENT_UNAVAILABLE);
    assert_true(strstr(resp.message, "closed the connection") != NULL ||
                strstr(resp.message, "lost") != NULL);
    client_response_deinit(&resp);
    assert_non_null(client_conn_error(conn));
    /* a broken connection takes no more calls */
    assert_int_equal(client_submit(conn, &req, NULL, NULL), -1);
    assert_int_equal(client_call(conn, &req, &resp), CLIENT_UNAVAILABLE);
    client_response_deinit(&resp);
    client_conn_destroy(conn);
    close(fd);
}

/* ---- tests: a real fsd ------------------------------------------------------------------- */

static void test_unary_list_views_and_health(void **state) {
    (void)state;
    struct client_conn *conn = _connect(NULL);
    struct client_request req = {.path = SERVICE "ListViews", .timeout_us = 5000000};
    struct client_response resp;
    assert_int_equal(client_call(conn, &req, &resp), CLIENT_OK);
    assert_string_equal(resp.message, "");
    Fsd__V1__ListViewsResponse *views =
        fsd__v1__list_views_response__unpack(NULL, resp.len, resp.data);
    assert_non_null(views);
    assert_int_equal(views->n_views, 1);
    assert_string_equal(views->views[0]->name, "users");
    fsd__v1__list_views_response__free_unpacked(views, NULL);
    assert_true(resp.latency_us > 0);
    client_response_deinit(&resp);

    /* HealthCheckRequest{service: ""} is the empty message */
    req = (struct client_request){.path = "/grpc.health.v1.Health/Check"};
    assert_int_equal(client_call(conn, &req, &resp), CLIENT_OK);
    Grpc__Health__V1__HealthCheckResponse *health =
        grpc__health__v1__health_check_response__unpack(NULL, resp.len, resp.data);
    assert_non_null(health);
    assert_int_equal(health->status,
                     GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    grpc__health__v1__health_check_response__free_unpacked(health, NULL);
    client_response_deinit(&resp);
    client_conn_destroy(conn);
}

static void test_errors_carry_code_and_decoded_message(void **state) {
    (void)state;
    struct client_conn *conn = _connect(NULL);
    int64_t id = 1;
    size_t len;
    uint8_t *msg = _pack_get("users:\xC3\xB1o%", &id, 1, &len);
    struct client_request req = {.path = SERVICE "GetFeatures", .msg = msg, .len = len};
    struct client_response resp;
    assert_int_equal(client_call(conn, &req, &resp), CLIENT_INVALID_ARGUMENT);
    /* the server percent-encodes the UTF-8 and the '%'; we get the original text back */
    assert_string_equal(resp.message, "view users has no feature \"\xC3\xB1o%\"");
    assert_null(resp.data);
    client_response_deinit(&resp);
    free(msg);

    req = (struct client_request){.path = SERVICE "NoSuchMethod"};
    assert_int_equal(client_call(conn, &req, &resp), CLIENT_UNIMPLEMENTED);
    assert_non_null(strstr(resp.message, "NoSuchMethod"));
    client_response_deinit(&resp);
    /* an error is per call: the connection goes on */
    assert_null(client_conn_error(conn));
    req = (struct client_request){.path = SERVICE "ListViews"};
    assert_int_equal(client_call(conn, &req, &resp), CLIENT_OK);
    client_response_deinit(&resp);
    client_conn_destroy(conn);
}

struct pipelined {
    int done, ok, wrong;
    int64_t max_latency_us;
};

static void _on_pipelined(void *user, const struct client_result *r) {
    struct pipelined *p = user;
    p->done++;
    if (r->status != CLIENT_OK) {
        return;
    }
    Fsd__V1__GetFeaturesResponse *resp =
        fsd__v1__get_features_response__unpack(NULL, r->response_len, r->response);
    if (resp != NULL && resp->entities == 2 && resp->n_columns == 1 &&
        resp->columns[0]->n_int32_values == 2 &&
        resp->columns[0]->int32_values[0] + 1 == resp->columns[0]->int32_values[1]) {
        p->ok++;
    } else {
        p->wrong++;
    }
    if (r->latency_us > p->max_latency_us) {
        p->max_latency_us = r->latency_us;
    }
    if (resp != NULL) {
        fsd__v1__get_features_response__free_unpacked(resp, NULL);
    }
}

static void test_pipelined_calls_on_one_connection(void **state) {
    (void)state;
    struct client_conn *conn = _connect(NULL);
    _push_users(conn, 100, 8);
    enum { CALLS = 3000 }; /* more than the server's 1000 concurrent streams */
    struct pipelined p = {0};
    for (int i = 0; i < CALLS; i++) {
        int64_t ids[2] = {i % 99, i % 99 + 1};
        size_t len;
        uint8_t *msg = _pack_get("users:age", ids, 2, &len);
        struct client_request req = {
            .path = SERVICE "GetFeatures", .msg = msg, .len = len, .timeout_us = 30000000};
        assert_int_equal(client_submit(conn, &req, _on_pipelined, &p), 0);
        free(msg); /* the client copied it */
    }
    assert_int_equal(client_inflight(conn), CALLS);
    int64_t deadline = clock_mono_us() + 30000000;
    while (p.done < CALLS && clock_mono_us() < deadline) {
        assert_true(client_poll(conn, 100000) >= 0);
    }
    assert_int_equal(p.done, CALLS);
    assert_int_equal(p.ok, CALLS);
    assert_int_equal(p.wrong, 0);
    assert_int_equal(client_inflight(conn), 0);
    struct client_stats stats = {0};
    client_conn_stats(conn, &stats);
    assert_true(stats.calls_completed >= CALLS);
    assert_int_equal(stats.calls_completed, stats.calls_submitted);
    assert_int_equal(stats.calls_ok, stats.calls_completed);
    client_conn_destroy(conn);
}

struct timed {
    int done;
    struct client_result result;
};

static void _on_timed(void *user, const struct client_result *r) {
    struct timed *t = user;
    t->done++;
    t->result = *r;
}

/* An open-loop generator passes the intended send time: the latency counts from it. */
static void test_latency_counts_from_the_intended_start(void **state) {
    (void)state;
    struct client_conn *conn = _connect(NULL);
    int64_t intended = clock_mono_us() - 50000; /* 50 ms behind schedule */
    struct client_request req = {
        .path = SERVICE "ListViews", .timeout_us = 5000000, .start_us = intended};
    struct timed t = {0};
    assert_int_equal(client_submit(conn, &req, _on_timed, &t), 0);
    int64_t deadline = clock_mono_us() + 5000000;
    while (t.done == 0 && clock_mono_us() < deadline) {
        client_poll(conn, 100000);
    }
    assert_int_equal(t.done, 1);
    assert_int_equal(t.result.status, CLIENT_OK);
    assert_int_equal(t.result.start_us, intended);
    assert_true(t.result.submit_us - intended >= 50000);
    assert_true(t.result.latency_us >= 50000);
    assert_true(t.result.latency_us >= t.result.submit_us - intended);
    client_conn_destroy(conn);
}

static void test_response_over_one_megabyte(void **state) {
    (void)state;
    struct client_conn *conn = _connect(NULL);
    _push_users(conn, 100, 8192);
    enum { N = 200 }; /* 200 x 8 KiB strings: 1.6 MB */
    int64_t ids[N];
    for (int i = 0; i < N; i++) {
        ids[i] = i % 100;
    }
    size_t len;
    uint8_t *msg = _pack_get("users:blob", ids, N, &len);
    struct client_request req = {
        .path = SERVICE "GetFeatures", .msg = msg, .len = len, .timeout_us = 10000000};
    struct client_response resp;
    assert_int_equal(client_call(conn, &req, &resp), CLIENT_OK);
    assert_true(resp.len > N * 8192);
    Fsd__V1__GetFeaturesResponse *r =
        fsd__v1__get_features_response__unpack(NULL, resp.len, resp.data);
    assert_non_null(r);
    assert_int_equal(r->columns[0]->n_string_values, N);
    assert_int_equal(strlen(r->columns[0]->string_values[N - 1]), 8192);
    fsd__v1__get_features_response__free_unpacked(r, NULL);
    client_response_deinit(&resp);
    client_conn_destroy(conn);

    /* over the client's limit: RESOURCE_EXHAUSTED, and the connection stays usable */
    struct client_options options;
    client_options_init(&options);
    options.max_response_bytes = 64 * 1024;
    conn = _connect(&options);
    assert_int_equal(client_call(conn, &req, &resp), CLIENT_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(resp.message, "larger than 65536 bytes"));
    client_response_deinit(&resp);
    struct client_request list = {.path = SERVICE "ListViews", .timeout_us = 5000000};
    assert_int_equal(client_call(conn, &list, &resp), CLIENT_OK);
    client_response_deinit(&resp);
    client_conn_destroy(conn);
    free(msg);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_client FSD_BINARY\n");
        return 2;
    }
    fsd_binary = argv[1];
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest offline[] = {
        cmocka_unit_test(test_percent_decode_keeps_malformed_escapes),
        cmocka_unit_test(test_parse_addr),
        cmocka_unit_test(test_code_names),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_deadline_of_a_server_that_never_answers),
        cmocka_unit_test(test_server_that_hangs_up),
    };
    const struct CMUnitTest with_fsd[] = {
        cmocka_unit_test(test_unary_list_views_and_health),
        cmocka_unit_test(test_errors_carry_code_and_decoded_message),
        cmocka_unit_test(test_pipelined_calls_on_one_connection),
        cmocka_unit_test(test_latency_counts_from_the_intended_start),
        cmocka_unit_test(test_response_over_one_megabyte),
    };
    int failed = cmocka_run_group_tests_name("client", offline, NULL, NULL);
    failed += cmocka_run_group_tests_name("client_with_fsd", with_fsd, _start_fsd, _stop_fsd);
    return failed != 0;
}
