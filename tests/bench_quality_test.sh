#!/bin/sh
# nhbench-quality on three bundled samples (a real file, a symlink, a second real file) with
# the test network and PDQ: it must finish, write quality.json and one ROC plot per algorithm
# and per decision rule (checked below for consistency, and again with --groups),
# report a lossless PNG re-encode at distance 0 for both (the same pixels must hash the same),
# and leave every input exactly where it was. (An earlier version deleted the originals of
# every chunk but the first.)
# It runs as `nhbench quality ...`, so the front door is tested too.
# usage: bench_quality_test.sh NHBENCH SOURCE_DIR
set -eu
NHBENCH=$1
SRC=$2
BIN() { "$NHBENCH" quality "$@"; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir "$T/photos"
cp "$SRC/samples/astronaut.jpg" "$SRC/samples/coffee.png" "$T/photos/"
ln -s "$SRC/samples/horse.png" "$T/photos/horse.png"
( cd "$T/photos" && sha256sum astronaut.jpg coffee.png horse.png ) > "$T/before.txt"
before_tmp=$(ls -d /tmp/nhbench_quality_* 2>/dev/null | wc -l)

BIN --model "$SRC/models/nh_test.nhm" --out "$T/out" "$T/photos" > "$T/log.txt" 2>&1 || {
    cat "$T/log.txt"; exit 1; }
cat "$T/log.txt"

( cd "$T/photos" && sha256sum -c --quiet "$T/before.txt" )
[ -L "$T/photos/horse.png" ]
[ "$(ls "$T/photos" | wc -l)" = 3 ]
[ "$(ls -d /tmp/nhbench_quality_* 2>/dev/null | wc -l)" = "$before_tmp" ]
[ -s "$T/out/quality.json" ]
# one ROC plot per algorithm and one per rule of the (neural, PDQ) pair
[ "$(ls "$T/out"/roc_*.svg | wc -l)" = 5 ]
for r in and or fused; do [ -s "$T/out/roc_${r}_neural_nh_test_nhm_pdq.svg" ]; done
grep -q '^nhbench-quality: 3 photos' "$T/log.txt"
# "png" rows: mean distance 0.00 for the neural hash and for PDQ.
[ "$(awk '$1 == "png" && $3 == "0.00"' "$T/log.txt" | wc -l)" = 2 ]
echo "nhbench-quality smoke test: ok"

# The decision rules in quality.json: AND within both single hashes at its own thresholds, OR at
# least either, thresholds within the target wherever the sample can show it, every interval
# around its estimate, the conservative AND at the single-hash thresholds.
check_rules() { # JSON EXPECTED_UNRELATED_PAIRS AND_RADII|none
python3 - "$1" "$2" "$3" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
want_pairs = int(sys.argv[2])
algs = {a["name"]: a for a in d["algorithms"]}
for a in algs.values():
    assert a["unrelated_pairs"] == want_pairs, (a["name"], a["unrelated_pairs"])
    for t in a["transforms"]:
        for k in ("1e-4", "1e-6"):
            lo, hi = t["recall_fpr_%s_ci95" % k]
            assert lo <= t["recall_fpr_%s" % k] <= hi, t
rules = d["rules"]
assert rules, "no rules"
by = {}
for r in rules:
    by[(r["pair"], r["fpr_target"], r["rule"])] = r
    n = r["unrelated_pairs"]
    assert n == want_pairs, (r["rule"], n)
    if r["rule"] == "and_given":
        assert r["fpr_target"] is None and r["resolvable"] is None
    else:
        assert r["resolvable"] == (r["fpr_target"] * n >= 1), r["rule"]
    assert r["unrelated_matched"] <= n and abs(r["fpr_observed"] - r["unrelated_matched"] / n) < 1e-3 * r["fpr_observed"] + 1e-12
    if r["rule"] not in ("and_conservative", "and_given"):
        if r["resolvable"]:
            assert r["fpr_observed"] <= r["fpr_target"], (r["rule"], r["fpr_observed"])
        else:
            assert r["unrelated_matched"] == 0, r["rule"]
    lo, hi = r["fpr_ci95"]
    assert lo <= r["fpr_observed"] <= hi
    for t in r["transforms"]:
        lo, hi = t["ci95"]
        assert lo <= t["recall"] <= hi, (r["rule"], t)
        assert t["matched"] <= t["pairs"]
        if r["rule"] in ("and", "and_conservative", "and_given"):
            assert t["recall"] <= min(t["recall_neural_alone"], t["recall_pdq_alone"]), (r["rule"], t)
        if r["rule"] == "or":
            assert t["recall"] >= max(t["recall_neural_alone"], t["recall_pdq_alone"]), t
    for f in r["families"]:
        lo, hi = f["ci95"]
        assert lo <= f["recall"] <= hi, (r["rule"], f)
given = [r for r in rules if r["rule"] == "and_given"]
assert len(given) == (sys.argv[3] != "none")
for r in given:
    assert "%d,%d" % (r["threshold_neural"], r["threshold_pdq"]) == sys.argv[3], r
pairs = {(p, t) for p, t, _ in by if t is not None}
assert len(rules) == 6 * len(pairs) + len(given), len(rules)
for p, tgt in pairs:
    g = lambda name: by[(p, tgt, name)]
    ne, pq, an, ac, orr, fu = (g(x) for x in ("neural", "pdq", "and", "and_conservative", "or", "fused"))
    key = "threshold_fpr_%s" % ("1e-4" if tgt == 1e-4 else "1e-6")
    assert ne["threshold_neural"] == algs[ne["neural"]][key], (ne["threshold_neural"], key)
    assert pq["threshold_pdq"] == algs[pq["pdq"]][key]
    assert (ac["threshold_neural"], ac["threshold_pdq"]) == (ne["threshold_neural"], pq["threshold_pdq"])
    assert ac["unrelated_matched"] <= min(ne["unrelated_matched"], pq["unrelated_matched"])
    # the optimised AND searches a grid that holds the conservative pair, OR one that holds each hash alone
    assert an["mean_recall"] >= ac["mean_recall"] - 1e-4, (an["mean_recall"], ac["mean_recall"])
    assert orr["mean_recall"] >= max(ne["mean_recall"], pq["mean_recall"]) - 1e-4
    for a, b, c, x in zip(ne["transforms"], pq["transforms"], an["transforms"], ac["transforms"]):
        assert a["name"] == b["name"] == c["name"] == x["name"]
        assert x["recall"] <= min(a["recall"], b["recall"])
    for fn, fp, fa, fc in zip(ne["families"], pq["families"], an["families"], ac["families"]):
        best = max(fn["recall"], fp["recall"])
        for f in (fa, fc):
            assert abs(f["best_single_recall"] - best) < 1e-4, f
            assert abs(f["loss_vs_best_single"] - (best - f["recall"])) < 2e-4, f
    assert fu["rule"] == "fused" and ("threshold_score" in fu)
print("rules: %d entries checked" % len(rules))
PY
}
check_rules "$T/out/quality.json" 198 none
echo "nhbench-quality rules: ok"
# --groups: astronaut (by file name) and coffee (by the path as listed) in one group are not each
# other's unrelated pairs: 198 - 2 x 33 = 132 pairs; a line without a tab is a usage error. --and
# adds the AND rule at given radii.
printf '# near-duplicates\nastronaut.jpg\tg1\n%s\tg1\n\nnosuch.png\tg2\n' "$T/photos/coffee.png" > "$T/groups.tsv"
BIN --model "$SRC/models/nh_test.nhm" --groups "$T/groups.tsv" --and 10,60 --out "$T/outg" "$T/photos" > "$T/logg.txt" 2>&1 || {
    cat "$T/logg.txt"; exit 1; }
grep -q '^groups: 2 of 3 photos in 2 groups' "$T/logg.txt"
check_rules "$T/outg/quality.json" 132 10,60
printf 'astronaut.jpg g1\n' > "$T/bad.tsv"
if BIN --groups "$T/bad.tsv" --out "$T/outb" "$T/photos" 2> "$T/err.txt"; then
    echo "nhbench-quality accepted a groups line without a tab"; exit 1
fi
grep -q 'bad.tsv:1' "$T/err.txt"
"$NHBENCH" quality --help | grep -q -- '--groups FILE'
echo "nhbench-quality --groups: ok"
# An output folder that cannot be made is a clear error before any work, not a crash at the end.
if BIN --model "$SRC/models/nh_test.nhm" --out "$T/photos/astronaut.jpg/out" "$T/photos" 2> "$T/err.txt"; then
    echo "nhbench-quality accepted an output folder inside a file"; exit 1
fi
grep -q "astronaut.jpg/out" "$T/err.txt"
echo "nhbench-quality bad --out: ok"
# The front door: --help lists the benchmarks, an unknown one is refused.
"$NHBENCH" --help | grep -q '^  quality'
if "$NHBENCH" nosuch 2> "$T/err.txt"; then echo "nhbench accepted an unknown command"; exit 1; fi
grep -q "unknown command 'nosuch'" "$T/err.txt"
echo "nhbench front door: ok"
