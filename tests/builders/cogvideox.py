"""Tiny CogVideoX pipelines (text-to-video, image-to-video, video-to-video, Fun control), built in code, offline.

One T5 text encoder (d_model 32, the toy CLIP tokenizer), one 1-layer ``CogVideoXTransformer3DModel`` and one
4-level ``AutoencoderKLCogVideoX`` (8x spatial, 4x temporal) serve every variant: 16x16 pixels, 5 frames ->
latents of 2 frames x 4 channels x 2x2 (one 2x2 patch per frame). ``max_sequence_length=16`` must equal the
transformer's ``max_text_seq_length`` (its positional embedding covers exactly that many text tokens).

Every CogVideoX ``__call__`` sets ``num_videos_per_prompt = 1`` whatever the caller passes, so the cases have no
images-per-prompt argument (``images_arg=None``). Schedulers: ``CogVideoXDDIMScheduler`` (the pipelines' own) and
``CogVideoXDPMScheduler`` (its ``step`` takes the previous ``pred_original_sample``: another branch of the loop);
the Fun control loop has no such branch and gets ``DPMSolverMultistepScheduler`` instead.
"""

from __future__ import annotations

import torch
from diffusers import (
    AutoencoderKLCogVideoX,
    CogVideoXDDIMScheduler,
    CogVideoXDPMScheduler,
    CogVideoXFunControlPipeline,
    CogVideoXImageToVideoPipeline,
    CogVideoXPipeline,
    CogVideoXTransformer3DModel,
    CogVideoXVideoToVideoPipeline,
    DPMSolverMultistepScheduler,
)
from PIL import Image

from contract_case import Case
from negdelay.toy.tokenizer import make_tokenizer
from tiny import WORDS
from tiny_families import HIDDEN, t5

SIZE = 16  # pixels; the VAE's 8x spatial compression gives 2x2 latents
FRAMES = 5  # pixel frames; 4x temporal compression gives 2 latent frames
TEXT_LEN = 16  # tokens per text = the transformer's max_text_seq_length
LATENT = 4  # latent channels
CALL = {"height": SIZE, "width": SIZE, "max_sequence_length": TEXT_LEN, "guidance_scale": 6.0}


def _transformer(in_channels: int, rotary: bool = False) -> CogVideoXTransformer3DModel:
    torch.manual_seed(0)
    return CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=in_channels, out_channels=LATENT, time_embed_dim=2,
        text_embed_dim=HIDDEN, num_layers=1, sample_width=SIZE // 8, sample_height=SIZE // 8, sample_frames=FRAMES,
        patch_size=2, temporal_compression_ratio=4, max_text_seq_length=TEXT_LEN,
        use_rotary_positional_embeddings=rotary, use_learned_positional_embeddings=rotary,
    ).eval()


def _vae() -> AutoencoderKLCogVideoX:
    torch.manual_seed(0)
    return AutoencoderKLCogVideoX(
        in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8,) * 4, latent_channels=LATENT,
        layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4,
    ).eval()


def _pipe(cls, in_channels: int = LATENT, rotary: bool = False):
    tokenizer = make_tokenizer(WORDS, model_max_length=TEXT_LEN)
    pipe = cls(
        tokenizer=tokenizer, text_encoder=t5(tokenizer, 2), vae=_vae(), transformer=_transformer(in_channels, rotary),
        scheduler=CogVideoXDDIMScheduler(timestep_spacing="trailing"),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _dpm(pipe):
    return CogVideoXDPMScheduler.from_config(pipe.scheduler.config)


def _dpm_solver(pipe):
    return DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)


def _same(pipe):
    return pipe.scheduler


def _frame(seed: int) -> Image.Image:
    """A SIZE x SIZE RGB image of seeded noise (a plain colour would make image latents nearly constant)."""
    g = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (SIZE, SIZE, 3), generator=g, dtype=torch.uint8)
    return Image.fromarray(pixels.numpy())


def _video(seed: int) -> list[Image.Image]:
    return [_frame(seed * 100 + f) for f in range(FRAMES)]


def _case(pipe, second=_dpm, **call) -> Case:
    return Case(
        pipe, call={**CALL, "output_type": "latent", **call}, schedulers=(_same, second), images_arg=None,
    )


def cogvideox() -> Case:
    return _case(_pipe(CogVideoXPipeline), num_frames=FRAMES)


def cogvideox_i2v() -> Case:
    # Image latents are concatenated to the noisy latents on the channel axis: in_channels = 2 x latent channels.
    # One image per prompt (the pipeline encodes one image per batch row).
    pipe = _pipe(CogVideoXImageToVideoPipeline, in_channels=2 * LATENT, rotary=True)
    return _case(pipe, num_frames=FRAMES, image=[_frame(1), _frame(2)])


def cogvideox_v2v() -> Case:
    # One video (the pipeline counts its frames with len(video)); its latents broadcast over the batch.
    # strength 1.0 keeps all 4 steps (strength s runs int(4 * s) of them).
    pipe = _pipe(CogVideoXVideoToVideoPipeline)
    return _case(pipe, video=_video(1), strength=1.0)


def cogvideox_fun_control() -> Case:
    # Control latents are concatenated on the channel axis; a list of videos, one per prompt (the pipeline counts
    # frames with len(control_video[0])).
    pipe = _pipe(CogVideoXFunControlPipeline, in_channels=2 * LATENT)
    # Its loop has no CogVideoXDPMScheduler branch (it takes Karras schedulers): the second is DPM-Solver++.
    return _case(pipe, second=_dpm_solver, control_video=[_video(3), _video(4)])


CASES = {
    "CogVideoXPipeline": cogvideox,
    "CogVideoXImageToVideoPipeline": cogvideox_i2v,
    "CogVideoXVideoToVideoPipeline": cogvideox_v2v,
    "CogVideoXFunControlPipeline": cogvideox_fun_control,
}
