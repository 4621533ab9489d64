#!/bin/sh
# nhbench hash-cost: what PDQ and the digest add to the neural hash in the main job, and the
# main job's images/s and peak memory, for one or two nhash builds side by side in one run
# (runs interleaved: A neural, A all, B neural, B all, ... so drift hits both alike).
#
#   CPU ratio = CPU seconds (user + sys) of `nhash hash --algo neural,pdq,digest`
#               / CPU seconds of `nhash hash --algo neural`, same files, same threads.
# Issue #16's goal: at most 1.15 (it was 1.57 when PDQ decoded every file a second time).
#
# usage: bench/hash-cost.sh [PHOTO_DIR] [RUNS] [NHASH_A] [NHASH_B]
#   PHOTO_DIR  default .cache/bench (photos/, large/ and land/ from scripts/bench-data.sh)
#   NHASH_A    default build/host/nhash; NHASH_B optional (e.g. a build of the previous commit)
# Extra options for every nhash run: NH_HASH_OPTS (e.g. "--backend ref").
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PHOTOS=${1:-$ROOT/.cache/bench}
RUNS=${2:-3}
A=${3:-$ROOT/build/host/nhash}
B=${4:-}
OPTS=${NH_HASH_OPTS:-}
LIST=$(mktemp)
trap 'rm -f "$LIST" "$LIST".*' EXIT
find -L "$PHOTOS" -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) | sort > "$LIST"
N=$(wc -l < "$LIST")
MP=$(xargs -d '\n' vipsheader < "$LIST" 2>/dev/null | awk '{split($2,a,"x"); s+=a[1]*a[2]} END {printf "%.1f", s/1e6}')
: > "$LIST.res"
one() { # LABEL BIN ALGO
    /usr/bin/time -f "%e %U %S %M" -o "$LIST.one" "$2" hash --algo "$3" --no-progress $OPTS - \
        < "$LIST" > /dev/null 2>"$LIST.err" || { echo "$1 $3 failed: $(tail -2 "$LIST.err")" >&2; }
    echo "$1 $3 $(cat "$LIST.one")" >> "$LIST.res"
}
# warm the page cache and the kernel cache once
"$A" hash --algo neural,pdq,digest $OPTS - < "$LIST" > /dev/null 2>&1 || true
i=0
while [ $i -lt "$RUNS" ]; do
    one A "$A" neural
    one A "$A" neural,pdq,digest
    if [ -n "$B" ]; then
        one B "$B" neural
        one B "$B" neural,pdq,digest
    fi
    i=$((i + 1))
done
echo "nhbench hash-cost: $N photos ($MP MP) from $PHOTOS, $(nproc) threads, median of $RUNS runs"
echo "A = $A"
[ -n "$B" ] && echo "B = $B"
awk -v N="$N" '
{ k=$1" "$2; n[k]++; wall[k,n[k]]=$3; cpu[k,n[k]]=$4+$5; rss[k,n[k]]=$6; keys[k]=1 }
function med(arr, k, c,   i, j, t, v) { for (i=1;i<=c;i++) v[i]=arr[k,i];
    for (i=1;i<=c;i++) for (j=i+1;j<=c;j++) if (v[j]<v[i]) {t=v[i]; v[i]=v[j]; v[j]=t}
    return v[int((c+1)/2)] }
END {
    printf "%-4s %-18s %9s %9s %10s %12s\n", "bin", "algo", "wall s", "CPU s", "images/s", "peak RSS MB";
    for (b=0;b<2;b++) { bin = b ? "B" : "A";
        for (a=0;a<2;a++) { algo = a ? "neural,pdq,digest" : "neural"; k=bin" "algo;
            if (!(k in keys)) continue;
            W[bin,a]=med(wall,k,n[k]); C[bin,a]=med(cpu,k,n[k]); R=med(rss,k,n[k]);
            printf "%-4s %-18s %9.2f %9.2f %10.1f %12.0f\n", bin, algo, W[bin,a], C[bin,a], N/W[bin,a], R/1024 } }
    for (b=0;b<2;b++) { bin = b ? "B" : "A"; if (!((bin" neural") in keys)) continue;
        printf "%s: CPU ratio (neural,pdq,digest / neural) %.2fx, wall ratio %.2fx\n", bin,
               C[bin,1]/C[bin,0], W[bin,1]/W[bin,0] }
    if (("B neural") in keys)
        printf "main job (neural,pdq,digest) A vs B: %.2fx the images/s, %.2fx the CPU\n", W["B",1]/W["A",1], C["A",1]/C["B",1]
}' "$LIST.res"
