/* Logging: logfmt quoting, the line format, level filtering, and whole lines under threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"

static void test_quote(void **state) {
    (void)state;
    char buf[64];
    assert_string_equal(log_quote(buf, sizeof buf, "plain"), "plain");
    assert_string_equal(log_quote(buf, sizeof buf, "configs/demo.yaml"), "configs/demo.yaml");
    assert_string_equal(log_quote(buf, sizeof buf, "two words"), "\"two words\"");
    assert_string_equal(log_quote(buf, sizeof buf, ""), "\"\"");
    assert_string_equal(log_quote(buf, sizeof buf, "a=b"), "\"a=b\"");
    assert_string_equal(log_quote(buf, sizeof buf, "say \"hi\""), "\"say \\\"hi\\\"\"");
    assert_string_equal(log_quote(buf, sizeof buf, "back\\slash"), "\"back\\\\slash\"");
    assert_string_equal(log_quote(buf, sizeof buf, "l1\nl2\t\x01"), "\"l1\\nl2\\t\\x01\"");
    assert_string_equal(log_quote(buf, sizeof buf, NULL), "(null)");
    assert_string_equal(log_quote(buf, sizeof buf, "caf\xc3\xa9"), "caf\xc3\xa9"); /* UTF-8 kept */

    /* too long: cut, marked, still quoted and terminated */
    char longv[200];
    memset(longv, 'x', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    const char *q = log_quote(buf, sizeof buf, longv);
    assert_true(strlen(q) < sizeof buf);
    assert_int_equal(q[0], '"');
    assert_non_null(strstr(q, "...\""));

    /* LOG_QUOTE gives each use its own buffer */
    char line[256];
    snprintf(line, sizeof line, "a=%s b=%s", LOG_QUOTE("x y"), LOG_QUOTE("z"));
    assert_string_equal(line, "a=\"x y\" b=z");
}

static void test_levels(void **state) {
    (void)state;
    enum log_level level;
    assert_true(log_level_parse("warn", &level));
    assert_int_equal(level, LOG_WARN);
    assert_false(log_level_parse("verbose", &level));
    assert_string_equal(log_level_name(LOG_ERROR), "error");
    log_set_level(LOG_WARN);
    assert_int_equal(log_get_level(), LOG_WARN);
    assert_false(log_enabled(LOG_INFO));
    assert_true(log_enabled(LOG_ERROR));
    log_set_level(LOG_INFO);
}

/* Runs `fn` with log lines going to a temporary file and returns what it wrote. */
static char *capture(void (*fn)(void)) {
    FILE *f = tmpfile();
    assert_non_null(f);
    /* O_APPEND, as a log file opened by a shell would be: each write lands whole at the end. */
    assert_int_equal(fcntl(fileno(f), F_SETFL, O_APPEND), 0);
    log_set_fd(fileno(f));
    fn();
    log_set_fd(2);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    char *text = calloc(1, (size_t)size + 1);
    assert_int_equal(fread(text, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    return text;
}

static void write_some(void) {
    log_set_level(LOG_INFO);
    log_debug("hidden", "x=%d", 1);
    log_info("loaded config", "file=%s views=%d", LOG_QUOTE("configs/demo.yaml"), 3);
    log_warn("fsd ready", NULL);
    log_set_level(LOG_DEBUG);
    log_debug("shown", "path=%s", LOG_QUOTE("a b"));
    log_set_level(LOG_INFO);
}

static void assert_matches(const char *text, const char *pattern) {
    regex_t re;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NEWLINE), 0);
    int rc = regexec(&re, text, 0, NULL, 0);
    regfree(&re);
    if (rc != 0) {
        fail_msg("\"%s\" does not match /%s/", text, pattern);
    }
}

static void test_line_format(void **state) {
    (void)state;
    char *text = capture(write_some);
    const char *ts = "ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z";
    char pattern[512];
    snprintf(pattern, sizeof pattern,
             "^%s level=info msg=\"loaded config\" file=configs/demo.yaml views=3\n"
             "%s level=warn msg=\"fsd ready\"\n"
             "%s level=debug msg=shown path=\"a b\"\n$",
             ts, ts, ts);
    assert_matches(text, pattern);
    assert_null(strstr(text, "hidden"));
    free(text);
}

static void write_long(void) {
    char big[3 * LOG_LINE_MAX];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    log_info("long", "v=%s", big);
}

static void test_long_line_is_cut(void **state) {
    (void)state;
    char *text = capture(write_long);
    size_t len = strlen(text);
    assert_true(len <= LOG_LINE_MAX);
    assert_int_equal(text[len - 1], '\n');
    assert_memory_equal(text + len - 5, " ...\n", 5);
    assert_ptr_equal(strchr(text, '\n'), text + len - 1); /* one line */
    free(text);
}

#define THREADS 4
#define LINES   2000

static void *_writer(void *arg) {
    int id = (int)(intptr_t)arg;
    char payload[300];
    memset(payload, 'a' + id, sizeof payload - 1);
    payload[sizeof payload - 1] = '\0';
    for (int i = 0; i < LINES; i++) {
        log_info("tick", "thread=%d i=%d payload=%s", id, i, payload);
    }
    return NULL;
}

static void write_from_threads(void) {
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++) {
        assert_int_equal(pthread_create(&threads[t], NULL, _writer, (void *)(intptr_t)t), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
    }
}

static void test_lines_never_interleave(void **state) {
    (void)state;
    char *text = capture(write_from_threads);
    size_t lines = 0;
    for (char *line = text; *line; lines++) {
        char *end = strchr(line, '\n');
        assert_non_null(end);
        *end = '\0';
        int thread = -1;
        const char *t = strstr(line, "thread=");
        assert_non_null(t);
        thread = t[7] - '0';
        assert_true(thread >= 0 && thread < THREADS);
        const char *payload = strstr(line, "payload=");
        assert_non_null(payload);
        payload += 8;
        assert_int_equal(strlen(payload), 299);
        assert_int_equal(strspn(payload, (char[]){(char)('a' + thread), 0}), 299);
        line = end + 1;
    }
    assert_int_equal(lines, THREADS * LINES);
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_line_format),
        cmocka_unit_test(test_long_line_is_cut),
        cmocka_unit_test(test_lines_never_interleave),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
