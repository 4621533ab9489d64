#!/usr/bin/python3
"""Collision attack on an nhash neural hash: perturb a source image, within an L-infinity budget
of a few pixel levels, until its hash equals (or lies within --radius bits of) a target's.

The target is an image (its hash is what the real `nhash hash --algo neural` gives for that
file) or a hash in hex. The source is squashed to the model's input size (360 x 360, Pillow
BICUBIC) if it is not that size already; give 360 x 360 PNGs to attack exactly the pixels you
have. The result is a 360 x 360 PNG, checked with the real nhash binary (neural and PDQ), and
optionally (--jpeg) made to survive JPEG re-encoding at quality 70-95.

  collide.py --source innocent.png --target known.png --out crafted.png
  collide.py --pairs pairs.tsv --json summary.json     # rows: SOURCE<TAB>TARGET<TAB>OUT

Exit status 0 when every pair succeeded per nhash, 1 when any failed, 2 on a usage error.
The method is in attack.py's opening comment; figures and discussion in docs/attacks.md.
"""
import argparse
import os
import re
import sys

import numpy as np
import torch

import attack as A
import nhm_torch as M


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--source", help="the image to perturb")
    ap.add_argument("--target", help="target image, or the target hash in hex")
    ap.add_argument("--out", help="where to write the crafted PNG")
    ap.add_argument("--pairs", help="TSV file of SOURCE, TARGET, OUT rows (instead of the three above)")
    ap.add_argument("--model", default=M.DEFAULT_MODEL, help="the .nhm model (default models/default.nhm)")
    ap.add_argument("--nhash", default=M.default_nhash(), help="the nhash binary used to check results")
    ap.add_argument("--eps", default="2,3,4,6,8",
                    help="L-infinity budgets in pixel levels (0..255), tried in order, each continuing "
                         "from the last (default 2,3,4,6,8)")
    ap.add_argument("--steps", type=int, default=100, help="most steps per budget (default 100)")
    ap.add_argument("--lr", type=float, default=0.5, help="Adam step size in levels (default 0.5)")
    ap.add_argument("--margin", type=float, default=0.05,
                    help="hinge margin on the projected scores (default 0.05)")
    ap.add_argument("--radius", type=int, default=0,
                    help="success when the hash is within this many bits of the target (default 0)")
    ap.add_argument("--jpeg", action="store_true",
                    help="JPEG-robust: forward passes through real JPEG encodes at quality 70-95")
    ap.add_argument("--jpeg-check", default="75,85,95",
                    help="qualities the result must survive in --jpeg mode, and that are always "
                         "reported (default 75,85,95)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (JPEG qualities)")
    ap.add_argument("--json", help="write per-pair figures and the summary as JSON here")
    ap.add_argument("--quiet", action="store_true", help="no per-step progress")
    a = ap.parse_args(argv)
    if a.pairs:
        if a.source or a.target or a.out:
            ap.error("--pairs excludes --source, --target, --out")
    elif not (a.source and a.target and a.out):
        ap.error("give --source, --target and --out, or --pairs")
    try:
        a.eps_list = [float(e) for e in a.eps.split(",")]
        a.jpeg_q = [int(q) for q in a.jpeg_check.split(",")]
    except ValueError:
        ap.error("--eps and --jpeg-check take comma-separated numbers")
    if any(e <= 0 or e > 255 for e in a.eps_list) or a.steps < 1:
        ap.error("budgets must be in (0, 255] and --steps at least 1")
    return a


def read_pairs(path):
    rows = []
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3:
                raise SystemExit(f"{path}: want SOURCE<TAB>TARGET<TAB>OUT, got {line!r}")
            rows.append(parts)
    return rows


def target_of(a, net, target):
    """-> (target hash hex, target PDQ hex or None)."""
    if re.fullmatch(r"[0-9a-fA-F]+", target) and not os.path.exists(target):
        if len(target) * 4 != net.hash_bits:
            raise SystemExit(f"target hash {target}: want {net.hash_bits // 4} hex digits")
        return target.lower(), None
    rec = A.nhash_record(a.nhash, a.model, target)
    return rec["neural"], rec["pdq"]


def one(a, net, source, target, out, log):
    t_hash, t_pdq = target_of(a, net, target)
    src = A.load_360(source, net.in_h)
    goal = A.Goal(M.hex_to_bits(t_hash), "match", radius=a.radius)
    margin, res, tries = a.margin, None, 0
    steps, secs = 0, 0.0
    while tries < 3:
        tries += 1
        res = A.run_attack(net, src, goal, a.eps_list, a.steps, a.lr, margin, jpeg=a.jpeg,
                           jpeg_check=a.jpeg_q, rng=np.random.default_rng(a.seed), log=log)
        steps += res["steps"]
        secs += res["seconds"]
        A.save_png(out, res["rgb"])
        rec = A.nhash_record(a.nhash, a.model, out)
        d = M.hamming_hex(rec["neural"], t_hash)
        jd = A.jpeg_distances(a.nhash, a.model, res["rgb"], t_hash, a.jpeg_q)
        ok = d <= a.radius and (not a.jpeg or all(v <= a.radius for v in jd.values()))
        if ok or not res["success"]:
            break
        margin *= 2  # PyTorch reached it, nhash did not: float differences; ask for more margin
        if log:
            log(f"    nhash: {d} bits off; again with margin {margin:g}")
    src_rec = A.nhash_record(a.nhash, a.model, source) if src.shape[:2] == (
        _size(source)) else None
    diff = np.abs(res["rgb"].astype(int) - src.astype(int))
    row = dict(source=source, target=target, out=out, target_hash=t_hash, hash=rec["neural"],
               success=ok, torch_success=res["success"], eps=res["eps"], steps=steps,
               seconds=round(secs, 2), tries=tries, margin=margin,
               linf=int(diff.max()), psnr=round(A.psnr(res["rgb"], src), 2),
               neural_to_target=d, jpeg_neural_to_target=jd,
               pdq_to_target=(M.hamming_hex(rec["pdq"], t_pdq) if t_pdq else None),
               pdq_quality=rec.get("pdq_quality"))
    if src_rec is not None:
        row["neural_to_source"] = M.hamming_hex(rec["neural"], src_rec["neural"])
        row["pdq_to_source"] = M.hamming_hex(rec["pdq"], src_rec["pdq"])
        row["source_to_target_neural"] = M.hamming_hex(src_rec["neural"], t_hash)
    else:  # the source file is not the attacked pixels; compare with the squashed pixels instead
        row["neural_to_source"] = row["pdq_to_source"] = row["source_to_target_neural"] = None
    return row


def _size(path):
    from PIL import Image
    with Image.open(path) as im:
        w, h = im.size
    return (h, w)


def main(argv=None):
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    net = M.NhmModel(a.model).eval()
    pairs = read_pairs(a.pairs) if a.pairs else [(a.source, a.target, a.out)]
    log = None if a.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    rows = []
    for source, target, out in pairs:
        if log:
            log(f"{source} -> {target}")
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        rows.append(one(a, net, source, target, out, log))
    keys = ["steps", "seconds", "linf", "psnr", "neural_to_target", "pdq_to_target",
            "neural_to_source", "pdq_to_source"]
    summary = A.summarise(rows, keys)
    summary.update(model=a.model, fingerprint=net.fingerprint, eps=a.eps_list, steps_per_eps=a.steps,
                   lr=a.lr, margin=a.margin, radius=a.radius, jpeg=a.jpeg, jpeg_check=a.jpeg_q,
                   threads=a.threads)
    for q in a.jpeg_q:
        summary[f"jpeg_q{q}_within_radius"] = sum(r["jpeg_neural_to_target"][str(q)] <= a.radius
                                                  for r in rows)
    head = ["ok", "steps", "sec", "linf", "psnr", "nn->tgt", "pdq->tgt", "nn->src", "pdq->src",
            "jpeg " + "/".join(map(str, a.jpeg_q)), "out"]
    lines = ["\t".join(head)]
    for r in rows:
        j = "/".join(str(r["jpeg_neural_to_target"][str(q)]) for q in a.jpeg_q)
        lines.append("\t".join(A.fmt(v) for v in (
            "yes" if r["success"] else "NO", r["steps"], r["seconds"], r["linf"], r["psnr"],
            r["neural_to_target"], r["pdq_to_target"], r["neural_to_source"], r["pdq_to_source"], j,
            r["out"])))
    lines.append(f"success {summary['successes']}/{summary['images']}; medians: " + ", ".join(
        f"{k} {A.fmt(summary['median_' + k])}" for k in keys))
    A.write_reports(rows, summary, a.json, lines)
    return 0 if summary["successes"] == summary["images"] else 1


if __name__ == "__main__":
    sys.exit(main())
