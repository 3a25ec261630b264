#!/usr/bin/env bash
# `make run`: start a local cluster with simulated GPUs (pai up) and print
# the portal URL and a login.  Until `pai up` exists, checks the examples.
set -u
BUILD=${1:-build}
PAI=$BUILD/pai
if "$PAI" up --help >/dev/null 2>&1; then
  exec "$PAI" up
fi
for f in examples/*.yaml; do
  [ -f "$f" ] || continue
  "$PAI" job validate "$f" && "$PAI" job render "$f"
done
