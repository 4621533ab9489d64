#!/usr/bin/python3
"""Render nhbench-quality's quality.json as the model card's Markdown results table.

Usage: scripts/train/card_table.py scripts/train/results/quality.json
Columns per algorithm: mean Hamming distance of the copies to their original, and recall at the
threshold that keeps the false-positive rate over all unrelated pairs <= 1e-4 (the last row).
"""
import json
import sys

UNTRAINED = ("rot90", "hflip", "vflip")  # no model here is trained to match these


def main(path):
    d = json.load(open(path))
    algs = d["algorithms"]
    names = [a["name"].replace("neural:", "").replace(".nhm", "") for a in algs]
    head = "| transform | family | " + " | ".join("%s mean | %s rec@1e-4" % (n, n) for n in names) + " |"
    print(head)
    print("|" + "---|" * (2 + 2 * len(algs)))
    rows = [t["name"] for t in algs[0]["transforms"]]
    for i, name in enumerate(rows):
        cells = []
        for a in algs:
            t = a["transforms"][i]
            assert t["name"] == name
            cells += ["%.1f" % t["mean"], "%.3f" % t["recall_fpr_1e-4"]]
        print("| %s | %s | %s |" % (name, algs[0]["transforms"][i]["family"], " | ".join(cells)))
    cells = []
    for a in algs:
        cells += ["**%.1f** of %d" % (a["unrelated_mean"], a["bits"]),
                  "threshold %d (1e-6: %d)" % (a["threshold_fpr_1e-4"], a["threshold_fpr_1e-6"])]
    print("| **unrelated pairs** (%d) | | %s |" % (algs[0]["unrelated_pairs"], " | ".join(cells)))
    cells = []
    for a in algs:
        ts = [t for t in a["transforms"] if t["name"] not in UNTRAINED]
        cells += ["", "**%.3f**" % (sum(t["recall_fpr_1e-4"] for t in ts) / len(ts))]
    print("| **mean recall, %d transforms** (all but %s) | | %s |" % (len(ts), ", ".join(UNTRAINED), " | ".join(cells)))
    print()
    print("%d photos, %d copies (%d failed), %.0f s" % (d["photos"], d["copies"], d["failed_copies"], d["seconds"]))


if __name__ == "__main__":
    main(sys.argv[1])
