#!/usr/bin/env bash
# tests/run.sh - runs every test tier and ends with "N passed, N failed".
#
# Tiers (each test program prints "ok - name" / "not ok - name" lines):
#   unit       $BUILD/tests/test_*          (tests/unit/test_*.c)
#   scenario   tests/run-*.sh hooks         (scheduler scenarios, protocol corpus...)
#   blackbox   tests/blackbox/test_*.py     (real servers and agents on loopback)
# A program that crashes or exits non-zero without a "not ok" line counts as
# one failure.  TESTS=pattern runs only the matching programs.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export PAI_BIN=${PAI_BIN:-$PWD/$BUILD/pai}
export PAI_BUILD=$BUILD
OUT=${TEST_OUT:-$PWD/$BUILD/test-out}
mkdir -p "$OUT"
export TEST_OUT=$OUT
pass=0; fail=0; failed_names=()

run_one() { # name, command...
  local name=$1; shift
  case "$name" in *${TESTS:-}*) ;; *) return ;; esac
  local log="$OUT/$(echo "$name" | tr '/ ' '__').log"
  local t0=$(date +%s)
  timeout "${TEST_TIMEOUT:-900}" "$@" >"$log" 2>&1
  local rc=$?
  local p f
  p=$(grep -c '^ok ' "$log"); f=$(grep -c '^not ok ' "$log")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "not ok - $name exited with status $rc" >>"$log"; fi
  pass=$((pass + p)); fail=$((fail + f))
  printf '%-48s %4d passed %3d failed  (%ds)\n' "$name" "$p" "$f" $(( $(date +%s) - t0 ))
  if [ "$f" -ne 0 ]; then
    failed_names+=("$name")
    grep -E '^not ok|^  ' "$log" | head -40 | sed 's/^/    /'
    [ -n "${VERBOSE:-}" ] && cat "$log"
  fi
}

for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  run_one "unit/$(basename "$t")" "$t"
done
for t in tests/suites/*.sh; do
  [ -f "$t" ] || continue
  run_one "suite/$(basename "$t" .sh)" bash "$t"
done
for t in tests/blackbox/test_*.py; do
  [ -f "$t" ] || continue
  run_one "blackbox/$(basename "$t" .py)" python3 "$t"
done

echo
[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
