#!/usr/bin/env bash
# Merchant outages at scale (tests/reliability/README.md): merchant-outage.js, a baseline run
# with 10 healthy merchants and an outage run with 3 of 10 down, black-holed or flapping,
# OCG_TEST_DELIVERIES (1000) notifications each. Prints TAP, the healthy merchants' p99
# lag in both runs and their ratio ("# RESULT ..."), and the misbehaving merchants' end states.
#   tests/reliability/run-merchant-outage.sh <ocgate binary>
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 <ocgate binary>" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
export OCG_SCENARIO_TIMEOUT=${OCG_SCENARIO_TIMEOUT:-1800}
exec bash "$here/../integration/run-node.sh" "$1" "$here/merchant-outage.js"
