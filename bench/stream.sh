#!/usr/bin/env bash
# Streaming benchmark (loopback, fus-sim as upstream), printed as ratios:
#  1. throughput of one client through fusproxy (cold build: every run starts a fresh
#     fusproxy with an empty cache, so the bytes come from upstream while the client reads)
#     vs `curl` of the encrypted file straight from fus-sim; BYTES of the 20 GB build by
#     Range, median of RUNS. Target >= 0.8. The ?encrypted=1 variant is shown too.
#     An nginx relay (proxy_pass, buffering off: recv + send only) is measured beside it as
#     the machine's ceiling for any relay, and the CPU seconds per GB of each process (and of
#     fusproxy's HTTP thread, service thread and landing pool) are printed: with fus-sim, fusproxy and
#     curl sharing few cores, the sum of their CPU costs bounds the ratio; with a core per
#     thread, fusproxy's busiest thread does.
#  2. time to first byte of those cold downloads (curl %{time_starttransfer}, includes the
#     metadata lookup upstream). Target < 1 s.
#  3. with fus-sim's --throttle-bps capping each upstream connection: throughput vs
#     connections x cap. Target >= 0.9.
#  4. peak RSS (VmHWM) of fusproxy while 10 clients stream the 20 GB build at once
#     (RSS_BYTES each, by Range). Target < 64 MiB.
#
# usage: bench/stream.sh [BUILD_DIR]        (default: build)
# env:   RUNS (5), BYTES (2 GiB), THROTTLE_BPS (20000000), CONNECTIONS (8),
#        THROTTLE_SECONDS (10), THROTTLE_RUNS (3), CLIENTS (10), RSS_BYTES (2 GiB),
#        SECTIONS ("1 3 4": which of the sections above run; 2 comes with 1),
#        PROXY (another fusproxy binary), COMPARE (a second fusproxy binary, e.g. an older
#        commit's build: section 3 measures it beside PROXY in every run, alternating which
#        goes first, so that the machine's load hits both alike), SIM_ARGS (extra fus-sim
#        flags: --lenient for a COMPARE build older than fusproxy's strict session conduct)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
build="${1:-$here/../build}"
sim="$build/sim/fus-sim"
proxy="${PROXY:-$build/cli/fusproxy}"
compare="${COMPARE:-}"
sections=" ${SECTIONS:-1 3 4} "
throttle_runs="${THROTTLE_RUNS:-3}"
read -r -a sim_args <<<"${SIM_ARGS:-}"
runs="${RUNS:-5}"
bytes="${BYTES:-2147483648}"
throttle="${THROTTLE_BPS:-20000000}"
conns="${CONNECTIONS:-8}"
throttle_seconds="${THROTTLE_SECONDS:-10}"
clients="${CLIENTS:-10}"
rss_bytes="${RSS_BYTES:-2147483648}"
python="$(command -v /usr/bin/python3 || command -v python3)"
for b in "$sim" "$proxy" ${compare:+"$compare"}; do [ -x "$b" ] || { echo "missing $b (build it)" >&2; exit 2; }; done

dir="$(mktemp -d)"
sim_pid="" proxy_pid=""
cleanup() {
  stop_pid "$proxy_pid"
  stop_pid "$sim_pid"
  rm -rf "$dir"
}
trap cleanup EXIT

start_sim() {  # extra args
  rm -f "$dir/sim.port"
  "$sim" --listen 127.0.0.1:0 --port-file "$dir/sim.port" "${sim_args[@]}" "$@" 2>"$dir/sim.log" &
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
    --max-downloads-per-client 0 "$@" 2>"$dir/proxy.log" &
  proxy_pid=$!
  wait_port "$dir/proxy.port" "$proxy_pid" "$dir/proxy.log"
  proxy_port="$(cat "$dir/proxy.port")"
}
stop_proxy() { kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true; proxy_pid=""; rm -rf "$dir/cache"; }

url_plain() { echo "http://127.0.0.1:$proxy_port/firmware/SM-BIG00/BIG/latest/download$1"; }
range="0-$((bytes - 1))"
gb() { awk -v s="$1" 'BEGIN {printf "%.2f GB/s", s / 1e9}'; }

if [[ "$sections" == *" 1 "* ]]; then
echo "== 1, 2: throughput and time to first byte, $bytes bytes of SM-BIG00 (20 GB), $runs runs"
start_sim
mapfile -t auth < <("$python" "$here/sim_authorise.py" "$sim_port" SM-BIG00 BIG)
# The reference relay: nginx proxy_pass from fus-sim with buffering off (recv + send, no
# decryption, no disk). It shows what any relay can reach on this machine's cores.
relay_port="" relay_pid=""
if command -v nginx >/dev/null; then
  relay_port="$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  mkdir -p "$dir/nginx"
  cat >"$dir/nginx/nginx.conf" <<CONF
worker_processes 1; daemon off; error_log $dir/nginx/error.log; pid $dir/nginx/nginx.pid;
events {}
http {
  access_log off; client_body_temp_path $dir/nginx; proxy_temp_path $dir/nginx;
  server {
    listen 127.0.0.1:$relay_port;
    location / {
      proxy_pass http://127.0.0.1:$sim_port; proxy_buffering off; proxy_http_version 1.1;
      proxy_set_header Authorization '${auth[1]}'; proxy_set_header Range \$http_range;
    }
  }
}
CONF
  nginx -c "$dir/nginx/nginx.conf" -p "$dir/nginx" 2>"$dir/nginx/start.log" &
  relay_pid=$!
  for _ in $(seq 200); do
    curl -s -o /dev/null "http://127.0.0.1:$relay_port/" && break
    sleep 0.025
  done
fi
cpu_of() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }  # user + system seconds
gbytes="$(awk -v b="$bytes" 'BEGIN {print b / 1e9}')"
direct=() through=() enc=() ttfb=() relay=()
cpu_direct_sim=() cpu_direct_curl=() cpu_sim=() cpu_curl=() cpu_http=() cpu_service=() cpu_landing=()
for i in $(seq "$runs"); do
  s0="$(cpu_of "$sim_pid")"
  d="$(/usr/bin/time -f '%U %S' -o "$dir/curl.cpu" curl -s -o /dev/null -H "Authorization: ${auth[1]}" -r "$range" -w '%{speed_download}' "${auth[0]}")"
  s1="$(cpu_of "$sim_pid")"
  direct+=("$d")
  cpu_direct_sim+=("$(awk -v a="$s0" -v b="$s1" -v g="$gbytes" 'BEGIN {print (b - a) / g}')")
  cpu_direct_curl+=("$(awk -v g="$gbytes" '{print ($1 + $2) / g}' "$dir/curl.cpu")")
  r=0
  if [ -n "$relay_port" ]; then
    r="$(curl -s -o /dev/null -r "$range" -w '%{speed_download}' "http://127.0.0.1:$relay_port/${auth[0]#http://*/}" || echo 0)"
  fi
  relay+=("$r")
  start_proxy
  s0="$(cpu_of "$sim_pid")"
  read -r p t < <(/usr/bin/time -f '%U %S' -o "$dir/curl.cpu" curl -s -o /dev/null -r "$range" -w '%{speed_download} %{time_starttransfer}\n' "$(url_plain "")")
  s1="$(cpu_of "$sim_pid")"
  cpu_sim+=("$(awk -v a="$s0" -v b="$s1" -v g="$gbytes" 'BEGIN {print (b - a) / g}')")
  cpu_curl+=("$(awk -v g="$gbytes" '{print ($1 + $2) / g}' "$dir/curl.cpu")")
  # fusproxy's threads, by name: the main thread serves HTTP (client sockets, sendfile),
  # fp-service runs the firmware service (upstream sockets, the jobs' state), fp-landing the
  # landing pool (--fetch-threads: CRC, decrypt, pwrite).
  http=0 service=0 landing=0
  for task in "/proc/$proxy_pid/task/"*; do
    tid="${task##*/}"
    c="$(cpu_of "$proxy_pid/task/$tid")"
    case "$(cat "$task/comm")" in
      fp-service) service="$(awk -v a="$service" -v b="$c" 'BEGIN {print a + b}')" ;;  # + Asio's resolver thread
      fp-landing) landing="$(awk -v a="$landing" -v b="$c" 'BEGIN {print a + b}')" ;;
      *) [ "$tid" = "$proxy_pid" ] && http="$c" ;;
    esac
  done
  cpu_http+=("$(awk -v c="$http" -v g="$gbytes" 'BEGIN {print c / g}')")
  cpu_service+=("$(awk -v c="$service" -v g="$gbytes" 'BEGIN {print c / g}')")
  cpu_landing+=("$(awk -v c="$landing" -v g="$gbytes" 'BEGIN {print c / g}')")
  stop_proxy
  through+=("$p") ttfb+=("$t")
  start_proxy
  e="$(curl -s -o /dev/null -r "$range" -w '%{speed_download}' "$(url_plain "?encrypted=1")")"
  stop_proxy
  enc+=("$e")
  echo "  run $i: direct $(gb "$d"), nginx relay $(gb "$r"), through fusproxy $(gb "$p") (ttfb ${t} s), ?encrypted=1 $(gb "$e")"
done
[ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null && wait "$relay_pid" 2>/dev/null
md="$(printf '%s\n' "${direct[@]}" | median)"
mr="$(printf '%s\n' "${relay[@]}" | median)"
mp="$(printf '%s\n' "${through[@]}" | median)"
me="$(printf '%s\n' "${enc[@]}" | median)"
mt="$(printf '%s\n' "${ttfb[@]}" | median)"
awk -v d="$md" -v p="$mp" -v e="$me" -v r="$mr" 'BEGIN {
  printf "median: direct %.2f GB/s, fusproxy plain %.2f GB/s (ratio %.2f, target >= 0.8), encrypted %.2f GB/s (ratio %.2f)\n",
         d / 1e9, p / 1e9, p / d, e / 1e9, e / d
  if (r > 0) printf "median: nginx relay (no decryption, no disk) %.2f GB/s = %.2f x direct; fusproxy = %.2f x the relay\n",
         r / 1e9, r / d, p / r }'
awk -v t="$mt" 'BEGIN { printf "median time to first byte, cold: %.3f s (target < 1 s)\n", t }'
m() { printf '%s\n' "$@" | median; }
awk -v ds="$(m "${cpu_direct_sim[@]}")" -v dc="$(m "${cpu_direct_curl[@]}")" -v s="$(m "${cpu_sim[@]}")" \
    -v c="$(m "${cpu_curl[@]}")" -v h="$(m "${cpu_http[@]}")" -v sv="$(m "${cpu_service[@]}")" \
    -v l="$(m "${cpu_landing[@]}")" -v n="$(nproc)" 'BEGIN {
  printf "CPU seconds per GB (median): direct: fus-sim %.2f + curl %.2f; through fusproxy: fus-sim %.2f + fusproxy (HTTP thread %.2f, service thread %.2f, landing pool %.2f) + curl %.2f = %.2f\n",
         ds, dc, s, h, sv, l, c, s + h + sv + l + c
  busiest = h; if (sv > busiest) busiest = sv; if (l > busiest) busiest = l
  printf "ceilings: on %d cores all three processes share %.0f CPU-s/s -> %.2f GB/s through fusproxy; with a core per thread, its busiest thread -> %.2f GB/s\n",
         n, n, n / (s + h + sv + l + c), 1 / busiest }'
stop_sim
fi

if [[ "$sections" == *" 3 "* ]]; then
echo "== 3: upstream throttled to $throttle B/s per connection, $conns connections, $throttle_runs runs"
start_sim --throttle-bps "$throttle"
tbytes=$((throttle * conns * throttle_seconds))
throttled() {  # binary -> bytes/s
  BIN="$1" start_proxy --connections "$conns"
  curl -s -o /dev/null -r "0-$((tbytes - 1))" -w '%{speed_download}' "$(url_plain "")"
  stop_proxy
}
ratio() { awk -v r="$1" -v c="$conns" -v t="$throttle" 'BEGIN {printf "%.2f", r / (c * t)}'; }
rates=() crates=()
for i in $(seq "$throttle_runs"); do
  if [ -n "$compare" ] && [ $((i % 2)) = 0 ]; then
    c="$(throttled "$compare")"; r="$(throttled "$proxy")"
  else
    r="$(throttled "$proxy")"; [ -n "$compare" ] && c="$(throttled "$compare")"
  fi
  rates+=("$r")
  line="$(awk -v r="$r" -v i="$i" 'BEGIN {printf "  run %d: %.1f MB/s", i, r / 1e6}') ($(ratio "$r") x connections x cap)"
  if [ -n "$compare" ]; then
    crates+=("$c")
    line+="; COMPARE: $(awk -v r="$c" 'BEGIN {printf "%.1f MB/s", r / 1e6}') ($(ratio "$c"))"
  fi
  echo "$line"
done
mr="$(printf '%s\n' "${rates[@]}" | median)"
awk -v r="$mr" -v c="$conns" -v t="$throttle" 'BEGIN {printf "median: %.1f MB/s = %.2f x %d x %.0f MB/s (target >= 0.9)\n", r / 1e6, r / (c * t), c, t / 1e6}'
if [ -n "$compare" ]; then
  mc="$(printf '%s\n' "${crates[@]}" | median)"
  echo "median COMPARE ($compare): $(awk -v r="$mc" 'BEGIN {printf "%.1f MB/s", r / 1e6}') = $(ratio "$mc") x; this build / COMPARE = $(awk -v a="$mr" -v b="$mc" 'BEGIN {printf "%.3f", a / b}')"
fi
stop_sim
fi

if [[ "$sections" == *" 4 "* ]]; then
echo "== 4: peak RSS, $clients clients x $rss_bytes bytes of the 20 GB build at once"
start_sim
start_proxy
pids=()
for i in $(seq "$clients"); do
  curl -s -o /dev/null -r "0-$((rss_bytes - 1))" -w '%{speed_download}\n' "$(url_plain "")" >"$dir/client.$i" &
  pids+=($!)
done
peak=0
while :; do
  alive=0
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
  h="$(awk '/VmHWM/ {print $2}' "/proc/$proxy_pid/status")"
  [ "$h" -gt "$peak" ] && peak="$h"
  [ "$alive" = 1 ] || break
  sleep 0.2
done
wait "${pids[@]}" || true
total_rate="$(cat "$dir"/client.* | awk '{s += $1} END {print s}')"
h="$(awk '/VmHWM/ {print $2}' "/proc/$proxy_pid/status")"
[ "$h" -gt "$peak" ] && peak="$h"
stop_proxy
awk -v k="$peak" -v r="$total_rate" -v n="$clients" 'BEGIN {
  printf "fusproxy VmHWM %.1f MiB with %d clients (target < 64 MiB); aggregate %.2f GB/s\n", k / 1024, n, r / 1e9 }'
stop_sim
fi
