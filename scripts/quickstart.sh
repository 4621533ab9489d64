#!/bin/sh
# Set up, build, and run nhash's main job on the bundled sample images.
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
files=$(find "$@" -type f ! -name '*.md' | sort)
echo "== decoded 360x360 tensors (compat mode, Pillow-exact): path, size, xxh3 digest"
# shellcheck disable=SC2086
build/host/nhash decode $files
