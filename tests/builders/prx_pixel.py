"""A tiny PRXPixel pipeline, built in code, offline: PRX's tiny text side (a real ``GemmaTokenizer``, a 1-layer
``T5GemmaEncoder`` of width 16: any encoder with a ``last_hidden_state`` serves), a 1-block pixel-space
``PRXTransformer2DModel`` (3 channels, patch 2, bottleneck ``img_in``, resolution embeddings), no VAE: 16x16 pixels.
ONE image per call, as PRX (the loop's timestep is ``view(1).repeat(2)`` whatever the batch)."""

from __future__ import annotations

import torch
from diffusers import FlowMatchEulerDiscreteScheduler, PRXPixelPipeline
from diffusers.models.transformers.transformer_prx import PRXTransformer2DModel

from builders.prx import TEXT, t5gemma
from contract_case import Case
from tiny_gemma import make_gemma_tokenizer

CALL = dict(height=16, width=16, guidance_scale=4.0, use_resolution_binning=False, output_type="latent")
SCHEDULERS = ((lambda p: p.scheduler), (lambda p: FlowMatchEulerDiscreteScheduler(shift=3.0)))


def prx_pixel() -> Case:
    tokenizer = make_gemma_tokenizer(model_max_length=16)
    torch.manual_seed(0)
    transformer = PRXTransformer2DModel(patch_size=2, in_channels=3, context_in_dim=TEXT, hidden_size=16, mlp_ratio=2.0,
                                        num_heads=2, depth=1, axes_dim=[4, 4], bottleneck_size=8,
                                        resolution_embeds=True).eval()
    with torch.no_grad():  # a fresh block's modulation is zero (adaLN-zero gates): the block, text and all, is a no-op
        for block in transformer.blocks:
            block.modulation.lin.weight.normal_(0, 0.3)
            block.modulation.lin.bias.normal_(0, 0.3)
    pipe = PRXPixelPipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(),
                            text_encoder=t5gemma(tokenizer), tokenizer=tokenizer, default_sample_size=16,
                            prompt_max_tokens=16)
    pipe.set_progress_bar_config(disable=True)
    return Case(pipe, call=dict(CALL), schedulers=SCHEDULERS, prompts="a red cat", images_arg=None)


CASES = {"PRXPixelPipeline": prx_pixel}
