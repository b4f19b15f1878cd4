#!/usr/bin/env bash
# Cache-hit benchmark (loopback): fusproxy serving a verified build from --cache-dir vs
# Debian's nginx (started here, `sendfile on`) serving the same plain file from the same
# directory, with wrk (-t1 -c1 and -t2 -c64, DURATION seconds), median of RUNS, printed as
# bytes/s and the ratio fusproxy/nginx (target >= 0.9); then fusproxy's peak RSS (VmHWM)
# after the 64-client runs (target < 64 MiB).
#
# usage: bench/cache.sh [BUILD_DIR]        (default: build)
# env:   RUNS (3), DURATION (10), MODEL (SM-A207F), REGION (SER): the build (24 MiB),
#        SIM_ARGS (extra fus-sim flags: --lenient to fill the cache with a build older than
#        fusproxy's strict session conduct, when comparing with an older commit)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
build="${1:-$here/../build}"
sim="$build/sim/fus-sim"
proxy="$build/cli/fusproxy"
runs="${RUNS:-3}"
duration="${DURATION:-10}"
model="${MODEL:-SM-A207F}"
region="${REGION:-SER}"
python="$(command -v /usr/bin/python3 || command -v python3)"
read -r -a sim_args <<<"${SIM_ARGS:-}"
for b in "$sim" "$proxy"; do [ -x "$b" ] || { echo "missing $b (build it)" >&2; exit 2; }; done
for t in nginx wrk curl; do
  command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] || { echo "missing $t" >&2; exit 2; }
done
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"

dir="$(mktemp -d)"
sim_pid="" proxy_pid="" nginx_pid=""
cleanup() {
  stop_pid "$proxy_pid"
  stop_pid "$sim_pid"
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT


"$sim" --listen 127.0.0.1:0 --port-file "$dir/sim.port" "${sim_args[@]}" 2>"$dir/sim.log" &
sim_pid=$!
wait_port "$dir/sim.port" "$sim_pid" "$dir/sim.log"
base="http://127.0.0.1:$(cat "$dir/sim.port")/"
"$proxy" --listen 127.0.0.1:0 --port-file "$dir/proxy.port" --cache-dir "$dir/cache" \
  --fus-url "$base" --cloud-url "$base" --fota-url "$base" --log-level warn \
  --max-downloads-per-client 0 --max-downloads 0 2>"$dir/proxy.log" &
proxy_pid=$!
wait_port "$dir/proxy.port" "$proxy_pid" "$dir/proxy.log"
pport="$(cat "$dir/proxy.port")"

# Resolve the build and fill the cache once; then the versioned URL is a pure cache hit.
meta="$(curl -sf "http://127.0.0.1:$pport/firmware/$model/$region/latest")"
dl="$(echo "$meta" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["download_url"])')"
plain="$(echo "$meta" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["plain_filename"])')"
size="$(echo "$meta" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["plain_size"])')"
curl -sf -o /dev/null "http://127.0.0.1:$pport$dl"
[ -f "$dir/cache/builds/$plain" ] || { echo "the build is not in the cache" >&2; exit 1; }
kill "$sim_pid"; wait "$sim_pid" 2>/dev/null || true; sim_pid=""  # cache hits only

nport="$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
mkdir -p "$dir/nginx"
cat >"$dir/nginx/nginx.conf" <<EOF
daemon off;
user root;
worker_processes 1;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path $dir/nginx/tmp;
  proxy_temp_path $dir/nginx/tmp;
  fastcgi_temp_path $dir/nginx/tmp;
  uwsgi_temp_path $dir/nginx/tmp;
  scgi_temp_path $dir/nginx/tmp;
  types { application/zip zip; }
  server {
    listen 127.0.0.1:$nport;
    root $dir/cache/builds;
  }
}
EOF
"$nginx_bin" -c "$dir/nginx/nginx.conf" -p "$dir/nginx" 2>"$dir/nginx/stderr" &
nginx_pid=$!
for _ in $(seq 200); do curl -sf -o /dev/null "http://127.0.0.1:$nport/$plain" && break; sleep 0.025; done

# wrk's "Transfer/sec" in bytes/s.
wrk_rate() {  # url connections
  local threads=2
  [ "$2" -lt 2 ] && threads=1
  wrk -t"$threads" -c"$2" -d"${duration}s" "$1" | "$python" -c '
import re, sys
text = sys.stdin.read()
m = re.search(r"Transfer/sec:\s*([\d.]+)([KMGT]?B)", text)
unit = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}[m.group(2)]
print(int(float(m.group(1)) * unit))'
}
hwm() { awk '/VmHWM/ {print $2 * 1024}' "/proc/$proxy_pid/status"; }

echo "build: $plain ($size bytes); wrk -d${duration}s (-t1 -c1, -t2 -c64); median of $runs"
for c in 1 64; do
  p=() n=()
  for _ in $(seq "$runs"); do
    p+=("$(wrk_rate "http://127.0.0.1:$pport$dl" "$c")")
    n+=("$(wrk_rate "http://127.0.0.1:$nport/$plain" "$c")")
  done
  pm="$(median "${p[@]}")" nm="$(median "${n[@]}")"
  "$python" -c "
p, n = $pm, $nm
print(f'{$c:>2} client(s): fusproxy {p/1e9:6.2f} GB/s  nginx {n/1e9:6.2f} GB/s  ratio {p/n:.2f} (target >= 0.9)')
print(f'   runs fusproxy: ${p[*]}; nginx: ${n[*]}')"
done
rss="$(hwm)"
"$python" -c "print(f'fusproxy peak RSS (VmHWM): {$rss/2**20:.1f} MiB (target < 64 MiB)')"
