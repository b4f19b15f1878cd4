#!/usr/bin/env bash
# Builds everything and runs every test (unit and end-to-end) through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
cd build && ctest --output-on-failure -j"$(nproc)" "$@"
