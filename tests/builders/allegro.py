"""A tiny Allegro pipeline of the real diffusers class, built in code, offline.

Wan's tiny text parts (tests/builders/wan.py: a word-level tokenizer used as T5's, T5 of width 32), a 1-layer
``AllegroTransformer3DModel`` (2 heads of 12) and a small ``AutoencoderKLAllegro`` that ``output_type="latent"``
never runs. Videos are 16x16 with 8 frames: 2 latent frames of 2x2.
"""

from __future__ import annotations

import torch
from diffusers import (
    AllegroPipeline,
    AllegroTransformer3DModel,
    AutoencoderKLAllegro,
    DDIMScheduler,
    EulerAncestralDiscreteScheduler,
)

from builders.wan import MAX_LEN, TEXT_DIM, text_parts
from contract_case import Case


def transformer() -> AllegroTransformer3DModel:
    torch.manual_seed(0)
    return AllegroTransformer3DModel(
        num_attention_heads=2, attention_head_dim=12, in_channels=4, out_channels=4, num_layers=1,
        cross_attention_dim=24, sample_width=8, sample_height=8, sample_frames=8, caption_channels=TEXT_DIM,
    ).eval()


def vae() -> AutoencoderKLAllegro:
    torch.manual_seed(0)
    return AutoencoderKLAllegro(
        down_block_types=("AllegroDownBlock3D",) * 4, up_block_types=("AllegroUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8), latent_channels=4, layers_per_block=1, norm_num_groups=2,
        temporal_compression_ratio=4,
    ).eval()


def allegro() -> Case:
    """Allegro: PixArt's ``encode_prompt`` (T5 tokens + mask) and one batched call per step; the embeddings get a
    singleton axis (``b 1 l d``) before the loop; guidance is a local of ``__call__``."""
    pipe = AllegroPipeline(**text_parts(), vae=vae(), transformer=transformer(), scheduler=DDIMScheduler())
    pipe.set_progress_bar_config(disable=True)
    call = dict(height=16, width=16, num_frames=8, max_sequence_length=MAX_LEN, guidance_scale=6.0,
                clean_caption=False, output_type="latent")
    return Case(pipe, call=call, images_arg="num_videos_per_prompt", schedulers=(
        (lambda p: p.scheduler), (lambda p: EulerAncestralDiscreteScheduler.from_config(p.scheduler.config))))


CASES = {"AllegroPipeline": allegro}
