#!/usr/bin/env bash
# Builds localhost/pai-busybox:1, a ~2 MB image from Debian's busybox-static,
# with podman import (no registry, no network).  Used by podman-busybox.yaml.
set -euo pipefail
IMAGE=${1:-localhost/pai-busybox:1}
command -v podman >/dev/null || { echo "podman is not installed: bash scripts/deps.sh --podman" >&2; exit 1; }
BB=$(command -v busybox || true)
[ -n "$BB" ] && "$BB" --list >/dev/null 2>&1 || { echo "busybox-static is not installed: apt-get install busybox-static" >&2; exit 1; }
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
mkdir -p "$W"/root/{bin,proc,sys,dev,tmp,etc,root}
cp "$BB" "$W/root/bin/busybox"
(cd "$W/root/bin" && for a in $(./busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$a"; done)
echo 'root:x:0:0:root:/root:/bin/sh' > "$W/root/etc/passwd"; echo 'root:x:0:' > "$W/root/etc/group"
chmod 1777 "$W/root/tmp"
tar -C "$W/root" -cf "$W/bb.tar" .
podman import "$W/bb.tar" "$IMAGE" >/dev/null
echo "built $IMAGE"
