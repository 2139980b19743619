#!/usr/bin/env bash
# The demo command: installs what is missing, builds build/, and runs fsd in the foreground
# with configs/demo.yaml. Extra arguments are passed to fsd.
#
#   bash scripts/demo.sh
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${REPO_ROOT}/build"
DEMO_CONFIG="configs/demo.yaml"

say() { echo "demo: $*"; }
die() {
    echo "demo: error: $*" >&2
    exit 1
}

# Same tree and flags as the default stage of scripts/test.sh, so one build serves both.
# CMake's output is shown only when a step fails.
build_fsd() {
    local log="${BUILD_DIR}/build.log"
    mkdir -p "${BUILD_DIR}"
    say "building build/"
    if ! cmake -S "${REPO_ROOT}" -B "${BUILD_DIR}" \
        -DFSD_SANITIZE= -DDUCKDB_ROOT="${DUCKDB_ROOT:-}" >"${log}" 2>&1 ||
        ! cmake --build "${BUILD_DIR}" -j "$(nproc)" >>"${log}" 2>&1; then
        cat "${log}" >&2
        die "build failed (log: build/build.log)"
    fi
}

# Writes the Parquet files configs/demo.yaml points at (under demo-data/, which git
# ignores). Run on every start, in about a second: event times are relative to now, and a
# view's TTL would otherwise age the demo out.
generate_demo_data() {
    say "writing demo data into demo-data/"
    "${BUILD_DIR}/bin/fsd-demo-data" demo-data
}

main() {
    cd "${REPO_ROOT}"
    [[ -f ${DEMO_CONFIG} ]] || die "${DEMO_CONFIG} is missing"
    bash scripts/setup.sh
    build_fsd
    generate_demo_data
    say "starting build/bin/fsd --config ${DEMO_CONFIG} (Ctrl-C stops it)"
    say "try: build/bin/fsctl views; build/bin/fsctl get --view user_features --key user_id=42"
    say "     and http://127.0.0.1:9466/ for the status page"
    # exec: fsd gets the terminal's signals directly, and its exit status is the script's.
    exec "${BUILD_DIR}/bin/fsd" --config "${DEMO_CONFIG}" "$@"
}

main "$@"
