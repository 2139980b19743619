# DuckDB's C library as the imported target DuckDB::duckdb.
#
# Debian does not package DuckDB, so scripts/setup.sh puts a pinned build in
# third_party/duckdb/{include/duckdb.h,lib/libduckdb.so}. To use another install, point
# DUCKDB_ROOT (a cache variable, or the environment variable of the same name) at a directory
# with the same layout.
#
# Linking the target is all a consumer does:
#     target_link_libraries(mat PRIVATE DuckDB::duckdb)

set(DUCKDB_ROOT "$ENV{DUCKDB_ROOT}" CACHE PATH
    "DuckDB install with include/duckdb.h and lib/libduckdb.so (empty: third_party/duckdb)")

if(DUCKDB_ROOT)
    set(_fsd_duckdb_search "${DUCKDB_ROOT}")
else()
    set(_fsd_duckdb_search "${CMAKE_SOURCE_DIR}/third_party/duckdb")
endif()

# find_path/find_library cache what they found; when DUCKDB_ROOT changes, search again
# instead of silently keeping the old install.
if(DEFINED _FSD_DUCKDB_SEARCHED AND NOT _FSD_DUCKDB_SEARCHED STREQUAL _fsd_duckdb_search)
    unset(DUCKDB_INCLUDE_DIR CACHE)
    unset(DUCKDB_LIBRARY CACHE)
endif()
set(_FSD_DUCKDB_SEARCHED "${_fsd_duckdb_search}" CACHE INTERNAL "where DuckDB was looked for")

# NO_DEFAULT_PATH: a libduckdb.so of another version in /usr/local must not be picked up by
# accident; the header and the library have to come from the same install.
find_path(DUCKDB_INCLUDE_DIR duckdb.h
    PATHS "${_fsd_duckdb_search}" PATH_SUFFIXES include NO_DEFAULT_PATH)
find_library(DUCKDB_LIBRARY NAMES duckdb
    PATHS "${_fsd_duckdb_search}" PATH_SUFFIXES lib lib64 NO_DEFAULT_PATH)

if(NOT DUCKDB_INCLUDE_DIR OR NOT DUCKDB_LIBRARY)
    message(FATAL_ERROR
        "DuckDB not found in ${_fsd_duckdb_search} "
        "(looked for include/duckdb.h and lib/libduckdb.so).\n"
        "Run scripts/setup.sh to download the pinned build into third_party/duckdb, "
        "or set DUCKDB_ROOT to your own DuckDB install.")
endif()

if(NOT TARGET DuckDB::duckdb)
    add_library(DuckDB::duckdb SHARED IMPORTED)
    set_target_properties(DuckDB::duckdb PROPERTIES
        IMPORTED_LOCATION "${DUCKDB_LIBRARY}"
        IMPORTED_SONAME "libduckdb.so"
        INTERFACE_INCLUDE_DIRECTORIES "${DUCKDB_INCLUDE_DIR}")
    # libduckdb.so lives outside the system library path. CMake puts the directory of every
    # imported shared library into the build-tree RPATH of the binaries that link it, so tests,
    # fsd and the demo run from build*/bin without LD_LIBRARY_PATH. An install rule, when one
    # exists, must set INSTALL_RPATH (or ship libduckdb.so next to fsd).
endif()

message(STATUS "DuckDB: ${DUCKDB_LIBRARY}")
