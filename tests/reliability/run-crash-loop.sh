#!/usr/bin/env bash
# Crash consistency at full scale (tests/reliability/README.md): crash-loop.js with more kills,
# more concurrency and longer runs between kills than the meson test uses.
#   tests/reliability/run-crash-loop.sh <ocgate binary> [kills (default 100)] [concurrency (16)]
# Prints the scenario's TAP; exits non-zero if any check failed.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 <ocgate binary> [kills] [concurrency]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
export OCG_TEST_KILLS=${2:-100}
export OCG_TEST_CONCURRENCY=${3:-16}
export OCG_TEST_UP_MIN_MS=${OCG_TEST_UP_MIN_MS:-200}
export OCG_TEST_UP_MAX_MS=${OCG_TEST_UP_MAX_MS:-3000}
export OCG_SCENARIO_TIMEOUT=${OCG_SCENARIO_TIMEOUT:-1800}
exec bash "$here/../integration/run-node.sh" "$1" "$here/crash-loop.js"
