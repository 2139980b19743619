#!/usr/bin/env bash
# Install what fsd needs to build and test on Debian 12, and nothing that is already there.
#
#   bash scripts/setup.sh
#
# Safe to run on every build: when everything is present it prints nothing and takes well
# under a second, so scripts/test.sh and scripts/demo.sh call it unconditionally.
#
# Environment:
#   DUCKDB_ROOT  use your own DuckDB (DUCKDB_ROOT/include/duckdb.h, DUCKDB_ROOT/lib/libduckdb.so)
#                instead of downloading one into third_party/duckdb.
set -euo pipefail

# Debian packages the build, the tests and the demo need. One entry per line so later
# issues can append theirs (postgresql, redis-server, python3-grpcio, ...) with a comment.
FSD_APT_PACKAGES=(
    # toolchain
    build-essential
    cmake
    pkg-config
    git
    ca-certificates # npm talks TLS to its registry
    # event loop and HTTP/2 framing for the gRPC front end
    libevent-dev
    libnghttp2-dev
    # HTTP/1.1 on the gRPC port (Feast's JSON API): the parser, and json-c for the bodies
    libhttp-parser-dev
    libjson-c-dev
    # protobuf messages (generator + runtime)
    protobuf-c-compiler
    libprotobuf-c-dev
    libprotobuf-dev # google/protobuf/timestamp.proto, which Feast's messages import
    # allocator, RCU, hashing
    libjemalloc-dev
    liburcu-dev
    libxxhash-dev
    # sources and sinks: Redis streams, PostgreSQL, YAML config
    libhiredis-dev
    libpq-dev
    libyaml-dev
    # authentication (SHA-256 of bearer tokens) and TLS: OpenSSL 3
    libssl-dev
    openssl # the tests make throwaway keys and certificates with the command
    # unit tests
    libcmocka-dev
    # gRPC transport tests: a real gRPC client (Debian's /usr/bin/python3 module) and h2load
    python3-grpcio
    python3-protobuf # grpcio's status details; also the .proto-based client tests
    protobuf-compiler # protoc for the Python client stubs of proto/
    nghttp2-client # h2load, the HTTP/2 load generator for loadtest/
    python3-h2 # a scriptable HTTP/2 client for transport tests grpcio cannot express
    python3-requests # the HTTP client Feast's remote online store uses, for its tests
    python3-yaml # test_feast_import reads the configs fsd-feast-import writes
    wrk # HTTP/1.1 load generator: Feast's JSON path in loadtest/feast_bench.sh
    libjansson-dev # loadtest/json_parse_bench: the JSON parsers fsd chose between
    libcjson-dev
    # materializer tests and pg_bench: a real PostgreSQL server (initdb, postgres)
    postgresql
    # stats port tests: a real Prometheus text-format parser for /metrics
    python3-prometheus-client
    # stats port tests: headless Chromium renders the HTML status page and screenshots it.
    # Large (a few hundred MB with its dependencies), but it is the only way to check that
    # the page a person opens actually renders; the test skips when it cannot run.
    chromium
    # stream tests and loadtest/stream_bench: a real Redis server (redis-server, redis-cli)
    # and a Python client for writing stream entries
    redis-server
    python3-redis
    # loadtest/redis_compare.py draws its plots with gnuplot (PNG, no X11)
    gnuplot-nox
    # fuzz targets of the parsers of outside bytes (tests/fuzz/run.sh): clang and libFuzzer
    clang
    libfuzzer-14-dev
)

# DuckDB's C library is not packaged by Debian. The npm registry ships the same build inside
# DuckDB's Node bindings, so we take libduckdb.so from there and duckdb.h from the source
# package, pinned by version and by the sha256 of each tarball.
DUCKDB_VERSION=1.4.4
DUCKDB_BINDINGS_VERSION=1.4.4-r.4
DUCKDB_SOURCE_PKG="duckdb@${DUCKDB_VERSION}"
DUCKDB_SOURCE_TGZ="duckdb-${DUCKDB_VERSION}.tgz"
DUCKDB_SOURCE_SHA256=5bb967dcbcd517670ba5f169f238fb9d6787e53752c60ebe24386169d76941ed
DUCKDB_HEADER_IN_TGZ=package/src/duckdb/src/include/duckdb.h
DUCKDB_LIB_IN_TGZ=package/libduckdb.so

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DUCKDB_DEST="${REPO_ROOT}/third_party/duckdb"
DUCKDB_STAMP="${DUCKDB_DEST}/.installed"

say() { echo "setup: $*"; }
die() {
    echo "setup: error: $*" >&2
    exit 1
}

# Runs a command as root: directly when we are root (CI, containers), else through sudo.
as_root() {
    if [[ ${EUID} -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run '$*' (not root and no sudo); run this script as root"
    fi
}

# True when dpkg knows the package as fully installed ("ii"), not merely known or half-removed.
is_deb_installed() {
    local status
    status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" || return 1
    [[ ${status} == ii* ]]
}

list_missing_packages() {
    local pkg
    for pkg in "${FSD_APT_PACKAGES[@]}"; do
        is_deb_installed "${pkg}" || echo "${pkg}"
    done
    # npm may come from somewhere other than Debian (NodeSource's nodejs bundles it and
    # conflicts with Debian's npm package), so ask for Debian's only when there is no npm.
    if ! command -v npm >/dev/null 2>&1; then
        is_deb_installed nodejs || echo nodejs
        is_deb_installed npm || echo npm
    fi
}

install_apt_packages() {
    local missing log
    mapfile -t missing < <(list_missing_packages)
    [[ ${#missing[@]} -eq 0 ]] && return 0

    say "installing ${#missing[@]} Debian package(s): ${missing[*]}"
    # apt's own output is long; keep it in a log and show it only when something failed.
    log="$(mktemp -t fsd-setup-apt.XXXXXX)"
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >"${log}" 2>&1 ||
        ! as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends "${missing[@]}" >>"${log}" 2>&1; then
        cat "${log}" >&2
        rm -f "${log}"
        die "apt-get failed (output above)"
    fi
    rm -f "${log}"
}

# The npm package that carries libduckdb.so for this machine, and its pinned sha256.
duckdb_bindings_for_machine() {
    case "$(uname -m)" in
    x86_64)
        echo "@duckdb/node-bindings-linux-x64@${DUCKDB_BINDINGS_VERSION}"
        echo "duckdb-node-bindings-linux-x64-${DUCKDB_BINDINGS_VERSION}.tgz"
        echo 732fac4dc6b8f198870b9c4bb6ddf13544466daca00ad28ba2f1d80de5d7aa4b
        ;;
    *)
        # Only the x86_64 tarball's checksum has been measured; adding another architecture
        # means measuring its tarball once and adding a case here.
        die "no pinned DuckDB build for $(uname -m); install DuckDB ${DUCKDB_VERSION} yourself" \
            "and point DUCKDB_ROOT at it" \
            "(DUCKDB_ROOT/include/duckdb.h, DUCKDB_ROOT/lib/libduckdb.so)"
        ;;
    esac
}

expected_duckdb_stamp() {
    echo "duckdb ${DUCKDB_VERSION} bindings ${DUCKDB_BINDINGS_VERSION} $(uname -m)"
}

verify_sha256() {
    local file="$1" expected="$2" actual
    actual="$(sha256sum "${file}" | cut -d' ' -f1)"
    if [[ ${actual} != "${expected}" ]]; then
        die "checksum mismatch for $(basename "${file}")
    expected ${expected}
    got      ${actual}
  The registry served a different tarball than the one pinned here; not installing it."
    fi
}

check_user_duckdb() {
    local root="$1"
    [[ -f ${root}/include/duckdb.h ]] ||
        die "DUCKDB_ROOT=${root} has no include/duckdb.h (unset DUCKDB_ROOT to download DuckDB)"
    [[ -f ${root}/lib/libduckdb.so ]] ||
        die "DUCKDB_ROOT=${root} has no lib/libduckdb.so (unset DUCKDB_ROOT to download DuckDB)"
}

install_duckdb() {
    if [[ -n ${DUCKDB_ROOT:-} ]]; then
        check_user_duckdb "${DUCKDB_ROOT}"
        return 0
    fi
    if [[ -f ${DUCKDB_STAMP} && -f ${DUCKDB_DEST}/lib/libduckdb.so &&
        -f ${DUCKDB_DEST}/include/duckdb.h &&
        "$(cat "${DUCKDB_STAMP}")" == "$(expected_duckdb_stamp)" ]]; then
        return 0
    fi
    command -v npm >/dev/null 2>&1 || die "npm not found; it should have been installed above"

    local bindings bindings_pkg bindings_tgz bindings_sha256 tmp
    mapfile -t bindings < <(duckdb_bindings_for_machine)
    [[ ${#bindings[@]} -eq 3 ]] || exit 1 # the die message came from the subshell
    bindings_pkg="${bindings[0]}"
    bindings_tgz="${bindings[1]}"
    bindings_sha256="${bindings[2]}"

    say "fetching DuckDB ${DUCKDB_VERSION} (libduckdb.so + duckdb.h) from the npm registry"
    tmp="$(mktemp -d -t fsd-setup-duckdb.XXXXXX)"
    # A global so the EXIT trap still sees it after this function returns or dies.
    FSD_SETUP_TMP="${tmp}"
    trap 'rm -rf "${FSD_SETUP_TMP}"' EXIT

    # npm pack only downloads the tarballs: no install scripts run, nothing lands in node_modules.
    (cd "${tmp}" &&
        npm pack --loglevel=error "${bindings_pkg}" "${DUCKDB_SOURCE_PKG}" >/dev/null) ||
        die "npm pack failed for ${bindings_pkg} ${DUCKDB_SOURCE_PKG}"
    verify_sha256 "${tmp}/${bindings_tgz}" "${bindings_sha256}"
    verify_sha256 "${tmp}/${DUCKDB_SOURCE_TGZ}" "${DUCKDB_SOURCE_SHA256}"

    tar -xzf "${tmp}/${bindings_tgz}" -C "${tmp}" "${DUCKDB_LIB_IN_TGZ}"
    tar -xzf "${tmp}/${DUCKDB_SOURCE_TGZ}" -C "${tmp}" "${DUCKDB_HEADER_IN_TGZ}"

    # Stamp removed first and written last, so an interrupted run is redone next time.
    rm -f "${DUCKDB_STAMP}"
    install -d "${DUCKDB_DEST}/lib" "${DUCKDB_DEST}/include"
    install -m 0755 "${tmp}/${DUCKDB_LIB_IN_TGZ}" "${DUCKDB_DEST}/lib/libduckdb.so"
    install -m 0644 "${tmp}/${DUCKDB_HEADER_IN_TGZ}" "${DUCKDB_DEST}/include/duckdb.h"
    expected_duckdb_stamp >"${DUCKDB_STAMP}"
    say "DuckDB ${DUCKDB_VERSION} installed in ${DUCKDB_DEST#"${REPO_ROOT}"/}"
}

main() {
    install_apt_packages
    install_duckdb
}

main "$@"
