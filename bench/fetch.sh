#!/usr/bin/env bash
# The fetch scheduler's figures (issue 12), one client downloading a cold build through
# fusproxy from fus-sim on loopback, printed as ratios:
#  1. 128 MiB build, every upstream connection paced at 8 MiB/s: the client's throughput
#     against the bound (connections x 8 MiB/s), for the start count and for the most
#     connections the job held (target >= 0.9 of the bound for the count used);
#  2. 1 GiB build, 8 MiB/s per connection, no total cap: the count grows; throughput
#     against 8 x cap (target >= 1.6) and the ranged GETs per GiB;
#  3. 1 GiB build, no pacing (a healthy link): ranged GETs per GiB (target <= 64).
# Medians of RUNS runs. The builds come from a catalogue written here (fus-sim --catalogue).
#
# usage: bench/fetch.sh [BUILD_DIR]        (default: build)
# env:   RUNS (3), CAP_BPS (8388608), SIM_ARGS (extra fus-sim flags), PROXY_ARGS (extra
#        fusproxy flags, e.g. "--connections 8"), PROXY (another fusproxy binary, e.g. an
#        older build to compare with: the figures it does not report print as -1)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../build}"
sim="$build/sim/fus-sim"
proxy="${PROXY:-$build/cli/fusproxy}"
runs="${RUNS:-3}"
cap="${CAP_BPS:-8388608}"
python="$(command -v /usr/bin/python3 || command -v python3)"
read -r -a sim_args <<<"${SIM_ARGS:-}"
read -r -a proxy_args <<<"${PROXY_ARGS:-}"
for b in "$sim" "$proxy"; do [ -x "$b" ] || { echo "missing $b (build it)" >&2; exit 2; }; done

dir="$(mktemp -d)"
sim_pid="" proxy_pid=""
cleanup() {
  [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null && wait "$proxy_pid" 2>/dev/null
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT

cat >"$dir/catalogue.json" <<'EOF'
{"models": [
  {"model": "SM-F128B", "region": "BNC", "builds": [
    {"version": "F128BXXU1AAA1/F128BOXM1AAA1/F128BXXU1AAA1/F128BXXU1AAA1",
     "binary_name": "SM-F128B_2_20260101000000_f128bench0_fac.zip.enc4",
     "model_path": "/neofus/9/", "logic_value": "f128benchlogic00", "plain_size": 134217728}]},
  {"model": "SM-F1024B", "region": "BNC", "builds": [
    {"version": "F1024BXXU1AAA1/F1024BOXM1AAA1/F1024BXXU1AAA1/F1024BXXU1AAA1",
     "binary_name": "SM-F1024B_2_20260101000000_f1gbench00_fac.zip.enc4",
     "model_path": "/neofus/9/", "logic_value": "f1024benchlogic0", "plain_size": 1073741824}]}
]}
EOF

wait_port() {  # file pid log
  for _ in $(seq 400); do
    [ -s "$1" ] && return 0
    kill -0 "$2" 2>/dev/null || { cat "$3" >&2; exit 1; }
    sleep 0.025
  done
  echo "no port in $1" >&2; exit 1
}
start_sim() {  # extra args
  rm -f "$dir/sim.port"
  "$sim" --listen 127.0.0.1:0 --port-file "$dir/sim.port" --catalogue "$dir/catalogue.json" \
    "${sim_args[@]}" "$@" 2>"$dir/sim.log" &
  sim_pid=$!
  wait_port "$dir/sim.port" "$sim_pid" "$dir/sim.log"
  sim_port="$(cat "$dir/sim.port")"
}
stop_sim() { kill "$sim_pid"; wait "$sim_pid" 2>/dev/null || true; sim_pid=""; }
start_proxy() {  # extra args
  rm -rf "$dir/cache" "$dir/proxy.port"
  local base="http://127.0.0.1:$sim_port/"
  "$proxy" --listen 127.0.0.1:0 --port-file "$dir/proxy.port" --cache-dir "$dir/cache" \
    --fus-url "$base" --cloud-url "$base" --fota-url "$base" --log-level warn \
    "${proxy_args[@]}" "$@" 2>"$dir/proxy.log" &
  proxy_pid=$!
  wait_port "$dir/proxy.port" "$proxy_pid" "$dir/proxy.log"
  proxy_port="$(cat "$dir/proxy.port")"
}
stop_proxy() { kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true; proxy_pid=""; rm -rf "$dir/cache"; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# One cold download: metadata first (not timed), then the body with curl while
# /api/status is polled. Prints: seconds bytes max_connections max_target gets
# mean_connections (over the polls while fetching)
download() {  # model region
  "$python" - "$proxy_port" "$1" "$2" <<'EOF'
import json, subprocess, sys, time, urllib.request
port, model, region = sys.argv[1:4]
base = f"http://127.0.0.1:{port}"
urllib.request.urlopen(f"{base}/firmware/{model}/{region}/latest", timeout=60).read()
def jobs():
    with urllib.request.urlopen(f"{base}/api/status", timeout=10) as r:
        return json.loads(r.read())["firmware"]["downloads"]
start = time.monotonic()
curl = subprocess.Popen(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                         f"{base}/firmware/{model}/{region}/latest/download"],
                        stdout=subprocess.PIPE, text=True)
most = target = 0
held = []  # connections held at each poll while fetching
while curl.poll() is None:
    for j in jobs():
        if j["model"] == model and j["state"] == "fetching":
            most = max(most, j["connections"])
            target = max(target, j.get("connections_target", -1))
            held.append(j["connections"])
    time.sleep(0.05)
took = time.monotonic() - start
code, size = curl.stdout.read().split()
if code != "200":
    sys.exit(f"download answered {code}")
job = next(j for j in jobs() if j["model"] == model)
mean = sum(held) / len(held) if held else most
print(f"{took:.3f} {size} {most} {target} {job.get('upstream_gets', -1)} {mean:.2f}")
EOF
}

echo "== 1: cold 128 MiB, every upstream connection paced at $cap B/s, $runs runs"
start_sim --throttle-bps "$cap"
r1=()
for i in $(seq "$runs"); do
  start_proxy
  read -r t size most target gets mean < <(download SM-F128B BNC)
  stop_proxy
  r1+=("$(awk -v t="$t" -v s="$size" -v c="$cap" -v m="$mean" 'BEGIN {print s / t / (m * c)}')")
  awk -v t="$t" -v s="$size" -v c="$cap" -v n="$most" -v m="$mean" -v g="$target" -v i="$i" -v k="$gets" 'BEGIN {
    printf "  run %d: %.2f s, %.1f MiB/s; connections %.1f on average, at most %d (target up to %d): %.2f x the bound for %.1f, %.2f x the bound for %d, %.2f x the bound for 8; %d GETs\n",
           i, t, s / t / 1048576, m, n, g, s / t / (m * c), m, s / t / (n * c), n, s / t / (8 * c), k }'
done
echo "median: $(printf '%s\n' "${r1[@]}" | median) x the bound for the connections used on average (target >= 0.9)"
stop_sim

echo "== 2: cold 1 GiB, $cap B/s per connection, no total cap, $runs runs"
start_sim --throttle-bps "$cap"
r2=() g2=()
for i in $(seq "$runs"); do
  start_proxy
  read -r t size most target gets mean < <(download SM-F1024B BNC)
  stop_proxy
  r2+=("$(awk -v t="$t" -v s="$size" -v c="$cap" 'BEGIN {print s / t / (8 * c)}')")
  g2+=("$(awk -v s="$size" -v k="$gets" 'BEGIN {print k / (s / 1073741824)}')")
  awk -v t="$t" -v s="$size" -v c="$cap" -v n="$most" -v g="$target" -v i="$i" -v k="$gets" 'BEGIN {
    printf "  run %d: %.2f s, %.1f MiB/s = %.2f x (8 x cap); connections grew to %d (target %d); %.1f GETs per GiB\n",
           i, t, s / t / 1048576, s / t / (8 * c), n, g, k / (s / 1073741824) }'
done
echo "median: $(printf '%s\n' "${r2[@]}" | median) x (8 x cap) (target >= 1.6); $(printf '%s\n' "${g2[@]}" | median) GETs per GiB"
stop_sim

echo "== 3: cold 1 GiB, no pacing (healthy loopback link), $runs runs"
start_sim
g3=()
for i in $(seq "$runs"); do
  start_proxy
  read -r t size most target gets mean < <(download SM-F1024B BNC)
  stop_proxy
  g3+=("$(awk -v s="$size" -v k="$gets" 'BEGIN {print k / (s / 1073741824)}')")
  awk -v t="$t" -v s="$size" -v n="$most" -v g="$target" -v i="$i" -v k="$gets" 'BEGIN {
    printf "  run %d: %.2f s, %.0f MiB/s, connections up to %d (target %d), %.1f GETs per GiB\n",
           i, t, s / t / 1048576, n, g, k / (s / 1073741824) }'
done
echo "median: $(printf '%s\n' "${g3[@]}" | median) GETs per GiB (target <= 64)"
stop_sim
