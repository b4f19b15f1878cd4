#!/usr/bin/env bash
# ThreadSanitizer check of the threaded paths (HTTP thread, service thread, landing pool):
# builds fusproxy with -fsanitize=thread into build-tsan/ and runs the streaming,
# cache, metadata, forwarded-client, lifecycle and observability end-to-end cases with
# them; fails when TSan reports anything. Not part of CI (a first TSan build takes ~10 minutes on 2 cores).
# usage: scripts/tsan.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/build-tsan"
cmake -S "$root" -B "$out" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS="-fsanitize=thread -O1 -g" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" >/dev/null
cmake --build "$out" -j "$(nproc)" --target fusproxy
# fus-sim is the test's upstream, not what is checked: a TSan fus-sim computes its 20 GB
# build's tar and LZ4 members ~10x slower (its first /_sim/builds took 17 s, past the
# harness's 10 s), so the tests drive a plain Release fus-sim from build/.
sim_build="$root/build"
[[ -f $sim_build/CMakeCache.txt ]] || cmake -S "$root" -B "$sim_build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$sim_build" -j "$(nproc)" --target fus-sim
reports="$(mktemp -d)"
export TSAN_OPTIONS="log_path=$reports/tsan"
# The Debian python3, as CTest uses (tests/e2e/CMakeLists.txt): a python3 earlier on PATH
# (pyenv) may lack the test modules (python3-feedparser) and skip whole scripts.
py=/usr/bin/python3
[[ -x $py ]] || py=python3
args=(--fusproxy "$out/cli/fusproxy" --fus-sim "$sim_build/sim/fus-sim" --source-dir "$root")
status=0  # every script runs; a failing case is reported at the end
"$py" "$root/tests/e2e/stream_tests.py" "${args[@]}" curl_oj_latest aria2c_segments \
  faults_invisible landing_threads published_only_after_fdatasync get_and_resume \
  crc_mismatch_never_verified upstream_gone_cuts_client || status=$?
"$py" "$root/tests/e2e/cache_tests.py" "${args[@]}" fifty_clients_one_fetch \
  kill9_resumes_missing_bytes unclean_stop_rechecks_resumed_bytes graceful_stop_map_is_trusted \
  eviction_lru_never_in_use disk_full_is_clear_and_consistent || status=$?
"$py" "$root/tests/e2e/e2e_tests.py" "${args[@]}" || status=$?  # metadata, errors, single-flight
"$py" "$root/tests/e2e/forwarded_tests.py" "${args[@]}" || status=$?  # limits, /api/status, access log
"$py" "$root/tests/e2e/lifecycle_tests.py" "${args[@]}" || status=$?  # cancellation across the hop, stop
"$py" "$root/tests/obs/obs_tests.py" "${args[@]}" --artifacts "$out/artifacts" || status=$?  # both threads' metrics
if compgen -G "$reports/tsan*" >/dev/null; then
  cat "$reports"/tsan* >&2
  echo "ThreadSanitizer reported the above" >&2
  exit 1
fi
[[ $status -eq 0 ]] || { echo "tests failed (exit $status)" >&2; exit "$status"; }
echo "ThreadSanitizer: no reports"
