#!/usr/bin/env bash
# deploy/ocgate.service and ocgate-migrate.service: `systemd-analyze verify` against the built
# binary (and a unit naming a missing binary must fail it), the hardening the unit promises,
# and the readiness protocol behind Type=notify: `ocgate serve` sends READY=1 to
# $NOTIFY_SOCKET only after the schema check passed and the listener is bound, and never when
# the schema is missing. TAP output; every wait is bounded.
#   test-systemd.sh <ocgate binary>
set -uo pipefail
ocgate=$(readlink -f "$1")
root=$(cd "$(dirname "$0")/../.." && pwd)
W=$(mktemp -d /tmp/ocgate-systemd.XXXXXX)
pid=
# pgtest_start sets its own EXIT trap, so this one is set again after it and stops both.
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$W"; pgtest_stop 2>/dev/null; }
trap cleanup EXIT
. "$root/tests/lib/tap.sh"

units=(ocgate.service ocgate-migrate.service)
for u in "${units[@]}"; do
    sed "s#/usr/local/bin/ocgate#$ocgate#g" "$root/deploy/$u" >"$W/$u"
done
if command -v systemd-analyze >/dev/null; then
    check "systemd-analyze verify accepts both units with the built binary" \
        'SYSTEMD_LOG_LEVEL=warning systemd-analyze verify "$W/ocgate.service" "$W/ocgate-migrate.service" >"$W/verify" 2>&1 || { sed "s/^/# /" "$W/verify"; false; }'
    mkdir "$W/broken"
    sed "s#^ExecStart=.*#ExecStart=$W/no-such-binary serve#" "$W/ocgate.service" >"$W/broken/ocgate.service"
    check "systemd-analyze verify refuses the unit when the binary is missing" \
        '! systemd-analyze verify "$W/broken/ocgate.service" >/dev/null 2>&1'
    if systemd-analyze security --help 2>/dev/null | grep -q -- --offline; then
        systemd-analyze security --offline=yes "$W/ocgate.service" >"$W/security" 2>&1
        score=$(sed -n 's/.*Overall exposure level for ocgate.service: \([0-9.]*\).*/\1/p' "$W/security")
        check "systemd-analyze security rates the unit's exposure at most 2.0 (got ${score:-none})" \
            '[ -n "$score" ] && awk -v s="$score" "BEGIN { exit !(s <= 2.0) }"'
    else
        skip "systemd-analyze security" "this systemd has no --offline"
    fi
else
    skip "systemd-analyze verify" "systemd-analyze is not installed (package systemd)"
    skip "systemd-analyze verify refuses a missing binary" "systemd-analyze is not installed"
    skip "systemd-analyze security" "systemd-analyze is not installed"
fi

u=$root/deploy/ocgate.service
for d in 'Type=notify' 'NoNewPrivileges=yes' 'ProtectSystem=strict' 'PrivateTmp=yes' \
         'DynamicUser=yes' 'User=ocgate' 'CapabilityBoundingSet=$' \
         'LoadCredential=gateway.key:/etc/ocgate/gateway.key' \
         'Environment=OCGATE_PRIVATE_KEY_FILE=%d/gateway.key'; do
    check "ocgate.service has $d" 'grep -q "^$d" "$u"'
done
check "ocgate.service passes no secret on the command line" \
    '! grep -Ei "^ExecStart=.*(key|password|secret)" "$u"'
# The paths the unit names are where `meson install` (default prefix) puts things.
build=$(dirname "$ocgate")
if [ -f "$build/build.ninja" ] && [ "$(meson introspect --buildoptions "$build" 2>/dev/null |
        python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])' 2>/dev/null)" = /usr/local ]; then
    DESTDIR=$W/root meson install -C "$build" --no-rebuild --quiet >"$W/install" 2>&1
    exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$u")
    doc=$(sed -n 's/^Documentation=file:\([^ ]*\).*/\1/p' "$u")
    check "meson install puts the binary at the unit's ExecStart ($exe)" '[ -x "$W/root$exe" ]'
    check "... and the documentation at its Documentation= ($doc)" '[ -f "$W/root$doc" ]'
else
    skip "meson install paths" "$build is not a meson build directory with prefix /usr/local"
    skip "meson install documentation path" "the same"
fi

"$ocgate" config keys >"$W/keys"
check "every OCGATE_* variable the units set is a configuration key" \
    '(for v in $(grep -ho "OCGATE_[A-Z_]*=" "$root"/deploy/*.service | tr -d = | sort -u); do grep -qw "$v" "$W/keys" || { echo "# unknown: $v"; exit 1; }; done)'

# ---- readiness: READY=1 after the schema check and bind ----
. "$root/tests/pg/pgtest.sh"
if ! pgtest_start; then
    echo "Bail out! cannot start PostgreSQL"
    exit 1
fi
trap cleanup EXIT
"$ocgate" keygen --out "$W/gw.key" >/dev/null
export OCGATE_OCID=300 OCGATE_PRIVATE_KEY_FILE=$W/gw.key OCGATE_CURRENCIES=USD
export OCGATE_PUBLIC_URL=http://127.0.0.1/opencharge OCGATE_LISTEN=127.0.0.1:0 OCGATE_THREADS=1
unset OCGATE_CONFIG OCGATE_TLS_CERT_FILE OCGATE_TLS_KEY_FILE
# listen SOCKET SECONDS: prints each datagram received on SOCKET (one line per field) until
# SECONDS pass; the socket exists when "bound" appears in $W/listen.<name>
listen() {
    python3 - "$1" "$2" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
end = time.time() + float(sys.argv[2])
while time.time() < end:
    s.settimeout(max(0.05, end - time.time()))
    try:
        data = s.recv(4096)
    except socket.timeout:
        break
    print("datagram " + data.decode().replace("\n", " "), flush=True)
PY
}
wait_line() { # file pattern seconds
    local i
    for i in $(seq 1 $(($3 * 10))); do grep -Eq "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}

# Without the schema, serve must refuse to start and never say READY.
listen "$W/notify0" 5 >"$W/listen0"
lpid=$!
wait_line "$W/listen0" bound 5
NOTIFY_SOCKET=$W/notify0 timeout 20 "$ocgate" serve >"$W/serve0.out" 2>"$W/serve0.err"
rc0=$?
wait "$lpid"
check "serve on an unmigrated database exits non-zero" '[ $rc0 -ne 0 ] && [ $rc0 -ne 124 ]'
check "... and sends no READY=1" '! grep -q READY=1 "$W/listen0"'

"$ocgate" migrate >/dev/null || { echo "Bail out! migrate failed"; exit 1; }
listen "$W/notify1" 20 >"$W/listen1"
lpid=$!
wait_line "$W/listen1" bound 5
NOTIFY_SOCKET=$W/notify1 "$ocgate" serve >"$W/serve1.out" 2>"$W/serve1.err" &
pid=$!
check "after migrating, serve sends READY=1 to NOTIFY_SOCKET" 'wait_line "$W/listen1" "READY=1" 15'
port=$(sed -n 's/.*"msg":"listening","address":"127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$W/serve1.err")
check "the listener was bound before READY=1 (logged, and answers /healthz)" \
    '[ -n "$port" ] && curl -sf --max-time 5 "http://127.0.0.1:$port/healthz" >/dev/null'
kill "$pid"; wait "$pid" 2>/dev/null; pid=
kill "$lpid" 2>/dev/null; wait "$lpid" 2>/dev/null

# An abstract socket name ("@...") is what systemd may pass too.
name="@ocgate-test-$$-$RANDOM"
python3 - "$name" >"$W/listen2" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + sys.argv[1][1:])
print("bound", flush=True)
s.settimeout(15)
try:
    print("datagram " + s.recv(4096).decode().replace("\n", " "), flush=True)
except socket.timeout:
    pass
PY
lpid=$!
wait_line "$W/listen2" bound 5
NOTIFY_SOCKET=$name "$ocgate" serve >"$W/serve2.out" 2>"$W/serve2.err" &
pid=$!
check "READY=1 also reaches an abstract NOTIFY_SOCKET" 'wait_line "$W/listen2" "READY=1" 15'
kill "$pid"; wait "$pid" 2>/dev/null; pid=
kill "$lpid" 2>/dev/null; wait "$lpid" 2>/dev/null

echo "1..$n"
[ $fails -eq 0 ]
