"""Tiny SDXL descendants on the components of tests/tiny_families.py ``tiny_sdxl``: ControlNet Union (text-to-image,
img2img, inpaint) and T2I-Adapter XL. 16x16 pixels, 8x8 latents.

The Union ControlNet is made from the tiny UNet with its control-type transformer narrowed to the UNet's first
width (8 channels, 2 heads); its output convolutions are randomized (a fresh ControlNet's are zeros, so its text rows
would not reach the output).
"""

from __future__ import annotations

import torch
from diffusers import (
    DDIMScheduler,
    StableDiffusionXLAdapterPipeline,
    StableDiffusionXLControlNetUnionImg2ImgPipeline,
    StableDiffusionXLControlNetUnionInpaintPipeline,
    StableDiffusionXLControlNetUnionPipeline,
    T2IAdapter,
)
from diffusers.models.controlnets import ControlNetUnionModel

from contract_case import Case
from tiny_families import tiny_sdxl

IMAGE = torch.linspace(0, 1, 3 * 16 * 16).reshape(1, 3, 16, 16)
MASK = (torch.arange(16 * 16).reshape(1, 1, 16, 16) % 16 >= 8).float()
SMALL = dict(height=16, width=16, output_type="latent")


def _same(pipe):
    return pipe.scheduler


def _ddim(pipe):
    return DDIMScheduler.from_config(pipe.scheduler.config)


def _components():
    base = tiny_sdxl()
    return {k: v for k, v in base.components.items() if k not in ("image_encoder", "feature_extractor")}


def _union(unet):
    config = dict(ControlNetUnionModel.from_unet(unet, conditioning_embedding_out_channels=(4, 8)).config)
    torch.manual_seed(1)
    net = ControlNetUnionModel.from_config(config, num_trans_channel=8, num_trans_head=2, num_proj_channel=8).eval()
    with torch.no_grad():
        for conv in [*net.controlnet_down_blocks, net.controlnet_mid_block]:
            conv.weight.normal_(0, 0.3)
    return net


def union(cls, full=False, **call):
    def build():
        parts = _components()
        pipe = cls(**parts, controlnet=_union(parts["unet"]))
        pipe.set_progress_bar_config(disable=True)
        return Case(pipe, call={**SMALL, "control_image": IMAGE, "control_mode": 0, **call},
                    schedulers=(_same, _ddim), full_grid=full)
    return build


def adapter():
    torch.manual_seed(0)
    net = T2IAdapter(in_channels=3, channels=[8, 16], num_res_blocks=1, downscale_factor=4,
                     adapter_type="full_adapter_xl").eval()
    pipe = StableDiffusionXLAdapterPipeline(**_components(), adapter=net)
    pipe.set_progress_bar_config(disable=True)
    return Case(pipe, call={**SMALL, "image": IMAGE.repeat(2, 1, 1, 1)}, schedulers=(_same, _ddim), full_grid=False)


CASES = {
    "StableDiffusionXLControlNetUnionPipeline": union(StableDiffusionXLControlNetUnionPipeline, full=True),
    "StableDiffusionXLControlNetUnionImg2ImgPipeline": union(
        StableDiffusionXLControlNetUnionImg2ImgPipeline, image=IMAGE, strength=0.8, num_inference_steps=5),
    "StableDiffusionXLControlNetUnionInpaintPipeline": union(
        StableDiffusionXLControlNetUnionInpaintPipeline, image=IMAGE, mask_image=MASK, strength=0.8,
        num_inference_steps=5),
}

CASES["StableDiffusionXLAdapterPipeline"] = adapter
