"""A tiny HiDream-I1 pipeline of the real diffusers class, built in code, offline: two CLIP text encoders with
projection (tests/tiny_families.clip, width 32: pooled 2 x 32 = ``text_emb_dim``), T5 of width 32, a 2-layer
Llama of width 16 (its two hidden states are ``llama_layers`` 0 and 1), word-level tokenizers (the Llama one a
tokenizer of its own: the pipeline sets its pad token to its eos token), a 1 + 1 block MoE transformer (4 experts,
2 active), a 2-level VAE. 16x16 px: 8x8 latents, 16 patches.
"""

from __future__ import annotations

import torch
from diffusers import FlowMatchEulerDiscreteScheduler, HiDreamImagePipeline, HiDreamImageTransformer2DModel
from transformers import LlamaConfig, LlamaForCausalLM

from contract_case import Case
from negdelay.toy.tokenizer import make_tokenizer
from tiny import WORDS
from tiny_families import _vae, clip, t5

MAX_LEN = 16
LLAMA_DIM = 16


def _llama(tokenizer) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=LLAMA_DIM, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    config._attn_implementation = "eager"  # the pipeline asks for attentions
    return LlamaForCausalLM(config).eval()


def _transformer() -> HiDreamImageTransformer2DModel:
    torch.manual_seed(0)
    return HiDreamImageTransformer2DModel(
        patch_size=2, in_channels=4, out_channels=4, num_layers=1, num_single_layers=1, attention_head_dim=8,
        num_attention_heads=4, caption_channels=[32, LLAMA_DIM], text_emb_dim=64, num_routed_experts=4,
        num_activated_experts=2, axes_dims_rope=(4, 2, 2), max_resolution=(32, 32), llama_layers=(0, 1),
    ).eval()


def euler(pipe=None):
    return FlowMatchEulerDiscreteScheduler(shift=3.0)


def hidream() -> Case:
    """Text-to-image, batched ``[unconditional, conditional]``: T5 and pooled rows on dim 0, Llama-3 rows on dim 1."""
    tokenizer = make_tokenizer(WORDS, model_max_length=MAX_LEN)
    llama_tokenizer = make_tokenizer(WORDS, model_max_length=MAX_LEN)
    pipe = HiDreamImagePipeline(
        scheduler=euler(), vae=_vae(4, scaling_factor=0.3611, shift_factor=0.1159),
        text_encoder=clip(tokenizer, 0, projection=True), tokenizer=tokenizer,
        text_encoder_2=clip(tokenizer, 1, projection=True), tokenizer_2=tokenizer,
        text_encoder_3=t5(tokenizer, 2), tokenizer_3=tokenizer,
        text_encoder_4=_llama(llama_tokenizer), tokenizer_4=llama_tokenizer, transformer=_transformer(),
    )
    pipe.default_sample_size = 8  # __call__ rescales every size to this area: 16x16 px
    pipe.set_progress_bar_config(disable=True)
    call = dict(height=16, width=16, guidance_scale=5.0, max_sequence_length=MAX_LEN, output_type="latent")
    return Case(pipe, call=call, schedulers=(euler, lambda p: FlowMatchEulerDiscreteScheduler(shift=1.0)))


CASES = {"HiDreamImagePipeline": hidream}
