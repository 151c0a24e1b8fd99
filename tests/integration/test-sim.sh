#!/usr/bin/env bash
# `ocgate sim` against a real gateway and a throwaway PostgreSQL: the simulated provider pays
# payments it creates as a payment app (webhook and settle), sends every bad-on-purpose request
# and must get the documented error code (and nothing credited), while simulated merchants
# verify what the gateway forwards, fail on purpose and are retried. Results are checked in
# the database, not only in the sims' own output. TAP output; every wait is bounded.
#   test-sim.sh <ocgate binary> <ocreq binary>
set -uo pipefail
ocgate=$1
ocreq=$2
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/pg/pgtest.sh"
. "$here/logscan/collect.sh"
pgtest_start || { echo "Bail out! cannot start PostgreSQL"; exit 1; }

W=$(mktemp -d /tmp/ocgate-sim.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    logscan_collect sim "$W"   # gateway and sim logs and keys for tests/logscan
    rm -rf "$W"
    pgtest_stop
}
trap cleanup EXIT

. "$here/lib/tap.sh"
sql() { psql -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
. "$here/lib/free-port.sh"
port() { ocg_free_port || echo 0; }
# wait_for FILE PATTERN [SECONDS]: until FILE has a line matching PATTERN (bounded)
wait_for() {
    local i
    for i in $(seq 1 $((${3:-15} * 10))); do
        grep -Eq "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# wait_for_sql QUERY VALUE [SECONDS]: until the query answers VALUE (bounded)
wait_for_sql() {
    local i
    for i in $(seq 1 $((${3:-15} * 10))); do
        [ "$(sql "$1" 2>/dev/null)" = "$2" ] && return 0
        sleep 0.1
    done
    echo "# $1 -> $(sql "$1" 2>&1), wanted $2"
    return 1
}
q() { printf "'%s'" "$1"; } # an SQL string literal (the values here are our own txids)

"$ocgate" migrate >/dev/null || { echo "Bail out! migrate failed"; exit 1; }
for k in gw provider app m1 m2 m3 stranger; do
    "$ocgate" keygen --out "$W/$k.key" >"$W/$k.pub" || { echo "Bail out! keygen"; exit 1; }
done
gw_pub=$(cat "$W/gw.pub")
m1_port=$(port) m2_port=$(port) m3_port=$(port) m4_port=$(port) m5_port=$(port) m6_port=$(port) m7_port=$(port) m8_port=$(port) gw_port=$(port)
add() { "$ocgate" participant add --ocid "$1" --name "$2" --roles "$3" \
        --public-key "$(cat "$W/$4.pub")" ${5:+--endpoint "$5"} >/dev/null; }
add 100 provider settlement_provider provider
add 200 app payment_app app
add 501 "merchant accepting" merchant m1 "http://127.0.0.1:$m1_port"
add 502 "merchant failing twice" merchant m2 "http://127.0.0.1:$m2_port/shop"
add 503 "merchant dropping once" merchant m3 "http://127.0.0.1:$m3_port"
add 504 "merchant exit-after" merchant m1 "http://127.0.0.1:$m4_port"
add 505 "merchant slower than the gateway waits" merchant m1 "http://127.0.0.1:$m5_port"
add 507 "merchant rejecting" merchant m1 "http://127.0.0.1:$m7_port"
add 508 "merchant gone" merchant m1 "http://127.0.0.1:$m8_port"
"$ocgate" participant add --ocid 506 --name "legacy merchant" --roles merchant --form legacy \
    --public-key "$(cat "$W/m1.pub")" --endpoint "http://127.0.0.1:$m6_port" >/dev/null

export OCGATE_OCID=300 OCGATE_PRIVATE_KEY_FILE=$W/gw.key OCGATE_CURRENCIES=USD,UGX
export OCGATE_PUBLIC_URL=http://127.0.0.1:$gw_port/opencharge OCGATE_LISTEN=127.0.0.1:$gw_port
export OCGATE_THREADS=1 OCGATE_POOL_SIZE=2 OCGATE_OUTBOUND_ALLOW_LOOPBACK=true
export OCGATE_DELIVERY_SCHEDULE=1s,1s,1s,1s OCGATE_DELIVERY_JITTER_PERCENT=0
export OCGATE_DELIVERY_TIMEOUT_MS=2000 OCGATE_DELIVERY_CONNECT_TIMEOUT_MS=1000
export OCGATE_DELIVERY_LEASE=5s OCGATE_DELIVERY_POLL_MS=100
unset OCGATE_CONFIG OCGATE_TLS_CERT_FILE OCGATE_TLS_KEY_FILE

"$ocgate" serve >"$W/gw.out" 2>"$W/gw.log" &
pids+=($!)
wait_for "$W/gw.log" '"msg":"listening"' || { echo "Bail out! gateway did not start"; sed 's/^/# /' "$W/gw.log"; exit 1; }

sim_merchant() { # name ocid port [options...]
    local name=$1 ocid=$2 p=$3
    shift 3
    "$ocgate" sim merchant --listen "127.0.0.1:$p" --ocid "$ocid" --gateway-key "$gw_pub" \
        --gateway-ocid 300 "$@" >"$W/$name.out" 2>&1 &
    pids+=($!)
    wait_for "$W/$name.out" '^merchant: listening' 10
}
sim_merchant m1 501 "$m1_port" || { echo "Bail out! sim merchant m1"; exit 1; }
sim_merchant m2 502 "$m2_port" --fail error --fail-first 2 || { echo "Bail out! m2"; exit 1; }
sim_merchant m3 503 "$m3_port" --fail drop --fail-first 1 || { echo "Bail out! m3"; exit 1; }
sim_merchant m5 505 "$m5_port" --fail slow --fail-first 1 --delay-ms 3000 ||
    { echo "Bail out! m5"; exit 1; }
sim_merchant m6 506 "$m6_port" --form legacy || { echo "Bail out! m6"; exit 1; }
sim_merchant m7 507 "$m7_port" --fail reject || { echo "Bail out! m7"; exit 1; }
sim_merchant m8 508 "$m8_port" --fail gone || { echo "Bail out! m8"; exit 1; }
merchants=("${pids[@]:1}")

G=(--gateway "http://127.0.0.1:$gw_port/opencharge" --gateway-ocid 300 --ocid 100
   --key "$W/provider.key")
APP=(--app-ocid 200 --app-key "$W/app.key")
# provider OUTFILE [options...]: runs the sim provider, exit status in $rc
provider() {
    local out=$1
    shift
    timeout 60 "$ocgate" sim provider "${G[@]}" "$@" >"$W/$out" 2>&1
    rc=$?
}
created() { sed -n 's/^payment \(pay_[0-9a-zA-Z_]*\) created$/\1/p' "$W/$1" | head -n 1; }

# ---- the happy path: create as the app, pay by webhook, the merchant verifies ----
provider ok1 --create "${APP[@]}" --merchant 501 --amount 15.00 --currency USD --memo "sim test"
tx1=$(created ok1)
check "provider: create + webhook answered as expected (exit 0)" '[ $rc -eq 0 ] && grep -q "^as expected: wanted accepted, got HTTP 200 accepted" "$W/ok1"'
check "the payment is completed in the database" \
    '[ -n "$tx1" ] && [ "$(sql "SELECT status FROM payments WHERE txid = $(q "$tx1")")" = completed ]'
check "merchant 501 verified the request and proof signatures" \
    'wait_for "$W/m1.out" "payment [^ ]+ order [^ ]+ 15.00 USD: request signature valid, proof signature valid"'
check "the delivery ended delivered at the first attempt" \
    'wait_for_sql "SELECT state || attempts FROM deliveries WHERE payment_txid = $(q "$tx1")" delivered1'
check "merchant 501 answered accepted" 'wait_for "$W/m1.out" "^merchant: -> 200 accepted$"'

# ---- settle as the app, checking the gateway proof it answers with ----
provider ok2 --create "${APP[@]}" --merchant 501 --amount 7.5 --currency UGX --settle \
    --gateway-key "$gw_pub"
tx2=$(created ok2)
check "provider: create + settle answered completed with a valid gateway proof" \
    '[ $rc -eq 0 ] && grep -q "^gateway proof signature valid" "$W/ok2" && grep -q "^as expected: wanted completed" "$W/ok2"'
check "settled payment completed once, one settlement in the ledger" \
    '[ "$(sql "SELECT count(*) FROM ledger_transactions WHERE payment_txid = $(q "$tx2") AND kind = '"'"'settlement'"'"'")" = 1 ]'

# ---- bad on purpose: each must get its code and credit nothing ----
credits() { sql "SELECT count(*) FROM ledger_transactions WHERE kind = 'settlement'"; }
bad_case() { # mode code [extra provider options]: a fresh payment, then the bad request
    local mode=$1 code=$2
    shift 2
    local before out="bad-$mode-$#" extra="${*:+ $*}"
    before=$(credits)
    provider "$out" --create "${APP[@]}" --merchant 501 --amount 10 --currency USD \
        --bad "$mode" "$@"
    last_tx=$(created "$out")
    check "--bad $mode$extra: exit 0, the gateway answered $code" \
        '[ $rc -eq 0 ] && grep -q "^as expected: wanted $code, got HTTP [0-9]* $code$" "$W/$out"'
    if [ "$mode" != replay ]; then
        check "--bad $mode$extra: the payment is still pending, nothing credited" \
            '[ "$(sql "SELECT status FROM payments WHERE txid = $(q "$last_tx")")" = pending_settlement ] && [ "$(credits)" = "$before" ]'
    else
        check "--bad replay: the first request settled the payment, the replay credited nothing more" \
            '[ "$(sql "SELECT status FROM payments WHERE txid = $(q "$last_tx")")" = completed ] && [ "$(credits)" = $((before + 1)) ]'
    fi
}
bad_case signature PROOF_SIGNATURE_INVALID
bad_case request-signature INVALID_SIGNATURE
bad_case stale TIMESTAMP_EXPIRED
bad_case replay NONCE_REUSED
bad_case recipient INVALID_PROOF
bad_case issuer INVALID_PROOF
bad_case future INVALID_PROOF
bad_case malformed BAD_REQUEST
bad_case amount AMOUNT_MISMATCH
check "--bad amount: the proof is kept as an open amount_mismatch exception (I4)" \
    '[ "$(sql "SELECT e.kind || e.status FROM exceptions e JOIN proofs p ON p.id = e.proof_id WHERE p.payment_txid = $(q "$last_tx")")" = amount_mismatchopen ]'
bad_case currency CURRENCY_MISMATCH
bad_case signature PROOF_SIGNATURE_INVALID --settle

# unknown reference: accepted (the spec says so) but kept as an unmatched exception
before_unmatched=$(sql "SELECT count(*) FROM exceptions WHERE kind = 'unmatched'")
provider bad-reference --txid pay_whatever --amount 3 --currency USD --bad reference
check "--bad reference: 200 accepted and one more unmatched exception" \
    '[ $rc -eq 0 ] && [ "$(sql "SELECT count(*) FROM exceptions WHERE kind = '"'"'unmatched'"'"'")" = $((before_unmatched + 1)) ]'

# the sim reports an answer that differs from the one wanted
provider wrong --txid "$last_tx" --amount 10 --currency USD --bad stale --expect accepted
check "an answer other than --expect exits 1 and says so" \
    '[ $rc -eq 1 ] && grep -q "^NOT AS EXPECTED: wanted accepted, got HTTP 401 TIMESTAMP_EXPIRED" "$W/wrong"'
provider usage --txid x --amount 1 --currency USD --bad nonsense
check "an unknown --bad mode is a usage error (exit 2)" '[ $rc -eq 2 ]'
chmod 0644 "$W/stranger.key"
provider perms --txid x --amount 1 --currency USD --key "$W/stranger.key"
check "a key file readable by others is refused (exit 1, key not printed)" \
    '[ $rc -eq 1 ] && grep -q "readable by group or others" "$W/perms" && ! grep -qf "$W/stranger.key" "$W/perms"'
chmod 0600 "$W/stranger.key"

# ---- merchants failing on purpose are retried ----
provider m2pay --create "${APP[@]}" --merchant 502 --amount 1.25 --currency USD
tx3=$(created m2pay)
check "merchant failing with 500 twice: the gateway retries and the third attempt is delivered" \
    '[ $rc -eq 0 ] && wait_for_sql "SELECT state || attempts FROM deliveries WHERE payment_txid = $(q "$tx3")" delivered3 20'
check "merchant 502 saw two 500s on purpose, then accepted (under its endpoint path /shop)" \
    '[ "$(grep -c "^merchant: -> 500 on purpose" "$W/m2.out")" = 2 ] && grep -q "^merchant: -> 200 accepted" "$W/m2.out"'
check "the failed attempts are recorded with their HTTP status" \
    '[ "$(sql "SELECT count(*) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.payment_txid = $(q "$tx3") AND a.http_status = 500")" = 2 ]'

provider m3pay --create "${APP[@]}" --merchant 503 --amount 2 --currency USD
tx4=$(created m3pay)
check "merchant dropping the first connection: retried and delivered at attempt 2" \
    '[ $rc -eq 0 ] && wait_for_sql "SELECT state || attempts FROM deliveries WHERE payment_txid = $(q "$tx4")" delivered2 20'

provider m5pay --create "${APP[@]}" --merchant 505 --amount 5 --currency USD
tx5=$(created m5pay)
check "merchant slower than the 2 s delivery timeout: retried and delivered at attempt 2" \
    '[ $rc -eq 0 ] && wait_for_sql "SELECT state || attempts FROM deliveries WHERE payment_txid = $(q "$tx5")" delivered2 20'
check "the first attempt is recorded as a timeout" \
    '[ "$(sql "SELECT count(*) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.payment_txid = $(q "$tx5") AND a.error LIKE '"'"'timeout%'"'"'")" = 1 ]'
# (whether libevent notices the gateway's close before the answer is due varies; either way
# the held request must be let go without harm)
check "merchant 505 let go of its held answer after 3 s" \
    'wait_for "$W/m5.out" "(closed the connection before the slow answer|slow answer for) $tx5" 10'

provider m6pay --create "${APP[@]}" --merchant 506 --amount 6 --currency USD
tx6=$(created m6pay)
check "legacy merchant: the gateway signs in the legacy form and the sim verifies it that way" \
    '[ $rc -eq 0 ] && wait_for_sql "SELECT state || attempts FROM deliveries WHERE payment_txid = $(q "$tx6")" delivered1 && grep -q "payment $tx6 .*proof signature valid" "$W/m6.out"'

provider m7pay --create "${APP[@]}" --merchant 507 --amount 7 --currency USD
tx7=$(created m7pay)
check "merchant answering rejected on purpose: the delivery ends rejected, not retried" \
    '[ $rc -eq 0 ] && wait_for_sql "SELECT state || attempts FROM deliveries WHERE payment_txid = $(q "$tx7")" rejected1'
provider m8pay --create "${APP[@]}" --merchant 508 --amount 8 --currency USD
tx8=$(created m8pay)
check "merchant answering 410 on purpose: the delivery is dead at once" \
    '[ $rc -eq 0 ] && wait_for_sql "SELECT state || attempts FROM deliveries WHERE payment_txid = $(q "$tx8")" dead1'

# ---- the merchant sim refuses what the gateway did not sign ----
printf '{"proof":{},"signature":"00"}' >"$W/body"
"$ocreq" 300 "$W/stranger.key" POST "http://127.0.0.1:$m1_port/transfer/webhook" "$W/body" >"$W/forged" 2>&1
check "merchant sim: a request signed with another key is refused 401 INVALID_SIGNATURE" \
    'head -n1 "$W/forged" | grep -q " 401 " && grep -q INVALID_SIGNATURE "$W/forged"'
"$ocreq" 300 "$W/gw.key" POST "http://127.0.0.1:$m1_port/transfer/webhook" "$W/body" >"$W/badproof" 2>&1
check "merchant sim: a gateway-signed request with an invalid proof is refused 400" \
    'head -n1 "$W/badproof" | grep -q " 400 " && grep -q INVALID_PROOF "$W/badproof"'

# ---- --exit-after: a merchant that stops once it has what it waited for ----
timeout 60 "$ocgate" sim merchant --listen "127.0.0.1:$m4_port" --ocid 504 --gateway-key "$gw_pub" \
    --exit-after 1 --timeout 30 >"$W/m4.out" 2>&1 &
m4=$!
wait_for "$W/m4.out" '^merchant: listening' 10
provider m4pay --create "${APP[@]}" --merchant 504 --amount 4 --currency USD
wait "$m4"; m4rc=$?
check "--exit-after 1: the merchant exits 0 after the first payment" \
    '[ $m4rc -eq 0 ] && grep -q "1 payments accepted; exiting" "$W/m4.out"'

check "ledger check passes over everything the sims did" '"$ocgate" ledger check >"$W/ledger" 2>&1'

# The merchants stop cleanly on SIGTERM (under the sanitizers, a leak would fail this).
mfail=0
for p in "${merchants[@]}"; do
    kill -TERM "$p"
    wait "$p" || mfail=$((mfail + 1))
done
check "every merchant sim exits 0 on SIGTERM and prints its tally" \
    '[ $mfail -eq 0 ] && grep -q "^merchant: 3 requests, 3 valid, 1 accepted (1 distinct payments), 2 failed on purpose, 0 invalid$" "$W/m2.out"'

if [ $fails -ne 0 ]; then
    for f in gw.log m1.out m2.out m3.out m4.out m5.out m6.out m7.out m8.out; do echo "# --- $f"; tail -n 20 "$W/$f" | sed 's/^/# /'; done
fi
echo "1..$n"
[ $fails -eq 0 ]
