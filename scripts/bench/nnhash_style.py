#!/usr/bin/python3
"""The nnhash.py way of hashing, as the peer of nhash's pipeline in bench/pipeline.sh.

For each image: Pillow open, convert('RGB'), resize((360, 360)) (BICUBIC), /255*2-1, NCHW;
batches of BATCH go to onnxruntime (onnxruntime-node, scripts/bench/ort_worker.js, THREADS
intra-op threads) running the same ONNX model; 96 projections with the seed, bit = score >= 0.
Prints one `hash  path` line per image, like `nhash hash`.

usage: nnhash_style.py MODEL.onnx SEED.dat BATCH THREADS < paths
"""
import os
import struct
import subprocess
import sys

import numpy as np
from PIL import Image


def main():
    model, seedf, batch, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    raw = open(seedf, "rb").read()[128:]
    seed = np.frombuffer(raw, dtype="<f4").reshape(-1, 128).astype(np.float64)
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, NODE_PATH=os.path.join(here, "..", "net", "node_modules"))
    ort = subprocess.Popen(["node", os.path.join(here, "ort_worker.js"), model, threads],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    paths = [l.rstrip("\n") for l in sys.stdin if l.strip()]
    out = sys.stdout
    for b in range(0, len(paths), batch):
        names, arrs = [], []
        for p in paths[b:b + batch]:
            try:
                im = Image.open(p).convert("RGB").resize((360, 360))
            except Exception as e:  # noqa: BLE001 - a bad file is reported, the batch goes on
                print("%s: %s" % (p, e), file=sys.stderr)
                continue
            arr = np.asarray(im).astype(np.float32) / 255.0 * 2.0 - 1.0
            arrs.append(arr.transpose(2, 0, 1))
            names.append(p)
        if not arrs:
            continue
        x = np.ascontiguousarray(np.stack(arrs).astype("<f4"))
        ort.stdin.write(struct.pack("<I", len(arrs)) + x.tobytes())
        ort.stdin.flush()
        y = np.frombuffer(ort.stdout.read(len(arrs) * 128 * 4), dtype="<f4").reshape(len(arrs), 128)
        scores = y.astype(np.float64) @ seed.T
        for n, s in zip(names, scores):
            bits = "".join("1" if v >= 0 else "0" for v in s)
            out.write("%0*x  %s\n" % (len(bits) // 4, int(bits, 2), n))
    ort.stdin.close()
    ort.wait()


if __name__ == "__main__":
    main()
