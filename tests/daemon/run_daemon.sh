#!/bin/sh
# Starts `fsd --config CONFIG` (on free ports, so it never collides with a running fsd),
# waits for "fsd ready", sends SIGHUP then SIGTERM, and checks the log lines and that the
# daemon exits 0.   usage: run_daemon.sh FSD CONFIG
set -u
fsd=$1
log=$(mktemp)
config=$(mktemp --suffix=.yaml)
trap 'rm -f "$log" "$config"' EXIT
sed -e 's/^\(  *grpc_port:\).*/\1 0/' -e 's/^\(  *stats_port:\).*/\1 0/' "$2" >"$config"

"$fsd" --config "$config" 2>"$log" &
pid=$!

wait_for() {
    i=0
    while ! grep -q "$1" "$log"; do
        i=$((i + 1))
        if [ $i -gt 100 ]; then
            echo "timed out waiting for: $1"; cat "$log"; kill -9 $pid 2>/dev/null; exit 1
        fi
        sleep 0.05
    done
}

wait_for 'msg="fsd ready"'
kill -HUP $pid
wait_for 'level=info msg="config reloaded"'
kill -TERM $pid
wait $pid
rc=$?
cat "$log"
if [ $rc -ne 0 ]; then
    echo "fsd exited with $rc"; exit 1
fi
grep -q 'msg="shutting down: finishing calls in flight" signal=SIGTERM' "$log" || { echo "no shutdown line"; exit 1; }
grep -q 'msg="view added" view=user_features join_keys=1' "$log" || { echo "no view line"; exit 1; }
echo "ok"
