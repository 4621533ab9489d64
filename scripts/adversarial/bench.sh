#!/bin/sh
# The measurements in docs/attacks.md, from the fetched Debian photos (scripts/fetch-data.sh
# --bench and scripts/bench-data.sh). Writes inputs and results under .cache/adversarial/bench.
#
# Usage: scripts/adversarial/bench.sh [NHASH] [PART...]
#   NHASH: the nhash binary (default build-adv/host/nhash, else build/host/nhash)
#   PART:  inputs collide collide1 jpeg evade blackbox (default: all, in that order)
# Each attack runs on one torch thread; `nice` them on a shared machine.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/scripts/adversarial
PY=/usr/bin/python3
NHASH=${1:-}
[ $# -gt 0 ] && shift
if [ -z "$NHASH" ]; then
    NHASH=$ROOT/build-adv/host/nhash
    [ -x "$NHASH" ] || NHASH=$ROOT/build/host/nhash
fi
B=$ROOT/.cache/adversarial/bench
LAND=$ROOT/.cache/bench/land
PHOTOS=$ROOT/.cache/bench/photos
PARTS=${*:-inputs collide collide1 jpeg evade blackbox}
mkdir -p "$B/in" "$B/out"

# 12 pairs: 6 photos (dlib, sklearn, skimage, PASCAL VOC samples) carrying the hashes of 6
# landscapes, and 6 landscapes carrying the hashes of 6 other photos.
PAIRS="2007_007763 beach3
2008_001322 forest2
2008_002470 mountain4
2009_004587 snow2
dogs lava2
rocket sea8
water0 2008_002079
canyon7 2008_004176
city10 Tom_Cruise_avp_2014_4
fields2 china
hills2 flower
snow7 mmod_cars_test_image"

for part in $PARTS; do
case $part in
inputs)
    echo "$PAIRS" | while read -r s t; do
        for n in "$s" "$t"; do
            f=$LAND/$n.jpg; [ -f "$f" ] || f=$PHOTOS/$n.jpg
            $PY -c "import sys; from PIL import Image; Image.open(sys.argv[1]).convert('RGB').resize((360, 360), Image.BICUBIC).save(sys.argv[2])" "$f" "$B/in/$n.png"
        done
    done
    echo "$PAIRS" | while read -r s t; do
        printf '%s\t%s\t%s\n' "$B/in/$s.png" "$B/in/$t.png" "$B/out/$s-as-$t.png"
    done > "$B/pairs.tsv"
    echo "$PAIRS" | while read -r s t; do
        printf '%s\t%s\t%s\n' "$B/in/$s.png" "$B/in/$t.png" "$B/out/jpeg-$s-as-$t.png"
    done | head -n 4 > "$B/pairs-jpeg.tsv"
    echo "$PAIRS" | while read -r s t; do
        printf '%s\t%s\t%s\n' "$B/in/$s.png" "$B/in/$t.png" "$B/out/eps1-$s-as-$t.png"
    done > "$B/pairs-eps1.tsv" ;;
collide)   # default settings: budgets 2,3,4,6,8 levels, up to 100 steps each, exact match
    $PY "$HERE/collide.py" --nhash "$NHASH" --quiet --pairs "$B/pairs.tsv" \
        --json "$B/collide.json" | tee "$B/collide.txt" ;;
collide1)  # one level of budget only, up to 300 steps
    $PY "$HERE/collide.py" --nhash "$NHASH" --quiet --pairs "$B/pairs-eps1.tsv" --eps 1 --steps 300 \
        --json "$B/collide-eps1.json" | tee "$B/collide-eps1.txt" || true ;;
jpeg)      # JPEG-robust: must also hold after re-encoding at quality 75, 85 and 95
    $PY "$HERE/collide.py" --nhash "$NHASH" --quiet --pairs "$B/pairs-jpeg.tsv" --jpeg \
        --eps 4,6,8,12,16 --json "$B/collide-jpeg.json" | tee "$B/collide-jpeg.txt" || true ;;
evade)     # every image of the 12 pairs, past 12 bits (the audit's neural radius)
    $PY "$HERE/evade.py" --nhash "$NHASH" --quiet --out-dir "$B/out/evaded" \
        --json "$B/evade.json" "$B"/in/*.png | tee "$B/evade.txt"
    $PY "$HERE/evade.py" --nhash "$NHASH" --quiet --out-dir "$B/out/evaded48" --distance 48 \
        --eps 1,2,3,4 --json "$B/evade48.json" "$B"/in/*.png | tee "$B/evade48.txt" || true ;;
blackbox)  # no gradients: noise, crop, rotation, JPEG against both hashes
    $PY "$HERE/blackbox.py" --nhash "$NHASH" --json "$B/blackbox.json" "$B"/in/*.png \
        | tee "$B/blackbox.txt" ;;
*) echo "bench.sh: unknown part $part" >&2; exit 2 ;;
esac
done
