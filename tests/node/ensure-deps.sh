#!/usr/bin/env bash
# Installs tests/node's pinned dependencies (package-lock.json) with `npm ci`, but only when
# node_modules is missing or older than the lockfile, so runs after the first work offline.
#   tests/node/ensure-deps.sh                 install if needed
#   tests/node/ensure-deps.sh -- CMD ARGS...  install if needed, then exec CMD (lets meson run
#                                             "deps, then test" as one test command)
# npm's chatter goes to stderr: stdout stays clean for the TAP of a command run after it.
# Concurrent callers (meson runs tests in parallel) are serialised with flock on the lockfile,
# so one installs and the others find node_modules ready.
set -euo pipefail

dir=$(cd "$(dirname "$0")" && pwd)
lock=$dir/package-lock.json
# npm ci writes this hidden lockfile last; its mtime says when node_modules was completed.
stamp=$dir/node_modules/.package-lock.json

if [ $# -gt 0 ]; then
    if [ "$1" != "--" ]; then
        echo "usage: $0 [-- command args...]" >&2
        exit 2
    fi
    shift
fi

needs_install() {
    [ ! -f "$stamp" ] || [ "$lock" -nt "$stamp" ]
}

if needs_install; then
    exec 9<"$lock"
    # Bounded: an install that hangs (no registry) must not hold every other test forever.
    if ! flock -w 300 9; then
        echo "ensure-deps: timed out waiting for another npm ci" >&2
        exit 1
    fi
    if needs_install; then   # someone else may have installed while we waited
        echo "ensure-deps: npm ci in $dir" >&2
        timeout 600 npm ci --prefix "$dir" --no-audit --no-fund >&2 || {
            echo "ensure-deps: npm ci failed (is the npm registry reachable?)" >&2
            exit 1
        }
        touch "$stamp"
    fi
    exec 9<&-
fi

if [ $# -gt 0 ]; then
    exec "$@"
fi
