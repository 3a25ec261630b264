#!/usr/bin/env bash
# Builds the local test image localhost/pai-busybox:1 from the host's static
# busybox (package busybox-static): no registry is needed or reachable.
# Idempotent: does nothing when the image exists.  Usage:
#   scripts/build-busybox-image.sh [podman|docker]
set -euo pipefail
ENGINE=${1:-podman}
IMAGE=${PAI_TEST_IMAGE:-localhost/pai-busybox:1}
if "$ENGINE" image inspect "$IMAGE" >/dev/null 2>&1; then
  exit 0
fi
BB=$(command -v busybox || true)
if [ -z "$BB" ] || ! file -L "$BB" 2>/dev/null | grep -q 'statically linked'; then
  [ -x /bin/busybox ] && BB=/bin/busybox
fi
[ -n "$BB" ] || { echo "build-busybox-image: install busybox-static" >&2; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W"/root/{bin,proc,sys,dev,tmp,etc,root}
cp "$BB" "$W/root/bin/busybox"
(cd "$W/root/bin" && for a in $(./busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$a"; done)
echo 'root:x:0:0:root:/root:/bin/sh' >"$W/root/etc/passwd"
echo 'root:x:0:' >"$W/root/etc/group"
chmod 1777 "$W/root/tmp"
tar -C "$W/root" -cf "$W/bb.tar" .
"$ENGINE" import "$W/bb.tar" "$IMAGE" >/dev/null
echo "build-busybox-image: built $IMAGE"
