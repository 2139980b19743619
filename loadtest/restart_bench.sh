#!/usr/bin/env bash
# What store.data_dir costs and buys: a view of N rows x 10 features (the benchmark view,
# materialize_bench's Parquet file), in one run on this machine:
#
#   bash loadtest/restart_bench.sh            # 10M rows (~2.5 GB of RAM for fsd, ~4 minutes)
#   bash loadtest/restart_bench.sh --quick    # 1M rows
#
#   - cold load: fsd starts with an empty data_dir and loads the Parquet file; the time from
#     exec to the view's first snapshot, and the checkpoint written after it (its duration
#     and size);
#   - restart: the same fsd stopped and started again; the time from exec to "fsd ready",
#     which comes after the view was restored from its checkpoint (the file is in the page
#     cache, as after a process restart), and the restore alone;
#   - lookups (batches of 100, 1000 calls/s, open loop) idle, and while checkpoints of the
#     whole table are written back to back (checkpoint_interval 1s, a one-row push every
#     0.3 s), after three checkpoints (a running fsd's: each then writes over the spare
#     generation); p99 of each (counted from the intended send times, and from the actual
#     sends: the generator shares the 2 cores and falls behind at times), how many
#     checkpoints the busy window held and how long the last one took;
#   - PushRows: grpc_load --fill of 1M rows (one client, batches of 5000) into a push-only
#     view with durability none, group and always; rows/s, and each against none;
#   - Redis, the same rows packed (SET of the protobuf row, as redis_compare's redis-packed):
#     SAVE, then the restart of a redis-server loading that RDB file (its log's "DB loaded
#     from disk" time), beside fsd's restart.
#
# Prints one Markdown table, medians of --runs restarts and fills, and how busy the machine
# was. Everything is on 127.0.0.1, in a temporary directory removed afterwards.
#
# Options:
#   --quick       1M rows
#   --rows N      rows (default 10000000)
#   --runs N      restarts and fills per figure (default 3)
#   --max-rate R  store.checkpoint_max_rate for the run (default: fsd's, 0: unpaced)
#   --build DIR   where fsd, grpc_load and materialize_bench were built (default build)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_NAME=restart_bench
# shellcheck source=loadtest/bench_lib.sh
source "${REPO_ROOT}/loadtest/bench_lib.sh"
BUILD="${REPO_ROOT}/build"
ROWS=10000000
RUNS=3
FILL_ROWS=1000000
MAX_RATE=""
while [[ $# -gt 0 ]]; do
    case "$1" in
    --quick) ROWS=1000000 ;;
    --rows) ROWS="$2"; shift ;;
    --runs) RUNS="$2"; shift ;;
    --max-rate) MAX_RATE="$2"; shift ;;
    --build) BUILD="$2"; shift ;;
    *) bench_die "unknown option $1 (see the top of $0)" ;;
    esac
    shift
done
FSD="${BUILD}/bin/fsd"
LOAD="${BUILD}/bin/grpc_load"
MAT_BENCH="${BUILD}/bin/materialize_bench"
[[ -x ${FSD} && -x ${LOAD} && -x ${MAT_BENCH} ]] || bench_die "build fsd, grpc_load and materialize_bench first (${BUILD})"
REDIS_SERVER="$(command -v redis-server)" || bench_die "no redis-server (bash scripts/setup.sh)"
bench_setup

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
metric() { # metric NAME_WITH_LABELS: its value on fsd's stats port, or "" when absent
    /usr/bin/python3 - "${FSD_STATS_PORT}" "$1" <<'EOF'
import sys, urllib.request
body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
for line in body.splitlines():
    if line.startswith(sys.argv[2] + " "):
        print(line.split()[-1])
        break
EOF
}
wait_metric() { # wait_metric NAME MIN TIMEOUT_S: until the metric reaches MIN
    local deadline=$((SECONDS + $3)) v
    while ((SECONDS < deadline)); do
        v="$(metric "$1")"
        if [[ -n ${v} ]] && awk -v v="${v}" -v m="$2" 'BEGIN { exit !(v >= m) }'; then
            return 0
        fi
        sleep 0.1
    done
    bench_die "$1 did not reach $2 within $3 s"
}

busy0="$(bench_machine_ticks)"
PARQUET="$("${MAT_BENCH}" --rows "${ROWS}" --write-only)" || bench_die "cannot write the Parquet file"
DATA="${BENCH_TMP}/data"
mkdir -p "${DATA}"
CONFIG="${BENCH_TMP}/fsd.yaml"
{
    printf 'server: {grpc_port: 0, stats_port: 0, workers: 1}\n'
    printf 'store: {data_dir: "%s", %sdurability: group}\n' "${DATA}" \
        "${MAX_RATE:+checkpoint_max_rate: ${MAX_RATE}, }"
    printf 'views:\n'
    bench_view_yaml "source: {type: parquet, path: \"${PARQUET}\", event_timestamp_column: ev}"
} >"${CONFIG}"

# ---- cold load, then the checkpoint after it --------------------------------------------------
t0="$(now)"
bench_start_fsd "${CONFIG}"
wait_metric 'fsd_view_snapshot_version{view="bench"}' 1 900
cold_s="$(secs "${t0}" "$(now)")"
wait_metric 'fsd_checkpoints_total{view="bench",result="ok"}' 2 900 # the empty one, then this
ckpt_s="$(metric 'fsd_checkpoint_last_duration_seconds{view="bench"}')"
ckpt_bytes="$(metric 'fsd_checkpoint_bytes{view="bench"}')"
bench_stop_pid "${FSD_PID}"

# ---- restarts from the checkpoint -------------------------------------------------------------
restarts=() restores=()
for _ in $(seq "${RUNS}"); do
    t0="$(now)"
    bench_start_fsd "${CONFIG}" # returns at "fsd ready": after the restore and the log replay
    restarts+=("$(secs "${t0}" "$(now)")")
    restores+=("$(metric 'fsd_checkpoint_restore_seconds{view="bench"}')")
    rows="$(metric 'fsd_checkpoint_restored_rows{view="bench"}')"
    [[ ${rows} == "${ROWS}" ]] || bench_die "restored ${rows} rows, not ${ROWS}"
    bench_stop_pid "${FSD_PID}"
done
restart_s="$(printf '%s\n' "${restarts[@]}" | median)"
restore_s="$(printf '%s\n' "${restores[@]}" | median)"

# ---- lookups while checkpoints are written, against idle -------------------------------------
# checkpoint_interval 1s and a one-row PushRows every 0.3 s keep the view due: a checkpoint of
# the whole table is being written most of the time. Open loop, batches of 100 at 1000 calls/s.
sed 's/durability: group}/durability: group, checkpoint_interval: 1s}/' "${CONFIG}" >"${BENCH_TMP}/busy.yaml"
bench_start_fsd "${BENCH_TMP}/busy.yaml"
# Three checkpoints first: the third writes over the spare generation (VIEW.ckpt.spare), as
# every checkpoint of a running fsd does; the first ones after a start take fresh pages.
for _ in 1 2 3; do
    c0="$(metric 'fsd_checkpoints_total{view="bench",result="ok"}')"
    "${LOAD}" --addr "${FSD_ADDR}" --fill 1 >/dev/null
    wait_metric 'fsd_checkpoints_total{view="bench",result="ok"}' "$((c0 + 1))" 300
done
lookups() {
    "${LOAD}" --addr "${FSD_ADDR}" --entities "${ROWS}" --batch 100 --rate 1000 --duration 10 \
        --timeout 5000 --json | /usr/bin/python3 -c 'import json, sys; d = json.load(sys.stdin)
print(d["p99_us"], d["sent_p99_us"], d["late_sends"])'
}
idle_p99=() busy_p99=() busy_ckpts=() busy_ckpt_s=() idle_sent=() busy_sent=() idle_late=() busy_late=()
for _ in $(seq "${RUNS}"); do
    read -r p sent late <<<"$(lookups)"
    idle_p99+=("${p}") idle_sent+=("${sent}") idle_late+=("${late}")
    c0="$(metric 'fsd_checkpoints_total{view="bench",result="ok"}')"
    (for _ in $(seq 40); do "${LOAD}" --addr "${FSD_ADDR}" --fill 1 >/dev/null; sleep 0.3; done) &
    pusher=$!
    read -r p sent late <<<"$(lookups)"
    busy_p99+=("${p}") busy_sent+=("${sent}") busy_late+=("${late}")
    wait "${pusher}"
    busy_ckpts+=("$(awk -v a="${c0}" -v b="$(metric 'fsd_checkpoints_total{view="bench",result="ok"}')" 'BEGIN { print b - a }')")
    busy_ckpt_s+=("$(metric 'fsd_checkpoint_last_duration_seconds{view="bench"}')")
    sleep 3 # the last checkpoint finishes before the next idle run
done
bench_stop_pid "${FSD_PID}"
idle_p99_us="$(printf '%s\n' "${idle_p99[@]}" | median)"
busy_p99_us="$(printf '%s\n' "${busy_p99[@]}" | median)"
idle_sent_us="$(printf '%s\n' "${idle_sent[@]}" | median)"
busy_sent_us="$(printf '%s\n' "${busy_sent[@]}" | median)"
idle_late_n="$(printf '%s\n' "${idle_late[@]}" | median)"
busy_late_n="$(printf '%s\n' "${busy_late[@]}" | median)"
busy_ckpt_n="$(printf '%s\n' "${busy_ckpts[@]}" | median)"
steady_ckpt_s="$(printf '%s\n' "${busy_ckpt_s[@]}" | median)"

# ---- PushRows with each durability -------------------------------------------------------------
declare -A fill_rate
for mode in none group always; do
    rates=()
    for _ in $(seq "${RUNS}"); do
        rm -rf "${DATA}" && mkdir -p "${DATA}"
        {
            printf 'server: {grpc_port: 0, stats_port: 0, workers: 1}\n'
            printf 'store: {data_dir: "%s", durability: %s}\n' "${DATA}" "${mode}"
            printf 'views:\n'
            bench_view_yaml
        } >"${BENCH_TMP}/push.yaml"
        bench_start_fsd "${BENCH_TMP}/push.yaml"
        t0="$(now)"
        "${LOAD}" --addr "${FSD_ADDR}" --fill "${FILL_ROWS}" --view bench >/dev/null
        rates+=("$(awk -v n="${FILL_ROWS}" -v s="$(secs "${t0}" "$(now)")" 'BEGIN { printf "%.0f", n / s }')")
        bench_stop_pid "${FSD_PID}"
    done
    fill_rate[${mode}]="$(printf '%s\n' "${rates[@]}" | median)"
done

# ---- Redis: the same rows from an RDB file ----------------------------------------------------
REDIS_DIR="${BENCH_TMP}/redis"
mkdir -p "${REDIS_DIR}"
REDIS_PORT="$(bench_free_port)"
start_redis() {
    "${REDIS_SERVER}" --port "${REDIS_PORT}" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "${REDIS_DIR}" --logfile "${REDIS_DIR}/redis.log" &
    REDIS_PID=$!
    bench_track "${REDIS_PID}"
    for _ in $(seq 6000); do # up to 10 min: a big RDB file loads first
        redis-cli -p "${REDIS_PORT}" ping 2>/dev/null | grep -q PONG && return 0
        sleep 0.1
    done
    bench_die "redis-server did not answer"
}
start_redis
"${LOAD}" --target redis-packed --addr "127.0.0.1:${REDIS_PORT}" --fill "${ROWS}" >/dev/null
redis-cli -p "${REDIS_PORT}" save >/dev/null
rdb_bytes="$(stat -c %s "${REDIS_DIR}/dump.rdb")"
bench_stop_pid "${REDIS_PID}"
redis_loads=()
for _ in $(seq "${RUNS}"); do
    : >"${REDIS_DIR}/redis.log"
    t0="$(now)"
    start_redis
    wall="$(secs "${t0}" "$(now)")"
    loaded="$(sed -n 's/.*DB loaded from disk: \([0-9.]*\) seconds.*/\1/p' "${REDIS_DIR}/redis.log")"
    redis_loads+=("${loaded:-${wall}}")
    redis_walls+=("${wall}")
    bench_stop_pid "${REDIS_PID}"
done
redis_load_s="$(printf '%s\n' "${redis_loads[@]}" | median)"
redis_wall_s="$(printf '%s\n' "${redis_walls[@]}" | median)"
busy1="$(bench_machine_ticks)"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }
echo
echo "restart_bench: ${ROWS} rows x 10 features, medians of ${RUNS}; $(nproc) CPUs"
echo
echo "| what | figure | against |"
echo "|---|---:|---|"
echo "| cold load from Parquet (exec to first snapshot) | ${cold_s} s | |"
echo "| checkpoint write after it | ${ckpt_s} s, $(awk -v b="${ckpt_bytes}" 'BEGIN { printf "%.0f MiB", b / 1048576 }') | |"
echo "| checkpoint write of a running fsd (over the spare generation) | ${steady_ckpt_s} s | store.checkpoint_max_rate ${MAX_RATE:-0 (default)} |"
echo "| restart from the checkpoint (exec to fsd ready) | ${restart_s} s | $(ratio "${restart_s}" "${cold_s}") the cold load |"
echo "| of which the restore | ${restore_s} s | |"
echo "| Redis restart from RDB (exec to PING; RDB load alone) | ${redis_wall_s} s (${redis_load_s} s), $(awk -v b="${rdb_bytes}" 'BEGIN { printf "%.0f MiB", b / 1048576 }') | fsd restart $(ratio "${restart_s}" "${redis_wall_s}") Redis' |"
echo "| lookup p99, batch 100 at 1000/s, idle | ${idle_p99_us} us | ${idle_late_n} of 10000 sends 1 ms late |"
echo "| lookup p99, the same while checkpoints are written (${busy_ckpt_n} in 10 s) | ${busy_p99_us} us | $(ratio "${busy_p99_us}" "${idle_p99_us}") idle; ${busy_late_n} sends late |"
echo "| the same two from the actual sends (without the generator's lateness) | ${idle_sent_us} / ${busy_sent_us} us | $(ratio "${busy_sent_us}" "${idle_sent_us}") idle |"
for mode in none group always; do
    echo "| PushRows ${FILL_ROWS} rows, durability ${mode} | ${fill_rate[${mode}]} rows/s | $(ratio "${fill_rate[${mode}]}" "${fill_rate[none]}") none |"
done
echo
echo "CPU busy over the run: $(awk -v t="$((busy1 - busy0))" -v s="${SECONDS}" -v c="$(nproc)" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f%%", 100 * t / hz / (s * c) }') of the machine for ${SECONDS} s (fsd, Redis and the generators included)"
