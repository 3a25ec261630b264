#!/usr/bin/env bash
# tests/suites/compat.sh - OpenPAI compatibility: OpenPAI's official JavaScript
# SDK (@microsoft/openpai-js-sdk, pinned in tests/compat/package-lock.json)
# and raw OpenPAI client behaviours against a real cluster (pai server + a
# hollow agent + a process-runtime agent, on free loopback ports), every
# answer checked against tests/data/reference/openpai-rest-api-v2.yaml.
# Prints ok / not ok lines.
#
# Needs node and tests/compat/node_modules: `scripts/deps.sh --all` (run by
# `make test`) installs them.
set -u
cd "$(dirname "$0")/../.."
exec python3 tests/compat/run_compat.py
