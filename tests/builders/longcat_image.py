"""A tiny LongCat-Image pipeline, built in code, offline: a real ``Qwen2Tokenizer`` (tests/tiny_qwen.py) whose words
of the pipeline's template are single tokens, the 2-layer Qwen2.5-VL of tests/tiny_qwen.py (width 32; the pipeline
pads every text to 512 tokens), a 1+1-layer ``LongCatImageTransformer2DModel``, a 2x VAE with the 16 latent
channels the pipeline hard-codes, packed 2x2: 16x16 pixels -> 64 channels x 4x4 tokens. No prompt rewriting (it
generates text with the encoder; it rewrites prompts only). A list prompt needs a list negative (a str negative
gives one row for the whole batch): the call passes ``["", ""]``, the pipeline's own default text."""

from __future__ import annotations

import inspect

import torch
from diffusers import FlowMatchEulerDiscreteScheduler, LongCatImagePipeline, LongCatImageTransformer2DModel

from contract_case import Case
from tiny_families import _vae
from tiny_qwen import HIDDEN, make_qwen_tokenizer, tiny_text_encoder

CALL = dict(height=16, width=16, guidance_scale=4.5, enable_prompt_rewrite=False, negative_prompt=["", ""],
            output_type="latent")
SCHEDULERS = ((lambda p: p.scheduler), (lambda p: FlowMatchEulerDiscreteScheduler(shift=3.0)))


def _template(cls) -> str:
    """The class's own template (set in ``__init__``; every component may be None there)."""
    names = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
    bare = cls(**dict.fromkeys(names))
    return bare.prompt_template_encode_prefix + "{}" + bare.prompt_template_encode_suffix


def longcat_image() -> Case:
    tokenizer = make_qwen_tokenizer(template=_template(LongCatImagePipeline))
    torch.manual_seed(0)
    transformer = LongCatImageTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=HIDDEN, pooled_projection_dim=HIDDEN, axes_dims_rope=[4, 6, 6],
    ).eval()
    pipe = LongCatImagePipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=_vae(latent_channels=16),
                                text_encoder=tiny_text_encoder(tokenizer), tokenizer=tokenizer, text_processor=None,
                                transformer=transformer)
    pipe.set_progress_bar_config(disable=True)
    return Case(pipe, call=dict(CALL), schedulers=SCHEDULERS)


CASES = {"LongCatImagePipeline": longcat_image}
