#!/usr/bin/env bash
# Style gate run by `make test`: clang-format clean, no banned functions.
set -u
cd "$(dirname "$0")/.."
fail=0
files=$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h' 'bench/*.c' 'fuzz/*.c' 2>/dev/null)
[ -n "$files" ] || files=$(find src tests bench fuzz -name '*.[ch]' 2>/dev/null)
if command -v clang-format >/dev/null; then
  bad=$(for f in $files; do clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || echo "$f"; done)
  if [ -n "$bad" ]; then
    echo "check-style: not clang-formatted (run: clang-format -i FILE):"; echo "$bad" | sed 's/^/  /'
    fail=1
  fi
else
  echo "check-style: clang-format missing (scripts/deps.sh installs it)"; fail=1
fi
# Banned: unbounded or locale/overflow-unsafe calls.  Use the helpers in src/common/.
banned='\b(gets|sprintf|vsprintf|strcpy|strcat|atoi|atol|atoll|atof|strtok|tmpnam|mktemp)\s*\('
hits=$(grep -nE "$banned" $files 2>/dev/null | grep -v 'banned-ok')
if [ -n "$hits" ]; then
  echo "check-style: banned functions:"; echo "$hits" | sed 's/^/  /'
  fail=1
fi
# The job engine's locks only through engine_lock() and engine_flush_lock():
# they record the holder for the lock checks (src/engine/engine_int.h).
hits=$(grep -nE 'pthread_mutex_(lock|unlock)\(&[a-z_]+->(mu|flush_mu)\)' src/engine/*.c 2>/dev/null |
  grep -v 'lock-ok')
if [ -n "$hits" ]; then
  echo "check-style: the engine's mutexes are taken through engine_lock()/engine_flush_lock():"
  echo "$hits" | sed 's/^/  /'
  fail=1
fi
[ $fail -eq 0 ] && echo "check-style: ok ($(echo $files | wc -w) files)"
exit $fail
