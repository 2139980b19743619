/* Unit tests of the transport's byte-level parsers (daemon/grpc/wire.c) and setup checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/grpc/grpc.h"
#include "daemon/grpc/wire.h"

static int _timeout(const char *text, int64_t *us) {
    return grpc_timeout_parse(text, strlen(text), us);
}

static void test_timeout_units(void **state) {
    (void)state;
    int64_t us = -1;
    assert_int_equal(_timeout("1H", &us), 0);
    assert_int_equal(us, 3600LL * 1000000);
    assert_int_equal(_timeout("2M", &us), 0);
    assert_int_equal(us, 120LL * 1000000);
    assert_int_equal(_timeout("3S", &us), 0);
    assert_int_equal(us, 3000000);
    assert_int_equal(_timeout("20m", &us), 0);
    assert_int_equal(us, 20000);
    assert_int_equal(_timeout("7u", &us), 0);
    assert_int_equal(us, 7);
    assert_int_equal(_timeout("0m", &us), 0);
    assert_int_equal(us, 0);
    /* 8 digits of hours: the largest value fits without overflow. */
    assert_int_equal(_timeout("99999999H", &us), 0);
    assert_int_equal(us, 99999999LL * 3600 * 1000000);
}

static void test_timeout_nanoseconds_round_up(void **state) {
    (void)state;
    int64_t us = -1;
    assert_int_equal(_timeout("1n", &us), 0);
    assert_int_equal(us, 1);
    assert_int_equal(_timeout("1000n", &us), 0);
    assert_int_equal(us, 1);
    assert_int_equal(_timeout("1001n", &us), 0);
    assert_int_equal(us, 2);
    assert_int_equal(_timeout("0n", &us), 0);
    assert_int_equal(us, 0);
}

static void test_timeout_rejects_malformed(void **state) {
    (void)state;
    const char *bad[] = {
        "",
        "S",
        "1",
        "1s",
        "1h",
        "123456789S",
        "-1S",
        "+1S",
        " 1S",
        "1S ",
        "1 S",
        "1.5S",
        "1SS",
        "0x1S",
        "1ms",
        "１S",
        "1\0S",
        "12mS",
        "99999999999999999999H",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t us = 0;
        size_t len = i == 16 ? 3 : strlen(bad[i]); /* "1\0S" with its NUL */
        if (grpc_timeout_parse(bad[i], len, &us) == 0) {
            fail_msg("grpc-timeout \"%s\" was accepted", bad[i]);
        }
    }
}

static void test_content_type(void **state) {
    (void)state;
    const char *good[] = {"application/grpc", "application/grpc+proto",
                          "application/grpc;charset=utf-8", "application/grpc+proto;x=y",
                          "Application/GRPC"};
    const char *bad[] = {"",
                         "application/json",
                         "application/grpc+json",
                         "application/grpcx",
                         "application/grp",
                         "text/plain",
                         "application/grpc-web",
                         "application/grpc+protobuf"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (!grpc_content_type_ok(good[i], strlen(good[i]))) {
            fail_msg("content-type \"%s\" was rejected", good[i]);
        }
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (grpc_content_type_ok(bad[i], strlen(bad[i]))) {
            fail_msg("content-type \"%s\" was accepted", bad[i]);
        }
    }
}

static void test_percent_encoding(void **state) {
    (void)state;
    char out[GRPC_MESSAGE_ENCODED_MAX];
    const char *msg = "ok 100% \xc3\xa9\n~";
    size_t n = grpc_percent_encode(msg, strlen(msg), out, sizeof out);
    assert_string_equal(out, "ok 100%25 %C3%A9%0A~");
    assert_int_equal(n, strlen(out));
    /* Printable ASCII other than '%' passes through untouched. */
    n = grpc_percent_encode("a b!\"#$&'()*+,-./:;<=>?@[\\]^_`{|}", 33, out, sizeof out);
    assert_string_equal(out, "a b!\"#$&'()*+,-./:;<=>?@[\\]^_`{|}");
    /* A small buffer cuts on a whole escape, never half of one. */
    n = grpc_percent_encode("ab\xff", 3, out, 5);
    assert_string_equal(out, "ab");
}

static void test_percent_encoding_cuts_long_messages_on_utf8_boundary(void **state) {
    (void)state;
    char msg[GRPC_MESSAGE_MAX + 10];
    memset(msg, 'a', sizeof msg);
    /* A two-byte character straddling the cut: it must go entirely. */
    msg[GRPC_MESSAGE_MAX - 1] = (char)0xc3;
    msg[GRPC_MESSAGE_MAX] = (char)0xa9;
    char out[GRPC_MESSAGE_ENCODED_MAX];
    size_t n = grpc_percent_encode(msg, sizeof msg, out, sizeof out);
    assert_int_equal(n, GRPC_MESSAGE_MAX - 1);
    assert_null(strchr(out, '%'));
}

/* Feeds `in` in pieces of `piece` bytes and records the messages the reader produced. */
static int _frames(const uint8_t *in, size_t len, size_t piece, uint32_t *lens, int max,
                   uint8_t *bodies) {
    struct grpc_frame_reader r = {0};
    int n = 0;
    size_t body_off = 0;
    for (size_t off = 0; off < len;) {
        size_t chunk = len - off < piece ? len - off : piece;
        const uint8_t *p = in + off;
        size_t left = chunk;
        while (left > 0) {
            struct grpc_frame_step step;
            size_t used = grpc_frame_read(&r, p, left, &step);
            assert_true(used > 0);
            assert_true(used <= left);
            if (step.prefix_done) {
                assert_false(r.compressed);
            }
            if (step.body_len > 0) {
                assert_ptr_equal(step.body, p);
                memcpy(bodies + body_off, step.body, step.body_len);
                body_off += step.body_len;
            }
            if (step.message_done) {
                assert_true(n < max);
                lens[n++] = r.msg_len;
            }
            p += used;
            left -= used;
        }
        off += chunk;
    }
    assert_true(grpc_frame_reader_idle(&r));
    return n;
}

static void test_frame_reader_any_split(void **state) {
    (void)state;
    /* Three messages: 3 bytes, empty, 300 bytes. */
    uint8_t in[5 + 3 + 5 + 5 + 300];
    size_t o = 0;
    grpc_frame_prefix_write(in + o, 3);
    o += 5;
    memcpy(in + o, "abc", 3);
    o += 3;
    grpc_frame_prefix_write(in + o, 0);
    o += 5;
    grpc_frame_prefix_write(in + o, 300);
    o += 5;
    for (int i = 0; i < 300; i++) {
        in[o++] = (uint8_t)i;
    }
    assert_int_equal(o, sizeof in);
    for (size_t piece = 1; piece <= sizeof in; piece++) {
        uint32_t lens[4];
        uint8_t bodies[303];
        int n = _frames(in, sizeof in, piece, lens, 4, bodies);
        assert_int_equal(n, 3);
        assert_int_equal(lens[0], 3);
        assert_int_equal(lens[1], 0);
        assert_int_equal(lens[2], 300);
        assert_memory_equal(bodies, "abc", 3);
        for (int i = 0; i < 300; i++) {
            assert_int_equal(bodies[3 + i], (uint8_t)i);
        }
    }
}

static void test_frame_reader_stops_after_prefix(void **state) {
    (void)state;
    /* The caller must see a huge length before any body byte is taken. */
    uint8_t in[] = {0x01, 0x06, 0x40, 0x00, 0x00, 'x', 'y'};
    struct grpc_frame_reader r = {0};
    struct grpc_frame_step step;
    size_t used = grpc_frame_read(&r, in, sizeof in, &step);
    assert_int_equal(used, 5);
    assert_true(step.prefix_done);
    assert_false(step.message_done);
    assert_true(r.compressed);
    assert_int_equal(r.msg_len, 100u << 20);
    assert_int_equal(step.body_len, 0);
    assert_false(grpc_frame_reader_idle(&r));
}

static void test_code_names(void **state) {
    (void)state;
    assert_string_equal(grpc_code_name(GRPC_OK), "OK");
    assert_string_equal(grpc_code_name(GRPC_DEADLINE_EXCEEDED), "DEADLINE_EXCEEDED");
    assert_string_equal(grpc_code_name(GRPC_UNAUTHENTICATED), "UNAUTHENTICATED");
    assert_string_equal(grpc_code_name((enum grpc_code)17), "INVALID_CODE");
    for (int c = 0; c < GRPC_CODE_COUNT; c++) {
        assert_non_null(grpc_code_name((enum grpc_code)c));
    }
}

static void test_metric_defs_are_complete(void **state) {
    (void)state;
    for (size_t i = 0; i < GRPC_M_COUNT; i++) {
        assert_non_null(grpc_metric_defs[i].name);
        assert_non_null(strstr(grpc_metric_defs[i].name, "fsd_"));
        assert_true(strlen(grpc_metric_defs[i].help) > 10);
    }
}

static void _noop(struct grpc_call *call, const uint8_t *msg, size_t len) {
    (void)msg;
    (void)len;
    grpc_call_reply(call, "", 0);
}

static void test_setup_rejects_bad_methods_and_options(void **state) {
    (void)state;
    struct grpc_server_options o;
    grpc_server_options_init(&o);
    o.port = 0;
    o.workers = 1;
    char err[256];
    struct grpc_method no_slash = {.path = "test.Echo/Echo", .unary = _noop};
    assert_int_equal(grpc_server_setup(&o, &no_slash, 1, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "must be \"/service/method\" or \"METHOD /path\""));
    struct grpc_method streaming_http = {
        .path = "POST /x", .on_message = (grpc_message_fn)1, .on_end = (grpc_call_fn)1};
    assert_int_equal(grpc_server_setup(&o, &streaming_http, 1, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "HTTP/1.1 methods are unary"));
    struct grpc_method both = {.path = "/a/b", .unary = _noop, .on_end = (grpc_call_fn)1};
    assert_int_equal(grpc_server_setup(&o, &both, 1, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "either unary"));
    struct grpc_method twice[2] = {{.path = "/a/b", .unary = _noop},
                                   {.path = "/a/b", .unary = _noop}};
    assert_int_equal(grpc_server_setup(&o, twice, 2, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "listed twice"));
    o.max_message_bytes = (uint64_t)GRPC_MAX_MESSAGE_BYTES_MAX + 1;
    assert_int_equal(grpc_server_setup(&o, twice, 1, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "max_message_bytes"));
    o.max_message_bytes = 4u << 20;
    snprintf(o.bind, sizeof o.bind, "not an address");
    assert_int_equal(grpc_server_setup(&o, twice, 1, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "not an address"));
    assert_int_equal(grpc_server_port(), 0);
}

static void test_setup_port_zero_then_conflict(void **state) {
    (void)state;
    struct grpc_server_options o;
    grpc_server_options_init(&o);
    o.port = 0;
    o.workers = 3;
    char err[256];
    struct grpc_method m = {.path = "/a/b", .unary = _noop};
    assert_int_equal(grpc_server_setup(&o, &m, 1, NULL, NULL, err, sizeof err), 0);
    uint16_t port = grpc_server_port();
    assert_true(port > 0);
    /* One server per process. */
    assert_int_equal(grpc_server_setup(&o, &m, 1, NULL, NULL, err, sizeof err), -1);
    grpc_server_teardown();
    assert_int_equal(grpc_server_port(), 0);
    /* The same port is free again once torn down, and can be set up again. */
    o.port = port;
    assert_int_equal(grpc_server_setup(&o, &m, 1, NULL, NULL, err, sizeof err), 0);
    assert_int_equal(grpc_server_port(), port);
    struct grpc_server_stats st;
    grpc_server_stats(&st);
    assert_int_equal(st.connections_opened, 0);
    grpc_server_shutdown();
    grpc_server_shutdown(); /* a second call does nothing */
    grpc_server_teardown();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timeout_units),
        cmocka_unit_test(test_timeout_nanoseconds_round_up),
        cmocka_unit_test(test_timeout_rejects_malformed),
        cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_percent_encoding),
        cmocka_unit_test(test_percent_encoding_cuts_long_messages_on_utf8_boundary),
        cmocka_unit_test(test_frame_reader_any_split),
        cmocka_unit_test(test_frame_reader_stops_after_prefix),
        cmocka_unit_test(test_code_names),
        cmocka_unit_test(test_metric_defs_are_complete),
        cmocka_unit_test(test_setup_rejects_bad_methods_and_options),
        cmocka_unit_test(test_setup_port_zero_then_conflict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
