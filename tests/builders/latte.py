"""A tiny Latte pipeline of the real diffusers class, built in code, offline.

Wan's tiny text parts (tests/builders/wan.py: a word-level tokenizer used as T5's, T5 of width 32; Latte pads to
its fixed 120 tokens), a 1-layer ``LatteTransformer3DModel`` (patch 2, 3 heads of 8, learned sigma) and the
per-frame image VAE of tests/tiny_families.py (2x). Videos are 8x8 with 2 frames: 4x4 latents, 4 tokens a frame.
Two cases: the contract's 2 prompts x 2 videos (the prompt's padding zeroed, 120 tokens) and one prompt, one video
(the prompt cropped to its tokens, the negative cut to that length).
"""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler, EulerDiscreteScheduler, LattePipeline, LatteTransformer3DModel

from builders.wan import TEXT_DIM, text_parts
from contract_case import Case
from tiny_families import _vae

CALL = dict(height=8, width=8, video_length=2, guidance_scale=5.0, clean_caption=False, output_type="latent")


def transformer() -> LatteTransformer3DModel:
    torch.manual_seed(0)
    return LatteTransformer3DModel(
        sample_size=4, num_layers=1, patch_size=2, attention_head_dim=8, num_attention_heads=3,
        caption_channels=TEXT_DIM, in_channels=4, cross_attention_dim=24, out_channels=8, attention_bias=True,
        activation_fn="gelu-approximate", num_embeds_ada_norm=1000, norm_type="ada_norm_single",
        norm_elementwise_affine=False, norm_eps=1e-6, video_length=2,
    ).eval()


def _pipe():
    pipe = LattePipeline(**text_parts(), vae=_vae(), transformer=transformer(), scheduler=DDIMScheduler())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def latte() -> Case:
    return Case(_pipe(), call=dict(CALL), schedulers=(
        (lambda p: p.scheduler), (lambda p: EulerDiscreteScheduler.from_config(p.scheduler.config))))


def latte_one_row() -> Case:
    """One prompt, one video: ``mask_text_embeddings`` crops the prompt to its tokens and the negative to as many."""
    return Case(_pipe(), call=dict(CALL), images_arg=None, prompts="a red cat", full_grid=False)


CASES = {"LattePipeline": latte, "LattePipeline[one row]": latte_one_row}
