#!/usr/bin/env bash
# The operator endpoints of `ocgate serve` against a real, throwaway PostgreSQL: /healthz,
# /readyz and /metrics (Prometheus text) on loopback, the request and signature-rejection
# counters moving with signed traffic, histogram consistency, and /readyz following a
# database outage while /healthz stays up. TAP output; every wait is bounded.
#   test-metrics.sh <ocgate binary> <ocreq binary>
set -uo pipefail
ocgate=$1
ocreq=$2
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/pg/pgtest.sh"
. "$here/logscan/collect.sh"
pgtest_start || { echo "Bail out! cannot start PostgreSQL"; exit 1; }

W=$(mktemp -d /tmp/ocgate-metrics.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    logscan_collect metrics "$W"   # server logs and keys for tests/logscan
    rm -rf "$W"
    pgtest_stop
}
trap cleanup EXIT

. "$here/lib/tap.sh"
sql() { psql -XAtq -v ON_ERROR_STOP=1 -c "$1"; }

start_server() {
    log=$W/log.$1
    "$ocgate" serve >"$W/out.$1" 2>"$log" &
    pid=$!
    local i
    for i in $(seq 200); do
        if grep -qs '"msg":"listening"' "$log"; then
            port=$(sed -n 's/.*"msg":"listening","address":"127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$log")
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "# server $1 did not start:"; sed 's/^/#   /' "$log"
    return 1
}

# ocreq OCID KEY METHOD PATH → status in $st, body in $body
req() {
    OCREQ_GATEWAY_KEY=$gw_pub "$ocreq" "$1" "$2" "$3" "http://127.0.0.1:$port$4" \
        >"$W/resp" 2>"$W/resp.err"
    st=$(head -n1 "$W/resp" | awk '{print $2}')
    body=$(awk 'f{print} /^\r?$/{f=1}' "$W/resp")
}
# get PATH → status in $st, body in $body (plain, unsigned request)
get() {
    curl -sS --max-time 10 -o "$W/get" -w '%{http_code}' "http://127.0.0.1:$port$1" \
        >"$W/code" 2>/dev/null
    st=$(cat "$W/code")
    body=$(cat "$W/get" 2>/dev/null)
}
# metric NAME_WITH_LABELS → its value in the last scrape ($W/scrape), 0 when absent
metric() {
    awk -v k="$1" '$1 == k { v = $2 } END { print (v == "" ? 0 : v) }' "$W/scrape"
}
scrape() { get /metrics; cp "$W/get" "$W/scrape"; }

"$ocgate" migrate >/dev/null || { echo "Bail out! migrate failed"; exit 1; }
gw_pub=$("$ocgate" keygen --out "$W/gw.key")
app_pub=$("$ocgate" keygen --out "$W/app.key")
"$ocgate" keygen --out "$W/stranger.key" >/dev/null
sql "INSERT INTO participants (ocid, name, roles, public_key, enabled) VALUES
     (200, 'app', '{payment_app}', '$app_pub', true)" >/dev/null

export OCGATE_OCID=100 OCGATE_PRIVATE_KEY_FILE=$W/gw.key OCGATE_CURRENCIES=USD
export OCGATE_PUBLIC_URL=http://127.0.0.1/opencharge OCGATE_LISTEN=127.0.0.1:0
export OCGATE_THREADS=2 OCGATE_POOL_SIZE=2 OCGATE_DB_TIMEOUT_MS=1000
unset OCGATE_CONFIG OCGATE_TLS_CERT_FILE OCGATE_TLS_KEY_FILE

start_server main || { echo "Bail out! ocgate serve did not start"; exit 1; }

# ---- liveness and readiness ----
get /healthz
check "GET /healthz → 200 {\"status\":\"ok\"}" '[ "$st" = 200 ] && [ "$body" = "{\"status\":\"ok\"}" ]'
ready=no
for i in $(seq 50); do
    get /readyz
    if [ "$st" = 200 ]; then ready=yes; break; fi
    sleep 0.2
done
check "GET /readyz → 200 once the pools are up" '[ $ready = yes ]'
get /opencharge/healthz
check "the operator endpoints live at the root only (under base_path → 404)" '[ "$st" = 404 ]'

# ---- exposition ----
scrape
check "GET /metrics → 200" '[ "$st" = 200 ]'
check "Content-Type is Prometheus text 0.0.4" \
    'curl -sS -I -X GET --max-time 10 "http://127.0.0.1:$port/metrics" |
     grep -qi "^Content-Type: text/plain; version=0.0.4"'
check "build info carries the version" \
    'grep -Eq "^ocgate_build_info\{version=\"[0-9][^\"]*\"\} 1$" "$W/scrape"'
check "every metric has # HELP and # TYPE" \
    '[ "$(grep -c "^# HELP ocgate_" "$W/scrape")" -eq "$(grep -c "^# TYPE ocgate_" "$W/scrape")" ] &&
     [ "$(grep -c "^# TYPE ocgate_" "$W/scrape")" -ge 10 ]'
check "every sample is named ocgate_*" '! grep -v "^#" "$W/scrape" | grep -vq "^ocgate_"'
check "pool and queue gauges are present" \
    'grep -q "^ocgate_db_pool_in_use " "$W/scrape" && grep -q "^ocgate_db_pool_waiting " "$W/scrape" &&
     grep -q "^ocgate_delivery_queue_depth 0$" "$W/scrape" &&
     grep -q "^ocgate_delivery_oldest_due_age_seconds " "$W/scrape"'
check "the pools report ready connections" '[ "$(metric ocgate_db_pool_ready)" -ge 2 ]'

ok_key='ocgate_http_requests_total{route="/capabilities",status="200"}'
bad_key='ocgate_http_requests_total{route="/capabilities",status="401"}'
sig_key='ocgate_signature_rejections_total{reason="INVALID_SIGNATURE"}'
ok0=$(metric "$ok_key") bad0=$(metric "$bad_key") sig0=$(metric "$sig_key")

# ---- counters move with signed traffic ----
req 200 "$W/app.key" GET /opencharge/capabilities
check "a signed request → 200" '[ "$st" = 200 ]'
req 200 "$W/app.key" GET /opencharge/capabilities
req 200 "$W/stranger.key" GET /opencharge/capabilities
check "a request signed with the wrong key → 401" '[ "$st" = 401 ]'
scrape
check "requests{/capabilities,200} grew by 2 ($ok0 → $(metric "$ok_key"))" \
    '[ "$(metric "$ok_key")" -eq $((ok0 + 2)) ]'
check "requests{/capabilities,401} grew by 1" '[ "$(metric "$bad_key")" -eq $((bad0 + 1)) ]'
check "signature_rejections{INVALID_SIGNATURE} grew by 1" \
    '[ "$(metric "$sig_key")" -eq $((sig0 + 1)) ]'
check "/metrics itself is counted" \
    '[ "$(metric "ocgate_http_requests_total{route=\"/metrics\",status=\"200\"}")" -ge 1 ]'

# Buckets non-decreasing in le order, and +Inf equal to _count, for every histogram series.
hist_ok() {
    awk '
        /^#/ { next }
        /_bucket\{/ {
            split($1, a, "le=\""); series = a[1]
            if (series == prev && $2 + 0 < last + 0) bad = 1
            prev = series; last = $2
            if ($1 ~ /le="\+Inf"/) { sub(/_bucket\{/, "{", series); inf[series] = $2; seen++ }
            next
        }
        /_count[{ ]/ {
            key = $1; sub(/_count/, "", key)
            if (key !~ /\}$/) key = key "{"; else sub(/\}$/, ",", key)
            cnt[key] = $2
        }
        END {
            if (!seen) exit 1
            for (k in inf) if (!(k in cnt) || cnt[k] != inf[k]) exit 1
            exit bad
        }' "$W/scrape"
}
check "histogram buckets are cumulative and +Inf equals _count" 'hist_ok'
check "the capabilities latency histogram counted the requests" \
    '[ "$(metric "ocgate_http_request_duration_ms_count{route=\"/capabilities\"}")" -ge 3 ]'

# ---- database outage: /readyz follows it, /healthz does not ----
pgtest_as_owner "$PGTEST_BIN/pg_ctl" -D "$PGTEST_DIR/data" -m fast -w stop >/dev/null 2>&1
down=no
t0=$(date +%s)
for i in $(seq 50); do
    get /readyz
    if [ "$st" = 503 ]; then down=yes; break; fi
    sleep 0.2
done
check "database down → /readyz 503 within 10 s ($(( $(date +%s) - t0 )) s)" '[ $down = yes ]'
check "...with status unavailable and a reason" \
    '[[ "$body" == *"\"status\":\"unavailable\""* ]] && [[ "$body" == *"\"reason\":\"database unavailable\""* ]]'
get /healthz
check "...while /healthz still answers 200" '[ "$st" = 200 ]'
scrape
check "...and /metrics still answers, without the queue gauges" \
    '[ "$st" = 200 ] && grep -q "^ocgate_build_info" "$W/scrape" &&
     ! grep -q "^ocgate_delivery_queue_depth" "$W/scrape"'
pgtest_as_owner "$PGTEST_BIN/pg_ctl" -D "$PGTEST_DIR/data" -l "$PGTEST_DIR/server.log" -w \
    -o "-c listen_addresses='' -k $PGTEST_DIR -p $PGPORT -c fsync=off \
        -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null
ready=no
for i in $(seq 100); do
    get /readyz
    if [ "$st" = 200 ]; then ready=yes; break; fi
    sleep 0.2
done
check "database back → /readyz 200 again without restarting ocgate" '[ $ready = yes ]'

kill -TERM "$pid"
for i in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
wait "$pid"; rc=$?; pid=
check "the server exits 0 on SIGTERM" '[ $rc -eq 0 ]'
check "no sanitizer report in any server log" \
    '! grep -qs -e "Sanitizer" -e "runtime error" "$W"/log.*'

echo "1..$n"
[ $fails -eq 0 ]
