"""A tiny PRX pipeline, built in code, offline: a real ``GemmaTokenizer`` (tests/tiny_gemma.py, max length 16) and
a 1-layer ``T5GemmaEncoder`` (width 16), a 1-block ``PRXTransformer2DModel`` (patch 1), a 2x VAE: 16x16 pixels ->
8x8 latents. No resolution binning (its bins are for the released sizes).

ONE image per call: the loop builds the timestep as ``t.view(1).repeat(2)`` with guidance (``view(1)`` without),
whatever the batch, so the transformer fails for more than one prompt or image (diffusers 0.42.1)."""

from __future__ import annotations

import torch
from diffusers import FlowMatchEulerDiscreteScheduler, PRXPipeline
from diffusers.models.transformers.transformer_prx import PRXTransformer2DModel
from transformers.models.t5gemma.configuration_t5gemma import T5GemmaModuleConfig
from transformers.models.t5gemma.modeling_t5gemma import T5GemmaEncoder

from contract_case import Case
from tiny_families import _vae
from tiny_gemma import make_gemma_tokenizer

TEXT = 16
CALL = dict(height=16, width=16, guidance_scale=4.0, use_resolution_binning=False, output_type="latent")
SCHEDULERS = ((lambda p: p.scheduler), (lambda p: FlowMatchEulerDiscreteScheduler(shift=3.0)))


def t5gemma(tokenizer, seed: int = 2) -> T5GemmaEncoder:
    torch.manual_seed(seed)
    config = T5GemmaModuleConfig(
        vocab_size=len(tokenizer), hidden_size=TEXT, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, head_dim=8, max_position_embeddings=64, layer_types=["full_attention"],
        attention_dropout=0.0, dropout_rate=0.0, query_pre_attn_scalar=8, sliding_window=4096,
        pad_token_id=tokenizer.pad_token_id,
    )
    return T5GemmaEncoder(config).eval()


def prx() -> Case:
    tokenizer = make_gemma_tokenizer(model_max_length=16)
    torch.manual_seed(0)
    transformer = PRXTransformer2DModel(patch_size=1, in_channels=4, context_in_dim=TEXT, hidden_size=16, mlp_ratio=2.0,
                                        num_heads=2, depth=1, axes_dim=[4, 4]).eval()
    with torch.no_grad():  # a fresh block's modulation is zero (adaLN-zero gates): the block, text and all, is a no-op
        for block in transformer.blocks:
            block.modulation.lin.weight.normal_(0, 0.3)
            block.modulation.lin.bias.normal_(0, 0.3)
    pipe = PRXPipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(), text_encoder=t5gemma(tokenizer),
                       tokenizer=tokenizer, vae=_vae())
    pipe.set_progress_bar_config(disable=True)
    return Case(pipe, call=dict(CALL), schedulers=SCHEDULERS, prompts="a red cat", images_arg=None)


CASES = {"PRXPipeline": prx}
