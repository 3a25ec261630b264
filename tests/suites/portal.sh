#!/usr/bin/env bash
# tests/suites/portal.sh - the web portal in headless Chromium against a real
# cluster (pai server + two agents with simulated GPUs, on free loopback
# ports, in temporary directories).  Prints ok / not ok lines; screenshots of
# every page go to $TEST_OUT/portal/.
#
# Needs chromium, node and tests/browser/node_modules: `scripts/deps.sh
# --browser` (run by `make test`) installs them.
set -u
cd "$(dirname "$0")/../.."
OUT=${TEST_OUT:-$PWD/${PAI_BUILD:-build}/test-out}/portal
rm -rf "$OUT" && mkdir -p "$OUT"
exec python3 tests/browser/run_cluster_tests.py "$OUT"
