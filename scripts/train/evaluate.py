#!/usr/bin/python3
"""Held-out robustness of the 96-bit hash: trained checkpoint vs the untrained architecture.

For every held-out image (scripts/train/split/heldout.txt, never used in training): the hash
of the original and of each benchmark transform (transforms.FIXED, applied to the original file
before the inference preprocessing: Pillow convert('RGB').resize((360, 360)) BICUBIC,
/255*2-1), and the Hamming distance between them. Unrelated: every pair of held-out originals
from different groups (ideal mean 48). Models: the checkpoint, and the same architecture at
its random initialisation (train.py's init, seed 1), the floor training must beat. With --onnx
the exported model is what is scored (through onnxruntime-node), checking the export end to end.

Writes JSON (--out, default scripts/train/results/eval.json) and prints a table.

Usage: /usr/bin/python3 scripts/train/evaluate.py [--ckpt .cache/train/ckpt.pt] [--limit N]
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import nhnet  # noqa: E402
import transforms as T  # noqa: E402


def stats(d):
    d = np.asarray(d, dtype=np.float64)
    return {"mean": round(float(d.mean()), 2), "median": float(np.median(d)),
            "p90": float(np.percentile(d, 90)), "max": int(d.max()),
            "le4": round(float((d <= 4).mean()), 3), "le8": round(float((d <= 8).mean()), 3), "n": int(d.size)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=os.path.join(common.WORK, "ckpt.pt"))
    ap.add_argument("--out", default=os.path.join(common.HERE, "results", "eval.json"))
    ap.add_argument("--limit", type=int, default=0, help="first N of the chosen held-out images only (quick look)")
    ap.add_argument("--stride", type=int, default=2,
                    help="one image per held-out group, then every STRIDE-th group (CPU time)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", default="trained,untrained",
                    help="which to score; results for the others are kept from an existing --out")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    proj = common.projection()
    want = a.models.split(",")
    ck = torch.load(a.ckpt, map_location="cpu")
    trained = common.load_model(a.ckpt)[0] if "trained" in want else None
    untrained = nhnet.NeuralHashNet()
    nhnet.init_weights(untrained, ck.get("args", {}).get("seed", 1))
    # A random network maps every image to nearly one output (see train.py), so every hash is
    # the same; centre it like training does (fc3 bias minus the mean output over training
    # images) so the floor is a random network whose bits do depend on the image.
    if "untrained" in want:
        common.centre(untrained)
    models = {"trained": trained, "untrained": untrained.eval()}
    models = {m: models[m] for m in want}

    rows, seen = [], set()
    for p, g in common.read_split("heldout"):
        if g not in seen:
            seen.add(g)
            rows.append((p, g))
    rows = rows[:: a.stride]
    if a.limit:
        rows = rows[: a.limit]
    names = list(T.FIXED)
    bits = {m: {"orig": [], **{n: [] for n in names}} for m in models}
    t0 = time.time()
    for i, (p, g) in enumerate(rows):
        im = Image.open(os.path.join(common.DATA, p)).convert("RGB")
        views = [im] + [T.fixed(n, im, i) for n in names]
        x = torch.stack([common.to_input(v.convert("RGB")) for v in views])
        for m, net in models.items():
            with torch.no_grad():
                out = net(x).numpy()
            b, _ = common.hash_bits(out, proj)
            bits[m]["orig"].append(b[0])
            for j, n in enumerate(names):
                bits[m][n].append(b[j + 1])
        if i % 10 == 0:
            print("%d/%d images, %.0f s" % (i + 1, len(rows), time.time() - t0), flush=True)
    groups = [g for _, g in rows]
    res = {"checkpoint": {"path": os.path.relpath(a.ckpt, common.ROOT), "step": ck["state"]["step"],
                          "images_seen": ck["state"]["seen"], "train_seconds": round(ck["state"]["train_s"])},
           "heldout_images": len(rows), "heldout_groups": len(set(groups)), "projection_seed": common.PROJ_SEED,
           "models": {}}
    for m in models:
        orig = np.array(bits[m]["orig"])
        r = {"transforms": {}}
        for n in names:
            r["transforms"][n] = stats((np.array(bits[m][n]) != orig).sum(1))
        dd = (orig[:, None, :] != orig[None, :, :]).sum(2)
        iu = np.triu_indices(len(rows), 1)
        diff = np.array([groups[i] != groups[j] for i, j in zip(*iu)])
        u = dd[iu][diff]
        r["unrelated"] = {"mean": round(float(u.mean()), 2), "std": round(float(u.std()), 2), "min": int(u.min()),
                          "p1": float(np.percentile(u, 1)), "le8": round(float((u <= 8).mean()), 4), "pairs": int(u.size)}
        r["bit_balance_mean_abs_dev"] = round(float(np.abs(orig.mean(0) - 0.5).mean()), 3)
        trained_only = [n for n in names if n not in T.UNTRAINED]
        r["mean_over_trained_families"] = round(float(np.mean([r["transforms"][n]["mean"] for n in trained_only])), 2)
        res["models"][m] = r
    if os.path.exists(a.out):  # keep the other model's numbers from an earlier run on the same images
        with open(a.out) as f:
            old = json.load(f)
        if old.get("heldout_images") == res["heldout_images"]:
            for m, r in old.get("models", {}).items():
                res["models"].setdefault(m, r)
            if "trained" not in models:
                res["checkpoint"] = old.get("checkpoint", res["checkpoint"])
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    if len(res["models"]) < 2:
        print("wrote", a.out)
        return 0
    tr, un = res["models"]["trained"], res["models"]["untrained"]
    print("%-12s %8s %8s %8s   (mean Hamming bits of 96; le8 = share within 8 bits)" % ("transform", "trained", "le8", "untrained"))
    for n in names:
        print("%-12s %8.2f %8.3f %8.2f" % (n, tr["transforms"][n]["mean"], tr["transforms"][n]["le8"], un["transforms"][n]["mean"]))
    print("%-12s %8.2f %8s %8.2f  (min %d / %d, p1 %.0f / %.0f)" % ("UNRELATED", tr["unrelated"]["mean"], "", un["unrelated"]["mean"],
          tr["unrelated"]["min"], un["unrelated"]["min"], tr["unrelated"]["p1"], un["unrelated"]["p1"]))
    print("wrote", a.out)


if __name__ == "__main__":
    sys.exit(main())
