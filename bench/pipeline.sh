#!/bin/sh
# nhbench pipeline: end-to-end images/s of `nhash hash` on real photos, side by side in one
# run with (a) decode-only throughput on the same files (`nhash decode`, compat mode) and
# (b) the nnhash.py way (Pillow preprocessing + onnxruntime-node on the same model, the
# same number of threads), with ratios and peak memory. Medians of RUNS runs.
#
# usage: bench/pipeline.sh [BUILD_DIR] [PHOTO_DIR] [RUNS]
# needs: models/nh_test.onnx (scripts/net/make_fixtures.py) and `npm install` in scripts/net
# for the nnhash.py column; both columns of nhash run models/nh_test.nhm, the same network.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
PHOTOS=${2:-$ROOT/.cache/bench/land}
RUNS=${3:-3}
NHASH=$BUILD/host/nhash
MODEL=$ROOT/models/nh_test.nhm
THREADS=$(nproc)
LIST=$(mktemp)
trap 'rm -f "$LIST" "$LIST".*' EXIT
find -L "$PHOTOS" -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) | sort > "$LIST"
N=$(wc -l < "$LIST")
MP=$(xargs -d '\n' vipsheader < "$LIST" 2>/dev/null | awk '{split($2,a,"x"); s+=a[1]*a[2]} END {printf "%.1f", s/1e6}')

# run NAME CMD: median seconds and peak RSS of CMD over RUNS runs (first run warms caches)
run() {
    name=$1; shift
    sh -c "$*" >/dev/null 2>&1 || true
    : > "$LIST.t"
    i=0
    while [ $i -lt "$RUNS" ]; do
        /usr/bin/time -f '%e %M' -o "$LIST.one" sh -c "$*" >/dev/null 2>"$LIST.err" || {
            echo "$name failed: $(tail -3 "$LIST.err")" >&2; }
        cat "$LIST.one" >> "$LIST.t"
        i=$((i + 1))
    done
    sort -n "$LIST.t" | awk -v n="$name" -v N="$N" -v r="$RUNS" '{t[NR]=$1; m[NR]=$2}
        END {k=int((r+1)/2); printf "%s %.3f %d\n", n, t[k], m[k]}' >> "$LIST.res"
}

: > "$LIST.res"
run nhash_hash_opencl "'$NHASH' hash --model '$MODEL' --backend cl --batch 32 - < '$LIST'"
run nhash_hash_ref "'$NHASH' hash --model '$MODEL' --backend ref --batch 32 - < '$LIST'"
run decode_only "xargs -d '\n' '$NHASH' decode < '$LIST'"
ONNX=$ROOT/models/nh_test.onnx
if [ -f "$ONNX" ] && [ -d "$ROOT/scripts/net/node_modules/onnxruntime-node" ]; then
    run nnhash_py_style "/usr/bin/python3 '$ROOT/scripts/bench/nnhash_style.py' '$ONNX' '$ROOT/models/nh_test_seed.dat' 32 $THREADS < '$LIST'"
else
    echo "(nnhash.py-style column skipped: run scripts/net/make_fixtures.py and npm install in scripts/net)" >&2
fi
echo "nhbench pipeline: $N photos ($MP MP) from $PHOTOS, $THREADS threads, median of $RUNS runs"
awk -v N="$N" '{name[NR]=$1; t[NR]=$2; m[NR]=$3; if ($1=="nnhash_py_style") base=$2; if ($1=="decode_only") dec=$2}
    END {printf "%-22s %9s %10s %12s %14s %12s\n", "contender", "seconds", "images/s", "peak RSS MB", "vs nnhash.py", "vs decode";
         for (i=1;i<=NR;i++) printf "%-22s %9.2f %10.1f %12.0f %13s %11.2fx\n", name[i], t[i], N/t[i], m[i]/1024,
             base ? sprintf("%.2fx", base/t[i]) : "-", dec/t[i]}' "$LIST.res"
