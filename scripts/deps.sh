#!/usr/bin/env bash
# Installs the Debian packages that pai's build and tests need.
# Idempotent: does nothing when every package is already present.
set -euo pipefail

PKGS=(
  # build
  gcc make pkg-config clang clang-format libclang-rt-14-dev
  # libraries (see docs/architecture.md for why each one)
  libmicrohttpd-dev libjansson-dev libyaml-dev libsqlite3-dev libpq-dev
  libsodium-dev libcurl4-openssl-dev
  libjemalloc-dev # the allocator, linked in statically (Makefile, ALLOC)
  # tests
  python3 curl iproute2 procps openssl
  # ssh into running tasks (tests/blackbox/test_ssh.py): the real client and
  # server, and nss_wrapper for an sshd running as a task's uid
  openssh-client openssh-server libnss-wrapper
)

# Extra package sets a test tier can ask for:
#   scripts/deps.sh [--podman] [--browser] [--postgres] [--prometheus]
for a in "$@"; do
  case "$a" in
    --podman) PKGS+=(podman runc busybox-static) ;;
    --browser) PKGS+=(chromium) ;;
    --postgres) PKGS+=(postgresql) ;;
    --prometheus) PKGS+=(prometheus) ;;
    --slurm) PKGS+=(slurmctld slurmd slurm-client) ;; # bench/vs-slurm only
    --all) PKGS+=(podman runc busybox-static chromium postgresql prometheus) ;;
    *) echo "deps.sh: unknown option $a" >&2; exit 2 ;;
  esac
done

# The docker runtime's tests drive the docker CLI against podman's
# Docker-compatible API (tests/suites/podman.sh): Debian ships that CLI only
# in docker.io, whose daemon is kept from starting like prometheus' below.
for a in "$@"; do
  case "$a" in --podman|--all) command -v docker >/dev/null 2>&1 || PKGS+=(docker.io) ;; esac
done

# Node.js may come from another source (nodesource ships npm inside nodejs);
# only ask Debian for it when no npm is on the PATH.
for a in "$@"; do
  case "$a" in --browser|--all) command -v npm >/dev/null 2>&1 || PKGS+=(nodejs npm) ;; esac
done

# Podman on hosts without CAP_SYS_RESOURCE and with a cgroup v1 hybrid
# layout (the CI machines): default ulimits within the hard limits, and
# runc (crun refuses hybrid cgroup layouts).  Only written when absent.
setup_containers_conf() {
  command -v podman >/dev/null || return 0
  [ -f /etc/containers/containers.conf ] && return 0
  [ "$(id -u)" -eq 0 ] || return 0
  mkdir -p /etc/containers
  cat >/etc/containers/containers.conf <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
CONF
}

# The portal's browser tests (tests/browser): playwright-core at the version
# pinned in package-lock.json, from the npm registry.  Skipped when the
# installed tree is newer than the lock file; it drives Debian's chromium, so
# no browser is downloaded.
BROWSER_TESTS=0
for a in "$@"; do case "$a" in --browser|--all) BROWSER_TESTS=1 ;; esac; done
setup_browser_tests() {
  [ "$BROWSER_TESTS" -eq 1 ] || return 0
  command -v npm >/dev/null || return 0
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/browser"
  [ -f "$dir/package-lock.json" ] || return 0
  [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ] && return 0
  echo "deps.sh: npm ci in tests/browser"
  (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) ||
    echo "deps.sh: npm ci in tests/browser failed; the portal's browser tests will say so" >&2
}
# The OpenPAI compatibility suite (tests/suites/compat.sh): OpenPAI's JavaScript
# SDK at the version pinned in tests/compat/package-lock.json, for --all only.
# npm ci runs only when node_modules is missing or older than the lock file.
COMPAT_TESTS=0
for a in "$@"; do case "$a" in --all) COMPAT_TESTS=1 ;; esac; done
setup_compat_tests() {
  [ "$COMPAT_TESTS" -eq 1 ] || return 0
  command -v npm >/dev/null || return 0
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/compat"
  [ -f "$dir/package-lock.json" ] || return 0
  [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ] && return 0
  echo "deps.sh: npm ci --prefix tests/compat"
  npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error ||
    echo "deps.sh: npm ci in tests/compat failed; the compat suite will say so" >&2
}
trap 'setup_containers_conf; setup_browser_tests; setup_compat_tests' EXIT

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "deps.sh: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: need root to install packages: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Debian's prometheus, docker.io, openssh-server and Slurm packages start system-wide
# daemons (a server on :9090, dockerd, sshd on :22, slurmctld/slurmd/munged) where
# services can start; nothing here needs them (the tests start their own
# Prometheus on a free loopback port, the docker CLI talks to podman,
# tasks start their own sshd,
# bench/vs-slurm starts its own controller and nodes), so a temporary policy-rc.d (exit 101: "action
# forbidden") keeps invoke-rc.d from starting them.  An existing policy is
# left as it is.
rest=() daemons=()
for p in "${missing[@]}"; do
  case "$p" in prometheus | docker.io | openssh-server | slurm*) daemons+=("$p") ;; *) rest+=("$p") ;; esac
done
[ ${#rest[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${rest[@]}" >/dev/null
if [ ${#daemons[@]} -gt 0 ]; then
  policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy=1
  fi
  rc=0
  apt-get install -y -qq --no-install-recommends "${daemons[@]}" >/dev/null || rc=$?
  [ "$policy" -eq 0 ] || rm -f /usr/sbin/policy-rc.d
  [ "$rc" -eq 0 ] || exit "$rc"
fi
