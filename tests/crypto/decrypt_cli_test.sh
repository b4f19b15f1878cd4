#!/usr/bin/env bash
# End-to-end test of `fusproxy decrypt`: openssl encrypts, fusproxy decrypts, cmp compares.
# usage: decrypt_cli_test.sh PATH/TO/fusproxy
set -euo pipefail
fusproxy=$(realpath "${1:?usage: $0 PATH/TO/fusproxy}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

failures=0
pass() { echo "ok: $*"; }
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
# check NAME SHELL_CODE: the code must succeed ($0 is fusproxy, $1 the key; pipefail on).
check() {
  if bash -o pipefail -c "$2" "$fusproxy" "$key"; then pass "$1"; else fail "$1"; fi
}

# expect_failure NAME STDERR_PATTERN CMD...: non-zero exit and a message matching the pattern.
expect_failure() {
  local name=$1 pattern=$2
  shift 2
  if "$@" 2>err.txt >/dev/null; then
    fail "$name: exited 0"
  elif ! grep -qiE "$pattern" err.txt; then
    fail "$name: stderr does not match /$pattern/: $(cat err.txt)"
  else
    pass "$name ($(head -n1 err.txt))"
  fi
}

# Deterministic pseudo-random data (so the wrong-key case below cannot pass by chance).
python3 -c 'import random, sys; random.seed(20240601); sys.stdout.buffer.write(random.randbytes(3 * 1024 * 1024 + 1234))' >plain.bin
key=00112233445566778899aabbccddeeff
wrong_key=00112233445566778899aabbccddeefe
openssl enc -aes-128-ecb -K "$key" -in plain.bin -out cipher.bin
[[ $(($(stat -c %s cipher.bin) % 16)) -eq 0 ]] || fail "openssl output not block aligned"

# File to file.
check "file to file" '"$0" decrypt --key "$1" cipher.bin out.bin && cmp plain.bin out.bin'
# stdin to stdout, and --key=HEX.
check "stdin to stdout" '"$0" decrypt --key="$1" - - <cipher.bin >out-pipe.bin && cmp plain.bin out-pipe.bin'
# Through a pipe (not a regular file: no size known, short reads).
check "from a pipe" 'cat cipher.bin | "$0" decrypt --key "$1" - out-cat.bin && cmp plain.bin out-cat.bin'
# An existing output file is replaced.
printf 'old contents, longer than nothing' >existing.bin
check "existing output replaced" '"$0" decrypt --key "$1" cipher.bin existing.bin && cmp plain.bin existing.bin'

# Exact multiple of 16 in the plaintext: a whole padding block.
head -c 4096 plain.bin >aligned.bin
openssl enc -aes-128-ecb -K "$key" -in aligned.bin -out aligned.enc
check "aligned plaintext" '"$0" decrypt --key "$1" aligned.enc aligned.out && cmp aligned.bin aligned.out'

# ENC2 and ENC4 keys (ENC4 from vectors.json's enc4 case; the version with '_' or '/').
enc2_key=$(printf '%s' 'SER:SM-A207F:A207FXXU2CUI2/A207FOXM2CUI2/A207FXXU2CUI2/A207FXXU2CUI2' | md5sum | cut -c1-32)
openssl enc -aes-128-ecb -K "$enc2_key" -in plain.bin -out enc2.bin
check "--enc2" '"$0" decrypt --enc2 SER:SM-A207F:A207FXXU2CUI2/A207FOXM2CUI2/A207FXXU2CUI2/A207FXXU2CUI2 enc2.bin enc2.out && cmp plain.bin enc2.out'
openssl enc -aes-128-ecb -K 48f16f3045f05e2afaa19fe658364bd3 -in plain.bin -out enc4.bin
check "--enc4 with '_'" '"$0" decrypt --enc4 A207FXXU2CUI2_A207FOXM2CUI2_A207FXXU2CUI2_A207FXXU2CUI2:ehbkrulq43h44mqw enc4.bin enc4.out && cmp plain.bin enc4.out'
check "--enc4 with '/'" '"$0" decrypt --enc4 A207FXXU2CUI2/A207FOXM2CUI2/A207FXXU2CUI2/A207FXXU2CUI2:ehbkrulq43h44mqw - - <enc4.bin | cmp plain.bin -'

# Failures: non-zero exit, a clear message, no output file left behind.
expect_failure "wrong key" "padding.*wrong key" "$fusproxy" decrypt --key "$wrong_key" cipher.bin wrong.bin
[[ ! -e wrong.bin ]] && pass "wrong key leaves no output" || fail "wrong key left wrong.bin"
printf 'previous' >wrong-existing.bin
expect_failure "wrong key over an existing file" "padding" \
  "$fusproxy" decrypt --key "$wrong_key" cipher.bin wrong-existing.bin
[[ ! -e wrong-existing.bin ]] && pass "a failed run removes the file it truncated" ||
  fail "wrong-existing.bin left behind"
head -c $(($(stat -c %s cipher.bin) - 5)) cipher.bin >truncated.bin
expect_failure "truncated input" "not a multiple of 16" "$fusproxy" decrypt --key "$key" truncated.bin t.out
[[ ! -e t.out ]] && pass "truncated leaves no output" || fail "truncated left t.out"
expect_failure "truncated stdin" "not a multiple of 16" "$fusproxy" decrypt --key "$key" - - <truncated.bin
: >empty.bin
expect_failure "empty input" "empty" "$fusproxy" decrypt --key "$key" empty.bin e.out
expect_failure "missing input" "cannot open input.*No such file" "$fusproxy" decrypt --key "$key" missing.bin m.out
expect_failure "directory input" "is a directory" "$fusproxy" decrypt --key "$key" . d.out
expect_failure "unwritable output" "cannot open output" "$fusproxy" decrypt --key "$key" cipher.bin no/such/dir/out.bin
expect_failure "output is input" "same file" "$fusproxy" decrypt --key "$key" cipher.bin cipher.bin
cmp -s cipher.bin <(openssl enc -aes-128-ecb -K "$key" -in plain.bin) && pass "input untouched" ||
  fail "input was modified"
if [[ -w /dev/full ]]; then
  expect_failure "full device" "cannot write output" "$fusproxy" decrypt --key "$key" cipher.bin /dev/full
fi
expect_failure "bad key hex" "32 hex digits" "$fusproxy" decrypt --key 0011 cipher.bin x.out
expect_failure "no key" "one of --key" "$fusproxy" decrypt cipher.bin x.out
expect_failure "two keys" "exactly one" "$fusproxy" decrypt --key "$key" --enc2 A:B:C cipher.bin x.out
expect_failure "bad enc2" "REGION:MODEL:VERSION" "$fusproxy" decrypt --enc2 SER:SM-A207F cipher.bin x.out
expect_failure "bad enc4" "VERSION:LOGIC_VALUE" "$fusproxy" decrypt --enc4 nologic cipher.bin x.out
expect_failure "missing OUT" "IN and OUT" "$fusproxy" decrypt --key "$key" cipher.bin
expect_failure "unknown option" "unknown option" "$fusproxy" decrypt --kee "$key" cipher.bin x.out
[[ ! -e x.out ]] || fail "usage errors created x.out"
check "--help" '"$0" decrypt --help | grep -q -- --enc4'

if ((failures > 0)); then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all decrypt CLI checks passed"
