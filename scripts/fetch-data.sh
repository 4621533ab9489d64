#!/bin/sh
# Fetch the real images tests and benchmarks read, from Debian 12 packages, into a cache
# folder (default .cache/data). Nothing is installed: each .deb is downloaded with
# `apt-get download PKG=VERSION` and unpacked with `dpkg-deb -x`. Versions are pinned so
# expected values stay stable; if the archive no longer serves a pinned version (a point
# release replaced it) the current one is used and a warning says so.
#
# Usage: scripts/fetch-data.sh [--bench] [CACHE_DIR]
#   default set (~55 MB download): dlib photos, skimage data, sklearn photos, PngSuite,
#   gdk-pixbuf test files (fail/ set and bombs), Go image testdata, EXIF orientation set.
#   --bench adds endless-sky landscape photos (720x360, ~70 MB).
set -eu

BENCH=0
if [ "${1:-}" = "--bench" ]; then BENCH=1; shift; fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${1:-$ROOT/.cache/data}
DEBS=$CACHE/.debs
mkdir -p "$CACHE" "$DEBS"

# name package version path-inside-package
SETS="dlib libdlib19.1 19.24+dfsg-1 usr/share/doc/libdlib19.1/examples
skimage python3-skimage 0.19.3-8 usr/lib/python3/dist-packages/skimage/data
sklearn python3-sklearn 1.2.1+dfsg-1 usr/lib/python3/dist-packages/sklearn/datasets/images
pngsuite libsixel-examples 1.10.3-3 usr/share/doc/libsixel-examples
pixbuf gdk-pixbuf-tests 2.42.10+dfsg-1+deb12u4 usr/libexec/installed-tests/gdk-pixbuf
goimage golang-1.19-src 1.19.8-2 usr/share/go-1.19/src/image/testdata
orientation golang-github-disintegration-imaging-dev 1.6.2-2 usr/share/gocode/src/github.com/disintegration/imaging/testdata"
if [ $BENCH = 1 ]; then
    SETS="$SETS
endless-sky endless-sky-data 0.9.8-1.2 usr/share/games/endless-sky/images/land"
fi

updated=0
fetch() { # name pkg ver inside
    name=$1 pkg=$2 ver=$3 inside=$4
    stamp=$CACHE/.$name.stamp
    if [ -f "$stamp" ] && [ -d "$CACHE/$name" ]; then return 0; fi
    echo "fetch-data: $name <- $pkg $ver"
    ( cd "$DEBS"
      if ! ls "${pkg}_"*.deb >/dev/null 2>&1; then
          if ! apt-get download -q "$pkg=$ver" >/dev/null 2>&1; then
              if [ $updated = 0 ] && [ "$(id -u)" -eq 0 ]; then apt-get update -qq || true; fi
              if ! apt-get download -q "$pkg=$ver" >/dev/null 2>&1; then
                  echo "fetch-data: WARNING: $pkg $ver not in the archive, taking the current version" >&2
                  apt-get download -q "$pkg" >/dev/null
              fi
          fi
      fi )
    updated=1
    tmp=$CACHE/.x-$name
    rm -rf "$tmp" "$CACHE/$name"
    mkdir -p "$tmp"
    dpkg-deb -x "$DEBS/${pkg}_"*.deb "$tmp"
    if [ ! -d "$tmp/$inside" ]; then
        echo "fetch-data: $pkg has no $inside" >&2
        exit 1
    fi
    mv "$tmp/$inside" "$CACHE/$name"
    rm -rf "$tmp"
    # Debian compresses some docs; the images inside must be plain files.
    find "$CACHE/$name" -name '*.gz' -exec gunzip -f {} + 2>/dev/null || true
    dpkg-deb -f "$DEBS/${pkg}_"*.deb Version > "$stamp"
}

echo "$SETS" | while read -r name pkg ver inside; do
    [ -n "$name" ] && fetch "$name" "$pkg" "$ver" "$inside"
done
echo "fetch-data: cache ready in $CACHE"
