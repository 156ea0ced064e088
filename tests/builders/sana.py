"""Tiny Sana and Sana ControlNet pipelines, built in code, offline.

A real ``GemmaTokenizer`` (tests/tiny_gemma.py; byte fallback, so the pipeline's default
``complex_human_instruction`` tokenizes too) and a 1-layer ``Gemma2Model`` of width 16; a 1-layer
``SanaTransformer2DModel`` (patch 1); a 2-level ``AutoencoderDC`` (2x): 32x32 pixels -> 16x16 latents. The
instruction is left at the pipeline's default, so the prompt path (instruction, then the last tokens kept) and the
negative path (no instruction) differ as in real use.
"""

from __future__ import annotations

import torch
from diffusers import (
    AutoencoderDC,
    DPMSolverMultistepScheduler,
    FlowMatchEulerDiscreteScheduler,
    SanaControlNetModel,
    SanaControlNetPipeline,
    SanaPipeline,
    SanaTransformer2DModel,
)
from transformers import Gemma2Config, Gemma2Model

from contract_case import Case
from tiny_gemma import make_gemma_tokenizer

TEXT = 16  # text encoder width = caption_channels
SIZE = 32  # the pipelines take multiples of 32
CALL = dict(height=SIZE, width=SIZE, max_sequence_length=8, use_resolution_binning=False, guidance_scale=4.5,
            output_type="latent")
SCHEDULERS = ((lambda p: p.scheduler), (lambda p: DPMSolverMultistepScheduler(
    use_flow_sigmas=True, prediction_type="flow_prediction", flow_shift=3.0)))


def gemma2(tokenizer, seed: int = 0) -> Gemma2Model:
    torch.manual_seed(seed)
    config = Gemma2Config(
        vocab_size=len(tokenizer), hidden_size=TEXT, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, head_dim=8, max_position_embeddings=4096, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, attn_implementation="eager",
    )
    return Gemma2Model(config).eval()


def _dit(cls, seed, layers=1):
    torch.manual_seed(seed)
    return cls(
        patch_size=1, in_channels=4, out_channels=4, num_layers=layers, num_attention_heads=2, attention_head_dim=4,
        num_cross_attention_heads=2, cross_attention_head_dim=4, cross_attention_dim=8, caption_channels=TEXT,
        sample_size=SIZE // 2,
    ).eval()


def _vae():
    torch.manual_seed(0)
    return AutoencoderDC(
        in_channels=3, latent_channels=4, attention_head_dim=2, encoder_block_types=("ResBlock", "EfficientViTBlock"),
        decoder_block_types=("ResBlock", "EfficientViTBlock"), encoder_block_out_channels=(8, 8),
        decoder_block_out_channels=(8, 8), encoder_qkv_multiscales=((), (5,)), decoder_qkv_multiscales=((), (5,)),
        encoder_layers_per_block=(1, 1), decoder_layers_per_block=(1, 1), downsample_block_type="conv",
        upsample_block_type="interpolate", decoder_norm_types="rms_norm", decoder_act_fns="silu", scaling_factor=0.41407,
    ).eval()


def _controlnet():
    net = _dit(SanaControlNetModel, 1)
    with torch.no_grad():  # a fresh ControlNet's input and output blocks are zeros: its text would not matter
        for block in [net.input_block, *net.controlnet_blocks]:
            block.weight.normal_(0, 0.3)
    return net


def _parts(layers=1):
    tokenizer = make_gemma_tokenizer()
    return dict(tokenizer=tokenizer, text_encoder=gemma2(tokenizer), vae=_vae(),
                transformer=_dit(SanaTransformer2DModel, 0, layers),
                scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0))


def sana() -> Case:
    pipe = SanaPipeline(**_parts())
    pipe.set_progress_bar_config(disable=True)
    return Case(pipe, call=dict(CALL), schedulers=SCHEDULERS)


def sana_controlnet() -> Case:
    # the transformer adds ControlNet sample i to the output of its block i + 1: it needs 2 blocks to use one
    pipe = SanaControlNetPipeline(**_parts(layers=2), controlnet=_controlnet())
    pipe.set_progress_bar_config(disable=True)
    control = torch.linspace(-1, 1, 3 * SIZE * SIZE).reshape(1, 3, SIZE, SIZE)
    return Case(pipe, call={**CALL, "control_image": control, "controlnet_conditioning_scale": 0.7},
                schedulers=SCHEDULERS, full_grid=False)


CASES = {"SanaPipeline": sana, "SanaControlNetPipeline": sana_controlnet}
