/* json_parse_bench.c's walk of a parsed body with json-c: every value read once. */
#include <json-c/json.h>
#include <stddef.h>
#include <string.h>

double json_bench_walk_jsonc(const char *body, size_t len);

double json_bench_walk_jsonc(const char *body, size_t len) {
    struct json_tokener *tok = json_tokener_new();
    struct json_object *root = json_tokener_parse_ex(tok, body, (int)len);
    json_tokener_free(tok);
    double sum = 0;
    json_object_object_foreach(root, key, value) {
        sum += (double)strlen(key);
        if (json_object_is_type(value, json_type_object)) {
            json_object_object_foreach(value, k2, col) {
                (void)k2;
                size_t n = json_object_array_length(col);
                for (size_t i = 0; i < n; i++) {
                    struct json_object *v = json_object_array_get_idx(col, i);
                    sum += json_object_is_type(v, json_type_string)
                               ? (double)json_object_get_string_len(v)
                           : json_object_is_type(v, json_type_int)
                               ? (double)json_object_get_int64(v)
                               : json_object_get_double(v);
                }
            }
        } else if (json_object_is_type(value, json_type_array)) {
            size_t n = json_object_array_length(value);
            for (size_t i = 0; i < n; i++) {
                sum += (double)json_object_get_string_len(json_object_array_get_idx(value, i));
            }
        }
    }
    json_object_put(root);
    return sum;
}
