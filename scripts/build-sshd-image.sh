#!/usr/bin/env bash
# Builds the local test image localhost/pai-sshd:1: the busybox image's files
# plus the host's OpenSSH server (/usr/sbin/sshd and the libraries it links),
# for the ssh runtime plugin's container test (tests/blackbox/test_ssh.py).
# No registry is needed or reachable.  Idempotent.  Usage:
#   scripts/build-sshd-image.sh [podman|docker]
set -euo pipefail
ENGINE=${1:-podman}
IMAGE=${PAI_TEST_SSHD_IMAGE:-localhost/pai-sshd:1}
if "$ENGINE" image inspect "$IMAGE" >/dev/null 2>&1; then
  exit 0
fi
SSHD=/usr/sbin/sshd
[ -x "$SSHD" ] || { echo "build-sshd-image: install openssh-server" >&2; exit 1; }
BB=$(command -v busybox || true)
if [ -z "$BB" ] || ! file -L "$BB" 2>/dev/null | grep -q 'statically linked'; then
  [ -x /bin/busybox ] && BB=/bin/busybox
fi
[ -n "$BB" ] || { echo "build-sshd-image: install busybox-static" >&2; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
R="$W/root"
mkdir -p "$R"/{bin,proc,sys,dev,tmp,etc,root,run/sshd,var/empty,usr/sbin}
cp "$BB" "$R/bin/busybox"
(cd "$R/bin" && for a in $(./busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$a"; done)
cp "$SSHD" "$R/usr/sbin/sshd"
# the libraries sshd links, at the paths the loader looks for them
for lib in $(ldd "$SSHD" | grep -o '/[^ ]*'); do
  mkdir -p "$R$(dirname "$lib")"
  cp -L "$lib" "$R$lib"
done
cat >"$R/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
sshd:x:100:65534::/run/sshd:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
P
printf 'root:x:0:\nnogroup:x:65534:\n' >"$R/etc/group"
printf 'passwd: files\ngroup: files\nshadow: files\n' >"$R/etc/nsswitch.conf"
chmod 1777 "$R/tmp"
chmod 755 "$R/run/sshd" "$R/var/empty"
tar -C "$R" -cf "$W/img.tar" .
"$ENGINE" import "$W/img.tar" "$IMAGE" >/dev/null
echo "build-sshd-image: built $IMAGE"
