"""A tiny Krea 2 pipeline, built in code, offline: the real ``Qwen2Tokenizer`` of tests/tiny_qwen.py (Qwen-Image's
template, which Krea 2 shares: 34 prefix tokens), a 2-layer ``Qwen3VLModel`` (width 16) whose hidden states 1 and
2 are stacked (``text_encoder_select_layers``, a pipeline argument; the released model taps 12 of 36), a 2-layer
``Krea2Transformer2DModel``, a 4x ``AutoencoderKLQwenImage`` and 2x2 patches: 32x32 pixels -> 4x4 tokens."""

from __future__ import annotations

import torch
from diffusers import AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, Krea2Pipeline, Krea2Transformer2DModel
from transformers import Qwen3VLConfig, Qwen3VLModel

from contract_case import Case
from tiny_qwen import make_qwen_tokenizer

TEXT = 16
CALL = dict(height=32, width=32, max_sequence_length=16, guidance_scale=4.5, output_type="latent")


def krea2() -> Case:
    tokenizer = make_qwen_tokenizer()
    torch.manual_seed(0)
    transformer = Krea2Transformer2DModel(
        in_channels=16, num_layers=2, attention_head_dim=8, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=32, timestep_embed_dim=8, text_hidden_dim=TEXT, num_text_layers=2, text_num_attention_heads=2,
        text_num_key_value_heads=1, text_intermediate_size=16, num_layerwise_text_blocks=1, num_refiner_text_blocks=1,
        axes_dims_rope=(4, 2, 2), rope_theta=1000.0,
    ).eval()
    torch.manual_seed(0)
    vae = AutoencoderKLQwenImage(base_dim=24, z_dim=4, dim_mult=[1, 2, 4], num_res_blocks=1,
                                 temperal_downsample=[False, True], latents_mean=[0.0] * 4, latents_std=[1.0] * 4).eval()
    torch.manual_seed(2)
    encoder = Qwen3VLModel(Qwen3VLConfig(
        text_config={"hidden_size": TEXT, "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
                     "num_key_value_heads": 2, "head_dim": 8, "vocab_size": len(tokenizer)},
        vision_config={"depth": 1, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": TEXT},
        vocab_size=len(tokenizer),
    )).eval()
    scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                                base_image_seq_len=256, max_image_seq_len=6400)
    pipe = Krea2Pipeline(scheduler=scheduler, vae=vae, text_encoder=encoder, tokenizer=tokenizer, transformer=transformer,
                         text_encoder_select_layers=(1, 2))
    pipe.set_progress_bar_config(disable=True)
    return Case(pipe, call=dict(CALL), no_cfg={"guidance_scale": 0.0}, schedulers=(
        (lambda p: p.scheduler), (lambda p: FlowMatchEulerDiscreteScheduler.from_config(p.scheduler.config,
                                                                                         time_shift_type="linear"))))


CASES = {"Krea2Pipeline": krea2}
