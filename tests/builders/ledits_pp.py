"""Tiny LEDITS++ pipelines (SD 1.x and SDXL) on the SD and SDXL builders' components (their UNets with a third level:
cross-attention at the 4x4 of the attention masks), inverted once at build time (32x32 images -- its minimum --, 5
inversion steps, skip 0.2: the loop runs the last 5 of 6 timesteps); each call edits the inverted images with two
editing prompts. SD 1.x counts its steps by its progress bar (its declaration's ``steps``). The contract's
``prompt`` and ``num_inference_steps`` land in ``__call__``'s ``**kwargs`` and are ignored (the inversion fixes the
images and the steps); one image per inverted image; no other scheduler (a new one would need a new inversion).
``no_cfg``: no editing prompt (the pipeline then runs the unconditional rows alone)."""

from __future__ import annotations

import torch
from diffusers import (
    DPMSolverMultistepScheduler,
    LEditsPPPipelineStableDiffusion,
    LEditsPPPipelineStableDiffusionXL,
    UNet2DConditionModel,
)

from contract_case import Case
from tiny import tiny_sd
from tiny_families import tiny_sdxl

IMAGES = torch.stack([torch.linspace(0, 1, 3 * 32 * 32).reshape(3, 32, 32),
                      torch.linspace(1, 0, 3 * 32 * 32).reshape(3, 32, 32)])
STEPS = 5
CALL = dict(editing_prompt=["red hat", "green glasses"], edit_guidance_scale=[5.0, 3.0], edit_threshold=0.8,
            output_type="latent")


def _unet(base):
    """The builder's UNet with a third level, so that cross-attention runs at 4x4, the resolution LEDITS++'s
    attention masks are read at (a quarter of the 16x16 latents)."""
    torch.manual_seed(0)
    return UNet2DConditionModel.from_config({
        **base.unet.config, "block_out_channels": (8, 16, 16),
        "down_block_types": ("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D")}).eval()


def _scheduler(pipe):
    return DPMSolverMultistepScheduler.from_config(pipe.scheduler.config, algorithm_type="sde-dpmsolver++",
                                                   solver_order=2)


def _inverted(pipe, images=IMAGES):
    pipe.set_progress_bar_config(disable=True)
    pipe.invert(image=images, num_inversion_steps=STEPS, skip=0.2, generator=torch.Generator().manual_seed(0))
    return pipe


def ledits_sd() -> Case:
    base = tiny_sd()
    parts = {k: v for k, v in base.components.items() if k not in ("image_encoder",)}
    pipe = _inverted(LEditsPPPipelineStableDiffusion(**{**parts, "unet": _unet(base), "scheduler": _scheduler(base)}))
    # full grid: k = 3 shows the loop's start found (with DPM-Solver's step index, k = 1 hides a wrong start:
    # the index jumps from None to 2 after the first step, past the skipped timestep)
    return Case(pipe, call=dict(CALL), steps=STEPS, images_arg=None, no_cfg={"editing_prompt": None})


def ledits_sdxl() -> Case:
    base = tiny_sdxl()
    parts = {k: v for k, v in base.components.items() if k not in ("image_encoder", "feature_extractor")}
    # ONE image: with more, __call__ repeats the edit concepts' time ids but not their text rows (diffusers 0.42.1)
    pipe = _inverted(LEditsPPPipelineStableDiffusionXL(**{**parts, "unet": _unet(base), "scheduler": _scheduler(base)}),
                     IMAGES[:1])
    return Case(pipe, call=dict(CALL), steps=STEPS, images_arg=None, no_cfg={"editing_prompt": None},
                prompts="a red cat")


CASES = {"LEditsPPPipelineStableDiffusion": ledits_sd, "LEditsPPPipelineStableDiffusionXL": ledits_sdxl}
