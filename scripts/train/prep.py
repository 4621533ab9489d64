#!/usr/bin/python3
"""List the training photos, group near-duplicates, split train/held-out, cache decoded images.

Sources (under the data cache, default .cache/data; fetched by scripts/fetch-data.sh --bench and
scripts/train/fetch-train-data.sh): endless-sky, dlib, skimage, sklearn, opencv, labelme, visp.

Groups: images that are not "different images" share a group -- a video or camera sequence
(dlib/video_frames, each visp folder, labelme/video_annotation), a stereo or before/after pair
(opencv left01/right01, graf1/graf3, aloeL/aloeR, motorcycle_left/right, ela_original/modified),
the same photo in several labelme folders. The split is by group: sha256("nhash-split:" + group)
decides, about 1 in 7 groups held out, deterministic and independent of file order. Within big
sequences only every STRIDE-th frame is kept (they add little beyond that).

Writes scripts/train/split/{train,heldout}.txt (tab-separated: path relative to the data cache,
group) and .cache/train/images.pkl: for every listed file, Pillow's convert('RGB') of the
original, downscaled so the long side is at most CACHE_SIDE (aspect kept) -- the "original" the
training augmentations start from -- as uint8 HxWx3 arrays, plus the original size.

Usage: /usr/bin/python3 scripts/train/prep.py [--data DIR]
"""
import argparse
import hashlib
import os
import pickle
import re
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CACHE_SIDE = 448
HELD_OUT_1_IN = 7
SEQ_STRIDE = 6  # keep every 6th frame of a long sequence
EXTS = (".jpg", ".jpeg", ".png", ".pgm", ".ppm")
SKIMAGE_SKIP = {"truncated.jpg", "no_time_for_that_tiny.gif", "foo3x5x4indexed.png", "green_palette.png",
                "palette_color.png", "palette_gray.png", "checker_bilevel.png", "chessboard_GRAY.png",
                "chessboard_RGB.png", "phantom.png", "binary_blobs.png", "logo.png", "horse.png",
                "motorcycle_disp.png", "block.png"}
OPENCV_GROUPS = [(r"^(left|right)\d+", "opencv/chessboard-stereo"), (r"^graf\d", "opencv/graf"),
                 (r"^aloe", "opencv/aloe"), (r"^ela_", "opencv/ela"), (r"^basketball", "opencv/basketball"),
                 (r"^Blender_Suzanne", "opencv/suzanne"), (r"^box", "opencv/box"),
                 (r"^imageText", "opencv/imagetext"), (r"^opencv-logo", "opencv/logo"),
                 (r"^(left|right)\.jpg", "opencv/leftright"), (r"^aero", "opencv/aero"),
                 (r"^(tsukuba|stuff|rubberwhale)", None)]


def listing(data):
    """Yield (relative path, group)."""
    def files(sub):
        base = os.path.join(data, sub)
        for dp, dn, fn in os.walk(base):
            dn[:] = sorted(d for d in dn if not d.startswith("."))
            for f in sorted(fn):
                if f.lower().endswith(EXTS):
                    yield os.path.relpath(os.path.join(dp, f), data)

    for p in files("endless-sky"):
        yield p, p
    for p in files("sklearn"):
        yield p, p
    for p in files("skimage"):
        name = os.path.basename(p)
        if "/" in p[len("skimage/"):] or name in SKIMAGE_SKIP:
            continue
        yield p, "skimage/motorcycle" if name.startswith("motorcycle") else p
    for p in files("dlib"):
        if "/video_frames/" in p:
            n = int(re.sub(r"\D", "", os.path.basename(p)) or 0)
            if n % SEQ_STRIDE == 0:
                yield p, "dlib/video_frames"
        else:
            yield p, p
    for p in files("opencv"):
        name = os.path.basename(p)
        if "/" in p[len("opencv/"):]:
            continue
        group = p
        for rx, g in OPENCV_GROUPS:
            if re.match(rx, name):
                group = g or p
                break
        yield p, group
    for p in files("labelme"):
        parts = p.split("/")
        if parts[-2] not in ("data_annotated", "tutorial", "primitives"):
            continue
        if parts[1] == "video_annotation":
            yield p, "labelme/video"
        else:
            yield p, "labelme/" + os.path.splitext(parts[-1])[0]
    seq = {}
    for p in files("visp"):
        d = os.path.dirname(p)
        seq.setdefault(d, []).append(p)
    for d in sorted(seq):
        ps = seq[d]
        stride = SEQ_STRIDE if len(ps) > 12 else 1
        for i, p in enumerate(ps):
            if i % stride == 0:
                yield p, d


def held_out(group):
    h = hashlib.sha256(("nhash-split:" + group).encode()).digest()
    return int.from_bytes(h[:4], "little") % HELD_OUT_1_IN == 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(ROOT, ".cache", "data"))
    ap.add_argument("--out", default=os.path.join(ROOT, ".cache", "train", "images.pkl"))
    a = ap.parse_args()
    train, held, cache = [], [], {}
    for p, g in listing(a.data):
        try:
            im = Image.open(os.path.join(a.data, p)).convert("RGB")
        except Exception as e:  # noqa: BLE001 -- a bad file is skipped, the set goes on
            print("skip", p, e, file=sys.stderr)
            continue
        if min(im.size) < 64:
            continue
        size = im.size
        s = CACHE_SIDE / max(size)
        if s < 1:
            im = im.resize((max(1, round(size[0] * s)), max(1, round(size[1] * s))), Image.BICUBIC)
        cache[p] = {"rgb": np.asarray(im, dtype=np.uint8), "size": size}
        (held if held_out(g) else train).append((p, g))
    os.makedirs(os.path.join(HERE, "split"), exist_ok=True)
    for name, rows in (("train", train), ("heldout", held)):
        with open(os.path.join(HERE, "split", name + ".txt"), "w") as f:
            f.write("# path relative to the data cache\tgroup (near-duplicates share one)\n")
            for p, g in rows:
                f.write("%s\t%s\n" % (p, g))
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "wb") as f:
        pickle.dump(cache, f, protocol=4)
    ng = lambda rows: len(set(g for _, g in rows))  # noqa: E731
    print("train: %d files, %d groups; held-out: %d files, %d groups" % (len(train), ng(train), len(held), ng(held)))


if __name__ == "__main__":
    sys.exit(main())
