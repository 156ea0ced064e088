"""A tiny Helios pipeline of the real diffusers class, built in code, offline: Wan's tiny text parts and VAE
(tests/builders/wan.py) with a 2-layer ``HeliosTransformer3DModel`` (Wan's tiny sizes, multi-term memory patches)
and a one-stage ``HeliosScheduler``. 16x16 px; chunks of 2 latent frames (5 frames); short histories (2, 1, 1
latent frames).

One chunk only: from the second chunk on, the history latents (the earlier chunks' output) are constant over a
chunk's calls and differ between runs with different negatives, so the contract's reference (which substitutes
every input constant over a call slot that differs between its runs A and B) would take them from run B. Several
chunks run a fresh schedule each; negdelay counts steps within each chunk.
"""

from __future__ import annotations

import torch
from diffusers import FlowMatchEulerDiscreteScheduler, HeliosPipeline, HeliosScheduler, HeliosTransformer3DModel

from builders.wan import MAX_LEN, SIZE, Z_DIM, text_parts, vae
from contract_case import Case

CALL = dict(**SIZE, num_frames=5, num_latent_frames_per_chunk=2, history_sizes=[2, 1, 1], guidance_scale=5.0,
            max_sequence_length=MAX_LEN, output_type="latent")


def scheduler(pipe=None) -> HeliosScheduler:
    return HeliosScheduler(stage_range=[0, 1], stages=1, use_dynamic_shifting=True)


def euler(pipe=None) -> FlowMatchEulerDiscreteScheduler:
    """A second scheduler: the pipeline passes its own ``sigmas`` and a resolution-dependent ``mu``."""
    return FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True)


def transformer() -> HeliosTransformer3DModel:
    torch.manual_seed(0)
    return HeliosTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=Z_DIM, out_channels=Z_DIM,
        text_dim=32, freq_dim=32, ffn_dim=32, num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
        rope_dim=(4, 4, 4), has_multi_term_memory_patch=True, guidance_cross_attn=True, zero_history_timestep=True,
        is_amplify_history=False,
    ).eval()


def helios() -> Case:
    """Text-to-video in chunks: per chunk a fresh schedule, conditional call in ``cache_context("cond")``, then
    ``"uncond"``. One video per prompt: the history latents are made for ``batch_size`` rows, not
    ``batch_size * num_videos_per_prompt``."""
    pipe = HeliosPipeline(**text_parts(), vae=vae(), transformer=transformer(), scheduler=scheduler())
    pipe.set_progress_bar_config(disable=True)
    return Case(pipe, call=dict(CALL), schedulers=(scheduler, euler), images_arg=None)


CASES = {"HeliosPipeline": helios}
