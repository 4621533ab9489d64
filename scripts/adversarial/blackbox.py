#!/usr/bin/python3
"""Black-box evasion cost: how strong must plain edits be before a hash moves past its radius?

No gradients and no knowledge of either hash: each image is squashed to 360 x 360 (Pillow
BICUBIC), then edited by one family at rising strength, and the real nhash binary hashes every
copy (neural and PDQ). Families:

  noise   i.i.d. uniform noise in [-a, a] levels per pixel and channel, clipped to 0..255
  crop    keep the centre, cutting f% of the width and of the height (half from each side)
  rotate  rotate by d degrees about the centre (Pillow BICUBIC, same size, black corners)
  jpeg    re-encode at quality q (Pillow)

For each family and strength it reports the median distance to the unedited copy and the share
of images past the radius (PDQ 31 bits, neural 12), as text and JSON.

  blackbox.py --json out.json IMAGE...
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import nhm_torch as M  # noqa: E402

FAMILIES = {
    "noise": [2, 4, 8, 16, 24, 32, 48, 64, 96],
    "crop": [2, 5, 10, 15, 20, 25, 30, 40],
    "rotate": [1, 2, 3, 4, 5, 7, 10, 15, 20],
    "jpeg": [95, 75, 50, 30, 20, 10, 5],
}


def edit(im, fam, v, rng):
    if fam == "noise":
        a = np.asarray(im, dtype=np.int16)
        n = rng.integers(-v, v + 1, size=a.shape)
        return Image.fromarray(np.clip(a + n, 0, 255).astype(np.uint8)), "png"
    if fam == "crop":
        w, h = im.size
        dx, dy = round(w * v / 200), round(h * v / 200)
        return im.crop((dx, dy, w - dx, h - dy)), "png"
    if fam == "rotate":
        return im.rotate(v, Image.BICUBIC), "png"
    return im, "jpeg"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("images", nargs="+")
    ap.add_argument("--nhash", default=M.default_nhash())
    ap.add_argument("--model", default=M.DEFAULT_MODEL)
    ap.add_argument("--pdq-radius", type=int, default=31)
    ap.add_argument("--neural-radius", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    with tempfile.TemporaryDirectory() as d:
        jobs = []  # (image index, family, value, path)
        base = []
        for i, p in enumerate(a.images):
            im = Image.open(p).convert("RGB").resize((360, 360), Image.BICUBIC)
            b = os.path.join(d, f"{i}-base.png")
            im.save(b)
            base.append(b)
            for fam, vals in FAMILIES.items():
                for v in vals:
                    e, kind = edit(im, fam, v, rng)
                    q = os.path.join(d, f"{i}-{fam}-{v}.{'jpg' if kind == 'jpeg' else 'png'}")
                    if kind == "jpeg":
                        e.save(q, "JPEG", quality=v)
                    else:
                        e.save(q)
                    jobs.append((i, fam, v, q))
        recs = M.nhash_hashes(a.nhash, base + [j[3] for j in jobs], "neural,pdq", a.model)
    res = {}
    for i, fam, v, q in jobs:
        r, b = recs[q], recs[base[i]]
        res.setdefault(fam, {}).setdefault(v, []).append(
            (M.hamming_hex(r["pdq"], b["pdq"]), M.hamming_hex(r["neural"], b["neural"])))
    out = {}
    n = len(a.images)
    print(f"{n} images; share past the radius (PDQ > {a.pdq_radius}, neural > {a.neural_radius}) "
          f"and median distance")
    print("family\tstrength\tPDQ past\tPDQ median\tneural past\tneural median")
    for fam, vals in FAMILIES.items():
        out[fam] = []
        for v in vals:
            ds = res[fam][v]
            pd_ = [x[0] for x in ds]
            nd = [x[1] for x in ds]
            row = dict(strength=v, pdq_past=sum(x > a.pdq_radius for x in pd_) / n,
                       pdq_median=float(np.median(pd_)),
                       neural_past=sum(x > a.neural_radius for x in nd) / n,
                       neural_median=float(np.median(nd)), pdq=pd_, neural=nd)
            out[fam].append(row)
            print(f"{fam}\t{v}\t{row['pdq_past']:.2f}\t{row['pdq_median']:g}\t"
                  f"{row['neural_past']:.2f}\t{row['neural_median']:g}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(images=[os.path.basename(p) for p in a.images], units=dict(
                noise="levels, uniform in [-a, a]", crop="percent of each side cut in total",
                rotate="degrees", jpeg="quality"), families=out), f, indent=1)


if __name__ == "__main__":
    main()
