#!/usr/bin/env bash
# Lookup latency on a gRPC worker while a pushed snapshot (PushSnapshot) commits, against the
# same lookups on an idle server.
#
#   bash loadtest/push_commit_bench.sh            # 1M rows, 3 runs (~1.5 min; 3M rows ~4 min)
#   bash loadtest/push_commit_bench.sh --quick    # 1M rows, 1 run, short windows (~30 s)
#   bash loadtest/push_commit_bench.sh --build /path/to/other/build   # another build, same way
#
# When a PushSnapshot stream half-closes, fsd finishes the snapshot: it seals the table (a
# pass over every row computing the `default: mean` values), checks the view's data contract
# (a pass for the feature checks, and the live-merge preview for max_row_drop_percent), and
# commits it (store_view_load_commit). fsd logs how long that took as finish_ms on its
# "pushed snapshot swapped in" line. Where that work runs on the gRPC worker that owns the
# stream's connection, every other connection on that worker waits for it; this script
# measures how long lookups wait, and measures any build (--build) the same way, so a build
# that moves the work elsewhere can be compared with one that does not.
#
# The script starts build/bin/fsd with one worker (server.workers: 1, so the stream and the
# lookups share it) and the benchmark view "bench" (loadtest/bench_view.yaml) with no source
# (only pushes fill it): int64 key entity_id, d0..d7 double and count int64 with
# `default: mean`, label string, and a contract (min_rows, max_row_drop_percent, range checks
# on d3 and d6), so the seal, the contract passes and the live-merge preview all run. The
# rows are build/bin/materialize_bench's Parquet file (written once, cached in /tmp);
# build/bin/fsd-materialize reads it through a second config (the same view with the file as
# its source) and pushes every row as one PushSnapshot stream. After a first push (so the
# view has a snapshot to merge with and replace), per run:
#   - idle: build/bin/grpc_load looks up batches of 100 random entities, open loop at
#     2,000 calls/s over 2 connections (latency from each call's intended send time), for
#     --idle seconds;
#   - push: the same lookups start; 0.5 s later fsd-materialize pushes the file again and is
#     waited for; the lookups go on for --tail seconds more and, where the push left them
#     behind their schedule, until fsd has answered all the calls due (its GetFeatures count
#     on the stats port, read with curl; bounded), and are stopped (SIGUSR1).
#     "commit" is over the calls scheduled inside [ts - finish_ms, ts] of fsd's log line (ts
#     is written in whole milliseconds, truncated, so the window's end is taken as ts + 1 ms);
#     "whole push" over the calls scheduled between fsd-materialize's start and its end.
# Latency counts from each call's intended send time, so a backlog the stream's messages left
# (the worker also decodes and stores every message) shows in the commit figures too: the
# table says how far behind the lookups were when the commit began, and gives the longest
# time no lookup was answered ("answer gap": idle, during the stream, overlapping the
# commit), which a worker that stops answering shows whatever the backlog.
# Each run checks that the push succeeded, fsd logged exactly one swap for it, the version
# moved by one and every row arrived (anything else stops the script), and that the commit
# window lies inside the push and the lookups covered all of the push (else a PROBLEM: line
# marks the figures not valid). The log line is parsed by field name (order and extra fields
# do not matter), so a build that logs more keeps working as long as it keeps the msg and
# finish_ms (version and rows are checked where it logs them).
# Prints one Markdown table (each run, then the medians of the runs) and notes: reported, not
# asserted. fsd is stopped on exit, whatever happens; every wait is bounded.
#
# On a 2-core machine fsd (its worker and the push's work), fsd-materialize (DuckDB reading
# the file, encoding messages) and grpc_load share the cores; nothing is pinned. The CPU%
# others column says how busy the rest of the machine was.
#
# Options:
#   --quick        1 run, 3 s idle window, 0.5 s tail
#   --rows N       rows (= entities) in the pushed snapshot (default 1000000)
#   --runs N       idle + push pairs; medians printed (default 3)
#   --rate R       lookup calls/s (default 2000)
#   --batch B      entities per call (default 100)
#   --idle S       seconds of the idle window (default 10; --quick 3)
#   --tail S       seconds the lookups go on after the push, before the wait for them to
#                  catch up with their schedule (default 1; --quick 0.5)
#   --workers N    fsd worker threads (default 1: the stream and the lookups on one worker)
#   --build DIR    where fsd, fsctl, fsd-materialize, grpc_load and materialize_bench were
#                  built (default the repository's build/)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_NAME=push_commit_bench
# shellcheck source=loadtest/bench_lib.sh
source "${REPO_ROOT}/loadtest/bench_lib.sh"

BUILD="${REPO_ROOT}/build"
QUICK=0
ROWS=1000000
RUNS=""
RATE=2000
BATCH=100
IDLE_S=""
TAIL_S=""
WORKERS=1
LEAD_S=0.5         # lookups run this long before the push starts
TIMEOUT_MS=1000    # grpc-timeout of each lookup: a stall is measured, not refused at 1 ms
MAX_MESSAGE=4MiB   # fsd's server.max_message_bytes: fsd-materialize's messages are at most 4 MiB
FIRST_PUSH_S=600   # bound on the first push, which sets the bound of the others

while [[ $# -gt 0 ]]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --rows) ROWS="${2:?--rows needs a number}"; shift ;;
    --runs) RUNS="${2:?--runs needs a number}"; shift ;;
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
    RUNS="${RUNS:-1}" IDLE_S="${IDLE_S:-3}" TAIL_S="${TAIL_S:-0.5}"
    SETTLE_S=1
else
    RUNS="${RUNS:-3}" IDLE_S="${IDLE_S:-10}" TAIL_S="${TAIL_S:-1}"
    SETTLE_S=2 # after a push, for the old snapshot to be freed before the next idle window
fi
is_uint() { [[ $1 =~ ^[0-9]+$ ]] && ((10#$1 >= $2 && 10#$1 <= $3)); }
is_seconds() { [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]] && awk -v s="$1" -v lo="$2" -v hi="$3" \
    'BEGIN { exit !(s >= lo && s <= hi) }'; }
is_uint "${ROWS}" 1000 100000000 || bench_die "--rows: 1000..100000000"
is_uint "${RUNS}" 1 9 || bench_die "--runs: 1..9"
is_uint "${RATE}" 1 100000 || bench_die "--rate: 1..100000"
is_uint "${BATCH}" 1 10000 || bench_die "--batch: 1..10000"
is_uint "${WORKERS}" 1 64 || bench_die "--workers: 1..64"
is_seconds "${IDLE_S}" 1 120 || bench_die "--idle: 1..120 seconds"
is_seconds "${TAIL_S}" 0 10 || bench_die "--tail: 0..10 seconds"

FSD="${BUILD}/bin/fsd"
FSCTL="${BUILD}/bin/fsctl"
PUSHER="${BUILD}/bin/fsd-materialize"
GRPC_LOAD="${BUILD}/bin/grpc_load"
MAT_BENCH="${BUILD}/bin/materialize_bench"
for bin in "${FSD}" "${FSCTL}" "${PUSHER}" "${GRPC_LOAD}" "${MAT_BENCH}"; do
    [[ -x ${bin} ]] ||
        bench_die "no ${bin}; build first: cmake -S . -B build && cmake --build build"
done
PYTHON=/usr/bin/python3
[[ -x ${PYTHON} ]] || bench_die "no ${PYTHON}"
command -v curl >/dev/null || bench_die "no curl (Debian's curl): it reads fsd's stats port"

bench_setup
TMP="${BENCH_TMP}"
FSD_LOG="${TMP}/fsd.log" # where bench_start_fsd sends fsd's stderr

# The snapshot: materialize_bench's generator, cached across runs and benchmarks.
PARQUET="$("${MAT_BENCH}" --rows "${ROWS}" --write-only)" || bench_die "cannot write the file"
[[ -s ${PARQUET} ]] || bench_die "no ${PARQUET}"

now_us() { date +%s%6N; }

# view_config [SOURCE_LINE]: the bench view (loadtest/bench_view.yaml), every numeric feature
# with `default: mean`, a contract, and SOURCE_LINE if given. fsd's copy has no source;
# fsd-materialize's reads the Parquet file. Keys, features and contract are the same in both.
# The contract's ranges are those of materialize_bench's d3 and d6.
view_config() {
    bench_view_yaml --numeric-default mean "$(
        cat <<EOF
${1:-# no source: only PushSnapshot fills it}
contract:
  min_rows: 1000
  max_row_drop_percent: 50   # < 100 with a live snapshot: the live-merge preview runs
  features:
    d3: {max_null_rate: 0.01, range: [0, 1000]}
    d6: {max_null_rate: 0.01, range: [0, 1000000]}
EOF
    )"
}

{
    cat <<EOF
server:
  grpc_bind: 127.0.0.1
  grpc_port: 0
  stats_port: 0
  workers: ${WORKERS}
  max_message_bytes: ${MAX_MESSAGE}
  log_level: info
EOF
    echo "views:"
    view_config
} >"${TMP}/fsd.yaml"
{
    echo "views:"
    view_config "source: {type: parquet, path: \"${PARQUET}\", event_timestamp_column: ev}"
} >"${TMP}/push.yaml"

# snapshot_version: the bench view's version, from fsctl views --json.
snapshot_version() {
    kill -0 "${FSD_PID}" 2>/dev/null || { tail -n 20 "${FSD_LOG}" >&2; bench_die "fsd exited"; }
    "${FSCTL}" --addr "${FSD_ADDR}" views --json | "${PYTHON}" -c '
import json, sys
print({x["name"]: x for x in json.load(sys.stdin)["views"]}["bench"]["snapshot_version"])'
}

# push_events FROM_LINE: every "pushed snapshot swapped in" line of view bench in fsd's log
# after line FROM_LINE, one a line: ts_us finish_ms version rows. Fields are found by name
# (logfmt: key=value or key="quoted"), whatever their order and whatever else is logged; ts
# and finish_ms are needed, version and rows are -1 where a build does not log them.
push_events() {
    tail -n "+$(($1 + 1))" "${FSD_LOG}" | "${PYTHON}" -c '
import calendar, re, sys, time
field = re.compile(r"""([A-Za-z_][A-Za-z0-9_.]*)=("(?:[^"\\]|\\.)*"|\S*)""")
for line in sys.stdin:
    f = {k: v[1:-1] if v.startswith("\"") else v for k, v in field.findall(line)}
    if f.get("msg") != "pushed snapshot swapped in" or f.get("view") != "bench":
        continue
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?Z", f.get("ts", ""))
    if m is None or "finish_ms" not in f:
        sys.exit("cannot read ts or finish_ms in: " + line.strip())
    sec = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    frac = (m.group(2) or "").ljust(6, "0")
    print(sec * 1000000 + int(frac), float(f["finish_ms"]), int(f.get("version", -1)),
          int(f.get("rows", f.get("rows_received", -1))))
'
}

# push ID: runs fsd-materialize (its stdout in push.ID.out), waits at most PUSH_WAIT_S and
# sets PUSH_RC (124: it was stopped at the bound).
push() {
    "${PUSHER}" --addr "${FSD_ADDR}" --config "${TMP}/push.yaml" --view bench \
        --timeout "${PUSH_WAIT_S}" >"${TMP}/push.$1.out" 2>"${TMP}/push.$1.err" &
    local pid=$!
    bench_track "${pid}"
    local deadline=$((SECONDS + PUSH_WAIT_S + 10))
    while kill -0 "${pid}" 2>/dev/null && [[ ${SECONDS} -lt ${deadline} ]]; do
        sleep 0.05
    done
    PUSH_RC=0
    if kill -0 "${pid}" 2>/dev/null; then
        bench_stop_pid "${pid}"
        PUSH_RC=124
    else
        wait "${pid}" || PUSH_RC=$?
    fi
}

# answered_calls: GetFeatures calls fsd has answered (OK or not), from its stats port.
answered_calls() {
    { curl -s --max-time 2 "http://127.0.0.1:${FSD_STATS_PORT}/metrics" || true; } | awk '
        /^fsd_requests_total[{]method="GetFeatures"/ { n += $NF }
        END { printf "%d\n", n }'
}

# pushed_field ID KEY: a field of fsd-materialize's result line (view=V version=N ...).
pushed_field() { tr ' ' '\n' <"${TMP}/push.$1.out" | sed -n "s/^$2=//p" | tail -n 1; }

# lookup_cmd LOG DURATION: sets LOOKUP to the open-loop lookups' command (a JSON report on
# stdout). A command, not a function, so `"${LOOKUP[@]}" &` makes $! grpc_load itself, the
# process SIGUSR1 must reach.
lookup_cmd() {
    LOOKUP=("${GRPC_LOAD}" --addr "${FSD_ADDR}" --entities "${ROWS}"
        --batch "${BATCH}" --rate "${RATE}" --connections 2 --inflight 64
        --timeout "${TIMEOUT_MS}" --duration "$2" --latency-log "$1" --json)
}

echo "fsd $("${FSD}" --version | cut -d' ' -f2) (${BUILD}): ${WORKERS} worker(s), $(nproc)" \
    "CPUs; ${ROWS} rows x 10 features pushed from ${PARQUET}" \
    "($(($(stat -c %s "${PARQUET}") >> 20)) MiB); lookups: ${RATE} calls/s of ${BATCH}" \
    "entities; ${RUNS} run(s) of ${IDLE_S} s idle + one push"

bench_start_fsd "${TMP}/fsd.yaml"
PUSH_WAIT_S=${FIRST_PUSH_S}
first0_us="$(now_us)"
push first
first1_us="$(now_us)"
[[ ${PUSH_RC} -eq 0 ]] ||
    bench_die "the first push failed (${PUSH_RC}): $(cat "${TMP}/push.first.err")"
[[ $(snapshot_version) -ge 1 ]] || bench_die "no snapshot after the first push"
# fsd-materialize gives up after this long, the lookups get as long again to catch up with
# their schedule after it, and they run at most that long plus margins (grpc_load: 600 s);
# SIGUSR1 ends them as soon as they have caught up
PUSH_WAIT_S=$((((first1_us - first0_us) * 5) / 1000000 + 30))
[[ ${PUSH_WAIT_S} -le 270 ]] || PUSH_WAIT_S=270
CATCH_UP_S=${PUSH_WAIT_S}
MAX_LOOKUP_S=$(awk -v w="${PUSH_WAIT_S}" -v c="${CATCH_UP_S}" -v t="${TAIL_S}" \
    'BEGIN { print w + c + t + 30 }')
[[ -n ${FSD_STATS_PORT} ]] || bench_die "fsd logged no stats port"
echo "fsd on ${FSD_ADDR}; first push: $(cat "${TMP}/push.first.out")"
lookup_cmd /dev/null 1 # a warm-up, and a check that lookups work at all
"${LOOKUP[@]}" >/dev/null 2>"${TMP}/warmup.err" ||
    bench_die "the lookups fail: $(cat "${TMP}/warmup.err")"

RESULTS="${TMP}/runs.txt" # one line per run, for the report
: >"${RESULTS}"
for run in $(seq "${RUNS}"); do
    sleep "${SETTLE_S}"
    ticks0="$(bench_machine_ticks) $(bench_pid_ticks "${FSD_PID}") $(bench_children_ticks)"
    t0="$(now_us)"
    rc=0
    lookup_cmd "${TMP}/idle.${run}.log" "${IDLE_S}"
    "${LOOKUP[@]}" >"${TMP}/idle.${run}.json" 2>"${TMP}/idle.${run}.err" || rc=$?
    [[ ${rc} -eq 0 || ${rc} -eq 3 ]] || bench_die "the idle lookups failed:" \
        "$(cat "${TMP}/idle.${run}.err")" # 3: the run had errors, counted in the table

    v0="$(snapshot_version)"
    log_lines="$(wc -l <"${FSD_LOG}")"
    calls0="$(answered_calls)"
    lookups0_us="$(now_us)"
    lookup_cmd "${TMP}/busy.${run}.log" "${MAX_LOOKUP_S}"
    "${LOOKUP[@]}" >"${TMP}/busy.${run}.json" 2>"${TMP}/busy.${run}.err" &
    lookup_pid=$!
    bench_track "${lookup_pid}"
    sleep "${LEAD_S}"
    push0_us="$(now_us)"
    push "${run}"
    push1_us="$(now_us)"
    sleep "${TAIL_S}"
    # A long push can leave the open loop far behind its schedule: calls due by now but not
    # sent yet would be lost at SIGUSR1 (the commit's among them). Wait, bounded, until fsd
    # has answered as many calls as were due since the lookups started (a floor: grpc_load
    # starts measuring a little after that).
    due=$(awk -v r="${RATE}" -v a="${lookups0_us}" -v b="$(now_us)" \
        'BEGIN { printf "%d", r * (b - a) / 1e6 }')
    tail1_us="$(now_us)"
    deadline=$((SECONDS + CATCH_UP_S))
    while [[ $(($(answered_calls) - calls0)) -lt ${due} && ${SECONDS} -lt ${deadline} ]]; do
        kill -0 "${lookup_pid}" 2>/dev/null || break
        sleep 0.2
    done
    catch_up_us=$(($(now_us) - tail1_us))
    bench_stop_lookups "${lookup_pid}"
    t1="$(now_us)"
    ticks1="$(bench_machine_ticks) $(bench_pid_ticks "${FSD_PID}") $(bench_children_ticks)"

    [[ ${PUSH_RC} -eq 0 ]] || bench_die "run ${run}: the push failed (${PUSH_RC}):" \
        "$(cat "${TMP}/push.${run}.err")"
    [[ -s ${TMP}/busy.${run}.log ]] || bench_die "run ${run}: the lookups during the push" \
        "failed: $(cat "${TMP}/busy.${run}.err")"
    events=""
    for _ in $(seq 50); do # a build may log the swap just after it answers the stream
        events="$(push_events "${log_lines}")" || bench_die "run ${run}: cannot read fsd's log"
        [[ -z ${events} ]] || break
        sleep 0.1
    done
    [[ $(grep -c . <<<"${events}") -eq 1 ]] || bench_die "run ${run}: expected one" \
        "\"pushed snapshot swapped in\" line for the push, fsd logged: ${events:-none}"
    read -r ts_us finish_ms logged_version logged_rows <<<"${events}"
    v1="$(snapshot_version)"
    pushed_version="$(pushed_field "${run}" version)"
    rows_sent="$(pushed_field "${run}" rows_sent)"
    rows_kept="$(pushed_field "${run}" rows_kept)"
    [[ ${logged_version} -ge 0 ]] || logged_version=${v1} # not logged by this build
    [[ ${logged_rows} -ge 0 ]] || logged_rows=${rows_kept}
    [[ ${v1} -eq $((v0 + 1)) && ${logged_version} -eq ${v1} && ${pushed_version} -eq ${v1} ]] ||
        bench_die "run ${run}: the push did not swap one new version in (version ${v0} ->" \
            "${v1}; fsd logged ${logged_version}, fsd-materialize got ${pushed_version})"
    [[ ${rows_sent} -eq ${ROWS} && ${rows_kept} -eq ${ROWS} && ${logged_rows} -eq ${ROWS} ]] ||
        bench_die "run ${run}: ${ROWS} rows expected; fsd-materialize sent ${rows_sent}, fsd" \
            "kept ${rows_kept} (logged ${logged_rows})"
    echo "${run} ${ts_us} ${finish_ms} ${v0} ${v1} ${rows_kept} ${push0_us} ${push1_us}" \
        "${t0} ${t1} ${ticks0} ${ticks1} ${catch_up_us}" >>"${RESULTS}"
    echo "  run ${run}: pushed version ${v1} in $(awk -v a="${push0_us}" -v b="${push1_us}" \
        'BEGIN { printf "%.2f", (b - a) / 1e6 }') s, finish_ms ${finish_ms}"
done
bench_stop_pid "${FSD_PID}"

"${PYTHON}" - "${TMP}" "${RESULTS}" "$(getconf CLK_TCK)" "$(nproc)" <<'PY'
import math, statistics, sys

tmp, results, hz, ncpu = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
LATE_US = 1000  # grpc_load's "late send"
TS_RESOLUTION_US = 1000  # fsd's ts is written in whole milliseconds, truncated
BEHIND_US = 5000  # the lookups this far behind at the commit's start: its figures carry a backlog


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
    """Percentiles of the calls scheduled (intended send time) in [lo, hi)."""
    inside = [c for c in cs if lo <= c[0] < hi]
    lat = sorted(c[1] for c in inside)
    return {"n": len(inside), "p50": pct(lat, 50), "p99": pct(lat, 99), "p999": pct(lat, 99.9),
            "max": lat[-1] if lat else math.nan,
            "late": sum(c[2] > LATE_US for c in inside),
            "errors": sum(not c[3] for c in inside)}


def answer_gap(cs, lo=-math.inf, hi=math.inf, within=False):
    """The longest time (us) no lookup was answered, among the gaps between consecutive
    answers (start + latency) that overlap [lo, hi], or lie inside it with within=True. At
    2,000 calls/s answers come every ~0.5 ms; a worker that answers nothing for a while shows
    as a gap that long, whatever backlog the generator has."""
    done = sorted(c[0] + c[1] for c in cs)
    gaps = [b - a for a, b in zip(done, done[1:])
            if (lo <= a and b <= hi if within else b > lo and a < hi)]
    return max(gaps) if gaps else math.nan


rows, problems, notes = [], [], []
for line in open(results):
    f = line.split()
    run, ts, finish_ms = int(f[0]), int(f[1]), float(f[2])
    v0, v1, nrows, push0, push1, t0, t1 = map(int, f[3:10])
    m0, p0, c0, m1, p1, c1, catch_up = map(int, f[10:17])
    lo, hi = ts - round(finish_ms * 1000), ts + TS_RESOLUTION_US
    idle_calls = calls(f"{tmp}/idle.{run}.log")
    push_calls = calls(f"{tmp}/busy.{run}.log")
    idle = window(idle_calls)
    commit = window(push_calls, lo, hi)
    whole = window(push_calls, push0, push1)
    before = [c for c in push_calls if c[0] < lo]
    behind = max(before, key=lambda c: c[0])[2] if before else math.nan
    # fsd's commit window must lie inside the push, and the lookups must cover all of the push
    if not (push0 <= lo and hi <= push1 + 2e5):
        problems.append(f"run {run}: fsd's commit window ({lo}..{hi}) is not inside the push "
                        f"({push0}..{push1}): the commit figures are not over the commit")
    if not push_calls or (min(c[0] for c in push_calls) > push0 or
                          max(c[0] for c in push_calls) < push1):
        problems.append(f"run {run}: the lookups did not cover the whole push")
    if behind > BEHIND_US:
        notes.append(f"run {run}: when the commit began the lookups were already "
                     f"{behind / 1000:.0f} ms behind their schedule (the stream's messages had "
                     "kept the worker from answering): its commit p50/p99/max include that "
                     "backlog; its answer gap does not")
    elapsed_s = (t1 - t0) / 1e6
    others = max(0.0, ((m1 - m0) - (p1 - p0) - (c1 - c0)) / hz / elapsed_s * 100)
    rows.append({
        "run": run,
        "idle_p50": idle["p50"], "idle_p99": idle["p99"], "idle_p999": idle["p999"],
        "idle_max": idle["max"], "finish_ms": finish_ms,
        "commit_n": commit["n"], "commit_p50": commit["p50"], "commit_p99": commit["p99"],
        "commit_max": commit["max"], "behind": behind / 1000,
        "gap_idle": answer_gap(idle_calls) / 1000,
        "gap_stream": answer_gap(push_calls, push0, lo, within=True) / 1000,
        "gap_commit": answer_gap(push_calls, lo, hi) / 1000,
        "push_p99": whole["p99"], "push_max": whole["max"],
        "push_s": (push1 - push0) / 1e6, "catch_up_s": catch_up / 1e6, "rows": nrows,
        "version": f"{v0} -> {v1}",
        "late": f"{idle['late']} / {whole['late']}",
        "errors": idle["errors"] + window(push_calls)["errors"], "others": others,
    })

cols = [("run", "run", "%s"),
        ("idle p50 us", "idle_p50", "%.0f"), ("idle p99 us", "idle_p99", "%.0f"),
        ("idle p999 us", "idle_p999", "%.0f"), ("idle max us", "idle_max", "%.0f"),
        ("finish_ms", "finish_ms", "%.1f"), ("calls in commit", "commit_n", "%d"),
        ("commit p50 us", "commit_p50", "%.0f"), ("commit p99 us", "commit_p99", "%.0f"),
        ("commit max us", "commit_max", "%.0f"), ("behind at commit ms", "behind", "%.1f"),
        ("answer gap idle ms", "gap_idle", "%.1f"),
        ("answer gap stream ms", "gap_stream", "%.1f"),
        ("answer gap commit ms", "gap_commit", "%.1f"),
        ("push p99 us", "push_p99", "%.0f"), ("push max us", "push_max", "%.0f"),
        ("push s", "push_s", "%.2f"), ("catch-up s", "catch_up_s", "%.1f"),
        ("rows", "rows", "%d"), ("version", "version", "%s"),
        ("late sends idle / push", "late", "%s"), ("errors", "errors", "%d"),
        ("CPU% others", "others", "%.0f")]
numeric = {k for _, k, _ in cols} - {"run", "version", "late", "errors"}


def fmt(fmt_, v):
    return "-" if isinstance(v, float) and math.isnan(v) else fmt_ % v


def median(vs):
    vs = [v for v in vs if not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(vs) if vs else math.nan


print()
print("| " + " | ".join(c[0] for c in cols) + " |")
print("|---|" + "---:|" * (len(cols) - 1))
for r in rows:
    print("| " + " | ".join(fmt(f, r[k]) for _, k, f in cols) + " |")
if len(rows) > 1:
    m = {k: median(r[k] for r in rows) for k in numeric}
    m.update(run="**median**", version="", late="", errors=sum(r["errors"] for r in rows))
    print("| " + " | ".join(fmt(f, m[k]) for _, k, f in cols) + " |")
print()
print("Latency is per call of the open loop, from its intended send time to the end of the "
      "response, in microseconds; percentiles are exact (nearest rank) over the calls in each "
      "window. idle: a whole idle window; commit: calls scheduled inside fsd's finish window, "
      "[ts - finish_ms, ts + 1 ms] of its \"pushed snapshot swapped in\" line (seal, contract, "
      "live-merge preview, commit); push: calls scheduled between fsd-materialize's start and "
      "its exit (the stream's messages, then the finish). behind at commit: how late the last "
      "call scheduled before the commit window was sent (the generator's backlog when the "
      "commit began). answer gap: the longest time no lookup was answered, in the idle window, "
      "during the stream before the commit, and overlapping the commit: a worker that stops "
      "answering shows here whatever the backlog. push s: fsd-materialize's wall time. "
      "catch-up s: how long after the push and its tail the lookups took to catch up with "
      "their schedule (0: they were on time). Late sends: sent more than 1 ms after their "
      "intended time (the generator fell behind; still counted from the intended time). "
      "errors: calls not OK in the idle window and all of the push's lookups (each has a 1 s "
      "grpc-timeout). CPU% others: CPU time of processes outside this benchmark over the run, "
      f"in % of one CPU ({ncpu} CPUs = {100 * ncpu}%).")
for n in notes:
    print(f"NOTE: {n}")
for p in problems:
    print(f"PROBLEM: {p}")
if any(r["others"] >= 10 for r in rows):
    print("Other processes were busy during the measurements: expect longer tails than on an "
          "idle machine.")
fin = median(r["finish_ms"] for r in rows)
gap = median(r["gap_commit"] for r in rows)
print()
print(f"medians: finish_ms {fin:.1f}; longest answer gap idle "
      f"{median(r['gap_idle'] for r in rows):.1f} ms, stream "
      f"{median(r['gap_stream'] for r in rows):.1f} ms, commit {gap:.1f} ms "
      f"({gap / fin if fin > 0 else math.nan:.2f}x finish_ms: about 1 or more when the worker "
      "answers nothing while the push finishes); lookup p99 idle "
      f"{median(r['idle_p99'] for r in rows):.0f} us, during the commit "
      f"{median(r['commit_p99'] for r in rows):.0f} us, during the push "
      f"{median(r['push_p99'] for r in rows):.0f} us" +
      (", NOT VALID: see PROBLEM above" if problems else ""))
PY
for err in "${TMP}"/idle.*.err "${TMP}"/busy.*.err; do # grpc_load's, not fsd-materialize's progress
    grep -v 'the open loop fell behind' "${err}" || true
done
