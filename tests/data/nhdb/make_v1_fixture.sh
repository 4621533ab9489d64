#!/bin/sh
# Make tests/data/nhdb/v1/ (a schema-1 database, as nhdb wrote it before MIH runs) and
# v1.jsonl (its content), for the upgrade test in tests/test_nhdb.c. The database is written
# by nhdb built from commit 191b967, the last commit with schema 1: 600 neural entries (6
# substrings of 16 bits, so no occupancy bitmaps and a small file) and 200 PDQ entries (16
# substrings), imported in batches of 250 lines, with labels, notes and digests.
# usage: tests/data/nhdb/make_v1_fixture.sh   (from the repository root; needs git and cmake)
set -eu
ROOT=$(git rev-parse --show-toplevel)
OUT=$ROOT/tests/data/nhdb
W=$(mktemp -d)
trap 'git -C "$ROOT" worktree remove --force "$W/src" 2>/dev/null || true; rm -rf "$W"' EXIT
git -C "$ROOT" worktree add --detach "$W/src" 191b967 >/dev/null
cmake -S "$W/src" -B "$W/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$W/build" --target nhdb -j2 >/dev/null
/usr/bin/python3 - "$OUT/v1.jsonl" <<'PY'
import json, random, sys
rng = random.Random(20261129)
out = open(sys.argv[1], "w")
centres = []
for i in range(800):
    pdq = i >= 600
    bits = 256 if pdq else 96
    if any(c[1] == bits for c in centres) and rng.random() < 0.4:  # near copy, same kind
        base = rng.choice([c for c in centres if c[1] == bits])[0]
        h = base
        for _ in range(rng.randrange(0, 7)):
            h ^= 1 << rng.randrange(bits)
    else:
        h = rng.getrandbits(bits)
    centres.append((h, bits))
    rec = {"kind": "pdq" if pdq else "neural",
           "model": None if pdq else "00112233445566ee",
           "hash": format(h, "0%dx" % (bits // 4)),
           "digest": format(rng.getrandbits(128), "032x") if i % 3 == 0 else None,
           "quality": rng.randrange(50, 101) if pdq else None,
           "source": "archive/%04d %s.jpg" % (i, "é" if i % 7 == 0 else "x"),
           "label": ["csam", "known", ""][i % 3],
           "note": "note %d" % i if i % 5 == 0 else "",
           "added": 1764000000 + i}
    out.write(json.dumps(rec, ensure_ascii=False) + "\n")
PY
rm -rf "$OUT/v1"
"$W/build/dbtool/nhdb" create "$OUT/v1" --neural-substrings 6 --pdq-substrings 16
"$W/build/dbtool/nhdb" import "$OUT/v1" "$OUT/v1.jsonl" --batch 250
"$W/build/dbtool/nhdb" verify "$OUT/v1"
rm -f "$OUT/v1/lock.mdb"
ls -l "$OUT/v1"
