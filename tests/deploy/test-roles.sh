#!/usr/bin/env bash
# deploy/service-role.sql, as compose.yaml and the operator guide use it: the schema owner
# migrates, `ocgate serve` runs as a separate role with row access only, and a payment still
# goes end to end (create, webhook, merchant delivery, played by `ocgate sim`), while that
# role cannot alter the schema or get around the ledger's append-only trigger. TAP output;
# every wait is bounded.
#   test-roles.sh <ocgate binary>
set -uo pipefail
ocgate=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/tests/pg/pgtest.sh"
pgtest_start || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
W=$(mktemp -d /tmp/ocgate-roles.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$W"
    pgtest_stop
}
trap cleanup EXIT
. "$root/tests/lib/tap.sh"
wait_for() {
    local i
    for i in $(seq 1 $((${3:-15} * 10))); do grep -Eq "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}
. "$root/tests/lib/free-port.sh"
port() { ocg_free_port || echo 0; }
as() { # ROLE SQL: runs SQL as ROLE in database ocgate
    psql -XAtq -v ON_ERROR_STOP=1 -U "$1" -d ocgate -c "$2"
}
psql -XAtq -v ON_ERROR_STOP=1 -c "CREATE ROLE ocgate_owner LOGIN" -c "CREATE ROLE ocgate_svc LOGIN" \
    -c "CREATE DATABASE ocgate OWNER ocgate_owner" >/dev/null ||
    { echo "Bail out! cannot create roles"; exit 1; }
# PostgreSQL 15 already keeps CREATE on public from PUBLIC; the owner needs the schema.
psql -XAtq -v ON_ERROR_STOP=1 -d ocgate -c "ALTER SCHEMA public OWNER TO ocgate_owner" >/dev/null

owner_url="postgresql:///ocgate?host=$PGHOST&port=$PGPORT&user=ocgate_owner"
svc_url="postgresql:///ocgate?host=$PGHOST&port=$PGPORT&user=ocgate_svc"
psql -XAtq -v ON_ERROR_STOP=1 -U ocgate_owner -d ocgate -v service_role=ocgate_svc \
    -f "$root/deploy/service-role.sql" >"$W/grants" 2>&1
rc=$?
check "service-role.sql runs as the schema owner before the schema exists" '[ $rc -eq 0 ] || { sed "s/^/# /" "$W/grants"; false; }'
OCGATE_DATABASE_URL=$owner_url "$ocgate" migrate >"$W/migrate" 2>&1
rc=$?
check "ocgate migrate as the owner" '[ $rc -eq 0 ] || { sed "s/^/# /" "$W/migrate"; false; }'
check "the service role cannot create a table" '! as ocgate_svc "CREATE TABLE evil (x int)" 2>/dev/null'
check "the service role cannot drop the ledger's append-only trigger" \
    '! as ocgate_svc "ALTER TABLE ledger_entries DISABLE TRIGGER USER" 2>/dev/null'
check "the service role cannot alter a table" \
    '! as ocgate_svc "ALTER TABLE payments ADD COLUMN x int" 2>/dev/null'

for k in gw provider app merchant; do "$ocgate" keygen --out "$W/$k.key" >"$W/$k.pub"; done
gw_port=$(port) m_port=$(port)
export OCGATE_DATABASE_URL=$owner_url
add() { "$ocgate" participant add --ocid "$1" --name "$2" --roles "$3" \
        --public-key "$(cat "$W/$4.pub")" ${5:+--endpoint "$5"} >/dev/null; }
add 100 provider settlement_provider provider
add 200 app payment_app app
add 500 merchant merchant merchant "http://127.0.0.1:$m_port"

export OCGATE_DATABASE_URL=$svc_url OCGATE_OCID=300 OCGATE_PRIVATE_KEY_FILE=$W/gw.key
export OCGATE_CURRENCIES=USD OCGATE_PUBLIC_URL=http://127.0.0.1:$gw_port/opencharge
export OCGATE_LISTEN=127.0.0.1:$gw_port OCGATE_THREADS=1 OCGATE_OUTBOUND_ALLOW_LOOPBACK=true
unset OCGATE_CONFIG OCGATE_TLS_CERT_FILE OCGATE_TLS_KEY_FILE
"$ocgate" serve >"$W/gw.out" 2>"$W/gw.log" &
pids+=($!)
check "ocgate serve starts as the service role" 'wait_for "$W/gw.log" "\"msg\":\"listening\""'
"$ocgate" sim merchant --listen "127.0.0.1:$m_port" --ocid 500 --gateway-key "$(cat "$W/gw.pub")" \
    --gateway-ocid 300 >"$W/m.out" 2>&1 &
pids+=($!)
wait_for "$W/m.out" '^merchant: listening' 10
timeout 60 "$ocgate" sim provider --gateway "http://127.0.0.1:$gw_port/opencharge" \
    --gateway-ocid 300 --ocid 100 --key "$W/provider.key" --create --app-ocid 200 \
    --app-key "$W/app.key" --merchant 500 --amount 12.34 --currency USD >"$W/p.out" 2>&1
rc=$?
check "create + webhook as the service role: accepted" '[ $rc -eq 0 ]'
check "the merchant received and verified the notification" \
    'wait_for "$W/m.out" "request signature valid, proof signature valid" && wait_for "$W/m.out" "200 accepted"'
txid=$(sed -n 's/^payment \(pay_[0-9a-f]*\) created$/\1/p' "$W/p.out")
check "the delivery is recorded delivered (the worker's writes work under the role)" \
    '(for _ in $(seq 1 100); do [ "$(as ocgate_owner "SELECT state FROM deliveries WHERE payment_txid = '"'"'$txid'"'"'")" = delivered ] && exit 0; sleep 0.1; done; exit 1)'
check "ledger check passes (run as the service role)" '"$ocgate" ledger check >/dev/null 2>&1'
# docs/scaling.md sends the read-only operator commands to replicas: they must run in
# read-only transactions (what a hot standby allows).
ro_fail=
for cmd in "payment list" "payment show $txid" "balance" "ledger check" "ledger entries" \
           "exception list" "delivery list" "participant list"; do
    PGOPTIONS="-c default_transaction_read_only=on" "$ocgate" $cmd >"$W/ro.out" 2>&1 ||
        ro_fail="$ro_fail [$cmd: $(head -c 200 "$W/ro.out")]"
done
check "the read-only operator commands run in read-only transactions${ro_fail:+:$ro_fail}" '[ -z "$ro_fail" ]'
PGOPTIONS="-c default_transaction_read_only=on" "$ocgate" participant update --ocid 500 \
    --name "Shop renamed" >"$W/rw.out" 2>&1
rc=$?
check "... while a writing command is refused there (so the check can fail)" \
    '[ $rc -ne 0 ] && grep -qi "read-only" "$W/rw.out"'
check "nothing was logged as a permission error" '! grep -qi "permission denied" "$W/gw.log"'
[ $fails -eq 0 ] || { sed 's/^/# /' "$W/gw.log" | tail -20; }
echo "1..$n"
[ $fails -eq 0 ]
