#!/bin/sh
# Install the Debian 12 packages nhash needs, only those that are missing.
# Usage: scripts/setup.sh [--dev | --fuzz]   (--dev adds what the fixture scripts, benches and
# fuzzers use; --fuzz only the fuzzers' compiler, for the test command's fuzz smoke)
set -eu

PKGS="build-essential cmake pkg-config git ca-certificates
ocl-icd-opencl-dev opencl-headers ocl-icd-libopencl1 pocl-opencl-icd clinfo
libvips-dev libvips-tools liblmdb-dev lmdb-utils libxxhash-dev libcmocka-dev
libprotobuf-c-dev protobuf-c-compiler python3 python3-numpy python3-pil xxhash"
FUZZ_PKGS="clang-14 libclang-rt-14-dev"
DEV_PKGS="python3-torch libfaiss-dev hyperfine nodejs npm $FUZZ_PKGS"

want="$PKGS"
case "${1:-}" in
--dev) want="$PKGS $DEV_PKGS" ;;
--fuzz) want="$PKGS $FUZZ_PKGS" ;;
"") ;;
*) echo "usage: scripts/setup.sh [--dev | --fuzz]" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
    # a Node.js installed outside Debian's packages (nvm, NodeSource, /usr/local) serves as well,
    # and Debian's npm would conflict with it
    case $p in nodejs) command -v node >/dev/null 2>&1 && continue ;; npm) command -v npm >/dev/null 2>&1 && continue ;; esac
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    echo "setup: all packages present"
    exit 0
fi
echo "setup: installing$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "setup: done"
