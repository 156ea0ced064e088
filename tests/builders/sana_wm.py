"""A tiny SANA-WM pipeline (camera-controlled image-to-video) of the real diffusers class, built in code, offline.

Sana's tiny text parts (tests/builders/sana.py: a real ``GemmaTokenizer``, a 1-layer ``Gemma2Model`` of width 16;
the pipeline's default chi prompt in front of the prompt), LTX-2's tiny video VAE (tests/builders/ltx2.py: 4 latent
channels, spatial /8, temporal /2) and a 2-layer ``SanaWMTransformer3DModel`` (one GDN block, one softmax block,
width 32, Plücker chunks of 6 x 2 channels). A 32x32 first frame, a 5-frame camera path from the action string
(``w-4``: 4 steps forward): 3 latent frames of 4x4 tokens. The pipeline takes one prompt and one video.
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, SanaWMPipeline, SanaWMTransformer3DModel
from PIL import Image

from builders.ltx2 import LATENT
from builders.ltx2 import _vae as ltx2_vae
from builders.sana import TEXT, gemma2
from contract_case import Case
from tiny_gemma import make_gemma_tokenizer

SIZE = 32
ONE_PROMPT = frozenset({"SanaWMPipeline"})


def transformer(temporal_stride: int, seed: int = 0) -> SanaWMTransformer3DModel:
    torch.manual_seed(seed)
    return SanaWMTransformer3DModel(
        in_channels=LATENT, num_layers=2, hidden_size=32, num_attention_heads=2, linear_head_dim=16,
        softmax_every_n=2, chunk_plucker_channels=6 * temporal_stride, chunk_plucker_post_attn_blocks=2,
        caption_channels=TEXT, mixed_precision="fp32",
    ).eval()


def first_frame() -> Image.Image:
    pixels = (np.arange(SIZE * SIZE * 3) * 7 % 251).astype(np.uint8).reshape(SIZE, SIZE, 3)
    return Image.fromarray(pixels)


def sana_wm() -> Case:
    tokenizer = make_gemma_tokenizer()
    vae = ltx2_vae()
    pipe = SanaWMPipeline(tokenizer=tokenizer, text_encoder=gemma2(tokenizer), vae=vae,
                          transformer=transformer(vae.temporal_compression_ratio),
                          scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0))
    pipe.set_progress_bar_config(disable=True)
    call = dict(image=first_frame(), action="w-4", intrinsics=[20.0, 20.0, 16.0, 16.0], height=SIZE, width=SIZE,
                num_frames=5, guidance_scale=4.5, max_sequence_length=8, output_type="latent")
    # the loop steps the scheduler with per-token timesteps, which FlowMatchEulerDiscreteScheduler alone takes
    return Case(pipe, call=call, images_arg=None, schedulers=((lambda p: p.scheduler),
                (lambda p: FlowMatchEulerDiscreteScheduler(shift=1.0))))


CASES = {"SanaWMPipeline": sana_wm}
