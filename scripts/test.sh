#!/usr/bin/env bash
# Installs the test tools (scripts/setup.sh --test), builds everything and runs every test
# (unit and end-to-end) through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
bash scripts/build.sh
cd build && ctest --output-on-failure -j"$(nproc)" "$@"
