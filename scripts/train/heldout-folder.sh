#!/bin/sh
# Make a folder of symlinks to the held-out split, one image per near-duplicate group (the
# first listed), for `nhbench-quality`: the images the model card's quality table is measured on.
# None of them was used in training (scripts/train/prep.py keeps whole groups on one side).
#
# Usage: scripts/train/heldout-folder.sh OUT_DIR [DATA_CACHE]
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:?usage: heldout-folder.sh OUT_DIR [DATA_CACHE]}
CACHE=$(cd "${2:-$ROOT/.cache/data}" && pwd)
mkdir -p "$OUT"
find "$OUT" -maxdepth 1 -type l -delete
n=0
# tab-separated: path relative to the cache, group; header line starts with '#'
grep -v '^#' "$ROOT/scripts/train/split/heldout.txt" | awk -F'\t' '!seen[$2]++ { print $1 }' > "$OUT/.list"
while IFS= read -r rel; do
    [ -f "$CACHE/$rel" ] || { echo "heldout-folder: missing $CACHE/$rel (run the fetch scripts)" >&2; continue; }
    n=$((n + 1))
    ln -s "$CACHE/$rel" "$OUT/$(printf '%03d' "$n")-$(basename "$rel")"
done < "$OUT/.list"
rm -f "$OUT/.list"
echo "heldout-folder: $n images in $OUT"
