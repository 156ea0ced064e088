"""A tiny AnyFlow pipeline of the real diffusers class, built in code, offline: Wan's tiny text parts and VAE
(tests/builders/wan.py) with a 2-layer ``AnyFlowTransformer3DModel`` (Wan's tiny sizes) and the flow-map Euler
scheduler; 16x16 px, 5 frames. The released checkpoints fold CFG into the weights (default ``guidance_scale`` 1):
the case passes 5."""

from __future__ import annotations

import torch
from diffusers import AnyFlowPipeline, AnyFlowTransformer3DModel, FlowMapEulerDiscreteScheduler

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


CASES = {"AnyFlowPipeline": anyflow}
