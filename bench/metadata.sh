#!/usr/bin/env bash
# fusproxy metadata benchmark (loopback): wrk against a cached metadata route of a running
# fusproxy (its upstream a fus-sim). The first request fills the cache; wrk then measures
# the HTTP server + resolver cache path. Prints requests/s and p99 latency, median of RUNS
# (3) runs of `wrk -t2 -c64 -d10s --latency`.
#
# usage: bench/metadata.sh [path/to/fusproxy [path/to/fus-sim]]
#        ROUTE=/firmware/SM-A207F/SER/latest RUNS=3 DURATION=10s bench/metadata.sh
# needs wrk: FUSPROXY_SETUP_BENCH=1 bash scripts/setup.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
proxy="${1:-$here/../build/cli/fusproxy}"
sim="${2:-$here/../build/sim/fus-sim}"
runs="${RUNS:-3}"
duration="${DURATION:-10s}"
route="${ROUTE:-/firmware/SM-A207F/SER/A207FXXU2CUI2_A207FOXM2CUI2_A207FXXU2CUI2_A207FXXU2CUI2}"
command -v wrk >/dev/null || { echo "no wrk: FUSPROXY_SETUP_BENCH=1 bash scripts/setup.sh" >&2; exit 2; }
[ -x "$proxy" ] || { echo "no fusproxy at $proxy (build the fusproxy target)" >&2; exit 2; }
[ -x "$sim" ] || { echo "no fus-sim at $sim (build the fus-sim target)" >&2; exit 2; }

dir="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT


"$sim" --listen 127.0.0.1:0 --port-file "$dir/sim.port" 2>"$dir/sim.log" &
pids+=($!)
wait_port "$dir/sim.port" "${pids[-1]}"
base="http://127.0.0.1:$(cat "$dir/sim.port")/"
"$proxy" --listen 127.0.0.1:0 --port-file "$dir/proxy.port" --cache-dir "$dir/cache" \
  --fus-url "$base" --cloud-url "$base" --fota-url "$base" --log-level warn 2>"$dir/proxy.log" &
pids+=($!)
wait_port "$dir/proxy.port" "${pids[-1]}"
url="http://127.0.0.1:$(cat "$dir/proxy.port")$route"

status="$(curl -s -o /dev/null -w '%{http_code}' "$url")"
[ "$status" = 200 ] || { echo "warm-up $url: HTTP $status" >&2; exit 1; }

to_ms() {  # wrk latency (e.g. 1.23ms, 850.00us, 1.10s) -> ms
  awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)}
        else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000} print v}'
}

rps=() p99=()
for i in $(seq "$runs"); do
  out="$(wrk -t2 -c64 -d"$duration" --latency "$url")"
  r="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
  l="$(awk '$1 == "99%" {print $2}' <<<"$out" | to_ms)"
  errors="$(awk '/Non-2xx|Socket errors/' <<<"$out")"
  echo "run $i: $r requests/s, p99 $l ms ${errors:+($errors)}"
  rps+=("$r") p99+=("$l")
done
echo "route: $route"
echo "wrk -t2 -c64 -d$duration --latency, median of $runs:"
echo "  requests/s: $(printf '%s\n' "${rps[@]}" | median)"
echo "  p99 latency: $(printf '%s\n' "${p99[@]}" | median) ms"
