"""Image transforms of the robustness benchmark's families, on Pillow RGB images.

Each works on the "original" picture (any size) and is followed, at inference, by the hash
pipeline's own squash to 360x360 -- so sizes here are relative to the image. `FIXED` are the
benchmark settings the evaluation uses; `random_transform` draws the same families with random
strength for training.

Flips and 90-degree rotations are evaluated but never trained: NeuralHash is not flip- or
rotation-invariant (a flip moves ~27 of 96 bits on Apple's model), an invariant hash would make
every picture collide with its mirror image, and a caller that wants mirror matching can hash
the flipped image as a second query, which keeps the bits of the plain hash fully informative.
"""
import io
import random

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
_fonts = {}


def font(px):
    px = max(6, int(px))
    if px not in _fonts:
        try:
            _fonts[px] = ImageFont.truetype(FONT, px)
        except OSError:
            _fonts[px] = ImageFont.load_default()
    return _fonts[px]


def jpeg(im, q):
    b = io.BytesIO()
    im.save(b, "JPEG", quality=int(q))
    b.seek(0)
    return Image.open(b).convert("RGB")


def rescale(im, f):
    w, h = im.size
    return im.resize((max(8, round(w * f)), max(8, round(h * f))), Image.BICUBIC)


def center_crop(im, frac):
    """Cut `frac` of width and height away, half on each side."""
    w, h = im.size
    dx, dy = round(w * frac / 2), round(h * frac / 2)
    return im.crop((dx, dy, w - dx, h - dy))


def border(im, frac, color=(0, 0, 0)):
    """Pad every side by `frac` of the image's width/height."""
    w, h = im.size
    dx, dy = round(w * frac), round(h * frac)
    out = Image.new("RGB", (w + 2 * dx, h + 2 * dy), color)
    out.paste(im, (dx, dy))
    return out


def rotate(im, deg):
    if deg % 90 == 0:
        return im.rotate(deg, expand=True)
    return im.rotate(deg, Image.BICUBIC, expand=False, fillcolor=(0, 0, 0))


def brightness(im, f):
    return ImageEnhance.Brightness(im).enhance(f)


def contrast(im, f):
    return ImageEnhance.Contrast(im).enhance(f)


def gray(im):
    return im.convert("L").convert("RGB")


def blur(im, sigma360):
    """Gaussian blur with a sigma of `sigma360` pixels at the 360-pixel hash resolution."""
    return im.filter(ImageFilter.GaussianBlur(sigma360 * max(im.size) / 360))


def noise(im, sigma, rng=None):
    rng = rng or np.random.default_rng(0)
    a = np.asarray(im, dtype=np.float32)
    a = a + rng.normal(0, sigma, a.shape).astype(np.float32)
    return Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8))


def overlay(im, text="(c) nhash 2026", rel=0.07, pos=(0.05, 0.85), fill=(255, 255, 255),
            logo=True, alpha=200):
    """A caption in the corner, plus a small semi-transparent logo box."""
    w, h = im.size
    base = im.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    f = font(rel * h)
    d.text((pos[0] * w, pos[1] * h), text, font=f, fill=fill + (alpha,),
           stroke_width=max(1, int(rel * h / 12)), stroke_fill=(0, 0, 0, alpha))
    if logo:
        s = int(0.12 * min(w, h))
        x0, y0 = int(w - 1.3 * s), int(0.2 * s)
        d.ellipse((x0, y0, x0 + s, y0 + s), fill=(230, 40, 40, 150))
        d.text((x0 + s * 0.25, y0 + s * 0.2), "N", font=font(0.6 * s), fill=(255, 255, 255, 220))
    return Image.alpha_composite(base, layer).convert("RGB")


def caption(im, text="nhash (c) 2026", rel=0.125, fill=(255, 255, 255)):
    """A wide caption along the bottom: bold text `rel` of the height tall, from 5% in, at most 90%
    of the width (nhbench quality's "overlay" is this, white, at 1/8 of the height)."""
    w, h = im.size
    out = im.convert("RGB")
    d = ImageDraw.Draw(out)
    px = rel * h
    f = font(px)
    tw = d.textlength(text, font=f)
    if tw > 0.9 * w:
        f = font(px * 0.9 * w / tw)
    x0, y0, x1, y1 = d.textbbox((0, 0), text, font=f)
    d.text((0.05 * w - x0, h - 0.05 * h - y1), text, font=f, fill=fill)
    return out


def squash(im, fx, fy):
    w, h = im.size
    return im.resize((max(8, round(w * fx)), max(8, round(h * fy))), Image.BICUBIC)


def hflip(im):
    return im.transpose(Image.FLIP_LEFT_RIGHT)


# name -> function of a PIL RGB image; the benchmark settings.
FIXED = {
    "jpeg90": lambda im: jpeg(im, 90),
    "jpeg70": lambda im: jpeg(im, 70),
    "jpeg50": lambda im: jpeg(im, 50),
    "jpeg30": lambda im: jpeg(im, 30),
    "resize0.5": lambda im: rescale(im, 0.5),
    "resize0.25": lambda im: rescale(im, 0.25),
    "resize2": lambda im: rescale(im, 2.0),
    "crop5": lambda im: center_crop(im, 0.05),
    "crop10": lambda im: center_crop(im, 0.10),
    "crop20": lambda im: center_crop(im, 0.20),
    "border5": lambda im: border(im, 0.05),
    "border10w": lambda im: border(im, 0.10, (255, 255, 255)),
    "rot2": lambda im: rotate(im, 2),
    "rot5": lambda im: rotate(im, 5),
    "rot10": lambda im: rotate(im, 10),
    "bright+20": lambda im: brightness(im, 1.2),
    "bright-20": lambda im: brightness(im, 0.8),
    "bright+40": lambda im: brightness(im, 1.4),
    "bright-40": lambda im: brightness(im, 0.6),
    "contrast+20": lambda im: contrast(im, 1.2),
    "contrast-20": lambda im: contrast(im, 0.8),
    "contrast+40": lambda im: contrast(im, 1.4),
    "contrast-40": lambda im: contrast(im, 0.6),
    "gray": gray,
    "blur1": lambda im: blur(im, 1.0),
    "blur2": lambda im: blur(im, 2.0),
    "noise10": lambda im: noise(im, 10),
    "noise20": lambda im: noise(im, 20),
    "overlay": overlay,
    "caption": caption,
    "squash0.75": lambda im: squash(im, 0.75, 1.0),
    "squash1.33": lambda im: squash(im, 1.0, 0.75),
    # not trained, reported for the record
    "rot90": lambda im: rotate(im, 90),
    "hflip": hflip,
}
UNTRAINED = ("rot90", "hflip")


def fixed(name, im, index):
    """The benchmark copy `name` of image number `index`: FIXED[name], with the noise seeded by
    the index so the copy is the same in every run."""
    if name.startswith("noise"):
        return noise(im, int(name[5:]), np.random.default_rng(index))
    return FIXED[name](im)

_WORDS = ["nhash", "SAMPLE", "(c) 2026", "photo", "www.example.org", "@user", "Holiday!", "42", "DRAFT"]


# the families random_transform draws from, in its order, and their relative weights
# (train.py --aug-weights changes them; all equal is a uniform draw)
FAMILIES = ("jpeg", "resize", "crop", "border", "rotate", "brightness", "contrast", "gray", "blur",
            "noise", "overlay", "squash")
WEIGHTS = [1.0] * len(FAMILIES)


def set_weights(spec):
    """`spec` as "crop=3,rotate=3": weight per family, the others 1."""
    for item in filter(None, spec.split(",")):
        name, _, w = item.partition("=")
        if name not in FAMILIES:
            raise ValueError("unknown family %r (families: %s)" % (name, ", ".join(FAMILIES)))
        WEIGHTS[FAMILIES.index(name)] = float(w)


def random_transform(im, rng: random.Random, nprng):
    """One randomly chosen family at a random strength (a bit beyond the benchmark's range)."""
    if len(set(WEIGHTS)) == 1:
        k = rng.randrange(len(FAMILIES))
    else:
        k = rng.choices(range(len(FAMILIES)), weights=WEIGHTS)[0]
    if k == 0:
        return jpeg(im, rng.randint(20, 95))
    if k == 1:
        return rescale(im, rng.choice([rng.uniform(0.2, 0.7), rng.uniform(1.2, 2.2)]))
    if k == 2:  # crop: centred or a little off-centre
        w, h = im.size
        f = rng.uniform(0.02, 0.25)
        dx, dy = w * f, h * f
        ox, oy = rng.uniform(0, dx), rng.uniform(0, dy)
        return im.crop((round(ox), round(oy), round(w - (dx - ox)), round(h - (dy - oy))))
    if k == 3:
        c = rng.choice([(0, 0, 0), (255, 255, 255), tuple(rng.randrange(256) for _ in range(3))])
        return border(im, rng.uniform(0.02, 0.15), c)
    if k == 4:
        return rotate(im, rng.uniform(-12, 12))
    if k == 5:
        return brightness(im, rng.uniform(0.55, 1.45))
    if k == 6:
        return contrast(im, rng.uniform(0.55, 1.45))
    if k == 7:
        return gray(im)
    if k == 8:
        return blur(im, rng.uniform(0.5, 2.5))
    if k == 9:
        return noise(im, rng.uniform(3, 25), nprng)
    if k == 10:
        fill = rng.choice([(255, 255, 255), (0, 0, 0), (255, 255, 0), (255, 0, 0)])
        if rng.random() < 0.4:  # a wide caption along the bottom
            return caption(im, " ".join(rng.sample(_WORDS, rng.randint(2, 3))), rng.uniform(0.07, 0.16), fill)
        return overlay(im, rng.choice(_WORDS), rel=rng.uniform(0.04, 0.11),
                       pos=(rng.uniform(0.02, 0.5), rng.choice([rng.uniform(0.02, 0.12), rng.uniform(0.78, 0.9)])),
                       fill=fill, logo=rng.random() < 0.5, alpha=rng.randint(150, 255))
    return squash(im, rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0)) if rng.random() < 0.5 else \
        squash(im, rng.uniform(0.7, 1.4), 1.0)


def random_view(im, rng, nprng, max_ops=3):
    """0..max_ops random transforms composed (0 with probability 1/4)."""
    n = rng.choice([0, 1, 1, 2, 2, 3][: max_ops * 2]) if max_ops else 0
    for _ in range(n):
        im = random_transform(im, rng, nprng)
    return im
