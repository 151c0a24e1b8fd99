#!/usr/bin/env bash
# The README's run command, non-interactively: deploy/quickstart.sh --once in a temporary
# folder on free ports, twice (the second run must reuse the first one's data). Checks the
# demo payment completed, its proof reached the merchant with valid signatures, and the
# delivery ended delivered. TAP output.
set -uo pipefail
build=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d /tmp/ocgate-qs.XXXXXX)
chmod 0755 "$tmp"
. "$root/tests/logscan/collect.sh"
# Server logs and keys for the whole-suite scan (tests/logscan), then clean up.
trap 'logscan_collect quickstart "$tmp/data"; logscan_collect quickstart-keys "$tmp/data/keys"; rm -rf "$tmp"' EXIT
n=0 fails=0
check() { n=$((n + 1)); if eval "$2"; then echo "ok $n - $1"; else fails=$((fails + 1)); echo "not ok $n - $1"; fi; }
port() { # a free 127.0.0.1 port
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 40000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
    echo 0
}
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
[ $fails -eq 0 ] || { echo "# --- run 1 ---"; sed 's/^/# /' "$tmp/run1" | tail -30; echo "# --- run 2 ---"; sed 's/^/# /' "$tmp/run2" | tail -30; }
echo "1..$n"
[ $fails -eq 0 ]
