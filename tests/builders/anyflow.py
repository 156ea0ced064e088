"""Tiny AnyFlow pipelines of the real diffusers classes, built in code, offline: Wan's tiny text parts and VAE
(tests/builders/wan.py) with a 2-layer ``AnyFlowTransformer3DModel`` (Wan's tiny sizes) and the flow-map Euler
scheduler; 16x16 px, 5 frames. The released checkpoints fold CFG into the weights (default ``guidance_scale`` 1):
the case passes 5. FAR: the causal ``AnyFlowFARTransformer3DModel`` with three one-frame chunks (9 frames: 3 latent
frames), so that two KV-cache passes run (chunks 0 and 1) and chunks 1 and 2 attend to the cache."""

from __future__ import annotations

import torch
from diffusers import (
    AnyFlowFARPipeline,
    AnyFlowFARTransformer3DModel,
    AnyFlowPipeline,
    AnyFlowTransformer3DModel,
    FlowMapEulerDiscreteScheduler,
)

from builders.wan import CALL, Z_DIM, text_parts, vae
from contract_case import Case


def transformer(cls=AnyFlowTransformer3DModel, **extra):
    torch.manual_seed(0)
    return cls(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=Z_DIM, out_channels=Z_DIM,
        text_dim=32, freq_dim=32, ffn_dim=32, num_layers=2, cross_attn_norm=True, rope_max_seq_len=32,
        gate_value=0.25, deltatime_type="r", **extra,
    ).eval()


def flow_map(shift=5.0):
    return lambda pipe=None: FlowMapEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)


def anyflow() -> Case:
    """One batched ``[unconditional, conditional]`` call per step (T5 tokens only)."""
    pipe = AnyFlowPipeline(**text_parts(), vae=vae(), transformer=transformer(), scheduler=flow_map()())
    pipe.set_progress_bar_config(disable=True)
    return Case(pipe, call=dict(CALL), schedulers=(flow_map(), flow_map(2.0)), images_arg="num_videos_per_prompt")


def anyflow_far() -> Case:
    """Chunked autoregressive: per chunk a full run of ``num_inference_steps`` batched ``[unconditional,
    conditional]`` calls, then (but after the last chunk) one KV-cache pass of the same rows at timestep 0."""
    far = transformer(AnyFlowFARTransformer3DModel, compressed_patch_size=(1, 4, 4), full_chunk_limit=3,
                      chunk_partition=(1, 1, 1))
    pipe = AnyFlowFARPipeline(**text_parts(), vae=vae(), transformer=far, scheduler=flow_map()())
    pipe.set_progress_bar_config(disable=True)
    return Case(pipe, call={**CALL, "num_frames": 9}, schedulers=(flow_map(), flow_map(2.0)),
                images_arg="num_videos_per_prompt")


CASES = {"AnyFlowPipeline": anyflow, "AnyFlowFARPipeline": anyflow_far}
