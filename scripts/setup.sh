#!/usr/bin/env bash
# Installs the Debian (bookworm) packages fusproxy needs. Safe to re-run: when everything is
# present it changes nothing.
#
#   scripts/setup.sh          what building and running the service need (scripts/run.sh,
#                             the Dockerfile's build stage)
#   scripts/setup.sh --test   that, plus the tools the tests drive (scripts/test.sh)
#   scripts/setup.sh --list [--test]   print the package names, install nothing
#
# FUSPROXY_SETUP_BENCH=1 adds the benchmark tools, FUSPROXY_SETUP_CONTAINER=1 podman and
# friends for deploy/container-test.sh.
set -euo pipefail

with_tests=0
list_only=0
for arg in "$@"; do
  case "$arg" in
    --test) with_tests=1 ;;
    --list) list_only=1 ;;
    *) echo "usage: $0 [--test] [--list]" >&2; exit 2 ;;
  esac
done

# Build and run: the compiler and the libraries fusproxy links; curl to try the service
# (README) and CA certificates to reach Samsung over HTTPS.
packages=(
  build-essential cmake pkg-config ccache ca-certificates curl
  libboost1.81-dev libboost-json1.81-dev libboost-program-options1.81-dev libboost-url1.81-dev
  libssl-dev librapidxml-dev libspdlog-dev zlib1g-dev libdeflate-dev
  # LZ4 frames inside firmware tars (archive/)
  liblz4-dev
)
if [[ $with_tests == 1 ]]; then
  packages+=(
    # unit tests (Catch2 v2); CMake builds no test without it
    catch2 git
    # real clients and tools the tests drive
    wget aria2 openssl python3 python3-cryptography procps strace
    # the reference LZ4 encoder/decoder the archive tests compare with; GNU tar, md5sum
    lz4 tar coreutils
    # deployment tests: nginx in front of replicas, YAML checks of the manifests
    nginx-light python3-yaml
    # promtool for tests/obs (about 100 MB installed); clang for the libFuzzer targets (fuzz/);
    # headless chromium for the status page tests (tests/obs); a real Atom parser (tests/e2e)
    prometheus clang chromium python3-feedparser
  )
fi
if [[ "${FUSPROXY_SETUP_BENCH:-0}" == 1 ]]; then
  packages+=(hyperfine wrk nginx-light time)
fi
if [[ "${FUSPROXY_SETUP_CONTAINER:-0}" == 1 ]]; then
  # deploy/container-test.sh: build and run the image with podman, no registry needed
  packages+=(podman debootstrap runc uidmap fuse-overlayfs slirp4netns)
fi

if [[ $list_only == 1 ]]; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "setup: installing ${missing[*]}" >&2
sudo=()
[[ $(id -u) -ne 0 ]] && sudo=(sudo)
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
