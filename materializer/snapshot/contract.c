/* The data contract guard: checks a sealed snapshot before it may replace the live one. */
#include "snapshot_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>

#include "sink.h"
#include "store/row.h"
#include "store/schema.h"
#include "store/table.h"

struct feature_counts {
    const struct mat_contract *contract;
    const struct store_schema *schema;
    uint64_t *nulls;   /* per check */
    uint64_t *outside; /* per check: values outside the range */
    double *example;   /* per check: the first value outside */
};

static double _numeric(const struct store_value *v) {
    switch (v->type) {
    case STORE_TYPE_INT32:
        return v->i32;
    case STORE_TYPE_INT64:
        return (double)v->i64;
    case STORE_TYPE_FLOAT:
        return v->f32;
    default:
        return v->f64;
    }
}

static void _visit(const struct store_row *row, void *arg) {
    struct feature_counts *c = arg;
    for (uint32_t i = 0; i < c->contract->nfeatures; i++) {
        const struct mat_feature_check *check = &c->contract->features[i];
        if (store_row_is_null(c->schema, row, check->feature)) {
            c->nulls[i]++;
            continue;
        }
        if (!check->has_range) {
            continue;
        }
        struct store_value v;
        store_row_get(c->schema, row, check->feature, &v);
        /* An int64 beyond 2^53 compares after rounding to double; NaN is outside any range. */
        double x = _numeric(&v);
        bool inside = x >= check->range_min && x <= check->range_max;
        if (!inside && c->outside[i]++ == 0) {
            c->example[i] = x;
        }
    }
}

void mat_contract_init(struct mat_contract *contract) {
    memset(contract, 0, sizeof(*contract));
    contract->max_row_drop_percent = 100;
}

bool mat_contract_checks_drop(const struct mat_contract *contract, bool have_live) {
    return contract != NULL && have_live && contract->max_row_drop_percent < 100;
}

int mat_contract_check(const struct mat_contract *contract, const struct mat_sink_stats *stats,
                       const struct store_table *table, uint64_t live_rows, uint64_t swap_rows,
                       bool have_live, char *err, size_t err_len) {
    const struct store_schema *schema = store_table_schema(table);
    struct store_table_stats ts;
    store_table_stats(table, &ts);
    uint64_t rows = ts.rows;
    if (stats->null_keys > 0) {
        snprintf(err, err_len,
                 "view %s: contract: %llu rows have a null join key (entity keys must be "
                 "non-null)",
                 schema->view, (unsigned long long)stats->null_keys);
        return -1;
    }
    if (contract == NULL) {
        return 0;
    }
    if (rows < contract->min_rows) {
        snprintf(err, err_len, "view %s: contract: %llu rows, fewer than min_rows %llu",
                 schema->view, (unsigned long long)rows, (unsigned long long)contract->min_rows);
        return -1;
    }
    /* Rows the view would lose: live rows the swap keeps (pushes, streams) are not lost. */
    if (mat_contract_checks_drop(contract, have_live) && live_rows > 0) {
        double drop = 100.0 * ((double)live_rows - (double)swap_rows) / (double)live_rows;
        if (drop > contract->max_row_drop_percent) {
            char kept[128] = "";
            if (swap_rows != rows) {
                snprintf(kept, sizeof kept, "; the snapshot has %llu, live rows kept make %llu",
                         (unsigned long long)rows, (unsigned long long)swap_rows);
            }
            snprintf(err, err_len,
                     "view %s: contract: rows dropped from %llu to %llu (%.2f%%%s), more than "
                     "max_row_drop_percent %g",
                     schema->view, (unsigned long long)live_rows, (unsigned long long)swap_rows,
                     drop, kept, contract->max_row_drop_percent);
            return -1;
        }
    }
    if (contract->nfeatures == 0) {
        return 0;
    }
    uint32_t n = contract->nfeatures;
    struct feature_counts c = {contract, schema, calloc(n, sizeof(uint64_t)),
                               calloc(n, sizeof(uint64_t)), calloc(n, sizeof(double))};
    int rc = 0;
    if (c.nulls == NULL || c.outside == NULL || c.example == NULL) {
        snprintf(err, err_len, "view %s: out of memory checking the contract", schema->view);
        rc = -1;
    } else {
        store_table_foreach(table, _visit, &c);
    }
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        const struct mat_feature_check *check = &contract->features[i];
        const char *name = schema->features[check->feature].name;
        double rate = rows > 0 ? (double)c.nulls[i] / (double)rows : 0;
        if (rate > check->max_null_rate) {
            snprintf(err, err_len,
                     "view %s: contract: feature %s is null for %llu of %llu entities (%.4g), "
                     "more than max_null_rate %g",
                     schema->view, name, (unsigned long long)c.nulls[i], (unsigned long long)rows,
                     rate, check->max_null_rate);
            rc = -1;
        } else if (c.outside[i] > 0) {
            snprintf(err, err_len,
                     "view %s: contract: feature %s has %llu values outside range [%.17g, %.17g], "
                     "e.g. %.17g",
                     schema->view, name, (unsigned long long)c.outside[i], check->range_min,
                     check->range_max, c.example[i]);
            rc = -1;
        }
    }
    free(c.nulls);
    free(c.outside);
    free(c.example);
    return rc;
}
