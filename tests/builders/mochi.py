"""A tiny Mochi pipeline of the real diffusers class, built in code, offline.

Wan's tiny text parts (tests/builders/wan.py: a word-level tokenizer used as T5's, T5 of width 32), a 2-layer
``MochiTransformer3DModel`` (patch 2, 2 heads of 8; its rotary frequencies drawn, not the zeros it starts with)
and a small ``AutoencoderKLMochi`` that ``output_type="latent"`` never runs. Videos are 16x16 with 7 frames
(Mochi: 6k + 1): 2 latent frames of 2x2, 2 transformer tokens.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKLMochi, FlowMatchEulerDiscreteScheduler, MochiPipeline, MochiTransformer3DModel

from builders.wan import MAX_LEN, TEXT_DIM, text_parts
from contract_case import Case

LATENT = 12


def transformer() -> MochiTransformer3DModel:
    torch.manual_seed(0)
    model = MochiTransformer3DModel(
        patch_size=2, num_attention_heads=2, attention_head_dim=8, num_layers=2, pooled_projection_dim=16,
        in_channels=LATENT, qk_norm="rms_norm", text_embed_dim=TEXT_DIM, time_embed_dim=4, activation_fn="swiglu",
        max_sequence_length=MAX_LEN,
    )
    with torch.no_grad():
        model.pos_frequencies.normal_(0, 1)
    return model.eval()


def vae() -> AutoencoderKLMochi:
    torch.manual_seed(0)
    return AutoencoderKLMochi(latent_channels=LATENT, out_channels=3, encoder_block_out_channels=(32, 32, 32, 32),
                              decoder_block_out_channels=(32, 32, 32, 32), layers_per_block=(1, 1, 1, 1, 1)).eval()


def mochi() -> Case:
    """Mochi: one batched ``[unconditional, conditional]`` call per step (``cache_context("cond_uncond")``), T5
    tokens and their (bool) mask."""
    pipe = MochiPipeline(**text_parts(), vae=vae(), transformer=transformer(),
                         scheduler=FlowMatchEulerDiscreteScheduler())
    pipe.set_progress_bar_config(disable=True)
    call = dict(height=16, width=16, num_frames=7, max_sequence_length=MAX_LEN, guidance_scale=4.5,
                output_type="latent")
    return Case(pipe, call=call, schedulers=((lambda p: p.scheduler),
                                             (lambda p: FlowMatchEulerDiscreteScheduler(shift=3.0))),
                images_arg="num_videos_per_prompt")


CASES = {"MochiPipeline": mochi}
