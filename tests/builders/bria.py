"""A tiny Bria 3.2 pipeline, built in code, offline: a 2-layer T5 (width 32) on the toy CLIP tokenizer, a
1+1-layer ``BriaTransformer2DModel`` (Flux-like 2x2 packing), a 4x VAE (Bria's scale factor is
``2 ** len(block_out_channels)``): 16x16 pixels -> 4x4 latents -> 2x2 tokens."""

from __future__ import annotations

import torch
from diffusers import BriaPipeline, BriaTransformer2DModel, FlowMatchEulerDiscreteScheduler

from contract_case import Case
from negdelay.toy.tokenizer import make_tokenizer
from tiny import WORDS
from tiny_families import HIDDEN, _vae, t5

CALL = dict(height=16, width=16, max_sequence_length=8, guidance_scale=5.0, output_type="latent")
# the pipeline's own sigmas (non-dynamic FlowMatch) and the dynamic-shifting branch of its timestep set-up
SCHEDULERS = ((lambda p: p.scheduler), (lambda p: FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True)))


def bria() -> Case:
    tokenizer = make_tokenizer(WORDS, model_max_length=16)
    torch.manual_seed(0)
    transformer = BriaTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=8, num_attention_heads=2,
        joint_attention_dim=HIDDEN, pooled_projection_dim=None, axes_dims_rope=[0, 4, 4],
    ).eval()
    pipe = BriaPipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(), vae=_vae(),
                        text_encoder=t5(tokenizer, 2), tokenizer=tokenizer, image_encoder=None, feature_extractor=None)
    pipe.set_progress_bar_config(disable=True)
    return Case(pipe, call=dict(CALL), schedulers=SCHEDULERS)


CASES = {"BriaPipeline": bria}
