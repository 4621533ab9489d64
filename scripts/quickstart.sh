#!/bin/sh
# Set up, build, and run nhash's main job (nhash hash) on the bundled sample images.
# Usage: scripts/quickstart.sh [IMAGE_OR_DIR...]   (default: samples/)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
echo "== OpenCL devices"
build/host/nhash devices
if [ $# -eq 0 ]; then set -- samples; fi
echo "== nhash hash: neural hash (default model), PDQ hash and quality, xxh128 of each file"
find "$@" -type f ! -name '*.md' -print0 | sort -z |
    build/host/nhash hash -0 --algo neural,pdq,digest -
