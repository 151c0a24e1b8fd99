# Shared by bench/run.sh and bench/test-loadgen.sh: keys, participants and one gateway for a
# benchmark run. Needs OCGATE_DATABASE_URL (a migrated database) and $ocgate (the binary).
#   bench_free_port                        → a free TCP port on 127.0.0.1 in $port
#   bench_participants DIR RECV_PORT N     → keys in DIR, provider 100, app 200, merchants
#                                            501..500+N notified at http://127.0.0.1:RECV_PORT/m/<ocid>
#   bench_gateway_start DIR PORT LOG       → ocgate serve in the background ($gw_pid)
#   bench_gateway_stop                     → SIGTERM, bounded wait, then SIGKILL

. "$(dirname "${BASH_SOURCE[0]}")/../tests/lib/free-port.sh"

bench_free_port() {
    port=$(ocg_free_port)
}

bench_participants() {
    local dir=$1 recv_port=$2 n=$3 k m
    mkdir -p "$dir/keys"
    chmod 0700 "$dir/keys"
    for k in gateway provider app; do
        [ -f "$dir/keys/$k.key" ] ||
            "$ocgate" keygen --out "$dir/keys/$k.key" >"$dir/keys/$k.pub" || return 1
    done
    # The merchants' own keys never sign anything here: the receiver only verifies.
    "$ocgate" keygen --out "$dir/keys/merchant.key.$$" >"$dir/keys/merchant.pub" || return 1
    rm -f "$dir/keys/merchant.key.$$"
    "$ocgate" participant add --ocid 100 --name "bench provider" --roles settlement_provider \
        --public-key "$(cat "$dir/keys/provider.pub")" >/dev/null || return 1
    "$ocgate" participant add --ocid 200 --name "bench app" --roles payment_app \
        --public-key "$(cat "$dir/keys/app.pub")" >/dev/null || return 1
    merchants=
    for m in $(seq 501 $((500 + n))); do
        "$ocgate" participant add --ocid "$m" --name "bench merchant $m" --roles merchant \
            --public-key "$(cat "$dir/keys/merchant.pub")" \
            --endpoint "http://127.0.0.1:$recv_port/m/$m" >/dev/null || return 1
        merchants=${merchants:+$merchants,}$m
    done
}

bench_gateway_start() {
    local dir=$1 gw_port=$2 log=$3
    OCGATE_OCID=300 OCGATE_PRIVATE_KEY_FILE=$dir/keys/gateway.key OCGATE_CURRENCIES=USD \
        OCGATE_PUBLIC_URL=http://127.0.0.1:$gw_port/opencharge \
        OCGATE_LISTEN=127.0.0.1:$gw_port OCGATE_OUTBOUND_ALLOW_LOOPBACK=true \
        "$ocgate" serve >"$log" 2>&1 &
    gw_pid=$!
    for _ in $(seq 300); do
        grep -qs '"msg":"listening"' "$log" && return 0
        kill -0 "$gw_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "ocgate did not start; last lines of $log:" >&2
    tail -n 20 "$log" >&2
    return 1
}

bench_gateway_stop() {
    [ -n "${gw_pid:-}" ] || return 0
    kill -TERM "$gw_pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$gw_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$gw_pid" 2>/dev/null || true
    wait "$gw_pid" 2>/dev/null || true
    gw_pid=
}
