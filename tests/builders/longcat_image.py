"""A tiny LongCat-Image pipeline, built in code, offline: a real ``Qwen2Tokenizer`` (tests/tiny_qwen.py) whose words
of the pipeline's template are single tokens, the 2-layer Qwen2.5-VL of tests/tiny_qwen.py (width 32; the pipeline
pads every text to 512 tokens), a 1+1-layer ``LongCatImageTransformer2DModel``, a 2x VAE with the 16 latent
channels the pipeline hard-codes, packed 2x2: 16x16 pixels -> 64 channels x 4x4 tokens. No prompt rewriting (it
generates text with the encoder; it rewrites prompts only). A list prompt needs a list negative (a str negative
gives one row for the whole batch): the call passes ``["", ""]``, the pipeline's own default text."""

from __future__ import annotations

import inspect

import torch
from diffusers import (
    AutoencoderKL,
    FlowMatchEulerDiscreteScheduler,
    LongCatImageEditPipeline,
    LongCatImagePipeline,
    LongCatImageTransformer2DModel,
)
from PIL import Image

from builders.qwenimage import _processor

from contract_case import Case
from tiny_families import _vae
from tiny_qwen import HIDDEN, make_qwen_tokenizer, tiny_text_encoder

CALL = dict(height=16, width=16, guidance_scale=4.5, enable_prompt_rewrite=False, negative_prompt=["", ""],
            output_type="latent")
SCHEDULERS = ((lambda p: p.scheduler), (lambda p: FlowMatchEulerDiscreteScheduler(shift=3.0)))


def _template(cls) -> str:
    """The class's own template (set in ``__init__``; every component but the edit's processor may be None)."""
    names = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
    bare = cls(**{**dict.fromkeys(names), "text_processor": _processor(make_qwen_tokenizer())})
    return bare.prompt_template_encode_prefix + "{}" + bare.prompt_template_encode_suffix


def _transformer():
    torch.manual_seed(0)
    return LongCatImageTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=HIDDEN, pooled_projection_dim=HIDDEN, axes_dims_rope=[4, 6, 6],
    ).eval()


def longcat_image() -> Case:
    tokenizer = make_qwen_tokenizer(template=_template(LongCatImagePipeline))
    pipe = LongCatImagePipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=_vae(latent_channels=16),
                                text_encoder=tiny_text_encoder(tokenizer), tokenizer=tokenizer, text_processor=None,
                                transformer=_transformer())
    pipe.set_progress_bar_config(disable=True)
    return Case(pipe, call=dict(CALL), schedulers=SCHEDULERS)


def _vae64() -> AutoencoderKL:
    """7 levels (64x): the edit pipeline always works at about 1024x1024 pixels -> 16x16 latents -> 8x8 tokens."""
    torch.manual_seed(0)
    return AutoencoderKL(block_out_channels=(4,) * 7, in_channels=3, out_channels=3, latent_channels=16,
                         down_block_types=("DownEncoderBlock2D",) * 7, up_block_types=("UpDecoderBlock2D",) * 7,
                         norm_num_groups=2, layers_per_block=1, shift_factor=0.0609, scaling_factor=1.5035).eval()


def longcat_image_edit() -> Case:
    """One str prompt (the pipeline encodes ``prompt[0]`` only); the image goes to the VAE (1024 px) and, shrunk by
    the Qwen2-VL processor to 56x56, into the text encoder with the prompt and with the negative."""
    tokenizer = make_qwen_tokenizer(template=_template(LongCatImageEditPipeline))
    pipe = LongCatImageEditPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=_vae64(),
                                    text_encoder=tiny_text_encoder(tokenizer), tokenizer=tokenizer,
                                    text_processor=_processor(tokenizer), transformer=_transformer())
    pipe.set_progress_bar_config(disable=True)
    pixels = torch.randint(0, 256, (64, 64, 3), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    call = {**CALL, "image": Image.fromarray(pixels.numpy()), "negative_prompt": ""}
    del call["height"], call["width"], call["enable_prompt_rewrite"]
    return Case(pipe, call=call, prompts="a red cat", full_grid=False, schedulers=SCHEDULERS)


CASES = {"LongCatImagePipeline": longcat_image, "LongCatImageEditPipeline": longcat_image_edit}
