"""Tiny Lumina-Next and Lumina-Image 2.0 pipelines, built in code, offline: a real ``GemmaTokenizer``
(tests/tiny_gemma.py) and a 2-layer ``GemmaModel`` / ``Gemma2Model`` of width 16; 2-layer transformers (patch 2);
a 2x VAE: 16x16 pixels -> 8x8 latents -> 4x4 patches. Lumina-Image 2.0 keeps its default system prompt (only the
prompt gets it) and truncates CFG in its last step (``cfg_trunc_ratio``), as its model card runs it."""

from __future__ import annotations

import torch
from diffusers import (
    FlowMatchEulerDiscreteScheduler,
    Lumina2Pipeline,
    Lumina2Transformer2DModel,
    LuminaNextDiT2DModel,
    LuminaPipeline,
)
from transformers import Gemma2Config, Gemma2Model, GemmaConfig, GemmaModel

from contract_case import Case
from tiny_families import _vae
from tiny_gemma import make_gemma_tokenizer

TEXT = 16
CALL = dict(height=16, width=16, guidance_scale=4.0, output_type="latent")
SCHEDULERS = ((lambda p: p.scheduler), (lambda p: FlowMatchEulerDiscreteScheduler(shift=3.0)))
GEMMA = dict(hidden_size=TEXT, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
             head_dim=8, max_position_embeddings=512)


def _gemma(cls, config_cls, tokenizer, **extra):
    torch.manual_seed(2)
    config = config_cls(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=tokenizer.eos_token_id, **GEMMA, **extra)
    return cls(config).eval()


def lumina() -> Case:
    tokenizer = make_gemma_tokenizer(model_max_length=256)
    torch.manual_seed(0)
    transformer = LuminaNextDiT2DModel(
        sample_size=8, patch_size=2, in_channels=4, hidden_size=16, num_layers=2, num_attention_heads=2, num_kv_heads=1,
        multiple_of=16, ffn_dim_multiplier=None, norm_eps=1e-5, learn_sigma=True, qk_norm=True,
        cross_attention_dim=TEXT, scaling_factor=1.0,
    ).eval()
    with torch.no_grad():  # torch.empty in the model (uninitialised memory): seeded
        transformer.pad_token.normal_(0, 0.3)
    pipe = LuminaPipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(), vae=_vae(),
                          tokenizer=tokenizer, text_encoder=_gemma(GemmaModel, GemmaConfig, tokenizer))
    pipe.set_progress_bar_config(disable=True)
    return Case(pipe, call={**CALL, "clean_caption": False}, schedulers=SCHEDULERS)


def lumina2() -> Case:
    tokenizer = make_gemma_tokenizer(model_max_length=256)
    torch.manual_seed(0)
    transformer = Lumina2Transformer2DModel(
        sample_size=8, patch_size=2, in_channels=4, hidden_size=16, num_layers=2, num_attention_heads=2, num_kv_heads=1,
        multiple_of=16, ffn_dim_multiplier=None, norm_eps=1e-5, scaling_factor=1.0, axes_dim_rope=[4, 2, 2],
        cap_feat_dim=TEXT,
    ).eval()
    text_encoder = _gemma(Gemma2Model, Gemma2Config, tokenizer, sliding_window=64, attn_implementation="eager")
    pipe = Lumina2Pipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(), vae=_vae(),
                           tokenizer=tokenizer, text_encoder=text_encoder)
    pipe.set_progress_bar_config(disable=True)
    return Case(pipe, call={**CALL, "max_sequence_length": 48, "cfg_trunc_ratio": 0.8}, schedulers=SCHEDULERS)


CASES = {"LuminaPipeline": lumina, "Lumina2Pipeline": lumina2}
