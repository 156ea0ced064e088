"""Tiny DeepFloyd IF pipelines (stage I: text-to-image, image-to-image, inpainting; stage II super-resolution: the
same three), built in code, offline: a 2-layer T5 (width 32) on the toy CLIP tokenizer (IF pads every text to 77
tokens), a small pixel-space ``UNet2DConditionModel`` with IF's text-added embedding and simple cross-attention
blocks (``out_channels`` twice the input: IF's learned-range variance), ``output_type="pt"``. Stage I draws 8x8
pixels; stage II takes them to 16x16 (the UNet sees the noisy and the upscaled image: 6 channels)."""

from __future__ import annotations

import torch
from diffusers import (
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    IFImg2ImgPipeline,
    IFImg2ImgSuperResolutionPipeline,
    IFInpaintingPipeline,
    IFInpaintingSuperResolutionPipeline,
    IFPipeline,
    IFSuperResolutionPipeline,
    UNet2DConditionModel,
)

from contract_case import Case
from negdelay.toy.tokenizer import make_tokenizer
from tiny import WORDS
from tiny_families import HIDDEN, t5

# one image per prompt (the pipelines check the image batch against the prompts)
LOW = torch.linspace(-1, 1, 2 * 3 * 8 * 8).reshape(2, 3, 8, 8)
HIGH = torch.linspace(-1, 1, 2 * 3 * 16 * 16).reshape(2, 3, 16, 16)
MASK8 = (torch.arange(8 * 8).reshape(1, 1, 8, 8) % 8 >= 4).float()
MASK16 = (torch.arange(16 * 16).reshape(1, 1, 16, 16) % 16 >= 8).float()
CALL = dict(output_type="pt", guidance_scale=5.0, clean_caption=False)


def _unet(in_channels: int, sample_size: int, **extra):
    torch.manual_seed(0)
    return UNet2DConditionModel(
        sample_size=sample_size, layers_per_block=1, block_out_channels=(8, 16), norm_num_groups=4,
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"), in_channels=in_channels, out_channels=6,
        cross_attention_dim=HIDDEN, encoder_hid_dim=HIDDEN, attention_head_dim=4,
        addition_embed_type="text", addition_embed_type_num_heads=2, cross_attention_norm="group_norm",
        resnet_time_scale_shift="scale_shift", act_fn="gelu", **extra,
    ).eval()


def _scheduler():
    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", thresholding=True,
                         dynamic_thresholding_ratio=0.95, sample_max_value=1.0, variance_type="learned_range")


def _dpm(pipe):
    return DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)


def _parts(super_resolution: bool) -> dict:
    tokenizer = make_tokenizer(WORDS, model_max_length=77)
    parts = dict(tokenizer=tokenizer, text_encoder=t5(tokenizer, 2), scheduler=_scheduler(), safety_checker=None,
                 feature_extractor=None, watermarker=None, requires_safety_checker=False)
    if super_resolution:
        parts["unet"] = _unet(6, 16, class_embed_type="timestep", time_embedding_dim=16, time_embedding_act_fn="gelu")
        parts["image_noising_scheduler"] = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    else:
        parts["unet"] = _unet(3, 8)
    return parts


def _case(cls, full=False, steps=4, **call):
    def build():
        pipe = cls(**_parts("SuperResolution" in cls.__name__))
        pipe.set_progress_bar_config(disable=True)
        return Case(pipe, call={**CALL, **call}, steps=steps, schedulers=((lambda p: p.scheduler), _dpm),
                    full_grid=full)
    return build


CASES = {
    "IFPipeline": _case(IFPipeline, full=True, height=8, width=8),
    "IFImg2ImgPipeline": _case(IFImg2ImgPipeline, image=LOW, strength=0.8, steps=5),
    "IFInpaintingPipeline": _case(IFInpaintingPipeline, image=LOW, mask_image=MASK8, strength=0.8, steps=5),
    "IFSuperResolutionPipeline": _case(IFSuperResolutionPipeline, image=LOW, height=16, width=16, noise_level=100),
    "IFImg2ImgSuperResolutionPipeline": _case(IFImg2ImgSuperResolutionPipeline, image=LOW, original_image=HIGH,
                                              strength=0.8, steps=5),
    "IFInpaintingSuperResolutionPipeline": _case(IFInpaintingSuperResolutionPipeline, image=LOW, original_image=HIGH,
                                                 mask_image=MASK16, strength=0.8, steps=5),
}
