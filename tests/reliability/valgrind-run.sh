#!/usr/bin/env bash
# Runs Node integration scenarios with every ocgate process (serve, and the CLI calls the
# scenario makes) under valgrind memcheck: any invalid access, use of uninitialised memory or
# definite leak makes ocgate exit 99, which fails the scenario (the harness requires exit 0
# after SIGTERM; CLI calls check their status). Use a plain (not ASan) build.
#   tests/reliability/valgrind-run.sh <ocgate binary> <scenario.js>...
# Valgrind's logs go to $OCG_VALGRIND_LOGS (default: a new /tmp/ocgate-valgrind.* folder), one per process.
set -uo pipefail
[ $# -ge 2 ] || { echo "usage: $0 <ocgate binary> <scenario.js>..." >&2; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
bin=$(readlink -f "$1")
shift
logs=${OCG_VALGRIND_LOGS:-$(mktemp -d /tmp/ocgate-valgrind.XXXXXX)}
echo "# valgrind logs in $logs"
mkdir -p "$logs"
wrap=$(mktemp -d /tmp/ocgate-vg.XXXXXX)
trap 'rm -rf "$wrap"' EXIT
# run-node.sh and the harness run whatever binary they are given: give them this wrapper.
cat >"$wrap/ocgate" <<WRAP
#!/bin/sh
exec valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \\
    --show-leak-kinds=definite --track-origins=yes --log-file="$logs/vg.%p.log" "$bin" "\$@"
WRAP
chmod +x "$wrap/ocgate"
status=0
for scenario in "$@"; do
    echo "# valgrind: $scenario"
    OCG_SCENARIO_TIMEOUT=${OCG_SCENARIO_TIMEOUT:-1800} \
        bash "$here/../integration/run-node.sh" "$wrap/ocgate" "$scenario" || status=1
done
# Every process's log should be empty (--quiet prints only errors).
bad=$(find "$logs" -name 'vg.*.log' -size +0 | head -n 20)
if [ -n "$bad" ]; then
    echo "# valgrind reported errors in:"; echo "$bad" | sed 's/^/#   /'
    status=1
fi
exit $status
