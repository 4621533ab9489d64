"""What collide.py and evade.py share: the optimisation loop, image I/O, JPEG straight-through,
the checks with the real nhash binary, the per-image figures and the summary.

The attack works on a 360 x 360 RGB image (the model's input size), so nhash's Pillow-exact
resize is the identity and the pixels the attack writes are the pixels the network sees. The
variable is a perturbation in pixel levels (0..255), kept inside an L-infinity box of `eps`
levels around the original and inside 0..255. Every forward pass sees the perturbed image
rounded to whole levels (straight-through: the rounding is in the forward pass, its gradient
is the identity), so when the loss is satisfied, the uint8 PNG that is written has the hash
PyTorch computed. In the JPEG-robust mode the forward pass also goes through a real JPEG
encode and decode (Pillow) at a quality drawn from 70-95, again straight-through.

The loss is a hinge on the projected scores: sum over the bits still wanted of
relu(margin - want_sign * score). Bits already past the margin cost nothing, so the optimiser
spends the budget on the bits that are not there yet. The margin keeps the result away from
the decision boundary, so the float differences between PyTorch and nhash's runners (one bit
in a few thousand in nhm_torch.py's check) do not undo it.
"""
import io
import json
import math
import os
import statistics
import tempfile
import time

import numpy as np
import torch
from PIL import Image

import nhm_torch as M


def load_360(path, size):
    """The attack's input: a size x size RGB uint8 array (Pillow BICUBIC resize if needed)."""
    return M.load_rgb(path, size)


def save_png(path, rgb):
    Image.fromarray(rgb).save(path, "PNG", optimize=True)


def psnr(a, b):
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def jpeg_roundtrip(rgb, quality):
    """uint8 H x W x 3 -> the same image JPEG-encoded at quality and decoded (Pillow)."""
    bio = io.BytesIO()
    Image.fromarray(rgb).save(bio, "JPEG", quality=quality)
    bio.seek(0)
    return np.asarray(Image.open(bio).convert("RGB"), dtype=np.uint8)


def ste_round(x):
    return x + (torch.round(x) - x).detach()


def ste_jpeg(x, quality):
    """x: 1 x 3 x H x W levels, already whole numbers in 0..255. Real JPEG forward, identity backward."""
    rgb = x.detach()[0].permute(1, 2, 0).clamp(0, 255).round().to(torch.uint8).numpy()
    j = torch.from_numpy(jpeg_roundtrip(rgb, quality).astype(np.float32)).permute(2, 0, 1)[None]
    return x + (j - x).detach()


def to_u8(x):
    return x.detach()[0].permute(1, 2, 0).clamp(0, 255).round().to(torch.uint8).numpy().copy()


class Goal:
    """Which sign each bit should have, and how many bits may stay wrong (radius).

    want: bool[hash_bits], the bits wanted; mode 'match' wants them all (collision), mode
    'away' wants at least `need` of the original's bits flipped (evasion; want = not original)."""

    def __init__(self, want, mode, radius=0, need=0):
        self.want = np.asarray(want, dtype=bool)
        self.sign = torch.from_numpy(np.where(self.want, 1.0, -1.0).astype(np.float32))
        self.mode, self.radius, self.need = mode, radius, need

    def reached(self, bits):
        wrong = int(np.count_nonzero(bits != self.want))
        if self.mode == "match":
            return wrong <= self.radius
        return len(self.want) - wrong >= self.need  # bits flipped away from the original

    def loss(self, scores, margin):
        s = scores * self.sign  # > 0 where the bit is as wanted
        h = torch.relu(margin - s)
        if self.mode == "match":
            return h.sum()
        # evasion: push the `need` bits that are closest to flipping (plus a few spare)
        k = min(len(self.want), self.need + 4)
        idx = torch.argsort(s.detach(), descending=True)[:k]
        return h[..., idx].sum()


def run_attack(net, src, goal, eps_list, steps, lr, margin, jpeg=False, jpeg_check=(75, 85, 95),
               jpeg_range=(70, 95), rng=None, log=None):
    """Optimise a perturbation of src (uint8 H x W x 3) toward goal.

    eps_list: L-infinity budgets in levels, tried in order; each later budget continues from the
    earlier perturbation (warm start) with up to `steps` more steps. Returns a dict with the uint8
    result, success (per PyTorch), the budget and step count used, seconds."""
    rng = rng or np.random.default_rng(0)
    x0 = torch.from_numpy(src.astype(np.float32)).permute(2, 0, 1)[None]
    delta = torch.zeros_like(x0, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=lr)
    t0 = time.time()
    total = 0
    best = None
    for eps in eps_list:
        for _ in range(steps):
            x = ste_round((x0 + delta).clamp(0, 255))
            xs = [x]
            if jpeg:
                q = int(rng.integers(jpeg_range[0], jpeg_range[1] + 1))
                xs.append(ste_jpeg(x, q))
            out = net(M.from_levels(torch.cat(xs)))
            scores = net.scores(out)
            bits = (scores.detach().double() >= 0).numpy()
            ok = goal.reached(bits[0]) and all(goal.reached(b) for b in bits[1:])
            if ok and jpeg:
                ok = _jpeg_ok(net, x, goal, jpeg_check)
            if ok:
                # confirm on the uint8 image in float64, nhash's accumulation
                u8 = to_u8(x)
                with torch.no_grad():
                    b64, _ = net.hash_bits_of(net.double()(net.preprocess_u8(u8).double()))
                net.float()
                if goal.reached(b64[0]):
                    best = u8
                    break
            loss = goal.loss(scores, margin)
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                delta.clamp_(-eps, eps)
                delta.copy_((x0 + delta).clamp(0, 255) - x0)
            total += 1
            if log and total % 10 == 0:
                wrong = int(np.count_nonzero(bits[0] != goal.want))
                log(f"    step {total:4d} eps {eps:g} loss {loss.item():.4f} bits off target {wrong}")
        if best is not None:
            return dict(rgb=best, success=True, eps=eps, steps=total, seconds=time.time() - t0)
    u8 = to_u8(ste_round((x0 + delta).clamp(0, 255)))
    return dict(rgb=u8, success=False, eps=eps_list[-1], steps=total, seconds=time.time() - t0)


def _jpeg_ok(net, x, goal, qualities):
    rgb = to_u8(x)
    batch = np.stack([jpeg_roundtrip(rgb, q) for q in qualities])
    with torch.no_grad():
        bits, _ = net.hash_bits_of(net(net.preprocess_u8(batch)))
    return all(goal.reached(b) for b in bits)


def nhash_record(nhash, model, path):
    rec = M.nhash_hashes(nhash, [path], "neural,pdq", model)[path]
    if "error" in rec:
        raise RuntimeError(f"nhash could not hash {path}: {rec.get('message')}")
    return rec


def jpeg_distances(nhash, model, rgb, ref_neural, qualities):
    """Re-encode rgb as JPEG at each quality (Pillow), hash with nhash: quality -> neural distance."""
    out = {}
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for q in qualities:
            p = os.path.join(d, f"q{q}.jpg")
            Image.fromarray(rgb).save(p, "JPEG", quality=q)
            paths.append(p)
        recs = M.nhash_hashes(nhash, paths, "neural", model)
        for q, p in zip(qualities, paths):
            out[str(q)] = M.hamming_hex(recs[p]["neural"], ref_neural)
    return out


def median(xs):
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isinf(x))]
    return statistics.median(xs) if xs else None


def summarise(rows, keys):
    n = len(rows)
    ok = [r for r in rows if r["success"]]
    s = dict(images=n, successes=len(ok), success_rate=(len(ok) / n if n else 0.0))
    for k in keys:
        m = median([r.get(k) for r in rows])
        s["median_" + k] = round(m, 3) if isinstance(m, float) else m
    return s


def write_reports(rows, summary, json_path, text_lines):
    if json_path:
        with open(json_path, "w") as f:
            json.dump(dict(summary=summary, images=rows), f, indent=1)
    print("\n".join(text_lines))


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return "inf" if math.isinf(v) else f"{v:.2f}"
    return str(v)
