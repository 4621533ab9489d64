"""Any nhash model file (.nhm, docs/nhm.md) as a differentiable PyTorch module.

The attacks (collide.py, evade.py) need gradients of the hash scores with respect to the input
pixels. This module reads the node table, weights and seed of a .nhm exactly as host/nhm.c
lays them out and runs the nodes with the semantics of host/net_ref.c (the C reference runner):

  CONV   out_c x (C/groups) x kh x kw weights, optional bias, zero padding top/left/bottom/right
  INORM  run-time mean and biased variance over H x W per image and channel, then gamma, beta
  ACT    1 ReLU, 2 HardSwish x*clip(x+3,0,6)/6, 3 HardSigmoid clip(x+3,0,6)/6
  GAP    global average over H x W
  MUL    in0 * in1 (same shape, or C x 1 x 1 broadcast)
  ADD    in0 + in1

Preprocessing 1 is ((float)v / 255) * 2 - 1 in float32 on RGB uint8, planar NCHW. The hash is
host/net.c's nh_net_hash: score[r] = sum_k seed[r][k] * out[k] in double, bit r = score >= 0,
bit 0 the most significant bit of byte 0, printed as lowercase hex.

The header is checked only as far as this reader needs (magic, version, sizes); nhash's own
loader is the one that treats files as hostile. The fingerprint is reported, not verified.

Usage as a script: verify the module against the real nhash binary on some images,
    nhm_torch.py --model models/default.nhm --nhash build-adv/host/nhash IMAGE...
which prints, per image, the bits that differ between PyTorch and `nhash hash --algo neural`.
"""
import argparse
import json
import os
import struct
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEFAULT_MODEL = os.path.join(ROOT, "models", "default.nhm")

MAGIC = b"NHMODEL\x1a"
OP_CONV, OP_INORM, OP_ACT, OP_GAP, OP_MUL, OP_ADD = 1, 2, 3, 4, 5, 6
ACT_RELU, ACT_HSWISH, ACT_HSIGMOID = 1, 2, 3
NO_TENSOR = 0xFFFFFFFF


def _cstr(b):
    return b.split(b"\0", 1)[0].decode("utf-8", "replace")


class NhmModel(nn.Module):
    """A .nhm file as a torch module: forward(x) -> N x out_dim network outputs.

    x is the preprocessed input, N x in_c x in_h x in_w float32 (for preprocess 1, values
    (v/255)*2-1). scores(out) gives the N x hash_bits projections (float64 when out is float64,
    else float32: gradients need only float32), hash_hex(out) the hashes as nhash prints them."""

    def __init__(self, path):
        super().__init__()
        with open(path, "rb") as f:
            data = f.read()
        if len(data) < 256 or data[:8] != MAGIC:
            raise ValueError(f"{path}: not an nhash model file")
        version, header_size, file_size, fingerprint = struct.unpack_from("<IIQQ", data, 8)
        if version != 1 or header_size != 256 or file_size != len(data):
            raise ValueError(f"{path}: unsupported version or wrong size")
        (self.in_c, self.in_h, self.in_w, self.preprocess, self.out_dim, self.hash_bits,
         n_nodes, node_size) = struct.unpack_from("<8I", data, 32)
        nodes_off, weights_off, n_weights, seed_off = struct.unpack_from("<4Q", data, 64)
        self.name = _cstr(data[96:160])
        self.version = _cstr(data[160:192])
        (weight_format,) = struct.unpack_from("<I", data, 192)
        self.fingerprint = f"{fingerprint:016x}"
        if node_size != 64:
            raise ValueError(f"{path}: node size {node_size}")
        if weight_format == 0:
            w = np.frombuffer(data, "<f4", n_weights, weights_off)
        elif weight_format == 1:
            w = np.frombuffer(data, "<f2", n_weights, weights_off).astype(np.float32)
        else:
            raise ValueError(f"{path}: weight format {weight_format}")
        weights = torch.from_numpy(w.astype(np.float32))
        self.nodes = []
        shapes = [(self.in_c, self.in_h, self.in_w)]
        params = []
        for i in range(n_nodes):
            rec = struct.unpack_from("<13IfII", data, nodes_off + 64 * i)
            op, in0, in1, out_c, kh, kw, stride, pt, pl, pb, pr, groups, aux = rec[:13]
            eps, w_off, w_len = rec[13], rec[14], rec[15]
            c, h, wd = shapes[in0]
            node = dict(op=op, in0=in0, in1=in1, aux=aux, eps=eps)
            if op == OP_CONV:
                g_in = c // groups
                nw = out_c * g_in * kh * kw
                node.update(stride=stride, pad=(pl, pr, pt, pb), groups=groups)
                node["w"] = weights[w_off:w_off + nw].reshape(out_c, g_in, kh, kw)
                node["b"] = weights[w_off + nw:w_off + nw + out_c] if aux == 1 else None
                oh = (h + pt + pb - kh) // stride + 1
                ow = (wd + pl + pr - kw) // stride + 1
                shapes.append((out_c, oh, ow))
            elif op == OP_INORM:
                node["gamma"] = weights[w_off:w_off + c]
                node["beta"] = weights[w_off + c:w_off + 2 * c]
                shapes.append((c, h, wd))
            elif op == OP_GAP:
                shapes.append((c, 1, 1))
            elif op in (OP_ACT, OP_MUL, OP_ADD):
                shapes.append((c, h, wd))
            else:
                raise ValueError(f"{path}: node {i}: unknown op {op}")
            for k in ("w", "b", "gamma", "beta"):
                if node.get(k) is not None:
                    p = nn.Parameter(node[k].clone(), requires_grad=False)
                    params.append(p)
                    node[k] = p
            self.nodes.append(node)
        self.params = nn.ParameterList(params)
        self.shapes = shapes
        last = shapes[-1]
        if last[0] * last[1] * last[2] != self.out_dim:
            raise ValueError(f"{path}: out_dim {self.out_dim} is not the last tensor's size")
        if self.hash_bits:
            seed = np.frombuffer(data, "<f4", self.hash_bits * self.out_dim, seed_off)
            self.register_buffer("seed", torch.from_numpy(seed.reshape(self.hash_bits, self.out_dim).copy()))
        else:
            self.seed = None

    def forward(self, x):
        t = [x]
        for nd in self.nodes:
            a = t[nd["in0"]]
            op = nd["op"]
            if op == OP_CONV:
                pl, pr, pt, pb = nd["pad"]
                if pl == pr and pt == pb:
                    y = F.conv2d(a, nd["w"], nd["b"], nd["stride"], (pt, pl), 1, nd["groups"])
                else:
                    y = F.conv2d(F.pad(a, (pl, pr, pt, pb)), nd["w"], nd["b"], nd["stride"], 0, 1,
                                 nd["groups"])
            elif op == OP_INORM:
                mean = a.mean(dim=(2, 3), keepdim=True)
                var = (a - mean).pow(2).mean(dim=(2, 3), keepdim=True)
                y = (a - mean) * (nd["gamma"].view(1, -1, 1, 1) / torch.sqrt(var + nd["eps"]))
                y = y + nd["beta"].view(1, -1, 1, 1)
            elif op == OP_ACT:
                if nd["aux"] == ACT_RELU:
                    y = F.relu(a)
                elif nd["aux"] == ACT_HSWISH:
                    y = a * torch.clamp(a + 3.0, 0.0, 6.0) / 6.0
                elif nd["aux"] == ACT_HSIGMOID:
                    y = torch.clamp(a + 3.0, 0.0, 6.0) / 6.0
                else:
                    raise ValueError(f"unknown activation {nd['aux']}")
            elif op == OP_GAP:
                y = a.mean(dim=(2, 3), keepdim=True)
            elif op == OP_MUL:
                y = a * t[nd["in1"]]
            else:
                y = a + t[nd["in1"]]
            t.append(y)
        return t[-1].reshape(x.shape[0], -1)

    def preprocess_u8(self, rgb):
        """uint8 RGB, N x H x W x 3 (numpy or tensor) -> the network input, as nhash's LUT."""
        if self.preprocess != 1:
            raise ValueError("model takes float input (preprocess 0)")
        x = torch.from_numpy(np.array(rgb, dtype=np.float32))
        if x.dim() == 3:
            x = x.unsqueeze(0)
        return from_levels(x.permute(0, 3, 1, 2))

    def scores(self, out):
        """N x hash_bits projections, differentiable, in out's dtype."""
        return out @ self.seed.to(out.dtype).T

    def hash_bits_of(self, out):
        """N x hash_bits bool, with nh_net_hash's rule (double accumulation, >= 0 is 1)."""
        s = out.detach().to(torch.float64) @ self.seed.to(torch.float64).T
        return (s >= 0).cpu().numpy(), s.cpu().numpy()

    def hash_hex(self, out):
        bits, _ = self.hash_bits_of(out)
        return [bits_to_hex(b) for b in bits]


def from_levels(x):
    """Pixel levels 0..255 (float, N x 3 x H x W) -> network input, float32 as nh_net_preprocess_lut.

    For integer levels this is bit-identical to nhash's table ((float)v/255 * 2 - 1 in float32);
    for the fractional levels an attack optimises it is the same smooth map."""
    return x / 255.0 * 2.0 - 1.0


def bits_to_hex(bits):
    bits = np.asarray(bits, dtype=bool)
    return np.packbits(bits).tobytes().hex()


def hex_to_bits(h):
    return np.unpackbits(np.frombuffer(bytes.fromhex(h), np.uint8)).astype(bool)


def hamming_hex(a, b):
    return int(np.count_nonzero(hex_to_bits(a) != hex_to_bits(b)))


def nhash_hashes(nhash, paths, algos="neural,pdq", model=None):
    """Run the real binary: path -> record dict (jsonl) for each file."""
    cmd = [nhash, "hash", "--algo", algos, "--format", "jsonl"]
    if model:
        cmd += ["--model", model]
    cmd += list(paths)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    recs = {}
    for line in r.stdout.decode().splitlines():
        if line.strip():
            rec = json.loads(line)
            recs[rec.get("path")] = rec
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])} ... exited {r.returncode}: {r.stderr.decode()[-500:]}")
    return recs


def default_nhash():
    for cand in (os.environ.get("NHASH"), os.path.join(ROOT, "build-adv", "host", "nhash"),
                 os.path.join(ROOT, "build", "host", "nhash")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return "nhash"


def load_rgb(path, size=None):
    """Decode as nnhash.py does: PIL convert('RGB'); resize to size x size with BICUBIC if given."""
    from PIL import Image
    im = Image.open(path).convert("RGB")
    if size is not None and im.size != (size, size):
        im = im.resize((size, size), Image.BICUBIC)
    return np.asarray(im, dtype=np.uint8)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] + " Verify it against nhash.")
    ap.add_argument("--model", default=DEFAULT_MODEL, help="the .nhm file (default models/default.nhm)")
    ap.add_argument("--nhash", default=default_nhash(), help="the nhash binary")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--json", help="write the per-image comparison here")
    ap.add_argument("images", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    net = NhmModel(a.model).eval()
    print(f"model {net.name} {net.version} fingerprint {net.fingerprint}: {len(net.nodes)} nodes, "
          f"{net.in_c}x{net.in_h}x{net.in_w} -> {net.out_dim}, {net.hash_bits} bits")
    recs = nhash_hashes(a.nhash, a.images, "neural", a.model)
    rows, total = [], 0
    for p in a.images:
        rgb = load_rgb(p, net.in_h)
        with torch.no_grad():
            out = net(net.preprocess_u8(rgb))
        h = net.hash_hex(out)[0]
        _, s = net.hash_bits_of(out)
        ref = recs[p]["neural"]
        d = hamming_hex(h, ref)
        total += d
        rows.append(dict(path=p, torch=h, nhash=ref, bits_differ=d, min_abs_score=float(np.abs(s).min())))
        print(f"{d:3d}  {h}  {ref}  min|score| {np.abs(s).min():.2e}  {p}")
    n = len(rows)
    print(f"{n} images, {sum(r['bits_differ'] > 0 for r in rows)} differ, "
          f"{total} of {n * net.hash_bits} bits differ")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(model=a.model, fingerprint=net.fingerprint, images=rows,
                           bits_differ=total, bits=n * net.hash_bits), f, indent=1)
    return 0 if total == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
