"""Tiny Motif-Video pipelines (text- and image-to-video) of the real diffusers classes, built in code, offline.

Text: tests/tiny_gemma.py's real ``GemmaTokenizer`` and a ``T5Gemma2Encoder`` with one text layer of width 32 (and
a 1-layer SigLIP vision tower, which image-to-video runs on the first frame). Wan's tiny VAE (tests/builders/wan.py)
and a ``MotifVideoTransformer3DModel`` with one dual and one single block (patch 1; 33 input channels: latents ++
first-frame latents ++ mask). Guidance through ``pipe.guider``: ``ClassifierFreeGuidance`` (scale 5); the
adaptive projected guider (APG, diffusers' own test default) is a second case. 16x16 px, 5 frames.
"""

from __future__ import annotations

import torch
from diffusers import (
    AdaptiveProjectedGuidance,
    ClassifierFreeGuidance,
    FlowMatchEulerDiscreteScheduler,
    MotifVideoImage2VideoPipeline,
    MotifVideoPipeline,
    MotifVideoTransformer3DModel,
)
from transformers import SiglipImageProcessor, T5Gemma2Encoder, T5Gemma2EncoderConfig, T5Gemma2TextConfig

from builders.hunyuan_video import guider_off
from builders.wan import FRAMES, SIZE, Z_DIM, image, vae
from contract_case import Case
from tiny_gemma import make_gemma_tokenizer

TEXT = 32
VISION = 16
CALL = dict(**SIZE, num_frames=FRAMES, max_sequence_length=8, output_type="latent")
SCHEDULERS = ((lambda p: p.scheduler), (lambda p: FlowMatchEulerDiscreteScheduler(shift=3.0)))


def text_encoder(tokenizer) -> T5Gemma2Encoder:
    text = T5Gemma2TextConfig(
        hidden_size=TEXT, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, vocab_size=len(tokenizer),
        max_position_embeddings=128, head_dim=16, num_key_value_heads=2, dropout_rate=0.0,
        pad_token_id=tokenizer.pad_token_id,
    )
    vision = dict(hidden_size=VISION, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2, image_size=16,
                  patch_size=8)
    torch.manual_seed(0)
    return T5Gemma2Encoder(T5Gemma2EncoderConfig(text_config=text, vision_config=vision, mm_tokens_per_image=4)).eval()


def transformer(**extra) -> MotifVideoTransformer3DModel:
    torch.manual_seed(0)
    return MotifVideoTransformer3DModel(
        in_channels=2 * Z_DIM + 1, out_channels=Z_DIM, num_attention_heads=2, attention_head_dim=12, num_layers=1,
        num_single_layers=1, patch_size=1, patch_size_t=1, text_embed_dim=TEXT, rope_axes_dim=(4, 4, 4), **extra,
    ).eval()


def _pipe(cls, guider, **extra):
    tokenizer = make_gemma_tokenizer()
    pipe = cls(scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0), vae=vae(), text_encoder=text_encoder(tokenizer),
               tokenizer=tokenizer, guider=guider, **extra)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def motif_video() -> Case:
    """Text-to-video: a denoiser call per guider batch in ``cache_context("pred_cond"/"pred_uncond")``, text tokens
    and their (bool) mask. No guidance keyword: ``no_cfg`` swaps the guider for one of scale 1."""
    pipe = _pipe(MotifVideoPipeline, ClassifierFreeGuidance(guidance_scale=5.0), transformer=transformer())
    return Case(pipe, call=dict(CALL), no_cfg=guider_off, schedulers=SCHEDULERS, images_arg="num_videos_per_prompt")


def motif_video_apg() -> Case:
    """The adaptive projected guider: its unconditional pass is ``pred_uncond`` too."""
    pipe = _pipe(MotifVideoPipeline, AdaptiveProjectedGuidance(guidance_scale=5.0), transformer=transformer())
    return Case(pipe, call=dict(CALL), no_cfg=guider_off, schedulers=SCHEDULERS,
                images_arg="num_videos_per_prompt", full_grid=False)


def motif_i2v() -> Case:
    """Image-to-video: first-frame latents and mask in the input channels, SigLIP image tokens (the text encoder's
    vision tower) as ``image_embeds``, the same in both passes. One prompt, one video: the first-frame latents
    have the image's batch (1), concatenated to the noise's batch."""
    processor = SiglipImageProcessor(size={"height": 16, "width": 16})
    pipe = _pipe(MotifVideoImage2VideoPipeline, ClassifierFreeGuidance(guidance_scale=5.0),
                 transformer=transformer(image_embed_dim=VISION), feature_extractor=processor)
    return Case(pipe, call=dict(CALL, image=image()), no_cfg=guider_off, schedulers=SCHEDULERS, images_arg=None,
                prompts="a red cat", full_grid=False)


CASES = {"MotifVideoPipeline": motif_video, "MotifVideoPipeline[APG]": motif_video_apg,
         "MotifVideoImage2VideoPipeline": motif_i2v}
