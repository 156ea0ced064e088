"""Stable Diffusion 1.x, SDXL and SD3 pipelines on the tiny components of tests/tiny.py and tests/tiny_families.py."""

from __future__ import annotations

import torch
from diffusers import (
    ControlNetModel,
    DDIMScheduler,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    StableDiffusion3Img2ImgPipeline,
    StableDiffusion3InpaintPipeline,
    StableDiffusionControlNetImg2ImgPipeline,
    StableDiffusionControlNetInpaintPipeline,
    StableDiffusionControlNetPipeline,
    StableDiffusionImg2ImgPipeline,
    StableDiffusionInpaintPipeline,
    StableDiffusionXLControlNetImg2ImgPipeline,
    StableDiffusionXLControlNetInpaintPipeline,
    StableDiffusionXLControlNetPipeline,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLInpaintPipeline,
)

from contract_case import Case
from tiny import tiny_sd
from tiny_families import tiny_sd3, tiny_sdxl, tiny_sdxl_controlnet

IMAGE = torch.linspace(0, 1, 3 * 16 * 16).reshape(1, 3, 16, 16)
MASK = (torch.arange(16 * 16).reshape(1, 1, 16, 16) % 16 >= 8).float()
SMALL = dict(height=16, width=16, output_type="latent")
IMG2IMG = dict(image=IMAGE, strength=0.8)  # 5 steps, 4 run
INPAINT = dict(image=IMAGE, mask_image=MASK, strength=0.8)


def euler(pipe):
    return EulerDiscreteScheduler.from_config(pipe.scheduler.config)


def ddim(pipe):
    return DDIMScheduler.from_config(pipe.scheduler.config)


def _sd_controlnet(base, cls):
    torch.manual_seed(1)
    net = ControlNetModel.from_unet(base.unet, conditioning_embedding_out_channels=(4, 8)).eval()
    with torch.no_grad():  # a fresh ControlNet's output convs are zeros: its text rows would not reach the output
        for conv in [*net.controlnet_down_blocks, net.controlnet_mid_block]:
            conv.weight.normal_(0, 0.3)
    return _quiet(cls(**base.components, controlnet=net))


def _quiet(pipe):
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sd(cls=None, **call):
    def build():
        base = tiny_sd()
        pipe = base if cls is None else _quiet(cls(**base.components))
        return Case(pipe, call={**SMALL, **call}, schedulers=((lambda p: p.scheduler), euler))
    return build


def sd_controlnet(cls, full=False, **call):
    def build():
        return Case(_sd_controlnet(tiny_sd(), cls), call={**SMALL, "guess_mode": False, **call},
                    schedulers=((lambda p: p.scheduler), euler), full_grid=full)
    return build


def sdxl(cls=None, full=False, **call):
    def build():
        base = tiny_sdxl()
        pipe = base if cls is None else _quiet(cls(**base.components))
        return Case(pipe, call={**SMALL, **call}, schedulers=((lambda p: p.scheduler), ddim), full_grid=full)
    return build


def sdxl_controlnet(cls, full=False, **call):
    def build():
        control = {} if "image" in call and "strength" not in call and "mask_image" not in call else {"control_image": IMAGE}
        return Case(tiny_sdxl_controlnet(None, cls=cls), call={**SMALL, **control, **call},
                    schedulers=((lambda p: p.scheduler), ddim), full_grid=full)
    return build


def sd3(cls=None, full=False, **call):
    def build():
        base = tiny_sd3(channels=16 if cls is StableDiffusion3InpaintPipeline else 4)
        pipe = base if cls is None else _quiet(cls(**base.components))
        return Case(pipe, call={**SMALL, "max_sequence_length": 8, **call}, full_grid=full, schedulers=(
            (lambda p: p.scheduler), (lambda p: FlowMatchEulerDiscreteScheduler(shift=1.0))))
    return build


CASES = {
    "StableDiffusionPipeline": sd(),
    "StableDiffusionImg2ImgPipeline": sd(StableDiffusionImg2ImgPipeline, **IMG2IMG, num_inference_steps=5),
    "StableDiffusionInpaintPipeline": sd(StableDiffusionInpaintPipeline, **INPAINT, num_inference_steps=5),
    "StableDiffusionControlNetPipeline": sd_controlnet(StableDiffusionControlNetPipeline, full=True, image=IMAGE),
    "StableDiffusionControlNetImg2ImgPipeline": sd_controlnet(
        StableDiffusionControlNetImg2ImgPipeline, control_image=IMAGE, **IMG2IMG, num_inference_steps=5),
    "StableDiffusionControlNetInpaintPipeline": sd_controlnet(
        StableDiffusionControlNetInpaintPipeline, control_image=IMAGE, **INPAINT, num_inference_steps=5),
    "StableDiffusionXLPipeline": sdxl(full=True),
    "StableDiffusionXLImg2ImgPipeline": sdxl(StableDiffusionXLImg2ImgPipeline, **IMG2IMG, num_inference_steps=5),
    "StableDiffusionXLInpaintPipeline": sdxl(StableDiffusionXLInpaintPipeline, **INPAINT, num_inference_steps=5),
    "StableDiffusionXLControlNetPipeline": sdxl_controlnet(StableDiffusionXLControlNetPipeline, full=True, image=IMAGE),
    "StableDiffusionXLControlNetImg2ImgPipeline": sdxl_controlnet(
        StableDiffusionXLControlNetImg2ImgPipeline, image=IMAGE, strength=0.8, num_inference_steps=5),
    "StableDiffusionXLControlNetInpaintPipeline": sdxl_controlnet(
        StableDiffusionXLControlNetInpaintPipeline, full=True, **INPAINT, num_inference_steps=5),
    "StableDiffusion3Pipeline": sd3(full=True),
    "StableDiffusion3Img2ImgPipeline": sd3(StableDiffusion3Img2ImgPipeline, **IMG2IMG, num_inference_steps=5),
    "StableDiffusion3InpaintPipeline": sd3(StableDiffusion3InpaintPipeline, **INPAINT, num_inference_steps=5),
}
