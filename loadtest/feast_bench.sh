#!/usr/bin/env bash
# What Feast's serving API costs against fsd's own: the same lookups (the benchmark view, 10
# features) through GetFeatures, through Feast's GetOnlineFeatures (gRPC) and through Feast's
# POST /get-online-features (HTTP/1.1 JSON, driven by wrk with loadtest/feast_http.lua),
# against one fsd, in the same run, on this machine:
#
#   bash loadtest/feast_bench.sh            # 100k entities, batches 1, 10, 100, 3 runs of 5 s
#   bash loadtest/feast_bench.sh --quick    # 3 runs of 1 s
#
# Closed loop (grpc_load, 1 connection, 16 calls in flight; wrk, 16 connections of one call
# each, as HTTP/1.1 has no multiplexing; fsd with one worker): values/s and fsd's CPU (user +
# system, /proc/PID/stat) per value; runs of the APIs alternate, so a busy spell of the
# machine hits all. Open loop: batch 100 at 1,000 calls/s, p99 and p999
# (the issue's target: Feast's path under 1 ms at p99). Prints one Markdown table of medians
# and the Feast/fsd ratios, and how busy the machine was. Everything is on 127.0.0.1.
#
# Options:
#   --quick       the short version
#   --runs N      runs per figure (default 3)
#   --duration S  measured seconds per run (default 5; --quick 1)
#   --build DIR   where fsd and grpc_load were built (default build)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_NAME=feast_bench
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
command -v wrk >/dev/null || bench_die "wrk is missing (bash scripts/setup.sh installs it)"
bench_setup

config="${BENCH_TMP}/fsd.yaml"
{
    printf 'server:\n  grpc_port: 0\n  stats_port: 0\n  workers: 1\n'
    printf 'views:\n'
    bench_view_yaml
} >"${config}"
bench_start_fsd "${config}"
"${LOAD}" --addr "${FSD_ADDR}" --fill "${ENTITIES}" >/dev/null || bench_die "the fill failed"

# closed TARGET BATCH: prints "closed TARGET BATCH values_per_s fsd_us_per_value p99 busy".
closed() {
    local t0 m0 out t1 m1
    t0="$(bench_pid_ticks "${FSD_PID}")"
    m0="$(bench_machine_ticks)"
    out="$("${LOAD}" --target "$1" --addr "${FSD_ADDR}" --entities "${ENTITIES}" --batch "$2" \
        --connections 1 --inflight 16 --duration "${DURATION}" --timeout 5000 --json)" ||
        bench_die "$1 batch $2: grpc_load failed"
    t1="$(bench_pid_ticks "${FSD_PID}")"
    m1="$(bench_machine_ticks)"
    /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.argv[1])
ticks, machine, hz, batch = int(sys.argv[2]), int(sys.argv[3]), 100, int(sys.argv[5])
values = d["requests"] * batch * 10
print("closed", sys.argv[4], batch, round(values / d["measured_s"]),
      round(ticks / hz * 1e6 / values, 4) if values else 0, d["p99_us"],
      round(machine / hz / d["measured_s"], 2))' "${out}" "$((t1 - t0))" "$((m1 - m0))" "$1" "$2"
}

# closed_http BATCH: as closed, for Feast's JSON path through wrk.
closed_http() {
    local t0 m0 out t1 m1
    t0="$(bench_pid_ticks "${FSD_PID}")"
    m0="$(bench_machine_ticks)"
    out="$(FEAST_BATCH="$1" FEAST_ENTITIES="${ENTITIES}" wrk -t1 -c16 -d"${DURATION}s" \
        --latency -s "${REPO_ROOT}/loadtest/feast_http.lua" "http://${FSD_ADDR}/")" ||
        bench_die "http batch $1: wrk failed"
    t1="$(bench_pid_ticks "${FSD_PID}")"
    m1="$(bench_machine_ticks)"
    /usr/bin/python3 -c '
import re, sys
out, ticks, machine, batch, duration = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
if "Non-2xx" in out or "Socket errors" in out:
    sys.exit("wrk saw failed requests:\n" + out)
total = int(re.search(r"(\d+) requests in", out).group(1))
p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
p99_us = float(p99.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[p99.group(2)]
values = total * batch * 10
print("closed http", batch, round(values / duration), round(ticks / 100 * 1e6 / values, 4) if values else 0,
      round(p99_us), round(machine / 100 / duration, 2))' "${out}" "$((t1 - t0))" "$((m1 - m0))" "$1" "${DURATION}" ||
        bench_die "http batch $1: wrk's output did not parse"
}

# open TARGET: batch 100 at 1,000 calls/s; prints "open TARGET 100 p99 p999 busy".
open_loop() {
    local m0 out m1
    m0="$(bench_machine_ticks)"
    out="$("${LOAD}" --target "$1" --addr "${FSD_ADDR}" --entities "${ENTITIES}" --batch 100 \
        --connections 4 --inflight 16 --rate 1000 --duration "${DURATION}" --timeout 5000 \
        --json)" || bench_die "$1 open loop: grpc_load failed"
    m1="$(bench_machine_ticks)"
    /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.argv[1])
print("open", sys.argv[3], 100, d["p99_us"], d["p999_us"],
      round(int(sys.argv[2]) / 100 / d["measured_s"], 2))' "${out}" "$((m1 - m0))" "$1"
}

for _ in $(seq "${RUNS}"); do
    for batch in 1 10 100; do
        for target in fsd feast; do
            closed "${target}" "${batch}"
        done
        closed_http "${batch}"
    done
    for target in fsd feast; do
        open_loop "${target}"
    done
done >"${BENCH_TMP}/results"
bench_stop_pid "${FSD_PID}"

/usr/bin/python3 - "$(cat "${BENCH_TMP}/results")" "${RUNS}" "${DURATION}" <<'EOF'
import statistics, sys
rows = [line.split() for line in sys.argv[1].splitlines() if line.strip()]
runs, duration = sys.argv[2], sys.argv[3]
closed, opened = {}, {}
for r in rows:
    key = (r[1], int(r[2]))
    (closed if r[0] == "closed" else opened).setdefault(key, []).append([float(x) for x in r[3:]])
med = lambda d: {k: [statistics.median(c) for c in zip(*v)] for k, v in d.items()}
closed, opened = med(closed), med(opened)
print(f"feast_bench: medians of {runs} runs of {duration} s; 10 features; fsd with 1 worker")
print()
print("| batch | API | values/s (closed loop, 16 in flight) | fsd CPU us/value | p99 us | machine busy (cores) |")
print("|---:|---|---:|---:|---:|---:|")
for batch in (1, 10, 100):
    for api in ("fsd", "feast", "http"):
        rate, us, p99, busy = closed[(api, batch)]
        name = {"fsd": "GetFeatures", "feast": "Feast GetOnlineFeatures",
                "http": "Feast POST /get-online-features"}[api]
        print(f"| {batch} | {name} | {rate:.0f} | {us:.4f} | {p99:.0f} | {busy:.2f} |")
for api in ("fsd", "feast"):
    p99, p999, busy = opened[(api, 100)]
    name = "GetFeatures" if api == "fsd" else "Feast GetOnlineFeatures"
    print(f"| 100 at 1000/s | {name} | p99 {p99:.0f} us, p999 {p999:.0f} us | | | {busy:.2f} |")
print()
for batch in (1, 10, 100):
    f, g, j = closed[("fsd", batch)], closed[("feast", batch)], closed[("http", batch)]
    print(f"batch {batch}: Feast/fsd CPU per value {g[1] / f[1]:.2f}x, values/s {g[0] / f[0]:.2f}x; "
          f"HTTP JSON values per fsd CPU second {g[1] / j[1]:.2f}x Feast gRPC's")
EOF
