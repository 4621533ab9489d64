#!/usr/bin/python3
"""Self-supervised training of the NeuralHash architecture (contrastive, as Apple described).

Each step draws B different images (at most one per near-duplicate group, train split only),
makes two views of each -- view A the image itself or lightly transformed, view B one to three
random transforms of the benchmark's families (transforms.py) -- squashes both to R x R exactly
as inference does (Pillow BICUBIC, /255*2-1) and trains on

  NT-Xent (InfoNCE, temperature tau) on the L2-normalised 128-d outputs: the two views of an
  image pulled together, the other 2B-2 views pushed apart; plus
  a bit-margin term: the 96 projections (the hash's fixed random Gaussian, common.projection())
  of one view should have the sign of the other view's with a margin, relu(m - s_a*sign(s_b)).

Centring: InstanceNorm makes every channel's spatial mean its beta, so after global pooling a
fresh network gives nearly the same output for every image (a constant plus a small image-dependent
part) and the hash of every image is the same, and while training the common part moves faster
than the image-dependent part. The loss therefore sees z minus the batch mean of z (as BatchNorm
would); an exponential moving average c of the batch means is kept, and export and evaluation fold
c into fc3's bias (common.load_model), so the exported network is centred like training was.

Random-hyperplane hashing turns the angle between outputs into Hamming distance
(E[d] = 96 * angle / pi), so NT-Xent's geometry -- near-zero angle for copies, spread-out
directions for different images -- is what the 96-bit hash needs.

The network is fully convolutional with global pooling, so most steps run at a lower, varying
resolution (--res 128,160,192) and a short final phase runs at 360 (--res 360).

Checkpoints (model, optimiser, step, images seen, RNG state, log) go to --ckpt every
--save-min minutes and at the end; --resume continues from it. --init-nhm starts a fresh run (new
optimiser, step 0, centre c = 0) from the weights of an exported model instead, e.g. the shipped
models/default.nhm when its checkpoint is gone: the .nhm's CONV nodes, in order, are the network's
Conv2d/Linear modules in forward order (weights, then bias) and its INORM nodes the InstanceNorm
modules (gamma, then beta), the order export.py and `nhash model import` keep (docs/nhm.md). Its
fc3 bias already has the training centre folded in, so c starts at zero. Uses CUDA when available.

Usage:
  nice -n 19 /usr/bin/python3 scripts/train/train.py --minutes 5            # fresh run
  nice -n 19 /usr/bin/python3 scripts/train/train.py --resume --until 15:00 # continue
  nice -n 19 /usr/bin/python3 scripts/train/train.py --resume --res 360 --batch 24 --lr 2e-4 --minutes 12
  nice -n 19 /usr/bin/python3 scripts/train/train.py --init-nhm models/default.nhm --lr 3e-4 --until 15:00
"""
import argparse
import datetime
import math
import os
import random
import signal
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import nhnet  # noqa: E402
import transforms as T  # noqa: E402


def parse():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=os.path.join(common.WORK, "ckpt.pt"))
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init-nhm", default="", metavar="PATH", help="start a fresh run from this .nhm's weights")
    ap.add_argument("--batch", type=int, default=48, help="images per step (2 views each)")
    ap.add_argument("--res", default="128,160,192", help="training sizes, one drawn per step")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--tau", type=float, default=0.1)
    ap.add_argument("--bit-weight", type=float, default=0.3)
    ap.add_argument("--bit-margin", type=float, default=0.3)
    ap.add_argument("--warmup", type=int, default=100, help="steps of linear warm-up at the start of each run")
    ap.add_argument("--cosine", action="store_true", help="cosine-decay the rate to 5%% over --minutes/--until")
    ap.add_argument("--minutes", type=float, default=0, help="stop after this long (0: see --until/--steps)")
    ap.add_argument("--until", default="", help="stop at this UTC time, HH:MM")
    ap.add_argument("--steps", type=int, default=0, help="stop at this global step")
    ap.add_argument("--save-min", type=float, default=4.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--aug-weights", default="",
                    help="relative weights of the augmentation families, e.g. crop=3,rotate=3 (others 1)")
    return ap.parse_args()


def nt_xent(za, zb, tau):
    z = F.normalize(torch.cat([za, zb]), dim=1)
    n = za.shape[0]
    sim = z @ z.t() / tau
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


def bit_margin(za, zb, proj, m):
    sa = F.normalize(za, dim=1) @ proj.t()
    sb = F.normalize(zb, dim=1) @ proj.t()
    return 0.5 * (F.relu(m - sa * torch.sign(sb).detach()).mean() + F.relu(m - sb * torch.sign(sa).detach()).mean())


def load_nhm(net, path):
    """Copy the weights of a .nhm (docs/nhm.md) into net, in the order export.py writes them."""
    b = open(path, "rb").read()
    if b[:8] != b"NHMODEL\x1a":
        raise ValueError("%s: not a .nhm" % path)
    n_nodes, node_size, nodes_off, weights_off, n_weights = struct.unpack_from("<IIQQQ", b, 56)
    f16 = struct.unpack_from("<I", b, 192)[0] == 1
    w = np.frombuffer(b, "<f2" if f16 else "<f4", n_weights, weights_off).astype(np.float32)
    found = {1: [], 2: []}  # CONV, INORM: (out_c, weights)
    for i in range(n_nodes):
        op, _, _, out_c = struct.unpack_from("<IIII", b, nodes_off + i * node_size)
        off, n = struct.unpack_from("<II", b, nodes_off + i * node_size + 56)
        if op in found:
            found[op].append((out_c, w[off:off + n]))
    mods = {1: [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))],
            2: [m for m in net.modules() if isinstance(m, torch.nn.InstanceNorm2d)]}
    with torch.no_grad():
        for op in (1, 2):
            if len(found[op]) != len(mods[op]):
                raise ValueError("%s: %d nodes of op %d, the network has %d" % (path, len(found[op]), op, len(mods[op])))
            for m, (out_c, v) in zip(mods[op], found[op]):
                ts = [t for t in (m.weight, m.bias) if t is not None]
                if len(v) != sum(t.numel() for t in ts) or (op == 1 and out_c != m.weight.shape[0]):
                    raise ValueError("%s: a node's weights do not fit %s" % (path, m))
                i = 0
                for t in ts:
                    t.copy_(torch.from_numpy(v[i:i + t.numel()].copy()).view_as(t))
                    i += t.numel()


class Sampler:
    def __init__(self, cache, rows, seed):
        self.groups = {}
        for p, g in rows:
            if p in cache:
                self.groups.setdefault(g, []).append(p)
        self.keys = sorted(self.groups)
        self.cache = cache
        self.rng = random.Random(seed)
        self.nprng = np.random.default_rng(seed)

    def batch(self, b, res):
        xa, xb = [], []
        for g in self.rng.sample(self.keys, b):
            p = self.rng.choice(self.groups[g])
            im = Image.fromarray(self.cache[p]["rgb"])
            va = T.random_view(im, self.rng, self.nprng, max_ops=1) if self.rng.random() < 0.5 else im
            vb = T.random_view(im, self.rng, self.nprng, max_ops=3)
            if vb is im:
                vb = T.random_transform(im, self.rng, self.nprng)
            xa.append(common.to_input(va, res))
            xb.append(common.to_input(vb, res))
        return torch.stack(xa), torch.stack(xb)


def main():
    a = parse()
    torch.set_num_threads(a.threads)
    T.set_weights(a.aug_weights)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    os.makedirs(common.WORK, exist_ok=True)
    net = nhnet.NeuralHashNet()
    nhnet.init_weights(net, a.seed)
    if a.init_nhm:
        if a.resume:
            raise SystemExit("--init-nhm starts a fresh run; it does not go with --resume")
        load_nhm(net, a.init_nhm)
        print("initialised from", a.init_nhm)
    net.to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=a.lr, weight_decay=a.wd)
    state = {"step": 0, "seen": 0, "train_s": 0.0, "log": [], "center": torch.zeros(128) if a.init_nhm else None}
    if a.resume and os.path.exists(a.ckpt):
        ck = torch.load(a.ckpt, map_location="cpu")
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        for gr in opt.param_groups:  # a resumed phase may set a new rate
            gr["lr"] = a.lr
            gr["initial_lr"] = a.lr
        state = ck["state"]
        print("resumed at step %d, %d images seen, %.0f s trained" % (state["step"], state["seen"], state["train_s"]))
    sampler = Sampler(common.load_cache(), common.read_split("train"), a.seed * 1000 + state["step"])
    print("train groups:", len(sampler.keys), "device:", dev, flush=True)
    proj = torch.from_numpy(common.projection()).to(dev)
    sizes = [int(s) for s in a.res.split(",")]
    rng = random.Random(a.seed + state["step"])
    t_start = time.time()
    deadline = t_start + a.minutes * 60 if a.minutes else float("inf")
    if a.until:
        now = datetime.datetime.utcnow()
        hh, mm = map(int, a.until.split(":"))
        end = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
        deadline = min(deadline, t_start + (end - now).total_seconds())
    stop = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
    signal.signal(signal.SIGINT, lambda *_: stop.update(flag=True))

    def save():
        tmp = a.ckpt + ".tmp"
        torch.save({"model": net.state_dict(), "opt": opt.state_dict(), "state": state, "args": vars(a)}, tmp)
        os.replace(tmp, a.ckpt)

    last_save, acc, t_log = time.time(), [], time.time()
    first = state["step"]
    net.train()
    while not stop["flag"] and time.time() < deadline and (not a.steps or state["step"] < a.steps):
        t0 = time.time()
        res = rng.choice(sizes)
        xa, xb = sampler.batch(a.batch, res)
        xa, xb = xa.to(dev), xb.to(dev)
        t_data = time.time() - t0
        step_in_run = state["step"] - first
        lr = a.lr * min(1.0, (step_in_run + 1) / a.warmup)
        if a.cosine and deadline < float("inf"):  # cosine over the run's wall-clock budget
            frac = min(1.0, (time.time() - t_start) / (deadline - t_start))
            lr *= 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac))
        for gr in opt.param_groups:
            gr["lr"] = lr
        z = net(torch.cat([xa, xb]))
        with torch.no_grad():
            bm = z.mean(0).cpu()
            state["center"] = bm if state["center"] is None else 0.95 * state["center"] + 0.05 * bm
        z = z - z.mean(0, keepdim=True)
        za, zb = z[: a.batch], z[a.batch:]
        l_nce = nt_xent(za, zb, a.tau)
        l_bit = bit_margin(za, zb, proj, a.bit_margin)
        loss = l_nce + a.bit_weight * l_bit
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        with torch.no_grad():
            ba = (F.normalize(za, dim=1) @ proj.t()) >= 0
            bb = (F.normalize(zb, dim=1) @ proj.t()) >= 0
            pos = (ba != bb).float().sum(1).mean().item()
            neg = (ba[:, None, :] != ba[None, :, :]).float().sum(2)
            neg = (neg.sum() / (a.batch * (a.batch - 1))).item()
        state["step"] += 1
        state["seen"] += 2 * a.batch
        state["train_s"] += time.time() - t0
        acc.append((loss.item(), l_nce.item(), l_bit.item(), pos, neg, t_data, time.time() - t0))
        if len(acc) == 10:
            m = np.mean(acc, axis=0)
            rec = {"step": state["step"], "seen": state["seen"], "train_s": round(state["train_s"]), "res": sizes,
                   "lr": lr, "loss": m[0], "nce": m[1], "bit": m[2], "ham_pos": m[3], "ham_neg": m[4]}
            state["log"].append(rec)
            print("step %6d seen %8d  loss %.3f (nce %.3f bit %.3f)  ham pos %.1f neg %.1f  %.2fs/step (data %.2f) lr %.1e"
                  % (state["step"], state["seen"], m[0], m[1], m[2], m[3], m[4], m[6], m[5], lr), flush=True)
            acc = []
        if time.time() - last_save > a.save_min * 60:
            save()
            last_save = time.time()
    save()
    print("saved %s at step %d, %d images seen, %.0f s trained" % (a.ckpt, state["step"], state["seen"], state["train_s"]))


if __name__ == "__main__":
    sys.exit(main())
