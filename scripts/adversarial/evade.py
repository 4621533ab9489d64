#!/usr/bin/python3
"""Evasion attack on an nhash neural hash: perturb an image, with the smallest L-infinity budget
of a list tried in order, until its neural hash is more than --distance bits from its own
(default 13: just past nhash audit's neural radius of 12 bits).

Each image is squashed to the model's input size (360 x 360, Pillow BICUBIC) if it is not that
size already; the result is a 360 x 360 PNG. The original's hash is what the real
`nhash hash --algo neural` gives for the attacked pixels, and the result is checked with the
real binary too (neural and PDQ distances to the original).

  evade.py --out-dir evaded/ known1.png known2.png
  evade.py --out evaded.png --distance 20 known.png

Exit status 0 when every image got away per nhash, 1 when any did not, 2 on a usage error.
The method is in attack.py's opening comment; figures and discussion in docs/attacks.md.
"""
import argparse
import os
import sys
import tempfile

import numpy as np
import torch

import attack as A
import nhm_torch as M


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("images", nargs="+", help="images to move away from their own hash")
    ap.add_argument("--out", help="output PNG (one image only)")
    ap.add_argument("--out-dir", help="output folder: DIR/<name>.png per image")
    ap.add_argument("--model", default=M.DEFAULT_MODEL, help="the .nhm model (default models/default.nhm)")
    ap.add_argument("--nhash", default=M.default_nhash(), help="the nhash binary used to check results")
    ap.add_argument("--distance", type=int, default=13,
                    help="success when at least this many bits differ from the original (default 13)")
    ap.add_argument("--eps", default="1,2,3,4,6,8",
                    help="L-infinity budgets in pixel levels, tried in order, each continuing from "
                         "the last (default 1,2,3,4,6,8)")
    ap.add_argument("--steps", type=int, default=60, help="most steps per budget (default 60)")
    ap.add_argument("--lr", type=float, default=0.5, help="Adam step size in levels (default 0.5)")
    ap.add_argument("--margin", type=float, default=0.05, help="hinge margin (default 0.05)")
    ap.add_argument("--jpeg", action="store_true",
                    help="JPEG-robust: forward passes through real JPEG encodes at quality 70-95")
    ap.add_argument("--jpeg-check", default="75,85,95",
                    help="qualities the result must survive in --jpeg mode, and that are always "
                         "reported (default 75,85,95)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (JPEG qualities)")
    ap.add_argument("--json", help="write per-image figures and the summary as JSON here")
    ap.add_argument("--quiet", action="store_true", help="no per-step progress")
    a = ap.parse_args(argv)
    if bool(a.out) == bool(a.out_dir):
        ap.error("give --out (one image) or --out-dir")
    if a.out and len(a.images) != 1:
        ap.error("--out takes one image; use --out-dir for several")
    try:
        a.eps_list = [float(e) for e in a.eps.split(",")]
        a.jpeg_q = [int(q) for q in a.jpeg_check.split(",")]
    except ValueError:
        ap.error("--eps and --jpeg-check take comma-separated numbers")
    if any(e <= 0 or e > 255 for e in a.eps_list) or a.steps < 1 or a.distance < 1:
        ap.error("budgets must be in (0, 255], --steps and --distance at least 1")
    return a


def one(a, net, path, out, log):
    src = A.load_360(path, net.in_h)
    with tempfile.TemporaryDirectory() as d:  # the original as the attack sees it
        p = os.path.join(d, "orig.png")
        A.save_png(p, src)
        orig = A.nhash_record(a.nhash, a.model, p)
    o_hash = orig["neural"]
    goal = A.Goal(~M.hex_to_bits(o_hash), "away", need=a.distance)
    margin, tries, steps, secs = a.margin, 0, 0, 0.0
    while tries < 3:
        tries += 1
        res = A.run_attack(net, src, goal, a.eps_list, a.steps, a.lr, margin, jpeg=a.jpeg,
                           jpeg_check=a.jpeg_q, rng=np.random.default_rng(a.seed), log=log)
        steps += res["steps"]
        secs += res["seconds"]
        A.save_png(out, res["rgb"])
        rec = A.nhash_record(a.nhash, a.model, out)
        d = M.hamming_hex(rec["neural"], o_hash)
        jd = A.jpeg_distances(a.nhash, a.model, res["rgb"], o_hash, a.jpeg_q)
        ok = d >= a.distance and (not a.jpeg or all(v >= a.distance for v in jd.values()))
        if ok or not res["success"]:
            break
        margin *= 2
        if log:
            log(f"    nhash: only {d} bits away; again with margin {margin:g}")
    diff = np.abs(res["rgb"].astype(int) - src.astype(int))
    return dict(image=path, out=out, original_hash=o_hash, hash=rec["neural"], success=ok,
                torch_success=res["success"], eps=res["eps"], steps=steps,
                seconds=round(secs, 2), tries=tries, margin=margin,
                linf=int(diff.max()), psnr=round(A.psnr(res["rgb"], src), 2),
                neural_to_original=d, jpeg_neural_to_original=jd,
                pdq_to_original=M.hamming_hex(rec["pdq"], orig["pdq"]),
                pdq_quality=rec.get("pdq_quality"))


def main(argv=None):
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    net = M.NhmModel(a.model).eval()
    log = None if a.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    if a.out_dir:
        os.makedirs(a.out_dir, exist_ok=True)
    rows = []
    for p in a.images:
        out = a.out or os.path.join(a.out_dir, os.path.splitext(os.path.basename(p))[0] + ".png")
        if log:
            log(p)
        rows.append(one(a, net, p, out, log))
    keys = ["steps", "seconds", "linf", "psnr", "neural_to_original", "pdq_to_original"]
    summary = A.summarise(rows, keys)
    summary.update(model=a.model, fingerprint=net.fingerprint, distance=a.distance, eps=a.eps_list,
                   steps_per_eps=a.steps, lr=a.lr, margin=a.margin, jpeg=a.jpeg,
                   jpeg_check=a.jpeg_q, threads=a.threads)
    head = ["ok", "steps", "sec", "linf", "psnr", "nn->orig", "pdq->orig",
            "jpeg " + "/".join(map(str, a.jpeg_q)), "out"]
    lines = ["\t".join(head)]
    for r in rows:
        j = "/".join(str(r["jpeg_neural_to_original"][str(q)]) for q in a.jpeg_q)
        lines.append("\t".join(A.fmt(v) for v in (
            "yes" if r["success"] else "NO", r["steps"], r["seconds"], r["linf"], r["psnr"],
            r["neural_to_original"], r["pdq_to_original"], j, r["out"])))
    lines.append(f"success {summary['successes']}/{summary['images']}; medians: " + ", ".join(
        f"{k} {A.fmt(summary['median_' + k])}" for k in keys))
    A.write_reports(rows, summary, a.json, lines)
    return 0 if summary["successes"] == summary["images"] else 1


if __name__ == "__main__":
    sys.exit(main())
