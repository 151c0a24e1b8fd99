#!/usr/bin/env bash
# Keeps the configuration's code, docs and example file from drifting apart: the key table in
# docs/configuration.md must be exactly `ocgate config keys --markdown`, every key must appear
# in deploy/ocgate.conf.example, the example must pass `ocgate config check`, and a bad file
# must fail naming the key. TAP output. Args: <ocgate binary> <repo root>.
set -uo pipefail
ocgate=$1
root=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../lib/tap.sh"
# A clean environment: stray OCGATE_* variables from the caller (an integration run's
# OCGATE_DATABASE_URL, say) would be unknown keys or overrides here.
run() { env -i PATH="$PATH" "$ocgate" "$@"; }

docs=$root/docs/configuration.md
example=$root/deploy/ocgate.conf.example

# --- docs/configuration.md == `ocgate config keys --markdown` -----------------------------
run config keys --markdown >"$tmp/keys.md" 2>"$tmp/err"; rc=$?
check "config keys --markdown exits 0" '[ $rc -eq 0 ] && [ -s "$tmp/keys.md" ]'
begins=$(grep -cx '<!-- BEGIN KEYS -->' "$docs")
ends=$(grep -cx '<!-- END KEYS -->' "$docs")
check "docs/configuration.md has one BEGIN KEYS and one END KEYS marker" \
    '[ "$begins" = 1 ] && [ "$ends" = 1 ]'
sed -n '/^<!-- BEGIN KEYS -->$/,/^<!-- END KEYS -->$/p' "$docs" | sed '1d;$d' >"$tmp/docs.md"
if diff -u "$tmp/docs.md" "$tmp/keys.md" >"$tmp/diff"; then
    ok "docs key table equals 'ocgate config keys --markdown'"
else
    notok "docs key table equals 'ocgate config keys --markdown' (regenerate it: diff below)"
    sed 's/^/# /' "$tmp/diff"
fi

# --- every key is in the example ----------------------------------------------------------
run config keys >"$tmp/keys.txt" 2>"$tmp/err"; rc=$?
check "config keys exits 0" '[ $rc -eq 0 ]'
keys=$(awk 'NR > 1 { print $1 }' "$tmp/keys.txt")
count=$(printf '%s\n' "$keys" | grep -c .)
mdcount=$(grep -c '^| `' "$tmp/keys.md")
check "plain and Markdown listings have the same $count keys" \
    '[ "$count" -gt 0 ] && [ "$count" = "$mdcount" ]'
for key in $keys; do
    check "example mentions $key" "grep -Eq '^(# )?$key = ' \"\$example\""
done

# --- the example loads; bad files fail naming the key --------------------------------------
run config check --file "$example" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "config check --file deploy/ocgate.conf.example exits 0" '[ $rc -eq 0 ]'
check "and prints 'config ok'" '[ "$(cat "$tmp/out")" = "config ok" ]'
env -i PATH="$PATH" OCGATE_CONFIG="$example" "$ocgate" config check >"$tmp/out" 2>"$tmp/err"
rc=$?
check "config check takes the file from OCGATE_CONFIG" \
    '[ $rc -eq 0 ] && [ "$(cat "$tmp/out")" = "config ok" ]'

{ cat "$example"; echo "frobnicate_level = 3"; } >"$tmp/unknown.conf"
run config check --file "$tmp/unknown.conf" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "a file with an unknown key exits 1" '[ $rc -eq 1 ]'
check "and the message names the key and the line" \
    'grep -q "frobnicate_level" "$tmp/err" && grep -q "unknown.conf:[0-9]" "$tmp/err"'
check "and nothing on stdout" '[ ! -s "$tmp/out" ]'

env -i PATH="$PATH" OCGATE_BODYLIMIT=1K "$ocgate" config check --file "$example" \
    >"$tmp/out" 2>"$tmp/err"; rc=$?
check "an unknown OCGATE_ variable exits 1 naming it" \
    '[ $rc -eq 1 ] && grep -q OCGATE_BODYLIMIT "$tmp/err"'

secret=hunter2s3cret
env -i PATH="$PATH" "OCGATE_DATABASE_URL=postgresql://ocgate:$secret@db.example/ocgate" \
    "$ocgate" config check --file "$example" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "a password in OCGATE_DATABASE_URL exits 1" '[ $rc -eq 1 ]'
check "and says to use database_password_file" 'grep -q database_password_file "$tmp/err"'
check "without echoing the password or the URL" \
    '! grep -q "$secret" "$tmp/err" "$tmp/out" && ! grep -q "db.example" "$tmp/err"'

run config check --file "$tmp/does-not-exist.conf" >/dev/null 2>"$tmp/err"; rc=$?
check "a missing config file exits 1 naming it" \
    '[ $rc -eq 1 ] && grep -q "does-not-exist.conf" "$tmp/err"'

run config check --file >/dev/null 2>&1; rc=$?
check "--file without a path is a usage error (exit 2)" '[ $rc -eq 2 ]'
run config check extra >/dev/null 2>&1; rc=$?
check "stray arguments are a usage error (exit 2)" '[ $rc -eq 2 ]'
run config frobnicate >/dev/null 2>&1; rc=$?
check "unknown config subcommand is a usage error (exit 2)" '[ $rc -eq 2 ]'
run config >/dev/null 2>&1; rc=$?
check "config without a subcommand is a usage error (exit 2)" '[ $rc -eq 2 ]'

echo "1..$n"
[ $fails -eq 0 ]
