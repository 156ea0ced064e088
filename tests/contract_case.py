"""What a tiny-components builder hands the contract test: a tiny pipeline of the real class and how to call it.

A builder only builds; the contract (tests/test_contract.py) decides what to prove. The contract calls
``case.pipe(prompt=PROMPTS, negative_prompt=..., num_inference_steps=case.steps, generator=...,
num_images_per_prompt=2, **case.call)`` and compares ``case.output(result)`` byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch


def first_output(result) -> torch.Tensor:
    """The pipeline's first output field (images, frames, audios, latents), as a tensor."""
    out = result[0]
    if isinstance(out, (list, tuple)):
        out = out[0] if len(out) == 1 and isinstance(out[0], torch.Tensor) else out
    if isinstance(out, torch.Tensor):
        return out.detach().cpu()
    import numpy as np

    return torch.from_numpy(np.ascontiguousarray(np.asarray(out)))


@dataclass
class Case:
    """One served pipeline class on tiny components.

    pipe: the pipeline (eval mode, progress bar disabled), deterministic across calls with the same generator.
    call: keyword arguments for every call besides prompt/negative_prompt/steps/generator/images-per-prompt:
        sizes, output_type (``"latent"`` where the pipeline takes it: faster), images, guidance scales,
        max_sequence_length, ``negative_prompt: ""`` where guidance needs one (true CFG), ...
    no_cfg: keyword overrides that switch classifier-free guidance off (e.g. ``{"guidance_scale": 1.0}``), or a
        function ``pipe -> undo`` that switches it off on the pipeline (a guider) and returns how to switch it back.
    prompts: the prompts (a str where the pipeline takes one prompt only).
    schedulers: factories ``f(pipe) -> scheduler``; the first is what ``pipe`` already has. A second one where
        the pipeline takes other schedulers (the contract runs the grid over them).
    images_arg: the pipeline's "images per prompt" keyword (None: it has none; then one image per prompt).
    negative_arg: the pipeline's negative keyword (``negative_prompt``).
    steps: inference steps (>= 4, so that start steps 1 and 3 both switch).
    output: result -> tensor to compare.
    full_grid: False: k = 1 and the first scheduler only (variants of a family whose main class has the grid).
    """

    pipe: object
    call: dict = field(default_factory=dict)
    no_cfg: object = field(default_factory=lambda: {"guidance_scale": 1.0})
    schedulers: tuple[Callable, ...] = ()
    images_arg: str | None = "num_images_per_prompt"
    negative_arg: str = "negative_prompt"
    steps: int = 4
    output: Callable = first_output
    full_grid: bool = True
    prompts: object = ("a red cat", "a blue dog")

    def negatives(self):
        """The delayed negatives: one per prompt (a str for a str prompt)."""
        negs = ("blurry hat", "ugly dog")
        return negs[0] if isinstance(self.prompts, str) else list(negs[: len(self.prompts)])
