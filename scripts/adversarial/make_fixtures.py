#!/usr/bin/python3
"""Make tests/data/adversarial/: crafted neural-hash collisions and evasions for the audit tests.

Inputs are public-domain endless-sky landscapes (Debian endless-sky-data 0.9.8-1.2, fetched
by `scripts/fetch-data.sh --bench` into .cache/data/endless-sky). Each is squashed to 360 x 360
with Pillow BICUBIC and saved as PNG; those PNGs are the attack's inputs (so nhash's resize is the
identity). Sources go to .cache/adversarial/sources (not committed: rebuilt from the package),
targets to tests/data/adversarial/targets. Then:

  collide.py --pairs ... : crafted/SOURCE-as-TARGET.png carries TARGET's neural hash
  evade.py ...           : evaded/NAME.png is NAME's target moved off its own neural hash

and pairs.tsv / evaded.tsv record the distances the real nhash binary measures, with
collide.json / evade.json holding every figure. Run from anywhere:

  /usr/bin/python3 scripts/adversarial/make_fixtures.py [--nhash build-adv/host/nhash]
"""
import argparse
import json
import os
import subprocess
import sys

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import nhm_torch as M  # noqa: E402

LAND = os.path.join(ROOT, ".cache", "data", "endless-sky")
OUT = os.path.join(ROOT, "tests", "data", "adversarial")
SRC = os.path.join(ROOT, ".cache", "adversarial", "sources")

# (source, target): unrelated scenes, all public domain in endless-sky-data's copyright file
PAIRS = [("fields9", "earthrise"), ("city9", "fog0"), ("sky0", "nasa7"),
         ("desert2", "city12"), ("mountain6", "nasa5"), ("city6", "badlands5")]
EVADE = ["earthrise", "nasa7", "fog0", "badlands5"]


def to360(name, folder):
    out = os.path.join(folder, name + ".png")
    im = Image.open(os.path.join(LAND, name + ".jpg")).convert("RGB")
    im.resize((360, 360), Image.BICUBIC).save(out, "PNG", optimize=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nhash", default=M.default_nhash())
    ap.add_argument("--model", default=M.DEFAULT_MODEL)
    a = ap.parse_args()
    if not os.path.isdir(LAND):
        sys.exit(f"{LAND} missing: run scripts/fetch-data.sh --bench")
    for d in ("targets", "crafted", "evaded"):
        os.makedirs(os.path.join(OUT, d), exist_ok=True)
    os.makedirs(SRC, exist_ok=True)
    rows = []
    for s, t in PAIRS:
        rows.append((to360(s, SRC), to360(t, os.path.join(OUT, "targets")),
                     os.path.join(OUT, "crafted", f"{s}-as-{t}.png")))
    tsv = os.path.join(ROOT, ".cache", "adversarial", "pairs-in.tsv")
    with open(tsv, "w") as f:
        f.writelines("\t".join(r) + "\n" for r in rows)
    py = sys.executable
    common = ["--nhash", a.nhash, "--model", a.model, "--threads", "1", "--quiet"]
    subprocess.run([py, os.path.join(HERE, "collide.py"), "--pairs", tsv,
                    "--json", os.path.join(OUT, "collide.json")] + common, check=True)
    subprocess.run([py, os.path.join(HERE, "evade.py"), "--out-dir", os.path.join(OUT, "evaded"),
                    "--json", os.path.join(OUT, "evade.json")] + common +
                   [os.path.join(OUT, "targets", n + ".png") for n in EVADE], check=True)
    # the tables the C tests read, from the real binary
    rel = lambda p: os.path.relpath(p, OUT)  # noqa: E731
    with open(os.path.join(OUT, "pairs.tsv"), "w") as f:
        f.write("crafted\ttarget\tneural_distance\tpdq_distance\n")
        for _, t, c in rows:
            r = M.nhash_hashes(a.nhash, [c, t], "neural,pdq", a.model)
            f.write(f"{rel(c)}\t{rel(t)}\t{M.hamming_hex(r[c]['neural'], r[t]['neural'])}\t"
                    f"{M.hamming_hex(r[c]['pdq'], r[t]['pdq'])}\n")
    with open(os.path.join(OUT, "evaded.tsv"), "w") as f:
        f.write("evaded\toriginal\tneural_distance\tpdq_distance\n")
        for n in EVADE:
            e, o = os.path.join(OUT, "evaded", n + ".png"), os.path.join(OUT, "targets", n + ".png")
            r = M.nhash_hashes(a.nhash, [e, o], "neural,pdq", a.model)
            f.write(f"{rel(e)}\t{rel(o)}\t{M.hamming_hex(r[e]['neural'], r[o]['neural'])}\t"
                    f"{M.hamming_hex(r[e]['pdq'], r[o]['pdq'])}\n")
    # keep the JSON free of this machine's absolute paths
    for name in ("collide.json", "evade.json"):
        p = os.path.join(OUT, name)
        with open(p) as f:
            text = f.read()
        with open(p, "w") as f:
            f.write(text.replace(ROOT + "/", ""))


if __name__ == "__main__":
    main()
