"""Tiny EasyAnimate pipelines (text-to-video, inpaint) of the real diffusers classes, built in code, offline.

Text: a real ``Qwen2Tokenizer`` made by tests/tiny_qwen.py with a Qwen2-VL chat template (EasyAnimate wraps each
prompt in ``apply_chat_template``) and a ``Qwen2VLForConditionalGeneration`` with 2 text layers of width 16 (the
pipeline takes its second-to-last hidden states). A 1-layer ``EasyAnimateTransformer3DModel`` (patch 2, 2 heads of
16) and an ``AutoencoderKLMagvit`` of width 8 (spatial /8, temporal /4). Videos are 16x16 with 5 frames: 2 latent
frames of 2x2, one token each.
"""

from __future__ import annotations

import torch
from diffusers import (
    AutoencoderKLMagvit,
        EasyAnimateInpaintPipeline,
    EasyAnimatePipeline,
    EasyAnimateTransformer3DModel,
    FlowMatchEulerDiscreteScheduler,
)
from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

import tiny_qwen
from contract_case import Case

TEXT = 16  # Qwen2-VL hidden size = transformer text_embed_dim
LATENT = 4
SYSTEM = "You are a helpful assistant."
# Qwen2-VL's chat template, reduced to text messages (EasyAnimate sends one user message with text parts)
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n" + SYSTEM
    + "<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}{% else %}{% for part in message['content'] %}{{ part['text'] }}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# the pipeline needs a negative for CFG (None fails) and, for a list of prompts, a list of negatives (a str gives
# one negative row for all prompts, which fails)
CALL = dict(height=16, width=16, num_frames=5, guidance_scale=6.0, negative_prompt=["", ""], output_type="latent")
SCHEDULERS = ((lambda p: p.scheduler), (lambda p: FlowMatchEulerDiscreteScheduler(shift=3.0)))


def tokenizer():
    template = "<|im_start|>system\n" + SYSTEM + "<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
    tok = tiny_qwen.make_qwen_tokenizer(template=template)
    tok.chat_template = CHAT_TEMPLATE
    return tok


def text_encoder(tok) -> Qwen2VLForConditionalGeneration:
    ids = tok.convert_tokens_to_ids
    torch.manual_seed(0)
    config = Qwen2VLConfig(
        text_config={
            "hidden_size": TEXT, "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
            "num_key_value_heads": 2, "vocab_size": len(tok), "max_position_embeddings": 512,
            "rope_parameters": {"rope_type": "default", "mrope_section": [1, 1, 2], "rope_theta": 1000000.0},
            "bos_token_id": ids("<|endoftext|>"), "eos_token_id": ids("<|im_end|>"), "pad_token_id": tok.pad_token_id,
        },
        vision_config={"depth": 1, "embed_dim": 16, "hidden_size": TEXT, "num_heads": 2, "mlp_ratio": 1},
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
    )
    return Qwen2VLForConditionalGeneration(config).eval()


def transformer(in_channels=LATENT, **extra) -> EasyAnimateTransformer3DModel:
    torch.manual_seed(0)
    return EasyAnimateTransformer3DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=in_channels, out_channels=LATENT, time_embed_dim=2,
        text_embed_dim=TEXT, num_layers=1, sample_width=16, sample_height=16, patch_size=2, **extra,
    ).eval()


def vae() -> AutoencoderKLMagvit:
    torch.manual_seed(0)
    return AutoencoderKLMagvit(
        down_block_types=("SpatialDownBlock3D",) + ("SpatialTemporalDownBlock3D",) * 3,
        up_block_types=("SpatialUpBlock3D",) + ("SpatialTemporalUpBlock3D",) * 3, block_out_channels=(8, 8, 8, 8),
        latent_channels=LATENT, layers_per_block=1, norm_num_groups=2, spatial_group_norm=False,
    ).eval()


def _pipe(cls, **transformer_args):
    tok = tokenizer()
    pipe = cls(vae=vae(), text_encoder=text_encoder(tok), tokenizer=tok, transformer=transformer(**transformer_args),
               scheduler=FlowMatchEulerDiscreteScheduler())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def easyanimate() -> Case:
    """Text-to-video: one batched ``[unconditional, conditional]`` call per step, the Qwen2-VL states only."""
    return Case(_pipe(EasyAnimatePipeline), call=dict(CALL), schedulers=SCHEDULERS)


def _video(channels=3, seed=0):
    """A (2, channels, 5, 16, 16) video in [0, 1]: one per prompt (the pipelines take their batch size from it)."""
    return torch.rand(2, channels, 5, 16, 16, generator=torch.Generator().manual_seed(seed))


def easyanimate_inpaint() -> Case:
    """Inpaint: VAE-encoded mask latents and masked-video latents go in as ``inpaint_latents`` (4 + 4 + 4 input
    channels). ``resize_inpaint_mask_directly=False``: the direct resize reads ``vae.config.cache_mag_vae``, which
    ``AutoencoderKLMagvit`` does not define. One video per prompt: ``__call__`` takes its batch size from the video."""
    mask = (_video(channels=1, seed=1) > 0.5).float()
    call = dict(CALL, video=_video(), mask_video=mask)
    return Case(_pipe(EasyAnimateInpaintPipeline, in_channels=3 * LATENT, resize_inpaint_mask_directly=False),
                call=call, schedulers=SCHEDULERS, images_arg=None, full_grid=False)


CASES = {"EasyAnimatePipeline": easyanimate, "EasyAnimateInpaintPipeline": easyanimate_inpaint}
