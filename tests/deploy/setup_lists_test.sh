#!/usr/bin/env bash
# scripts/setup.sh: the run/build list (scripts/run.sh, the Dockerfile) holds no test tool;
# the --test list (scripts/test.sh) holds every package of the run list and the test tools.
set -euo pipefail
setup="$1/scripts/setup.sh"
run_list=$(bash "$setup" --list)
test_list=$(bash "$setup" --list --test)
test_only=(catch2 chromium prometheus clang nginx-light aria2 strace python3-feedparser wget
           python3-yaml python3-cryptography)
status=0
for p in "${test_only[@]}"; do
  if grep -qx "$p" <<<"$run_list"; then echo "FAIL: $p is in the run list"; status=1; fi
  if ! grep -qx "$p" <<<"$test_list"; then echo "FAIL: $p is not in the --test list"; status=1; fi
done
while read -r p; do
  grep -qx "$p" <<<"$test_list" || { echo "FAIL: $p (run list) missing from --test"; status=1; }
done <<<"$run_list"
echo "run list: $(tr '\n' ' ' <<<"$run_list")"
exit $status
