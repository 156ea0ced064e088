"""A tiny Kandinsky 6 text/image-to-video(-and-audio) pipeline of the real diffusers class, built in code, offline.

Kandinsky 5's tiny text parts (tests/builders/kandinsky5.py: a Qwen2.5-VL of width 32 behind a processor whose
template prefix is exactly the pipeline's ``_QWEN_CROP_START`` = 129 tokens, CLIP of width 32), HunyuanVideo's tiny
VAE and a ``Kandinsky6Transformer3DModel`` of width 16 (1 text block, 2 visual blocks; its zero-initialised
modulation drawn). Video only (``sample_audio=False``: no audio VAE); 32x32, 5 frames.
"""

from __future__ import annotations

import torch
from diffusers import FlowMatchEulerDiscreteScheduler, Kandinsky6TI2VAPipeline, Kandinsky6Transformer3DModel
from diffusers.pipelines.kandinsky6 import pipeline_kandinsky6_ti2va as k6

import tiny_qwen
from builders.hunyuan_video import vae as hunyuan_vae
from builders.kandinsky5 import OWN_NEGATIVE, QWEN, SCHEDULERS, VIDEO_SPLIT, qwen_processor
from contract_case import Case
from negdelay.toy.tokenizer import make_tokenizer
from tiny import WORDS
from tiny_families import HIDDEN, clip

SPLIT = {**VIDEO_SPLIT, "promt": "pro mt"}


def transformer() -> Kandinsky6Transformer3DModel:
    torch.manual_seed(0)
    model = Kandinsky6Transformer3DModel(
        in_visual_dim=4, out_visual_dim=4, in_text_dim=QWEN, in_text_dim2=HIDDEN, time_dim=16, patch_size=(1, 2, 2),
        model_dim=16, ff_dim=32, num_text_blocks=1, num_visual_blocks=2, axes_dims=(2, 2, 4), visual_cond=True,
        in_audio_dim=4, out_audio_dim=4,
    )
    with torch.no_grad():
        for name, param in model.named_parameters():
            if not param.any():  # zero-initialised modulation / output layers: their inputs would not matter
                param.normal_(0, 0.1)
    return model.eval()


def kandinsky6() -> Case:
    """Conditional call in ``cache_context("cond")``, unconditional in ``"uncond"``: Qwen tokens, their padding mask
    and the CLIP pooled embedding."""
    proc = qwen_processor(k6._PROMPT_TEMPLATE, k6._QWEN_CROP_START, SPLIT, "Kandinsky6TI2VAPipeline")
    clip_tokenizer = make_tokenizer(WORDS, model_max_length=77)
    pipe = Kandinsky6TI2VAPipeline(
        transformer=transformer(), vae=hunyuan_vae(), text_encoder=tiny_qwen.tiny_text_encoder(proc.tokenizer,
                                                                                               hidden=QWEN),
        tokenizer=proc, text_encoder_2=clip(clip_tokenizer, 1), tokenizer_2=clip_tokenizer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0),
    )
    pipe.set_progress_bar_config(disable=True)
    call = dict(height=32, width=32, num_frames=5, guidance_scale=5.0, max_sequence_length=16, sample_audio=False,
                negative_prompt=OWN_NEGATIVE, output_type="latent")
    return Case(pipe, call=call, schedulers=SCHEDULERS, images_arg="num_videos_per_prompt")


CASES = {"Kandinsky6TI2VAPipeline": kandinsky6}
