#!/bin/sh
# Set up, fetch test data, build and run the whole test suite: a normal build, then the
# same suite under AddressSanitizer + UndefinedBehaviorSanitizer, then a fuzz smoke (every
# libFuzzer harness for NH_TEST_FUZZ_SECONDS, default 30 s each; docs/fuzzing.md).
# Usage: scripts/test.sh   (NH_TEST_ASAN=0 skips the sanitizer pass, NH_TEST_FUZZ=0 the smoke)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
JOBS=$(nproc 2>/dev/null || echo 2)

scripts/setup.sh
scripts/fetch-data.sh

# Raw Pillow tensors let test_decode count agreeing bytes when a digest differs; the script
# also checks this machine's Pillow still reproduces the committed reference digests.
if /usr/bin/python3 -c 'import PIL' 2>/dev/null; then
    /usr/bin/python3 -W ignore scripts/fixtures/pillow_compat.py .cache/data \
        tests/data/decode/compat_manifest.txt --raw .cache/pillow-raw
    export NH_PILLOW_RAW="$ROOT/.cache/pillow-raw"
fi

cmake -S . -B build -DNH_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$JOBS"
ctest --test-dir build --output-on-failure

if [ "${NH_TEST_ASAN:-1}" != 0 ]; then
    # PoCL's LLVM keeps allocations for the life of the process; leaks inside it are not ours.
    export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0}"
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
    cmake -S . -B build-asan -DNH_WERROR=ON -DNH_SANITIZE=address,undefined \
        -DNH_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
    cmake --build build-asan -j"$JOBS"
    ctest --test-dir build-asan --output-on-failure
fi

if [ "${NH_TEST_FUZZ:-1}" != 0 ]; then
    scripts/setup.sh --fuzz
    # the sanitizer pass above set its own ASAN_OPTIONS; the fuzzers check leaks
    env -u ASAN_OPTIONS -u UBSAN_OPTIONS scripts/fuzz.sh "${NH_TEST_FUZZ_SECONDS:-30}"
fi
