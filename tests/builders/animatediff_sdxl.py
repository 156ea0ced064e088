"""A tiny AnimateDiff SDXL pipeline of the real diffusers class, built in code, offline: tests/tiny_families.py's
SDXL text parts (two CLIPs of width 32, pooled from the second) and VAE, a 2-level SDXL UNet (text-time embedding)
turned into a motion UNet by a 1-layer ``MotionAdapter``; 4 frames of 16x16 pixels.

Its UNet call holds the tokens once per frame (``2 * B * F`` rows) and the pooled text once per video (``2 * B``).
"""

from __future__ import annotations

import torch
from diffusers import (
    AnimateDiffSDXLPipeline,
    DDIMScheduler,
    EulerDiscreteScheduler,
    MotionAdapter,
    UNet2DConditionModel,
)

from contract_case import Case
from negdelay.toy.tokenizer import make_tokenizer
from tiny import WORDS
from tiny_families import HIDDEN, _vae, clip

FRAMES = 4


def _unet():
    torch.manual_seed(0)
    return UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=2 * HIDDEN, norm_num_groups=4, attention_head_dim=4, use_linear_projection=True,
        addition_embed_type="text_time", addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=8 * 6 + HIDDEN,
    ).eval()


def _adapter():
    torch.manual_seed(0)
    return MotionAdapter(block_out_channels=(8, 16), motion_layers_per_block=1, motion_norm_num_groups=4,
                         motion_num_attention_heads=2, use_motion_mid_block=False).eval()


def _ddim(pipe=None):
    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="linear", clip_sample=False,
                         steps_offset=1)


def _euler(pipe):
    return EulerDiscreteScheduler.from_config(pipe.scheduler.config)


def animatediff_sdxl() -> Case:
    tokenizer = make_tokenizer(WORDS, model_max_length=12)
    tokenizer_2 = make_tokenizer(WORDS, model_max_length=12)
    pipe = AnimateDiffSDXLPipeline(
        vae=_vae(), text_encoder=clip(tokenizer, 0), text_encoder_2=clip(tokenizer_2, 1, projection=True),
        tokenizer=tokenizer, tokenizer_2=tokenizer_2, unet=_unet(), motion_adapter=_adapter(), scheduler=_ddim(),
        feature_extractor=None, image_encoder=None,
    )
    pipe.unet.eval()
    pipe.set_progress_bar_config(disable=True)
    # __call__ sets num_videos_per_prompt = 1: no images-per-prompt argument
    return Case(pipe, call=dict(height=16, width=16, num_frames=FRAMES, output_type="latent"), images_arg=None,
                schedulers=(lambda p: p.scheduler, _euler))


CASES = {"AnimateDiffSDXLPipeline": animatediff_sdxl}
