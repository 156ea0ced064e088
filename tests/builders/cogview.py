"""Tiny CogView3-Plus, CogView4 and CogView4 Control pipelines, built in code, offline.

CogView3-Plus: a 2-layer T5 (width 32) on the toy CLIP tokenizer, padded to ``max_sequence_length=8``. CogView4:
a 2-layer ``GlmModel`` (width 32) on the toy CLIP tokenizer set to left padding as GLM-4's own tokenizer pads (the
pipeline pads to the batch's longest text, then left-pads to a multiple of 16 with the pad id). 1-layer
transformers (patch 2); a 2x VAE: 16x16 pixels -> 8x8 latents -> 4x4 patches.
"""

from __future__ import annotations

import torch
from diffusers import (
    CogVideoXDDIMScheduler,
    CogVideoXDPMScheduler,
    CogView3PlusPipeline,
    CogView3PlusTransformer2DModel,
    CogView4ControlPipeline,
    CogView4Pipeline,
    CogView4Transformer2DModel,
    FlowMatchEulerDiscreteScheduler,
)
from transformers import GlmConfig, GlmModel

from contract_case import Case
from negdelay.toy.tokenizer import make_tokenizer
from tiny import WORDS
from tiny_families import HIDDEN, _vae, t5
from tiny_mean_vae import MeanVAE

SIZE = 16
CALL = dict(height=SIZE, width=SIZE, guidance_scale=6.0, output_type="latent")


def glm(tokenizer, seed: int = 2) -> GlmModel:
    torch.manual_seed(seed)
    config = GlmConfig(vocab_size=len(tokenizer), hidden_size=HIDDEN, intermediate_size=37, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=8, pad_token_id=tokenizer.pad_token_id)
    return GlmModel(config).eval()


def cogview3plus() -> Case:
    tokenizer = make_tokenizer(WORDS, model_max_length=16)
    torch.manual_seed(0)
    transformer = CogView3PlusTransformer2DModel(
        patch_size=2, in_channels=4, num_layers=1, attention_head_dim=4, num_attention_heads=2, out_channels=4,
        text_embed_dim=HIDDEN, time_embed_dim=8, condition_dim=2, pos_embed_max_size=8, sample_size=SIZE // 2,
    ).eval()
    pipe = CogView3PlusPipeline(tokenizer=tokenizer, text_encoder=t5(tokenizer, 2), vae=_vae(), transformer=transformer,
                                scheduler=CogVideoXDDIMScheduler(timestep_spacing="trailing"))
    pipe.set_progress_bar_config(disable=True)
    return Case(pipe, call={**CALL, "max_sequence_length": 8}, schedulers=(
        (lambda p: p.scheduler), (lambda p: CogVideoXDPMScheduler.from_config(p.scheduler.config))))


def _cogview4(cls, in_channels: int, vae):
    tokenizer = make_tokenizer(WORDS, model_max_length=64)
    tokenizer.padding_side = "left"
    torch.manual_seed(0)
    transformer = CogView4Transformer2DModel(
        patch_size=2, in_channels=in_channels, num_layers=1, attention_head_dim=4, num_attention_heads=4,
        out_channels=4, text_embed_dim=HIDDEN, time_embed_dim=8, condition_dim=4,
    ).eval()
    scheduler = FlowMatchEulerDiscreteScheduler(base_shift=0.25, max_shift=0.75, base_image_seq_len=256,
                                                use_dynamic_shifting=True, time_shift_type="linear")
    pipe = cls(tokenizer=tokenizer, text_encoder=glm(tokenizer), vae=vae, transformer=transformer, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def cogview4() -> Case:
    pipe = _cogview4(CogView4Pipeline, 4, _vae())
    return Case(pipe, call={**CALL, "max_sequence_length": 32}, schedulers=(
        (lambda p: p.scheduler), (lambda p: FlowMatchEulerDiscreteScheduler.from_config(
            p.scheduler.config, time_shift_type="exponential"))))


def cogview4_control() -> Case:
    # control latents are concatenated on the channel axis; they are sampled from the global RNG: a zero-variance VAE
    torch.manual_seed(0)
    vae = MeanVAE(block_out_channels=(8, 16), in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=4,
                  down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2).eval()
    pipe = _cogview4(CogView4ControlPipeline, 8, vae)
    control = torch.linspace(0, 1, 3 * SIZE * SIZE).reshape(1, 3, SIZE, SIZE)
    return Case(pipe, call={**CALL, "max_sequence_length": 32, "control_image": control}, full_grid=False,
                schedulers=((lambda p: p.scheduler),))


CASES = {"CogView3PlusPipeline": cogview3plus, "CogView4Pipeline": cogview4, "CogView4ControlPipeline": cogview4_control}
