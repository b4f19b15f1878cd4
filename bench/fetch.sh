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
#        older build to compare with: the figures it does not report print as -1), COMPARE
#        (a second fusproxy binary measured beside PROXY in every run, alternating which goes
#        first, so that the machine's load hits both alike; its lines and medians are marked
#        COMPARE), SECTIONS ("1 2 3": which sections run)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
build="${1:-$here/../build}"
sim="$build/sim/fus-sim"
proxy="${PROXY:-$build/cli/fusproxy}"
compare="${COMPARE:-}"
sections=" ${SECTIONS:-1 2 3} "
runs="${RUNS:-3}"
cap="${CAP_BPS:-8388608}"
python="$(command -v /usr/bin/python3 || command -v python3)"
read -r -a sim_args <<<"${SIM_ARGS:-}"
read -r -a proxy_args <<<"${PROXY_ARGS:-}"
for b in "$sim" "$proxy" ${compare:+"$compare"}; do [ -x "$b" ] || { echo "missing $b (build it)" >&2; exit 2; }; done

dir="$(mktemp -d)"
sim_pid="" proxy_pid=""
cleanup() {
  stop_pid "$proxy_pid"
  stop_pid "$sim_pid"
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

start_sim() {  # extra args
  rm -f "$dir/sim.port"
  "$sim" --listen 127.0.0.1:0 --port-file "$dir/sim.port" --catalogue "$dir/catalogue.json" \
    "${sim_args[@]}" "$@" 2>"$dir/sim.log" &
  sim_pid=$!
  wait_port "$dir/sim.port" "$sim_pid" "$dir/sim.log"
  sim_port="$(cat "$dir/sim.port")"
}
stop_sim() { kill "$sim_pid"; wait "$sim_pid" 2>/dev/null || true; sim_pid=""; }
start_proxy() {  # extra args (BIN: the binary, default PROXY)
  rm -rf "$dir/cache" "$dir/proxy.port"
  local base="http://127.0.0.1:$sim_port/"
  "${BIN:-$proxy}" --listen 127.0.0.1:0 --port-file "$dir/proxy.port" --cache-dir "$dir/cache" \
    --fus-url "$base" --cloud-url "$base" --fota-url "$base" --log-level warn \
    "${proxy_args[@]}" "$@" 2>"$dir/proxy.log" &
  proxy_pid=$!
  wait_port "$dir/proxy.port" "$proxy_pid" "$dir/proxy.log"
  proxy_port="$(cat "$dir/proxy.port")"
}
stop_proxy() { kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true; proxy_pid=""; rm -rf "$dir/cache"; }

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

# One cold download with binary $1 of model $2: "seconds bytes most target gets mean".
measure() {  # binary model
  BIN="$1" start_proxy
  download "$2" BNC
  stop_proxy
}
# Runs RUNS cold downloads of model $1 (with COMPARE: each run with both binaries, in
# alternating order) and calls report(label, run, fields...) for each; fills the arrays
# res_a (PROXY's report lines' first field) and res_b (COMPARE's).
section() {  # model
  res_a=() res_b=()
  local i a b
  for i in $(seq "$runs"); do
    if [ -n "$compare" ] && [ $((i % 2)) = 0 ]; then
      b="$(measure "$compare" "$1")"; a="$(measure "$proxy" "$1")"
    else
      a="$(measure "$proxy" "$1")"; b=""; [ -n "$compare" ] && b="$(measure "$compare" "$1")"
    fi
    res_a+=("$(report "" "$i" $a)")
    [ -n "$compare" ] && res_b+=("$(report "COMPARE " "$i" $b)")
  done
  return 0
}
medians() {  # label: prints the medians of field 1 and 2 of res_a (and res_b with COMPARE)
  local ma mb
  ma="$(printf '%s\n' "${res_a[@]}" | awk '{print $1}' | median) $(printf '%s\n' "${res_a[@]}" | awk '{print $2}' | median)"
  echo "$ma"
  if [ -n "$compare" ]; then
    mb="$(printf '%s\n' "${res_b[@]}" | awk '{print $1}' | median) $(printf '%s\n' "${res_b[@]}" | awk '{print $2}' | median)"
    echo "$mb"
  fi
}

if [[ "$sections" == *" 1 "* ]]; then
echo "== 1: cold 128 MiB, every upstream connection paced at $cap B/s, $runs runs"
start_sim --throttle-bps "$cap"
report() {  # label run t size most target gets mean -> prints "ratio gets" (details to stderr)
  awk -v l="$1" -v i="$2" -v t="$3" -v s="$4" -v n="$5" -v g="$6" -v k="$7" -v m="$8" -v c="$cap" 'BEGIN {
    printf "  %srun %d: %.2f s, %.1f MiB/s; connections %.1f on average, at most %d (target up to %d): %.2f x the bound for %.1f, %.2f x the bound for %d, %.2f x the bound for 8; %d GETs\n",
           l, i, t, s / t / 1048576, m, n, g, s / t / (m * c), m, s / t / (n * c), n, s / t / (8 * c), k > "/dev/stderr"
    print s / t / (m * c), k }'
}
section SM-F128B
read -r m1 _ < <(medians | sed -n 1p)
echo "median: $m1 x the bound for the connections used on average (target >= 0.9)"
[ -n "$compare" ] && echo "median COMPARE: $(medians | sed -n 2p | cut -d' ' -f1) x the bound for the connections it used on average"
stop_sim
fi

if [[ "$sections" == *" 2 "* ]]; then
echo "== 2: cold 1 GiB, $cap B/s per connection, no total cap, $runs runs"
start_sim --throttle-bps "$cap"
report() {  # -> "ratio gets_per_gib"
  awk -v l="$1" -v i="$2" -v t="$3" -v s="$4" -v n="$5" -v g="$6" -v k="$7" -v c="$cap" 'BEGIN {
    printf "  %srun %d: %.2f s, %.1f MiB/s = %.2f x (8 x cap); connections grew to %d (target %d); %.1f GETs per GiB\n",
           l, i, t, s / t / 1048576, s / t / (8 * c), n, g, k / (s / 1073741824) > "/dev/stderr"
    print s / t / (8 * c), k / (s / 1073741824) }'
}
section SM-F1024B
read -r m2 g2 < <(medians | sed -n 1p)
echo "median: $m2 x (8 x cap) (target >= 1.6); $g2 GETs per GiB"
if [ -n "$compare" ]; then
  read -r c2 cg2 < <(medians | sed -n 2p)
  echo "median COMPARE: $c2 x (8 x cap); $cg2 GETs per GiB; this build / COMPARE = $(awk -v a="$m2" -v b="$c2" 'BEGIN {printf "%.3f", a / b}')"
fi
stop_sim
fi

if [[ "$sections" == *" 3 "* ]]; then
echo "== 3: cold 1 GiB, no pacing (healthy loopback link), $runs runs"
start_sim
report() {  # -> "gets_per_gib MiB/s"
  awk -v l="$1" -v i="$2" -v t="$3" -v s="$4" -v n="$5" -v g="$6" -v k="$7" 'BEGIN {
    printf "  %srun %d: %.2f s, %.0f MiB/s, connections up to %d (target %d), %.1f GETs per GiB\n",
           l, i, t, s / t / 1048576, n, g, k / (s / 1073741824) > "/dev/stderr"
    print k / (s / 1073741824), s / t / 1048576 }'
}
section SM-F1024B
read -r g3 _ < <(medians | sed -n 1p)
echo "median: $g3 GETs per GiB (target <= 64)"
[ -n "$compare" ] && echo "median COMPARE: $(medians | sed -n 2p | cut -d' ' -f1) GETs per GiB"
stop_sim
fi
