/*
 * libFuzzer target for common/json_reader: request bodies come from anyone. Each input is
 * walked twice: skipped whole, and read value by value as a caller would (every string's
 * text undone, every number converted); both walks must agree on whether the document is
 * valid, and every string a valid document yields must be valid UTF-8 no longer than its JSON.
 *
 *   clang build: build-fuzz/tests/fuzz_json_reader tests/common/json_reader_corpus
 *   every build: fuzz_json_reader_replay, whose main() replays the corpus (CTest)
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/fuzz_replay.h"
#include "common/json_reader.h"
#include "common/utf8.h"

#define FUZZ_MAX_DEPTH 8

static volatile size_t fuzz_sink;

__attribute__((noreturn)) static void _die(const char *what, size_t at) {
    fprintf(stderr, "fuzz_json_reader: %s (byte %zu)\n", what, at);
    abort();
}

static void _check_text(const struct json_span *span) {
    char *text = malloc(span->raw_len + 1);
    if (text == NULL) {
        return;
    }
    size_t len = json_span_text(span, text);
    if (len > span->raw_len || text[len] != '\0') {
        _die("a string's text is longer than its JSON", 0);
    }
    if (!utf8_valid((const uint8_t *)text, len)) {
        _die("a valid document yielded a string that is not UTF-8", 0);
    }
    if (!json_span_is(span, text) && memchr(text, '\0', len) == NULL) {
        _die("a string is not equal to its own text", 0);
    }
    fuzz_sink += len;
    free(text);
}

/* Reads one value through the typed calls; false once the reader failed. */
static bool _walk(struct json_reader *r) {
    struct json_span span;
    struct json_number number;
    bool b;
    switch (json_reader_peek(r)) {
    case JSON_KIND_OBJECT:
        if (!json_reader_object_begin(r)) {
            return false;
        }
        for (size_t i = 0; json_reader_member(r, i, &span); i++) {
            _check_text(&span);
            if (!_walk(r)) {
                return false;
            }
        }
        return r->error == NULL;
    case JSON_KIND_ARRAY:
        if (!json_reader_array_begin(r)) {
            return false;
        }
        for (size_t i = 0; json_reader_element(r, i); i++) {
            if (!_walk(r)) {
                return false;
            }
        }
        return r->error == NULL;
    case JSON_KIND_STRING:
        if (!json_reader_string(r, &span)) {
            return false;
        }
        _check_text(&span);
        return true;
    case JSON_KIND_NUMBER:
        if (!json_reader_number(r, &number)) {
            return false;
        }
        fuzz_sink += (size_t)number.integer + (number.real > 0);
        return true;
    case JSON_KIND_BOOL:
        return json_reader_bool(r, &b);
    case JSON_KIND_NULL:
        return json_reader_null(r);
    default:
        return json_reader_skip(r); /* fails, naming what is there */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct json_reader skipped, walked;
    json_reader_init(&skipped, data, size, FUZZ_MAX_DEPTH);
    json_reader_init(&walked, data, size, FUZZ_MAX_DEPTH);
    bool a = json_reader_skip(&skipped) && json_reader_at_end(&skipped);
    bool b = _walk(&walked) && json_reader_at_end(&walked);
    if (a != b) {
        _die("skipping and walking disagree on whether the document is valid",
             a ? walked.error_at : skipped.error_at);
    }
    if (!a && skipped.error != NULL && skipped.error_at > size) {
        _die("an error past the end of the input", skipped.error_at);
    }
    if (skipped.error != NULL && walked.error != NULL && skipped.error_at != walked.error_at) {
        _die("the two walks break at different bytes", skipped.error_at);
    }
    return 0;
}

#ifdef FSD_FUZZ_REPLAY
int main(int argc, char **argv) {
    return fuzz_replay_main(argc, argv);
}
#endif
