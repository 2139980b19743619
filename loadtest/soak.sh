#!/usr/bin/env bash
# The soak: one fsd under every kind of traffic at once (lookups of batches 1 to 1000,
# PushRows, PushSnapshot, a Parquet view refreshed on a schedule, a Redis stream, SIGHUP
# reloads, malformed requests, stalled readers, idle connections, rapid resets, a trickling
# stats-port client), with answers checked against an oracle of what was written:
#
#   bash loadtest/soak.sh             # 10 minutes
#   bash loadtest/soak.sh --quick     # 1 minute
#
# Prints a report (calls, errors, wrong answers, reloads, RSS over time and its drift) and
# exits non-zero when there was an error beyond the deliberately bad requests, a wrong answer,
# or when the peak RSS of the last minute exceeds the first minute's after warm-up by more
# than 10 %. soak.csv, soak.png (gnuplot), fsd.log and report.md are kept in --out. What is
# checked, and how, is at the top of loadtest/soak.py. Everything runs on 127.0.0.1; fsd and
# Redis are started here and stopped however the script ends.
#
# Options:
#   --quick          1 minute
#   --duration S     seconds (default 600)
#   --out DIR        where the report, CSV, plot and log go (default build/soak)
#   --build DIR      where fsd was built (default build)
#   --no-rss-check   report the RSS drift but do not fail on it (runs too short to judge it)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${REPO_ROOT}/build"
OUT=""
DURATION=600
EXTRA=()
die() {
    echo "soak: $*" >&2
    exit 1
}
while [[ $# -gt 0 ]]; do
    case "$1" in
    --quick) DURATION=60 ;;
    --duration) DURATION="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    --build) BUILD="$2"; shift ;;
    --no-rss-check) EXTRA+=(--no-rss-check) ;;
    *) die "unknown option $1 (see the top of $0)" ;;
    esac
    shift
done
[[ ${DURATION} =~ ^[0-9]+$ && ${DURATION} -ge 20 && ${DURATION} -le 86400 ]] ||
    die "--duration must be whole seconds from 20 to 86400"
OUT="${OUT:-${BUILD}/soak}"
[[ -x ${BUILD}/bin/fsd ]] || die "build fsd first (no ${BUILD}/bin/fsd)"
[[ -d ${BUILD}/python/fsd ]] || die "no Python stubs in ${BUILD}/python (configure with protoc)"
command -v redis-server >/dev/null || die "redis-server is missing (bash scripts/setup.sh)"
DUCKDB_LIB="${FSD_DUCKDB_LIB:-${DUCKDB_ROOT:-${REPO_ROOT}/third_party/duckdb}/lib/libduckdb.so}"
[[ -f ${DUCKDB_LIB} ]] || die "no ${DUCKDB_LIB} (bash scripts/setup.sh)"

# Debian's interpreter: grpcio, redis and h2 are its packages. The driver bounds itself (its
# threads stop at the duration, every call has a deadline); timeout is the last resort.
FSD_BIN="${BUILD}/bin/fsd" FSD_PYPROTO="${BUILD}/python" FSD_DUCKDB_LIB="${DUCKDB_LIB}" \
    PYTHONDONTWRITEBYTECODE=1 timeout --kill-after=10 "$((DURATION + 120))" \
    /usr/bin/python3 -u "${REPO_ROOT}/loadtest/soak.py" --duration "${DURATION}" --out "${OUT}" \
    "${EXTRA[@]}"
