#!/usr/bin/env bash
# The container runtimes end to end: builds the local busybox image (no
# registry), runs `pai agent --runtime podman` against the fake server, then
# `--runtime docker` with the docker CLI talking to podman's Docker-compatible
# API socket (there is no Docker daemon here).
# Needs root and podman (scripts/deps.sh --podman); a TAP skip when they are
# missing (tests/run.sh then fails unless PAI_ALLOW_SKIP=1).
set -u
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -ne 0 ] || ! command -v podman >/dev/null; then
  echo "ok - container suite # SKIP needs root and podman (scripts/deps.sh --podman)"
  exit 0
fi
if ! bash scripts/build-busybox-image.sh podman >/dev/null 2>&1; then
  echo "not ok - build the local busybox image"
  exit 1
fi
echo "ok - local busybox image"
rc=0
RUNTIME=podman python3 tests/blackbox/podman_agent.py || rc=1
if ! command -v docker >/dev/null; then
  echo "ok - docker runtime # SKIP no docker CLI (scripts/deps.sh --podman)"
  exit $rc
fi
W=$(mktemp -d)
# run it from $W: conmon drops an "oom" file into its working directory
(cd "$W" && exec podman system service --time=0 "unix://$W/podman.sock") >"$W/service.log" 2>&1 &
svc=$!
trap 'kill $svc 2>/dev/null; wait $svc 2>/dev/null; rm -rf "$W"' EXIT
for _ in $(seq 1 100); do [ -S "$W/podman.sock" ] && break; sleep 0.1; done
DOCKER_HOST="unix://$W/podman.sock" RUNTIME=docker python3 tests/blackbox/podman_agent.py || rc=1
exit $rc
