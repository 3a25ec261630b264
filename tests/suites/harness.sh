#!/usr/bin/env bash
# tests/suites/harness.sh - the test machinery reports honestly: every test
# can fail.
#  1. tests/unit/test.h: a tiny test file whose cases pass, fail, skip,
#     segfault, abort, exit and hang on a signal; each must get its own line
#     (the crash named with its signal) and the cases after a crash must
#     still run.  Again under ASan when the compiler has it: a leak fails
#     the case that made it.
#  2. tests/run.sh: fake suites in a scratch tree; passes, failures and skips
#     are counted apart, a crash without a "not ok" line and a program that
#     reports nothing are failures, any skip fails the run unless
#     PAI_ALLOW_SKIP=1, and the last line is "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
CC=${CC:-cc}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

fail=0
ok() { echo "ok - $1"; }
notok() { echo "not ok - $1"; shift; for l in "$@"; do echo "  $l"; done; fail=1; }
expect() { # name, want, got
  if [ "$2" = "$3" ]; then ok "$1"; else notok "$1" "want:" "$(sed 's/^/  /' <<<"$2")" \
    "got:" "$(sed 's/^/  /' <<<"$3")"; fi
}

# ---- 1. the C harness --------------------------------------------------------
# test.h calls util_alloc_init() (src/common/util.h): a stub stands in for libpai
cat >"$TMP/t.c" <<'EOF'
#include <signal.h>
#include "test.h"
void util_alloc_init(void) {}
TEST(passes) { CHECK(1 + 1 == 2); }
TEST(fails) { CHECK_INT_EQ(1 + 1, 3); }
TEST(skips) { test_skip("no widget here"); }
TEST(segfaults) { raise(SIGSEGV); }
TEST(aborts) { abort(); }
TEST(exits) { exit(3); }
TEST(sees_no_state_of_earlier_tests)
{
    static int runs;
    CHECK_INT_EQ(++runs, 1);
}
TEST(passes_after_the_crashes) { CHECK_STR_EQ("a", "a"); }
TEST(also_sees_no_state) { CHECK(sees_no_state_of_earlier_tests != NULL); sees_no_state_of_earlier_tests(); }
RUN_TESTS(passes, fails, skips, segfaults, aborts, exits, sees_no_state_of_earlier_tests,
          passes_after_the_crashes, also_sees_no_state)
EOF
want="ok - passes
not ok - fails
ok - skips # SKIP no widget here
not ok - segfaults: killed by signal 11 (Segmentation fault)
not ok - aborts: killed by signal 6 (Aborted)
not ok - exits: exited with status 3
ok - sees_no_state_of_earlier_tests
ok - passes_after_the_crashes
ok - also_sees_no_state"
if "$CC" -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$ROOT/src" -I"$ROOT/tests/unit" "$TMP/t.c" \
   -o "$TMP/t" 2>"$TMP/cc.log"; then
  got=$("$TMP/t" 2>"$TMP/err.log"); rc=$?
  expect "test.h: each case gets its line; crashes are named with their signal; the rest runs" \
    "$want" "$got"
  expect "test.h: a failing file exits 1" 1 "$rc"
  expect "test.h: a CHECK failure says where and what" \
    "  $TMP/t.c:5: 1 + 1 == 2, expected 3 == 3" "$(grep ':5: ' "$TMP/err.log")"
else
  notok "test.h: the self-test compiles" "$(head -20 "$TMP/cc.log")"
fi

# under ASan: a leak fails the case that leaked, and only that case
cat >"$TMP/leak.c" <<'EOF'
#include "test.h"
void util_alloc_init(void) {}
static void *keep;
/* many blocks: a stale copy of one pointer in a register or a dead stack slot
 * would hide that one block from LeakSanitizer, never all of them */
TEST(leaks) { keep = NULL; for (int i = 0; i < 32; i++) (void)malloc(4096 + i); }
TEST(keeps_memory_reachable) { keep = malloc(4096); }
RUN_TESTS(leaks, keeps_memory_reachable)
EOF
if "$CC" -std=c11 -D_GNU_SOURCE -g -fsanitize=address -I"$ROOT/src" -I"$ROOT/tests/unit" \
   "$TMP/leak.c" -o "$TMP/leak" 2>/dev/null; then
  got=$(ASAN_OPTIONS=detect_leaks=1 "$TMP/leak" 2>"$TMP/leak.log")
  if grep -q "LeakSanitizer does not work\|LeakSanitizer has encountered a fatal error" "$TMP/leak.log"; then
    echo "# LeakSanitizer cannot run here (ptrace refused): the leak case is not checked"
  else
    expect "test.h under ASan: a leak fails the case that made it" \
      "not ok - leaks
ok - keeps_memory_reachable" "$got"
  fi
else
  echo "# $CC has no -fsanitize=address: the leak case is not checked"
fi

# ---- 2. the runner -------------------------------------------------------------
mkdir -p "$TMP/tree/tests/suites"
cp tests/run.sh "$TMP/tree/tests/"
cat >"$TMP/tree/tests/suites/a_mixed.sh" <<'EOF'
echo "ok - one"
echo "ok - two # SKIP no podman"
echo "ok - three # skip lower case"
echo "not ok - four"
exit 1
EOF
printf 'echo "ok - fine"\n' >"$TMP/tree/tests/suites/b_pass.sh"
printf 'echo "ok - before"\nkill -SEGV $$\n' >"$TMP/tree/tests/suites/c_crash.sh"
printf 'exit 0\n' >"$TMP/tree/tests/suites/d_silent.sh"
printf 'echo "ok - a"\necho "ok - b # SKIP no chromium"\n' >"$TMP/tree/tests/suites/e_skip.sh"
runner() { # PAI_ALLOW_SKIP value, TESTS pattern
  env -u VERBOSE TESTS="$2" PAI_ALLOW_SKIP="$1" TEST_OUT="$TMP/out" BUILD=build \
    bash "$TMP/tree/tests/run.sh" 2>>"$TMP/runner.err"
}
got=$(runner "" ""); rc=$?
expect "run.sh: passes, failures and skips counted apart per program" \
  "suite/a_mixed 1 1 2
suite/b_pass 1 0 0
suite/c_crash 1 1 0
suite/d_silent 0 1 0
suite/e_skip 1 0 1" \
  "$(grep '^suite/' <<<"$got" | awk '{print $1, $2, $4, $6}')"
expect "run.sh: the last line is N passed, N failed, N skipped" \
  "4 passed, 3 failed, 3 skipped" "$(tail -1 <<<"$got")"
expect "run.sh: a failure fails the run" 1 "$rc"
grep -q "not ok - suite/c_crash exited with status" "$TMP/out/suite_c_crash.log" &&
  ok "run.sh: a crash without a not ok line is a failure" ||
  notok "run.sh: a crash without a not ok line is a failure" "$(cat "$TMP/out/suite_c_crash.log")"
grep -q "not ok - suite/d_silent reported no test" "$TMP/out/suite_d_silent.log" &&
  ok "run.sh: a program that reports no test is a failure" ||
  notok "run.sh: a program that reports no test is a failure" "$(cat "$TMP/out/suite_d_silent.log")"
got=$(runner "" e_skip); rc=$?
expect "run.sh: a skip fails the run" 1 "$rc"
grep -q "^  suite/e_skip: b # SKIP no chromium$" <<<"$got" &&
  ok "run.sh: skipped tests are listed with their reasons" ||
  notok "run.sh: skipped tests are listed with their reasons" "$got"
expect "run.sh: the last line after skips" "1 passed, 0 failed, 1 skipped" "$(tail -1 <<<"$got")"
runner 1 e_skip >/dev/null; rc=$?
expect "run.sh: PAI_ALLOW_SKIP=1 accepts skips" 0 "$rc"
runner "" b_pass >/dev/null; rc=$?
expect "run.sh: a clean run passes" 0 "$rc"
exit $fail
