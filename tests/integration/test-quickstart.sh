#!/usr/bin/env bash
# The README's run command, non-interactively: deploy/quickstart.sh --once in a temporary
# folder on free ports, twice (the second run must reuse the first one's data). Checks the
# demo payment completed, its proof reached the merchant with valid signatures, and the
# delivery ended delivered. A third run without --once keeps serving, takes a payment from
# `ocgate sim provider` as its printed hint says, and stops cleanly on SIGTERM. TAP output;
# OCG_KEEP_TMP=1 keeps the temporary folder.
set -uo pipefail
build=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d /tmp/ocgate-qs.XXXXXX)
chmod 0755 "$tmp"
. "$root/tests/logscan/collect.sh"
# Server logs and keys for the whole-suite scan (tests/logscan), then clean up.
trap 'logscan_collect quickstart "$tmp/data"; logscan_collect quickstart-keys "$tmp/data/keys"; [ -n "${OCG_KEEP_TMP:-}" ] || rm -rf "$tmp"' EXIT
. "$root/tests/lib/tap.sh"
. "$root/tests/lib/free-port.sh"
port() { ocg_free_port || echo 0; }
export QS_BUILD_DIR=$build QS_GATEWAY_PORT=$(port) QS_MERCHANT_PORT=$(port) QS_PG_PORT=$(port)

timeout 240 bash "$root/deploy/quickstart.sh" --once --dir "$tmp/data" >"$tmp/run1" 2>&1; rc=$?
check "first run exits 0" '[ $rc -eq 0 ]'
check "it created a private cluster" 'grep -q "creating a private PostgreSQL cluster" "$tmp/run1"'
check "the merchant verified the forwarded proof and request" \
    'grep -q "request signature valid, proof signature valid" "$tmp/run1"'
check "the demo payment completed" 'grep -q "DEMO OK pay_" "$tmp/run1"'
check "the operator view shows it completed and delivered" \
    'grep -Eq "^status +completed" "$tmp/run1" && grep -Eq "^  state +delivered" "$tmp/run1"'
check "the private keys are 0600 in a 0700 folder" \
    '[ "$(stat -c %a "$tmp/data/keys")" = 700 ] && [ "$(stat -c %a "$tmp/data/keys/gateway.key")" = 600 ]'
check "PostgreSQL was stopped" '! [ -f "$tmp/data/pg/postmaster.pid" ]'

timeout 240 bash "$root/deploy/quickstart.sh" --once --dir "$tmp/data" >"$tmp/run2" 2>&1; rc=$?
check "second run exits 0" '[ $rc -eq 0 ]'
check "second run reuses the cluster and participants" \
    '! grep -q "creating a private" "$tmp/run2" && ! grep -q "registered" "$tmp/run2"'
check "second run completes another payment" 'grep -q "DEMO OK pay_" "$tmp/run2"'
# Third run as a person runs it: no --once. It keeps serving; pay another payment with
# `ocgate sim provider` exactly as the printed hint says, then stop it with SIGTERM (what
# Ctrl-C's SIGINT does too: a background job here cannot receive SIGINT).
bash "$root/deploy/quickstart.sh" --dir "$tmp/data" >"$tmp/run3" 2>&1 &
qs=$!
for _ in $(seq 1 1200); do
    grep -q "running; press Ctrl-C" "$tmp/run3" && break
    kill -0 "$qs" 2>/dev/null || break
    sleep 0.2
done
check "without --once it keeps running after the demo payment" \
    'grep -q "running; press Ctrl-C" "$tmp/run3" && kill -0 $qs'
# the hint's command, with its line continuations, run as printed
sed -n '/ocgate sim provider/,/--currency USD/p' "$tmp/run3" | sed 's/\\$//' | tr -d '\n' >"$tmp/hint"
timeout 60 bash -c "$(cat "$tmp/hint")" >"$tmp/sim" 2>&1; rc=$?
check "the printed ocgate sim provider command pays another payment" \
    '[ $rc -eq 0 ] && grep -q "^as expected: wanted accepted" "$tmp/sim"'
tx3=$(sed -n 's/^payment \(pay_[0-9a-f]*\) created$/\1/p' "$tmp/sim")
for _ in $(seq 1 100); do grep -q "for payment $tx3: request signature valid, proof signature valid" "$tmp/run3" && break; sleep 0.1; done
check "the running demo merchant received and verified that payment's proof" \
    '[ -n "$tx3" ] && grep -q "for payment $tx3: request signature valid, proof signature valid" "$tmp/run3"'
kill -TERM "$qs"
for _ in $(seq 1 150); do kill -0 "$qs" 2>/dev/null || break; sleep 0.2; done
wait "$qs"; rc=$?
check "SIGTERM stops it: exit 0, everything it started stopped, data kept" \
    '[ $rc -eq 0 ] && grep -q "stopped; data kept" "$tmp/run3" && ! [ -f "$tmp/data/pg/postmaster.pid" ] && ! (exec 3<>"/dev/tcp/127.0.0.1/$QS_GATEWAY_PORT") 2>/dev/null && ! (exec 3<>"/dev/tcp/127.0.0.1/$QS_MERCHANT_PORT") 2>/dev/null'

[ $fails -eq 0 ] || { echo "# --- run 1 ---"; sed 's/^/# /' "$tmp/run1" | tail -30; echo "# --- run 2 ---"; sed 's/^/# /' "$tmp/run2" | tail -30; echo "# --- run 3 ---"; sed 's/^/# /' "$tmp/run3" | tail -30; echo "# --- ocgate.log ---"; tail -n 20 "$tmp/data/ocgate.log" 2>/dev/null | sed 's/^/# /'; }
echo "1..$n"
[ $fails -eq 0 ]
