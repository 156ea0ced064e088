"""Checkpoint selection for the toy model: a fixed validation set of seeds, judged by ``detect``.

The validation seeds (``FIRST_SEED`` = 1,000,000 and up) are disjoint from the seeds of every documented measurement
(targets, study, lab and README: all below 10,000), so choosing the checkpoint on them does not tune the reported
numbers.

``score(pipe)`` renders the plain prompt of each validation object (12 objects in turn) at 25 PNDM steps, CFG 7.5,
and returns both-right, colour-right per colour, and the unprompted dot rate. ``rank(result)`` is what training
maximises: both right plus the worst colour's colour-right (a model that drops one colour ranks low even when the
other three are perfect).
"""

from __future__ import annotations

import numpy as np

from . import detect, world

FIRST_SEED = 1_000_000


def objects(n: int) -> list[tuple[str, str]]:
    """The ``n`` validation objects: colour cycles fastest, then shape (12 objects, repeated)."""
    return [(world.COLOURS[i % 4], world.SHAPES[(i // 4) % 3]) for i in range(n)]


def score(pipe, n: int = 96, steps: int = 25, cfg: float = 7.5, batch: int = 16) -> dict:
    """Judge ``n`` validation images of ``pipe`` (a StableDiffusionPipeline of the toy model)."""
    import torch

    objs = objects(n)
    judged = {"colour": [], "shape": [], "dot": []}
    for i in range(0, n, batch):
        part = objs[i:i + batch]
        gens = [torch.Generator().manual_seed(FIRST_SEED + i + k) for k in range(len(part))]
        with torch.no_grad():
            out = pipe([world.plain_prompt(c, s) for c, s in part], num_inference_steps=steps, guidance_scale=cfg,
                       generator=gens, output_type="np").images
        j = detect.judge_batch((np.clip(out, 0, 1) * 255).round().astype(np.uint8))
        for key in judged:
            judged[key] += list(j[key])
    colour_ok = np.array([j == c for j, (c, _) in zip(judged["colour"], objs)])
    shape_ok = np.array([j == s for j, (_, s) in zip(judged["shape"], objs)])
    per_colour = {c: float(colour_ok[[k for k, (cc, _) in enumerate(objs) if cc == c]].mean()) for c in world.COLOURS}
    return {"n": n, "both": float((colour_ok & shape_ok).mean()), "colour": per_colour,
            "shape": float(shape_ok.mean()), "dot": float(np.mean(judged["dot"]))}


def rank(result: dict) -> float:
    """Both right plus the worst colour's colour-right: the number checkpoint selection maximises."""
    return result["both"] + min(result["colour"].values())


__all__ = ["FIRST_SEED", "objects", "rank", "score"]
