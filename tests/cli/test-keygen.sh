#!/usr/bin/env bash
# `ocgate keygen` and `ocgate version` from the outside: file mode, refusal to overwrite, the
# printed public key checked against an independent derivation (Node's own crypto), and the
# private key never echoed. TAP output.
set -uo pipefail
ocgate=$1
node=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../lib/tap.sh"

out=$("$ocgate" keygen --out "$tmp/gw.key" 2>"$tmp/err"); rc=$?
check "keygen exits 0" '[ $rc -eq 0 ]'
check "keygen prints a 128-hex public key" '[[ "$out" =~ ^[0-9a-f]{128}$ ]]'
check "key file is mode 0600" '[ "$(stat -c %a "$tmp/gw.key")" = 600 ]'
check "key file holds 64 hex digits and a newline" \
    '[ "$(wc -c <"$tmp/gw.key")" -eq 65 ] && grep -Eqx "[0-9a-f]{64}" "$tmp/gw.key"'
secret=$(cat "$tmp/gw.key")
check "private key not on stdout or stderr" \
    '! grep -q "$secret" "$tmp/err" && [[ "$out" != *"$secret"* ]]'
derived=$("$node" -e '
  const c = require("crypto");
  const e = c.createECDH("secp256k1");
  e.setPrivateKey(Buffer.from(process.argv[1], "hex"));
  process.stdout.write(e.getPublicKey("hex", "uncompressed").slice(2));' "$secret")
check "printed public key equals Node's derivation from the file" '[ "$derived" = "$out" ]'

before=$(cat "$tmp/gw.key")
"$ocgate" keygen --out "$tmp/gw.key" >"$tmp/out2" 2>"$tmp/err2"; rc=$?
check "keygen refuses to overwrite (exit 1)" '[ $rc -eq 1 ]'
check "existing key unchanged" '[ "$(cat "$tmp/gw.key")" = "$before" ]'
check "refusal says why" 'grep -q "already exists" "$tmp/err2"'

"$ocgate" keygen >/dev/null 2>&1; rc=$?
check "keygen without --out is a usage error (exit 2)" '[ $rc -eq 2 ]'
"$ocgate" keygen --out "$tmp/no/such/dir/k" >/dev/null 2>"$tmp/err3"; rc=$?
check "keygen into a missing directory fails (exit 1)" '[ $rc -eq 1 ] && [ -s "$tmp/err3" ]'

"$ocgate" keygen --out "$tmp/a.key" >"$tmp/a.pub"
"$ocgate" keygen --out "$tmp/b.key" >"$tmp/b.pub"
check "two keys differ" '! cmp -s "$tmp/a.key" "$tmp/b.key" && ! cmp -s "$tmp/a.pub" "$tmp/b.pub"'

v=$("$ocgate" version); rc=$?
check "version prints 'ocgate <semver>'" '[ $rc -eq 0 ] && [[ "$v" =~ ^ocgate\ [0-9]+\.[0-9]+\.[0-9]+ ]]'
"$ocgate" frobnicate >/dev/null 2>&1; rc=$?
check "unknown command is a usage error (exit 2)" '[ $rc -eq 2 ]'

echo "1..$n"
[ $fails -eq 0 ]
