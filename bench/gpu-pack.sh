#!/bin/sh
# nhbench gpu-pack: bundle a build made here (Debian 12) for a one-shot run on a GPU machine
# that cannot build nhash (no libvips, lmdb, cmocka, protobuf-c or OpenCL loader there):
# the executables, every shared library they need apart from glibc's own, and the ICD loader
# libOpenCL.so.1 from Debian's ocl-icd-libopencl1. bench/gpu-check.sh runs it there.
#
# usage: bench/gpu-pack.sh [BUILD_DIR]        (default: build; configured and built if
#                                              BUILD_DIR/host/nhash is missing)
#
# Writes .gpu/ (ignored through .git/info/exclude):
#   bin/          nhash, nhdb, nhbench and the nhbench-* it runs (net, pdq, decode), test_*
#   lib.tar.xz    lib/*.so* (libstdc++ and libgcc_s in lib/compat/, used only where the
#                 machine has none), lib/libOpenCL.so.1; xz because the closure of libvips
#                 is ~100 MB and a run carries 64 MiB in all, tree included
#   unxz/         xz and liblzma, to unpack lib.tar.xz wherever tar has no xz
#   paths.txt     the build and the source it came from (paths compiled into the binaries)
#   MANIFEST.txt  what went in, sizes, largest libraries
# libicudata (31 MB of ICU tables, reached only through libxml2's charset converters, which
# nhash never uses) is replaced by a stub of the same soname and symbol; NH_GPU_PACK_REAL_ICU=1
# carries the real one (+7.5 MB compressed).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" 2>/dev/null && pwd || echo "${1:-$ROOT/build}")
DEST=$ROOT/.gpu
ARCH=x86_64-linux-gnu

if [ ! -x "$BUILD/host/nhash" ]; then
    echo "gpu-pack: no $BUILD/host/nhash, building" >&2
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
    cmake --build "$BUILD" -j2 >&2
fi

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/nh-gpu-pack.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/bin" "$STAGE/lib/compat"

# Executables: the CLIs, the benchmarks the check runs through `nhbench`, the test binaries.
# nhbench-db (FAISS, OpenBLAS) and nhbench-quality (its photo sets) stay behind.
(
    cd "$BUILD"
    for f in host/nhash dbtool/nhdb bench/nhbench bench/nhbench-net bench/nhbench-pdq \
        bench/nhbench-decode tests/test_*; do
        if [ -f "$f" ] && [ -x "$f" ]; then cp "$f" "$STAGE/bin/"; fi
    done
)
[ -x "$STAGE/bin/nhash" ] || { echo "gpu-pack: nhash missing from $BUILD" >&2; exit 1; }
# The independent tools the tests check against (lmdb-utils' mdb_stat and mdb_dump, xxhash's
# xxhsum): the device has neither package. gpu-check.sh puts them on the tests' PATH.
mkdir -p "$STAGE/tools"
for t in mdb_stat mdb_dump xxhsum; do
    p=$(command -v "$t" 2>/dev/null) && cp "$p" "$STAGE/tools/"
done

# Libraries: every non-glibc library ldd resolves for any of them, under the name it is
# asked for (the soname). libOpenCL comes from the Debian package below.
ldd "$STAGE"/bin/* "$STAGE"/tools/* 2>/dev/null | awk '$2 == "=>" {print $1, $3}' | sort -u > "$STAGE/ldd.txt"
if grep -q ' not$' "$STAGE/ldd.txt"; then
    echo "gpu-pack: unresolved libraries:" >&2
    grep ' not$' "$STAGE/ldd.txt" >&2
    exit 1
fi
while read -r name path; do
    case $name in
    libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | ld-linux* | \
        libresolv.so.* | libOpenCL.so.*) continue ;;
    libstdc++.so.* | libgcc_s.so.*) dir=$STAGE/lib/compat ;;
    *) dir=$STAGE/lib ;;
    esac
    cp -L "$path" "$dir/$name"
done < "$STAGE/ldd.txt"
# The copies are Debian's, already stripped; --strip-unneeded drops what little is left.
strip --strip-unneeded "$STAGE"/lib/*.so* "$STAGE"/lib/compat/*.so* 2>/dev/null || true

# ICU data stub: one read-only symbol, icudtNN_dat; ICU checks the header it finds there and
# reports U_INVALID_FORMAT_ERROR instead of converting, should anything ever ask.
ICUDATA=$(cd "$STAGE/lib" && ls libicudata.so.* 2>/dev/null | head -1 || true)
if [ -n "$ICUDATA" ] && [ "${NH_GPU_PACK_REAL_ICU:-0}" != 1 ]; then
    sym=$(nm -D --defined-only "$STAGE/lib/$ICUDATA" | awk '$3 ~ /^icudt[0-9]+_dat$/ {print $3}')
    if [ -n "$sym" ]; then
        printf '__attribute__((aligned(16))) const unsigned char %s[64];\n' "$sym" > "$STAGE/icu.c"
        gcc -shared -fPIC -O2 -Wl,-soname,"$ICUDATA" -o "$STAGE/lib/$ICUDATA" "$STAGE/icu.c"
        rm -f "$STAGE/icu.c"
        ICU_NOTE="$ICUDATA is a stub ($sym only; NH_GPU_PACK_REAL_ICU=1 for the real one)"
    fi
fi

# The ICD loader from Debian's package (the same build the binaries linked against).
(
    cd "$STAGE" && mkdir deb && cd deb &&
        apt-get download ocl-icd-libopencl1 >/dev/null 2>&1 &&
        dpkg -x ocl-icd-libopencl1_*.deb x
) || true
if ls "$STAGE"/deb/x/usr/lib/$ARCH/libOpenCL.so.1* >/dev/null 2>&1; then
    cp -L "$STAGE"/deb/x/usr/lib/$ARCH/libOpenCL.so.1 "$STAGE/lib/libOpenCL.so.1"
    OCL_NOTE="libOpenCL.so.1 from $(basename "$STAGE"/deb/ocl-icd-libopencl1_*.deb)"
else
    echo "gpu-pack: apt-get download ocl-icd-libopencl1 failed; using the installed copy" >&2
    cp -L /usr/lib/$ARCH/libOpenCL.so.1 "$STAGE/lib/libOpenCL.so.1"
    OCL_NOTE="libOpenCL.so.1 from the installed ocl-icd-libopencl1 $(dpkg-query -W -f '${Version}' ocl-icd-libopencl1 2>/dev/null)"
fi
rm -rf "$STAGE/deb"

# Fill .gpu: executables as they are, libraries compressed, and an xz that can unpack them.
rm -rf "$DEST"
mkdir -p "$DEST/bin" "$DEST/unxz"
cp "$STAGE"/bin/* "$DEST/bin/"
mkdir -p "$DEST/tools"
cp "$STAGE"/tools/* "$DEST/tools/" 2>/dev/null || true
cp -L "$(command -v xz)" "$DEST/unxz/xz"
cp -L "$(ldd "$(command -v xz)" | awk '$1 ~ /^liblzma/ {print $3}')" "$DEST/unxz/liblzma.so.5"
(cd "$STAGE" && tar -cf lib.tar lib)
xz -9 -T2 "$STAGE/lib.tar"
xz -t "$STAGE/lib.tar.xz"
mv "$STAGE/lib.tar.xz" "$DEST/lib.tar.xz"
# The source the build was configured from (bench and test defaults were compiled from it).
SRC=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$BUILD/CMakeCache.txt" 2>/dev/null)
SRC=${SRC:-$ROOT}
{
    echo "build=$BUILD"
    echo "source=$SRC"
} > "$DEST/paths.txt"
{
    echo "nhash GPU bundle, made $(date -u '+%Y-%m-%d %H:%M UTC') on $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "source $SRC at $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo '?')" \
        "($(git -C "$SRC" status --porcelain 2>/dev/null | wc -l) paths changed), build $BUILD"
    echo "$OCL_NOTE"
    [ -n "${ICU_NOTE:-}" ] && echo "$ICU_NOTE"
    echo "executables:"
    (cd "$DEST/bin" && ls -l | awk 'NR > 1 {printf "  %-22s %9d\n", $9, $5}')
    echo "libraries: $(find "$STAGE/lib" -type f | wc -l) files," \
        "$(du -sb "$STAGE/lib" | cut -f1) bytes, $(wc -c < "$DEST/lib.tar.xz") compressed; largest:"
    find "$STAGE/lib" -type f -printf '%s %P\n' | sort -rn | head -15 |
        awk '{printf "  %-28s %9d\n", $2, $1}'
} > "$DEST/MANIFEST.txt"

# Real photos for the end-to-end steps (.gpu-photos, carried beside .gpu): the bench set's 19
# photos, its four 12 MP upscales and the first NH_GPU_PACK_LAND (100) landscapes, when
# scripts/bench-data.sh has made them; gpu-check.sh falls back to the committed images.
PH=$ROOT/.gpu-photos
rm -rf "$PH"
if [ -d "$ROOT/.cache/bench/photos" ]; then
    mkdir -p "$PH"
    cp "$ROOT"/.cache/bench/photos/* "$ROOT"/.cache/bench/large/* "$PH/" 2>/dev/null || true
    find -L "$ROOT/.cache/bench/land/" -type f -name '*.jpg' | sort | head -n "${NH_GPU_PACK_LAND:-100}" |
        while read -r f; do cp "$f" "$PH/land-$(basename "$f")"; done
    grep -qx '/.gpu-photos/' "$ROOT/.git/info/exclude" 2>/dev/null ||
        echo '/.gpu-photos/' >> "$ROOT/.git/info/exclude"
    echo "photos: $(ls "$PH" | wc -l) files, $(du -sh "$PH" | cut -f1) in .gpu-photos (carry it too)"
fi

TREE=$(git -C "$ROOT" ls-files -z | (cd "$ROOT" && xargs -0 du -cb 2>/dev/null) | tail -1 | cut -f1)
UNTRACKED=$(git -C "$ROOT" ls-files -z --others --exclude-standard |
    (cd "$ROOT" && xargs -0 -r du -cb 2>/dev/null) | tail -1 | cut -f1)
BUNDLE=$(du -scb "$DEST" "$PH" 2>/dev/null | tail -1 | cut -f1)
cat "$DEST/MANIFEST.txt"
awk -v b="$BUNDLE" -v t="$TREE" -v u="${UNTRACKED:-0}" 'BEGIN {
    m = 1048576
    printf "bundle .gpu + .gpu-photos: %.1f MiB; tree: %.1f MiB tracked + %.1f MiB untracked; together %.1f of 64 MiB\n",
        b / m, t / m, u / m, (b + t + u) / m }'
