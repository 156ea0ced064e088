"""A tiny Ovis-Image pipeline, built in code, offline: a real ``Qwen2Tokenizer`` (tests/tiny_qwen.py) whose words
of the pipeline's system prompt and chat layout are single tokens, with Qwen3's chat template (as the Z-Image
builder); a 2-layer ``Qwen3Model`` (width 32); a 1+1-layer ``OvisImageTransformer2DModel``; the Flux-like 2x VAE
with 1 latent channel, packed 2x2: 16x16 pixels -> 4 channels x 4x4 tokens."""

from __future__ import annotations

import torch
from diffusers import FlowMatchEulerDiscreteScheduler, OvisImagePipeline, OvisImageTransformer2DModel
from transformers import Qwen3Config, Qwen3Model

from builders.z_image import CHAT_TEMPLATE
from contract_case import Case
from tiny_families import HIDDEN, _vae
from tiny_qwen import make_qwen_tokenizer

CALL = dict(height=16, width=16, max_sequence_length=8, guidance_scale=5.0, output_type="latent")
SCHEDULERS = ((lambda p: p.scheduler), (lambda p: FlowMatchEulerDiscreteScheduler(shift=3.0)))


def _tokenizer(system_prompt: str):
    template = "<|im_start|>user\n" + system_prompt + "{}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    tokenizer = make_qwen_tokenizer(template=template)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def ovis() -> Case:
    torch.manual_seed(0)
    transformer = OvisImageTransformer2DModel(
        patch_size=1, in_channels=4, out_channels=4, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=HIDDEN, axes_dims_rope=(4, 4, 8),
    ).eval()
    vae = _vae(latent_channels=1, shift_factor=0.0609, scaling_factor=1.5035, use_quant_conv=False,
               use_post_quant_conv=False)
    pipe = OvisImagePipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=None, tokenizer=None,
                             transformer=transformer)
    tokenizer = _tokenizer(pipe.system_prompt)
    torch.manual_seed(2)
    text_encoder = Qwen3Model(Qwen3Config(
        hidden_size=HIDDEN, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
        head_dim=16, vocab_size=len(tokenizer), max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id,
    )).eval()
    pipe = OvisImagePipeline(scheduler=pipe.scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                             transformer=transformer)
    pipe.set_progress_bar_config(disable=True)
    return Case(pipe, call=dict(CALL), schedulers=SCHEDULERS)


CASES = {"OvisImagePipeline": ovis}
