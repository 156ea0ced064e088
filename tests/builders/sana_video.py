"""Tiny Sana-Video pipelines (text- and image-to-video) of the real diffusers classes, built in code, offline.

Sana's tiny text parts (tests/builders/sana.py: a real ``GemmaTokenizer``, a 1-layer ``Gemma2Model`` of width 16;
the pipeline's default ``complex_human_instruction`` left on), Wan's tiny VAE (tests/builders/wan.py: 16 latent
channels, spatial /8, temporal /4) and a 2-layer ``SanaVideoTransformer3DModel`` (patch 1x2x2). Videos are 32x32
(the pipelines take multiples of 32) with 5 frames: 2 latent frames of 4x4, 8 transformer tokens.
"""

from __future__ import annotations

import torch
from diffusers import (
    DPMSolverMultistepScheduler,
    FlowMatchEulerDiscreteScheduler,
    SanaImageToVideoPipeline,
    SanaVideoPipeline,
    SanaVideoTransformer3DModel,
)

from builders.sana import TEXT, gemma2
from builders.wan import Z_DIM, image, vae
from contract_case import Case
from tiny_gemma import make_gemma_tokenizer

SIZE = 32
CALL = dict(height=SIZE, width=SIZE, frames=5, max_sequence_length=8, use_resolution_binning=False,
            guidance_scale=4.5, output_type="latent")
SCHEDULERS = ((lambda p: p.scheduler), (lambda p: DPMSolverMultistepScheduler(
    use_flow_sigmas=True, prediction_type="flow_prediction", flow_shift=3.0)))


def transformer(seed=0) -> SanaVideoTransformer3DModel:
    torch.manual_seed(seed)
    return SanaVideoTransformer3DModel(
        in_channels=Z_DIM, out_channels=Z_DIM, num_attention_heads=2, attention_head_dim=12, num_layers=2,
        num_cross_attention_heads=2, cross_attention_head_dim=12, cross_attention_dim=24, caption_channels=TEXT,
        sample_size=SIZE // 8, patch_size=(1, 2, 2), rope_max_seq_len=32,
    ).eval()


def _pipe(cls):
    tokenizer = make_gemma_tokenizer()
    pipe = cls(tokenizer=tokenizer, text_encoder=gemma2(tokenizer), vae=vae(), transformer=transformer(),
               scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sana_video() -> Case:
    """Text-to-video: Sana's batched ``[unconditional, conditional]`` call with the Gemma mask."""
    return Case(_pipe(SanaVideoPipeline), call=dict(CALL), schedulers=SCHEDULERS,
                images_arg="num_videos_per_prompt")


def sana_i2v() -> Case:
    """Image-to-video: the first latent frame is the image's (timestep 0 there, through a conditioning mask).
    One video per prompt: ``__call__`` builds the conditioning mask for ``batch_size`` rows, not
    ``batch_size * num_videos_per_prompt`` (pipeline_sana_video_i2v.py:962), so more videos per prompt fail in the
    transformer's timestep modulation."""
    return Case(_pipe(SanaImageToVideoPipeline), call=dict(CALL, image=image(size=SIZE)), schedulers=SCHEDULERS,
                images_arg=None, full_grid=False)


CASES = {"SanaVideoPipeline": sana_video, "SanaImageToVideoPipeline": sana_i2v}
