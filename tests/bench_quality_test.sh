#!/bin/sh
# nhbench-quality on three bundled samples (a real file, a symlink, a second real file) with
# the test network and PDQ: it must finish, write quality.json and one ROC plot per algorithm,
# report a lossless PNG re-encode at distance 0 for both (the same pixels must hash the same),
# and leave every input exactly where it was. (An earlier version deleted the originals of
# every chunk but the first.)
# It runs as `nhbench quality ...`, so the front door is tested too.
# usage: bench_quality_test.sh NHBENCH SOURCE_DIR
set -eu
NHBENCH=$1
SRC=$2
BIN() { "$NHBENCH" quality "$@"; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir "$T/photos"
cp "$SRC/samples/astronaut.jpg" "$SRC/samples/coffee.png" "$T/photos/"
ln -s "$SRC/samples/horse.png" "$T/photos/horse.png"
( cd "$T/photos" && sha256sum astronaut.jpg coffee.png horse.png ) > "$T/before.txt"
before_tmp=$(ls -d /tmp/nhbench_quality_* 2>/dev/null | wc -l)

BIN --model "$SRC/models/nh_test.nhm" --out "$T/out" "$T/photos" > "$T/log.txt" 2>&1 || {
    cat "$T/log.txt"; exit 1; }
cat "$T/log.txt"

( cd "$T/photos" && sha256sum -c --quiet "$T/before.txt" )
[ -L "$T/photos/horse.png" ]
[ "$(ls "$T/photos" | wc -l)" = 3 ]
[ "$(ls -d /tmp/nhbench_quality_* 2>/dev/null | wc -l)" = "$before_tmp" ]
[ -s "$T/out/quality.json" ]
[ "$(ls "$T/out"/roc_*.svg | wc -l)" = 2 ]
grep -q '^nhbench-quality: 3 photos' "$T/log.txt"
# "png" rows: mean distance 0.00 for the neural hash and for PDQ.
[ "$(awk '$1 == "png" && $3 == "0.00"' "$T/log.txt" | wc -l)" = 2 ]
echo "nhbench-quality smoke test: ok"
# An output folder that cannot be made is a clear error before any work, not a crash at the end.
if BIN --model "$SRC/models/nh_test.nhm" --out "$T/photos/astronaut.jpg/out" "$T/photos" 2> "$T/err.txt"; then
    echo "nhbench-quality accepted an output folder inside a file"; exit 1
fi
grep -q "astronaut.jpg/out" "$T/err.txt"
echo "nhbench-quality bad --out: ok"
# The front door: --help lists the benchmarks, an unknown one is refused.
"$NHBENCH" --help | grep -q '^  quality'
if "$NHBENCH" nosuch 2> "$T/err.txt"; then echo "nhbench accepted an unknown command"; exit 1; fi
grep -q "unknown command 'nosuch'" "$T/err.txt"
echo "nhbench front door: ok"
