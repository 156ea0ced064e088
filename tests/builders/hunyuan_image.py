"""Tiny HunyuanImage 2.1 pipelines (text-to-image and the refiner), built in code, offline.

- Text: tests/tiny_qwen.py's Qwen2.5-VL (2 text layers of width 32: ``hidden_states[-3]`` is the embedding) and a
  ``Qwen2Tokenizer`` made for each pipeline's own template. Text-to-image keeps its template prefix of exactly
  ``prompt_template_encode_start_idx`` (34) tokens; the refiner's Llama-style header tokens are plain text to a Qwen
  tokenizer, so its prefix length is measured and set as the pipeline's start index. ``tokenizer_max_length`` (a
  plain attribute, 1000 / 256) is shrunk to 8 tokens after the prefix. ByT5 (glyph text) only sees quoted text:
  the contract's prompts have none (zeros), the tokenizer is byte-level and needs no files.
- Guidance by the pipelines' own guider (``AdaptiveProjectedMixGuidance``: CFG for the first steps, then APG),
  one transformer call per batch in ``cache_context("pred_cond"/"pred_uncond")``; no guidance keyword: ``no_cfg``
  replaces the guider by a disabled one.
- Text-to-image returns latents (its VAE is never run); the refiner takes the image as latents (``image`` with
  ``latent_channels`` channels skips its 3D VAE), one latent image for both prompts' images."""

from __future__ import annotations

import torch
from diffusers import (
    AutoencoderKLHunyuanImage,
    AutoencoderKLHunyuanImageRefiner,
    FlowMatchEulerDiscreteScheduler,
    HunyuanImagePipeline,
    HunyuanImageRefinerPipeline,
    HunyuanImageTransformer2DModel,
)
from diffusers.guiders import AdaptiveProjectedMixGuidance
from transformers import ByT5Tokenizer, T5Config, T5EncoderModel

import tiny_qwen
from contract_case import Case

TEXT = tiny_qwen.HIDDEN
MAX_LEN = 8
SCHEDULERS = ((lambda p: p.scheduler), (lambda p: FlowMatchEulerDiscreteScheduler(shift=3.0)))


def _seeded(seed, build):
    torch.manual_seed(seed)
    return build().eval()


def _guider():
    return AdaptiveProjectedMixGuidance(guidance_scale=4.0, adaptive_projected_guidance_start_step=2)


def guider_off(pipe):
    """No guidance keyword: the guider decides. Switch it off; return how to undo."""
    own = pipe.guider
    pipe.guider = AdaptiveProjectedMixGuidance(enabled=False)

    def undo():
        pipe.guider = own

    return undo


def _qwen(template: str):
    tokenizer = tiny_qwen.make_qwen_tokenizer(template=template)
    return tokenizer, tiny_qwen.tiny_text_encoder(tokenizer)


def _prefix(tokenizer, template: str) -> int:
    return len(tokenizer(template.split("{}")[0]).input_ids)


def _transformer(in_channels, patch_size, rope_axes_dim, **extra):
    return _seeded(0, lambda: HunyuanImageTransformer2DModel(
        in_channels=in_channels, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=1,
        num_single_layers=1, num_refiner_layers=1, patch_size=patch_size, text_embed_dim=TEXT,
        rope_axes_dim=rope_axes_dim, **extra))


def _with_text(pipe, tokenizer_for):
    """Give ``pipe`` a Qwen tokenizer made for its own template (set in ``__init__``) and a tiny Qwen encoder; the
    template prefix must be the pipeline's start index, or (``tokenizer_for`` says so) becomes it."""
    tokenizer = tiny_qwen.make_qwen_tokenizer(template=pipe.prompt_template_encode)
    pipe.register_modules(tokenizer=tokenizer, text_encoder=tiny_qwen.tiny_text_encoder(tokenizer))
    prefix = _prefix(tokenizer, pipe.prompt_template_encode)
    if tokenizer_for == "check" and prefix != pipe.prompt_template_encode_start_idx:
        raise RuntimeError(f"{type(pipe).__name__}'s template prefix is {prefix} tiny tokens, its start index "
                           f"{pipe.prompt_template_encode_start_idx}: a diffusers release changed the template")
    pipe.prompt_template_encode_start_idx = prefix
    pipe.tokenizer_max_length = MAX_LEN
    pipe.set_progress_bar_config(disable=True)
    return pipe


def hunyuan_image() -> Case:
    tokenizer_2 = ByT5Tokenizer()
    t5 = T5Config(vocab_size=len(tokenizer_2), d_model=32, d_kv=8, d_ff=37, num_layers=1, num_heads=4,
                  relative_attention_num_buckets=8, decoder_start_token_id=0, pad_token_id=tokenizer_2.pad_token_id)
    vae = _seeded(0, lambda: AutoencoderKLHunyuanImage(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32,) * 4, layers_per_block=1,
        spatial_compression_ratio=8, sample_size=32, scaling_factor=0.5))
    pipe = HunyuanImagePipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0), vae=vae, text_encoder=None, tokenizer=None,
        text_encoder_2=_seeded(1, lambda: T5EncoderModel(t5)), tokenizer_2=tokenizer_2,
        transformer=_transformer(4, (1, 1), (4, 4), text_embed_2_dim=32), guider=_guider())
    pipe = _with_text(pipe, "check")
    pipe.tokenizer_2_max_length = 16  # ByT5 bytes (128)
    return Case(pipe, call=dict(height=32, width=32, output_type="latent"), no_cfg=guider_off, schedulers=SCHEDULERS)


LATENT_IMAGE = torch.linspace(-1, 1, 4 * 4 * 4).reshape(1, 4, 1, 4, 4)  # (batch, channels, frames, height, width)


def hunyuan_image_refiner() -> Case:
    vae = _seeded(0, lambda: AutoencoderKLHunyuanImageRefiner(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32,) * 4, layers_per_block=1,
        spatial_compression_ratio=8, temporal_compression_ratio=4))
    pipe = HunyuanImageRefinerPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=4.0), vae=vae, text_encoder=None, tokenizer=None,
        transformer=_transformer(8, (1, 1, 1), (2, 2, 4), guidance_embeds=True), guider=_guider())
    pipe = _with_text(pipe, "measure")  # Llama-style headers: the real tokenizer's 36 cannot be reproduced
    return Case(pipe, call=dict(image=LATENT_IMAGE, height=32, width=32, distilled_guidance_scale=3.25,
                                output_type="latent"), no_cfg=guider_off, schedulers=SCHEDULERS, full_grid=False)


CASES = {"HunyuanImagePipeline": hunyuan_image, "HunyuanImageRefinerPipeline": hunyuan_image_refiner}
