# shellcheck shell=bash
# shellcheck disable=SC2034  # FSD_ADDR etc. are for the scripts that source this
# What loadtest/*_bench.sh share: starting fsd on a temporary config and stopping it however
# the script exits, free ports, and CPU accounting. Sourced, not run:
#
#   BENCH_NAME=my_bench
#   source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"
#   bench_setup                        # BENCH_TMP, and a trap that stops what bench_* started
#   bench_start_fsd CONFIG [PREFIX...] # FSD_PID, FSD_ADDR, FSD_STATS_PORT; PREFIX: taskset ...
#   bench_view_yaml [--numeric-default KIND] [VIEW_KEYS] >>CONFIG  # the benchmark view
#   bench_stop_lookups PID             # SIGUSR1 to a grpc_load, wait for its report
#
# The caller sets BENCH_NAME (for messages) and FSD (the binary) before bench_start_fsd. Every
# wait is bounded; bench_die prints its message and exits 1, and the trap cleans up.

bench_die() {
    echo "${BENCH_NAME:-bench}: $*" >&2
    exit 1
}

# Stops one process: SIGTERM, up to 10 s to exit, then SIGKILL. No-op for "" or a dead pid.
bench_stop_pid() {
    local pid="$1"
    [[ -n ${pid} ]] && kill -0 "${pid}" 2>/dev/null || return 0
    kill -TERM "${pid}" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "${pid}" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "${pid}" 2>/dev/null || true
    wait "${pid}" 2>/dev/null || true
}

# Processes bench_cleanup stops, the last tracked first (a client before the server it uses);
# add a pid with bench_track PID.
BENCH_PIDS=()
bench_track() { BENCH_PIDS+=("$1"); }

bench_cleanup() {
    local i
    for ((i = ${#BENCH_PIDS[@]} - 1; i >= 0; i--)); do
        bench_stop_pid "${BENCH_PIDS[i]}"
    done
    [[ -n ${BENCH_TMP:-} ]] && rm -rf "${BENCH_TMP}"
    return 0
}

# A temporary directory (BENCH_TMP) and the traps: whatever ends the script, what it started
# is stopped and the directory removed.
bench_setup() {
    BENCH_TMP="$(mktemp -d -t "fsd-${BENCH_NAME:-bench}.XXXXXX")"
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

# A TCP port free on 127.0.0.1 right now (for servers that cannot pick their own).
bench_free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0));
print(s.getsockname()[1])'
}

# bench_start_fsd CONFIG [PREFIX...]: starts ${FSD} on CONFIG (which should ask for
# grpc_port: 0 and stats_port: 0), its log in ${BENCH_TMP}/fsd.log, and waits up to 20 s for
# "fsd ready". Sets FSD_PID, FSD_PORT, FSD_ADDR and FSD_STATS_PORT ("" without a stats port).
bench_start_fsd() {
    local config="$1"
    shift
    local log="${BENCH_TMP}/fsd.log"
    "$@" "${FSD}" --config "${config}" 2>"${log}" &
    FSD_PID=$!
    bench_track "${FSD_PID}"
    FSD_PORT=""
    for _ in $(seq 200); do
        FSD_PORT="$(sed -n 's/.*msg="fsd ready".* grpc=[^ ]*:\([0-9][0-9]*\).*/\1/p' "${log}")"
        [[ -n ${FSD_PORT} ]] && break
        kill -0 "${FSD_PID}" 2>/dev/null || break
        sleep 0.1
    done
    [[ -n ${FSD_PORT} ]] || { cat "${log}" >&2; bench_die "fsd did not become ready"; }
    FSD_ADDR="127.0.0.1:${FSD_PORT}"
    FSD_STATS_PORT="$(sed -n 's/.*msg="stats listening".* port=\([0-9][0-9]*\).*/\1/p' "${log}")"
}

# CPU time in clock ticks: the whole machine busy, one process (user + system), and this
# script's children that have been waited for. Busy time beyond fsd's and the children's was
# other processes competing for the CPUs.
bench_machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
bench_pid_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
bench_children_ticks() { awk '{ print $16 + $17 }' "/proc/$$/stat"; }

# bench_stop_lookups PID: ends a grpc_load run early (SIGUSR1) and waits for its report: at
# most its drain (5 s) and a margin, then it is killed.
bench_stop_lookups() {
    local pid="$1"
    kill -USR1 "${pid}" 2>/dev/null || true
    for _ in $(seq 150); do
        kill -0 "${pid}" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "${pid}" 2>/dev/null || true
    wait "${pid}" || true
}

# bench_view_yaml [--numeric-default KIND] [VIEW_KEYS]: the benchmark view, one entry of a
# config's views: list (the caller writes "views:" before it): loadtest/bench_view.py, which
# fills loadtest/bench_view.yaml in. VIEW_KEYS: YAML of the view's other keys (a source: or
# stream: block, a contract:) written from column 0; none: only pushes fill the view.
# --numeric-default KIND: every numeric feature gets `default: KIND`.
BENCH_VIEW_PY="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/bench_view.py"
# shellcheck disable=SC2120  # both arguments are optional
bench_view_yaml() {
    PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 "${BENCH_VIEW_PY}" "$@" ||
        bench_die "cannot fill in the benchmark view (${BENCH_VIEW_PY})"
}
