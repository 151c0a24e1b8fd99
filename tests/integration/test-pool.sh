#!/usr/bin/env bash
# Runs the async pool integration test (test-pool.c) against a throwaway PostgreSQL and tells
# it how to stop and restart that server for the "database down" scenario. The binary's TAP
# output passes through; its exit status is the test's.
set -uo pipefail
exe=$1
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/pg/pgtest.sh"
pgtest_start || { echo "Bail out! cannot start PostgreSQL"; exit 1; }

# PostgreSQL runs as its owner (postgres when we are root). `pg_ctl restart` on a stopped
# server starts it with the options recorded in postmaster.opts, so pgtest_start's settings
# (socket dir, port) are not repeated here.
as_owner=
[ "$(id -u)" -eq 0 ] && as_owner="runuser -u postgres --"
ctl="$as_owner $(printf '%q' "$PGTEST_BIN/pg_ctl") -D $(printf '%q' "$PGTEST_DIR/data") -w"
export OCGATE_TEST_PG_STOP="$ctl -m fast stop >/dev/null"
log=$(printf '%q' "$PGTEST_DIR/server.log")
export OCGATE_TEST_PG_START="$ctl -l $log restart >/dev/null 2>&1"

"$exe"
rc=$?
[ $rc -eq 0 ] || { echo "# server log:"; sed 's/^/#   /' "$PGTEST_DIR/server.log" | tail -20; }
exit $rc
