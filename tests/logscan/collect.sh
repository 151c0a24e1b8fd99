# shellcheck shell=bash
# Sourced by integration tests that start ocgate: hands their server logs and the secrets they
# made to the whole-suite log scan (tests/logscan/logscan.py), when tests/run set it up.
#   logscan_collect NAME DIR   (call from the test's EXIT trap, before DIR is removed)
# Copies every log-like file in DIR (*.log, log.*, out.*, *.out, *.err) into
# $OCG_TEST_LOG_DIR/NAME.<pid>/ and appends to $OCG_TEST_SECRETS_FILE the contents of every
# private key file in DIR (*.key holding 64 hex digits), one per line. Does nothing when
# OCG_TEST_LOG_DIR is unset, so the tests still run alone.
logscan_collect() {
    local name=$1 dir=$2 dest f
    [ -n "${OCG_TEST_LOG_DIR:-}" ] && [ -d "$OCG_TEST_LOG_DIR" ] && [ -d "$dir" ] || return 0
    dest=$OCG_TEST_LOG_DIR/$name.$$
    mkdir -p "$dest" || return 0
    for f in "$dir"/*.log "$dir"/log.* "$dir"/out.* "$dir"/*.out "$dir"/*.err; do
        [ -f "$f" ] && cp -p "$f" "$dest/" 2>/dev/null
    done
    if [ -n "${OCG_TEST_SECRETS_FILE:-}" ]; then
        for f in "$dir"/*.key "$dir"/*.key.old; do
            [ -f "$f" ] || continue
            grep -Eoxi '[0-9a-f]{64}' "$f" >>"$OCG_TEST_SECRETS_FILE" 2>/dev/null
        done
    fi
    return 0
}
