#!/usr/bin/env bash
# The podman runtime end to end: builds the local busybox image (no registry),
# then runs `pai agent --runtime podman` against the fake server.
# Needs root and podman (scripts/deps.sh --podman); says so and passes when
# they are missing, since not every CI machine has them.
set -u
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -ne 0 ] || ! command -v podman >/dev/null; then
  echo "ok - podman suite skipped (needs root and podman)"
  exit 0
fi
if ! bash scripts/build-busybox-image.sh podman >/dev/null 2>&1; then
  echo "not ok - build the local busybox image"
  exit 1
fi
echo "ok - local busybox image"
exec python3 tests/blackbox/podman_agent.py
