#!/usr/bin/env bash
# tests/suites/portal.sh - the web portal:
#   1. the submit form's job model in Node (tests/browser/protocol.test.mjs),
#      including every OpenPAI job of tests/data/openpai-jobs;
#   2. the portal in headless Chromium against a real cluster: `pai up`
#      (two nodes x 4 simulated GPUs, on a free loopback port, in a temporary
#      data directory, stopped with `pai down`; PORTAL_CLUSTER=server runs
#      `pai server` + two `pai agent`s instead; tests/browser/run_cluster_tests.py);
#   3. the same steps through a standby (PORTAL_CLUSTER=standby: two servers
#      on a private PostgreSQL, the portal opened on the standby), when the
#      PostgreSQL server is installed (scripts/deps.sh --postgres).
# Prints ok / not ok lines; screenshots of every page go to $TEST_OUT/portal/.
# Needs chromium, node and tests/browser/node_modules: `scripts/deps.sh
# --browser` (run by `make test`) installs them.
set -u
cd "$(dirname "$0")/../.."
OUT=${TEST_OUT:-$PWD/${PAI_BUILD:-build}/test-out}/portal
rm -rf "$OUT" && mkdir -p "$OUT"
rc=0
if command -v node >/dev/null; then
  node tests/browser/protocol.test.mjs tests/data/openpai-jobs || rc=1
else
  echo "ok - the submit form's job model in Node # SKIP node is missing (scripts/deps.sh --browser installs it)"
fi
python3 tests/browser/run_cluster_tests.py "$OUT" || rc=1
# the same steps through a standby (two servers on a private PostgreSQL)
if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  PORTAL_CLUSTER=standby python3 tests/browser/run_cluster_tests.py "$OUT/standby" || rc=1
else
  echo "ok - the portal through a standby # SKIP PostgreSQL server not installed (scripts/deps.sh --postgres)"
fi
exit $rc
