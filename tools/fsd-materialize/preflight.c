/*
 * Before reading the source (which may take minutes): is fsd there, and does it serve the
 * view the config describes? One ListViews call through the client library, then the view's
 * join keys and features compared with the config's, so a wrong address or a config that has
 * drifted from the daemon's fails in a second instead of after the read.
 */
#include "materialize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "fsd/v1/feature_service.pb-c.h"
#include "store/schema.h"

#define FM_PREFLIGHT_TIMEOUT_US (10 * 1000000)

/* The API's enums follow the store's, one higher (0 is UNSPECIFIED). */
static const char *_type_name(Fsd__V1__FeatureType type) {
    return type >= 1 && type <= STORE_TYPE_COUNT ? store_type_name((enum store_type)(type - 1))
                                                 : "unknown";
}

static const char *_key_type_name(Fsd__V1__KeyType type) {
    return type == FSD__V1__KEY_TYPE__KEY_INT64    ? "int64"
           : type == FSD__V1__KEY_TYPE__KEY_STRING ? "string"
                                                   : "unknown";
}

/* Keys and features of the served view against the config's schema. */
static int _compare(const Fsd__V1__ViewInfo *served, const struct store_schema *schema,
                    const char *config_path, char *err, size_t err_len) {
    const char *view = schema->view;
    bool same_keys = served->n_join_keys == schema->nkeys;
    for (uint32_t k = 0; same_keys && k < schema->nkeys; k++) {
        same_keys = strcmp(served->join_keys[k]->name, schema->keys[k].name) == 0 &&
                    served->join_keys[k]->type == (Fsd__V1__KeyType)(schema->keys[k].type + 1);
    }
    if (!same_keys) {
        char have[512] = "";
        size_t used = 0;
        for (size_t k = 0; k < served->n_join_keys && used < sizeof have; k++) {
            used += (size_t)snprintf(have + used, sizeof have - used, "%s%s %s", k ? ", " : "",
                                     served->join_keys[k]->name,
                                     _key_type_name(served->join_keys[k]->type));
        }
        snprintf(err, err_len, "fsd's view %s has join keys (%s), not those %s gives it", view,
                 have, config_path);
        return -1;
    }
    for (uint32_t f = 0; f < schema->nfeatures; f++) {
        const struct store_feature *want = &schema->features[f];
        const Fsd__V1__FeatureInfo *have = NULL;
        for (size_t i = 0; i < served->n_features && have == NULL; i++) {
            if (strcmp(served->features[i]->name, want->name) == 0) {
                have = served->features[i];
            }
        }
        if (have == NULL) {
            snprintf(err, err_len, "fsd's view %s has no feature %s (%s in %s)", view, want->name,
                     store_type_name(want->type), config_path);
            return -1;
        }
        if (have->type != (Fsd__V1__FeatureType)(want->type + 1)) {
            snprintf(err, err_len, "feature %s of view %s is %s in fsd but %s in %s", want->name,
                     view, _type_name(have->type), store_type_name(want->type), config_path);
            return -1;
        }
    }
    for (size_t i = 0; i < served->n_features; i++) {
        if (store_schema_feature_index(schema, served->features[i]->name) < 0) {
            snprintf(err, err_len,
                     "fsd's view %s has feature %s, which %s does not describe: the pushed "
                     "snapshot would have it null for every entity",
                     view, served->features[i]->name, config_path);
            return -1;
        }
    }
    return 0;
}

int fm_preflight(const struct fm_options *options, const struct store_schema *schema, char *err,
                 size_t err_len) {
    char host[256];
    uint16_t port;
    if (client_parse_addr(options->addr, host, sizeof host, &port, err, err_len) != 0) {
        return -1;
    }
    struct client_conn *conn = client_conn_create(host, port, &options->client, err, err_len);
    if (conn == NULL) {
        return -1;
    }
    struct client_request req = {
        .path = "/fsd.v1.FeatureService/ListViews",
        .msg = "",
        .len = 0,
        .timeout_us = FM_PREFLIGHT_TIMEOUT_US,
    };
    struct client_response resp;
    int rc = -1;
    if (client_call(conn, &req, &resp) != CLIENT_OK) {
        snprintf(err, err_len, "ListViews: %s: %s", client_code_name(resp.status),
                 resp.message != NULL && resp.message[0] ? resp.message : "(no message)");
    } else {
        Fsd__V1__ListViewsResponse *views =
            fsd__v1__list_views_response__unpack(NULL, resp.len, resp.data);
        const Fsd__V1__ViewInfo *served = NULL;
        for (size_t v = 0; views != NULL && v < views->n_views && served == NULL; v++) {
            if (strcmp(views->views[v]->name, schema->view) == 0) {
                served = views->views[v];
            }
        }
        if (views == NULL) {
            snprintf(err, err_len, "ListViews: the response is not a ListViewsResponse");
        } else if (served == NULL) {
            snprintf(err, err_len, "fsd at %s serves no view %s", options->addr, schema->view);
        } else {
            rc = _compare(served, schema, options->config_path, err, err_len);
        }
        fsd__v1__list_views_response__free_unpacked(views, NULL);
    }
    client_response_deinit(&resp);
    client_conn_destroy(conn);
    return rc;
}
