#!/bin/sh
# Build the libFuzzer harnesses (fuzz/, docs/fuzzing.md) and run each for SECONDS.
# Usage: scripts/fuzz.sh [SECONDS] [HARNESS...]   (default 60 s each, every harness)
# Env:   CC (default clang, else clang-14), NH_FUZZ_JOBS (build jobs, default 2),
#        NH_FUZZ_BUILD (default build-fuzz), NH_FUZZ_WORK (default .cache/fuzz).
# Each harness runs on a copy of its committed corpus, fuzz/corpus/NAME, in
# NH_FUZZ_WORK/corpus/NAME (new inputs stay there, the committed corpus is untouched); a
# crash, leak, sanitizer report or timeout is written to NH_FUZZ_WORK/artifacts/NAME/ and
# makes the script exit 1, naming the file. Logs: NH_FUZZ_WORK/NAME.log.
set -eu

cd "$(dirname "$0")/.."
secs=${1:-60}
[ $# -gt 0 ] && shift
case $secs in '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS] [HARNESS...]" >&2; exit 2 ;; esac
harnesses=${*:-"onnx nhm seed nhdb_text query decode"}
build=${NH_FUZZ_BUILD:-build-fuzz}
work=${NH_FUZZ_WORK:-.cache/fuzz}

if [ -z "${CC:-}" ]; then
    if command -v clang >/dev/null 2>&1; then CC=clang
    elif command -v clang-14 >/dev/null 2>&1; then CC=clang-14
    else echo "fuzz: needs clang: apt-get install clang-14 libclang-rt-14-dev" >&2; exit 2
    fi
fi
export CC

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNH_FUZZ=ON \
    -DNH_SANITIZE=fuzzer-no-link,address,undefined \
    -DNH_BUILD_TESTS=OFF -DNH_BUILD_BENCH=OFF >/dev/null
targets=""
for h in $harnesses; do targets="$targets fuzz_$h"; done
# shellcheck disable=SC2086
cmake --build "$build" -j "${NH_FUZZ_JOBS:-2}" --target $targets >/dev/null

# ASan: report leaks (libFuzzer checks each input); UBSan: every report is fatal, with a stack.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}"
export TMPDIR="${TMPDIR:-/tmp}"

fail=0
total_start=$(date +%s)
for h in $harnesses; do
    corpus="$work/corpus/$h"
    art="$work/artifacts/$h"
    log="$work/$h.log"
    mkdir -p "$corpus" "$art"
    cp -R fuzz/corpus/"$h"/. "$corpus"/
    start=$(date +%s)
    rc=0
    "$build/fuzz/fuzz_$h" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="$art/" "$corpus" >"$log" 2>&1 || rc=$?
    end=$(date +%s)
    stats=$(grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" |
        tr '\n' ' ' | sed 's/  */ /g')
    if [ "$rc" -ne 0 ]; then
        fail=1
        echo "fuzz: $h FAILED (exit $rc) after $((end - start)) s; log: $log"
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|fuzz_)' "$log" | head -5 | sed 's/^/    /'
        for f in "$art"/*; do [ -f "$f" ] && echo "    input: $f"; done
    else
        echo "fuzz: $h ok, $((end - start)) s: $stats"
    fi
done
echo "fuzz: total $(( $(date +%s) - total_start )) s"
exit $fail
