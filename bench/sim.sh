#!/usr/bin/env bash
# fus-sim serving benchmark (loopback):
#  1. throughput of one `curl -o /dev/null` of the 20 GB build's encrypted file (the first
#     BENCH_BYTES via a Range, 8 GiB by default; BENCH_BYTES=all for the whole file),
#     median of RUNS (5);
#  2. the per-connection throttle (--throttle-bps, 20 MB/s by default): measured rate vs the
#     setting, median of 3;
#  3. peak RSS (VmHWM) of fus-sim before and after one whole 20 GB download.
#
# usage: bench/sim.sh [path/to/fus-sim]      (default: build/sim/fus-sim)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
sim="${1:-$here/../build/sim/fus-sim}"
runs="${RUNS:-5}"
bench_bytes="${BENCH_BYTES:-8589934592}"
throttle="${THROTTLE_BPS:-20000000}"
throttle_bytes="${THROTTLE_BYTES:-80000000}"
python="$(command -v /usr/bin/python3 || command -v python3)"
[ -x "$sim" ] || { echo "no fus-sim at $sim (build the fus-sim target)" >&2; exit 2; }

dir="$(mktemp -d)"
pid=""
cleanup() {
  stop_pid "$pid"
  rm -rf "$dir"
}
trap cleanup EXIT

start_sim() {  # extra args...
  rm -f "$dir/port"
  "$sim" --listen 127.0.0.1:0 --port-file "$dir/port" "$@" 2>"$dir/sim.log" &
  pid=$!
  for _ in $(seq 200); do
    [ -s "$dir/port" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$dir/sim.log" >&2; exit 1; }
    sleep 0.05
  done
  port="$(cat "$dir/port")"
  mapfile -t auth < <("$python" "$here/sim_authorise.py" "$port" SM-BIG00 BIG)
  url="${auth[0]}" header="${auth[1]}" total="${auth[2]}"
}
stop_sim() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }

hwm_kib() { awk '/VmHWM/ {print $2}' "/proc/$pid/status"; }

fetch() {  # range -> bytes/s
  curl -s -o /dev/null -H "Authorization: $header" ${1:+-r "$1"} -w '%{speed_download}\n' "$url"
}

# 1. throughput
start_sim
range=""
[ "$bench_bytes" != all ] && range="0-$((bench_bytes - 1))"
echo "fus-sim throughput: ${bench_bytes} bytes of $total, one curl, $runs runs"
speeds=()
for i in $(seq "$runs"); do
  s="$(fetch "$range")"
  speeds+=("$s")
  awk -v s="$s" -v i="$i" 'BEGIN {printf "  run %d: %.2f GB/s\n", i, s / 1e9}'
done
med="$(printf '%s\n' "${speeds[@]}" | median)"
awk -v s="$med" 'BEGIN {printf "median throughput: %.2f GB/s (target >= 1.5)\n", s / 1e9}'

# 3. memory: one whole 20 GB download
before="$(hwm_kib)"
fetch "" >/dev/null
after="$(hwm_kib)"
echo "fus-sim VmHWM: ${before} KiB before, ${after} KiB after a whole ${total}-byte download"
stop_sim

# 2. throttle
start_sim --throttle-bps "$throttle"
echo "throttle: --throttle-bps $throttle, ${throttle_bytes} bytes per run, 3 runs"
rates=()
for i in 1 2 3; do
  r="$(fetch "0-$((throttle_bytes - 1))")"
  rates+=("$r")
  awk -v r="$r" -v t="$throttle" -v i="$i" 'BEGIN {printf "  run %d: %.2f MB/s (%+.1f%%)\n", i, r / 1e6, (r - t) * 100 / t}'
done
med="$(printf '%s\n' "${rates[@]}" | median)"
awk -v r="$med" -v t="$throttle" 'BEGIN {printf "median throttled rate: %.2f MB/s for %.2f MB/s set (%+.1f%%, target within 10%%)\n", r / 1e6, t / 1e6, (r - t) * 100 / t}'
stop_sim
