#!/usr/bin/env bash
# Runs ocgate for real on this machine: installs what is missing, builds, starts a private
# PostgreSQL, migrates, makes gateway/provider/payment-app/merchant keys, registers the demo
# participants, starts the gateway and a demo merchant, and pushes one payment end to end.
# Keeps running until Ctrl-C, then stops what it started; the data stays in the folder for
# the next run, which reuses it.
#   deploy/quickstart.sh [--once] [--dir DIR]
# --once stops after the demo payment (used by the test). DIR (default
# /var/lib/ocgate-quickstart) must be reachable by the unprivileged postgres user, which is
# why it is not under a 0700 home folder.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=/var/lib/ocgate-quickstart
once=0
while [ $# -gt 0 ]; do
    case "$1" in
        --once) once=1 ;;
        --dir) dir=$2; shift ;;
        *) echo "usage: deploy/quickstart.sh [--once] [--dir DIR]" >&2; exit 2 ;;
    esac
    shift
done
gateway_port=${QS_GATEWAY_PORT:-8080}
merchant_port=${QS_MERCHANT_PORT:-8501}
pg_port=${QS_PG_PORT:-5499}
pgbin=/usr/lib/postgresql/15/bin
say() { printf 'quickstart: %s\n' "$*"; }

[ "$(id -u)" -eq 0 ] || { echo "quickstart: run as root (it installs packages)" >&2; exit 1; }
# Not the tools that only check deploy/ files (a Prometheus server among them).
OCG_CHECK_TOOLS=0 bash "$root/.ci/install-deps"
# QS_BUILD_DIR lets the test reuse the suite's own build instead of making another.
build=${QS_BUILD_DIR:-$root/build}
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" --buildtype=debugoptimized >/dev/null
fi
ninja -C "$build" ocgate >/dev/null
ocgate="$build/ocgate"
bash "$root/tests/node/ensure-deps.sh"

mkdir -p "$dir/keys" "$dir/run"
chmod 0755 "$dir" "$dir/run"
chmod 0700 "$dir/keys"
chown postgres: "$dir/run"
as_pg() { runuser -u postgres -- "$@"; }

pids=()
cleanup() {
    set +e
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    as_pg "$pgbin/pg_ctl" -D "$dir/pg" -m fast stop >/dev/null 2>&1
    say "stopped; data kept in $dir"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

if [ ! -f "$dir/pg/PG_VERSION" ]; then
    say "creating a private PostgreSQL cluster in $dir/pg"
    install -d -o postgres -m 0700 "$dir/pg"
    as_pg "$pgbin/initdb" -D "$dir/pg" -U ocgate --auth=trust --encoding=UTF8 \
        --locale=C.UTF-8 >/dev/null
fi
as_pg "$pgbin/pg_ctl" -D "$dir/pg" -l "$dir/run/postgres.log" -w \
    -o "-c listen_addresses='' -k $dir/run -p $pg_port" start >/dev/null
export PGHOST=$dir/run PGPORT=$pg_port PGUSER=ocgate
psql -XAtq -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'ocgate'" | grep -q 1 ||
    psql -XAtq -d postgres -c "CREATE DATABASE ocgate" >/dev/null
export OCGATE_DATABASE_URL="postgresql:///ocgate?host=$dir/run&port=$pg_port&user=ocgate"
"$ocgate" migrate

for k in gateway provider app merchant; do
    [ -f "$dir/keys/$k.key" ] || "$ocgate" keygen --out "$dir/keys/$k.key" >"$dir/keys/$k.pub"
done
register() { # ocid name roles key [endpoint]
    "$ocgate" participant show --ocid "$1" >/dev/null 2>&1 && return 0
    "$ocgate" participant add --ocid "$1" --name "$2" --roles "$3" \
        --public-key "$(cat "$dir/keys/$4.pub")" ${5:+--endpoint "$5"} >/dev/null
    say "registered $2 (OCID $1, $3)"
}
register 100 "Demo settlement provider" settlement_provider provider
register 200 "Demo payment app" payment_app app
register 500 "Demo merchant" merchant merchant "http://127.0.0.1:$merchant_port"
"$ocgate" participant update --ocid 500 --endpoint "http://127.0.0.1:$merchant_port" >/dev/null

export OCGATE_OCID=300 OCGATE_PRIVATE_KEY_FILE=$dir/keys/gateway.key \
    OCGATE_PUBLIC_URL=http://127.0.0.1:$gateway_port/opencharge \
    OCGATE_LISTEN=127.0.0.1:$gateway_port OCGATE_CURRENCIES=USD,UGX \
    OCGATE_NAME="ocgate quick start" OCGATE_OUTBOUND_ALLOW_LOOPBACK=true
log_start=$(stat -c %s "$dir/ocgate.log" 2>/dev/null || echo 0)
"$ocgate" serve >>"$dir/ocgate.log" 2>&1 &
gateway=$!
pids+=($gateway)
say "gateway starting on http://127.0.0.1:$gateway_port/opencharge (log: $dir/ocgate.log)"
# Until it says it listens (this run's part of the log only), or give its reason if it died
# (a port in use, a bad key file...).
for _ in $(seq 1 300); do
    tail -c +$((log_start + 1)) "$dir/ocgate.log" | grep -q '"msg":"listening"' && break
    if ! kill -0 "$gateway" 2>/dev/null; then
        say "the gateway did not start:"
        tail -c +$((log_start + 1)) "$dir/ocgate.log" | tail -n 5 >&2
        exit 1
    fi
    sleep 0.2
done

export QS_GATEWAY_PORT=$gateway_port QS_MERCHANT_PORT=$merchant_port QS_BASE_PATH=/opencharge \
    QS_GATEWAY_OCID=300 QS_PROVIDER_OCID=100 QS_APP_OCID=200 QS_MERCHANT_OCID=500 \
    QS_PROVIDER_KEY=$dir/keys/provider.key QS_APP_KEY=$dir/keys/app.key \
    QS_RESULT_FILE=$dir/last-demo-payment
rm -f "$QS_RESULT_FILE"
node "$root/deploy/demo/demo.mjs" "$([ $once = 1 ] && echo --once || echo --serve)" &
demo=$!
pids+=($demo)
# Wait for the demo payment to finish (or the demo to fail).
while kill -0 "$demo" 2>/dev/null && [ ! -s "$QS_RESULT_FILE" ]; do sleep 0.2; done
if [ ! -s "$QS_RESULT_FILE" ]; then
    wait "$demo" || true
    say "the demo payment FAILED; see the messages above and $dir/ocgate.log"
    exit 1
fi
txid=$(cat "$QS_RESULT_FILE")
# The merchant has answered; give the worker a moment (bounded) to record that answer, so
# the operator view shows how the notification ended rather than an attempt in flight.
for _ in $(seq 1 50); do
    "$ocgate" payment show "$txid" --json 2>/dev/null |
        grep -Eq '"state": ?"(delivered|rejected|dead)"' && break
    sleep 0.2
done
say "the payment as an operator sees it:"
"$ocgate" payment show "$txid"
if [ $once = 1 ]; then
    wait "$demo"
    exit 0
fi
cat <<EOT
quickstart: running; press Ctrl-C to stop. Meanwhile, in another shell:
  export OCGATE_DATABASE_URL='$OCGATE_DATABASE_URL'
  $ocgate payment list; $ocgate balance; $ocgate delivery list
  # pay another payment as the demo provider and app (the demo merchant receives it):
  $ocgate sim provider --gateway $OCGATE_PUBLIC_URL --gateway-ocid 300 \\
      --ocid 100 --key $dir/keys/provider.key --create --app-ocid 200 \\
      --app-key $dir/keys/app.key --merchant 500 --amount 9.99 --currency USD
  # or send a bad one on purpose: add --bad stale (or signature, amount, replay...)
EOT
wait "$demo"
