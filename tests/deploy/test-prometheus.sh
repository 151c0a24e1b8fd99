#!/usr/bin/env bash
# deploy/prometheus/ocgate-alerts.yml: `promtool check rules`, the unit tests in
# ocgate-alerts.test.yml (each alert fires on the series that should trigger it, and not
# before), and every ocgate_* metric the rules use is one a real `ocgate serve` exports: the
# names are taken from a scrape of a running gateway's /metrics. TAP output.
#   test-prometheus.sh <ocgate binary>
set -uo pipefail
ocgate=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
rules=$root/deploy/prometheus/ocgate-alerts.yml
W=$(mktemp -d /tmp/ocgate-prom.XXXXXX)
pid=
# pgtest_start sets its own EXIT trap, so this one is set again after it and stops both.
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$W"; pgtest_stop 2>/dev/null; }
trap cleanup EXIT
. "$root/tests/lib/tap.sh"

if command -v promtool >/dev/null; then
    check "promtool check rules" 'promtool check rules "$rules" >"$W/check" 2>&1 || { sed "s/^/# /" "$W/check"; false; }'
    check "promtool test rules (one unit test per alert)" \
        '(cd "$root/deploy/prometheus" && promtool test rules ocgate-alerts.test.yml) >"$W/test" 2>&1 || { sed "s/^/# /" "$W/test"; false; }'
    # The unit tests must be able to fail: a rule file with one threshold changed must not pass.
    mkdir "$W/mut"
    sed 's/ocgate_delivery_oldest_due_age_seconds{job="ocgate"}) > 300/ocgate_delivery_oldest_due_age_seconds{job="ocgate"}) > 3000/' \
        "$rules" >"$W/mut/ocgate-alerts.yml"
    cp "$root/deploy/prometheus/ocgate-alerts.test.yml" "$W/mut/"
    check "the unit tests fail when a threshold is changed" \
        '! cmp -s "$rules" "$W/mut/ocgate-alerts.yml" && ! (cd "$W/mut" && promtool test rules ocgate-alerts.test.yml) >/dev/null 2>&1'
else
    skip "promtool check rules" "promtool is not installed (Debian package prometheus)"
    skip "promtool test rules" "promtool is not installed"
    skip "the unit tests fail when a threshold is changed" "promtool is not installed"
fi
alerts=$(grep -c '^      - alert: ' "$rules")
tested=$(grep -ho 'alertname: [A-Za-z]*' "$root/deploy/prometheus/ocgate-alerts.test.yml" | sort -u | wc -l)
check "every alert ($alerts) has a unit test ($tested alerts tested)" '[ "$alerts" -eq "$tested" ]'
for a in OcgateDeadDeliveries OcgateDeliveryQueueStale OcgateSignatureRejections OcgateNotReady; do
    check "alert $a exists" 'grep -q "^      - alert: $a$" "$rules"'
done

# ---- the metric names, from a real scrape ----
. "$root/tests/pg/pgtest.sh"
pgtest_start || { echo "Bail out! cannot start PostgreSQL"; exit 1; }
trap cleanup EXIT
"$ocgate" migrate >/dev/null || { echo "Bail out! migrate failed"; exit 1; }
"$ocgate" keygen --out "$W/gw.key" >/dev/null
export OCGATE_OCID=300 OCGATE_PRIVATE_KEY_FILE=$W/gw.key OCGATE_CURRENCIES=USD
export OCGATE_PUBLIC_URL=http://127.0.0.1/opencharge OCGATE_LISTEN=127.0.0.1:0 OCGATE_THREADS=1
unset OCGATE_CONFIG OCGATE_TLS_CERT_FILE OCGATE_TLS_KEY_FILE
"$ocgate" serve >"$W/out" 2>"$W/log" &
pid=$!
port=
for _ in $(seq 1 150); do
    port=$(sed -n 's/.*"msg":"listening","address":"127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$W/log")
    [ -n "$port" ] && break
    sleep 0.1
done
# The queue gauges appear once a pool connection is up; poll for them (bounded).
for _ in $(seq 1 50); do
    curl -sf --max-time 5 "http://127.0.0.1:$port/metrics" >"$W/scrape" 2>/dev/null &&
        grep -q '^ocgate_delivery_oldest_due_age_seconds ' "$W/scrape" && break
    sleep 0.2
done
sed -n 's/^# TYPE \(ocgate_[a-z_]*\) .*/\1/p' "$W/scrape" | sort -u >"$W/exported"
check "the gateway exported its metrics ($(wc -l <"$W/exported") families)" '[ -s "$W/exported" ]'
grep -o 'ocgate_[a-z_]*' "$rules" | sort -u >"$W/used"
check "every ocgate_* metric the rules use is exported ($(wc -l <"$W/used") used)" \
    '[ -s "$W/used" ] && ! grep -vxFf "$W/exported" "$W/used" | sed "s/^/# not exported: /" | grep -q .'
for l in 'outcome="dead"' 'reason="INVALID_SIGNATURE"' 'outcome="unmatched",replay="false"'; do
    check "a series with $l is exported" 'grep -qF "$l" "$W/scrape"'
done

echo "1..$n"
[ $fails -eq 0 ]
