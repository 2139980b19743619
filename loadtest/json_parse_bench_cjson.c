/* json_parse_bench.c's walk of a parsed body with cJSON: every value read once. */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <string.h>

double json_bench_walk_cjson(const char *body, size_t len);

double json_bench_walk_cjson(const char *body, size_t len) {
    cJSON *root = cJSON_ParseWithLength(body, len);
    double sum = 0;
    const cJSON *value;
    cJSON_ArrayForEach(value, root) {
        sum += (double)strlen(value->string);
        if (cJSON_IsObject(value)) {
            const cJSON *col;
            cJSON_ArrayForEach(col, value) {
                const cJSON *v;
                cJSON_ArrayForEach(v, col) {
                    sum += cJSON_IsString(v) ? (double)strlen(v->valuestring) : v->valuedouble;
                }
            }
        } else if (cJSON_IsArray(value)) {
            const cJSON *v;
            cJSON_ArrayForEach(v, value) {
                sum += (double)strlen(v->valuestring);
            }
        }
    }
    cJSON_Delete(root);
    return sum;
}
