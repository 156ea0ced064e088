"""Tiny PAG pipelines on the components of the SD, SDXL, SD3, Kolors, AnimateDiff, PixArt, Sana and HunyuanDiT
builders. PAG is applied where the pipelines apply it by default (the UNets' mid block, the transformers' first or
second block) except SD3 (its tiny transformer has one block: ``blocks.0``); ``pag_scale=2`` with CFG gives
three blocks of rows per call. ``no_cfg`` (``guidance_scale=1``) keeps PAG on: two conditional blocks and no
unconditional rows."""

from __future__ import annotations

import inspect

import torch
from diffusers import (
    AnimateDiffPAGPipeline,
    ControlNetModel,
    DDIMScheduler,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    StableDiffusion3PAGImg2ImgPipeline,
    StableDiffusion3PAGPipeline,
    StableDiffusionControlNetPAGInpaintPipeline,
    StableDiffusionControlNetPAGPipeline,
    StableDiffusionPAGImg2ImgPipeline,
    StableDiffusionPAGInpaintPipeline,
    StableDiffusionPAGPipeline,
    StableDiffusionXLControlNetPAGImg2ImgPipeline,
    StableDiffusionXLControlNetPAGPipeline,
    StableDiffusionXLPAGImg2ImgPipeline,
    StableDiffusionXLPAGInpaintPipeline,
    StableDiffusionXLPAGPipeline,
)
from diffusers import HunyuanDiTPAGPipeline, PixArtSigmaPAGPipeline, SanaPAGPipeline
from diffusers.pipelines.pag.pipeline_pag_kolors import KolorsPAGPipeline  # a placeholder without sentencepiece

from builders import hunyuandit as hunyuandit_builder
from builders import pixart as pixart_builder
from builders import sana as sana_builder
from builders.animatediff import FRAMES, _components as animatediff_components
from builders.kolors import _unet as kolors_unet
from contract_case import Case
from tiny import tiny_sd
from tiny_chatglm import TinyChatGLMTokenizer, tiny_chatglm
from tiny_families import _vae, tiny_pixart, tiny_sd3, tiny_sdxl

IMAGE = torch.linspace(0, 1, 3 * 16 * 16).reshape(1, 3, 16, 16)
MASK = (torch.arange(16 * 16).reshape(1, 1, 16, 16) % 16 >= 8).float()
SMALL = dict(height=16, width=16, output_type="latent", pag_scale=2.0)
IMG2IMG = dict(image=IMAGE, strength=0.8, num_inference_steps=5)
INPAINT = dict(IMG2IMG, mask_image=MASK)
_SKIP = ("image_encoder", "feature_extractor", "safety_checker", "requires_safety_checker")


def _same(pipe):
    return pipe.scheduler


def _euler(pipe):
    return EulerDiscreteScheduler.from_config(pipe.scheduler.config)


def _ddim(pipe):
    return DDIMScheduler.from_config(pipe.scheduler.config)


def _controlnet(unet):
    torch.manual_seed(1)
    net = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(4, 8)).eval()
    with torch.no_grad():  # a fresh ControlNet's output convs are zeros: its text rows would not reach the output
        for conv in [*net.controlnet_down_blocks, net.controlnet_mid_block]:
            conv.weight.normal_(0, 0.3)
    return net


def _case(pipe, call, schedulers, full):
    pipe.set_progress_bar_config(disable=True)
    call = {**SMALL, **call}
    if "height" not in inspect.signature(type(pipe).__call__).parameters:  # img2img: the image's size
        call = {k: v for k, v in call.items() if k not in ("height", "width")}
    return Case(pipe, call=call, schedulers=schedulers, full_grid=full)


def sd(cls, full=False, controlnet=False, **call):
    def build():
        parts = {k: v for k, v in tiny_sd().components.items() if k not in _SKIP}
        extra = {"controlnet": _controlnet(parts["unet"])} if controlnet else {}
        return _case(cls(**parts, **extra, safety_checker=None, feature_extractor=None, requires_safety_checker=False),
                     call, (_same, _euler), full)
    return build


def sdxl(cls, full=False, controlnet=False, **call):
    def build():
        parts = {k: v for k, v in tiny_sdxl().components.items() if k not in _SKIP}
        extra = {"controlnet": _controlnet(parts["unet"])} if controlnet else {}
        return _case(cls(**parts, **extra), call, (_same, _ddim), full)
    return build


def sd3(cls, full=False, **call):
    def build():
        parts = {k: v for k, v in tiny_sd3().components.items() if k not in _SKIP}
        return _case(cls(**parts, pag_applied_layers="blocks.0"), {"max_sequence_length": 8, **call},
                     (_same, lambda p: FlowMatchEulerDiscreteScheduler(shift=1.0)), full)
    return build


def kolors():
    tokenizer = TinyChatGLMTokenizer()
    pipe = KolorsPAGPipeline(
        vae=_vae(), text_encoder=tiny_chatglm(tokenizer), tokenizer=tokenizer, unet=kolors_unet(),
        scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                         timestep_spacing="leading", steps_offset=1),
        image_encoder=None, feature_extractor=None)
    return _case(pipe, {"max_sequence_length": 12}, (_same, _ddim), False)


def animatediff():
    case = _case(AnimateDiffPAGPipeline(**animatediff_components()), {"num_frames": FRAMES}, (_same, _euler), False)
    case.images_arg = None  # every AnimateDiff __call__ sets num_videos_per_prompt = 1
    return case


def _others(pipe, call, schedulers):
    """A PAG pipeline of another family's builder: its call without our sizes."""
    pipe.set_progress_bar_config(disable=True)
    return Case(pipe, call={**call, "pag_scale": 2.0}, schedulers=schedulers, full_grid=False)


def pixart():
    parts = {k: v for k, v in tiny_pixart(None).components.items()}
    return _others(PixArtSigmaPAGPipeline(**parts), pixart_builder.CALL, (_same,))


def sana():
    return _others(SanaPAGPipeline(**sana_builder._parts()), sana_builder.CALL, sana_builder.SCHEDULERS)


def hunyuandit():
    case = _others(HunyuanDiTPAGPipeline(**hunyuandit_builder._parts(2)), hunyuandit_builder.CALL,
                   hunyuandit_builder.SCHEDULERS)
    # the stock pipeline fails with PAG alone (its size/style rows are not doubled): no CFG, no PAG
    case.no_cfg = {"guidance_scale": 1.0, "pag_scale": 0.0}
    return case


CASES = {
    "StableDiffusionPAGPipeline": sd(StableDiffusionPAGPipeline, full=True),
    "StableDiffusionPAGImg2ImgPipeline": sd(StableDiffusionPAGImg2ImgPipeline, **IMG2IMG),
    "StableDiffusionPAGInpaintPipeline": sd(StableDiffusionPAGInpaintPipeline, **INPAINT),
    "StableDiffusionControlNetPAGPipeline": sd(StableDiffusionControlNetPAGPipeline, controlnet=True, image=IMAGE),
    "StableDiffusionControlNetPAGInpaintPipeline": sd(StableDiffusionControlNetPAGInpaintPipeline, controlnet=True,
                                                      control_image=IMAGE, **INPAINT),
    "StableDiffusionXLPAGPipeline": sdxl(StableDiffusionXLPAGPipeline),
    "StableDiffusionXLPAGImg2ImgPipeline": sdxl(StableDiffusionXLPAGImg2ImgPipeline, **IMG2IMG),
    "StableDiffusionXLPAGInpaintPipeline": sdxl(StableDiffusionXLPAGInpaintPipeline, **INPAINT),
    "StableDiffusionXLControlNetPAGPipeline": sdxl(StableDiffusionXLControlNetPAGPipeline, controlnet=True,
                                                   image=IMAGE),
    "StableDiffusionXLControlNetPAGImg2ImgPipeline": sdxl(StableDiffusionXLControlNetPAGImg2ImgPipeline,
                                                          controlnet=True, control_image=IMAGE, **IMG2IMG),
    "StableDiffusion3PAGPipeline": sd3(StableDiffusion3PAGPipeline),
    "StableDiffusion3PAGImg2ImgPipeline": sd3(StableDiffusion3PAGImg2ImgPipeline, **IMG2IMG),
    "KolorsPAGPipeline": kolors,
    "AnimateDiffPAGPipeline": animatediff,
    "PixArtSigmaPAGPipeline": pixart,
    "SanaPAGPipeline": sana,
    "HunyuanDiTPAGPipeline": hunyuandit,
}
