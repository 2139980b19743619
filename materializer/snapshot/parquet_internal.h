#pragma once
/* Shared by parquet.c and parquet_types.c; not for other modules. */
#include <duckdb.h>
#include <stddef.h>
#include <stdint.h>

/* "DECIMAL(18,4)", "FLOAT[]", "VARCHAR": the column type as DuckDB would print it. */
void mat_parquet_type_name(duckdb_logical_type type, char *buf, size_t len);

/* The decimal v / 10^scale as text ("-12.34"), for strtod/strtof to round once, correctly. */
void mat_parquet_decimal_text(__int128 v, uint8_t scale, char *buf, size_t len);
