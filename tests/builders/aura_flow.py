"""A tiny AuraFlow pipeline, built in code, offline: a 2-layer UMT5 encoder (width 32) on the toy CLIP tokenizer,
a 1+1-layer ``AuraFlowTransformer2DModel`` (patch 2), a 2x VAE: 16x16 pixels -> 8x8 latents -> 4x4 patches."""

from __future__ import annotations

import torch
from diffusers import AuraFlowPipeline, AuraFlowTransformer2DModel, FlowMatchEulerDiscreteScheduler
from transformers import UMT5Config, UMT5EncoderModel

from contract_case import Case
from negdelay.toy.tokenizer import make_tokenizer
from tiny import WORDS
from tiny_families import HIDDEN, _vae

CALL = dict(height=16, width=16, max_sequence_length=8, guidance_scale=5.0, output_type="latent")
SCHEDULERS = ((lambda p: p.scheduler), (lambda p: FlowMatchEulerDiscreteScheduler(shift=3.0)))


def umt5(tokenizer, seed: int = 2) -> UMT5EncoderModel:
    torch.manual_seed(seed)
    config = UMT5Config(vocab_size=len(tokenizer), d_model=HIDDEN, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                        relative_attention_num_buckets=8, pad_token_id=tokenizer.pad_token_id, decoder_start_token_id=0)
    return UMT5EncoderModel(config).eval()


def aura_flow() -> Case:
    tokenizer = make_tokenizer(WORDS, model_max_length=16)
    torch.manual_seed(0)
    transformer = AuraFlowTransformer2DModel(
        sample_size=8, patch_size=2, in_channels=4, num_mmdit_layers=1, num_single_dit_layers=1, attention_head_dim=8,
        num_attention_heads=4, caption_projection_dim=HIDDEN, joint_attention_dim=HIDDEN, out_channels=4,
        pos_embed_max_size=64,
    ).eval()
    pipe = AuraFlowPipeline(tokenizer=tokenizer, text_encoder=umt5(tokenizer), vae=_vae(), transformer=transformer,
                            scheduler=FlowMatchEulerDiscreteScheduler())
    pipe.set_progress_bar_config(disable=True)
    return Case(pipe, call=dict(CALL), schedulers=SCHEDULERS)


CASES = {"AuraFlowPipeline": aura_flow}
