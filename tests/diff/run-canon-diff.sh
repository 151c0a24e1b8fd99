#!/usr/bin/env bash
# Runs the differential canonical-JSON test: Node (gen-canon.js) generates <count> random
# documents with its own JSON.stringify results, and canon-diff checks that ocgate's reader
# and writer produce the same bytes. Node is required: without it this test fails.
# usage: run-canon-diff.sh <node> <canon-diff binary> <count> [<seed>]
# The seed defaults to $OCGATE_DIFF_SEED, else a fixed value, so failures reproduce.
set -euo pipefail

if [ $# -lt 3 ] || [ $# -gt 4 ]; then
    echo "usage: $0 <node> <canon-diff binary> <count> [<seed>]" >&2
    exit 2
fi
node=$1 bin=$2 count=$3
seed=${4:-${OCGATE_DIFF_SEED:-20240615}}

if ! command -v "$node" >/dev/null 2>&1; then
    echo "Bail out! node not found ('$node'): the canonical JSON differential test needs Node.js"
    echo "run-canon-diff.sh: node not found ('$node'); install nodejs" >&2
    exit 1
fi
if [ ! -x "$bin" ]; then
    echo "Bail out! canon-diff binary not found or not executable: $bin"
    exit 1
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "# $("$node" --version) generating $count documents with seed $seed"
if ! "$node" "$here/gen-canon.js" "$seed" "$count" "$tmp/records.jsonl"; then
    echo "Bail out! gen-canon.js failed"
    exit 1
fi
"$bin" "$tmp/records.jsonl" "$count"
