#!/usr/bin/env bash
# Fuzzes every libFuzzer target of the tree, one after the other, for SECONDS in all.
#
#   bash tests/fuzz/run.sh SECONDS            # SECONDS split evenly over the targets
#   FUZZ_TARGETS="rpc h2_conn" bash tests/fuzz/run.sh 600
#
# Builds the Clang tree first if needed (build-fuzz/, ASan+UBSan, so leaks and undefined
# behaviour are findings too), then runs each target as one process (one core) for its share
# of SECONDS (at least 10 s each), starting from a copy of its corpus in the tree in a scratch
# folder: the tree's corpora only get the inputs someone adds on purpose. Prints each target's
# executions (libFuzzer's final stats) and exits non-zero when a target found something (a
# crash, a sanitizer report, a leak, a timeout, running out of memory), after printing the path
# of the input that caused it. Nothing is sent anywhere but within the process (socketpairs);
# the durability targets write their files in a scratch folder of their own (/dev/shm or /tmp).
#
# Environment:
#   FUZZ_TARGETS     targets to run (default: all ten; names without the fuzz_ prefix)
#   FUZZ_BUILD       the Clang build folder (default: build-fuzz/ in the tree)
#   FUZZ_WORK        scratch folder for corpora, logs and findings (default: a new mktemp -d;
#                    kept afterwards, so new inputs can be merged into the tree's corpora)
#   FUZZ_NICE        nice value of the fuzzers (default 10: the machine is shared)
#   FUZZ_TIMEOUT_S   libFuzzer's -timeout: one input running longer is a finding (default 10)
#   DUCKDB_ROOT      passed to CMake when the build folder is configured
#
# Merging what a run found into a tree corpus (keep it small; see CONTRIBUTING.md): the files
# /tmp/merged gains over the tree's reach code the corpus did not.
#   mkdir /tmp/merged && cp tests/daemon/rpc/corpus/* /tmp/merged/
#   build-fuzz/tests/fuzz_rpc -merge=1 -use_counters=0 /tmp/merged "$FUZZ_WORK/rpc/corpus"
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ALL_TARGETS=(config pg_copy stream_entry grpc_wire rpc h2_conn wal_replay checkpoint_load
    feast_import json_reader)
MIN_SECONDS=10

usage() {
    echo "usage: $0 SECONDS   (SECONDS split over: ${FUZZ_TARGETS:-${ALL_TARGETS[*]}})" >&2
    exit 2
}

[[ $# -eq 1 && "$1" =~ ^[0-9]+$ && "$1" -gt 0 ]] || usage
TOTAL_SECONDS="$1"
read -r -a TARGETS <<<"${FUZZ_TARGETS:-${ALL_TARGETS[*]}}"
BUILD="${FUZZ_BUILD:-${REPO_ROOT}/build-fuzz}"
NICE="${FUZZ_NICE:-10}"
TIMEOUT_S="${FUZZ_TIMEOUT_S:-10}"
WORK="${FUZZ_WORK:-$(mktemp -d /tmp/fsd-fuzz.XXXXXX)}"
mkdir -p "${WORK}"

say() { echo "fuzz: $*"; }

# The files each target's corpus in the tree is made of (as its replay test globs them).
corpus_files() {
    case "$1" in
    config) echo "${REPO_ROOT}"/configs/*.yaml "${REPO_ROOT}"/configs/bad/*.yaml ;;
    pg_copy) ;; # its seeds are generated in the target (the replay's main)
    stream_entry)
        echo "${REPO_ROOT}"/tests/materializer/stream/corpus/ok-* \
            "${REPO_ROOT}"/tests/materializer/stream/corpus/bad-*
        ;;
    grpc_wire) echo "${REPO_ROOT}"/tests/daemon/grpc/corpus/* ;;
    rpc) echo "${REPO_ROOT}"/tests/daemon/rpc/corpus/* ;;
    h2_conn) echo "${REPO_ROOT}"/tests/daemon/grpc/h2_corpus/* ;;
    wal_replay) echo "${REPO_ROOT}"/tests/durability/wal_corpus/* ;;
    checkpoint_load) echo "${REPO_ROOT}"/tests/durability/checkpoint_corpus/* ;;
    feast_import) echo "${REPO_ROOT}"/tests/tools/feast_import_corpus/* ;;
    json_reader) echo "${REPO_ROOT}"/tests/common/json_reader_corpus/* ;;
    *)
        echo "fuzz: unknown target \"$1\" (known: ${ALL_TARGETS[*]})" >&2
        exit 2
        ;;
    esac
}

for t in "${TARGETS[@]}"; do
    corpus_files "$t" >/dev/null
done

# ---- build ----------------------------------------------------------------------------------
log="${WORK}/build.log"
if [[ ! -f "${BUILD}/CMakeCache.txt" ]]; then
    say "configuring ${BUILD} (clang, ASan+UBSan)"
    duckdb="${DUCKDB_ROOT:-}"
    if [[ -z "${duckdb}" && -d "${REPO_ROOT}/third_party/duckdb" ]]; then
        duckdb="${REPO_ROOT}/third_party/duckdb"
    fi
    if ! CC=clang cmake -S "${REPO_ROOT}" -B "${BUILD}" -DDUCKDB_ROOT="${duckdb}" \
        -DFSD_SANITIZE=address,undefined >"${log}" 2>&1; then
        cat "${log}" >&2
        say "configure FAILED (log: ${log})"
        exit 1
    fi
elif ! cmake -S "${REPO_ROOT}" -B "${BUILD}" >"${log}" 2>&1; then
    # Configured before: configured again, so targets added since are known to the build.
    cat "${log}" >&2
    say "configure FAILED (log: ${log})"
    exit 1
fi
if ! grep -q '^CMAKE_C_COMPILER_ID:.*Clang\|^CMAKE_C_COMPILER:.*clang' "${BUILD}/CMakeCache.txt"; then
    say "${BUILD} is not a Clang build; the fuzz targets need one (CC=clang)"
    exit 1
fi
build_targets=()
for t in "${TARGETS[@]}"; do
    build_targets+=("fuzz_${t}")
done
say "building ${build_targets[*]}"
if ! nice -n "${NICE}" cmake --build "${BUILD}" -j1 --target "${build_targets[@]}" \
    >>"${log}" 2>&1; then
    tail -n 50 "${log}" >&2
    say "build FAILED (log: ${log})"
    exit 1
fi

# ---- fuzz -----------------------------------------------------------------------------------
per_target=$((TOTAL_SECONDS / ${#TARGETS[@]}))
if ((per_target < MIN_SECONDS)); then
    per_target=${MIN_SECONDS}
fi
say "${#TARGETS[@]} targets, ${per_target} s each, scratch ${WORK}"
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:print_stacktrace=1${ASAN_OPTIONS:+:${ASAN_OPTIONS}}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:${UBSAN_OPTIONS}}"

failed=0
summary=()
for t in "${TARGETS[@]}"; do
    dir="${WORK}/${t}"
    mkdir -p "${dir}/corpus" "${dir}/findings"
    for f in $(corpus_files "$t"); do
        [[ -f "$f" ]] && cp "$f" "${dir}/corpus/"
    done
    seeds=$(find "${dir}/corpus" -type f | wc -l)
    tlog="${dir}/fuzz.log"
    say "${t}: ${seeds} seed files, ${per_target} s (log: ${tlog})"
    rc=0
    # The outer timeout bounds a target that stops answering libFuzzer's own clock.
    timeout --kill-after=10 $((per_target + TIMEOUT_S + 60)) \
        nice -n "${NICE}" "${BUILD}/tests/fuzz_${t}" "${dir}/corpus" \
        -max_total_time="${per_target}" -timeout="${TIMEOUT_S}" -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="${dir}/findings/" >"${tlog}" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "${tlog}" | tail -n 1)
    corpus=$(find "${dir}/corpus" -type f | wc -l)
    findings=$(find "${dir}/findings" -type f | sort)
    if [[ ${rc} -ne 0 || -n "${findings}" ]]; then
        failed=1
        summary+=("$(printf '%-15s %12s executions  %5s corpus files  FOUND (exit %s)' \
            "${t}" "${execs:-?}" "${corpus}" "${rc}")")
        grep -m 1 -E '^==[0-9]+==ERROR|runtime error|^fuzz_|deadly signal|Timeout|out-of-memory' \
            "${tlog}" | sed "s/^/fuzz: ${t}: /" || true
        for f in ${findings}; do
            say "${t}: input: ${f}"
        done
        [[ -n "${findings}" ]] || say "${t}: no input saved; see ${tlog}"
    else
        summary+=("$(printf '%-15s %12s executions  %5s corpus files  ok' \
            "${t}" "${execs:-?}" "${corpus}")")
    fi
done

say "summary (${per_target} s per target):"
for line in "${summary[@]}"; do
    echo "  ${line}"
done
if ((failed)); then
    say "FAILED: replay an input with build-fuzz/tests/fuzz_<target> FILE"
    exit 1
fi
say "ok"
