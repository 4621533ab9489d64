#!/bin/sh
# Fetch the extra Debian photo packages the training set uses, beyond scripts/fetch-data.sh
# (run that one first with --bench for endless-sky). Same cache layout and conventions:
# `apt-get download PKG=VERSION` + `dpkg-deb -x`, nothing installed, pinned versions, one
# folder per package under the cache (default .cache/data) and a .NAME.stamp with the version.
#
# Usage: scripts/train/fetch-train-data.sh [CACHE_DIR]
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${1:-$ROOT/.cache/data}
DEBS=$CACHE/.debs
mkdir -p "$CACHE" "$DEBS"

SETS="visp visp-images-data 3.5.0-1 usr/share/visp-images-data/ViSP-images
labelme labelme-examples 5.1.1-1 usr/share/doc/labelme-examples/examples
opencv opencv-doc 4.6.0+dfsg-12 usr/share/doc/opencv-doc/examples/data"

echo "$SETS" | while read -r name pkg ver inside; do
    [ -n "$name" ] || continue
    if [ -f "$CACHE/.$name.stamp" ] && [ -d "$CACHE/$name" ]; then continue; fi
    echo "fetch-train-data: $name <- $pkg $ver"
    ( cd "$DEBS"
      ls "${pkg}_"*.deb >/dev/null 2>&1 || apt-get download -q "$pkg=$ver" >/dev/null \
          || { echo "fetch-train-data: WARNING: $pkg $ver not in the archive, taking the current one" >&2;
               apt-get download -q "$pkg" >/dev/null; } )
    tmp=$CACHE/.x-$name
    rm -rf "$tmp" "$CACHE/$name"
    mkdir -p "$tmp"
    dpkg-deb -x "$DEBS/${pkg}_"*.deb "$tmp"
    [ -d "$tmp/$inside" ] || { echo "fetch-train-data: $pkg has no $inside" >&2; exit 1; }
    mv "$tmp/$inside" "$CACHE/$name"
    rm -rf "$tmp"
    find "$CACHE/$name" -name '*.gz' -exec gunzip -f {} + 2>/dev/null || true
    dpkg-deb -f "$DEBS/${pkg}_"*.deb Version > "$CACHE/.$name.stamp"
done
echo "fetch-train-data: cache ready in $CACHE"
