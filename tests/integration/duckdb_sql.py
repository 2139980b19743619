"""Parquet files for integration tests, written by DuckDB itself: libduckdb (the one fsd links,
FSD_DUCKDB_LIB) through ctypes, since Debian packages neither DuckDB's Python module nor
pyarrow."""
import ctypes
import os

_HERE = os.path.dirname(os.path.abspath(__file__))
DUCKDB_LIB = os.environ.get("FSD_DUCKDB_LIB") or os.path.join(
    _HERE, "..", "..", "third_party", "duckdb", "lib", "libduckdb.so")

_lib = None


def _load():
    global _lib
    if _lib is None:
        lib = ctypes.CDLL(DUCKDB_LIB)
        lib.duckdb_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
        lib.duckdb_connect.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
        lib.duckdb_query.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
        lib.duckdb_result_error.argtypes = [ctypes.c_void_p]
        lib.duckdb_result_error.restype = ctypes.c_char_p
        lib.duckdb_destroy_result.argtypes = [ctypes.c_void_p]
        lib.duckdb_disconnect.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
        lib.duckdb_close.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
        _lib = lib
    return _lib


def run(*statements):
    """Runs each SQL statement in a fresh in-memory DuckDB; raises on the first error."""
    lib = _load()
    db, conn = ctypes.c_void_p(), ctypes.c_void_p()
    if lib.duckdb_open(None, ctypes.byref(db)) != 0:
        raise RuntimeError("duckdb_open failed")
    try:
        if lib.duckdb_connect(db, ctypes.byref(conn)) != 0:
            raise RuntimeError("duckdb_connect failed")
        try:
            for sql in statements:
                result = ctypes.create_string_buffer(256)  # a duckdb_result (48 bytes) with room
                failed = lib.duckdb_query(conn, sql.encode(), result) != 0
                error = lib.duckdb_result_error(result) if failed else None
                lib.duckdb_destroy_result(result)
                if failed:
                    raise RuntimeError(f"duckdb: {error.decode() if error else '?'}\n  in: {sql}")
        finally:
            lib.duckdb_disconnect(ctypes.byref(conn))
    finally:
        lib.duckdb_close(ctypes.byref(db))


def write_parquet(path, select):
    """COPY (select) TO path as Parquet, creating the folders on the way."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    quoted = path.replace("'", "''")
    run(f"COPY ({select}) TO '{quoted}' (FORMAT parquet)")
