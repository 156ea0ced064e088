"""Tiny Wan pipelines (2.1, 2.2 with two experts, image-to-video, video-to-video, VACE, Animate) of the real
diffusers classes, built in code, offline.

Shared parts: a word-level tokenizer used as Wan's T5 tokenizer, a T5 encoder of width 32, a 2-layer Wan
transformer (2 heads of 12), a Wan VAE of base width 3 (16 latent channels, spatial /8, temporal /4). Videos are
16x16 with 5 frames: 2 latent frames of 2x2, i.e. 2 transformer tokens. Every module is seeded and in eval mode.
"""

from __future__ import annotations

import PIL.Image
import torch
from diffusers import (
    AutoencoderKLWan,
    FlowMatchEulerDiscreteScheduler,
    UniPCMultistepScheduler,
    WanAnimatePipeline,
    WanAnimateTransformer3DModel,
    WanImageToVideoPipeline,
    WanPipeline,
    WanTransformer3DModel,
    WanVACEPipeline,
    WanVACETransformer3DModel,
    WanVideoToVideoPipeline,
)
from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

from contract_case import Case
from negdelay.toy.tokenizer import make_tokenizer
from tiny import WORDS
from tiny_families import t5

TEXT_DIM = 32  # T5 d_model = transformer text_dim
Z_DIM = 16  # VAE latent channels
SIZE = dict(height=16, width=16)
FRAMES = 5  # 2 latent frames
MAX_LEN = 16  # max_sequence_length of every call
# Wan 2.2's boundary_ratio of the A14B checkpoints; with the UniPC schedule below it splits 4 steps 2 + 2.
BOUNDARY_RATIO = 0.875
TRANSFORMER = dict(
    patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, text_dim=TEXT_DIM, freq_dim=32, ffn_dim=32,
    num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
)


def unipc(pipe=None):
    """Wan's own scheduler (UniPC on flow sigmas, as the Wan checkpoints ship it)."""
    return UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)


def euler(pipe=None):
    """A second scheduler the Wan pipelines take."""
    return FlowMatchEulerDiscreteScheduler(shift=3.0)


def _seeded(seed, cls, **config):
    torch.manual_seed(seed)
    return cls(**config).eval()


def text_parts() -> dict:
    """Wan's tokenizer and text encoder: a word-level tokenizer used as T5's, and T5 of width 32 (dropout off)."""
    tokenizer = make_tokenizer(WORDS, model_max_length=MAX_LEN)
    return dict(tokenizer=tokenizer, text_encoder=t5(tokenizer, 2, d_model=TEXT_DIM))


def vae() -> AutoencoderKLWan:
    return _seeded(0, AutoencoderKLWan, base_dim=3, z_dim=Z_DIM, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                   temperal_downsample=[False, True, True])


def transformer(seed=0, cls=WanTransformer3DModel, **extra):
    return _seeded(seed, cls, **{**TRANSFORMER, "in_channels": Z_DIM, "out_channels": Z_DIM, **extra})


def _pipe(cls, **components):
    pipe = cls(**text_parts(), vae=vae(), scheduler=unipc(), **components)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def image(seed=0, size=16, mode="RGB") -> PIL.Image.Image:
    """A deterministic noise image (a blank one would make image conditioning trivial)."""
    g = torch.Generator().manual_seed(seed)
    channels = 1 if mode == "L" else 3
    pixels = (torch.rand(size, size, channels, generator=g) * 255).to(torch.uint8).numpy()
    return PIL.Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode)


def video(frames=FRAMES, seed=0, size=16, mode="RGB") -> list[PIL.Image.Image]:
    return [image(seed + i, size, mode) for i in range(frames)]


CALL = dict(**SIZE, num_frames=FRAMES, max_sequence_length=MAX_LEN, guidance_scale=5.0, output_type="latent")


def wan() -> Case:
    """Wan 2.1 text-to-video: one transformer; CFG is a second call in ``cache_context("uncond")``."""
    pipe = _pipe(WanPipeline, transformer=transformer())
    return Case(pipe, call=dict(CALL), schedulers=(lambda p: unipc(), euler), images_arg="num_videos_per_prompt")


def wan22() -> Case:
    """Wan 2.2 A14B-style text-to-video: ``transformer`` for t >= boundary_ratio * 1000, ``transformer_2`` below."""
    pipe = _pipe(WanPipeline, transformer=transformer(0), transformer_2=transformer(1), boundary_ratio=BOUNDARY_RATIO)
    return Case(pipe, call=dict(CALL), schedulers=(lambda p: unipc(), euler), images_arg="num_videos_per_prompt")


def wan_i2v() -> Case:
    """Wan 2.2 A14B-style image-to-video: no image encoder (``image_dim=None``), latents ++ (4 mask + 16 image
    latent channels) in, so the transformer takes 36 channels. The Wan 2.1 form with a CLIP image encoder is
    ``wan21_i2v``."""
    pipe = _pipe(WanImageToVideoPipeline, transformer=transformer(in_channels=2 * Z_DIM + 4))
    return Case(pipe, call=dict(CALL, image=image()), schedulers=(lambda p: unipc(), euler),
                images_arg="num_videos_per_prompt")


def wan21_i2v() -> Case:
    """Wan 2.1 image-to-video with a CLIP image encoder (``encoder_hidden_states_image``, the same in both passes).

    Only one video per prompt: ``__call__`` repeats the image embedding ``batch_size`` times, not
    ``batch_size * num_videos_per_prompt`` (pipeline_wan_i2v.py:704), so more videos per prompt fail in the
    transformer's concat.
    """
    torch.manual_seed(0)
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=4, projection_dim=4, num_hidden_layers=2, num_attention_heads=2, image_size=4, intermediate_size=16,
        patch_size=1,
    )).eval()
    pipe = _pipe(
        WanImageToVideoPipeline, transformer=transformer(in_channels=2 * Z_DIM + 4, image_dim=4),
        image_encoder=encoder, image_processor=CLIPImageProcessor(crop_size=4, size=4),
    )
    return Case(pipe, call=dict(CALL, image=image()), schedulers=(lambda p: unipc(),), images_arg=None,
                full_grid=False)


def wan_v2v() -> Case:
    """Video-to-video: 5 steps at strength 0.8 run 4. The pipeline forces ``num_videos_per_prompt = 1``
    (pipeline_wan_video2video.py:590), whatever is passed, so it has no images-per-prompt keyword to test.
    Its two denoiser calls per step have no cache context (order: conditional first, then unconditional)."""
    pipe = _pipe(WanVideoToVideoPipeline, transformer=transformer())
    call = dict(CALL, video=video(), strength=0.8)
    del call["num_frames"]  # the frame count comes from the video
    return Case(pipe, call=call, schedulers=(lambda p: unipc(), euler), images_arg=None, steps=5)


def wan_vace() -> Case:
    """VACE: control video + mask through 2 VACE blocks. The pipeline refuses a list of prompts and more than
    one video per prompt (pipeline_wan_vace.py:818-823): call it with ONE string prompt and one string negative."""
    pipe = _pipe(WanVACEPipeline, transformer=transformer(
        cls=WanVACETransformer3DModel, vace_layers=[0, 1], vace_in_channels=2 * Z_DIM + 64,
    ))
    call = dict(CALL, video=video(), mask=video(seed=10, mode="L"))
    return Case(pipe, call=call, schedulers=(lambda p: unipc(), euler), images_arg=None)


def wan_animate() -> Case:
    """Animate: one segment (segment_frame_length 5 = the pose/face videos' length). Its default guidance_scale
    is 1.0 (no CFG): the case passes 5.0. The unconditional pass also blanks the face video (-1 pixels)."""
    torch.manual_seed(0)
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=4, projection_dim=4, num_hidden_layers=2, num_attention_heads=2, image_size=4, intermediate_size=16,
        patch_size=1,
    )).eval()
    model = transformer(
        cls=WanAnimateTransformer3DModel, in_channels=2 * Z_DIM + 4, latent_channels=Z_DIM, image_dim=4,
        motion_encoder_channel_sizes={"4": 16, "8": 16, "16": 16}, motion_encoder_size=16, motion_style_dim=8,
        motion_dim=4, motion_encoder_dim=16, face_encoder_hidden_dim=16, face_encoder_num_heads=2,
        inject_face_latents_blocks=2,
    )
    pipe = _pipe(WanAnimatePipeline, transformer=model, image_encoder=encoder,
                 image_processor=CLIPImageProcessor(crop_size=4, size=4))
    call = dict(
        **SIZE, image=image(), pose_video=video(seed=20), face_video=video(seed=30), segment_frame_length=FRAMES,
        prev_segment_conditioning_frames=1, mode="animate", max_sequence_length=MAX_LEN, guidance_scale=5.0,
        output_type="latent",
    )
    return Case(pipe, call=call, schedulers=(lambda p: unipc(), euler), images_arg="num_videos_per_prompt")


# Cases that take ONE string prompt (and one string negative), not the contract's list of two:
# VACE refuses a list of prompts.
ONE_PROMPT = frozenset({"WanVACEPipeline"})

CASES = {
    "WanPipeline": wan,
    "WanPipeline[wan2.2]": wan22,
    "WanImageToVideoPipeline": wan_i2v,
    "WanImageToVideoPipeline[wan2.1]": wan21_i2v,
    "WanVideoToVideoPipeline": wan_v2v,
    "WanVACEPipeline": wan_vace,
    "WanAnimatePipeline": wan_animate,
}
