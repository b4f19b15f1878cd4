#!/usr/bin/env bash
# Configures and builds fusproxy in ./build (Release, ccache when present). Installs what
# building needs (scripts/setup.sh); the tests are built when Catch2 is installed
# (scripts/setup.sh --test, which scripts/test.sh runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B build -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" "${launcher[@]}" >/dev/null
cmake --build build -j"$(nproc)" "$@"
