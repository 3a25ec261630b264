#!/usr/bin/env bash
# tests/suites/store_pg.sh - the store's PostgreSQL backend on a private
# cluster (initdb in a temp dir, loopback port, removed afterwards):
#   1. every unit test of test_store against PostgreSQL;
#   2. the kill -9 restart black-box test with `pai server --store postgresql://...`.
# Prints ok/not ok lines (tests/run.sh counts them).
set -u
cd "$(dirname "$0")/../.."
BUILD=${PAI_BUILD:-build}
B=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$B" ] || [ ! -x "$B/initdb" ] || ! id postgres >/dev/null 2>&1 || [ "$(id -u)" -ne 0 ]; then
  echo "not ok - store_pg: needs root and PostgreSQL (scripts/deps.sh --postgres)"
  exit 1
fi
W=$(mktemp -d /tmp/pai-pg-XXXXXX)
chown postgres "$W"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pg() { su postgres -s /bin/sh -c "$*"; }
cleanup() {
  pg "$B/pg_ctl -D $W/data -m immediate -w stop" >/dev/null 2>&1
  rm -rf "$W"
}
trap cleanup EXIT
if ! pg "$B/initdb -D $W/data -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 -N" >"$W/initdb.log" 2>&1; then
  echo "not ok - store_pg: initdb failed"; sed 's/^/  /' "$W/initdb.log" | tail -5; exit 1
fi
if ! pg "$B/pg_ctl -D $W/data -l $W/pg.log -w -t 30 -o '-c listen_addresses=127.0.0.1 -p $PORT -k $W'" start >/dev/null 2>&1; then
  echo "not ok - store_pg: postgres did not start"; sed 's/^/  /' "$W/pg.log" | tail -5; exit 1
fi
echo "ok - store_pg: private postgres cluster on 127.0.0.1:$PORT"
URL="postgresql://postgres@127.0.0.1:$PORT/postgres"

PAI_TEST_PG_URL=$URL "$BUILD/tests/test_store" 2>"$W/unit.err" | sed 's/^\(not \)\{0,1\}ok - /&pg: /'
pg "$B/createdb -h 127.0.0.1 -p $PORT -U postgres paisrv"
PAI_SERVER_EXTRA_ARGS="--store postgresql://postgres@127.0.0.1:$PORT/paisrv" \
  python3 tests/blackbox/test_api_restart.py | sed 's/^\(not \)\{0,1\}ok - /&pg: /'
n=$("$B/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d paisrv -tAc "SELECT count(*) FROM pai_records WHERE kind = 'user'" 2>&1)
if [ "${n:-0}" -gt 80 ] 2>/dev/null; then
  echo "ok - pg: the server's users are rows in postgres ($n)"
else
  echo "not ok - pg: the server's users are rows in postgres"; echo "  got: $n"
fi
if [ -x "$BUILD/bench/store" ] && [ -n "${PAI_BENCH:-}" ]; then
  "$BUILD/bench/store" --url "$URL" --writers 16 --seconds 3
fi
