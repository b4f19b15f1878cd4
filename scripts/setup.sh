#!/usr/bin/env bash
# Installs every Debian (bookworm) package fusproxy needs to build, test and benchmark.
# Safe to re-run: when everything is present it changes nothing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config ccache git ca-certificates
  libboost1.81-dev libboost-json1.81-dev libboost-program-options1.81-dev libboost-url1.81-dev
  libssl-dev librapidxml-dev libspdlog-dev catch2 zlib1g-dev libdeflate-dev
  # LZ4 frames inside firmware tars (archive/)
  liblz4-dev
  # real clients and tools the tests and benchmarks drive
  curl wget aria2 openssl python3 python3-cryptography procps strace
  # the reference LZ4 encoder/decoder the archive and sim tests compare with; GNU tar, md5sum
  lz4 tar coreutils
  # deployment tests: nginx in front of replicas, YAML checks of the manifests
  nginx-light python3-yaml
  # promtool for tests/obs (about 100 MB installed); clang for the libFuzzer targets (fuzz/);
  # headless chromium for the status page test (tests/obs)
  prometheus clang chromium
)
if [[ "${FUSPROXY_SETUP_BENCH:-0}" == 1 ]]; then
  packages+=(hyperfine wrk nginx-light time)
fi
if [[ "${FUSPROXY_SETUP_CONTAINER:-0}" == 1 ]]; then
  # deploy/container-test.sh: build and run the image with podman, no registry needed
  packages+=(podman debootstrap runc uidmap fuse-overlayfs slirp4netns)
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
