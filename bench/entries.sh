#!/usr/bin/env bash
# Files inside tar members (issue 14): the time to a 64 MiB boot.img. fus-sim's 20 GB build
# (SM-BIG00/BIG: AP's boot.img.lz4 decodes to 64 MiB) behind fusproxy on loopback, every
# upstream connection paced at 8 MiB/s (fus-sim --throttle-bps); each run cold (a fresh
# cache), metadata asked first (what a client does: the listing), then timed:
#   1. GET …/files/AP/ (the listing: tar headers only),
#   2. GET …/files/AP/boot.img (the decoded image, its compressed blocks fetched sparsely
#      by parallel connections), and the upstream bytes served for both (fus-sim stats).
# Prints medians of RUNS runs and the ratio to the 5 s target (< 1 is met).
#
# usage: bench/entries.sh [BUILD_DIR]      (default: build)
# env:   RUNS (3), CAP_BPS (8388608), PROXY_ARGS (extra fusproxy flags)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
build="${1:-$here/../build}"
sim="$build/sim/fus-sim"
proxy="$build/cli/fusproxy"
runs="${RUNS:-3}"
cap="${CAP_BPS:-8388608}"
read -r -a proxy_args <<<"${PROXY_ARGS:-}"
for b in "$sim" "$proxy"; do [ -x "$b" ] || { echo "missing $b (build it)" >&2; exit 2; }; done

dir="$(mktemp -d)"
sim_pid="" proxy_pid=""
stop_proxy() {
  stop_pid "$proxy_pid"
  proxy_pid=""
}
cleanup() {
  stop_proxy
  stop_pid "$sim_pid"
  rm -rf "$dir"
}
trap cleanup EXIT


"$sim" --listen 127.0.0.1:0 --port-file "$dir/sim.port" --throttle-bps "$cap" \
  >"$dir/sim.log" 2>&1 &
sim_pid=$!
wait_port "$dir/sim.port" "$sim_pid" "$dir/sim.log"
sp=$(cat "$dir/sim.port")
up="http://127.0.0.1:$sp/"
name=$(curl -s "${up}_sim/builds" | python3 -c '
import json, sys
print(next(b["binary_name"] for b in json.load(sys.stdin)["builds"] if b["model"] == "SM-BIG00"))')
served() {
  curl -s "${up}_sim/stats" | python3 -c "
import json, sys
print(json.load(sys.stdin)['builds'].get('$name', {}).get('bytes_served', 0))"
}

list_t=() boot_t=() bytes=()
for run in $(seq "$runs"); do
  rm -rf "$dir/cache" "$dir/px.port"
  "$proxy" --listen 127.0.0.1:0 --port-file "$dir/px.port" --cache-dir "$dir/cache" \
    --fus-url "$up" --cloud-url "$up" --fota-url "$up" "${proxy_args[@]}" \
    >"$dir/proxy.log" 2>&1 &
  proxy_pid=$!
  wait_port "$dir/px.port" "$proxy_pid" "$dir/proxy.log"
  base="http://127.0.0.1:$(cat "$dir/px.port")/firmware/SM-BIG00/BIG/latest"
  curl -sf "$base" >/dev/null
  before=$(served)
  list_t+=("$(curl -sf -o /dev/null -w '%{time_total}' "$base/files/AP/")")
  boot_t+=("$(curl -sf -o "$dir/boot.img" -w '%{time_total}' "$base/files/AP/boot.img")")
  bytes+=("$(($(served) - before))")
  size=$(stat -c %s "$dir/boot.img")
  stop_proxy
done
l=$(median "${list_t[@]}") t=$(median "${boot_t[@]}") b=$(median "${bytes[@]}")
echo "boot.img: $size bytes decoded; upstream paced at $cap B/s per connection; $runs cold runs"
echo "  listing /files/AP/:   median $l s   (runs: ${list_t[*]})"
echo "  boot.img after it:    median $t s   (runs: ${boot_t[*]})"
awk -v l="$l" -v t="$t" 'BEGIN { printf "  time to boot.img (listing + image): %.2f s, %.2f x the 5 s target\n", l + t, (l + t) / 5 }'
echo "  upstream bytes (listing + image): median $b   ($(awk -v b="$b" 'BEGIN{printf "%.1f", b/1048576}') MiB)"
