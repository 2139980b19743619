#pragma once
/*
 * fsd-feast-import's conversion, apart from its command line so the fuzz target
 * (tests/tools/fuzz_feast_import.c) runs it on registries it makes up.
 */
#include <limits.h>
#include <stdio.h>

#include "feast/core/Registry.pb-c.h"

/* The repo the registry belongs to, from its feature_store.yaml. */
struct repo {
    char project[256];  /* only this project's objects; "" for all */
    char dir[PATH_MAX]; /* the feature_store.yaml's folder; "" without one */
    char dsn[1024];     /* the PostgreSQL offline store's connection; "" for none */
};

/* What was left out, each with its reason: printed and written as comments. */
struct report {
    char **lines;
    size_t n;
};

__attribute__((format(printf, 2, 3))) void import_skip(struct report *r, const char *fmt, ...);

/* Reads feature_store.yaml into `repo` (project, offline store, folder); what it cannot use
 * goes to `r`. Returns 0, or -1 having said why on stderr. */
int import_read_feature_store(const char *path, struct repo *repo, struct report *r);

/* Writes the config of `reg` to `out`, the report to `log` (and as comments at the top).
 * Returns 0, or 1 when no view could be imported (or out of memory). */
int import_convert(const Feast__Core__Registry *reg, const struct repo *repo, FILE *out, FILE *log);
