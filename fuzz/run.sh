#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (own build directory) and runs each for a bounded
# time, seeded from ../shared/fixtures and a few hand-made inputs.
#
#   fuzz/run.sh [TARGET...]      TARGET: http_request upstream_xml zip_directory tar_reader
#                                lz4_frame (default: all)
#   FUZZ_SECONDS=60              time per target
#   FUZZ_BUILD_DIR=build-fuzz    where the clang build and the corpora live
#   FUZZ_SHARED_DIR=../shared    fixtures (the worktree's sibling by default)
#
# Exit 0: no crash. 77: clang or its libFuzzer runtime is missing (CTest skips). Else: a
# crash (the reproducer is under $FUZZ_BUILD_DIR/crashes/TARGET/).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
shared=${FUZZ_SHARED_DIR:-$root/../shared}
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(http_request upstream_xml zip_directory tar_reader lz4_frame)

if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ is not installed: skipped" >&2
  exit 77
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long) { return 0; }\n' \
  >"$probe/p.cpp"
if ! clang++ -fsanitize=fuzzer,address,undefined "$probe/p.cpp" -o "$probe/p" 2>/dev/null; then
  echo "fuzz: clang's libFuzzer runtime is missing: skipped" >&2
  exit 77
fi

# The build is shared by parallel CTest runs: one at a time.
mkdir -p "$build"
(
  flock 9
  if [[ ! -f "$build/CMakeCache.txt" ]]; then
    CC=clang CXX=clang++ cmake -S "$root/fuzz" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      >/dev/null
  fi
  cmake --build "$build" -j2 >/dev/null
) 9>"$build/.lock"
[[ ${FUZZ_BUILD_ONLY:-0} == 1 ]] && exit 0

seed() {
  local target=$1 dir=$2
  mkdir -p "$dir"
  case $target in
    http_request)
      printf '/firmware/SM-A207F/SER/latest/download\nbytes=0-99\n"abc"\n"abc", W/"x"\nThu, 07 Oct 2021 16:59:09 GMT\n123456' >"$dir/seed-download"
      printf '/firmware/SM-A207F/SER/A207FXXU2CUI2_A207FOXM2CUI2_A207FXXU2CUI2_A207FXXU2CUI2/files/AP_A207F.tar.md5\nbytes=-500\n\n*\n\n999' >"$dir/seed-member"
      printf '/firmware/sm-a207f/ser/A207FXXU2CUI2%%2FA207FOXM2CUI2%%2FA207FXXU2CUI2%%2FA207FXXU2CUI2/download?encrypted=1\nbytes=10-,0-5,100-200\nSun, 06 Nov 1994 08:49:37 GMT\n\n\n4096' >"$dir/seed-encoded"
      printf '/healthz\nbytes=0-0\n\n\n\n0' >"$dir/seed-health"
      printf '/firmware/SM-A207F/SER\n\n\n\n\n1' >"$dir/seed-versions"
      ;;
    upstream_xml)
      if [[ -d "$shared/fixtures" ]]; then
        find "$shared/fixtures" -name '*.xml' -exec cp {} "$dir/" \;
      fi
      printf '<html><body>Access Denied</body></html>' >"$dir/seed-firewall"
      ;;
    zip_directory)
      python3 - "$dir" <<'PY'
import io, os, sys, zipfile
d = sys.argv[1]
for name, kw in (("stored", dict(compression=zipfile.ZIP_STORED)),
                 ("deflated", dict(compression=zipfile.ZIP_DEFLATED))):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", **kw) as z:
        z.writestr("AP_A207F.tar.md5", b"a" * 300)
        z.writestr("BL_A207F.tar.md5", b"bl")
        z.writestr("dir/", b"")
    open(os.path.join(d, "seed-" + name), "wb").write(b.getvalue())
b = io.BytesIO()
with zipfile.ZipFile(b, "w", allowZip64=True) as z:
    with z.open("big", "w", force_zip64=True) as f:
        f.write(b"x" * 100)
open(os.path.join(d, "seed-zip64"), "wb").write(b.getvalue())
PY
      ;;
    tar_reader)
      # GNU tar in three formats, and a .tar.md5 as Samsung's members end
      local tree
      tree=$(mktemp -d)
      mkdir -p "$tree/meta-data" "$tree/$(printf 'd%.0s' {1..60})"
      printf 'ANDROID!' >"$tree/boot.img.lz4"
      head -c 700 /dev/zero >"$tree/meta-data/fota.zip"
      printf 'x' >"$tree/$(printf 'd%.0s' {1..60})/$(printf 'e%.0s' {1..70})"
      for f in ustar gnu pax; do
        (cd "$tree" && tar -H "$f" -b 1 -cf "$dir/seed-$f" .)
      done
      (cd "$tree" && tar -H ustar -b 1 -cf "$dir/seed-md5" boot.img.lz4 && \
        md5sum -t "$dir/seed-md5" | sed 's|  .*/|  |' >>"$dir/seed-md5")
      rm -rf "$tree"
      ;;
    lz4_frame)
      if command -v lz4 >/dev/null; then
        local input
        input=$(mktemp)
        { head -c 3000 /dev/zero; printf 'ANDROID!boot%.0s' {1..400}; head -c 2000 /dev/urandom; } >"$input"
        local i=0
        for o in "-B4" "-B4 -BD --content-size" "-B4 -BX --no-frame-crc" "-B5 --content-size -BX"; do
          lz4 -q -f $o "$input" "$dir/seed-$i"
          i=$((i + 1))
        done
        rm -f "$input"
      fi
      ;;
  esac
}

status=0
for t in "${targets[@]}"; do
  bin="$build/fuzz_$t"
  [[ -x $bin ]] || { echo "fuzz: no target $t" >&2; exit 2; }
  corpus="$build/corpus/$t"
  crashes="$build/crashes/$t"
  seed "$t" "$corpus"
  mkdir -p "$crashes"
  log="$build/fuzz-$t.log"
  echo "fuzz: $t for ${seconds}s" >&2
  if "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -artifact_prefix="$crashes/" "$corpus" >"$log" 2>&1; then
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
    cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
    files=$(find "$corpus" -type f | wc -l)
    echo "fuzz: $t: no crash; ${execs:-?} execs, ${rate:-?} execs/s, ${cov:-?}, corpus $files" >&2
  else
    echo "fuzz: $t: CRASH (log $log, reproducer in $crashes/)" >&2
    tail -40 "$log" >&2
    status=1
  fi
done
exit $status
