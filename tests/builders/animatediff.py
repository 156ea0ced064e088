"""Tiny AnimateDiff pipelines (text-to-video, video-to-video): the tiny SD text encoder of tests/tiny.py, a 2-level
UNet (8 channels) turned into a motion UNet by a 1-layer ``MotionAdapter``; 4 frames of 16x16 pixels; one video
per prompt for video-to-video."""

from __future__ import annotations

import torch
from diffusers import (
    AnimateDiffPipeline,
    AnimateDiffVideoToVideoPipeline,
    AutoencoderKL,
    DDIMScheduler,
    EulerDiscreteScheduler,
    MotionAdapter,
    UNet2DConditionModel,
)
from PIL import Image

from contract_case import Case
from negdelay.toy.tokenizer import make_tokenizer
from tiny import WORDS, tiny_text_encoder

FRAMES = 4
SMALL = dict(height=16, width=16, output_type="latent")
VIDEO = [Image.new("RGB", (16, 16), (40 * i, 200 - 40 * i, 90)) for i in range(FRAMES)]


def _components():
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 8), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, norm_num_groups=2, attention_head_dim=4,
    ).eval()
    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=(8, 8), in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=2,
    ).eval()
    torch.manual_seed(0)
    adapter = MotionAdapter(block_out_channels=(8, 8), motion_layers_per_block=1, motion_norm_num_groups=2,
                            motion_num_attention_heads=2).eval()
    tokenizer = make_tokenizer(WORDS, model_max_length=12)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="linear", clip_sample=False,
                              steps_offset=1)
    return dict(unet=unet, vae=vae, motion_adapter=adapter, tokenizer=tokenizer,
                text_encoder=tiny_text_encoder(tokenizer), scheduler=scheduler, feature_extractor=None,
                image_encoder=None)


def _euler(pipe):
    return EulerDiscreteScheduler.from_config(pipe.scheduler.config)


def animatediff(cls, full=False, **call):
    def build():
        pipe = cls(**_components())
        pipe.unet.eval()
        pipe.set_progress_bar_config(disable=True)
        # every AnimateDiff __call__ sets num_videos_per_prompt = 1: no images-per-prompt argument
        return Case(pipe, call={**SMALL, **call}, images_arg=None,
                    schedulers=((lambda p: p.scheduler), _euler), full_grid=full)
    return build


CASES = {
    "AnimateDiffPipeline": animatediff(AnimateDiffPipeline, full=True, num_frames=FRAMES),
    "AnimateDiffVideoToVideoPipeline": animatediff(AnimateDiffVideoToVideoPipeline, video=[VIDEO, VIDEO[::-1]],
                                                   strength=0.8, num_inference_steps=5),
}
