#!/usr/bin/env bash
# shellcheck disable=SC2317  # kill_gateways and cleanup only run from the EXIT trap
# Runs one Node integration scenario against a real ocgate and a throwaway PostgreSQL:
#   tests/integration/run-node.sh <ocgate binary> <scenario.js> [scenario args...]
# Prepares: PostgreSQL (tests/pg/pgtest.sh), the Node dependencies, the migrated schema, a
# fresh gateway key, a free port and the gateway's configuration as OCGATE_* variables; then
# runs `node scenario.js`, which starts and stops ocgate itself (tests/node/harness.js) and
# prints TAP. Exits with the scenario's status. On any exit, kills every ocgate the scenario
# started (pids in $OCG_TEST_DIR/pids) and stops PostgreSQL.
# Environment: NODE (default: node), OCG_SCENARIO_TIMEOUT seconds (default 600),
# OCG_KEEP_TMP=1 keeps the temp dir (logs, key) for inspection.
set -uo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 <ocgate binary> <scenario.js> [args...]" >&2
    exit 2
fi
ocgate=$(readlink -f "$1")
scenario=$(readlink -f "$2")
shift 2
node=${NODE:-node}
here=$(cd "$(dirname "$0")/.." && pwd)   # tests/

bail() { echo "Bail out! $*"; exit 1; }

[ -x "$ocgate" ] || bail "$ocgate is not an executable"
[ -f "$scenario" ] || bail "no scenario $scenario"

# shellcheck source=SCRIPTDIR/../pg/pgtest.sh
. "$here/pg/pgtest.sh"
# shellcheck source=SCRIPTDIR/../logscan/collect.sh
. "$here/logscan/collect.sh"
pgtest_start || bail "cannot start PostgreSQL"

dir=$(mktemp -d /tmp/ocgate-it.XXXXXX)
chmod 700 "$dir"
touch "$dir/pids"

# True if pid is still one this run started: its environment carries our unique temp dir
# (a recycled pid belongs to someone else and is left alone).
ours() {
    tr '\0' '\n' <"/proc/$1/environ" 2>/dev/null | grep -qxF "OCG_TEST_DIR=$dir"
}

# Running, as opposed to gone or a zombie waiting for init to reap it.
running() {
    [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# Kills only processes this run started: pids the harness recorded, still ours.
kill_gateways() {
    local pid alive=()
    while read -r pid; do
        [[ "$pid" =~ ^[0-9]+$ ]] || continue
        if running "$pid" && ours "$pid"; then
            kill -TERM "$pid" 2>/dev/null && alive+=("$pid")
        fi
    done <"$dir/pids"
    [ ${#alive[@]} -gt 0 ] || return 0
    for _ in $(seq 50); do   # at most 5 s for a clean shutdown, then SIGKILL
        local left=()
        for pid in "${alive[@]}"; do running "$pid" && left+=("$pid"); done
        [ ${#left[@]} -gt 0 ] || return 0
        alive=("${left[@]}")
        sleep 0.1
    done
    for pid in "${alive[@]}"; do
        echo "# ocgate pid $pid ignored SIGTERM for 5 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null
    done
}

cleanup() {
    kill_gateways
    # Gateway logs and keys for the whole-suite scan (tests/run sets OCG_TEST_LOG_DIR).
    logscan_collect "$(basename "$scenario" .js)" "$dir"
    if [ "${OCG_KEEP_TMP:-0}" = 1 ]; then
        echo "# kept $dir" >&2
    else
        rm -rf "$dir"
    fi
    pgtest_stop
}
trap cleanup EXIT   # replaces pgtest_start's trap; cleanup calls pgtest_stop itself

# The gateway's port (pgtest's PostgreSQL listens on a Unix socket only, so it never collides).
. "$here/lib/free-port.sh"
port=$(ocg_free_port) || bail "no free port found after 50 tries"

# Room for tests that hold many connections (hostile.js: 10,000 idle ones, on both ends):
# raise the soft descriptor limit as far as the hard limit allows.
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -ge 65536 ]; then ulimit -n 65536; else ulimit -n "$hard"; fi

"$here/node/ensure-deps.sh" || bail "cannot install the Node test dependencies (tests/node)"

"$ocgate" migrate >"$dir/migrate.log" 2>&1 || {
    sed 's/^/# /' "$dir/migrate.log"
    bail "ocgate migrate failed"
}

"$ocgate" keygen --out "$dir/gateway.key" >"$dir/gateway.pub" 2>"$dir/keygen.err" || {
    sed 's/^/# /' "$dir/keygen.err"
    bail "ocgate keygen failed"
}
pubkey=$(tr -d '\n' <"$dir/gateway.pub")
[[ "$pubkey" =~ ^[0-9a-f]{128}$ ]] || bail "ocgate keygen printed no 128-hex public key"
if [ -n "${OCG_TEST_SECRETS_FILE:-}" ]; then   # for the whole-suite log scan
    cat "$dir/gateway.key" >>"$OCG_TEST_SECRETS_FILE"
fi

# The gateway's configuration, inherited by every `ocgate serve` the scenario starts.
export OCGATE_OCID=300
export OCGATE_PRIVATE_KEY_FILE=$dir/gateway.key
export OCGATE_PUBLIC_URL=http://127.0.0.1:$port/opencharge
export OCGATE_LISTEN=127.0.0.1:$port
export OCGATE_CURRENCIES=USD,UGX,USDT
export OCGATE_THREADS=2
export OCGATE_BASE_PATH=/opencharge

# What the scenario needs to know.
export OCG_TEST_BIN=$ocgate
export OCG_TEST_DIR=$dir
export GATEWAY_PORT=$port
export GATEWAY_OCID=$OCGATE_OCID
export GATEWAY_PUBKEY=$pubkey
export GATEWAY_BASE=$OCGATE_BASE_PATH

# Bounded like every other wait; SIGTERM lets the scenario's exit handler kill its gateways,
# and kill_gateways catches whatever is left.
timeout --kill-after=10 "${OCG_SCENARIO_TIMEOUT:-600}" "$node" "$scenario" "$@"
rc=$?
if [ $rc -eq 124 ]; then
    echo "# scenario timed out after ${OCG_SCENARIO_TIMEOUT:-600} s"
fi
if [ $rc -ne 0 ]; then
    for log in "$dir"/gateway-*.log; do
        [ -f "$log" ] || continue
        echo "# --- last lines of $(basename "$log") ---"
        tail -n 40 "$log" | sed 's/^/# /'
    done
fi
exit $rc
