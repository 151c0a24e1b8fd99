#!/usr/bin/env bash
# `ocgate migrate` against a real, throwaway PostgreSQL: applies every migration once,
# changes nothing when run again, is safe when two run at once, refuses an applied migration
# whose file changed and a database that knows migrations this binary does not. TAP output.
set -uo pipefail
ocgate=$1
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/pg/pgtest.sh"
pgtest_start || { echo "Bail out! cannot start PostgreSQL"; exit 1; }

. "$here/lib/tap.sh"
sql() { psql -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
# pg_dump 15.14+ brackets its output with \restrict lines holding a random key.
schema_dump() { pg_dump --schema-only --no-owner "$PGDATABASE" | grep -v -e '^--' -e '^\\restrict' -e '^\\unrestrict'; }

count=$(ls "$here/../migrations/"[0-9][0-9][0-9][0-9]_*.sql | wc -l)

"$ocgate" migrate --check >/dev/null 2>"$PGTEST_DIR/check0"; rc=$?
check "--check on an empty database exits 1 (behind)" '[ $rc -eq 1 ]'
check "--check says the schema is behind" 'grep -q "behind" "$PGTEST_DIR/check0"'

out=$("$ocgate" migrate 2>&1); rc=$?
check "first migrate exits 0" '[ $rc -eq 0 ]'
check "first migrate applies every migration ($count)" \
    '[ "$(grep -c "^applied " <<<"$out")" -eq "$count" ]'
check "schema_migrations records each with a sha256 checksum" \
    '[ "$(sql "SELECT count(*) FROM schema_migrations WHERE checksum ~ '"'"'^[0-9a-f]{64}$'"'"'")" -eq "$count" ]'
sum0001=$(sha256sum "$here/../migrations/0001_core.sql" | cut -d" " -f1)
check "the recorded checksum is the file's SHA-256" \
    '[ "$(sql "SELECT checksum FROM schema_migrations WHERE version = 1")" = "$sum0001" ]'

before=$(schema_dump)
rows_before=$(sql "SELECT string_agg(version || applied_at::text, ',') FROM schema_migrations")
out=$("$ocgate" migrate 2>&1); rc=$?
check "second migrate exits 0 and applies nothing" '[ $rc -eq 0 ] && ! grep -q "^applied " <<<"$out"'
check "second migrate leaves the schema identical" '[ "$(schema_dump)" = "$before" ]'
check "second migrate leaves schema_migrations identical" \
    '[ "$(sql "SELECT string_agg(version || applied_at::text, '"','"') FROM schema_migrations")" = "$rows_before" ]'
"$ocgate" migrate --check >/dev/null 2>&1; rc=$?
check "--check on a current database exits 0" '[ $rc -eq 0 ]'

# Two instances starting at once on a fresh database: the advisory lock serialises them.
sql "CREATE DATABASE race" >/dev/null
race_url="${OCGATE_DATABASE_URL/\/postgres\?//race?}"
OCGATE_DATABASE_URL=$race_url "$ocgate" migrate >"$PGTEST_DIR/r1" 2>&1 & p1=$!
OCGATE_DATABASE_URL=$race_url "$ocgate" migrate >"$PGTEST_DIR/r2" 2>&1 & p2=$!
wait $p1; rc1=$?
wait $p2; rc2=$?
check "two concurrent migrates both succeed" '[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]'
check "together they apply each migration exactly once" \
    '[ "$(cat "$PGTEST_DIR/r1" "$PGTEST_DIR/r2" | grep -c "^applied ")" -eq "$count" ]'
check "the raced database records each migration once" \
    '[ "$(psql -XAtq -d race -c "SELECT count(*) FROM schema_migrations")" -eq "$count" ]'

# An applied migration whose file changed (simulated by changing the recorded checksum).
sql "UPDATE schema_migrations SET checksum = repeat('0', 64) WHERE version = 1" >/dev/null
before=$(schema_dump)
"$ocgate" migrate >/dev/null 2>"$PGTEST_DIR/chg"; rc=$?
check "a changed applied migration is refused (exit 1)" '[ $rc -eq 1 ]'
check "the refusal names the migration" 'grep -q "0001_core" "$PGTEST_DIR/chg"'
check "the refusal changes nothing" '[ "$(schema_dump)" = "$before" ]'
"$ocgate" migrate --check >/dev/null 2>&1; rc=$?
check "--check also refuses a changed migration" '[ $rc -eq 1 ]'
sql "UPDATE schema_migrations SET checksum = '$sum0001' WHERE version = 1" >/dev/null

# A database migrated by a newer ocgate.
sql "INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, 'future', repeat('a', 64))" >/dev/null
"$ocgate" migrate >/dev/null 2>"$PGTEST_DIR/fut"; rc=$?
check "a database with an unknown migration is refused" '[ $rc -eq 1 ] && grep -q "9999" "$PGTEST_DIR/fut"'
sql "DELETE FROM schema_migrations WHERE version = 9999" >/dev/null

OCGATE_DATABASE_URL= "$ocgate" migrate >/dev/null 2>&1; rc=$?
check "migrate without OCGATE_DATABASE_URL is a usage error (exit 2)" '[ $rc -eq 2 ]'
OCGATE_DATABASE_URL="postgresql:///nope?host=$PGTEST_DIR/missing" "$ocgate" migrate >/dev/null 2>&1; rc=$?
check "an unreachable database fails (exit 1)" '[ $rc -eq 1 ]'

# Ledger guards the schema promises: append-only and balanced at commit.
sql "INSERT INTO participants (ocid, name, roles, public_key) VALUES (1, 'm', '{merchant}', repeat('a', 128))" >/dev/null
sql "INSERT INTO ledger_transactions (id, kind, merchant_ocid) VALUES (1, 'settlement', 1)" >/dev/null
psql -XAtq -v ON_ERROR_STOP=1 >/dev/null 2>&1 <<'SQL'; rc=$?
BEGIN;
INSERT INTO ledger_transactions (id, kind) VALUES (2, 'settlement');
INSERT INTO ledger_entries (ledger_tx_id, account, currency, amount) VALUES (2, 'merchant:1', 'USD', 5);
COMMIT;
SQL
check "an unbalanced ledger transaction cannot commit" '[ $rc -ne 0 ] && [ "$(sql "SELECT count(*) FROM ledger_entries")" -eq 0 ]'
psql -XAtq -v ON_ERROR_STOP=1 >/dev/null 2>&1 <<'SQL'; rc=$?
BEGIN;
INSERT INTO ledger_transactions (id, kind) VALUES (3, 'settlement');
INSERT INTO ledger_entries (ledger_tx_id, account, currency, amount) VALUES (3, 'clearing:7', 'USD', -5);
INSERT INTO ledger_entries (ledger_tx_id, account, currency, amount) VALUES (3, 'merchant:1', 'USD', 5);
COMMIT;
SQL
check "a balanced ledger transaction commits" '[ $rc -eq 0 ] && [ "$(sql "SELECT count(*) FROM ledger_entries")" -eq 2 ]'
sql "UPDATE ledger_entries SET amount = 6 WHERE amount = 5" >/dev/null 2>&1; rc=$?
check "ledger entries cannot be updated" '[ $rc -ne 0 ]'
sql "DELETE FROM ledger_entries" >/dev/null 2>&1; rc=$?
check "ledger entries cannot be deleted" '[ $rc -ne 0 ] && [ "$(sql "SELECT count(*) FROM ledger_entries")" -eq 2 ]'

echo "1..$n"
[ $fails -eq 0 ]
