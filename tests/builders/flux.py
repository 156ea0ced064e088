"""Flux with true CFG on the tiny components of tests/tiny_families.py."""

from __future__ import annotations

import torch
from diffusers import (
    FlowMatchEulerDiscreteScheduler,
    FluxControlNetModel,
    FluxControlNetPipeline,
    FluxImg2ImgPipeline,
    FluxInpaintPipeline,
    FluxKontextInpaintPipeline,
    FluxKontextPipeline,
)

from contract_case import Case
from tiny_families import HIDDEN, tiny_flux

IMAGE = torch.linspace(0, 1, 3 * 16 * 16).reshape(1, 3, 16, 16)
MASK = (torch.arange(16 * 16).reshape(1, 1, 16, 16) % 16 >= 8).float()
TRUE_CFG = dict(height=16, width=16, max_sequence_length=8, true_cfg_scale=3.0, negative_prompt=["", ""],  # a str negative with 2 prompts breaks Flux itself
               
                output_type="latent")
SCHEDULERS = ((lambda p: p.scheduler), (lambda p: FlowMatchEulerDiscreteScheduler(shift=3.0)))


def controlnet(base):
    torch.manual_seed(3)
    net = FluxControlNetModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=HIDDEN, pooled_projection_dim=HIDDEN, axes_dims_rope=(4, 4, 8),
    ).eval()
    return FluxControlNetPipeline(**base.components, controlnet=net)


def flux(make=None, full=False, **call):
    def build():
        base = tiny_flux()
        pipe = base if make is None else make(base)
        pipe.set_progress_bar_config(disable=True)
        return Case(pipe, call={**TRUE_CFG, **call}, no_cfg={"true_cfg_scale": 1.0}, schedulers=SCHEDULERS,
                    full_grid=full)
    return build


KONTEXT = dict(image=IMAGE, _auto_resize=False, max_area=16 * 16)
CASES = {
    "FluxPipeline": flux(full=True),
    "FluxImg2ImgPipeline": flux(lambda b: FluxImg2ImgPipeline(**b.components), full=True, image=IMAGE, strength=0.8,
                                num_inference_steps=5),
    "FluxInpaintPipeline": flux(lambda b: FluxInpaintPipeline(**b.components), image=IMAGE, mask_image=MASK,
                                strength=0.8, num_inference_steps=5),
    "FluxControlNetPipeline": flux(controlnet, control_image=IMAGE, controlnet_conditioning_scale=0.7),
    "FluxKontextPipeline": flux(lambda b: FluxKontextPipeline(**b.components), **KONTEXT),
    "FluxKontextInpaintPipeline": flux(lambda b: FluxKontextInpaintPipeline(**b.components), **KONTEXT,
                                       mask_image=MASK, strength=0.8, num_inference_steps=5),
}
