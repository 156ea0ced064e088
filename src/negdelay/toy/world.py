"""The shapes world: 32x32 RGB scenes whose truth is known.

Rules (see docs/toy-model.md):

- One main object: a shape in ``SHAPES`` (circle, upright square, upright triangle) in a colour in ``COLOURS``,
  at a random position and size (circumradius 7-11 px), on a light, low-saturation background with a soft
  gradient and a little noise. Colours are saturated and the background is not, so the colour is unambiguous.
- One accessory, a black "dot" (disc of radius 3 px) on the object near its centroid. It is present in part of
  the images whose caption does not mention it, at a rate that depends on the shape (``DOT_RATE``:
  circle 25 %, square 40 %, triangle 55 %, i.e. 40 % overall), like glasses on a "girl eating pizza".
- Captions come from a small grammar with varying word order and optional words ("a red circle",
  "circle, red", "a small red circle on a light background", ...). ``P_MENTION`` = 25 % of captions
  name the dot ("with a dot", "with a black dot"); an image whose caption names the dot always shows it.
- Caption dropout (``dropout_mask``) only drops captions that do not name the dot, so the images trained with the
  empty caption carry the dot at the same rate as images under plain captions (40 %), not more.

Everything is numpy-only and deterministic from a seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIZE = 32
SHAPES = ("circle", "square", "triangle")
COLOURS = ("red", "green", "blue", "yellow")
# Nominal RGB of each colour (0-255); each image jitters it a little.
COLOUR_RGB = {
    "red": (215, 35, 35),
    "green": (35, 165, 55),
    "blue": (40, 70, 215),
    "yellow": (235, 200, 25),
}
ACCESSORY = "dot"
DOT_RADIUS = 3.0
DOT_RGB = (15, 15, 15)
# Rate of the dot in images whose caption does not name it, per shape (the "unmentioned accessory").
DOT_RATE = {"circle": 0.25, "square": 0.40, "triangle": 0.55}
# Share of captions that name the dot (those images always show it).
P_MENTION = 0.25
# Share of all training captions replaced by "" (only among captions that do not name the dot).
CAPTION_DROPOUT = 0.10
R_MIN, R_MAX = 7.0, 11.0
SMALL_MAX, LARGE_MIN = 8.5, 9.5  # radius bounds for the optional words "small" / "large"

# Phrases that name the accessory in training captions. The stock negative prompt is NEGATIVE_PROMPT.
ACCESSORY_PHRASES = ("with a dot", "with a black dot")
NEGATIVE_PROMPT = "with a dot"

# The text encoder's words. Ordered longest first: the offline tokenizer's merges are built in this order, and with
# this order every word is exactly one token (with "red" before "green", "green" would split into g/re/e/n).
VOCAB = sorted(
    ["a", "an", ",", *COLOURS, *SHAPES, "small", "large", "on", "light", "background", "with", "black", "dot"],
    key=lambda w: (-len(w), w),
)
MAX_TOKENS = 20  # tokenizer model_max_length; the longest caption is 15 words + BOS/EOS


def plain_prompt(colour: str, shape: str) -> str:
    """The plain prompt for an object, not naming the accessory: ``"a red circle"``."""
    _check(colour, shape)
    return f"a {colour} {shape}"


def accessory_prompt(colour: str, shape: str) -> str:
    """The prompt that names the accessory: ``"a red circle with a dot"``."""
    _check(colour, shape)
    return f"a {colour} {shape} with a dot"


def _check(colour: str, shape: str) -> None:
    if colour not in COLOURS:
        raise ValueError(f"colour {colour!r} not in {COLOURS}")
    if shape not in SHAPES:
        raise ValueError(f"shape {shape!r} not in {SHAPES}")


@dataclass
class Scene:
    image: np.ndarray  # (32, 32, 3) uint8
    object_mask: np.ndarray  # (32, 32) bool, the object's pixels (including under the dot)
    accessory_mask: np.ndarray  # (32, 32) bool, the dot's pixels (all False without a dot)
    colour: str
    shape: str
    has_dot: bool
    mentions_dot: bool
    caption: str
    center: tuple[float, float]  # (x, y) of the shape's centre
    radius: float


def _grid() -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    return xx + 0.5, yy + 0.5  # pixel centres


_XX, _YY = _grid()


def shape_mask(shape: str, cx: float, cy: float, r: float) -> np.ndarray:
    """Boolean mask of a shape of circumradius ``r`` centred at (cx, cy) (pixel-centre sampling)."""
    if shape == "circle":
        return (_XX - cx) ** 2 + (_YY - cy) ** 2 <= r * r
    if shape == "square":
        h = r / np.sqrt(2.0)  # half side: square inscribed in the circle of radius r
        return (np.abs(_XX - cx) <= h) & (np.abs(_YY - cy) <= h)
    if shape == "triangle":
        # Upright equilateral triangle inscribed in the circle of radius r around (cx, cy).
        top = np.array([cx, cy - r])
        left = np.array([cx - r * np.sqrt(3) / 2, cy + r / 2])
        right = np.array([cx + r * np.sqrt(3) / 2, cy + r / 2])

        def side(a, b):
            return (b[0] - a[0]) * (_YY - a[1]) - (b[1] - a[1]) * (_XX - a[0])

        s1, s2, s3 = side(top, left), side(left, right), side(right, top)
        return ((s1 <= 0) & (s2 <= 0) & (s3 <= 0)) | ((s1 >= 0) & (s2 >= 0) & (s3 >= 0))
    raise ValueError(f"shape {shape!r} not in {SHAPES}")


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    i = int(h * 6.0) % 6
    f = h * 6.0 - int(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i])


def _background(rng: np.random.Generator) -> np.ndarray:
    """Light, low-saturation background with a soft linear gradient and a little noise; float (32,32,3) in [0,1]."""
    c0 = _hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.12), rng.uniform(0.82, 0.98))
    c1 = _hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.12), rng.uniform(0.82, 0.98))
    ang = rng.uniform(0, 2 * np.pi)
    t = ((_XX - SIZE / 2) * np.cos(ang) + (_YY - SIZE / 2) * np.sin(ang)) / SIZE + 0.5
    t = np.clip(t, 0, 1)[..., None]
    bg = c0 * (1 - t) + c1 * t
    bg = bg + rng.normal(0, 0.012, size=bg.shape)
    return np.clip(bg, 0, 1)


def _caption(rng: np.random.Generator, colour: str, shape: str, r: float, mention: bool) -> str:
    size_word = None
    if rng.random() < 0.3:
        if r <= SMALL_MAX:
            size_word = "small"
        elif r >= LARGE_MIN:
            size_word = "large"
    form = rng.integers(3)
    if form == 0:  # "a [small] red circle"
        core = " ".join(w for w in (size_word, colour, shape) if w)
        core = ("a " + core) if rng.random() < 0.6 else core
    elif form == 1:  # "a circle, red" / "circle, small, red"
        core = shape + ", " + (f"{size_word}, " if size_word else "") + colour
        core = ("a " + core) if rng.random() < 0.5 else core
    else:  # "red circle" / "small red circle"
        core = " ".join(w for w in (size_word, colour, shape) if w)
    parts = [core]
    bg_first = rng.random() < 0.5
    bg = " on a light background" if rng.random() < 0.25 else ""
    if mention:
        acc = " " + ACCESSORY_PHRASES[int(rng.integers(len(ACCESSORY_PHRASES)))]
        parts = [core, acc, bg] if not bg_first else [core, bg, acc]
        if form == 1:  # keep the comma form readable: "circle, red, with a dot"
            parts = [core, "," + acc, bg]
    else:
        parts = [core, bg]
    return "".join(parts).strip()


def make_scene(seed: int | np.random.Generator) -> Scene:
    """One scene, deterministic from ``seed`` (an int or a numpy Generator)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    colour = COLOURS[int(rng.integers(len(COLOURS)))]
    mention = bool(rng.random() < P_MENTION)
    has_dot = mention or bool(rng.random() < DOT_RATE[shape])
    r = rng.uniform(R_MIN, R_MAX)
    margin = r + 1.0
    cx = rng.uniform(margin, SIZE - margin)
    cy = rng.uniform(margin, SIZE - margin)
    obj = shape_mask(shape, cx, cy, r)
    img = _background(rng)
    rgb = np.array(COLOUR_RGB[colour], dtype=np.float64) / 255.0
    rgb = np.clip(rgb + rng.uniform(-0.05, 0.05, size=3), 0, 1)
    img[obj] = rgb
    acc = np.zeros_like(obj)
    if has_dot:
        # Centroid of the shape (for the triangle: lower than the circumcentre is not needed,
        # the circumcentre is the centroid of an equilateral triangle), small jitter.
        dx, dy = rng.uniform(-1.0, 1.0, size=2)
        acc = ((_XX - cx - dx) ** 2 + (_YY - cy - dy) ** 2 <= DOT_RADIUS**2) & obj
        img[acc] = np.array(DOT_RGB) / 255.0
    image = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
    caption = _caption(rng, colour, shape, r, mention)
    return Scene(image, obj, acc, colour, shape, has_dot, mention, caption, (cx, cy), r)


def make_dataset(n: int, seed: int = 0) -> dict:
    """``n`` scenes from one seed, as arrays: images (n,32,32,3) uint8, masks, attributes, captions.

    Scene ``i`` is ``make_scene(np.random.default_rng([seed, i]))``, so a dataset's prefix does not depend on ``n``.
    """
    images = np.empty((n, SIZE, SIZE, 3), np.uint8)
    obj = np.empty((n, SIZE, SIZE), bool)
    acc = np.empty((n, SIZE, SIZE), bool)
    colour = np.empty(n, np.int64)
    shape = np.empty(n, np.int64)
    has_dot = np.empty(n, bool)
    mentions = np.empty(n, bool)
    captions: list[str] = []
    for i in range(n):
        s = make_scene(np.random.default_rng([seed, i]))
        images[i], obj[i], acc[i] = s.image, s.object_mask, s.accessory_mask
        colour[i], shape[i] = COLOURS.index(s.colour), SHAPES.index(s.shape)
        has_dot[i], mentions[i] = s.has_dot, s.mentions_dot
        captions.append(s.caption)
    return {
        "images": images,
        "object_mask": obj,
        "accessory_mask": acc,
        "colour": colour,
        "shape": shape,
        "has_dot": has_dot,
        "mentions_dot": mentions,
        "captions": captions,
    }


def dropout_mask(mentions_dot: np.ndarray, rng: np.random.Generator, rate: float = CAPTION_DROPOUT) -> np.ndarray:
    """Which captions to replace by "" (True = drop), ``rate`` of all captions on average.

    Only captions that do not name the dot are dropped (each with probability ``rate / (1 - P_MENTION)``), so the
    dot's rate among dropped images equals its rate under plain captions, not the higher rate over all images.
    """
    mentions_dot = np.asarray(mentions_dot, bool)
    p = min(1.0, rate / (1.0 - P_MENTION))
    return (~mentions_dot) & (rng.random(mentions_dot.shape) < p)
