"""Per-image metrics and their 95 % confidence intervals.

- Detector (embedded model only): ``negdelay.toy.detect`` judges the dot, the colour and the shape of each image;
  rates come with Wilson score intervals.
- CLIP scores (any model, when a CLIP model is given): cosine similarity of the image's CLIP embedding to the
  prompt's and to the negative's text embedding (``ClipScore``).
- Distances to the no-negative image of the same seed (any model): the mean absolute pixel difference (0-1 scale)
  and the structural dissimilarity ``1 - SSIM`` (scikit-image's ``structural_similarity``, Gaussian window as in
  Wang et al. 2004; no learned weights). Means come with percentile-bootstrap intervals (fixed seed).
"""

from __future__ import annotations

import math
import re

import numpy as np

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a rate ``k / n``."""
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def bootstrap_mean(values, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean and its 95 % percentile-bootstrap interval."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if x.size == 1:
        return (mean, mean, mean)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return (mean, float(lo), float(hi))


def rate(flags) -> dict:
    flags = [bool(f) for f in flags]
    k, n = sum(flags), len(flags)
    lo, hi = wilson(k, n)
    return {"rate": k / n if n else math.nan, "low": lo, "high": hi, "k": k, "n": n}


def mean_ci(values) -> dict:
    m, lo, hi = bootstrap_mean(values)
    return {"mean": m, "low": lo, "high": hi, "n": len(values)}


def paired_difference(a, b, n_boot: int = 2000, seed: int = 0) -> dict:
    """Mean of ``a - b`` over paired items (same seed) and its 95 % percentile-bootstrap interval (pairs resampled)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    m, lo, hi = bootstrap_mean(d, n_boot, seed)
    return {"diff": m, "low": lo, "high": hi, "n": int(d.size)}


def paired_ratio(a, b, n_boot: int = 2000, seed: int = 0) -> dict:
    """``mean(a) / mean(b)`` over paired items and its 95 % percentile-bootstrap interval (pairs resampled);
    nan where ``b`` is all zero."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size == 0 or b.sum() == 0:
        return {"ratio": math.nan, "low": math.nan, "high": math.nan, "n": int(a.size)}
    idx = np.random.default_rng(seed).integers(0, a.size, size=(n_boot, a.size))
    den = b[idx].sum(axis=1)
    ratios = a[idx].sum(axis=1)[den > 0] / den[den > 0]
    lo, hi = np.quantile(ratios, [0.025, 0.975])
    return {"ratio": float(a.sum() / b.sum()), "low": float(lo), "high": float(hi), "n": int(a.size)}


# ---------------------------------------------------------------------------------------------------------- distances
def to_float(image) -> np.ndarray:
    a = np.asarray(image)
    return a.astype(np.float64) / 255.0 if a.dtype == np.uint8 else a.astype(np.float64)


def pixel_distance(a, b) -> float:
    """Mean absolute difference of two HxWx3 images on a 0-1 scale."""
    return float(np.abs(to_float(a) - to_float(b)).mean())


def ssim_distance(a, b) -> float:
    """``1 - SSIM`` of two HxWx3 images (0: identical)."""
    from skimage.metrics import structural_similarity

    x, y = to_float(a), to_float(b)
    side = min(x.shape[0], x.shape[1])
    win = min(7, side if side % 2 else side - 1)
    s = structural_similarity(x, y, channel_axis=-1, data_range=1.0, gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False, win_size=win)
    return float(1.0 - s)


# ----------------------------------------------------------------------------------------------------------- detector
def prompt_target(prompt: str) -> tuple[str | None, str | None]:
    """The colour and shape a shapes-world prompt asks for (None when it names none)."""
    from ..toy import world

    words = re.findall(r"[a-z]+", prompt.lower())
    colour = next((w for w in words if w in world.COLOURS), None)
    shape = next((w for w in words if w in world.SHAPES), None)
    return colour, shape


def detect(image, prompt: str) -> dict:
    """The toy world's judge on one image: ``dot`` present, and whether colour / shape match the prompt."""
    from ..toy import detect as judge_mod

    j = judge_mod.judge(np.asarray(image))
    colour, shape = prompt_target(prompt)
    return {
        "dot": bool(j.dot),
        "colour": j.colour,
        "shape": j.shape,
        "colour_ok": None if colour is None else j.colour == colour,
        "shape_ok": None if shape is None else j.shape == shape,
    }


RATE_METRICS = ("dot", "colour_ok", "shape_ok")
DISTANCE_METRICS = ("pixel_distance", "ssim_distance")
CLIP_METRICS = ("clip_prompt", "clip_negative")
MEAN_METRICS = DISTANCE_METRICS + CLIP_METRICS
LABELS = {
    "clip_prompt": "CLIP similarity to the prompt",
    "clip_negative": "CLIP similarity to the negative",
    "dot": "dot rate",
    "colour_ok": "colour right",
    "shape_ok": "shape right",
    "pixel_distance": "pixel distance to no-negative",
    "ssim_distance": "1 - SSIM to no-negative",
}


def summarize(rows: list[dict]) -> dict:
    """Aggregate per-image metric rows (one group): rates with Wilson intervals, distances with bootstrap ones."""
    out: dict = {"n": len(rows)}
    for m in RATE_METRICS:
        vals = [r[m] for r in rows if r.get(m) is not None]
        if vals:
            out[m] = rate(vals)
    for m in MEAN_METRICS:
        vals = [r[m] for r in rows if r.get(m) is not None]
        if vals:
            out[m] = mean_ci(vals)
    return out


class ClipScore:
    """CLIP image-text cosine similarities: ``clip_prompt`` (to the prompt) and ``clip_negative`` (to the negative).

    ``model``: a local folder holding a ``CLIPModel`` and its ``CLIPProcessor`` (or a hub id where a hub is reachable).
    Loading errors raise ``ValueError`` naming the model."""

    def __init__(self, model: str, device: str = "cpu"):
        import os
        from pathlib import Path

        from transformers import CLIPModel, CLIPProcessor

        path = Path(os.path.expanduser(model))
        local = path.is_dir()
        if not local and (model.startswith((".", "/", "~")) or model.count("/") != 1):
            raise ValueError(f"clip_model {model!r}: no such folder (give a local CLIP folder or a hub id owner/name)")
        try:
            self.model = CLIPModel.from_pretrained(str(path) if local else model, local_files_only=local).eval().to(device)
            self.processor = CLIPProcessor.from_pretrained(str(path) if local else model, local_files_only=local)
        except Exception as e:  # noqa: BLE001 - one clear message
            raise ValueError(f"clip_model {model!r} could not be loaded: {type(e).__name__}: {str(e)[:200]}") from None
        self.device = device
        self._texts: dict[str, object] = {}

    @staticmethod
    def _unit(t):
        import torch

        t = t if isinstance(t, torch.Tensor) else t.pooler_output
        return t / t.norm(dim=-1, keepdim=True)

    def _text(self, text: str):
        import torch

        if text not in self._texts:
            enc = self.processor.tokenizer([text], padding=True, truncation=True, return_tensors="pt").to(self.device)
            with torch.no_grad():
                self._texts[text] = self._unit(self.model.get_text_features(**enc))[0]
        return self._texts[text]

    def __call__(self, images, prompt: str, negative: str) -> list[dict]:
        import torch

        with torch.no_grad():
            pix = self.processor.image_processor(images=[np.asarray(im) for im in images], return_tensors="pt")
            f = self._unit(self.model.get_image_features(pixel_values=pix["pixel_values"].to(self.device)))
        p, n = self._text(prompt), self._text(negative)
        return [{"clip_prompt": float(row @ p), "clip_negative": float(row @ n)} for row in f]
