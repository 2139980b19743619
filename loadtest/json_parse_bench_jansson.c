/* json_parse_bench.c's walk of a parsed body with jansson: every value read once. */
#include <jansson.h>
#include <stddef.h>
#include <string.h>

double json_bench_walk_jansson(const char *body, size_t len);

double json_bench_walk_jansson(const char *body, size_t len) {
    json_error_t err;
    json_t *root = json_loadb(body, len, 0, &err);
    double sum = 0;
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        sum += (double)strlen(key);
        if (json_is_object(value)) {
            const char *k2;
            json_t *col;
            json_object_foreach(value, k2, col) {
                size_t i;
                json_t *v;
                json_array_foreach(col, i, v) {
                    sum += json_is_string(v)    ? (double)json_string_length(v)
                           : json_is_integer(v) ? (double)json_integer_value(v)
                                                : json_real_value(v);
                }
            }
        } else if (json_is_array(value)) {
            size_t i;
            json_t *v;
            json_array_foreach(value, i, v) {
                sum += (double)json_string_length(v);
            }
        }
    }
    json_decref(root);
    return sum;
}
