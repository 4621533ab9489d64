#!/usr/bin/python3
"""Export a training checkpoint to ONNX plus the projection seed file, and check both.

  .cache/train/default.onnx      input "image" N x 3 x 360 x 360 (RGB, [-1, 1]), output "logits"
                                 N x 128, un-normalised; opset 13: Conv (pads; an explicit Pad
                                 before the stride-2 convs whose TF SAME padding is asymmetric),
                                 InstanceNormalization, Relu, HardSigmoid+Mul (HardSwish is
                                 opset 14), GlobalAveragePool, Mul, Add, Flatten, Gemm.
  .cache/train/default_seed.dat  128-byte header + 96 x 128 little-endian float32 (nnhash.py)

Weights stay binary32 by default: this architecture's image-dependent signal is a small
perturbation on a large constant (InstanceNorm fixes every channel's spatial mean, so the pooled
features barely move between images), and binary16 rounding of the weights moves about 2% of the
hash bits (measured on the first checkpoints: 25 of 1152 bits on 12 held-out images; most of it in
fc3, where the folded centre cancels the constant). The export always prints what binary16 would
move; --f16 applies the rounding (then `nhash model import --f16` stores exactly the exported
model, at half the size).

Checks: the op types in the graph, and -- when scripts/net has onnxruntime-node installed --
onnxruntime's outputs against PyTorch's on a few held-out images (and the hash bits).

Usage: /usr/bin/python3 scripts/train/export.py [--ckpt .cache/train/ckpt.pt] [--out-dir .cache/train]
         [--import-to models/default.nhm --fixture tests/data/net/default_expected.tsv]
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import nhnet  # noqa: E402


def varint(b, i):
    v, s = 0, 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return v, i


def fields(b):
    """Top-level protobuf fields of a message: yields (number, wire type, value)."""
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        n, t = key >> 3, key & 7
        if t == 0:
            v, i = varint(b, i)
        elif t == 1:
            v, i = b[i:i + 8], i + 8
        elif t == 2:
            ln, i = varint(b, i)
            v, i = b[i:i + ln], i + ln
        elif t == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % t)
        yield n, t, v


def op_types(path):
    """ModelProto.graph (7) -> GraphProto.node (1) -> NodeProto.op_type (4)."""
    data = open(path, "rb").read()
    ops, opset = collections.Counter(), None
    for n, _, v in fields(data):
        if n == 7:
            for gn, _, gv in fields(v):
                if gn == 1:
                    for nn_, _, nv in fields(gv):
                        if nn_ == 4:
                            ops[nv.decode()] += 1
        if n == 8:  # opset_import
            for on, _, ov in fields(v):
                if on == 2:
                    opset = ov
    return ops, opset


def run_ort(js, onnx_path, x):
    """onnxruntime-node's N x 128 outputs for the N x 3 x R x R float32 inputs x (scripts/net/run_ort.js)."""
    with tempfile.TemporaryDirectory() as td:
        inp, outp = os.path.join(td, "in.bin"), os.path.join(td, "out.bin")
        x.numpy().astype("<f4").tofile(inp)
        subprocess.run(["node", js, onnx_path, inp, str(len(x)), outp], check=True)
        return np.fromfile(outp, dtype="<f4").reshape(len(x), 128)


def write_fixture(a, onnx_path, proj, js):
    """onnxruntime's hashes of samples/ (Pillow preprocessing, as nnhash.py) for the net_cli test."""
    sdir = os.path.join(common.ROOT, "samples")
    names = sorted(f for f in os.listdir(sdir) if f.rsplit(".", 1)[-1] in ("jpg", "png", "webp"))
    x = torch.stack([common.to_input(Image.open(os.path.join(sdir, f)).convert("RGB")) for f in names])
    out = run_ort(js, onnx_path, x)
    bits, scores = common.hash_bits(out, proj)
    info = subprocess.run([a.nhash, "model", "info", a.nhm], check=True, capture_output=True, text=True).stdout
    fp = [ln.split()[-1] for ln in info.splitlines() if ln.startswith("fingerprint:")][0]
    with open(a.fixture, "w") as f:
        f.write("# onnxruntime-node's hashes of samples/ with the exported default model (Pillow\n"
                "# convert('RGB').resize((360, 360)) BICUBIC, /255*2-1); made by scripts/train/export.py --fixture.\n"
                "# fingerprint %s\n# file\thash_hex\tmin_abs_score\n" % fp)
        for n, b, sc in zip(names, bits, scores):
            v = int("".join("1" if t else "0" for t in b), 2)
            f.write("%s\t%024x\t%.6g\n" % (n, v, np.abs(sc).min()))
    print("wrote %s: %d samples, model fingerprint %s" % (a.fixture, len(names), fp))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=os.path.join(common.WORK, "ckpt.pt"))
    ap.add_argument("--out-dir", default=common.WORK)
    ap.add_argument("--opset", type=int, default=13)
    ap.add_argument("--f16", action="store_true", help="round the weights to binary16 before the export")
    ap.add_argument("--check", type=int, default=6, help="held-out images for the checks")
    ap.add_argument("--nhm", default="", help="also hash the check images with this imported .nhm through "
                    "nhash (--nhash) and compare its bits with PyTorch's")
    ap.add_argument("--untrained", type=int, default=0, metavar="SEED",
                    help="export the untrained floor instead of --ckpt: train.py's initialisation with this "
                    "seed (train.py's default is 1), centred the same way")
    ap.add_argument("--train-log", default="", help="write the checkpoint's training log (every 10 steps) "
                    "to this JSON file (scripts/train/results/train_log.json)")
    ap.add_argument("--nhash", default=os.path.join(common.ROOT, "build", "host", "nhash"))
    ap.add_argument("--import-to", default="", help="import the exported ONNX + seed with nhash (binary32, or binary16 "
                    "with --f16) to this .nhm, then check it as --nhm does")
    ap.add_argument("--name", default="nhash-open", help="model name for --import-to")
    ap.add_argument("--model-version", default="v0", help="model version for --import-to")
    ap.add_argument("--fixture", default="", help="with --nhm: write onnxruntime's hashes of the bundled samples/ "
                    "images to this TSV (tests/data/net/default_expected.tsv), headed by the .nhm's fingerprint")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.untrained:  # the floor: train.py's random initialisation, centred like a trained model
        net = nhnet.NeuralHashNet()
        nhnet.init_weights(net, a.untrained)
        net.eval()
        common.centre(net)
        ck = {"state": {"step": 0, "seen": 0, "train_s": 0.0, "log": []}, "args": {"seed": a.untrained}}
    else:
        net, ck = common.load_model(a.ckpt)
    if a.train_log:
        with open(a.train_log, "w") as f:
            json.dump({"step": ck["state"]["step"], "views_seen": ck["state"]["seen"],
                       "train_s": round(ck["state"]["train_s"]), "args_last_phase": ck["args"],
                       "log": ck["state"]["log"]}, f, indent=0)
            f.write("\n")
    rows = common.read_split("heldout")[:a.check]
    x = torch.stack([common.to_input(Image.open(os.path.join(common.DATA, p)).convert("RGB")) for p, _ in rows])
    proj = common.projection()
    sd = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        before = net(x).numpy()
        for t in list(net.parameters()) + list(net.buffers()):
            if t.dtype == torch.float32:
                t.copy_(t.half().float())
        after = net(x).numpy()
    b0, _ = common.hash_bits(before, proj)
    b1, _ = common.hash_bits(after, proj)
    print("binary16 rounding of the weights would move %d of %d hash bits on %d held-out images "
          "(max |diff| / max |out| = %.3g)%s" % (int((b0 != b1).sum()), b0.size, len(rows),
          np.abs(after - before).max() / np.abs(before).max(), ": applied (--f16)" if a.f16 else "; not applied"))
    if not a.f16:
        net.load_state_dict(sd)
    onnx_path = os.path.join(a.out_dir, "default.onnx")
    seed_path = os.path.join(a.out_dir, "default_seed.dat")
    torch.onnx.export(net, torch.zeros(1, 3, 360, 360), onnx_path, opset_version=a.opset,
                      input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "n"}, "logits": {0: "n"}}, do_constant_folding=True)
    common.write_seed(seed_path)
    ops, opset = op_types(onnx_path)
    print("wrote %s (%d bytes, opset %s, step %d), %s (%d bytes)" % (onnx_path, os.path.getsize(onnx_path), opset,
          ck["state"]["step"], seed_path, os.path.getsize(seed_path)))
    print("ops:", dict(sorted(ops.items())))

    with torch.no_grad():
        tout = net(x).numpy()
    bt, _ = common.hash_bits(tout, proj)
    if a.import_to:
        subprocess.run([a.nhash, "model", "import", onnx_path, seed_path, "-o", a.import_to, "--name", a.name,
                        "--version", a.model_version] + (["--f16"] if a.f16 else []), check=True)
        a.nhm = a.import_to
    if a.nhm:
        for backend in ("opencl", "ref"):
            r = subprocess.run([a.nhash, "model", "hash", a.nhm, "--backend", backend, "--format", "bits"]
                               + [os.path.join(common.DATA, p) for p, _ in rows],
                               check=True, capture_output=True, text=True)
            bits = np.array([[c == "1" for c in line.split("\t")[1]] for line in r.stdout.splitlines()])
            print("torch vs nhash %s (%s) on %d held-out images: hash bits differing: %d of %d"
                  % (backend, a.nhm, len(rows), int((bits != bt).sum()), bt.size))
    js = os.path.join(common.ROOT, "scripts", "net", "run_ort.js")
    if not os.path.isdir(os.path.join(common.ROOT, "scripts", "net", "node_modules", "onnxruntime-node")):
        print("onnxruntime-node not installed in scripts/net: ORT check skipped")
        return 0
    oout = run_ort(js, onnx_path, x)
    bo, so = common.hash_bits(oout, proj)
    d = np.abs(oout - tout).max() / np.abs(tout).max()
    print("torch vs onnxruntime on %d held-out images: max |diff| / max |out| = %.3g, hash bits differing: %d, "
          "smallest |score| %.3g" % (len(rows), d, int((bt != bo).sum()), np.abs(so).min()))
    if a.fixture and a.nhm:
        write_fixture(a, onnx_path, proj, js)
    return 0 if d < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
