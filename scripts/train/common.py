"""Shared by train.py, export.py and evaluate.py: paths, the hash projection, preprocessing."""
import os
import pickle

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.environ.get("NH_DATA_DIR", os.path.join(ROOT, ".cache", "data"))
WORK = os.path.join(ROOT, ".cache", "train")

# The projection: rows of a standard Gaussian from this fixed seed (numpy's legacy MT19937, so
# every numpy version draws the same numbers). Seed file layout as nnhash.py reads it: a 128-byte
# header (ignored by readers; here an ASCII tag padded with zeros), then 96 x 128 little-endian
# float32, row-major.
PROJ_SEED = 96128
SEED_HEADER = b"nhash default projection: numpy RandomState(96128).randn(96,128) f32le"


def projection():
    return np.random.RandomState(PROJ_SEED).randn(96, 128).astype("<f4")


def write_seed(path):
    hdr = SEED_HEADER.ljust(128, b"\0")
    with open(path, "wb") as f:
        f.write(hdr + projection().tobytes())


def read_split(name):
    rows = []
    with open(os.path.join(HERE, "split", name + ".txt")) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            p, g = line.rstrip("\n").split("\t")
            rows.append((p, g))
    return rows


def load_cache():
    with open(os.path.join(WORK, "images.pkl"), "rb") as f:
        return pickle.load(f)


def to_input(im, res=360):
    """The inference preprocessing: squash to res x res (Pillow BICUBIC), /255*2-1, CHW."""
    if im.size != (res, res):
        im = im.resize((res, res), Image.BICUBIC)
    a = np.asarray(im, dtype=np.float32).transpose(2, 0, 1)
    return torch.from_numpy(a / 255.0 * 2 - 1)


def hash_bits(out, proj):
    """out: N x 128 network outputs -> N x 96 bool bits (score >= 0 gives 1)."""
    scores = np.asarray(out, dtype=np.float64) @ proj.astype(np.float64).T
    return scores >= 0, scores


def train_sample(n=64):
    """n training images (evenly spread over the train split) as 360x360 inputs."""
    cache, rows = load_cache(), read_split("train")
    picks = [p for p, _ in rows[:: max(1, len(rows) // n)]][:n]
    return torch.stack([to_input(Image.fromarray(cache[p]["rgb"])) for p in picks])


def centre(net, n=64):
    """Fold the mean 360x360 output over n training images into fc3's bias.

    Training centres each batch (train.py explains why); the running average kept there lags
    behind the weights, so the inference centre is measured once on the final weights at the
    inference size instead. Uses training images only."""
    with torch.no_grad():
        x = train_sample(n)
        m = torch.cat([net(x[i:i + 16]) for i in range(0, len(x), 16)]).mean(0)
        net.fc3.bias.sub_(m)
    return net


def load_model(path, recentre=True):
    """A checkpoint as an inference network, centred (see centre())."""
    import nhnet
    net = nhnet.NeuralHashNet()
    ck = torch.load(path, map_location="cpu")
    net.load_state_dict(ck["model"])
    net.eval()
    if recentre and "discriminant" not in ck["state"]:  # discriminant.py's output is centred already
        centre(net)
    else:
        c = ck["state"].get("center")
        if c is not None:
            with torch.no_grad():
                net.fc3.bias.sub_(c)
    return net, ck
