/* json_parse_bench.c's walk with fsd's own common/json_reader, as daemon/rpc/feast_http.c
 * reads a lookup: the body checked whole first, then walked, every string's text copied out
 * (into a buffer here, the request's arena there) and every number converted. */
#include <stdlib.h>

#include "common/json_reader.h"

double json_bench_walk_reader(const char *body, size_t len);

static double _scalar(struct json_reader *r, char *text) {
    struct json_span s;
    struct json_number n;
    if (json_reader_peek(r) == JSON_KIND_STRING) {
        json_reader_string(r, &s);
        return (double)json_span_text(&s, text);
    }
    json_reader_number(r, &n);
    return n.is_integer ? (double)n.integer : n.real;
}

double json_bench_walk_reader(const char *body, size_t len) {
    struct json_reader r;
    json_reader_init(&r, body, len, 16);
    if (!json_reader_skip(&r) || !json_reader_at_end(&r)) {
        return 0;
    }
    char *text = malloc(len + 1); /* room for any string of the body */
    double sum = 0;
    struct json_span key, k2;
    json_reader_init(&r, body, len, 16);
    json_reader_object_begin(&r);
    for (size_t i = 0; json_reader_member(&r, i, &key); i++) {
        sum += (double)json_span_text(&key, text);
        enum json_kind kind = json_reader_peek(&r);
        if (kind == JSON_KIND_OBJECT) {
            json_reader_object_begin(&r);
            for (size_t j = 0; json_reader_member(&r, j, &k2); j++) {
                json_reader_array_begin(&r);
                for (size_t e = 0; json_reader_element(&r, e); e++) {
                    sum += _scalar(&r, text);
                }
            }
        } else if (kind == JSON_KIND_ARRAY) {
            json_reader_array_begin(&r);
            for (size_t e = 0; json_reader_element(&r, e); e++) {
                sum += _scalar(&r, text);
            }
        } else {
            json_reader_skip(&r);
        }
    }
    free(text);
    return sum;
}
