#!/usr/bin/env bash
# Long fuzzing (issue 8, item 6): runs every libFuzzer target for SECONDS under ASan+UBSan,
# JOBS at a time (each takes a core), each on a persistent working corpus seeded from
# fuzz/corpus/<target>/, then merges what adds coverage back into fuzz/corpus/<target>/
# (libFuzzer -merge=1: only inputs with new features, the committed seeds are kept).
# Review and commit the new files. Any crash artifact fails the run and is left in WORK.
#   CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false
#   ninja -C build-fuzz
#   tests/reliability/fuzz-long.sh build-fuzz 600 [jobs (2)] [target...]
# WORK (default /tmp/ocgate-fuzz-long) keeps corpora, logs and artifacts between runs.
set -uo pipefail
[ $# -ge 2 ] || { echo "usage: $0 <build-dir> <seconds> [jobs] [target...]" >&2; exit 2; }
build=$(cd "$1" && pwd) || exit 2
seconds=$2
jobs=${3:-2}
shift $(( $# >= 3 ? 3 : 2 ))
[[ $seconds =~ ^[1-9][0-9]*$ && $jobs =~ ^[1-9][0-9]*$ ]] || { echo "seconds and jobs are whole numbers" >&2; exit 2; }
root=$(cd "$(dirname "$0")/../.." && pwd)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(json-canon proof amount sigstr http-response deliver-answer)
work=${WORK:-/tmp/ocgate-fuzz-long}
mkdir -p "$work"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

run_one() {
    local t=$1 bin="$build/fuzz/fuzz-$1" dict=()
    mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
    cp -Rn "$root/fuzz/corpus/$t/." "$work/corpus/$t/"
    case $t in json-canon | proof) dict=(-dict="$root/fuzz/json.dict") ;; esac
    nice -n 10 "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/$t/" "${dict[@]}" \
        "$work/corpus/$t" >"$work/$t.log" 2>&1
    echo "exit $?" >>"$work/$t.log"
}

running=0
for t in "${targets[@]}"; do
    [ -x "$build/fuzz/fuzz-$t" ] || { echo "no fuzz-$t in $build/fuzz (built with -Dfuzz=true?)" >&2; exit 2; }
    run_one "$t" &
    running=$((running + 1))
    if [ $running -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait

failed=0
for t in "${targets[@]}"; do
    runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$work/$t.log" | tail -n 1)
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$work/$t.log" | tail -n 1)
    rc=$(sed -nE 's/^exit ([0-9]+)$/\1/p' "$work/$t.log")
    found=$(find "$work/artifacts/$t" -type f | head -n 1)
    if [ "$rc" = 0 ] && [ -z "$found" ]; then
        before=$(ls "$root/fuzz/corpus/$t" | wc -l)
        "$build/fuzz/fuzz-$t" -merge=1 "$root/fuzz/corpus/$t" "$work/corpus/$t" >"$work/$t.merge.log" 2>&1
        after=$(ls "$root/fuzz/corpus/$t" | wc -l)
        echo "fuzz $t: ok, ${runs:-?} runs in ${seconds} s, $cov; corpus $before -> $after files"
    else
        echo "fuzz $t: FAILED (exit $rc) — see $work/$t.log and $work/artifacts/$t/"
        failed=$((failed + 1))
    fi
done
echo "fuzz-long: $(( ${#targets[@]} - failed )) passed, $failed failed"
[ $failed -eq 0 ]
