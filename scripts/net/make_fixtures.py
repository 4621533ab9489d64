#!/usr/bin/python3
"""Build nhash's network fixtures from an independent reference (run offline, never in CI).

A NeuralHash-architecture network (MobileNetV3-Small x0.75 with InstanceNorm, see
/work/shared/neuralhash.md) is built in PyTorch with random weights from a fixed seed,
exported to ONNX with torch.onnx.export, and run by onnxruntime (onnxruntime-node, through
run_ort.js) on Pillow-preprocessed images. Outputs:

  models/nh_test.onnx        the exported model (random weights, ~7 MB; not committed)
  models/nh_test.nhm         the same network imported with `nhash model import --f16`
                             (weights are binary16 values, so the import is exact; committed)
  models/nh_test_seed.dat    128-byte header + 96 x 128 little-endian float32 (nnhash.py layout)
  tests/data/net/expected.tsv one line per image:
      name  source  sha256(rgb)  hash_hex  min_abs_score  out[0..127] (ORT, %.9g)
  tests/data/net/torch.tsv   the same from PyTorch's own forward pass (for the record)

Usage: /usr/bin/python3 scripts/net/make_fixtures.py  (from the repository root; needs
python3-torch, Pillow, numpy and `npm install` in scripts/net).
"""
import hashlib
import os
import struct
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.environ.get("NH_DATA_DIR", os.path.join(ROOT, ".cache", "data"))
EPS = 1e-6

# (kernel, expand, out, se, activation, stride) after the stem; the table in neuralhash.md.
BLOCKS = [
    (3, 16, 16, True, "RE", 2),
    (3, 56, 24, False, "RE", 2),
    (3, 64, 24, False, "RE", 1),
    (5, 72, 32, True, "HS", 2),
    (5, 184, 32, True, "HS", 1),
    (5, 184, 32, True, "HS", 1),
    (5, 88, 40, True, "HS", 1),
    (5, 112, 40, True, "HS", 1),
    (5, 216, 72, True, "HS", 2),
    (5, 432, 72, True, "HS", 1),
    (5, 432, 72, True, "HS", 1),
]

IMAGES = [
    ("astronaut", "skimage/astronaut.png"),
    ("chelsea", "skimage/chelsea.png"),
    ("coffee", "skimage/coffee.png"),
    ("rocket", "skimage/rocket.jpg"),
    ("motorcycle", "skimage/motorcycle_left.png"),
    ("china", "sklearn/china.jpg"),
    ("flower", "sklearn/flower.jpg"),
    ("cars", "dlib/mmod_cars_test_image2.jpg"),
    ("synth0", "synth:0"),
    ("synth1", "synth:1"),
]


def synth(k):
    """Deterministic 360x360 RGB test pattern; tests/test_net.c computes the same bytes."""
    y, x = np.mgrid[0:360, 0:360].astype(np.int64)
    c = np.arange(3, dtype=np.int64)[None, None, :]
    v = (x[..., None] * (3 + 2 * k) + y[..., None] * (5 + k) + c * 77 + ((x * y) >> (4 + k))[..., None]) & 255
    return v.astype(np.uint8)


def same_pad(size, k, s):
    """TensorFlow SAME padding (before, after) for one axis."""
    out = (size + s - 1) // s
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


class ConvIN(nn.Module):
    """Conv (no bias, TF SAME padding) -> InstanceNorm(eps 1e-6, affine, run-time stats)."""

    def __init__(self, cin, cout, k, s, size, groups=1):
        super().__init__()
        pb, pa = same_pad(size, k, s)
        if pb == pa:
            self.pad = None
            self.conv = nn.Conv2d(cin, cout, k, s, pb, groups=groups, bias=False)
        else:  # asymmetric: an explicit Pad node, as TF-converted graphs have
            self.pad = nn.ZeroPad2d((pb, pa, pb, pa))
            self.conv = nn.Conv2d(cin, cout, k, s, 0, groups=groups, bias=False)
        self.norm = nn.InstanceNorm2d(cout, eps=EPS, affine=True, track_running_stats=False)
        self.out_size = (size + s - 1) // s

    def forward(self, x):
        if self.pad is not None:
            x = self.pad(x)
        return self.norm(self.conv(x))


def act(name):
    return nn.ReLU() if name == "RE" else nn.Hardswish()


class SE(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // 4, 1, bias=True)
        self.fc2 = nn.Conv2d(c // 4, c, 1, bias=True)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        s = F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s


class Block(nn.Module):
    def __init__(self, cin, k, exp, cout, se, a, s, size):
        super().__init__()
        self.expand = ConvIN(cin, exp, 1, 1, size)
        self.act1 = act(a)
        self.dw = ConvIN(exp, exp, k, s, size, groups=exp)
        self.se = SE(exp) if se else None
        self.act2 = act(a)
        self.project = ConvIN(exp, cout, 1, 1, self.dw.out_size)
        self.res = s == 1 and cin == cout
        self.out_size = self.dw.out_size

    def forward(self, x):
        y = self.act1(self.expand(x))
        y = self.dw(y)
        if self.se is not None:
            y = self.se(y)
        y = self.project(self.act2(y))
        return x + y if self.res else y


class NeuralHashNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = ConvIN(3, 16, 3, 2, 360)
        self.stem_act = nn.Hardswish()
        size, cin, blocks = 180, 16, []
        for k, exp, cout, se, a, s in BLOCKS:
            b = Block(cin, k, exp, cout, se, a, s, size)
            blocks.append(b)
            size, cin = b.out_size, cout
        self.blocks = nn.Sequential(*blocks)
        self.last = ConvIN(72, 432, 1, 1, size)
        self.last_act = nn.Hardswish()
        self.head1 = nn.Conv2d(432, 1280, 1, bias=True)
        self.fc2 = nn.Linear(1280, 500)
        self.fc3 = nn.Linear(500, 128)

    def forward(self, x):
        x = self.stem_act(self.stem(x))
        x = self.blocks(x)
        x = self.last_act(self.last(x))
        x = F.adaptive_avg_pool2d(x, 1)
        x = F.hardswish(self.head1(x))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def init_weights(net, gen):
    """Random weights scaled so activations stay in a sane range (He-style for convs)."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                gain = 2.0 if isinstance(m, nn.Conv2d) and m.weight.shape[-1] > 1 else 1.0
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (gain / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
            elif isinstance(m, nn.InstanceNorm2d):
                m.weight.copy_(1.0 + 0.2 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=gen))


def load_rgb(src):
    if src.startswith("synth:"):
        return synth(int(src[6:]))
    img = Image.open(os.path.join(DATA, src)).convert("RGB").resize((360, 360))
    return np.asarray(img, dtype=np.uint8)


def hash_of(seed, out):
    scores = seed.astype(np.float64) @ out.astype(np.float64)
    bits = "".join("1" if s >= 0 else "0" for s in scores)
    return "%024x" % int(bits, 2), float(np.min(np.abs(scores)))


def write_tsv(path, names, srcs, digests, outs, seed):
    with open(path, "w") as f:
        f.write("# name\tsource\tsha256(rgb 360x360x3)\thash\tmin_abs_score\toutput[128]\n")
        for n, s, d, o in zip(names, srcs, digests, outs):
            h, m = hash_of(seed, o)
            f.write("%s\t%s\t%s\t%s\t%.9g\t%s\n" % (n, s, d, h, m, " ".join("%.9g" % v for v in o)))


def main():
    gen = torch.Generator().manual_seed(20210805)
    net = NeuralHashNet().eval()
    init_weights(net, gen)
    nparams = sum(p.numel() for p in net.parameters())
    print("parameters:", nparams)

    names, srcs, digests, batch = [], [], [], []
    for name, src in IMAGES:
        if not src.startswith("synth:") and not os.path.exists(os.path.join(DATA, src)):
            print("skipping missing", src)
            continue
        rgb = load_rgb(src)
        names.append(name)
        srcs.append(src)
        digests.append(hashlib.sha256(rgb.tobytes()).hexdigest())
        batch.append((rgb.astype(np.float32) / 255.0 * 2 - 1).transpose(2, 0, 1))
    x = np.ascontiguousarray(np.stack(batch).astype(np.float32))

    # Random weights make every image's features close to one shared mean, so every hash
    # would be nearly the same. Centre the last layer on these images (bias = -W3 mean) so
    # the outputs, and therefore the hash bits, depend on the image.
    with torch.no_grad():
        feats = []
        h = net.fc2.register_forward_hook(lambda m, i, o: feats.append(F.relu(o)))
        net(torch.from_numpy(x))
        h.remove()
        mean = feats[0].mean(0)
        net.fc3.bias.copy_(-(net.fc3.weight @ mean) + 0.002 * torch.randn(128, generator=gen))
        # Every weight a binary16 value: the committed models/nh_test.nhm stores them as f16
        # (the repository keeps files under 6 MiB) and is then exactly this network.
        for prm in net.parameters():
            prm.copy_(prm.half().float())

    models = os.path.join(ROOT, "models")
    onnx_path = os.path.join(models, "nh_test.onnx")
    dummy = torch.zeros(1, 3, 360, 360)
    torch.onnx.export(net, dummy, onnx_path, opset_version=14, input_names=["image"],
                      output_names=["logits"], dynamic_axes={"image": {0: "n"}, "logits": {0: "n"}},
                      do_constant_folding=True)

    rs = np.random.RandomState(96128)
    seed = rs.randn(96, 128).astype("<f4")
    header = bytes(rs.randint(0, 256, 128, dtype=np.uint8))
    with open(os.path.join(models, "nh_test_seed.dat"), "wb") as f:
        f.write(header + seed.tobytes())

    with torch.no_grad():
        tout = net(torch.from_numpy(x)).numpy()
    write_tsv(os.path.join(ROOT, "tests/data/net/torch.tsv"), names, srcs, digests, tout, seed)

    inp = os.path.join(models, "fixture_input.bin")
    outp = os.path.join(models, "fixture_output.bin")
    x.tofile(inp)
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run(["node", os.path.join(here, "run_ort.js"), onnx_path, inp, str(len(names)), outp],
                   check=True)
    oout = np.fromfile(outp, dtype="<f4").reshape(len(names), 128)
    os.remove(inp)
    os.remove(outp)
    write_tsv(os.path.join(ROOT, "tests/data/net/expected.tsv"), names, srcs, digests, oout, seed)
    d = np.abs(oout - tout).max() / np.abs(oout).max()
    print("torch vs onnxruntime: max |diff| / max |out| = %.3g" % d)

    # The committed test model: the same network as .nhm with binary16 weights (exact, see
    # above), written by nhash's own importer. models/nh_test.onnx (7 MB) is not committed.
    nhash = os.environ.get("NHASH", os.path.join(ROOT, "build", "host", "nhash"))
    subprocess.run([nhash, "model", "import", onnx_path, os.path.join(models, "nh_test_seed.dat"),
                    "-o", os.path.join(models, "nh_test.nhm"), "--f16", "--name", "nh_test",
                    "--version", "1"], check=True)


if __name__ == "__main__":
    sys.exit(main())
