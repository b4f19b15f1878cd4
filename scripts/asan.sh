#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer run of the whole end-to-end suite: builds
# fusproxy and fus-sim with -fsanitize=address,undefined into build-asan/ and runs every
# e2e, cache, stream, forwarded and obs case (shutdown tests included) with them; fails
# when either sanitizer reports anything. Not part of CI: the build took 62 minutes on 2
# loaded cores (others building too), the tests 7 minutes. usage: scripts/asan.sh [e2e script case ...]   (default: everything)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/build-asan"
# ccache when present: a rebuild after a fix recompiles only what changed.
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$root" -B "$out" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" \
  -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -O1 -g" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
cmake --build "$out" -j "$(nproc)" --target fusproxy fus-sim
reports="$(mktemp -d)"
# detect_leaks: a leak at exit is a lifetime bug too (a task nobody joined).
export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:abort_on_error=0:halt_on_error=1"
export UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1"
# The Debian python3, as CTest uses (tests/e2e/CMakeLists.txt): a python3 earlier on PATH
# (pyenv) may lack the test modules (python3-feedparser) and skip whole scripts.
py=/usr/bin/python3
[[ -x $py ]] || py=python3
args=(--fusproxy "$out/cli/fusproxy" --fus-sim "$out/sim/fus-sim" --source-dir "$root")
status=0
if [[ $# -gt 0 ]]; then
  "$py" "$root/tests/e2e/$1" "${args[@]}" "${@:2}" || status=$?
else
  for script in "$root"/tests/e2e/*_tests.py "$root"/tests/obs/obs_tests.py; do
    echo "== $(basename "$script")"
    extra=()  # obs_tests' screenshots go to the build folder, not the source tree
    [[ $script == */obs_tests.py ]] && extra=(--artifacts "$out/artifacts")
    "$py" "$script" "${args[@]}" "${extra[@]}" || status=$?
  done
fi
if compgen -G "$reports/*san*" >/dev/null; then
  cat "$reports"/*san* >&2
  echo "sanitizers reported the above" >&2
  exit 1
fi
[[ $status -eq 0 ]] || { echo "tests failed (exit $status)" >&2; exit "$status"; }
echo "ASan+UBSan: no reports"
