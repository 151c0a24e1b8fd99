#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2034  # check() evaluates its single-quoted condition itself
# `ocgate ledger check` against a real, throwaway PostgreSQL: a small consistent ledger built
# with the settlement and resolution SQL functions themselves (payments, credited proofs,
# exceptions of several kinds resolved by attach, refund and dismiss) passes with exit 0; then
# each corruption, made on a copy of that database with the ledger's append-only and balance
# triggers disabled, must make it exit 3 and name the invariant it breaks. TAP output.
#   tests/integration/test-ledger-check.sh <ocgate binary>
set -uo pipefail
ocgate=$1
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=SCRIPTDIR/../pg/pgtest.sh
. "$here/pg/pgtest.sh"
pgtest_start || { echo "Bail out! cannot start PostgreSQL"; exit 1; }

. "$here/lib/tap.sh"
sql() { psql -XAtq -v ON_ERROR_STOP=1 "$@"; }
url_of() { echo "${OCGATE_DATABASE_URL/\/postgres\?//$1?}"; }

# The consistent ledger lives in database "base"; copies are made from it as templates.
sql -c "CREATE DATABASE base" >/dev/null || { echo "Bail out! cannot create the database"; exit 1; }
OCGATE_DATABASE_URL=$(url_of base) "$ocgate" migrate >"$PGTEST_DIR/migrate.log" 2>&1 || {
    sed 's/^/# /' "$PGTEST_DIR/migrate.log"
    echo "Bail out! ocgate migrate failed"
    exit 1
}

sql -d base >"$PGTEST_DIR/fixture.log" 2>&1 <<'EOF' || { sed 's/^/# /' "$PGTEST_DIR/fixture.log"; echo "Bail out! fixture"; exit 1; }
INSERT INTO participants (ocid, name, roles, public_key) VALUES
    (101, 'provider', '{settlement_provider}', repeat('ab', 64)),
    (102, 'app', '{payment_app}', repeat('ab', 64)),
    (201, 'merchant a', '{merchant}', repeat('ab', 64)),
    (202, 'merchant b', '{merchant}', repeat('ab', 64));
CREATE FUNCTION pg_temp.pay(t text, m bigint, amt text, cur text, expires_in integer)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT result FROM oc_payment_create(102, 'n-' || t, NULL, NULL, t, m, amt::numeric, amt,
            cur, 'ref-' || t, NULL, NULL, extract(epoch FROM now())::bigint + expires_in, '{}'))
       <> 'created' THEN
        RAISE EXCEPTION 'payment % not created', t;
    END IF;
END $$;
CREATE FUNCTION pg_temp.proof(ptx text, ref text, amt text, cur text, want text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    got text;
BEGIN
    SELECT outcome INTO got FROM oc_settle_proof(101, 'pn-' || ptx, 'webhook', NULL, NULL, 101,
        ptx, ref, amt::numeric, amt, cur,
        '{"amount":' || to_json(amt) || ',"currency":' || to_json(cur)
            || ',"from":{"ocid":4242,"reference":"wallet"},"issuer":101,"timestamp":1700000000,'
            || '"to":{"ocid":300,"reference":' || to_json(ref) || '},"txid":' || to_json(ptx) || '}',
        repeat('cd', 65), 'strict', '{"ocid":4242,"reference":"wallet"}', 300,
        extract(epoch FROM now())::bigint);
    IF got IS DISTINCT FROM want THEN
        RAISE EXCEPTION 'proof %: outcome % instead of %', ptx, got, want;
    END IF;
END $$;
CREATE FUNCTION pg_temp.resolve(ptx text, action text, target text, reason text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    got text;
BEGIN
    SELECT oc_admin_resolve_exception(x.id, action, target, reason, 'fixture', 300, NULL)
           ->> 'result' INTO got
      FROM exceptions x JOIN proofs p ON p.id = x.proof_id WHERE p.txid = ptx;
    IF got IS DISTINCT FROM 'done' THEN
        RAISE EXCEPTION 'resolve % of %: %', action, ptx, got;
    END IF;
END $$;
SELECT pg_temp.pay('pay_a1', 201, '15.00', 'USD', 3600);
SELECT pg_temp.pay('pay_a2', 201, '7.5', 'USD', 3600);
SELECT pg_temp.pay('pay_b1', 202, '1000', 'UGX', 3600);
SELECT pg_temp.pay('pay_pending', 202, '3.00', 'USD', 3600);
SELECT pg_temp.pay('pay_late', 201, '4.00', 'USD', -10);
SELECT pg_temp.pay('pay_target', 202, '5', 'USD', 3600);
SELECT pg_temp.proof('p1', 'pay_a1', '15.00', 'USD', 'credited');
SELECT pg_temp.proof('p2', 'pay_a2', '7.50', 'USD', 'credited');
SELECT pg_temp.proof('p3', 'pay_b1', '1000', 'UGX', 'credited');
SELECT pg_temp.proof('p4', 'nosuch', '5.00', 'USD', 'unmatched');
SELECT pg_temp.proof('p5', 'pay_late', '4.00', 'USD', 'late');
SELECT pg_temp.proof('p6', 'pay_a1', '15.00', 'USD', 'duplicate_payment');
SELECT pg_temp.proof('p7', 'pay_pending', '1.00', 'USD', 'amount_mismatch');
SELECT pg_temp.proof('p8', 'nosuch2', '2.00', 'USD', 'unmatched');
SELECT pg_temp.proof('p9', 'nosuch3', '5.00', 'USD', 'unmatched');
SELECT pg_temp.resolve('p5', 'attach', 'pay_late', NULL);
SELECT pg_temp.resolve('p6', 'refund', NULL, 'paid twice');
SELECT pg_temp.resolve('p8', 'dismiss', NULL, 'test transfer');
SELECT pg_temp.resolve('p9', 'attach', 'pay_target', 'payer used a wrong reference');
EOF
ok "fixture: payments, credited proofs and exceptions resolved by attach, refund and dismiss"

base_url=$(url_of base)
out=$(OCGATE_DATABASE_URL=$base_url "$ocgate" ledger check 2>&1); rc=$?
check "a consistent ledger: ledger check exits 0" '[ $rc -eq 0 ]'
check "a consistent ledger: it says ok" 'grep -q "ok" <<<"$out"'
out=$(OCGATE_DATABASE_URL=$base_url "$ocgate" ledger check --json 2>&1); rc=$?
check "a consistent ledger: --json is {\"ok\":true,\"violations\":[]}" \
    '[ $rc -eq 0 ] && [ "$out" = "{\"ok\":true,\"violations\":[]}" ]'

# corrupt NAME INVARIANT PATTERN SQL: copies base to NAME, runs SQL there as the superuser
# with the ledger triggers disabled, and expects exit 3 with a line "INVARIANT violated (...)"
# matching PATTERN, the same in --json, and nothing reported under any other invariant than
# those listed in ALSO (space-separated, may be empty).
corrupt() {
    local name=$1 inv=$2 pattern=$3 also=$4 corruption=$5
    sql -c "CREATE DATABASE $name TEMPLATE base" >/dev/null || { notok "$name: copy"; return; }
    if ! sql -d "$name" >"$PGTEST_DIR/$name.log" 2>&1 <<EOF
ALTER TABLE ledger_entries DISABLE TRIGGER USER;
ALTER TABLE ledger_transactions DISABLE TRIGGER USER;
$corruption
EOF
    then
        sed 's/^/# /' "$PGTEST_DIR/$name.log"
        notok "$name: the corruption applies"
        return
    fi
    local url out rc jout jrc
    url=$(url_of "$name")
    out=$(OCGATE_DATABASE_URL=$url "$ocgate" ledger check 2>&1); rc=$?
    check "$name: ledger check exits 3" '[ $rc -eq 3 ]'
    check "$name: names $inv ($pattern)" 'grep -E "^$inv violated \(.*$pattern" <<<"$out" >/dev/null'
    local allowed=" $inv $also " others
    others=$(grep -oE '^I[0-9] violated' <<<"$out" | cut -c1-2 | sort -u |
             while read -r i; do [[ "$allowed" == *" $i "* ]] || echo "$i"; done)
    check "$name: reports no other invariant than $inv${also:+ $also}" '[ -z "$others" ]'
    jout=$(OCGATE_DATABASE_URL=$url "$ocgate" ledger check --json 2>&1); jrc=$?
    check "$name: --json exits 3 with ok false and an $inv violation" \
        '[ $jrc -eq 3 ] && grep -q "\"ok\":false" <<<"$jout" && grep -q "\"invariant\":\"$inv\"" <<<"$jout"'
    [ $rc -eq 3 ] || echo "# ${out//$'\n'/$'\n'# }"
}

# I1: a merchant credit deleted (the payment stays completed).
corrupt credit_deleted I1 "exactly one credit.*pay_a1" "I2" "
DELETE FROM ledger_entries WHERE ledger_tx_id IN
    (SELECT id FROM ledger_transactions WHERE payment_txid = 'pay_a1' AND kind = 'settlement');
DELETE FROM ledger_transactions WHERE payment_txid = 'pay_a1' AND kind = 'settlement';"

# I1: a merchant credit duplicated (the unique index that normally forbids it dropped too).
corrupt credit_duplicated I1 "at most one credit.*pay_a2" "I2" "
DROP INDEX ledger_one_settlement_per_payment;
WITH t AS (INSERT INTO ledger_transactions (kind, proof_id, payment_txid, merchant_ocid)
           SELECT kind, proof_id, payment_txid, merchant_ocid FROM ledger_transactions
            WHERE payment_txid = 'pay_a2' AND kind = 'settlement' RETURNING id)
INSERT INTO ledger_entries (ledger_tx_id, account, merchant_ocid, currency, amount)
SELECT t.id, e.account, e.merchant_ocid, e.currency, e.amount
  FROM t, ledger_entries e JOIN ledger_transactions o ON o.id = e.ledger_tx_id
 WHERE o.payment_txid = 'pay_a2' AND o.kind = 'settlement';"

# I1: a credit for a payment that is not completed (the payment reset to pending).
corrupt credit_for_pending I1 "only completed payments.*pay_b1" "I2 I3" "
UPDATE payments SET status = 'pending_settlement', completed_at = NULL, completed_by = NULL,
                    gateway_proof = NULL WHERE txid = 'pay_b1';"

# I2: one unbalanced entry added to a settlement transaction.
corrupt unbalanced_entry I2 "sums to zero.*USD sums to 0.01" "" "
INSERT INTO ledger_entries (ledger_tx_id, account, merchant_ocid, currency, amount)
SELECT id, 'suspense', merchant_ocid, 'USD', 0.01 FROM ledger_transactions
 WHERE payment_txid = 'pay_a1' AND kind = 'settlement';"

# I2: the suspense posting of a proof deleted: its money is nowhere.
corrupt proof_not_posted I2 "posted once.*no settlement/suspense posting" "" "
DELETE FROM ledger_entries WHERE ledger_tx_id IN
    (SELECT t.id FROM ledger_transactions t JOIN proofs p ON p.id = t.proof_id
      WHERE p.txid = 'p7' AND t.kind = 'suspense');
DELETE FROM ledger_transactions WHERE id IN
    (SELECT t.id FROM ledger_transactions t JOIN proofs p ON p.id = t.proof_id
      WHERE p.txid = 'p7' AND t.kind = 'suspense');"

# I2: an exception marked dismissed without its reversal posting.
corrupt dismissed_without_reversal I2 "resolution posting.*no resolution posting" "" "
UPDATE exceptions SET status = 'dismissed', resolved_at = now(), resolved_by = 'nobody'
 WHERE proof_id = (SELECT id FROM proofs WHERE txid = 'p4');"

# I3: an outbox row orphaned: the payment is completed but its notification is gone.
corrupt delivery_deleted I3 "exactly one notification.*pay_b1 has 0" "" "
DELETE FROM deliveries WHERE payment_txid = 'pay_b1';"

# I3: a notification for a payment that is still pending.
corrupt delivery_for_pending I3 "belongs to a completed payment.*pending_settlement payment pay_pending" "" "
INSERT INTO deliveries (id, payment_txid, merchant_ocid)
VALUES (gen_random_uuid(), 'pay_pending', 202);"

# I3: a notification in a state outside the outbox's (the CHECK constraint dropped too).
corrupt delivery_state I3 "pending, in flight, delivered, rejected or dead.*state lost" "" "
ALTER TABLE deliveries DROP CONSTRAINT deliveries_state_check;
UPDATE deliveries SET state = 'lost' WHERE payment_txid = 'pay_a2';"

out=$(OCGATE_DATABASE_URL=$base_url "$ocgate" ledger check 2>&1); rc=$?
check "the original database still passes after the corrupted copies" '[ $rc -eq 0 ]'

# Failures that are not violations.
sql -c "CREATE DATABASE empty" >/dev/null
OCGATE_DATABASE_URL=$(url_of empty) "$ocgate" ledger check >/dev/null 2>"$PGTEST_DIR/empty.err"; rc=$?
check "a database without the schema: exit 1 (the check could not run), not 3" '[ $rc -eq 1 ]'
OCGATE_DATABASE_URL=$base_url "$ocgate" ledger check --limit 3 >/dev/null 2>&1; rc=$?
check "an unknown option: exit 2" '[ $rc -eq 2 ]'
OCGATE_DATABASE_URL='' "$ocgate" ledger check >/dev/null 2>&1; rc=$?
check "no database URL: exit 2" '[ $rc -eq 2 ]'

echo "1..$n"
[ $fails -eq 0 ]
