#!/usr/bin/env bash
# scripts/pg-test-cluster.sh start|stop DIR PORT
#
# A private, throw-away PostgreSQL cluster for tests and benchmarks:
# data in DIR/data, socket and log in DIR/sock, listening on 127.0.0.1:PORT
# only, trust authentication (loopback only; never use for real data).
# PG_TEST_LISTEN=ADDR listens on ADDR instead and trusts its subnet too
# ("samenet"): for a cluster inside a test's own network namespace.
# As root it runs the server as the `postgres` user (which initdb requires);
# as any other user it runs it as that user.  Needs the `postgresql` package
# (scripts/deps.sh --postgres).  fsync stays on: figures measured against
# this cluster are durable commits.
#
#   start: initdb (first time only) + pg_ctl start; prints the URL
#          postgres://postgres@127.0.0.1:PORT/postgres on success.
#   stop:  pg_ctl stop -m fast (by the cluster's own pid file).
set -euo pipefail
cmd=${1:-}; dir=${2:-}; port=${3:-}
if [ -z "$cmd" ] || [ -z "$dir" ] || { [ "$cmd" = start ] && [ -z "$port" ]; }; then
  echo "usage: $0 start|stop DIR PORT" >&2
  exit 2
fi
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bindir" ] || [ ! -x "$bindir/pg_ctl" ]; then
  echo "pg-test-cluster: PostgreSQL server binaries not found (scripts/deps.sh --postgres)" >&2
  exit 1
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
data=$dir/data; sock=$dir/sock
listen=${PG_TEST_LISTEN:-127.0.0.1}

as_pg() { # run a command line as the cluster's owner
  if [ "$(id -u)" -eq 0 ]; then
    su postgres -s /bin/sh -c "$1"
  else
    sh -c "$1"
  fi
}

case "$cmd" in
start)
  mkdir -p "$data" "$sock"
  chmod 700 "$data"
  if [ "$(id -u)" -eq 0 ]; then
    chmod 755 "$dir"
    chown postgres:postgres "$data" "$sock"
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    # -N: skip initdb's own fsyncs (a throw-away cluster); the server keeps fsync on.
    as_pg "'$bindir/initdb' -D '$data' -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 -N" \
      >"$sock/initdb.log" 2>&1 || { cat "$sock/initdb.log" >&2; exit 1; }
  fi
  if [ "$listen" != 127.0.0.1 ] && ! grep -q '^host all all samenet trust' "$data/pg_hba.conf"; then
    as_pg "echo 'host all all samenet trust' >> '$data/pg_hba.conf'"
  fi
  as_pg "'$bindir/pg_ctl' -D '$data' -l '$sock/pg.log' -w -t 30 -o \"-c listen_addresses=$listen -p $port -k '$sock'\" start" \
    >/dev/null || { tail -20 "$sock/pg.log" >&2; exit 1; }
  echo "postgres://postgres@$listen:$port/postgres"
  ;;
stop)
  [ -f "$data/postmaster.pid" ] || exit 0
  as_pg "'$bindir/pg_ctl' -D '$data' -m fast -w -t 30 stop" >/dev/null
  ;;
*)
  echo "usage: $0 start|stop DIR PORT" >&2
  exit 2
  ;;
esac
