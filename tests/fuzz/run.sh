#!/usr/bin/env bash
# Run each libFuzzer target for a bounded time on a copy of its seed corpus.
#
#   tests/fuzz/run.sh [OUT_DIR [TARGET...]]     (make fuzz-run)
#
# OUT_DIR holds fuzz_<target> (default out/fuzz); TARGETs default to every
# tests/fuzz/corpus/<target>. FUZZ_SECONDS (default 60) bounds each target.
# Exits non-zero if any target crashed, leaked, timed out (10 s on one input)
# or went past 2 GB; the input that did it is kept as
# OUT_DIR/artifacts/<target>-crash-..., reproduce with OUT_DIR/fuzz_<target> FILE.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-out/fuzz}
[ $# -gt 0 ] && shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for d in "$here"/corpus/*/; do targets+=("$(basename "$d")"); done
fi
seconds=${FUZZ_SECONDS:-60}

work=$(mktemp -d "${TMPDIR:-/tmp}/certsync-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$out/artifacts"

failed=()
for t in "${targets[@]}"; do
    bin="$out/fuzz_$t"
    if [ ! -x "$bin" ] || [ ! -d "$here/corpus/$t" ]; then
        echo "fuzz: $t: missing $bin or $here/corpus/$t (run make fuzz)" >&2
        failed+=("$t")
        continue
    fi
    # new inputs go to the copy; the committed corpus stays as it is
    mkdir -p "$work/$t/corpus" "$work/$t/tmp"
    cp -r "$here/corpus/$t/." "$work/$t/corpus/"
    echo "fuzz: $t for ${seconds}s ($(ls "$here/corpus/$t" | wc -l) seeds)"
    if TMPDIR="$work/$t/tmp" ASAN_OPTIONS=detect_leaks=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$out/artifacts/$t-" "$work/$t/corpus" >"$work/$t/log" 2>&1; then
        grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)|^Done' "$work/$t/log" |
            sed "s/^/fuzz: $t: /"
    else
        echo "fuzz: $t FAILED; the log's end:" >&2
        tail -n 60 "$work/$t/log" >&2
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: failed: ${failed[*]}; inputs in $out/artifacts/, reproduce with $out/fuzz_TARGET FILE" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, no crash, leak or timeout"
