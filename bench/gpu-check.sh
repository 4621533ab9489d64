#!/bin/bash
# nhbench gpu-check: one prepared run on a GPU machine that has this tree and the bundle from
# bench/gpu-pack.sh (.gpu, carried) but cannot build nhash. In order: the machine; OpenCL
# through the bundle's ICD loader and the NVIDIA driver's libnvidia-opencl.so.1; the OpenCL
# test binaries on the GPU; nhbench net (batches 32/128/512, op time shares) and nhbench pdq;
# `nhash hash --algo neural,pdq,digest` end to end (compat and fast) beside decode-only on the
# same files; GPU against the C reference, bit for bit; the CPU-only test binaries. Every step
# has a time limit; a failure is logged and the run goes on.
#
# usage (repo root): bash bench/gpu-check.sh       whole run ~7 minutes at most
#   OUT=DIR                    results: summary.txt, log.txt, a file per step (/tmp/gpu-out)
#   NH_GPU_CHECK_PLATFORM=auto|nvidia|system   auto (default): NVIDIA's OpenCL when its library
#                              is found, else the machine's own ICDs (PoCL in a rehearsal)
#   NH_GPU_CHECK_QUICK=0|1     small batches, runs and photo sets (default: 1 unless NVIDIA)
#   NH_GPU_CHECK_BUDGET=S      seconds for the whole run (default 420)
#   NH_GPU_CHECK_DATA_DIR=D    NH_DATA_DIR for the tests (default .cache/data; skipped if absent)
# The photos are samples/ and the committed test images, small (34x42 to 600x400), copied under
# many names: figures for throughput and equality, not for real photo sizes.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
SUM=$OUT/summary.txt
LOG=$OUT/log.txt
: > "$SUM"
: > "$LOG"
BUDGET=${NH_GPU_CHECK_BUDGET:-420}
T0=$(date +%s)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nh-gpu-check.XXXXXX")
CREATED=""
cleanup() {
    [ -n "${SAMPLER:-}" ] && kill "$SAMPLER" 2> /dev/null
    for l in $CREATED; do rm -f "$l"; done
    rm -rf "$WORK"
}
trap cleanup EXIT

log() { printf '[%4ds] %s\n' $(($(date +%s) - T0)) "$*" >> "$LOG"; }
say() {
    printf '%s\n' "$*" >> "$SUM"
    printf '%s\n' "$*"
    log "summary: $*"
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}'; }
left() { echo $((BUDGET - ($(date +%s) - T0))); }

# step NAME SECONDS CMD...: CMD's output to $OUT/NAME.txt and the log, limited to SECONDS and to
# what is left of the budget (20 s kept for the summary). Sets STEP_RC and STEP_SECS.
step() {
    local name=$1 want=$2 t
    shift 2
    t=$(($(left) - 20))
    [ "$want" -lt "$t" ] && t=$want
    if [ "$t" -lt 5 ]; then
        log "== $name: skipped, out of time"
        echo "skipped: out of time" > "$OUT/$name.txt"
        STEP_RC=125
        STEP_SECS=0
        return 125
    fi
    log "== $name (limit ${t}s): $*"
    local s
    s=$(now)
    timeout -k 5 "$t" "$@" > "$OUT/$name.txt" 2>&1
    STEP_RC=$?
    STEP_SECS=$(since "$s")
    cat "$OUT/$name.txt" >> "$LOG"
    log "== $name: exit $STEP_RC in ${STEP_SECS}s"
    [ "$STEP_RC" -eq 124 ] && echo "(timed out after ${t}s)" >> "$OUT/$name.txt"
    return "$STEP_RC"
}

say "nhash GPU check, $(date -u '+%Y-%m-%d %H:%M UTC')"
if [ ! -d .gpu/bin ] || [ ! -f .gpu/lib.tar.xz ]; then
    say "no bundle: .gpu/bin and .gpu/lib.tar.xz missing (run bench/gpu-pack.sh and carry .gpu)"
    exit 1
fi

# --- a. the machine -------------------------------------------------------------------------
step env 30 sh -c 'nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv;
    nvidia-smi; uname -a; echo "nproc $(nproc)"; getconf GNU_LIBC_VERSION;
    . /etc/os-release 2>/dev/null && echo "os $PRETTY_NAME";
    grep -m1 "model name" /proc/cpuinfo; free -g | head -2; df -h /tmp | tail -1'
SMI=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
CARD=${SMI%%,*}
NPROC=$(nproc)
GLIBC=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
OS=$( (. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME") || uname -s)
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
say "machine: ${SMI:-no nvidia-smi}; $OS, glibc ${GLIBC:-?}, $NPROC cores ($CPU), $(uname -r)"
case $GLIBC in
2.[0-9] | 2.[0-9].* | 2.[12][0-9] | 2.[12][0-9].* | 2.3[0-5] | 2.3[0-5].*)
    say "WARNING: glibc $GLIBC is older than Debian 12's 2.36, which the bundle was built against" ;;
esac

# --- the bundle: executables (executable bits may not survive the copy), libraries --------
mkdir -p "$WORK/bin" "$WORK/build/host" "$WORK/build/dbtool" "$WORK/build/bench" "$WORK/vips"
cp .gpu/bin/* "$WORK/bin/" && chmod +x "$WORK/bin"/*
ln -s "$WORK/bin/nhash" "$WORK/build/host/nhash"
ln -s "$WORK/bin/nhdb" "$WORK/build/dbtool/nhdb"
for b in "$WORK"/bin/nhbench*; do ln -s "$b" "$WORK/build/bench/"; done
cp -r .gpu/unxz "$WORK/unxz" && chmod +x "$WORK/unxz/xz"
LD_LIBRARY_PATH=$WORK/unxz "$WORK/unxz/xz" -dc .gpu/lib.tar.xz | tar -xf - -C "$WORK"
if [ ! -f "$WORK/lib/libOpenCL.so.1" ]; then
    log "bundled xz failed; trying tar -J, then python3"
    tar -xJf .gpu/lib.tar.xz -C "$WORK" 2>> "$LOG" ||
        python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
            .gpu/lib.tar.xz "$WORK" 2>> "$LOG"
fi
LDCONFIG=$(command -v ldconfig || echo /sbin/ldconfig)
# A library asking for a newer glibc than the machine's (Debian 12's libexpat wants 2.36 for
# arc4random_buf; Ubuntu 22.04 has 2.35) gives way to the machine's own copy where it has one.
mkdir -p "$WORK/too-new"
for f in "$WORK"/lib/*.so* "$WORK"/lib/compat/*.so*; do
    [ -n "$GLIBC" ] || break
    need=$(grep -ao 'GLIBC_2\.[0-9][0-9]*' "$f" | sed 's/GLIBC_//' | sort -u -V | tail -1)
    [ -n "$need" ] || continue
    [ "$(printf '%s\n%s\n' "$need" "$GLIBC" | sort -V | tail -1)" = "$GLIBC" ] && continue
    name=$(basename "$f")
    if "$LDCONFIG" -p 2> /dev/null | grep -q "^[[:space:]]*$name "; then
        mv "$f" "$WORK/too-new/"
        say "  $name needs glibc $need > $GLIBC: the machine's own $name is used instead"
    else
        say "  $name needs glibc $need > $GLIBC and the machine has none: what needs it fails"
    fi
done
LIBPATH=$WORK/lib
mkdir -p "$WORK/compat"
for l in libstdc++.so.6 libgcc_s.so.1; do
    # The machine's own (newer) C++ runtime wins; the bundle's only fills a gap.
    if ! "$LDCONFIG" -p 2>/dev/null | grep -q "^[[:space:]]*$l "; then
        ln -s "$WORK/lib/compat/$l" "$WORK/compat/$l" && log "using the bundle's $l"
    fi
done
# The machine's own LD_LIBRARY_PATH stays behind ours: driver libraries may live only there.
LIBPATH=$LIBPATH:$WORK/compat${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# VIPSHOME: a prefix without vips-modules-*, so only libvips' built-in loaders exist (jpeg,
# png, webp, tiff, gif), as on a machine without libvips. GIO_MODULE_DIR: none of the
# machine's gio modules into this glib.
export VIPSHOME=$WORK/vips GIO_MODULE_DIR=$WORK/vips
NHE=(env "LD_LIBRARY_PATH=$LIBPATH")
for b in "$WORK"/bin/*; do LD_LIBRARY_PATH=$LIBPATH ldd "$b" 2>&1; done |
    awk '$2 == "=>" {print $1, $3}' | sort -u > "$OUT/libs-resolved.txt"
MISSING=$(awk '$2 == "not" {printf "%s ", $1}' "$OUT/libs-resolved.txt")
OUTSIDE=$(awk -v w="$WORK/" 'index($2, w) != 1 && $2 != "not" &&
    $1 !~ /^(libc|libm|libpthread|libdl|librt|libresolv|ld-linux)[.-]/ {printf "%s ", $1}' \
    "$OUT/libs-resolved.txt")
NLIB=$(wc -l < "$OUT/libs-resolved.txt")
say "bundle: $(sed -n 2p .gpu/MANIFEST.txt)"
say "  libraries: $NLIB resolved; missing: ${MISSING:-none}; from the machine (besides glibc): ${OUTSIDE:-none}"

# --- b. OpenCL -------------------------------------------------------------------------------
find_nv_opencl() {
    local p d
    p=$("$LDCONFIG" -p 2>/dev/null | awk '$1 == "libnvidia-opencl.so.1" && /x86-64/ {print $NF; exit}')
    [ -n "$p" ] && [ -e "$p" ] && { echo "$p"; return; }
    for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu /usr/lib64 \
        /usr/lib /usr/local/cuda/compat /usr/local/cuda/lib64; do
        for p in "$d"/libnvidia-opencl.so.1 "$d"/libnvidia-opencl.so.*; do
            [ -e "$p" ] && { echo "$p"; return; }
        done
    done
    timeout 30 find / \( -path /proc -o -path /sys -o -path /dev -o -path "$ROOT" \) -prune \
        -o -name 'libnvidia-opencl.so*' -print 2>/dev/null | sort | head -1
}
PLAT=${NH_GPU_CHECK_PLATFORM:-auto}
NVLIB=""
[ "$PLAT" != system ] && NVLIB=$(find_nv_opencl)
mkdir -p "$WORK/vendors"
if [ -n "$NVLIB" ]; then
    echo "$NVLIB" > "$WORK/vendors/nvidia.icd"
    export OCL_ICD_VENDORS=$WORK/vendors NH_CL_PLATFORM=${NH_CL_PLATFORM:-nvidia}
    MODE=nvidia
    # Its siblings (libcuda, the PTX JIT) are looked up beside it, after the bundle.
    LIBPATH=$LIBPATH:$(dirname "$NVLIB")
    NHE=(env "LD_LIBRARY_PATH=$LIBPATH")
    say "OpenCL: NVIDIA driver library $NVLIB (ICD file in OCL_ICD_VENDORS), NH_CL_PLATFORM=$NH_CL_PLATFORM"
elif [ "$PLAT" = nvidia ]; then
    MODE=none
    say "OpenCL: no libnvidia-opencl.so* found (ldconfig, driver folders, find /): no GPU runs"
else
    MODE=system
    say "OpenCL: no NVIDIA library$([ "$PLAT" = system ] && echo ' looked for');" \
        "the machine's own ICDs (/etc/OpenCL/vendors) -- a rehearsal, not a GPU run"
fi
step devices 60 "${NHE[@]}" "$WORK/bin/nhash" devices
if [ "$MODE" = nvidia ] && ! grep -qi nvidia "$OUT/devices.txt"; then
    say "  the NVIDIA platform did not show; retrying through OCL_ICD_FILENAMES (diagnostics in log)"
    step devices-debug 60 sh -c "ldd '$NVLIB'; ls -l /dev/nvidia* 2>&1;
        OCL_ICD_DEBUG=15 LD_LIBRARY_PATH='$LIBPATH' '$WORK/bin/nhash' devices"
    mkdir -p "$WORK/novendors"
    export OCL_ICD_VENDORS=$WORK/novendors OCL_ICD_FILENAMES=$NVLIB
    step devices 60 "${NHE[@]}" "$WORK/bin/nhash" devices
    grep -qi nvidia "$OUT/devices.txt" || MODE=none
fi
while read -r line; do say "  $line"; done < "$OUT/devices.txt"
if [ -z "${NH_GPU_CHECK_QUICK:-}" ]; then
    QUICK=1
    [ "$MODE" = nvidia ] && QUICK=0
else
    QUICK=$NH_GPU_CHECK_QUICK
fi
CLDEV=$(awk -F': ' 'NR == 1 {sub(/, [0-9]+ compute units.*/, "", $2); print $2}' "$OUT/devices.txt")
[ "$MODE" = nvidia ] && CLDEV=$(grep -i nvidia "$OUT/devices.txt" | head -1 |
    awk -F': ' '{sub(/, [0-9]+ compute units.*/, "", $2); print $2}')
CARD=${CARD:-$CLDEV}
[ "$QUICK" = 1 ] && say "quick mode: small batches, runs and photo sets"

# --- c. tests: the OpenCL ones now, the CPU-only ones at the end ---------------------------
DATA=${NH_GPU_CHECK_DATA_DIR:-$ROOT/.cache/data}
if [ -d .gpu/tools ]; then
    mkdir -p "$WORK/tools" && cp .gpu/tools/* "$WORK/tools/" && chmod +x "$WORK/tools"/*
fi
TEST_ENV=("${NHE[@]}" "PATH=$WORK/tools:$PATH" "NH_FIXTURE_DIR=$ROOT/tests/data" "NH_SOURCE_DIR=$ROOT"
    "NH_BINARY_DIR=$WORK/build" "NH_DATA_DIR=$DATA"
    "NH_PDQ_REFERENCE_DIR=${NH_PDQ_REFERENCE_DIR:-/work/shared/pdq-reference}"
    "CMOCKA_MESSAGE_OUTPUT=STDOUT")
# test_nhdb forks the nhdb whose build path was compiled in; give it one if that path is free.
if [ -f "$WORK/bin/test_nhdb" ]; then
    exe=$(grep -ao '/[[:print:]]*/dbtool/nhdb' "$WORK/bin/test_nhdb" | head -1)
    if [ -n "$exe" ] && [ ! -e "$exe" ] && mkdir -p "$(dirname "$exe")" 2>/dev/null &&
        ln -s "$WORK/bin/nhdb" "$exe" 2>/dev/null; then
        CREATED="$CREATED $exe"
        log "linked $exe (compiled into test_nhdb) to the bundle's nhdb"
    elif [ -n "$exe" ] && [ ! -e "$exe" ]; then
        say "note: test_nhdb runs $exe (compiled in), absent and not creatable: its CLI tests fail"
    fi
fi
run_test() {
    local t=$1 f p fl sk names
    if ! step "$t" "$2" "${TEST_ENV[@]}" "$WORK/bin/$t" && [ "$STEP_RC" -eq 125 ]; then
        say "  $t: not run, out of time"
        return
    fi
    f=$OUT/$t.txt
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$f" | tail -1)
    fl=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$f" | tail -1)
    sk=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$f" | tail -1)
    names=$(sed -n 's/^\[  FAILED  \] \(test_[A-Za-z0-9_]*\)$/\1/p' "$f" | sort -u | tr '\n' ' ')
    say "$(printf '  %-14s %3s passed %3s failed %3s skipped  exit %3s  %6ss  %s' \
        "$t" "${p:-?}" "${fl:-0}" "${sk:-0}" "$STEP_RC" "$STEP_SECS" \
        "$([ "$(grep -c SKIP "$f")" -gt 0 ] && echo "[$(grep -c SKIP "$f") SKIP notes] ")$names")"
}
# NH_GPU_CHECK_TESTS="test_a test_b": run just those tests and write their whole output to
# $OUT/a-tests.txt (first in the listing), then stop: a quick second look at a failure.
if [ -n "${NH_GPU_CHECK_TESTS:-}" ]; then
    for t in $NH_GPU_CHECK_TESTS; do
        run_test "$t" 150
        { echo "==== $t"; cat "$OUT/$t.txt"; } >> "$OUT/a-tests.txt"
    done
    exit 0
fi
if [ -z "${NH_GPU_CHECK_COMPARE:-}" ]; then # the compare mode skips the tests and the network benchmark
say ""
say "tests using OpenCL (NH_CL_PLATFORM=${NH_CL_PLATFORM:-unset}; NH_DATA_DIR" \
    "$([ -d "$DATA" ] && echo present || echo 'absent, so the data-driven tests skip'); cmocka counts):"
for t in test_cl test_net test_pdq test_pipeline; do
    [ -f "$WORK/bin/$t" ] && run_test $t 150
done

# --- d. network --------------------------------------------------------------------------------
if [ "$QUICK" = 1 ]; then
    BATCHES=8,32 RUNS=2 PBATCH=8
else
    BATCHES=32,128,512 RUNS=10 PBATCH=128
fi
say ""
say "network, OpenCL on ${CARD:-?} (nhbench net, median of $RUNS runs, random pixels, no decoding):"
for m in default nh_test; do
    step "net-$m" 120 "${NHE[@]}" "$WORK/bin/nhbench" net --model "$ROOT/models/$m.nhm" \
        --batches "$BATCHES" --runs "$RUNS" --no-ref --no-ort
    mf=$(sed -n 's/.*nhm, \([0-9.]*\) MFLOP per image.*/\1/p' "$OUT/net-$m.txt")
    say "  models/$m.nhm (${mf:-?} MFLOP/image):$(awk '$2 == "|" && $1 ~ /^[0-9]+$/ {
        printf " batch %s %s img/s %s GFLOP/s;", $1, $3, $4}' "$OUT/net-$m.txt")"
    [ "$STEP_RC" -ne 0 ] && say "    failed (exit $STEP_RC): $(tail -2 "$OUT/net-$m.txt" | tr '\n' ' ')"
done
step net-ref 60 "${NHE[@]}" "$WORK/bin/nhbench" net --model "$ROOT/models/default.nhm" \
    --batches 8 --runs 1 --no-ort
say "  C reference (1 thread), default.nhm batch 8: $(awk '$2 == "|" && $1 ~ /^[0-9]+$/ {
    printf "%s img/s, %s GFLOP/s", $6, $7}' "$OUT/net-ref.txt")"
step net-profile 90 "${NHE[@]}" NH_NET_PROFILE=2 "$WORK/bin/nhbench" net \
    --model "$ROOT/models/default.nhm" --batches "$PBATCH" --runs 3 --no-ref --no-ort
say "  op time share, default.nhm batch $PBATCH (NH_NET_PROFILE=2: host CPU seconds from each"
say "  node's launch to its clFinish, so driver waits count as the driver spends them):"
say "   $(awk '/^conv1x1 / {l = $0} END {n = split(l, f, " "); t = 0
        for (i = 1; i < n; i += 2) {split(f[i + 1], v, "/"); s[f[i]] = v[1] + v[2]; t += s[f[i]]}
        for (i = 1; i < n; i += 2) if (t > 0) printf " %s %.1f%%", f[i], 100 * s[f[i]] / t}' \
    "$OUT/net-profile.txt")"
# The shares mean something only if the CPU seconds cover the GPU time: a driver that sleeps in
# clFinish leaves them far below the wall time of the same passes.
say "    $(awk -v b="$PBATCH" '/^conv1x1 / {l = $0} $2 == "|" && $1 ~ /^[0-9]+$/ {r = $3}
    END {n = split(l, f, " "); t = 0; for (i = 2; i <= n; i += 2) {split(f[i], v, "/"); t += v[1] + v[2]}
        cpu = 1000 * t / (4 * b); wall = r > 0 ? 1000 / r : 0
        printf "profiled CPU %.3f ms/image vs wall %.3f ms/image in the same run%s", cpu, wall,
            (wall > 0 && cpu < 0.5 * wall) ? ": the driver sleeps in clFinish, shares unreliable" : ""}' \
    "$OUT/net-profile.txt")"
grep '^  node ' "$OUT/net-profile.txt" | head -6 |
    while read -r line; do say "    $line"; done

fi # NH_GPU_CHECK_COMPARE
# --- the photo sets: small committed images, many names -----------------------------------
mkdir -p "$WORK/distinct" "$WORK/photos" "$WORK/pdqset"
i=0
for f in samples/* tests/data/pdq/pixels/*; do
    case $f in *.jpg | *.jpeg | *.png | *.webp | *.gif | *.tif | *.tiff) ;; *) continue ;; esac
    i=$((i + 1))
    cp "$f" "$WORK/distinct/$(printf '%02d' $i)-$(basename "$f")"
done
NDIST=$i
if [ "$QUICK" = 1 ]; then COPIES=5 PCOPIES=1; else COPIES=200 PCOPIES=8; fi
for f in "$WORK"/distinct/*; do
    b=$(basename "$f")
    k=0
    while [ $k -lt "$COPIES" ]; do
        ln "$f" "$WORK/photos/$(printf '%03d' $k)-$b" 2>/dev/null || cp "$f" "$WORK/photos/$(printf '%03d' $k)-$b"
        [ $k -lt "$PCOPIES" ] && { ln "$f" "$WORK/pdqset/$(printf '%03d' $k)-$b" 2>/dev/null || cp "$f" "$WORK/pdqset/$(printf '%03d' $k)-$b"; }
        k=$((k + 1))
    done
done
# Real photos when carried (.gpu-photos, made by bench/gpu-pack.sh --photos: the bench set's
# photos, 12 MP upscales and landscapes from Debian packages): the end-to-end and equality
# steps then run on them instead of the small committed images.
SETNAME="small committed images"
if [ -d "$ROOT/.gpu-photos" ] && [ -n "$(ls "$ROOT/.gpu-photos")" ]; then
    rm -rf "$WORK/distinct" "$WORK/photos"
    mkdir -p "$WORK/distinct" "$WORK/photos"
    cp "$ROOT"/.gpu-photos/* "$WORK/distinct/"
    NDIST=$(ls "$WORK/distinct" | wc -l)
    if [ "$QUICK" = 1 ]; then COPIES=1; else COPIES=${NH_GPU_CHECK_COPIES:-8}; fi
    for f in "$WORK"/distinct/*; do
        k=0
        while [ $k -lt "$COPIES" ]; do
            ln "$f" "$WORK/photos/$(printf '%03d' $k)-$(basename "$f")"
            k=$((k + 1))
        done
    done
    SETNAME="real photos from .gpu-photos (bench/gpu-pack.sh --photos)"
fi
NPH=$(find "$WORK/photos" -type f | wc -l)
find "$WORK/photos" -type f | sort > "$WORK/photos.list"
xargs -d "\n" cat < "$WORK/photos.list" > /dev/null # page cache

# NH_GPU_CHECK_COMPARE=1: the main job of this build against .gpu/bin/nhash-base (an earlier
# build packed beside it), --algo neural and --algo neural,pdq,digest, batches 16 and 128,
# runs interleaved, medians of 3; wall and CPU seconds to $OUT/a-compare.txt, then stop.
if [ -n "${NH_GPU_CHECK_COMPARE:-}" ] && [ -x "$WORK/bin/nhash-base" ]; then
    C=$OUT/a-compare.txt
    : > "$C.raw"
    TIMEFORMAT='%R %U %S'
    for r in 1 2 3; do
        for batch in 16 128; do
            for bin in nhash nhash-base; do
                for algo in neural neural,pdq,digest; do
                    t=$( { time "${NHE[@]}" "$WORK/bin/$bin" hash --algo "$algo" --batch "$batch" \
                        --model "$ROOT/models/default.nhm" --threads "$NPROC" --no-progress - \
                        < "$WORK/photos.list" > /dev/null 2>&1; } 2>&1)
                    echo "$bin $algo $batch $t" >> "$C.raw"
                done
            done
        done
    done
    {
        echo "main job on ${CARD:-?}: $NPH files ($NDIST distinct x $COPIES; $SETNAME), $NPROC threads"
        echo "nhash = this build, nhash-base = the earlier build; medians of 3 interleaved runs"
        awk '{k = $1 " " $2 " " $3; n[k]++; w[k, n[k]] = $4; c[k, n[k]] = $5 + $6; keys[k] = 1}
        function med(a, k,   i, j, t, v, m) { m = n[k]; for (i = 1; i <= m; i++) v[i] = a[k, i]
            for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] < v[i]) {t = v[i]; v[i] = v[j]; v[j] = t}
            return v[int((m + 1) / 2)] }
        END { printf "%-11s %-18s %5s %8s %8s %9s\n", "binary", "algo", "batch", "wall s", "CPU s", "images/s"
            for (k in keys) { split(k, f, " "); W[k] = med(w, k); Cc[k] = med(c, k)
                printf "%-11s %-18s %5s %8.2f %8.2f %9.1f\n", f[1], f[2], f[3], W[k], Cc[k], N / W[k] }
            for (b = 16; b <= 128; b += 112) for (i = 0; i < 2; i++) { bin = i ? "nhash-base" : "nhash"
                a = bin " neural " b; z = bin " neural,pdq,digest " b
                if ((a in W) && (z in W)) printf "%s batch %d: CPU ratio (neural,pdq,digest / neural) %.2fx, images/s of the main job %.1f\n", bin, b, Cc[z] / Cc[a], N / W[z] } }' N="$NPH" "$C.raw" | sort
    } > "$C"
    exit 0
fi

# --- e. PDQ ----------------------------------------------------------------------------------
PRUNS=3
say ""
step pdq 120 "${NHE[@]}" "$WORK/bin/nhbench" pdq --runs "$PRUNS" --batch 64 "$WORK/pdqset"
say "PDQ (nhbench pdq, 1 thread, $NDIST distinct small images x $PCOPIES, median of $PRUNS runs):"
sed -n '/^nhbench-pdq:/p; /^OpenCL device/p; /^contender/,/^fast vs ref/p; /^OpenCL vs C/p' \
    "$OUT/pdq.txt" | while read -r line; do say "  $line"; done
[ "$STEP_RC" -ne 0 ] && say "  failed (exit $STEP_RC): $(tail -2 "$OUT/pdq.txt" | tr '\n' ' ')"

# --- f. end to end ---------------------------------------------------------------------------
HELP=$("${NHE[@]}" "$WORK/bin/nhash" hash --help 2>&1)
if printf '%s' "$HELP" | grep -q -- '--decode '; then FASTOPT="--decode fast"; else FASTOPT="--mode fast"; fi
printf '%s' "$HELP" | grep -q -- '--pdq-fast' && FASTOPT="$FASTOPT --pdq-fast"
# PDQ's place: --pdq-backend c|cl where the CLI has it, else NH_PDQ_BACKEND (older builds).
PDQ_C=() PDQ_CL=()
if printf '%s' "$HELP" | grep -q -- '--pdq-backend'; then
    PDQ_C=(--pdq-backend c) PDQ_CL=(--pdq-backend cl)
fi
NH=("${NHE[@]}" NH_STATS=1 "$WORK/bin/nhash")
# shellcheck disable=SC2054
HASH=(hash --algo neural,pdq,digest --model "$ROOT/models/default.nhm" --threads "$NPROC"
    --no-progress)
rate() { awk -v n="$1" -v t="$2" 'BEGIN {if (t > 0) printf "%.1f", n / t; else print "?"}'; }
stat_rate() { sed -n 's/.*(\([0-9.]*\) images\/s).*/\1/p' "$OUT/$1.txt" | tail -1; }
say ""
say "end to end: nhash hash --algo neural,pdq,digest, default.nhm, $NPROC threads, OpenCL on ${CARD:-?},"
say "  $NPH files ($NDIST distinct x $COPIES names; $SETNAME, $(du -shL "$WORK/distinct" | cut -f1) distinct):"
step startup 60 "${NH[@]}" "${HASH[@]}" "$(find "$WORK/distinct" -type f | sort | head -1)"
START=$STEP_SECS
say "  start-up (one file, kernels built): ${START}s"
step decode-compat 90 sh -c 'xargs -d "\n" "$@" < "$0" > /dev/null' "$WORK/photos.list" \
    "${NHE[@]}" "$WORK/bin/nhash" decode --threads "$NPROC"
DC=$STEP_SECS
step decode-fast 90 sh -c 'xargs -d "\n" "$@" < "$0" > /dev/null' "$WORK/photos.list" \
    "${NHE[@]}" "$WORK/bin/nhash" decode --mode fast --threads "$NPROC"
DF=$STEP_SECS
say "  decode only: compat $(rate "$NPH" "$DC") img/s, fast $(rate "$NPH" "$DF") img/s (nhash decode via xargs)"
# GPU utilisation while hashing, sampled by nvidia-smi every 200 ms.
SAMPLER=""
UTIL=$WORK/gpu-util.csv
: > "$UTIL"
if [ "$MODE" = nvidia ] && command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -lms 200 \
        >> "$UTIL" 2> /dev/null &
    SAMPLER=$!
fi
e2e() { # NAME LABEL DECODE-SECONDS ARGS...
    local name=$1 label=$2 dsec=$3 r u0 util=""
    shift 3
    u0=$(wc -l < "$UTIL")
    step "$name" 120 sh -c '"$@" > /dev/null' sh "${NH[@]}" "${HASH[@]}" "$@" "$WORK/photos"
    [ -n "$SAMPLER" ] && util=$(awk -F', *' -v a="$u0" 'NR > a {n++; s += $1; if ($1 > m) m = $1}
        END {if (n) printf ", GPU busy %.0f%% mean %d%% max", s / n, m}' "$UTIL")
    r=$(rate "$NPH" "$STEP_SECS")
    say "$(printf '  %-34s %7s img/s wall (%ss), %7s img/s after start-up, %s of decode-only%s' \
        "$label" "$r" "$STEP_SECS" "$(stat_rate "$name")" \
        "$(awk -v a="$dsec" -v b="$STEP_SECS" 'BEGIN {if (b > 0) printf "%.2fx", a / b; else print "?"}')" \
        "$util")"
    [ "$STEP_RC" -ne 0 ] && say "    exit $STEP_RC: $(grep -v '^nhash: [0-9]* files' "$OUT/$name.txt" | tail -2 | tr '\n' ' ')"
}
e2e hash-compat "compat, default batch" "$DC"
# shellcheck disable=SC2086
e2e hash-fast "fast ($FASTOPT)" "$DF" $FASTOPT
e2e hash-compat-b128 "compat, batch 128" "$DC" --batch 128
[ ${#PDQ_C[@]} -gt 0 ] && e2e hash-compat-pdqc "compat, PDQ in C on the workers" "$DC" "${PDQ_C[@]}"
[ -n "$SAMPLER" ] && kill "$SAMPLER" 2> /dev/null
SAMPLER=""

# --- GPU against the C reference, bit for bit ------------------------------------------------
say ""
step eq-ref 120 sh -c '"$@" > "'"$OUT"'/eq-ref.csv"' sh "${NHE[@]}" NH_PDQ_BACKEND=c \
    "$WORK/bin/nhash" hash --algo neural,pdq --backend ref "${PDQ_C[@]}" --format csv \
    --no-progress --model "$ROOT/models/default.nhm" "$WORK/distinct"
step eq-cl 120 sh -c '"$@" > "'"$OUT"'/eq-cl.csv"' sh "${NHE[@]}" NH_PDQ_BACKEND=cl \
    "$WORK/bin/nhash" hash --algo neural,pdq --backend cl "${PDQ_CL[@]}" --format csv \
    --no-progress --model "$ROOT/models/default.nhm" "$WORK/distinct"
say "equality, $NDIST distinct images: C reference (--backend ref, PDQ in C) vs OpenCL on ${CARD:-?}"
say "  (network and PDQ on the device: ${PDQ_CL[*]:-NH_PDQ_BACKEND=cl}):"
say "  $(awk -F, '
    function bits(a, b,   i, n, x, y, k) {
        n = 0
        for (i = 1; i <= length(a); i++) {
            x = index("0123456789abcdef", substr(a, i, 1)) - 1
            y = index("0123456789abcdef", substr(b, i, 1)) - 1
            for (k = 0; k < 4; k++) { if (x % 2 != y % 2) n++; x = int(x / 2); y = int(y / 2) }
        }
        return n
    }
    FNR == 1 && $1 == "path" {next}
    NR == FNR {n[$1] = $2; p[$1] = $3; q[$1] = $4; next}
    ($1 in n) {
        c++; d = bits(n[$1], $2); if (d) nd++; if (d > nm) nm = d
        e = bits(p[$1], $3); if (e) pd++; if (e > pm) pm = e; if (q[$1] != $4) qd++
        if (n[$1] == "" || $2 == "") empty++
    }
    END {printf "%d files compared: neural hashes differ in %d (max %d bits), PDQ in %d (max %d bits), quality in %d%s",
        c, nd, nm, pd, pm, qd, empty ? sprintf("; %d without a neural hash", empty) : ""}' \
    "$OUT/eq-ref.csv" "$OUT/eq-cl.csv")"
CMP=$(diff "$OUT/eq-ref.csv" "$OUT/eq-cl.csv" | grep -c '^>')
say "  whole CSV lines differing: $CMP of $(($(wc -l < "$OUT/eq-cl.csv") - 1))"

# --- c (end). CPU-only tests -----------------------------------------------------------------
say ""
say "tests without OpenCL:"
for t in "$WORK"/bin/test_*; do
    t=$(basename "$t")
    case $t in test_cl | test_net | test_pdq | test_pipeline) continue ;; esac
    run_test "$t" 120
done
cp .gpu/MANIFEST.txt "$OUT/" 2>/dev/null
say ""
say "done in $(($(date +%s) - T0))s of ${BUDGET}s; details: $OUT/log.txt and one file per step"
