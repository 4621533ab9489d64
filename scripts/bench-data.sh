#!/bin/sh
# Build the photo sets the benchmarks read, in .cache/bench (never committed):
#   photos/  19 real photos from the fetched Debian packages (150x150 .. 2482x614)
#   large/   4 of them upscaled once with libvips to about 12 MP, JPEG Q92, standing in for
#            phone photos (the Debian packages have few large photos); benchmarks say so.
#   land/    273 endless-sky landscape photos 720x360 (needs scripts/fetch-data.sh --bench)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
D=$ROOT/.cache/data
B=$ROOT/.cache/bench
"$ROOT/scripts/fetch-data.sh" --bench >/dev/null
mkdir -p "$B/photos" "$B/large"
for f in "$D"/dlib/faces/*.jpg "$D"/sklearn/*.jpg "$D"/skimage/rocket.jpg \
         "$D"/skimage/hubble_deep_field.jpg "$D"/skimage/retina.jpg "$D"/dlib/mmod*.jpg; do
    cp -n "$f" "$B/photos/"
done
for f in sklearn/china.jpg sklearn/flower.jpg dlib/faces/bald_guys.jpg skimage/retina.jpg; do
    out="$B/large/up_$(basename "$f")"
    [ -f "$out" ] || vipsthumbnail "$D/$f" -s 4000x3000! -o "$out[Q=92]"
done
rm -f "$B/land"; ln -s "$D/endless-sky" "$B/land"
echo "bench-data: $(ls "$B/photos" | wc -l) photos, $(ls "$B/large" | wc -l) large, $(ls "$B/land/" | wc -l) landscapes in $B"
