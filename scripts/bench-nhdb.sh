#!/bin/sh
# Run the nhdb benchmark as reported for issue #4: 96-bit and 256-bit synthetic clustered sets
# at 1M and 10M entries, nhdb MIH vs its linear scan vs FAISS IndexBinaryFlat and
# IndexBinaryMultiHash. Every set is built in one transaction (the 10M 256-bit one peaks at
# 4.7 GiB); that set skips IndexBinaryMultiHash (its 12 hash maps take minutes to build).
# usage: scripts/bench-nhdb.sh [BUILD_DIR] [WORK_DIR]
set -eu
B=${1:-build-nhdb}
W=${2:-/tmp}
"$B/bench/nhbench-db" --bits 96 --sizes 1000000,10000000 --queries 400 --dir "$W"
"$B/bench/nhbench-db" --bits 256 --sizes 1000000 --queries 200 --dir "$W"
"$B/bench/nhbench-db" --bits 256 --sizes 10000000 --queries 200 --faiss-mh-max 0 --dir "$W"
