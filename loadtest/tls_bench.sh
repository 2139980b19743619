#!/usr/bin/env bash
# What TLS costs fsd per call: the same lookups against one fsd on a cleartext port and one
# with server.tls (a throwaway CA and certificate made with the openssl command), in the
# same run, on this machine:
#
#   bash loadtest/tls_bench.sh            # 100k entities, batches 1 and 100, 3 runs of 5 s
#   bash loadtest/tls_bench.sh --quick    # 3 runs of 1 s
#
# Each figure is grpc_load's closed loop (1 connection, 16 calls in flight) against fsd with
# one worker; fsd's CPU (user + system, /proc/PID/stat) over the run gives the server CPU per
# call. Prints one Markdown table, the medians of the runs, and the TLS/cleartext ratios; also
# how busy the machine was beyond fsd and the generator. Everything is on 127.0.0.1.
#
# Options:
#   --quick       the short version
#   --runs N      runs per figure (default 3)
#   --duration S  measured seconds per run (default 5; --quick 1)
#   --build DIR   where fsd and grpc_load were built (default build)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_NAME=tls_bench
# shellcheck source=loadtest/bench_lib.sh
source "${REPO_ROOT}/loadtest/bench_lib.sh"
BUILD="${REPO_ROOT}/build"
RUNS=3
DURATION=5
ENTITIES=100000
while [[ $# -gt 0 ]]; do
    case "$1" in
    --quick) DURATION=1 ;;
    --runs) RUNS="$2"; shift ;;
    --duration) DURATION="$2"; shift ;;
    --build) BUILD="$2"; shift ;;
    *) bench_die "unknown option $1 (see the top of $0)" ;;
    esac
    shift
done
FSD="${BUILD}/bin/fsd"
LOAD="${BUILD}/bin/grpc_load"
[[ -x ${FSD} && -x ${LOAD} ]] || bench_die "build fsd and grpc_load first (${BUILD})"
bench_setup

# ---- certificates -------------------------------------------------------------------------
pki() { openssl "$@" >/dev/null 2>&1 || bench_die "openssl $*: failed"; }
cd "${BENCH_TMP}"
pki req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
    -out ca.pem -days 1 -subj "/CN=tls_bench CA"
pki req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key \
    -out server.csr -subj "/CN=localhost"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext
pki x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 1 \
    -extfile server.ext
cd - >/dev/null

# ---- one fsd, measured ----------------------------------------------------------------------
# measure NAME TLS(0|1): prints "NAME batch calls_per_s server_us_per_call p99_us" per batch.
measure() {
    local name="$1" tls="$2" config="${BENCH_TMP}/$1.yaml" tls_args=()
    {
        printf 'server:\n  grpc_port: 0\n  stats_port: 0\n  workers: 1\n'
        if [[ ${tls} == 1 ]]; then
            printf '  tls:\n    cert_file: %s\n    key_file: %s\n' "${BENCH_TMP}/server.pem" \
                "${BENCH_TMP}/server.key"
        fi
        printf 'views:\n'
        bench_view_yaml
    } >"${config}"
    bench_start_fsd "${config}"
    local addr="${FSD_ADDR}"
    if [[ ${tls} == 1 ]]; then
        addr="localhost:${FSD_PORT}"
        tls_args=(--tls-ca "${BENCH_TMP}/ca.pem")
    fi
    "${LOAD}" --addr "${addr}" "${tls_args[@]}" --fill "${ENTITIES}" >/dev/null ||
        bench_die "${name}: the fill failed"
    local batch
    for batch in 1 100; do
        for _ in $(seq "${RUNS}"); do
            local t0 m0 out t1 m1
            t0="$(bench_pid_ticks "${FSD_PID}")"
            m0="$(bench_machine_ticks)"
            out="$("${LOAD}" --addr "${addr}" "${tls_args[@]}" --entities "${ENTITIES}" \
                --batch "${batch}" --connections 1 --inflight 16 --duration "${DURATION}" \
                --timeout 5000 --json)" || bench_die "${name}: grpc_load failed"
            t1="$(bench_pid_ticks "${FSD_PID}")"
            m1="$(bench_machine_ticks)"
            /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.argv[1])
ticks, machine, hz = int(sys.argv[2]), int(sys.argv[3]), 100
calls = d["requests"]
print(sys.argv[4], sys.argv[5], round(d["requests_per_s"]),
      round(ticks / hz * 1e6 / calls, 2) if calls else 0, d["p99_us"],
      round(machine / hz / d["measured_s"], 2))' "${out}" "$((t1 - t0))" "$((m1 - m0))" \
                "${name}" "${batch}"
        done
    done
    bench_stop_pid "${FSD_PID}"
}

# Into a file, not $(...): fsd, started in the background, would hold the pipe open.
measure cleartext 0 >"${BENCH_TMP}/results"
measure tls 1 >>"${BENCH_TMP}/results"
/usr/bin/python3 - "$(cat "${BENCH_TMP}/results")" "${RUNS}" "${DURATION}" <<'EOF'
import statistics, sys
rows = [line.split() for line in sys.argv[1].splitlines() if line.strip()]
runs, duration = sys.argv[2], sys.argv[3]
by = {}
for name, batch, rate, us, p99, busy in rows:
    by.setdefault((name, int(batch)), []).append((float(rate), float(us), float(p99), float(busy)))
med = {k: [statistics.median(col) for col in zip(*v)] for k, v in by.items()}
print(f"medians of {runs} runs of {duration} s; 1 connection, 16 calls in flight, 1 worker")
print("| batch | port | calls/s | fsd CPU us/call | p99 us | machine busy (cores) |")
print("|---:|---|---:|---:|---:|---:|")
for batch in (1, 100):
    for name in ("cleartext", "tls"):
        rate, us, p99, busy = med[(name, batch)]
        print(f"| {batch} | {name} | {rate:.0f} | {us:.2f} | {p99:.0f} | {busy:.2f} |")
for batch in (1, 100):
    c, t = med[("cleartext", batch)], med[("tls", batch)]
    print(f"batch {batch}: TLS/cleartext fsd CPU per call {t[1] / c[1]:.2f}x, "
          f"calls/s {t[0] / c[0]:.2f}x")
EOF
