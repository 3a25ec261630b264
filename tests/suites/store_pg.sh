#!/usr/bin/env bash
# The PostgreSQL store end to end, on a private throw-away cluster
# (scripts/pg-test-cluster.sh, 127.0.0.1 on a free port):
#   1. the store unit tests against it (test_store_pg with PAI_PG_URL set,
#      test_lease_pg, and the template registry's pg_ cases of test_templates_reg);
#   2. black-box tests against `pai server` with `store: postgres://...`
#      (PAI_STORE), each in a database of its own: the restart test (kill -9
#      after acknowledgments), auth, the job API and the job templates; then a
#      check that the records really are in PostgreSQL.
# Needs the `postgresql` package (scripts/deps.sh --postgres; `make test`
# installs it); without it the suite is a TAP skip (tests/run.sh then fails
# unless PAI_ALLOW_SKIP=1).
set -u
cd "$(dirname "$0")/../.."
BUILD=${PAI_BUILD:-build}
export PAI_BIN=${PAI_BIN:-$PWD/$BUILD/pai}
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || ! command -v psql >/dev/null; then
  echo "ok - store_pg suite # SKIP PostgreSQL server not installed (scripts/deps.sh --postgres)"
  exit 0
fi

dir=$(mktemp -d /tmp/pai-pg-XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() {
  bash scripts/pg-test-cluster.sh stop "$dir" "$port" >/dev/null 2>&1
  rm -rf "$dir"
}
trap cleanup EXIT
trap "exit 1" TERM INT

if ! url=$(bash scripts/pg-test-cluster.sh start "$dir" "$port"); then
  echo "not ok - start a private PostgreSQL cluster"
  exit 1
fi
echo "ok - private PostgreSQL cluster on 127.0.0.1:$port"
fail=0

# 1. the store contract against PostgreSQL (its own "ok"/"not ok" lines)
PAI_PG_URL=$url "$BUILD/tests/test_store_pg" || fail=1
#    leader election and fencing (test_lease_pg)
PAI_PG_URL=$url "$BUILD/tests/test_lease_pg" || fail=1
#    the template registry on PostgreSQL (test_templates_reg, its pg_ cases)
PAI_PG_URL=$url "$BUILD/tests/test_templates_reg" || fail=1

# 2. `pai server` on PostgreSQL: black-box tests, each in a fresh database
#    (the kill -9 restart test first), lines prefixed "pg: "
psql() { command psql -X -q -A -t -h 127.0.0.1 -p "$port" -U postgres "$@"; }
for t in test_api_restart test_api_auth test_jobs_api test_job_events test_templates \
  test_store_migrate; do
  db=pai_$t
  if ! psql -d postgres -c "CREATE DATABASE $db" >/dev/null; then
    echo "not ok - pg: create database $db"
    fail=1
    continue
  fi
  PAI_STORE="postgres://postgres@127.0.0.1:$port/$db" python3 "tests/blackbox/$t.py" 2>&1 |
    sed -e 's/^ok - /ok - pg: /' -e 's/^not ok - /not ok - pg: /'
  [ "${PIPESTATUS[0]}" -eq 0 ] || fail=1
done
users=$(psql -d pai_test_api_restart -c "SELECT count(*) FROM pai_records WHERE kind = 'user'" 2>&1)
if [ "${users:-0}" -ge 80 ] 2>/dev/null; then
  echo "ok - pai server kept its records in PostgreSQL ($users users)"
else
  echo "not ok - pai server kept its records in PostgreSQL (got: $users)"
  fail=1
fi
tpls=$(psql -d pai_test_templates -c "SELECT count(*) FROM pai_records WHERE kind = 'template'" 2>&1)
ymls=$(psql -d pai_test_templates -c "SELECT count(*) FROM pai_records WHERE kind = 'tplyaml'" 2>&1)
if [ "${tpls:-0}" -ge 5 ] 2>/dev/null && [ "$tpls" = "$ymls" ]; then
  echo "ok - pai server kept its templates in PostgreSQL ($tpls templates, $ymls protocols)"
else
  echo "not ok - pai server kept its templates in PostgreSQL (got: $tpls templates, $ymls protocols)"
  fail=1
fi
exit $fail
