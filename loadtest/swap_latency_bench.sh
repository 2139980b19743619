#!/usr/bin/env bash
# Lookup latency while a snapshot loads, against the same lookups on an idle server: the
# materializer issue's "lookup p99 during a load <= 2x idle" for 10M rows x 10 features from
# Parquet.
#
#   bash loadtest/swap_latency_bench.sh            # 10M rows, 3 runs, DuckDB threads auto and all
#   bash loadtest/swap_latency_bench.sh --quick    # 1M rows, 1 run, short windows (~1 min)
#
# The Parquet file is build/bin/materialize_bench's (written once, cached in /tmp). For each
# DuckDB thread count asked for (--duckdb-threads, materializer.duckdb_threads; 0 = fsd's
# default: the cores the workers leave, less one), the script starts build/bin/fsd with one
# worker and the benchmark view "bench" (loadtest/bench_view.yaml) whose source is that file
# (no refresh_interval: it loads at start and when asked), waits for the first load, then per
# run:
#   - idle: build/bin/grpc_load looks up batches of 100 random entities, open loop at
#     2,000 calls/s (latency from each call's intended send time), for --idle seconds;
#   - load: the same lookups start, build/bin/fsctl load triggers a full reload of the same
#     file and waits for the swap, the lookups go on for --tail seconds more and are stopped
#     (SIGUSR1). fsd reports when the load started and how long it took (fsctl views --json);
#     the "during load" percentiles are over the calls scheduled inside exactly that window,
#     from grpc_load's per-call log (--latency-log), and "after swap" over the --tail after it
#     (the old snapshot is freed then).
# Each run checks that the load succeeded, the version moved by one and the lookups covered the
# whole load. Prints one Markdown table (each run, then the median of the runs per thread
# count), notes, and the verdict: reported, not asserted. fsd is stopped on exit, whatever
# happens; every wait is bounded.
#
# Options:
#   --quick                1M rows, 1 run, 3 s idle windows
#   --rows N               rows (= entities) in the snapshot (default 10000000; --quick 1000000)
#   --runs N               idle + load pairs per thread count; medians printed (default 3)
#   --duckdb-threads LIST  comma-separated materializer.duckdb_threads values, each with its own
#                          fsd (default 0,N: fsd's default, and one per core)
#   --nice N               materializer.nice of every fsd started: the load thread's and its
#                          DuckDB threads' nice value (default 10, fsd's default; 0: the
#                          daemon's own priority)
#   --rate R               lookup calls/s (default 2000)
#   --batch B              entities per call (default 100)
#   --idle S               seconds of the idle window (default 10; --quick 3)
#   --tail S               seconds measured after the swap (default 1; --quick 0.5)
#   --workers N            fsd worker threads (default 1: on 2 cores the generator needs one)
#   --build DIR            where fsd, fsctl, grpc_load and materialize_bench were built
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_NAME=swap_latency_bench
# shellcheck source=loadtest/bench_lib.sh
source "${REPO_ROOT}/loadtest/bench_lib.sh"

BUILD="${REPO_ROOT}/build"
QUICK=0
ROWS=""
RUNS=""
THREADS_LIST="0,$(nproc)"
NICE=10
RATE=2000
BATCH=100
IDLE_S=""
TAIL_S=""
WORKERS=1
LEAD_S=0.5          # lookups run this long before the load is asked for
INITIAL_WAIT_S=600  # for fsd's first load
TIMEOUT_MS=1000     # grpc-timeout of each lookup: a stall is measured, not refused at 1 ms

while [[ $# -gt 0 ]]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --rows) ROWS="${2:?--rows needs a number}"; shift ;;
    --runs) RUNS="${2:?--runs needs a number}"; shift ;;
    --duckdb-threads) THREADS_LIST="${2:?--duckdb-threads needs a list}"; shift ;;
    --nice) NICE="${2:?--nice needs a value}"; shift ;;
    --rate) RATE="${2:?--rate needs a number}"; shift ;;
    --batch) BATCH="${2:?--batch needs a number}"; shift ;;
    --idle) IDLE_S="${2:?--idle needs seconds}"; shift ;;
    --tail) TAIL_S="${2:?--tail needs seconds}"; shift ;;
    --workers) WORKERS="${2:?--workers needs a number}"; shift ;;
    --build) BUILD="$(cd "${2:?--build needs a directory}" && pwd)"; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) bench_die "unknown option $1 (see --help)" ;;
    esac
    shift
done
if [[ ${QUICK} -eq 1 ]]; then
    ROWS="${ROWS:-1000000}" RUNS="${RUNS:-1}" IDLE_S="${IDLE_S:-3}" TAIL_S="${TAIL_S:-0.5}"
    SETTLE_S=1
else
    ROWS="${ROWS:-10000000}" RUNS="${RUNS:-3}" IDLE_S="${IDLE_S:-10}" TAIL_S="${TAIL_S:-1}"
    SETTLE_S=2 # after a load, for the old snapshot to be freed before the next idle window
fi
is_uint() { [[ $1 =~ ^[0-9]+$ ]] && ((10#$1 >= $2 && 10#$1 <= $3)); }
is_seconds() { [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]] && awk -v s="$1" -v lo="$2" -v hi="$3" \
    'BEGIN { exit !(s >= lo && s <= hi) }'; }
is_uint "${ROWS}" 1000 100000000 || bench_die "--rows: 1000..100000000"
is_uint "${RUNS}" 1 9 || bench_die "--runs: 1..9"
is_uint "${RATE}" 1 100000 || bench_die "--rate: 1..100000"
is_uint "${BATCH}" 1 10000 || bench_die "--batch: 1..10000"
is_uint "${WORKERS}" 1 64 || bench_die "--workers: 1..64"
is_uint "${NICE}" 0 19 || bench_die "--nice: 0..19"
is_seconds "${IDLE_S}" 1 120 || bench_die "--idle: 1..120 seconds"
is_seconds "${TAIL_S}" 0 10 || bench_die "--tail: 0..10 seconds"
IFS=, read -r -a THREADS <<<"${THREADS_LIST}"
[[ ${#THREADS[@]} -ge 1 && ${#THREADS[@]} -le 4 ]] || bench_die "--duckdb-threads: 1 to 4 values"
for t in "${THREADS[@]}"; do
    is_uint "${t}" 0 256 || bench_die "--duckdb-threads: each value 0..256"
done

FSD="${BUILD}/bin/fsd"
FSCTL="${BUILD}/bin/fsctl"
GRPC_LOAD="${BUILD}/bin/grpc_load"
MAT_BENCH="${BUILD}/bin/materialize_bench"
for bin in "${FSD}" "${FSCTL}" "${GRPC_LOAD}" "${MAT_BENCH}"; do
    [[ -x ${bin} ]] || bench_die "no ${bin}; build first: cmake -S . -B build && cmake --build build"
done
PYTHON=/usr/bin/python3
[[ -x ${PYTHON} ]] || bench_die "no ${PYTHON}"

bench_setup
TMP="${BENCH_TMP}"

# The snapshot: materialize_bench's generator, cached across runs and benchmarks.
PARQUET="$("${MAT_BENCH}" --rows "${ROWS}" --write-only)" || bench_die "cannot write the file"
[[ -s ${PARQUET} ]] || bench_die "no ${PARQUET}"

now_us() { date +%s%6N; }

# view_state FIELD...: the bench view's fields from fsctl views --json, space-separated.
view_state() {
    kill -0 "${FSD_PID}" 2>/dev/null || { tail -n 20 "${TMP}/fsd.log" >&2; bench_die "fsd exited"; }
    "${FSCTL}" --addr "${FSD_ADDR}" views --json | "${PYTHON}" -c '
import json, sys
v = {x["name"]: x for x in json.load(sys.stdin)["views"]}["bench"]
print(" ".join(str(v[f]).lower() if isinstance(v[f], bool) else str(v[f]) for f in sys.argv[1:]))
' "$@"
}

status_kib() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/${FSD_PID}/status"; }

# lookup_cmd LOG DURATION: sets LOOKUP to the open-loop lookups' command (a JSON report on
# stdout). A command, not a function, so `"${LOOKUP[@]}" &` makes $! grpc_load itself, the
# process SIGUSR1 must reach.
lookup_cmd() {
    LOOKUP=("${GRPC_LOAD}" --addr "${FSD_ADDR}" --entities "${ROWS}"
        --batch "${BATCH}" --rate "${RATE}" --connections 2 --inflight 64
        --timeout "${TIMEOUT_MS}" --duration "$2" --latency-log "$1" --json)
}

fsd_config() { # fsd_config DUCKDB_THREADS
    cat <<EOF
server:
  grpc_bind: 127.0.0.1
  grpc_port: 0
  stats_port: 0
  workers: ${WORKERS}
  log_level: info
materializer:
  duckdb_threads: $1
  nice: ${NICE}
views:
EOF
    bench_view_yaml "$(
        cat <<EOF
# no refresh_interval: loaded at start and when asked (fsctl load)
source: {type: parquet, path: "${PARQUET}", event_timestamp_column: ev}
EOF
    )"
}

echo "fsd $("${FSD}" --version | cut -d' ' -f2): ${WORKERS} worker(s), $(nproc) CPUs;" \
    "${ROWS} rows x 10 features from ${PARQUET} ($(($(stat -c %s "${PARQUET}") >> 20)) MiB);" \
    "lookups: ${RATE} calls/s of ${BATCH} entities; ${RUNS} run(s) of ${IDLE_S} s idle + one" \
    "load; DuckDB threads: ${THREADS_LIST}; loads at nice ${NICE}"

RESULTS="${TMP}/runs.txt" # one line per run, for the report
: >"${RESULTS}"
for threads in "${THREADS[@]}"; do
    fsd_config "${threads}" >"${TMP}/fsd.${threads}.yaml"
    bench_start_fsd "${TMP}/fsd.${threads}.yaml"
    deadline=$((SECONDS + INITIAL_WAIT_S))
    while :; do
        read -r version loading result < <(view_state snapshot_version loading last_load_result) ||
            true
        [[ ${version} -ge 1 && ${loading} == false ]] && break
        [[ ${result} == source_failed || ${result} == rejected ]] &&
            bench_die "fsd's first load failed: $(view_state last_error)"
        [[ ${SECONDS} -lt ${deadline} ]] || bench_die "no first load after ${INITIAL_WAIT_S} s"
        sleep 0.2
    done
    read -r first_us < <(view_state load_duration_us)
    # fsctl load waits this long for a load, and the lookups run at most this long plus a
    # margin; SIGUSR1 ends them as soon as the load is over
    LOAD_WAIT_S=$(((first_us * 5) / 1000000 + 30))
    [[ ${LOAD_WAIT_S} -le 540 ]] || LOAD_WAIT_S=540
    MAX_LOOKUP_S=$(awk -v w="${LOAD_WAIT_S}" -v t="${TAIL_S}" 'BEGIN { print w + t + 20 }')
    echo "duckdb_threads ${threads}: fsd on ${FSD_ADDR}, first load $(awk -v u="${first_us}" \
        'BEGIN { printf "%.1f", u / 1e6 }') s"
    lookup_cmd /dev/null 1 # a warm-up, and a check that lookups work at all
    "${LOOKUP[@]}" >/dev/null 2>"${TMP}/warmup.err" ||
        bench_die "the lookups fail: $(cat "${TMP}/warmup.err")"

    for run in $(seq "${RUNS}"); do
        id="${threads}.${run}"
        sleep "${SETTLE_S}"
        ticks0="$(bench_machine_ticks) $(bench_pid_ticks "${FSD_PID}") $(bench_children_ticks)"
        t0="$(now_us)"
        rc=0
        lookup_cmd "${TMP}/idle.${id}.log" "${IDLE_S}"
        "${LOOKUP[@]}" >"${TMP}/idle.${id}.json" 2>"${TMP}/idle.${id}.err" || rc=$?
        [[ ${rc} -eq 0 || ${rc} -eq 3 ]] || bench_die "the idle lookups failed:" \
            "$(cat "${TMP}/idle.${id}.err")" # 3: the run had errors, counted in the table

        read -r v0 done0 < <(view_state snapshot_version loads_completed)
        hwm_reset=1 # VmHWM := VmRSS, so the peak is this load's
        { echo 5 >"/proc/${FSD_PID}/clear_refs"; } 2>/dev/null || hwm_reset=0
        rss0="$(status_kib VmRSS)"
        threads0="$(status_kib Threads)"
        lookup_cmd "${TMP}/load.${id}.log" "${MAX_LOOKUP_S}"
        "${LOOKUP[@]}" >"${TMP}/load.${id}.json" 2>"${TMP}/load.${id}.err" &
        lookup_pid=$!
        bench_track "${lookup_pid}"
        # fsd's thread count while the load runs: DuckDB's threads show up here
        (while kill -0 "${lookup_pid}" 2>/dev/null; do
            status_kib Threads
            sleep 0.1
        done) >"${TMP}/threads.${id}" 2>/dev/null &
        sampler_pid=$!
        sleep "${LEAD_S}"
        asked_us="$(now_us)"
        load_rc=0
        "${FSCTL}" --addr "${FSD_ADDR}" load --view bench --wait "${LOAD_WAIT_S}" \
            >"${TMP}/fsctl.${id}" 2>&1 || load_rc=$?
        loaded_us="$(now_us)"
        sleep "${TAIL_S}"
        bench_stop_lookups "${lookup_pid}"
        wait "${sampler_pid}" 2>/dev/null || true
        hwm="$(status_kib VmHWM)"
        [[ ${hwm_reset} -eq 1 ]] || hwm=0
        t1="$(now_us)"
        ticks1="$(bench_machine_ticks) $(bench_pid_ticks "${FSD_PID}") $(bench_children_ticks)"
        [[ ${load_rc} -eq 0 ]] ||
            bench_die "run ${run}: fsctl load failed: $(cat "${TMP}/fsctl.${id}")"
        [[ -s ${TMP}/load.${id}.log ]] ||
            bench_die "run ${run}: the lookups during the load failed: $(cat "${TMP}/load.${id}.err")"
        read -r v1 done1 start_us dur_us rows_read result < <(view_state snapshot_version \
            loads_completed last_load_time_us load_duration_us rows_read last_load_result)
        [[ ${result} == loaded && ${v1} -eq $((v0 + 1)) && ${done1} -eq $((done0 + 1)) ]] ||
            bench_die "run ${run}: the load did not swap one new version in (version ${v0} ->" \
                "${v1}, loads completed ${done0} -> ${done1}, result ${result})"
        peak_threads="$(sort -n "${TMP}/threads.${id}" | tail -n 1)"
        echo "${threads} ${run} ${start_us} ${dur_us} ${rows_read} ${asked_us} ${loaded_us}" \
            "${rss0:-0} ${hwm:-0} ${threads0:-0} ${peak_threads:-0} ${t0} ${t1} ${ticks0}" \
            "${ticks1}" >>"${RESULTS}"
        echo "  run ${run}: loaded version ${v1} in $(awk -v u="${dur_us}" \
            'BEGIN { printf "%.2f", u / 1e6 }') s"
    done
    bench_stop_pid "${FSD_PID}"
done

"${PYTHON}" - "${TMP}" "${RESULTS}" "${TAIL_S}" "$(getconf CLK_TCK)" "$(nproc)" <<'PY'
import json, math, statistics, sys

tmp, results, tail_s, hz, ncpu = sys.argv[1], sys.argv[2], float(sys.argv[3]), \
    int(sys.argv[4]), int(sys.argv[5])
LATE_US = 1000  # grpc_load's "late send"


def calls(path):
    """(start_wall_us, latency_us, send_lag_us, ok) of every measured call."""
    with open(path) as f:
        return [tuple(int(x) for x in line.split()) for line in f if not line.startswith("#")]


def pct(sorted_values, q):
    """Nearest-rank percentile; NaN for no values."""
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(q / 100 * len(sorted_values)) - 1)]


def window(cs, lo=-math.inf, hi=math.inf):
    inside = [c for c in cs if lo <= c[0] < hi]
    lat = sorted(c[1] for c in inside)
    from_send = sorted(c[1] - c[2] for c in inside)
    return {"n": len(inside), "p50": pct(lat, 50), "p99": pct(lat, 99), "p999": pct(lat, 99.9),
            "sent_p99": pct(from_send, 99), "late": sum(c[2] > LATE_US for c in inside),
            "errors": sum(not c[3] for c in inside)}


rows, problems = [], []
for line in open(results):
    f = line.split()
    threads, run = f[0], int(f[1])
    start, dur, rows_read, asked, loaded, rss0, hwm, thr0, thr1, t0, t1 = map(int, f[2:13])
    m0, p0, c0, m1, p1, c1 = map(int, f[13:19])
    end = start + dur
    idle_calls = calls(f"{tmp}/idle.{threads}.{run}.log")
    load_calls = calls(f"{tmp}/load.{threads}.{run}.log")
    idle, load = window(idle_calls), window(load_calls, start, end)
    after = window(load_calls, end, end + tail_s * 1e6)
    # fsd's load window must lie between asking and fsctl seeing the result, and the lookups
    # must have been running before it and after it
    if not (asked - 1e6 <= start <= loaded and end <= loaded + 2e5):
        problems.append(f"duckdb_threads {threads} run {run}: fsd's load window "
                        f"({start}..{end}) is not between asking ({asked}) and the answer "
                        f"({loaded}): the figures are not over the load")
    if not load_calls or (min(c[0] for c in load_calls) > start or
                          max(c[0] for c in load_calls) < end):
        problems.append(f"duckdb_threads {threads} run {run}: the lookups did not cover the "
                        "whole load")
    elapsed_s = (t1 - t0) / 1e6
    others = max(0.0, ((m1 - m0) - (p1 - p0) - (c1 - c0)) / hz / elapsed_s * 100)
    rows.append({
        "threads": threads, "run": run,
        "idle_p50": idle["p50"], "idle_p99": idle["p99"], "idle_p999": idle["p999"],
        "load_p50": load["p50"], "load_p99": load["p99"], "load_p999": load["p999"],
        "ratio": load["p99"] / idle["p99"] if idle["p99"] else math.nan,
        "load_sent_p99": load["sent_p99"],
        "after_p99": after["p99"], "load_s": dur / 1e6, "rows_per_s": rows_read / (dur / 1e6),
        "calls": load["n"], "late": f"{idle['late']} / {load['late']}",
        "errors": idle["errors"] + load["errors"] + after["errors"],
        "rss": f"{rss0 / 1024:.0f} / {hwm / 1024:.0f}" if hwm else "-",
        "fsd_threads": (thr0, thr1), "others": others,
    })

cols = [("DuckDB threads", "threads", "%s"), ("run", "run", "%s"),
        ("idle p50 us", "idle_p50", "%.0f"), ("idle p99 us", "idle_p99", "%.0f"),
        ("idle p999 us", "idle_p999", "%.0f"), ("load p50 us", "load_p50", "%.0f"),
        ("load p99 us", "load_p99", "%.0f"), ("load p999 us", "load_p999", "%.0f"),
        ("p99 load / idle", "ratio", "%.2f"), ("load p99 from send us", "load_sent_p99", "%.0f"),
        ("after-swap p99 us", "after_p99", "%.0f"),
        ("load s", "load_s", "%.2f"), ("rows/s", "rows_per_s", "%.0f"),
        ("calls in load", "calls", "%d"), ("late sends idle / load", "late", "%s"),
        ("errors", "errors", "%d"), ("fsd RSS MiB before / peak", "rss", "%s"),
        ("CPU% others", "others", "%.0f")]
numeric = {"idle_p50", "idle_p99", "idle_p999", "load_p50", "load_p99", "load_p999", "ratio",
           "load_sent_p99", "after_p99", "load_s", "rows_per_s", "calls", "errors", "others"}


def fmt(fmt_, v):
    return "-" if isinstance(v, float) and math.isnan(v) else fmt_ % v


print()
print("| " + " | ".join(c[0] for c in cols) + " |")
print("|" + "---|" * 2 + "---:|" * (len(cols) - 2))
medians = {}
for threads in dict.fromkeys(r["threads"] for r in rows):
    group = [r for r in rows if r["threads"] == threads]
    for r in group:
        print("| " + " | ".join(fmt(f, r[k]) for _, k, f in cols) + " |")
    if len(group) > 1:
        m = {k: statistics.median(r[k] for r in group) for k in numeric}
        m.update(threads=threads, run="**median**", late="", rss="")
        m["errors"] = sum(r["errors"] for r in group)
        print("| " + " | ".join(fmt(f, m[k]) for _, k, f in cols) + " |")
    medians[threads] = statistics.median(r["ratio"] for r in group), group
print()
print("Latency is per call of the open loop, from its intended send time to the end of the "
      "response. idle: a whole idle window; load: calls scheduled between the load's start and "
      f"its end as fsd reports them (read, build, check, swap); after-swap: the {tail_s:g} s "
      "after (the old snapshot is freed). Percentiles are exact (nearest rank) over the calls "
      "in each window. Late sends: sent more than 1 ms after their intended time (the generator "
      "fell behind; still counted from the intended time); \"from send\" leaves that delay "
      "out: the difference is the generator's, not fsd's. Peak RSS: fsd's VmHWM during the "
      "load window. CPU% others: CPU time of processes outside this benchmark over the run, in "
      f"% of one CPU ({ncpu} CPUs = {100 * ncpu}%).")
print("fsd threads, idle -> most during a load (DuckDB's threads show here): " + "; ".join(
    f"duckdb_threads {t}: {min(r['fsd_threads'][0] for r in g)} -> "
    f"{max(r['fsd_threads'][1] for r in g)}"
    for t, g in ((t, [r for r in rows if r["threads"] == t])
                 for t in dict.fromkeys(r["threads"] for r in rows))))
for p in problems:
    print(f"PROBLEM: {p}")
if any(r["others"] >= 10 for r in rows):
    print("Other processes were busy during the measurements: expect longer tails than on an "
          "idle machine.")
print()
print("target: lookup p99 during a load <= 2x idle (reported, not asserted; median over runs "
      "of each run's ratio)" + (", NOT VALID: see PROBLEM above" if problems else "") + ":")
for threads, (ratio, group) in medians.items():
    verdict = "met" if ratio <= 2 else "MISSED"
    others = statistics.median(r["others"] for r in group)
    print(f"  duckdb_threads {threads}: {verdict}: {ratio:.2f}x (p99 idle "
          f"{statistics.median(r['idle_p99'] for r in group):.0f} us, during load "
          f"{statistics.median(r['load_p99'] for r in group):.0f} us; load "
          f"{statistics.median(r['load_s'] for r in group):.2f} s, "
          f"{statistics.median(r['rows_per_s'] for r in group) / 1e6:.2f}M rows/s)" +
          (f"; other processes used {others:.0f}% of a CPU: rerun on a quiet machine"
           if others >= 10 else ""))
PY
for err in "${TMP}"/*.err; do
    grep -v 'the open loop fell behind' "${err}" || true
done
