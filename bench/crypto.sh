#!/usr/bin/env bash
# Crypto benchmark: crypto_bench (decrypt and CRC-32 MB/s) next to `openssl speed` in the same
# run, then `fusproxy decrypt` file to file on 100 MiB and its peak RSS on a 1 GiB input.
# Figures are medians; MB = 10^6 bytes. Needs hyperfine and GNU time (scripts/setup.sh with
# FUSPROXY_SETUP_BENCH=1); falls back to a timing loop without hyperfine.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
[[ -f build/CMakeCache.txt ]] || cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target crypto_bench fusproxy >/dev/null
fusproxy=$root/build/cli/fusproxy
key=00112233445566778899aabbccddeeff
work=$(mktemp -d /tmp/fusproxy-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

ratio() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.2f}')" "$1" "$2"; }
median() { python3 -c "import statistics, sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }

echo "== crypto_bench (one thread; load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores)"
bench_out=$("$root/build/bench/crypto_bench")
echo "$bench_out"
figure() { awk -v n="$1:" '$1 == n { print $2 }' <<<"$bench_out"; }

echo
echo "== openssl speed -evp aes-128-ecb -bytes 16384 -seconds 3 (one core)"
speed_out=$(openssl speed -evp aes-128-ecb -bytes 16384 -seconds 3 2>/dev/null)
echo "$speed_out" | tail -n 2
# `openssl speed` prints 1000s of bytes per second ("12546146.30k"): /1000 gives MB/s.
openssl_mbs=$(echo "$speed_out" | awk '$1 == "AES-128-ECB" { sub(/k$/, "", $2); printf "%.0f", $2 / 1000 }')
echo "openssl aes-128-ecb 16 KiB: $openssl_mbs MB/s"
echo "ratio decrypt_stream_16KiB_in_cache / openssl speed: $(ratio "$(figure decrypt_stream_16KiB_in_cache)" "$openssl_mbs")  (target >= 0.8)"
echo "ratio decrypt_stream_16KiB_in_cache / evp_reference_16KiB_in_cache (same process, alternating): $(ratio "$(figure decrypt_stream_16KiB_in_cache)" "$(figure evp_reference_16KiB_in_cache)")"
best() { awk -v n="$1:" '$1 == n { sub(/\)$/, "", $NF); print $NF }' <<<"$bench_out"; }
echo "ratio best decrypt_stream_16KiB_in_cache run / openssl speed: $(ratio "$(best decrypt_stream_16KiB_in_cache)" "$openssl_mbs")  (the best run is the least disturbed on a shared machine)"
echo "ratio decrypt_stream_16KiB (256 MiB from RAM) / openssl: $(ratio "$(figure decrypt_stream_16KiB)" "$openssl_mbs")"
echo "ratio decrypt_stream_1024KiB (256 MiB from RAM) / openssl: $(ratio "$(figure decrypt_stream_1024KiB)" "$openssl_mbs")"

echo
echo "== fusproxy decrypt, 100 MiB file to file ($work)"
plain_size=$((100 * 1024 * 1024 + 7))
head -c "$plain_size" /dev/urandom >"$work/plain.bin"
openssl enc -aes-128-ecb -K "$key" -in "$work/plain.bin" -out "$work/cipher.bin"
decrypt_cmd="$fusproxy decrypt --key $key $work/cipher.bin $work/out.bin"
if command -v hyperfine >/dev/null; then
  # Each run writes a new file (the removal is untimed): truncating the previous run's
  # output would time the file system waiting on its writeback, not the decryption.
  hyperfine -N --warmup 2 --runs 15 --export-json "$work/hyperfine.json" \
    --prepare "rm -f $work/out.bin $work/openssl.bin $work/copy.bin" \
    "$decrypt_cmd" \
    "openssl enc -d -aes-128-ecb -K $key -in $work/cipher.bin -out $work/openssl.bin" \
    "cp $work/cipher.bin $work/copy.bin" | grep -E 'Benchmark|Time|Range'
  mapfile -t medians < <(python3 -c 'import json, sys
for r in json.load(open(sys.argv[1]))["results"]: print(r["median"])' "$work/hyperfine.json")
else
  times=()
  for _ in 1 2 3 4 5 6 7; do
    times+=("$(/usr/bin/time -f %e $decrypt_cmd 2>&1 >/dev/null | tail -n1)")
  done
  medians=("$(median "${times[@]}")")
fi
$decrypt_cmd && cmp "$work/plain.bin" "$work/out.bin" && echo "output byte-identical"
file_mbs=$(python3 -c "import sys; print(f'{int(sys.argv[1]) / float(sys.argv[2]) / 1e6:.0f}')" "$plain_size" "${medians[0]}")
echo "fusproxy decrypt file to file: median ${medians[0]} s = $file_mbs MB/s"
[[ ${#medians[@]} -ge 3 ]] && echo "  (same run: openssl enc -d median ${medians[1]} s, cp of the file median ${medians[2]} s)"
echo "ratio file-to-file / openssl speed: $(ratio "$file_mbs" "$openssl_mbs")  (target >= 0.5)"
rm -f "$work"/*.bin

echo
echo "== peak RSS of fusproxy decrypt on a 1 GiB input"
head -c $((1024 * 1024 * 1024 - 3)) /dev/zero | openssl enc -aes-128-ecb -K "$key" -out "$work/big.bin"
/usr/bin/time -v "$fusproxy" decrypt --key "$key" "$work/big.bin" "$work/big.out" 2>"$work/time.txt"
rss_kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time.txt")
echo "peak RSS: $((rss_kb / 1024)) MiB ($rss_kb KiB; target < 32 MiB), wall $(awk -F': ' '/Elapsed/ { print $2 }' "$work/time.txt")"
