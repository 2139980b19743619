#!/usr/bin/env bash
# The test command: every test in three builds, and a short fuzzing run.
#
#   bash scripts/test.sh              # stages default, asan, tsan, fuzz
#   bash scripts/test.sh asan tsan    # only the named stages
#
#   default  build/       RelWithDebInfo, all tests
#   asan     build-asan/  -DFSD_SANITIZE=address,undefined (leak checks on), all tests
#   tsan     build-tsan/  -DFSD_SANITIZE=thread, the tests labelled "concurrency"
#   fuzz     build-fuzz/  clang, ASan+UBSan: every libFuzzer target for its share of
#                         FSD_FUZZ_SECONDS (default 120; tests/fuzz/run.sh runs longer ones)
#
# Build directories are reused, so a second run only recompiles what changed. Every stage
# runs even when an earlier one failed, so one run shows all that is broken; the exit status
# is non-zero if anything failed, and the last line reads "summary: N passed, N failed".
#
# Environment: CTEST_PARALLEL_LEVEL runs that many tests at once (default 1: the concurrency
# and integration tests measure timing and bind ports); *SAN_OPTIONS are appended to ours.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
JOBS="$(nproc)"
ALL_STAGES=(default asan tsan fuzz)
# The fuzz stage's bound in CI: enough to catch what a change breaks near the corpora, and
# little enough to keep the suite short. Hours of fuzzing are tests/fuzz/run.sh's job.
DEFAULT_FUZZ_SECONDS=120
# Applies to tests that set no TIMEOUT of their own; CTest's default (1500 s) would let one
# hung test eat most of CI's budget.
DEFAULT_TEST_TIMEOUT_S=300

# Sanitizer runtime options. halt_on_error: the first report fails the test instead of
# scrolling past; print_stacktrace: UBSan reports are useless without one.
ASAN_DEFAULTS="halt_on_error=1:detect_leaks=1:print_stacktrace=1"
ASAN_DEFAULTS+=":check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1"
export ASAN_OPTIONS="${ASAN_DEFAULTS}${ASAN_OPTIONS:+:${ASAN_OPTIONS}}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:${UBSAN_OPTIONS}}"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1${TSAN_OPTIONS:+:${TSAN_OPTIONS}}"

TOTAL_PASSED=0
TOTAL_FAILED=0
TOTAL_SKIPPED=0
STAGE_REPORTS=()

say() { echo "test: $*"; }

usage() {
    echo "usage: $0 [${ALL_STAGES[*]}]..." >&2
    exit 2
}

# Configures (incrementally: an existing cache is kept) and builds one tree. CMake's output
# goes to a log that is shown only when a step fails, so a green run stays readable.
configure_and_build() {
    local dir="$1"
    shift
    local log="${REPO_ROOT}/${dir}/build.log"
    mkdir -p "${REPO_ROOT}/${dir}"
    # DUCKDB_ROOT passed on every configure so the build uses the DuckDB setup.sh checked,
    # even in a tree first configured without it.
    if ! cmake -S "${REPO_ROOT}" -B "${REPO_ROOT}/${dir}" -DDUCKDB_ROOT="${DUCKDB_ROOT:-}" "$@" \
        >"${log}" 2>&1 ||
        ! cmake --build "${REPO_ROOT}/${dir}" -j "${JOBS}" >>"${log}" 2>&1; then
        cat "${log}" >&2
        say "${dir}: configure/build FAILED (log: ${dir}/build.log)"
        return 1
    fi
}

# Prints the command prefix that lets binaries built with -fsanitize=$1 run here: nothing,
# or setarch -R. TSan (and ASan with some kernels) cannot map its shadow memory when the
# kernel randomizes mmap with more bits than the runtime was built for ("unexpected memory
# mapping", "FATAL: ThreadSanitizer: ..."); turning ASLR off for the test run avoids that.
# Fails if the sanitizer cannot run at all. The probe runs under timeout because some
# runtime/kernel mismatches make ASan loop on DEADLYSIGNAL instead of exiting.
sanitizer_launcher() {
    local sanitize="$1" probe_dir rc=0
    probe_dir="$(mktemp -d -t fsd-san-probe.XXXXXX)"
    echo 'int main(void) { return 0; }' >"${probe_dir}/probe.c"
    if ! "${CC:-cc}" -fsanitize="${sanitize}" -o "${probe_dir}/probe" "${probe_dir}/probe.c" \
        >"${probe_dir}/log" 2>&1; then
        cat "${probe_dir}/log" >&2
        rc=1
    elif timeout 30 "${probe_dir}/probe" >"${probe_dir}/log" 2>&1; then
        : # runs as is
    elif timeout 30 setarch "$(uname -m)" -R "${probe_dir}/probe" >/dev/null 2>&1; then
        echo setarch "$(uname -m)" -R
    else
        cat "${probe_dir}/log" >&2
        rc=1
    fi
    rm -rf "${probe_dir}"
    return "${rc}"
}

# Adds one ctest run's counts to the totals, read from its closing lines:
#   "95% tests passed, 1 tests failed out of 20"  and  "  7 - name (Skipped)"
count_ctest_results() {
    local log="$1" total failed skipped summary
    summary="$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "${log}" |
        tail -n 1)" || true
    if [[ -z ${summary} ]]; then
        # No tests ran (or ctest died before its summary); the stage already failed.
        echo "0 0 0"
        return
    fi
    failed="$(sed -E 's/.* ([0-9]+) tests? failed out of.*/\1/' <<<"${summary}")"
    total="$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"${summary}")"
    skipped="$(grep -cE '^[[:space:]]*[0-9]+ - .* \(Skipped\)$' "${log}")" || true
    echo "$((total - failed - skipped)) ${failed} ${skipped}"
}

# Builds DIR with the given cmake args, then runs ctest in it (with LAUNCHER in front, if any).
#   run_stage NAME DIR "LAUNCHER" "CTEST ARGS" CMAKE_ARGS...
run_stage() {
    local name="$1" dir="$2" launcher="$3" ctest_args="$4"
    shift 4
    local log="${REPO_ROOT}/${dir}/ctest.log" passed failed skipped status=ok

    say "== ${name}: building ${dir}/"
    if ! configure_and_build "${dir}" "$@"; then
        STAGE_REPORTS+=("${name}: FAILED to build (see ${dir}/build.log)")
        TOTAL_FAILED=$((TOTAL_FAILED + 1))
        return 0
    fi

    say "== ${name}: ctest${ctest_args:+ ${ctest_args}}${launcher:+ (under ${launcher})}"
    # shellcheck disable=SC2086 # launcher and ctest_args are word lists on purpose
    if ! (cd "${REPO_ROOT}/${dir}" && ${launcher} ctest --output-on-failure --no-tests=error \
        --timeout "${DEFAULT_TEST_TIMEOUT_S}" ${ctest_args}) 2>&1 | tee "${log}"; then
        status=FAILED
    fi
    read -r passed failed skipped < <(count_ctest_results "${log}")
    if [[ ${status} == FAILED && ${failed} -eq 0 ]]; then
        failed=1 # ctest itself failed (no tests found, crashed): count the stage once
    fi
    TOTAL_PASSED=$((TOTAL_PASSED + passed))
    TOTAL_FAILED=$((TOTAL_FAILED + failed))
    TOTAL_SKIPPED=$((TOTAL_SKIPPED + skipped))
    STAGE_REPORTS+=("${name}: ${status} (${passed} passed, ${failed} failed, ${skipped} skipped)")
}

run_default() {
    run_stage default build "" "" -DFSD_SANITIZE=
}

run_asan() {
    local launcher
    if ! launcher="$(sanitizer_launcher address,undefined)"; then
        STAGE_REPORTS+=("asan: FAILED: ASan/UBSan binaries cannot run on this machine")
        TOTAL_FAILED=$((TOTAL_FAILED + 1))
        return 0
    fi
    run_stage asan build-asan "${launcher}" "" -DFSD_SANITIZE=address,undefined
}

run_tsan() {
    local launcher
    if ! launcher="$(sanitizer_launcher thread)"; then
        STAGE_REPORTS+=("tsan: FAILED: TSan binaries cannot run here, even with ASLR off")
        TOTAL_FAILED=$((TOTAL_FAILED + 1))
        return 0
    fi
    run_stage tsan build-tsan "${launcher}" "-L concurrency" -DFSD_SANITIZE=thread
}

run_fuzz() {
    local log="${REPO_ROOT}/build-fuzz/fuzz.log" seconds="${FSD_FUZZ_SECONDS:-${DEFAULT_FUZZ_SECONDS}}"
    local targets found
    # A fresh scratch folder: findings of an earlier run must not fail this one.
    rm -rf "${REPO_ROOT}/build-fuzz/work"
    mkdir -p "${REPO_ROOT}/build-fuzz"
    say "== fuzz: tests/fuzz/run.sh ${seconds}"
    if FUZZ_BUILD="${REPO_ROOT}/build-fuzz" FUZZ_WORK="${REPO_ROOT}/build-fuzz/work" \
        bash "${REPO_ROOT}/tests/fuzz/run.sh" "${seconds}" 2>&1 | tee "${log}"; then
        targets="$(grep -cE '^  [a-z0-9_]+ .* ok$' "${log}")" || true
        TOTAL_PASSED=$((TOTAL_PASSED + targets))
        STAGE_REPORTS+=("fuzz: ok (${targets} targets, nothing found)")
    else
        found="$(grep -cE '^  [a-z0-9_]+ .* FOUND' "${log}")" || true
        ((found > 0)) || found=1 # the build or the script failed: count the stage once
        TOTAL_FAILED=$((TOTAL_FAILED + found))
        STAGE_REPORTS+=("fuzz: FAILED (${found}; see build-fuzz/fuzz.log)")
    fi
}

main() {
    local stages=("$@") stage
    [[ ${#stages[@]} -gt 0 ]] || stages=("${ALL_STAGES[@]}")
    for stage in "${stages[@]}"; do
        case "${stage}" in
        default | asan | tsan | fuzz) ;;
        *) usage ;;
        esac
    done

    cd "${REPO_ROOT}"
    bash scripts/setup.sh

    for stage in "${stages[@]}"; do
        "run_${stage}"
    done

    echo
    local report
    for report in "${STAGE_REPORTS[@]}"; do
        say "${report}"
    done
    echo "summary: ${TOTAL_PASSED} passed, ${TOTAL_FAILED} failed, ${TOTAL_SKIPPED} skipped"
    [[ ${TOTAL_FAILED} -eq 0 ]]
}

main "$@"
