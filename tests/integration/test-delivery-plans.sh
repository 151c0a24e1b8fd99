#!/usr/bin/env bash
# The delivery worker's bookkeeping statements on a real PostgreSQL.
#
# Per-row statements must reach their row through the primary key whatever the statistics say
# (migrations/0007_delivery_by_id.sql). The trap: statistics taken while the queue was empty
# make the partial indexes deliveries_due and deliveries_final look cheaper than the primary
# key, and a statement whose WHERE clause implies their predicate then reads every pending (or
# dead) row per call. This builds exactly that state, runs oc_delivery_finish and
# oc_delivery_retry with auto_explain printing every nested plan, and checks the plans and the
# functions' results.
#
# Retention (migrations/0008_attempt_retention.sql): attempt records older than
# delivery_attempt_retention are deleted in bounded batches, younger ones never, and a running
# `ocgate worker` does it by itself. TAP output.
set -uo pipefail
ocgate=$1
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/pg/pgtest.sh"
pgtest_start || { echo "Bail out! cannot start PostgreSQL"; exit 1; }

. "$here/lib/tap.sh"
sql() { psql -XAtq -v ON_ERROR_STOP=1 -c "$1"; }

"$ocgate" migrate >/dev/null 2>&1 || { echo "Bail out! migrate failed"; exit 1; }

# History: 20,000 delivered notifications, then statistics while nothing is due or dead.
# Foreign keys are not the subject here; replica mode lets the rows skip participants.
psql -XAtq -v ON_ERROR_STOP=1 >/dev/null <<'EOF' || { echo "Bail out! seeding failed"; exit 1; }
SET session_replication_role = replica;
INSERT INTO payments (txid, merchant_ocid, app_ocid, amount, amount_text, currency, expires_at)
SELECT 'tx' || g, 1 + g % 16, 100, 1, '1', 'USD', now() + interval '1 hour'
  FROM generate_series(1, 26000) g;
INSERT INTO deliveries (id, payment_txid, merchant_ocid, state, attempts)
SELECT gen_random_uuid(), 'tx' || g, 1 + g % 16, 'delivered', 1
  FROM generate_series(1, 20000) g;
VACUUM ANALYZE deliveries;
-- Then, without new statistics, a backlog: 3,000 pending, 3,000 dead, and the rows under test.
INSERT INTO deliveries (id, payment_txid, merchant_ocid, state, attempts)
SELECT gen_random_uuid(), 'tx' || g, 1 + g % 16, 'pending', 0
  FROM generate_series(20001, 23000) g;
INSERT INTO deliveries (id, payment_txid, merchant_ocid, state, attempts)
SELECT gen_random_uuid(), 'tx' || g, 1 + g % 16, 'dead', 8
  FROM generate_series(23001, 26000) g;
UPDATE deliveries SET state = 'in_flight', attempts = 3, lease_until = now() + interval '60 s',
       next_attempt_at = now() + interval '60 s'
 WHERE payment_txid IN ('tx20001', 'tx20002', 'tx20003', 'tx20004');
EOF
id_of() { sql "SELECT id FROM deliveries WHERE payment_txid = '$1'"; }
in1=$(id_of tx20001) in2=$(id_of tx20002) in3=$(id_of tx20003) in4=$(id_of tx20004)
dead=$(id_of tx23001) done_id=$(id_of tx1)

# Runs one statement with every nested plan printed as a NOTICE (to stderr); prints the
# statement's result. The plans land in $PGTEST_DIR/plan.
explained() {
    psql -XAtq -v ON_ERROR_STOP=1 2>"$PGTEST_DIR/plan" <<EOF
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_level = notice;
SET client_min_messages = notice;
$1;
EOF
}
reads_by_pkey_only() {
    grep -q "Index Scan using deliveries_pkey on deliveries" "$PGTEST_DIR/plan" &&
        ! grep -Eq "deliveries_due|deliveries_final|Seq Scan on deliveries" "$PGTEST_DIR/plan"
}
show_plan_on_failure() { [ "$fails" -eq "$1" ] || sed 's/^/# /' "$PGTEST_DIR/plan"; }

f0=$fails
out=$(explained "SELECT oc_delivery_finish('$in1', 3, 'delivered', 0,
                   (extract(epoch FROM now()) * 1000)::bigint, 12, 200, NULL, 'ok')")
check "finish of the current in-flight attempt returns true" '[ "$out" = t ]'
check "finish reads deliveries by primary key, never by a partial index or a scan" \
    'reads_by_pkey_only'
show_plan_on_failure "$f0"
check "the finished row is delivered, with no lease" \
    '[ "$(sql "SELECT state, lease_until IS NULL FROM deliveries WHERE id = '"'$in1'"'")" = "delivered|t" ]'
check "the attempt is recorded with its status" \
    '[ "$(sql "SELECT http_status FROM delivery_attempts WHERE delivery_id = '"'$in1'"' AND attempt = 3")" = 200 ]'

out=$(explained "SELECT oc_delivery_finish('$in2', 2, 'delivered', 0,
                   (extract(epoch FROM now()) * 1000)::bigint, 5, 200, NULL, NULL)")
check "finish of an overtaken attempt (attempt 2, row at 3) returns false" '[ "$out" = f ]'
check "and leaves the row in flight" \
    '[ "$(sql "SELECT state FROM deliveries WHERE id = '"'$in2'"'")" = in_flight ]'
check "and still records the attempt" \
    '[ "$(sql "SELECT count(*) FROM delivery_attempts WHERE delivery_id = '"'$in2'"' AND attempt = 2")" = 1 ]'

out=$(sql "SELECT oc_delivery_finish('$in3', 3, 'retry', 300000,
             (extract(epoch FROM now()) * 1000)::bigint, 5, 503, 'HTTP 503', NULL)")
check "finish with retry returns true and makes the row pending again in 300 s" \
    '[ "$out" = t ] && [ "$(sql "SELECT state, round(extract(epoch FROM next_attempt_at - now()) / 10) FROM deliveries WHERE id = '"'$in3'"'")" = "pending|30" ]'
check "finish with retry keeps the error as last_error" \
    '[ "$(sql "SELECT last_error FROM deliveries WHERE id = '"'$in3'"'")" = "HTTP 503" ]'

out=$(sql "SELECT oc_delivery_finish('$done_id', 1, 'delivered', 0,
             (extract(epoch FROM now()) * 1000)::bigint, 1, 200, NULL, NULL)")
check "finish of a delivered row returns false" '[ "$out" = f ]'
out=$(sql "SELECT oc_delivery_finish(gen_random_uuid(), 1, 'dead', 0, 0, 1, 404, NULL, NULL)" 2>&1)
check "finish of an unknown id fails on the attempt's foreign key, writing nothing" \
    '[[ "$out" == *delivery_attempts_delivery_id_fkey* ]]'
out=$(sql "SELECT oc_delivery_finish('$in4', 3, 'lost', 0, 0, 1, NULL, NULL, NULL)" 2>&1)
check "an unknown outcome is refused" '[[ "$out" == *"unknown outcome"* ]]'
check "and changes nothing" \
    '[ "$(sql "SELECT state, attempts FROM deliveries WHERE id = '"'$in4'"'")" = "in_flight|3" ] && [ "$(sql "SELECT count(*) FROM delivery_attempts WHERE delivery_id = '"'$in4'"'")" = 0 ]'

f0=$fails
out=$(explained "SELECT oc_delivery_retry('$dead')")
check "retry of a dead delivery returns true" '[ "$out" = t ]'
check "retry reads deliveries by primary key, never by a partial index or a scan" \
    'reads_by_pkey_only'
show_plan_on_failure "$f0"
check "the replayed row is pending and due now, keeping its attempt count" \
    '[ "$(sql "SELECT state, attempts, next_attempt_at <= now() FROM deliveries WHERE id = '"'$dead'"'")" = "pending|8|t" ]'
check "retry of a delivered row returns false and leaves it delivered" \
    '[ "$(sql "SELECT oc_delivery_retry('"'$done_id'"')")" = f ] && [ "$(sql "SELECT state FROM deliveries WHERE id = '"'$done_id'"'")" = delivered ]'
check "retry of an in-flight row returns false" \
    '[ "$(sql "SELECT oc_delivery_retry('"'$in4'"')")" = f ]'
check "retry of an unknown id returns false" \
    '[ "$(sql "SELECT oc_delivery_retry(gen_random_uuid())")" = f ]'

# --- retention ---------------------------------------------------------------------------
# 25,000 records of attempts made 100 days ago, two on each of 12,500 delivered rows of the
# history, at the front of the id order as old records are (ids follow insertion).
sql "INSERT INTO delivery_attempts (id, delivery_id, attempt, started_at, duration_ms, http_status)
     SELECT -row_number() OVER (), d.id, k, now() - interval '100 days', 10, 200
       FROM deliveries d, generate_series(1, 2) k
      WHERE d.state = 'delivered' AND d.attempts = 1
        AND NOT EXISTS (SELECT 1 FROM delivery_attempts x WHERE x.delivery_id = d.id)
      ORDER BY d.payment_txid, k LIMIT 25000" >/dev/null
old_count() { sql "SELECT count(*) FROM delivery_attempts WHERE started_at < now() - interval '99 days'"; }
young_before=$(sql "SELECT count(*) FROM delivery_attempts WHERE started_at > now() - interval '1 day'")
check "the old records are in place (25,000) next to young ones" \
    '[ "$(old_count)" = 25000 ] && [ "$young_before" -gt 0 ]'
day=86400
f0=$fails
out=$(explained "SELECT oc_delivery_prune(90 * $day, 100)")
check "prune with a limit of 100 deletes exactly 100 old records" \
    '[ "$out" = 100 ] && [ "$(old_count)" = 24900 ]'
check "prune reads delivery_attempts through its primary key, never a whole-table scan" \
    'grep -Eq "(Index|Index Only|Bitmap Index) Scan (using|on) delivery_attempts_pkey on delivery_attempts |Bitmap Index Scan on delivery_attempts_pkey" "$PGTEST_DIR/plan" && ! grep -q "Seq Scan on delivery_attempts" "$PGTEST_DIR/plan"'
show_plan_on_failure "$f0"
check "prune keeping 200 days deletes nothing (every record is younger)" \
    '[ "$(sql "SELECT oc_delivery_prune(200 * $day, 1000)")" = 0 ] && [ "$(old_count)" = 24900 ]'
check "a limit of 0 deletes nothing" '[ "$(sql "SELECT oc_delivery_prune(90 * $day, 0)")" = 0 ]'

# A running worker prunes by itself at start, in several bounded rounds (10,000 at most each).
"$ocgate" keygen --out "$PGTEST_DIR/gateway.key" >/dev/null 2>&1
OCGATE_OCID=300 OCGATE_PRIVATE_KEY_FILE=$PGTEST_DIR/gateway.key \
    OCGATE_PUBLIC_URL=http://127.0.0.1:9/opencharge OCGATE_CURRENCIES=USD \
    "$ocgate" worker >"$PGTEST_DIR/worker.log" 2>&1 &
worker=$!
for _ in $(seq 1 100); do
    grep -q '"delivery attempts pruned"' "$PGTEST_DIR/worker.log" && break
    kill -0 "$worker" 2>/dev/null || break
    sleep 0.1
done
kill -TERM "$worker" 2>/dev/null
wait "$worker" 2>/dev/null
check "ocgate worker deleted the remaining 24,900 old records and logged how many" \
    '[ "$(old_count)" = 0 ] && grep -q "\"msg\":\"delivery attempts pruned\",\"records\":24900,\"older_than_s\":7776000" "$PGTEST_DIR/worker.log"'
check "and left every young record" \
    '[ "$(sql "SELECT count(*) FROM delivery_attempts WHERE started_at > now() - interval '"'"'1 day'"'"' AND http_status IS DISTINCT FROM NULL")" -ge 1 ] && [ "$(sql "SELECT count(*) FROM delivery_attempts WHERE delivery_id IN ('"'$in1'"', '"'$in2'"') ")" = 2 ]'
[ "$fails" -eq 0 ] || sed 's/^/# worker: /' "$PGTEST_DIR/worker.log" | head -20

echo "1..$n"
[ "$fails" -eq 0 ]
