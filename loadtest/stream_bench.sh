#!/usr/bin/env bash
# fsd's Redis Streams figures on this machine: updates applied per second from a stream while
# lookups run, lookup p99 meanwhile, and update-to-visible lag.
#
#   bash loadtest/stream_bench.sh            # 3 runs of 10 s at 110k updates/s (~1.5 min)
#   bash loadtest/stream_bench.sh --quick    # 3 runs of 3 s, 100k entities (~30 s)
#
# Starts redis-server (no persistence) on a free loopback port and build/bin/fsd with one view
# "bench" (loadtest/bench_view.yaml: int64 key entity_id; d0..d7 double, count int64, label
# string) that follows the stream "bench_updates" (fields format), fills the view with
# build/bin/grpc_load --fill, then per run, at the same time:
#   - build/bin/stream_bench writes --rate updates/s for --duration s (pipelined XADD, each
#     entry's event_ts taken as it is written) to random entities;
#   - build/bin/grpc_load looks up batches of 100 random entities, open loop at --lookup-rate
#     calls/s (latency from each call's intended send time);
# and reads from fsd's stats port: updates applied (fsd_stream_updates_applied_total) and the
# lag histogram (fsd_stream_update_visible_lag_seconds: event time to visible in the table).
# "applied/s" is the entries written divided by the time from the first write until fsd had
# applied them all. Prints each run and the median of the runs, and how they compare with the
# targets (>= 100k updates/s applied, lookup p99 < 1 ms, lag p99 < 10 ms): reported, not
# asserted. Everything runs on 127.0.0.1 and is stopped on exit, whatever happens.
#
# Options:
#   --quick              the short version
#   --rate R             updates/s the producer writes (default 110000: applied/s counts until
#                        the last entry is applied, so it can only reach 100k above that)
#   --lookup-rate R      GetFeatures calls/s of 100 entities (default 2000)
#   --duration S         seconds per run (default 10; --quick 3)
#   --runs N             runs; the median is printed (default 3)
#   --entities N         entities in the view (default 1000000; --quick 100000)
#   --workers N          fsd worker threads (default 1: the machine has 2 cores for everything)
#   --build DIR          where fsd, grpc_load and stream_bench were built (default build)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_NAME=stream_bench
# shellcheck source=loadtest/bench_lib.sh
source "${REPO_ROOT}/loadtest/bench_lib.sh"
BUILD="${REPO_ROOT}/build"
RATE=110000
LOOKUP_RATE=2000
DURATION=""
RUNS=3
ENTITIES=""
WORKERS=1
QUICK=0
DRAIN_TIMEOUT_S=60

die() { bench_die "$@"; }

while [[ $# -gt 0 ]]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --rate) RATE="${2:?--rate needs a number}"; shift ;;
    --lookup-rate) LOOKUP_RATE="${2:?--lookup-rate needs a number}"; shift ;;
    --duration) DURATION="${2:?--duration needs seconds}"; shift ;;
    --runs) RUNS="${2:?--runs needs a number}"; shift ;;
    --entities) ENTITIES="${2:?--entities needs a number}"; shift ;;
    --workers) WORKERS="${2:?--workers needs a number}"; shift ;;
    --build) BUILD="$(cd "${2:?--build needs a directory}" && pwd)"; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done
if [[ ${QUICK} -eq 1 ]]; then
    DURATION="${DURATION:-3}"
    ENTITIES="${ENTITIES:-100000}"
else
    DURATION="${DURATION:-10}"
    ENTITIES="${ENTITIES:-1000000}"
fi
[[ ${RATE} =~ ^[0-9]+$ && ${RATE} -ge 1 && ${RATE} -le 2000000 ]] || die "--rate: 1..2000000"
[[ ${LOOKUP_RATE} =~ ^[0-9]+$ && ${LOOKUP_RATE} -ge 1 && ${LOOKUP_RATE} -le 100000 ]] ||
    die "--lookup-rate: 1..100000"
[[ ${DURATION} =~ ^[0-9]+$ && ${DURATION} -ge 1 && ${DURATION} -le 120 ]] || die "--duration: 1..120"
[[ ${RUNS} =~ ^[0-9]+$ && ${RUNS} -ge 1 && ${RUNS} -le 9 ]] || die "--runs: 1..9"
[[ ${ENTITIES} =~ ^[0-9]+$ && ${ENTITIES} -ge 1000 && ${ENTITIES} -le 50000000 ]] ||
    die "--entities: 1000..50000000"
[[ ${WORKERS} =~ ^[0-9]+$ && ${WORKERS} -ge 1 && ${WORKERS} -le 64 ]] || die "--workers: 1..64"

FSD="${BUILD}/bin/fsd"
GRPC_LOAD="${BUILD}/bin/grpc_load"
PRODUCER="${BUILD}/bin/stream_bench"
for bin in "${FSD}" "${GRPC_LOAD}" "${PRODUCER}"; do
    [[ -x ${bin} ]] || die "no ${bin}; build first: cmake -S . -B build && cmake --build build -j"
done
REDIS_SERVER="$(command -v redis-server)" || die "no redis-server (bash scripts/setup.sh)"
PYTHON=/usr/bin/python3
[[ -x ${PYTHON} ]] || die "no ${PYTHON}"

bench_setup # what the script started is stopped on exit (the last started first)
TMP="${BENCH_TMP}"

REDIS_PORT="$(bench_free_port)"
"${REDIS_SERVER}" --port "${REDIS_PORT}" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "${TMP}" --logfile "${TMP}/redis.log" &
REDIS_PID=$!
bench_track "${REDIS_PID}"

{
    cat <<EOF
server:
  grpc_bind: 127.0.0.1
  grpc_port: 0
  stats_port: 0
  workers: ${WORKERS}
  log_level: info
  default_budget_us: 1000000
views:
EOF
    bench_view_yaml "$(
        cat <<EOF
stream:
  redis: "127.0.0.1:${REDIS_PORT}"
  key: bench_updates
  start: "\$"
  batch: 1000
  block_ms: 100
EOF
    )"
} >"${TMP}/fsd.yaml"

bench_start_fsd "${TMP}/fsd.yaml"
STATS="${FSD_STATS_PORT}"
for _ in $(seq 200); do
    grep -q 'msg="stream consumer reading"' "${TMP}/fsd.log" && break
    kill -0 "${FSD_PID}" 2>/dev/null || break
    sleep 0.1
done
grep -q 'msg="stream consumer reading"' "${TMP}/fsd.log" ||
    { cat "${TMP}/fsd.log" >&2; die "fsd did not start reading the stream"; }
ADDR="${FSD_ADDR}"
echo "fsd $("${FSD}" --version | cut -d' ' -f2) on ${ADDR}, $("${REDIS_SERVER}" --version |
    sed 's/.*v=\([^ ]*\).*/redis \1/') on 127.0.0.1:${REDIS_PORT}: ${WORKERS} worker(s)," \
    "$(nproc) CPUs, ${ENTITIES} entities; ${RUNS} runs of ${DURATION} s: ${RATE} updates/s" \
    "written while ${LOOKUP_RATE} lookups/s of 100 entities run"
"${GRPC_LOAD}" --addr "${ADDR}" --fill "${ENTITIES}" >/dev/null

metrics() {
    "${PYTHON}" - "${STATS}" <<'PY'
import json, re, sys, urllib.request
body = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read()
out = {"buckets": {}}
for line in body.decode().splitlines():
    m = re.match(r'^(fsd_stream_[a-z_]+)\{view="bench"(?:,le="([^"]+)")?\} (\S+)$', line)
    if not m:
        continue
    name, le, v = m.groups()
    if name == "fsd_stream_update_visible_lag_seconds_bucket":
        out["buckets"][le] = float(v)
    else:
        out[name] = float(v)
print(json.dumps(out))
PY
}

# The applied counter alone, cheaply (polled while fsd drains the stream): HTTP/1.0 over
# bash's /dev/tcp, so no client needs to start.
applied() {
    local fd
    exec {fd}<>"/dev/tcp/127.0.0.1/${STATS}"
    printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&"${fd}"
    awk '/^fsd_stream_updates_applied_total[{]view="bench"[}]/ { print $2 + 0; n = 1 }
         END { if (!n) print 0 }' <&"${fd}"
    exec {fd}<&-
}

now_ms() { date +%s%3N; }

# CPU time in clock ticks: the whole machine busy, one process, and this script's finished
# children (stream_bench, grpc_load). What is left over was other processes competing.
machine_ticks() { bench_machine_ticks; }
pid_ticks() { bench_pid_ticks "$1"; }
children_ticks() { bench_children_ticks; }
cpu_sample() { echo "$(now_ms) $(machine_ticks) $(pid_ticks "${FSD_PID}")" \
    "$(pid_ticks "${REDIS_PID}") $(children_ticks)"; }

for run in $(seq "${RUNS}"); do
    metrics >"${TMP}/before.${run}.json"
    before="$(applied)"
    cpu_sample >"${TMP}/cpu.${run}"
    "${GRPC_LOAD}" --addr "${ADDR}" --entities "${ENTITIES}" --batch 100 --connections 2 \
        --inflight 8 --rate "${LOOKUP_RATE}" --duration "${DURATION}" --warmup 0 --runs 1 \
        --timeout 1000 --json >"${TMP}/lookups.${run}.json" 2>"${TMP}/lookups.${run}.err" &
    LOAD_PID=$!
    bench_track "${LOAD_PID}"
    start="$(now_ms)"
    "${PRODUCER}" --redis "127.0.0.1:${REDIS_PORT}" --key bench_updates --entities "${ENTITIES}" \
        --rate "${RATE}" --duration "${DURATION}" >"${TMP}/producer.${run}.json"
    written="$("${PYTHON}" -c 'import json, sys; print(json.load(sys.stdin)["entries"])' \
        <"${TMP}/producer.${run}.json")"
    drained=""
    deadline=$(($(now_ms) + DRAIN_TIMEOUT_S * 1000))
    while [[ $(now_ms) -lt ${deadline} ]]; do
        if [[ $(($(applied) - before)) -ge ${written} ]]; then
            drained="$(now_ms)"
            break
        fi
        sleep 0.005
    done
    wait "${LOAD_PID}" || true
    LOAD_PID=""
    cpu_sample >>"${TMP}/cpu.${run}"
    metrics >"${TMP}/after.${run}.json"
    echo "${start} ${drained:-0} ${written}" >"${TMP}/times.${run}"
    [[ -n ${drained} ]] || echo "run ${run}: fsd had not applied all ${written} entries" \
        "after ${DRAIN_TIMEOUT_S} s" >&2
done

"${PYTHON}" - "${TMP}" "${RUNS}" "${RATE}" "$(getconf CLK_TCK)" "$(nproc)" <<'PY'
import json, statistics, sys
tmp, runs, rate, hz, ncpu = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), \
    int(sys.argv[5])

def load(name):
    with open(f"{tmp}/{name}") as f:
        return json.loads(f.read().strip().splitlines()[-1])

def quantile(before, after, q):
    """Upper bound of the histogram bucket holding quantile q of the run's observations."""
    bounds = sorted((float("inf") if le == "+Inf" else float(le), le) for le in after["buckets"])
    total = after["buckets"]["+Inf"] - before["buckets"].get("+Inf", 0)
    if total <= 0:
        return float("nan")
    for bound, le in bounds:
        if after["buckets"][le] - before["buckets"].get(le, 0) >= q * total:
            return bound
    return float("inf")

rows = []
for run in range(1, runs + 1):
    start, drained, written = (int(x) for x in open(f"{tmp}/times.{run}").read().split())
    before, after = load(f"before.{run}.json"), load(f"after.{run}.json")
    producer = load(f"producer.{run}.json")
    try:
        lookups = load(f"lookups.{run}.json")
    except (OSError, ValueError, IndexError):
        lookups = {"p50_us": float("nan"), "p99_us": float("nan"), "requests_per_s": 0,
                   "errors": -1}
    applied = after.get("fsd_stream_updates_applied_total", 0) - \
        before.get("fsd_stream_updates_applied_total", 0)
    seconds = (drained - start) / 1000 if drained else float("nan")
    (t0, m0, f0, r0, c0), (t1, m1, f1, r1, c1) = (
        [int(x) for x in line.split()] for line in open(f"{tmp}/cpu.{run}"))
    cpu = lambda ticks: 100 * ticks / hz / ((t1 - t0) / 1000)  # noqa: E731  % of one CPU
    rows.append({
        "cpu_fsd": cpu(f1 - f0), "cpu_redis": cpu(r1 - r0), "cpu_generators": cpu(c1 - c0),
        # per-process and machine-wide tick counts are sampled differently: clamp the noise
        "cpu_others": max(0, cpu((m1 - m0) - (f1 - f0) - (r1 - r0) - (c1 - c0))),
        "written_per_s": producer["entries_per_s"],
        "applied_per_s": applied / seconds if drained else float("nan"),
        "applied": applied,
        "bad": after.get("fsd_stream_bad_entries_total", 0) -
        before.get("fsd_stream_bad_entries_total", 0),
        "lookups_per_s": lookups["requests_per_s"] * 100,
        "lookup_p50_us": lookups["p50_us"],
        "lookup_p99_us": lookups["p99_us"],
        "lookup_errors": lookups["errors"],
        "lag_p50_ms": quantile(before, after, 0.5) * 1000,
        "lag_p99_ms": quantile(before, after, 0.99) * 1000,
    })

cols = [("written/s", "written_per_s", "%.0f"), ("applied/s", "applied_per_s", "%.0f"),
        ("bad", "bad", "%d"), ("key lookups/s", "lookups_per_s", "%.0f"),
        ("lookup p50 us", "lookup_p50_us", "%.1f"), ("lookup p99 us", "lookup_p99_us", "%.1f"),
        ("lookup errors", "lookup_errors", "%d"), ("lag p50 ms <=", "lag_p50_ms", "%g"),
        ("lag p99 ms <=", "lag_p99_ms", "%g"), ("CPU% fsd", "cpu_fsd", "%.0f"),
        ("CPU% redis", "cpu_redis", "%.0f"), ("CPU% load generators", "cpu_generators", "%.0f"),
        ("CPU% others", "cpu_others", "%.0f")]
print()
print("| run | " + " | ".join(c[0] for c in cols) + " |")
print("|---|" + "---:|" * len(cols))
for i, r in enumerate(rows, 1):
    print(f"| {i} | " + " | ".join(fmt % r[key] for _, key, fmt in cols) + " |")
median = {key: statistics.median(r[key] for r in rows) for _, key, _ in cols}
print("| **median** | " + " | ".join(fmt % median[key] for _, key, fmt in cols) + " |")
print()
print("Lag percentiles are histogram bucket bounds (fsd_stream_update_visible_lag_seconds).")
print(f"CPU% is of one CPU over each run ({ncpu} CPUs = {100 * ncpu}%); \"others\" were "
      "processes outside this benchmark competing for the same CPUs.")
ok = lambda c: "met" if c else "MISSED"  # noqa: E731
print(f"targets: >= 100000 updates/s applied: {ok(median['applied_per_s'] >= 100000)} "
      f"({median['applied_per_s']:.0f}); lookup p99 < 1 ms: "
      f"{ok(median['lookup_p99_us'] < 1000)} ({median['lookup_p99_us']:.0f} us); "
      f"lag p99 < 10 ms: {ok(median['lag_p99_ms'] < 10)} (<= {median['lag_p99_ms']:g} ms)")
PY
if grep -q . "${TMP}"/lookups.*.err 2>/dev/null; then
    echo
    cat "${TMP}"/lookups.*.err
fi
