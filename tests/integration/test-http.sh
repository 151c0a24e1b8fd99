#!/usr/bin/env bash
# `ocgate serve` from the outside against a real, throwaway PostgreSQL: routing, response
# signing, request authentication (nothing written for a refused request), body and header
# limits, TLS, start-up refusals, graceful shutdown, a database outage and the connection cap.
# Requests are signed by ocreq (ocgate's own auth code); the independent Node signer covers
# the protocol scenarios elsewhere. TAP output; every wait is bounded.
#   test-http.sh <ocgate binary> <ocreq binary>
set -uo pipefail
ocgate=$1
ocreq=$2
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/pg/pgtest.sh"
. "$here/logscan/collect.sh"
pgtest_start || { echo "Bail out! cannot start PostgreSQL"; exit 1; }

W=$(mktemp -d /tmp/ocgate-http.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    [ -n "${lockpid:-}" ] && kill "$lockpid" 2>/dev/null
    logscan_collect http "$W"   # server logs and keys for tests/logscan
    rm -rf "$W"
    pgtest_stop
}
trap cleanup EXIT

. "$here/lib/tap.sh"
sql() { psql -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
now_ms() { date +%s%3N; }

# Waits for pid $1 to exit, at most $2 seconds; sets rc (its status, or 124 after killing it).
wait_exit() {
    local p=$1 limit=$(($2 * 10)) i=0
    while kill -0 "$p" 2>/dev/null; do
        if [ $i -ge $limit ]; then
            kill -9 "$p" 2>/dev/null
            wait "$p" 2>/dev/null
            rc=124
            return
        fi
        sleep 0.1
        i=$((i + 1))
    done
    wait "$p"
    rc=$?
}

# Starts `ocgate serve` with the current environment, logging to $W/log.<name>; sets pid and
# port, or returns 1 (after 20 s at most) when it did not come up.
start_server() {
    log=$W/log.$1
    "$ocgate" serve >"$W/out.$1" 2>"$log" &
    pid=$!
    local i
    for i in $(seq 200); do
        if grep -qs '"msg":"listening"' "$log"; then
            port=$(sed -n 's/.*"msg":"listening","address":"127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$log")
            base=http://127.0.0.1:$port/opencharge
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "# server $1 did not start:"; sed 's/^/#   /' "$log"
    return 1
}

stop_server() {
    kill -TERM "$pid" 2>/dev/null
    wait_exit "$pid" 15
    pid=
}

# ocreq OCID KEY METHOD PATH [BODYFILE] → $W/resp (raw), status in $st, body in $body
req() {
    OCREQ_GATEWAY_KEY=$gw_pub "$ocreq" "$1" "$2" "$3" "http://127.0.0.1:$port$4" ${5:+"$5"} \
        >"$W/resp" 2>"$W/resp.err"
    sig_rc=$?
    parse_resp
}
parse_resp() {
    st=$(head -n1 "$W/resp" | awk '{print $2}')
    body=$(awk 'f{print} /^\r?$/{f=1}' "$W/resp")
}
code_is() { [[ "$body" == *"\"code\":\"$1\""* ]]; }
has_header() { grep -qi "^$1: " "$W/resp"; }
nonces() { sql "SELECT count(*) FROM request_nonces"; }
# Holds an exclusive lock on the nonce table for $1 seconds, so that any authenticated
# request stays in flight (settle/ records its nonce first) until then.
hold_nonces() {
    psql -XAtq -c "BEGIN; LOCK TABLE request_nonces IN ACCESS EXCLUSIVE MODE;
                   SELECT pg_sleep($1); COMMIT;" >/dev/null 2>&1
}

# ---- set-up: schema, keys, participants ----
"$ocgate" migrate >/dev/null || { echo "Bail out! migrate failed"; exit 1; }
gw_pub=$("$ocgate" keygen --out "$W/gw.key")
app_pub=$("$ocgate" keygen --out "$W/app.key")
off_pub=$("$ocgate" keygen --out "$W/off.key")
"$ocgate" keygen --out "$W/stranger.key" >/dev/null
sql "INSERT INTO participants (ocid, name, roles, public_key, enabled) VALUES
     (200, 'app', '{payment_app}', '$app_pub', true),
     (201, 'shop', '{merchant}', '$off_pub', true),
     (300, 'off', '{payment_app}', '$off_pub', false)" >/dev/null

export OCGATE_OCID=100 OCGATE_PRIVATE_KEY_FILE=$W/gw.key OCGATE_CURRENCIES=USD
export OCGATE_PUBLIC_URL=http://127.0.0.1/opencharge OCGATE_LISTEN=127.0.0.1:0
export OCGATE_THREADS=2 OCGATE_POOL_SIZE=2 OCGATE_BODY_LIMIT=1K OCGATE_DB_TIMEOUT_MS=1000
unset OCGATE_CONFIG OCGATE_TLS_CERT_FILE OCGATE_TLS_KEY_FILE

start_server main || { echo "Bail out! ocgate serve did not start"; exit 1; }
check "the listening log line names the real port" '[ -n "$port" ] && [ "$port" -gt 0 ]'

# ---- public routes and response signing ----
req 200 "$W/app.key" GET /opencharge/metadata.json
check "GET {base}/metadata.json → 200" '[ "$st" = 200 ]'
check "metadata carries X-OC-ID, X-OC-Timestamp, X-OC-Signature" \
    'has_header X-OC-ID && has_header X-OC-Timestamp && has_header X-OC-Signature'
check "metadata response signature verifies with the gateway key" '[ $sig_rc -eq 0 ]'
check "metadata is application/json and publishes the gateway key" \
    'grep -qi "^Content-Type: application/json" "$W/resp" && [[ "$body" == *"$gw_pub"* ]]'
check "X-Request-Id is 16 hex digits" \
    'tr -d "\r" <"$W/resp" | grep -Eqi "^X-Request-Id: [0-9a-f]{16}$"'
out=$(curl -sS -i --max-time 10 "http://127.0.0.1:$port/metadata.json")
check "GET /metadata.json at the root → 200, signed" \
    '[[ "$out" == "HTTP/1.1 200"* ]] && grep -qi "^X-OC-Signature: [0-9a-f]\{130\}" <<<"$out"'

req 200 "$W/app.key" GET /opencharge/no/such/thing
check "unknown path → 404 NOT_FOUND" '[ "$st" = 404 ] && code_is NOT_FOUND'
check "the 404 is signed and verifies" '[ $sig_rc -eq 0 ]'
out=$(curl -sS -i --max-time 10 "http://127.0.0.1:$port/elsewhere")
check "a path outside the base path → signed 404 JSON" \
    '[[ "$out" == "HTTP/1.1 404"* ]] && grep -qi "^X-OC-Signature: " <<<"$out" &&
     [[ "$out" == *"\"code\":\"NOT_FOUND\""* ]]'
req 200 "$W/app.key" GET /opencharge/payment/create
check "a known path with the wrong method → 404 NOT_FOUND" '[ "$st" = 404 ] && code_is NOT_FOUND'
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X PUT "$base/capabilities")
check "a method other than GET/POST is refused by libevent (501)" '[ "$code" = 501 ]'

# ---- authentication: every refusal is a signed 401 and writes nothing ----
before=$(nonces)
out=$(curl -sS -i --max-time 10 -X POST --data-binary '{}' "$base/payment/create")
check "missing X-OC headers → 401 INVALID_SIGNATURE" \
    '[[ "$out" == "HTTP/1.1 401"* ]] && [[ "$out" == *"\"code\":\"INVALID_SIGNATURE\""* ]]'
check "the 401 is signed" 'grep -qi "^X-OC-Signature: " <<<"$out"'
OCREQ_TIME_OFFSET=-1000 req 200 "$W/app.key" GET /opencharge/capabilities
check "stale timestamp → 401 TIMESTAMP_EXPIRED" '[ "$st" = 401 ] && code_is TIMESTAMP_EXPIRED'
OCREQ_TIME_OFFSET=1000 req 200 "$W/app.key" GET /opencharge/capabilities
check "future timestamp → 401 TIMESTAMP_EXPIRED" '[ "$st" = 401 ] && code_is TIMESTAMP_EXPIRED'
req 999 "$W/app.key" GET /opencharge/capabilities
check "unknown ocid → 401 UNKNOWN_OCID" '[ "$st" = 401 ] && code_is UNKNOWN_OCID'
req 300 "$W/off.key" GET /opencharge/capabilities
check "disabled participant → 401 UNKNOWN_OCID" '[ "$st" = 401 ] && code_is UNKNOWN_OCID'
req 200 "$W/stranger.key" GET /opencharge/capabilities
check "wrong key → 401 INVALID_SIGNATURE" '[ "$st" = 401 ] && code_is INVALID_SIGNATURE'
OCREQ_HEADER="X-OC-Nonce: req_second" req 200 "$W/app.key" GET /opencharge/capabilities
check "a repeated X-OC-Nonce header → 401 INVALID_SIGNATURE" \
    '[ "$st" = 401 ] && code_is INVALID_SIGNATURE'
sigbad=$(curl -sS -i --max-time 10 -H 'X-OC-ID: 200' -H "X-OC-Timestamp: $(date +%s)" \
    -H 'X-OC-Nonce: req_x' -H 'X-OC-Signature: zz' "$base/capabilities")
check "malformed X-OC-Signature → 401 INVALID_SIGNATURE" \
    '[[ "$sigbad" == "HTTP/1.1 401"* ]] && [[ "$sigbad" == *INVALID_SIGNATURE* ]]'
check "no refused request wrote a nonce" '[ "$(nonces)" = "$before" ]'

# ---- authenticated routes through settle/ ----
req 200 "$W/app.key" GET /opencharge/capabilities
check "signed GET {base}/capabilities → 200, response verifies" \
    '[ "$st" = 200 ] && [ $sig_rc -eq 0 ] && [[ "$body" == *"\"ocid\":100"* ]]'
check "the verified request's nonce was recorded" '[ "$(nonces)" -eq $((before + 1)) ]'
OCREQ_NONCE=req_fixed_nonce_1 req 200 "$W/app.key" GET /opencharge/capabilities
first=$st
OCREQ_NONCE=req_fixed_nonce_1 req 200 "$W/app.key" GET /opencharge/capabilities
check "a replayed nonce → 401 NONCE_REUSED" \
    '[ "$first" = 200 ] && [ "$st" = 401 ] && code_is NONCE_REUSED'
echo '{}' >"$W/empty.json"
req 200 "$W/app.key" POST /opencharge/orders/checkout "$W/empty.json"
check "signed /orders/checkout → 400 CAPABILITY_NOT_SUPPORTED" \
    '[ "$st" = 400 ] && code_is CAPABILITY_NOT_SUPPORTED && [ $sig_rc -eq 0 ]'
req 200 "$W/app.key" POST /opencharge/transfer/create "$W/empty.json"
check "signed /transfer/create → 400 CAPABILITY_NOT_SUPPORTED" \
    '[ "$st" = 400 ] && code_is CAPABILITY_NOT_SUPPORTED'
printf '{"to":201,"amount":"12.50","currency":"USD"}' >"$W/create.json"
req 200 "$W/app.key" POST /opencharge/payment/create "$W/create.json"
txid=$(grep -o '"txid":"[^"]*"' <<<"$body" | cut -d'"' -f4)
check "signed POST {base}/payment/create → 200 with a txid" '[ "$st" = 200 ] && [ -n "$txid" ]'
req 200 "$W/app.key" GET "/opencharge/verify/$txid"
check "GET {base}/verify/{txid} → 200 pending" '[ "$st" = 200 ] && [[ "$body" == *pending* ]]'
req 200 "$W/app.key" GET /opencharge/verify/pay_unknown
check "verify of an unknown txid → 404 TXID_NOT_FOUND" '[ "$st" = 404 ] && code_is TXID_NOT_FOUND'
before=$(nonces)
for seg in "" "a%2Fb" "a%00b" "a/b"; do
    req 200 "$W/app.key" GET "/opencharge/verify/$seg"
    check "verify segment '$seg' → 404 NOT_FOUND after authentication" \
        '[ "$st" = 404 ] && code_is NOT_FOUND'
done
check "...and each of those recorded its nonce" '[ "$(nonces)" -eq $((before + 4)) ]'
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$base/verify/$txid")
check "unsigned verify → 401" '[ "$code" = 401 ]'

# ---- body and header limits (body_limit = 1K, so libevent's hard cap is 4K) ----
before=$(nonces)
head -c 2000 /dev/zero | tr '\0' 'a' >"$W/2k.json"
req 200 "$W/app.key" POST /opencharge/payment/create "$W/2k.json"
check "body over body_limit → 413 PAYLOAD_TOO_LARGE" \
    '[ "$st" = 413 ] && code_is PAYLOAD_TOO_LARGE'
check "...signed, and verifies" '[ $sig_rc -eq 0 ]'
check "...checked before authentication: no nonce written" '[ "$(nonces)" = "$before" ]'
head -c 5000 /dev/zero | tr '\0' 'a' >"$W/5k.json"
out=$(curl -sS -i --max-time 10 -H 'Expect: 100-continue' --data-binary @"$W/5k.json" \
    "$base/payment/create" 2>&1)
check "body over 4 × body_limit → libevent's own bare 413 (documented)" \
    '[[ "$out" == *"HTTP/1.1 413"* ]] && ! grep -qi "^X-OC-Signature" <<<"$out"'
big=$(head -c 20000 /dev/zero | tr '\0' 'h')
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "X-Big: $big" "$base/capabilities")
check "headers over header_limit → rejected with a 4xx or a closed connection ($code)" \
    '[[ "$code" == 4?? || "$code" == 000 ]]'
req 200 "$W/app.key" GET /opencharge/capabilities
check "the server still answers after the refusals" '[ "$st" = 200 ]'

# ---- the request log ----
check "one JSON request line per request, with route pattern and caller" \
    'grep -q "\"msg\":\"request\".*\"route\":\"/verify/{txid}\".*\"caller\":200" "$log"'
check "the log carries codes of refusals" \
    'grep -q "\"status\":401,\"code\":\"UNKNOWN_OCID\",\"caller\":null" "$log"'
# The amount is searched as a JSON string: a duration such as 12.503 ms is not a body.
check "the log never carries signatures, keys or bodies" \
    '! grep -Eq "[0-9a-f]{128}|\"12\.50\"|aaaaaaaa" "$log"'
json_lines='for (const l of require("fs").readFileSync(process.argv[1], "utf8").split("\n"))
                if (l) JSON.parse(l)'
check "every log line is JSON" \
    '! command -v node >/dev/null || node -e "$json_lines" "$log" 2>/dev/null'

# ---- database outage: 503 within db_timeout_ms + slack, recovery without restart ----
pgtest_as_owner "$PGTEST_BIN/pg_ctl" -D "$PGTEST_DIR/data" -m fast -w stop >/dev/null 2>&1
t0=$(now_ms)
req 200 "$W/app.key" GET /opencharge/capabilities
t1=$(now_ms)
check "database down → 503 UNAVAILABLE" '[ "$st" = 503 ] && code_is UNAVAILABLE'
check "...within db_timeout_ms + 2 s ($((t1 - t0)) ms)" '[ $((t1 - t0)) -lt 3000 ]'
check "...signed" '[ $sig_rc -eq 0 ]'
pgtest_as_owner "$PGTEST_BIN/pg_ctl" -D "$PGTEST_DIR/data" -l "$PGTEST_DIR/server.log" -w \
    -o "-c listen_addresses='' -k $PGTEST_DIR -p $PGPORT -c fsync=off \
        -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null
recovered=no
for i in $(seq 30); do
    req 200 "$W/app.key" GET /opencharge/capabilities
    if [ "$st" = 200 ]; then recovered=yes; break; fi
    sleep 0.5
done
check "database back → requests succeed again without restarting ocgate" '[ $recovered = yes ]'

stop_server
check "the main server exits 0 on SIGTERM" '[ $rc -eq 0 ]'

# ---- graceful shutdown ----
# A request held in flight for 2 s by a lock on the nonce table (the database deadline is
# raised above that): SIGTERM must let it finish.
OCGATE_DB_TIMEOUT_MS=8000 start_server drain || exit 1
hold_nonces 2 &
lockpid=$!
sleep 0.5
OCREQ_GATEWAY_KEY=$gw_pub "$ocreq" 200 "$W/app.key" GET "$base/capabilities" \
    >"$W/inflight" 2>/dev/null &
reqpid=$!
sleep 0.3
t0=$(now_ms)
kill -TERM "$pid"
wait_exit "$reqpid" 15
inflight_rc=$rc
wait_exit "$pid" 15
t1=$(now_ms)
wait "$lockpid" 2>/dev/null
lockpid=
check "SIGTERM with a request in flight: the request still gets its answer" \
    '[ $inflight_rc -eq 0 ] && head -n1 "$W/inflight" | grep -q " 200 "'
check "...carrying Connection: close" 'grep -qi "^Connection: close" "$W/inflight"'
check "...and the server exits 0 within the drain bound ($((t1 - t0)) ms)" \
    '[ $rc -eq 0 ] && [ $((t1 - t0)) -lt 12000 ]'
check "...which was counted in flight when the signal came" \
    'grep -q "\"msg\":\"shutting down\".*\"in_flight\":1" "$log"'
check "the shutdown is logged" 'grep -q "\"msg\":\"stopped\"" "$log"'
pid=

# A request still in flight when the drain bound (10 s) runs out: the server closes it and
# still exits 0; the abandoned database call is failed and freed at shutdown.
OCGATE_DB_TIMEOUT_MS=30000 start_server bound || exit 1
hold_nonces 14 &
lockpid=$!
sleep 0.5
"$ocreq" 200 "$W/app.key" GET "$base/capabilities" >"$W/stuck" 2>/dev/null &
reqpid=$!
sleep 0.3
t0=$(now_ms)
kill -TERM "$pid"
wait_exit "$pid" 20
t1=$(now_ms)
check "SIGTERM with a request stuck past the drain bound: exit 0 after ~10 s ($((t1 - t0)) ms)" \
    '[ $rc -eq 0 ] && [ $((t1 - t0)) -ge 9500 ] && [ $((t1 - t0)) -lt 13000 ]'
check "...logging that the bound was reached" 'grep -q "\"msg\":\"drain limit reached\"" "$log"'
wait_exit "$reqpid" 5
check "...and the stuck client's connection is closed unanswered" '[ ! -s "$W/stuck" ]'
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
     WHERE query LIKE '%pg_sleep(14)%' AND pid <> pg_backend_pid()" >/dev/null
wait_exit "$lockpid" 10
lockpid=
pid=

# A client that gives up while its request waits on the database: the late answer is
# dropped and the server carries on.
start_server gone || exit 1
hold_nonces 1.5 &
lockpid=$!
sleep 0.3
timeout 0.3 "$ocreq" 200 "$W/app.key" GET "$base/capabilities" >/dev/null 2>&1
wait_exit "$lockpid" 10
lockpid=
sleep 0.3
req 200 "$W/app.key" GET /opencharge/capabilities
check "a client gone mid-request does not disturb later requests" '[ "$st" = 200 ]'
stop_server
check "...and the server exits 0" '[ $rc -eq 0 ]'

# A request whose body is still arriving when SIGTERM comes.
start_server partial || exit 1
exec {slow}<>"/dev/tcp/127.0.0.1/$port"
printf 'POST /opencharge/payment/create HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n' >&$slow
printf '{"to":' >&$slow
sleep 0.3
t0=$(now_ms)
kill -TERM "$pid"
wait_exit "$pid" 15
t1=$(now_ms)
exec {slow}>&-
check "SIGTERM while a body is half sent: exit 0 within the drain bound ($((t1 - t0)) ms)" \
    '[ $rc -eq 0 ] && [ $((t1 - t0)) -lt 12000 ]'
pid=

start_server idle || exit 1
t0=$(now_ms)
stop_server
t1=$(now_ms)
check "SIGTERM when idle: exit 0 promptly ($((t1 - t0)) ms)" \
    '[ $rc -eq 0 ] && [ $((t1 - t0)) -lt 3000 ]'
start_server int || exit 1
kill -INT "$pid"
wait_exit "$pid" 15
check "SIGINT: exit 0" '[ $rc -eq 0 ]'
pid=

# ---- connection cap ----
OCGATE_MAX_CONNECTIONS=5 start_server cap || exit 1
fds=()
for i in 1 2 3 4 5; do
    exec {fd}<>"/dev/tcp/127.0.0.1/$port"
    fds+=("$fd")
done
sleep 0.5
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$base/metadata.json")
check "max_connections=5: with 5 open, a 6th is closed unanswered ($code)" '[ "$code" = 000 ]'
check "...and the refusal is logged" 'grep -q "\"msg\":\"connection refused\"" "$log"'
for fd in "${fds[@]}"; do exec {fd}>&-; done
code=000
for i in $(seq 50); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$base/metadata.json")
    [ "$code" = 200 ] && break
    sleep 0.1
done
check "...after closing them, new connections are served" '[ "$code" = 200 ]'
stop_server
check "...and the server still exits 0" '[ $rc -eq 0 ]'

# ---- TLS ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$W/tls.key" -out "$W/tls.crt" >/dev/null 2>&1
chmod 600 "$W/tls.key"
if OCGATE_TLS_CERT_FILE=$W/tls.crt OCGATE_TLS_KEY_FILE=$W/tls.key start_server tls; then
    out=$(curl -sS -i --max-time 10 --cacert "$W/tls.crt" \
        "https://127.0.0.1:$port/opencharge/metadata.json")
    check "TLS: curl --cacert gets 200 over https, signed" \
        '[[ "$out" == "HTTP/1.1 200"* ]] && grep -qi "^X-OC-Signature: " <<<"$out"'
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
        "http://127.0.0.1:$port/opencharge/metadata.json")
    check "TLS: plain HTTP on the TLS port gets no answer" '[ "$code" = 000 ]'
    stop_server
    check "TLS: exit 0 on SIGTERM" '[ $rc -eq 0 ]'
else
    notok "TLS: server starts with a certificate"
fi
chmod 644 "$W/tls.key"
OCGATE_TLS_CERT_FILE=$W/tls.crt OCGATE_TLS_KEY_FILE=$W/tls.key \
    timeout 20 "$ocgate" serve >/dev/null 2>"$W/tlsbad"; rc=$?
check "TLS key file mode 0644 → serve refuses to start (exit 1)" '[ $rc -eq 1 ]'
check "...naming the file" \
    'grep -qF "$W/tls.key" "$W/tlsbad" && grep -q "group or others" "$W/tlsbad"'
check "...without printing the key" '! grep -q "PRIVATE KEY" "$W/tlsbad"'

# ---- start-up refusals ----
cp "$W/gw.key" "$W/open.key"
chmod 644 "$W/open.key"
OCGATE_PRIVATE_KEY_FILE=$W/open.key timeout 20 "$ocgate" serve >/dev/null 2>"$W/keybad"; rc=$?
check "private key file mode 0644 → serve refuses to start (exit 1)" '[ $rc -eq 1 ]'
check "...naming the file and the reason" \
    'grep -qF "$W/open.key" "$W/keybad" && grep -q "readable by group or others" "$W/keybad"'
check "...never its content" '! grep -qF "$(cat "$W/gw.key")" "$W/keybad"'
sql "CREATE DATABASE fresh" >/dev/null
fresh_url="${OCGATE_DATABASE_URL/\/postgres\?//fresh?}"
OCGATE_DATABASE_URL=$fresh_url timeout 20 "$ocgate" serve >/dev/null 2>"$W/behind"; rc=$?
check "schema behind (fresh database) → serve refuses with exit 1" '[ $rc -eq 1 ]'
check "...saying the schema is behind" 'grep -q "behind" "$W/behind"'
OCGATE_LISTEN=127.0.0.1:notaport timeout 20 "$ocgate" serve >/dev/null 2>"$W/conf"; rc=$?
check "a bad configuration → exit 1 with a message" '[ $rc -eq 1 ] && [ -s "$W/conf" ]'

check "no sanitizer report in any server log" \
    '! grep -qs -e "Sanitizer" -e "runtime error" "$W"/log.* "$W/tlsbad" "$W/keybad" "$W/behind"'

echo "1..$n"
[ $fails -eq 0 ]
