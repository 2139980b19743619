#pragma once
/*
 * fsctl's files share this: the command context, calling fsd, and the output helpers
 * (a JSON writer, value formatting, an aligned text table). Not a public interface.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/buf.h"
#include "common/ports.h"
#include "common/json.h"
#include "common/text.h"
#include "fsd/v1/feature_service.pb-c.h"

enum {
    FSCTL_OK = 0,
    FSCTL_FAILED = 1, /* cannot connect, the RPC failed, the server does not know the name */
    FSCTL_USAGE = 2,
};

#define FSCTL_DEFAULT_ADDR       FSD_GRPC_DEFAULT_ADDR
#define FSCTL_DEFAULT_TIMEOUT_MS 10000

struct client_conn;

struct fsctl {
    const char *addr; /* HOST:PORT as given */
    uint32_t timeout_ms;
    struct client_conn *conn;                /* connected on the first call */
    const char *token_file;                  /* --token-file; NULL: $FSD_TOKEN_FILE, if set */
    const char *tls_ca, *tls_cert, *tls_key; /* --tls-ca, --tls-cert, --tls-key; NULL: not given */
};

/*
 * Calls `method` ("/fsd.v1.FeatureService/ListViews") with `msg` and returns the response
 * message in *resp (malloc'd, caller frees) or prints why not to stderr ("fsctl: cannot
 * connect to ...", "fsctl: GetFeatures: INVALID_ARGUMENT: ...") and returns FSCTL_FAILED.
 */
int fsctl_call(struct fsctl *ctx, const char *method, const uint8_t *msg, size_t len,
               uint8_t **resp, size_t *resp_len);

/* ListViews, unpacked (free with fsd__v1__list_views_response__free_unpacked), or NULL
 * after printing why. */
Fsd__V1__ListViewsResponse *fsctl_list_views(struct fsctl *ctx);

int fsctl_cmd_get(struct fsctl *ctx, int argc, char **argv);
int fsctl_cmd_load(struct fsctl *ctx, int argc, char **argv);

/* "usage error" helper: prints "fsctl: <message>" and a hint to --help; returns FSCTL_USAGE. */
int fsctl_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- output helpers (format.c) ----------------------------------------------------------- */

/* "int32", "string_list", ... as in the config file. */
const char *fsctl_type_name(int feature_type);

/* A string for a table cell: quoted, control characters escaped. */
void format_quoted(struct buf *b, const char *s, size_t len);
/* 1h → "1h"; microseconds since the epoch → "2024-05-01T12:00:00Z" ("never" for 0). */
void format_duration_s(char *out, size_t out_len, int64_t seconds);
void format_time_us(char *out, size_t out_len, int64_t us);
/* Staleness in milliseconds for people: "850ms", "5.0s", "2.0h"; -1 → "no row". */
void format_staleness_ms(char *out, size_t out_len, int64_t ms);

/* An aligned text table: add cells row by row, then print. Cells are copied. */
struct table;
struct table *table_create(size_t ncolumns);
void table_add(struct table *t, const char *cell); /* fills rows left to right */
void table_print(const struct table *t, FILE *out, const char *indent);
void table_destroy(struct table *t);
