#!/usr/bin/env bash
# `make run`: start a local pai cluster with the binary just built.
#
# Runs `pai up` in the foreground: the server (store in ./.pai) and 2 agents
# with 4 simulated GPUs each.  It prints the portal URL, the API URL and the
# admin login; Ctrl-C (or `pai down` from another terminal) stops it all.
# Extra arguments go to `pai up`: make run ARGS="--nodes 3 --gpus 8".
set -u
BUILD=${1:-build}
shift || true
PAI="$BUILD/pai"
if [ ! -x "$PAI" ]; then
  echo "run.sh: $PAI is missing; build it with: make all" >&2
  exit 1
fi
echo "run.sh: the CLI is $PWD/$PAI; in another terminal: export PATH=\"$PWD/$BUILD:\$PATH\""
exec "$PAI" up "$@"
