#!/usr/bin/env bash
# CI smoke test of the benchmark (bench/loadgen.c): a throwaway PostgreSQL, a real ocgate and
# the generator at small N. Asserts that the generator's correctness checks pass — every
# payment settled exactly once, the ledger balanced, every notification received once with
# valid signatures — and that they fail when they should (a wrong gateway key makes every
# signature check fail). Never asserts speed. TAP output; every wait is bounded.
#   test-loadgen.sh <ocgate binary> <ocgate-loadgen binary>
set -uo pipefail
ocgate=$1
loadgen=$2
bench=$(cd "$(dirname "$0")" && pwd)
. "$bench/../tests/pg/pgtest.sh"
. "$bench/lib.sh"
pgtest_start || { echo "Bail out! cannot start PostgreSQL"; exit 1; }

W=$(mktemp -d /tmp/ocgate-bench-test.XXXXXX)
gw_pid=
cleanup() {
    bench_gateway_stop
    rm -rf "$W"
    pgtest_stop
}
trap cleanup EXIT

. "$bench/../tests/lib/tap.sh"

"$ocgate" migrate >/dev/null || { echo "Bail out! migrate failed"; exit 1; }
bench_free_port || { echo "Bail out! no free port"; exit 1; }
recv_port=$port
bench_participants "$W" "$recv_port" 2 || { echo "Bail out! cannot register participants"; exit 1; }
bench_free_port || { echo "Bail out! no free port"; exit 1; }
gw_port=$port
bench_gateway_start "$W" "$gw_port" "$W/gateway.log" ||
    { echo "Bail out! ocgate serve did not start"; exit 1; }

lg() {
    timeout --kill-after=5 120 "$loadgen" --gateway "127.0.0.1:$gw_port" --gateway-ocid 300 \
        --app-ocid 200 --app-key "$W/keys/app.key" --provider-ocid 100 \
        --provider-key "$W/keys/provider.key" --merchants "$merchants" \
        --receiver-port "$recv_port" --db "$OCGATE_DATABASE_URL" --server-pid "$gw_pid" \
        --drain-timeout 20 "$@"
}

# ---- a correct run: every check of the generator passes ----
lg --gateway-pub "$(cat "$W/keys/gateway.pub")" -n 300 -c 8 --label smoke \
    >"$W/run1.out" 2>"$W/run1.err"
rc=$?
sed 's/^/# /' "$W/run1.err"
check "loadgen exits 0 on a clean run (rc $rc)" '[ $rc -eq 0 ]'
while IFS= read -r line; do
    name=${line#check }
    name=${name%%: *}
    if [[ "$line" == *": ok" ]]; then ok "run 1: $name"; else notok "run 1: $line"; fi
done < <(grep '^check ' "$W/run1.out")
check "run 1 reported its checks (at least 14)" '[ "$(grep -c "^check " "$W/run1.out")" -ge 14 ]'
summary=$(grep '^ocgate-bench ' "$W/run1.out")
echo "# $summary"
check "summary: 300 sent, 300 settled, 0 errors, checks passed" \
    '[[ "$summary" == *" sent=300 settled=300 errors=0 "* && "$summary" == *" checks=passed" ]]'
check "summary carries every figure" \
    '(for f in settled_per_s p50_ms p95_ms p99_ms delivery_lag_p99_ms drain_s server_rss_mib \
             server_cpu_s_per_1k db_commits_per_settlement wal_syncs_per_settlement; do
         [[ "$summary" =~ \ $f=[0-9.]+ ]] || exit 1; done)'

# ---- the checks can fail: the receiver verifies with a key that is not the gateway's ----
lg --gateway-pub "$(cat "$W/keys/provider.pub")" -n 20 -c 2 --label wrong-key \
    >"$W/run2.out" 2>"$W/run2.err"
rc=$?
check "a wrong gateway key → loadgen exits 1 (rc $rc)" '[ $rc -eq 1 ]'
check "...because the notification signature check failed" \
    'grep -q "^check every notification verifies.*FAILED (20;" "$W/run2.out"'
check "...and every notification counts as never received" \
    'grep -q "^check every settled payment notified: FAILED (20;" "$W/run2.out"'
check "...while the database checks still pass" \
    'grep -q "^check every settled payment completed: ok" "$W/run2.out" &&
     grep -q "^check the whole ledger balances: ok" "$W/run2.out"'

# ---- a bad option is a usage error, and nothing is sent ----
"$loadgen" --gateway 10.0.0.1:80 --idle 1 >/dev/null 2>&1
rc=$?
check "a gateway off this machine is refused as a usage error (rc $rc)" '[ $rc -eq 2 ]'

# ---- idle keep-alive connections stay open and the RSS is read ----
timeout --kill-after=5 60 "$loadgen" --idle 50 --hold 1 --gateway "127.0.0.1:$gw_port" \
    --server-pid "$gw_pid" --label idle >"$W/idle.out" 2>&1
rc=$?
idle=$(grep '^ocgate-idle ' "$W/idle.out")
echo "# $idle"
check "idle: 50 connections answered and still open (rc $rc)" \
    '[ $rc -eq 0 ] && [[ "$idle" == *" answered_and_open=50 "* && "$idle" =~ server_rss_mib=[0-9] ]]'

"$ocgate" ledger check >"$W/ledger.out" 2>&1
rc=$?
check "ocgate ledger check passes after the runs (rc $rc)" '[ $rc -eq 0 ]'

bench_gateway_stop
check "no sanitizer report in the gateway log" \
    '! grep -qs -e "Sanitizer" -e "runtime error" "$W/gateway.log"'

echo "1..$n"
[ $fails -eq 0 ]
