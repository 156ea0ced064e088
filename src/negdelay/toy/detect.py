"""A ground-truth judge for 32x32 shapes-world images: colour, shape, dot present.

Exact rules, no learned weights (fixed before any model output was looked at; never tuned to the model):

- pixels are *coloured* when their HSV saturation >= 0.45 and value >= 0.35; *dark* when value < 0.40
  (the world's backgrounds are light and unsaturated, value >= 0.8; the dot is black);
- colour: majority vote of the coloured pixels, each assigned to the nearest nominal hue
  (red 0 deg, yellow 50 deg, green 128 deg, blue 229 deg);
- object: the largest 4-connected component of (coloured or dark) pixels, holes filled;
- shape: from the object's bounding box: vertical asymmetry (bottom-half minus top-half area share; an upright
  triangle has ~0.5, circle and square ~0) > 0.25 -> triangle; else fill ratio (area / box area) >= 0.89 -> square,
  else circle;
- dot: at least ``DOT_MIN_PIXELS`` = 3 dark pixels inside the object's (1-px dilated) bounding box.

``python -m negdelay.toy.detect [N]`` prints the per-attribute accuracy on N fresh world images.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from . import world

HUES = {"red": 0.0, "yellow": 50.0, "green": 128.0, "blue": 229.0}
SAT_MIN, VAL_MIN = 0.45, 0.35
DARK_MAX = 0.40
DOT_MIN_PIXELS = 3
TRIANGLE_ASYM = 0.25
SQUARE_FILL = 0.89


@dataclass
class Judgement:
    colour: str | None  # None when no coloured pixels at all
    shape: str | None  # None when no object
    dot: bool
    n_coloured: int = 0
    n_dark: int = 0
    fill: float = 0.0
    asym: float = 0.0


def _to_float(img) -> np.ndarray:
    a = np.asarray(img)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {a.shape}")
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    return np.clip(a.astype(np.float64), 0.0, 1.0)


def _hsv(a: np.ndarray):
    mx, mn = a.max(-1), a.min(-1)
    v = mx
    s = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-8), 0.0)
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    d = np.maximum(mx - mn, 1e-8)
    h = np.where(mx == r, ((g - b) / d) % 6, np.where(mx == g, (b - r) / d + 2, (r - g) / d + 4)) * 60.0
    return h % 360.0, s, v


def _largest_component(mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    label = np.zeros((h, w), np.int32)
    best, best_n, cur = 0, 0, 0
    for y0, x0 in zip(*np.nonzero(mask)):
        if label[y0, x0]:
            continue
        cur += 1
        label[y0, x0] = cur
        stack, n = [(y0, x0)], 0
        while stack:
            y, x = stack.pop()
            n += 1
            for yy, xx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= yy < h and 0 <= xx < w and mask[yy, xx] and not label[yy, xx]:
                    label[yy, xx] = cur
                    stack.append((yy, xx))
        if n > best_n:
            best, best_n = cur, n
    return label == best if best else np.zeros_like(mask)


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    outside = _largest_component_from_border(~mask)
    return ~outside


def _largest_component_from_border(free: np.ndarray) -> np.ndarray:
    h, w = free.shape
    seen = np.zeros_like(free)
    stack = [(y, x) for y in range(h) for x in (0, w - 1) if free[y, x]]
    stack += [(y, x) for x in range(w) for y in (0, h - 1) if free[y, x]]
    for y, x in stack:
        seen[y, x] = True
    while stack:
        y, x = stack.pop()
        for yy, xx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
            if 0 <= yy < h and 0 <= xx < w and free[yy, xx] and not seen[yy, xx]:
                seen[yy, xx] = True
                stack.append((yy, xx))
    return seen


def _nearest_colour(hue: np.ndarray) -> np.ndarray:
    names = list(HUES)
    ref = np.array([HUES[k] for k in names])
    d = np.abs(hue[:, None] - ref[None, :])
    d = np.minimum(d, 360.0 - d)
    return d.argmin(1)


def judge(img) -> Judgement:
    """Judge one image (HxWx3 uint8, or float in [0, 1])."""
    a = _to_float(img)
    h, s, v = _hsv(a)
    coloured = (s >= SAT_MIN) & (v >= VAL_MIN)
    dark = v < DARK_MAX
    n_col = int(coloured.sum())
    colour = None
    if n_col:
        votes = np.bincount(_nearest_colour(h[coloured]), minlength=len(HUES))
        colour = list(HUES)[int(votes.argmax())]
    obj = _largest_component(coloured | dark)
    if not obj.any():
        return Judgement(colour, None, False, n_col, 0)
    obj = _fill_holes(obj)
    ys, xs = np.nonzero(obj)
    y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
    box_area = (y1 - y0 + 1) * (x1 - x0 + 1)
    area = int(obj.sum())
    fill = area / box_area
    ymid = (y0 + y1 + 1) / 2.0
    top = float((ys + 0.5 < ymid).sum())
    bottom = float((ys + 0.5 > ymid).sum())
    asym = (bottom - top) / area
    if asym > TRIANGLE_ASYM:
        shape = "triangle"
    elif fill >= SQUARE_FILL:
        shape = "square"
    else:
        shape = "circle"
    Y0, Y1, X0, X1 = max(y0 - 1, 0), min(y1 + 2, a.shape[0]), max(x0 - 1, 0), min(x1 + 2, a.shape[1])
    n_dark = int(dark[Y0:Y1, X0:X1].sum())
    return Judgement(colour, shape, n_dark >= DOT_MIN_PIXELS, n_col, n_dark, float(fill), float(asym))


def judge_batch(images) -> dict:
    """Judge a batch (N x H x W x 3, uint8 or float in [0, 1], or a list of PIL images / arrays).

    Returns ``{"colour": [...], "shape": [...], "dot": bool array}``.
    """
    out = {"colour": [], "shape": [], "dot": []}
    for im in images:
        j = judge(np.asarray(im))
        out["colour"].append(j.colour)
        out["shape"].append(j.shape)
        out["dot"].append(j.dot)
    out["dot"] = np.array(out["dot"], bool)
    return out


def accuracy_on_world(n: int = 500, seed: int = 12345) -> dict:
    """Per-attribute accuracy of ``judge`` on ``n`` fresh world scenes (seed not used for training data)."""
    data = world.make_dataset(n, seed=seed)
    res = judge_batch(data["images"])
    colour = np.array([world.COLOURS.index(c) if c else -1 for c in res["colour"]])
    shape = np.array([world.SHAPES.index(c) if c else -1 for c in res["shape"]])
    return {
        "n": n,
        "colour": float((colour == data["colour"]).mean()),
        "shape": float((shape == data["shape"]).mean()),
        "dot": float((res["dot"] == data["has_dot"]).mean()),
    }


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    n = int(argv[0]) if argv else 1000
    seed = int(argv[1]) if len(argv) > 1 else 12345
    acc = accuracy_on_world(n, seed)
    print(f"detector accuracy on {n} fresh world images (seed {seed}):")
    for k in ("colour", "shape", "dot"):
        print(f"  {k:7s} {100 * acc[k]:6.2f} %")


if __name__ == "__main__":
    main()
