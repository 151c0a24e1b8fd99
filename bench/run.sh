#!/usr/bin/env bash
# The end-to-end benchmark, from scratch, on one machine (README, "Performance"):
#   1. installs what is missing (.ci/install-deps; pgbench ships in postgresql-15) and builds
#      ocgate and the load generator as a release build;
#   2. starts a private PostgreSQL 15 with durable commits (fsync=on, synchronous_commit=on,
#      full_page_writes=on) as the unprivileged postgres user, migrates, makes keys and
#      registers a provider, a payment app and the merchants (notified at the generator's
#      built-in receiver);
#   3. runs ocgate and bench/ocgate-loadgen at each client count (default 16 32 64) for
#      --duration seconds each, with pg_stat_statements recording what ocgate sent;
#   4. runs pgbench at the same client counts on the same database with a script of exactly
#      the statements ocgate issues for one settlement (bench/pgbench-script.sh), at the
#      claim batch size ocgate reached at that client count;
#   5. opens 1,000 idle keep-alive connections to a fresh ocgate and reads its RSS;
#   6. prints one table.
# Usage: bench/run.sh [--quick] [--duration S] [--clients "16 32 64"] [--idle N]
#                     [--dir DIR] [--no-install] [--keep]
# --quick: 5 s per client count, 200 idle connections (a smoke run, not figures).
# DIR (default /var/lib/ocgate-bench) must be reachable by the postgres user; its contents
# are replaced. Environment: OCG_BENCH_MAX_RATE (default 5000) sizes the payments prepared
# per run (rate × duration); OCGATE_* variables pass through to ocgate (e.g.
# OCGATE_POOL_SIZE). Figures are printed, never judged: the targets are in the README.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
duration=60
clients="16 32 64"
idle=1000
dir=/var/lib/ocgate-bench
install=1
keep=0
merchants_n=16
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) duration=5; idle=200 ;;
        --duration) duration=$2; shift ;;
        --clients) clients=$2; shift ;;
        --idle) idle=$2; shift ;;
        --dir) dir=$2; shift ;;
        --no-install) install=0 ;;
        --keep) keep=1 ;;
        *) echo "usage: bench/run.sh [--quick] [--duration S] [--clients \"16 32 64\"]" \
                "[--idle N] [--dir DIR] [--no-install] [--keep]" >&2; exit 2 ;;
    esac
    shift
done
[[ "$duration" =~ ^[1-9][0-9]{0,3}$ ]] || { echo "run.sh: --duration is 1..9999 s" >&2; exit 2; }
[[ "$idle" =~ ^[1-9][0-9]{0,4}$ ]] || { echo "run.sh: --idle is 1..99999" >&2; exit 2; }
for c in $clients; do
    [[ "$c" =~ ^[1-9][0-9]{0,3}$ ]] || { echo "run.sh: bad client count $c" >&2; exit 2; }
done
max_rate=${OCG_BENCH_MAX_RATE:-5000}
[[ "$max_rate" =~ ^[1-9][0-9]{0,5}$ ]] || { echo "run.sh: bad OCG_BENCH_MAX_RATE" >&2; exit 2; }
n=$(( max_rate * duration ))
pgbin=/usr/lib/postgresql/15/bin
say() { printf 'bench: %s\n' "$*" >&2; }

[ "$(id -u)" -eq 0 ] || { echo "run.sh: run as root (it installs packages and runs" \
    "PostgreSQL as the postgres user)" >&2; exit 1; }
if [ $install = 1 ]; then
    bash "$root/.ci/install-deps"
fi
if [ ! -x "$pgbin/pgbench" ]; then
    say "installing pgbench (part of postgresql-15 on Debian 12)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15
fi

build=${OCG_BENCH_BUILD_DIR:-$root/build-release}
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" --buildtype=release >/dev/null
fi
nice ninja -C "$build" ocgate bench/ocgate-loadgen >/dev/null
ocgate=$build/ocgate
loadgen=$build/bench/ocgate-loadgen
. "$root/bench/lib.sh"

# ---- a private, durable PostgreSQL ----
as_pg() { runuser -u postgres -- "$@"; }
gw_pid=
cleanup() {
    set +e
    bench_gateway_stop
    as_pg "$pgbin/pg_ctl" -D "$dir/pg" -m fast stop >/dev/null 2>&1
    [ $keep = 1 ] || rm -rf "$dir/pg" "$dir/keys"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

as_pg "$pgbin/pg_ctl" -D "$dir/pg" -m immediate stop >/dev/null 2>&1 || true
rm -rf "$dir/pg" "$dir/keys" "$dir/run"
mkdir -p "$dir/run" "$dir/out"
chmod 0755 "$dir" "$dir/run"
chown postgres: "$dir/run"
install -d -o postgres -m 0700 "$dir/pg"
as_pg "$pgbin/initdb" -D "$dir/pg" -U ocgate --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
    >/dev/null
pg_settings="fsync=on synchronous_commit=on full_page_writes=on shared_buffers=512MB \
max_wal_size=8GB checkpoint_timeout=30min max_connections=400 \
shared_preload_libraries=pg_stat_statements pg_stat_statements.track=all"
opts="-c listen_addresses='' -k $dir/run -p 5497"
for s in $pg_settings; do opts+=" -c $s"; done
as_pg "$pgbin/pg_ctl" -D "$dir/pg" -l "$dir/run/postgres.log" -w -o "$opts" start >/dev/null
export PGHOST=$dir/run PGPORT=5497 PGUSER=ocgate PGDATABASE=ocgate
psql -XAtq -d postgres -c "CREATE DATABASE ocgate" >/dev/null
psql -XAtq -c "CREATE EXTENSION pg_stat_statements" >/dev/null
export OCGATE_DATABASE_URL="postgresql:///ocgate?host=$dir/run&port=5497&user=ocgate"
"$ocgate" migrate >/dev/null
sql() { psql -XAtq -v ON_ERROR_STOP=1 -c "$1"; }

bench_free_port || { echo "run.sh: no free port" >&2; exit 1; }
recv_port=$port
bench_participants "$dir" "$recv_port" "$merchants_n"
# Another program may take a free port before ocgate binds it: pick again, a few times.
start_gateway() {
    local log=$1
    for _ in 1 2 3 4 5; do
        bench_free_port || continue
        gw_port=$port
        bench_gateway_start "$dir" "$gw_port" "$log" 2>/dev/null && return 0
        grep -q "Address already in use" "$log" || break
    done
    echo "run.sh: ocgate did not start; last lines of $log:" >&2
    tail -n 20 "$log" >&2
    return 1
}
# Eight database connections (the default 4 per loop on 2 cores) cap how many commits share
# one WAL flush; 64 concurrent clients need more (README, "Performance"). Overridable.
export OCGATE_POOL_SIZE=${OCGATE_POOL_SIZE:-16}
# One provider and one payment app stand for many here: the per-participant rate limit
# (default 1,000/s) would measure the limiter, not the settlement path. Overridable.
export OCGATE_RATE_LIMIT=${OCGATE_RATE_LIMIT:-0}
# 1,000 idle connections need more descriptors than the usual soft limit of 1,024.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

machine="$(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)),"
machine+=" $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo),"
machine+=" $(uname -sr), PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}')"
say "machine: $machine"
say "load before the run: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- ocgate + load generator ----
declare -A res batch
for c in $clients; do
    start_gateway "$dir/out/ocgate-c$c.log"
    sleep 1
    sql "SELECT pg_stat_statements_reset()" >/dev/null
    say "ocgate at $c connections: $n payments prepared, ${duration} s window"
    "$loadgen" --gateway "127.0.0.1:$gw_port" --gateway-ocid 300 \
        --gateway-pub "$(cat "$dir/keys/gateway.pub")" --app-ocid 200 \
        --app-key "$dir/keys/app.key" --provider-ocid 100 \
        --provider-key "$dir/keys/provider.key" --merchants "$merchants" \
        --receiver-port "$recv_port" --db "$OCGATE_DATABASE_URL" --server-pid "$gw_pid" \
        -n "$n" -c "$c" --duration "$duration" --label "c$c" \
        >"$dir/out/loadgen-c$c.out" 2>"$dir/out/loadgen-c$c.err" || true
    cat "$dir/out/loadgen-c$c.err" >&2
    grep '^check .*FAILED' "$dir/out/loadgen-c$c.out" >&2 || true
    res[$c]=$(grep '^ocgate-bench ' "$dir/out/loadgen-c$c.out" || echo "ocgate-bench failed")
    echo "${res[$c]}" >&2
    # What ocgate sent to PostgreSQL while this run lasted (creates included), and the claim
    # batch it reached. The second file ranks every statement, nested ones too (track=all),
    # by server time: where PostgreSQL's share of the CPU goes.
    psql -XAq -c "SELECT calls, rows, left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS query
                    FROM pg_stat_statements
                   WHERE query ~ 'oc_(settle_proof|delivery_claim|delivery_finish|payment_create|nonce)'
                   ORDER BY calls DESC" >"$dir/out/statements-c$c.txt"
    sed 's/^/bench:   /' "$dir/out/statements-c$c.txt" >&2
    psql -XAq -c "SELECT calls, round(total_exec_time) AS total_ms,
                         round((total_exec_time / calls)::numeric, 3) AS mean_ms,
                         left(regexp_replace(query, '\s+', ' ', 'g'), 100) AS query
                    FROM pg_stat_statements WHERE calls > 0
                   ORDER BY total_exec_time DESC LIMIT 30" >"$dir/out/statement-times-c$c.txt"
    batch[$c]=$(sql "SELECT greatest(1, round(sum(rows)::numeric / nullif(sum(calls), 0)))
                       FROM pg_stat_statements
                      WHERE query LIKE '%oc_delivery_claim(%' AND rows > 0" || true)
    [[ "${batch[$c]}" =~ ^[0-9]+$ ]] || batch[$c]=1
    say "ocgate's claim batch at $c: ${batch[$c]} rows; finish batch: $(sql "SELECT round(sum(rows)::numeric / nullif(sum(calls), 0), 1)
           FROM pg_stat_statements WHERE query LIKE '%oc_delivery_finish(%'") rows"
    bench_gateway_stop
done
"$ocgate" ledger check >"$dir/out/ledger-check.txt" 2>&1 && ledger=passed || ledger=FAILED
say "ocgate ledger check over the whole database: $ledger"

# ---- pgbench: the same statements, straight from PostgreSQL's own client ----
declare -A pgb pgb_io
for c in $clients; do
    b=${batch[$c]}
    # pgbench may well outrun ocgate: prepare for at least 6,000 settlements/s. A run that
    # still runs out is reported as having no valid figure (its extra proofs are exceptions).
    rows=$(( (max_rate > 6000 ? max_rate : 6000) * duration + c * b ))
    sql "INSERT INTO payments (txid, merchant_ocid, app_ocid, amount, amount_text, currency,
                               reference, expires_at)
         SELECT 'pgb$c-' || i, 501 + i % $merchants_n, 200, 1.00, '1.00', 'USD',
                'pgb$c-' || i, now() + interval '1 day'
           FROM generate_series(0, $rows - 1) i" >/dev/null
    sql "VACUUM ANALYZE" >/dev/null
    bash "$root/bench/pgbench-script.sh" "$b" >"$dir/out/settle-b$b.pgbench"
    say "pgbench at $c clients, claim batch $b (script $dir/out/settle-b$b.pgbench)"
    counters="SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())
                     || ' ' || (SELECT wal_sync FROM pg_stat_wal)"
    sleep 1.1
    read -r commits0 syncs0 <<<"$(sql "$counters")"
    "$pgbin/pgbench" -n -M prepared -c "$c" -j 2 -T "$duration" -D "clients=$c" -D k=0 \
        -D "run=$c" -f "$dir/out/settle-b$b.pgbench" >"$dir/out/pgbench-c$c.out" 2>&1 || true
    tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$dir/out/pgbench-c$c.out")
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$dir/out/pgbench-c$c.out")
    sleep 1.1
    read -r commits1 syncs1 <<<"$(sql "$counters")"
    short=$(sql "SELECT count(*) FROM proofs WHERE txid LIKE 'bt-pgb$c-%' AND outcome <> 'credited'")
    settled=$(sql "SELECT count(*) FROM proofs WHERE txid LIKE 'bt-pgb$c-%'")
    pgb_io[$c]=$(awk -v c0="$commits0" -v c1="$commits1" -v s0="$syncs0" -v s1="$syncs1" \
        -v n="$settled" 'BEGIN { if (n > 0) printf "%.2f/%.3f", (c1 - c0) / n, (s1 - s0) / n }')
    if [ -z "$tps" ] || [ "${failed:-0}" != 0 ] || [ "$short" != 0 ]; then
        say "pgbench at $c: no valid figure (failed ${failed:-?}, uncredited $short); see $dir/out/pgbench-c$c.out"
        pgb[$c]=
    else
        pgb[$c]=$(awk -v t="$tps" -v b="$b" 'BEGIN { printf "%.0f", t * b }')
    fi
    say "pgbench at $c: ${tps:-?} tps × $b settlements = ${pgb[$c]:-?} settlements/s;" \
        "commits/WAL syncs per settlement ${pgb_io[$c]:-?}"
done

# ---- 1,000 idle keep-alive connections ----
start_gateway "$dir/out/ocgate-idle.log"
sleep 2
idle_line=$("$loadgen" --idle "$idle" --hold 5 --gateway "127.0.0.1:$gw_port" \
    --server-pid "$gw_pid" --label "idle" 2>&1 | grep '^ocgate-idle ' || echo "ocgate-idle failed")
bench_gateway_stop

# ---- the table ----
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
{
    echo
    echo "machine: $machine; load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "PostgreSQL: $pg_settings"
    echo "window: $duration s per client count; payments prepared per run: $n;" \
        "ocgate: threads ${OCGATE_THREADS:-0 (one per core)}, pool_size $OCGATE_POOL_SIZE per loop," \
        "rate_limit $OCGATE_RATE_LIMIT (0 = off)"
    echo
    fmt='| %-7s | %-9s | %-7s | %-7s | %-7s | %-6s | %-10s | %-7s | %-7s | %-8s | %-11s | %-15s | %-11s | %-5s | %-6s |\n'
    printf "$fmt" clients settled/s p50_ms p95_ms p99_ms errors lag_p99_ms drain_s rss_MiB \
        cpu_s/1k commits/wal pgbench_settl/s commits/wal ratio checks
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for c in $clients; do
        r=${res[$c]}
        s=$(field settled_per_s "$r")
        ratio=-
        [ -n "${pgb[$c]}" ] && [ -n "$s" ] &&
            ratio=$(awk -v a="$s" -v b="${pgb[$c]}" 'BEGIN { printf "%.0f%%", 100 * a / b }')
        printf "$fmt" \
            "$c" "$s" "$(field p50_ms "$r")" "$(field p95_ms "$r")" "$(field p99_ms "$r")" \
            "$(field errors "$r")" "$(field delivery_lag_p99_ms "$r")" "$(field drain_s "$r")" \
            "$(field server_rss_peak_mib "$r")" "$(field server_cpu_s_per_1k "$r")" \
            "$(field db_commits_per_settlement "$r")/$(field wal_syncs_per_settlement "$r")" \
            "${pgb[$c]:-?} (b=${batch[$c]})" "${pgb_io[$c]:-?}" "$ratio" "$(field checks "$r")"
    done
    echo
    echo "idle keep-alive: $idle connections, $(field answered_and_open "$idle_line") open;" \
        "server RSS $(field server_rss_before_mib "$idle_line") MiB before," \
        "$(field server_rss_mib "$idle_line") MiB with them open"
    echo "ledger check: $ledger; raw output in $dir/out"
} | tee "$dir/out/summary.txt"
