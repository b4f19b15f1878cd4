#!/usr/bin/env bash
# Builds fusproxy and runs it; with no arguments it starts the offline demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh --target fusproxy
[[ $# -eq 0 ]] && set -- --demo
exec ./build/cli/fusproxy "$@"
