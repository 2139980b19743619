/* Helpers of the Parquet source (parquet_internal.h): DuckDB type names and decimal text. */
#include "parquet_internal.h"

#include <stdbool.h>
#include <stdio.h>

static const char *_simple_type_name(duckdb_type t) {
    switch (t) {
    case DUCKDB_TYPE_BOOLEAN:
        return "BOOLEAN";
    case DUCKDB_TYPE_TINYINT:
        return "TINYINT";
    case DUCKDB_TYPE_SMALLINT:
        return "SMALLINT";
    case DUCKDB_TYPE_INTEGER:
        return "INTEGER";
    case DUCKDB_TYPE_BIGINT:
        return "BIGINT";
    case DUCKDB_TYPE_UTINYINT:
        return "UTINYINT";
    case DUCKDB_TYPE_USMALLINT:
        return "USMALLINT";
    case DUCKDB_TYPE_UINTEGER:
        return "UINTEGER";
    case DUCKDB_TYPE_UBIGINT:
        return "UBIGINT";
    case DUCKDB_TYPE_HUGEINT:
        return "HUGEINT";
    case DUCKDB_TYPE_UHUGEINT:
        return "UHUGEINT";
    case DUCKDB_TYPE_FLOAT:
        return "FLOAT";
    case DUCKDB_TYPE_DOUBLE:
        return "DOUBLE";
    case DUCKDB_TYPE_TIMESTAMP:
        return "TIMESTAMP";
    case DUCKDB_TYPE_TIMESTAMP_S:
        return "TIMESTAMP_S";
    case DUCKDB_TYPE_TIMESTAMP_MS:
        return "TIMESTAMP_MS";
    case DUCKDB_TYPE_TIMESTAMP_NS:
        return "TIMESTAMP_NS";
    case DUCKDB_TYPE_TIMESTAMP_TZ:
        return "TIMESTAMP WITH TIME ZONE";
    case DUCKDB_TYPE_DATE:
        return "DATE";
    case DUCKDB_TYPE_TIME:
        return "TIME";
    case DUCKDB_TYPE_TIME_TZ:
        return "TIME WITH TIME ZONE";
    case DUCKDB_TYPE_INTERVAL:
        return "INTERVAL";
    case DUCKDB_TYPE_VARCHAR:
        return "VARCHAR";
    case DUCKDB_TYPE_BLOB:
        return "BLOB";
    case DUCKDB_TYPE_DECIMAL:
        return "DECIMAL";
    case DUCKDB_TYPE_ENUM:
        return "ENUM";
    case DUCKDB_TYPE_LIST:
        return "LIST";
    case DUCKDB_TYPE_STRUCT:
        return "STRUCT";
    case DUCKDB_TYPE_MAP:
        return "MAP";
    case DUCKDB_TYPE_ARRAY:
        return "ARRAY";
    case DUCKDB_TYPE_UUID:
        return "UUID";
    default:
        return "an unsupported type";
    }
}

void mat_parquet_type_name(duckdb_logical_type type, char *buf, size_t len) {
    duckdb_type id = duckdb_get_type_id(type);
    if (id == DUCKDB_TYPE_DECIMAL) {
        snprintf(buf, len, "DECIMAL(%u,%u)", duckdb_decimal_width(type),
                 duckdb_decimal_scale(type));
    } else if (id == DUCKDB_TYPE_LIST) {
        duckdb_logical_type child = duckdb_list_type_child_type(type);
        char inner[64];
        mat_parquet_type_name(child, inner, sizeof inner);
        duckdb_destroy_logical_type(&child);
        snprintf(buf, len, "%s[]", inner);
    } else {
        snprintf(buf, len, "%s", _simple_type_name(id));
    }
}

void mat_parquet_decimal_text(__int128 v, uint8_t scale, char *buf, size_t len) {
    char digits[64];
    int n = 0;
    bool neg = v < 0;
    unsigned __int128 u = neg ? (unsigned __int128)0 - (unsigned __int128)v : (unsigned __int128)v;
    do {
        digits[n++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u != 0);
    while (n <= scale) {
        digits[n++] = '0';
    }
    size_t o = 0;
    if (neg) {
        buf[o++] = '-';
    }
    for (int i = n - 1; i >= 0 && o + 2 < len; i--) {
        buf[o++] = digits[i];
        if (i == scale && scale > 0) {
            buf[o++] = '.';
        }
    }
    buf[o] = '\0';
}
