"""Tiny LTX-Video pipelines (text-to-video, image-to-video, condition, long multi-prompt i2v), built in code, offline.

One T5 text encoder (d_model 32, the toy CLIP tokenizer), one 1-layer ``LTXVideoTransformer3DModel`` (patch 1) and
one ``AutoencoderKLLTXVideo`` (8x spatial, 8x temporal, 8 latent channels) serve every variant: 32x32 pixels (every
LTX pipeline demands multiples of 32), 9 frames -> 2 latent frames of 4x4 tokens (32 tokens).

``LTXI2VLongMultiPromptPipeline`` differs from the others (see docs/dev/ltx-facts.md): batch size 1 (a list
``prompt`` is one text per temporal window, not a batch), no images-per-prompt argument, CFG off by default
(``guidance_scale=1.0``), ``timesteps[:-1]`` are run (``steps`` 5 -> 4 denoiser calls per window), and the
negative is encoded once per window against a batch of one, so it must be a string or a one-element list.
"""

from __future__ import annotations

import torch
from diffusers import (
    AutoencoderKLLTXVideo,
    FlowMatchEulerDiscreteScheduler,
    LTXConditionPipeline,
    LTXEulerAncestralRFScheduler,
    LTXI2VLongMultiPromptPipeline,
    LTXImageToVideoPipeline,
    LTXPipeline,
    LTXVideoTransformer3DModel,
)
from PIL import Image

from contract_case import Case
from negdelay.toy.tokenizer import make_tokenizer
from tiny import WORDS
from tiny_families import HIDDEN, t5

SIZE = 32  # pixels (multiples of 32 only); 8x spatial compression -> 4x4 latents
FRAMES = 9  # pixel frames; 8x temporal compression -> 2 latent frames
TEXT_LEN = 16
LATENT = 8  # latent channels = transformer in/out channels (patch 1)
CALL = {"height": SIZE, "width": SIZE, "num_frames": FRAMES, "max_sequence_length": TEXT_LEN, "guidance_scale": 3.0}


def _transformer() -> LTXVideoTransformer3DModel:
    torch.manual_seed(0)
    return LTXVideoTransformer3DModel(
        in_channels=LATENT, out_channels=LATENT, patch_size=1, patch_size_t=1, num_attention_heads=2,
        attention_head_dim=8, cross_attention_dim=16, num_layers=1, caption_channels=HIDDEN,
    ).eval()


def _vae() -> AutoencoderKLLTXVideo:
    torch.manual_seed(0)
    vae = AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=LATENT, block_out_channels=(8,) * 4,
        decoder_block_out_channels=(8,) * 4, layers_per_block=(1,) * 5, decoder_layers_per_block=(1,) * 5,
        spatio_temporal_scaling=(True, True, True, False), decoder_spatio_temporal_scaling=(True, True, True, False),
        decoder_inject_noise=(False,) * 5, upsample_residual=(False,) * 4, upsample_factor=(1,) * 4,
        timestep_conditioning=False, patch_size=1, patch_size_t=1, encoder_causal=True, decoder_causal=False,
    ).eval()
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    return vae


def _pipe(cls, scheduler=None):
    tokenizer = make_tokenizer(WORDS, model_max_length=TEXT_LEN)
    pipe = cls(
        scheduler=scheduler or FlowMatchEulerDiscreteScheduler(), vae=_vae(), text_encoder=t5(tokenizer, 2),
        tokenizer=tokenizer, transformer=_transformer(),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _same(pipe):
    return pipe.scheduler


def _euler(pipe):
    return FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config)


def _frame(seed: int) -> Image.Image:
    """A SIZE x SIZE RGB image of seeded noise."""
    g = torch.Generator().manual_seed(seed)
    return Image.fromarray(torch.randint(0, 256, (SIZE, SIZE, 3), generator=g, dtype=torch.uint8).numpy())


def _case(pipe, **call) -> Case:
    # The three batch pipelines pass `mu`/`sigmas` (or per-token timesteps) to the scheduler: only
    # FlowMatchEulerDiscreteScheduler takes them, so there is no second scheduler.
    return Case(
        pipe, call={**CALL, "output_type": "latent", **call}, schedulers=(_same,), images_arg="num_videos_per_prompt",
    )


def ltx() -> Case:
    return _case(_pipe(LTXPipeline))


def ltx_i2v() -> Case:
    # One image: its latents broadcast over the 4 rows (a list of images must match the batch of rows, not prompts).
    return _case(_pipe(LTXImageToVideoPipeline), image=_frame(1))


def ltx_condition() -> Case:
    # One image condition at frame 0 (its latent tokens are prepended to the sequence).
    return _case(_pipe(LTXConditionPipeline), image=_frame(1), frame_index=0)


def ltx_long() -> Case:
    """17 frames -> 3 latent frames; tiles of 2 latent frames (16 pixel frames) with 1 of overlap -> 2 windows.
    One prompt (a str: both windows take it), so that the reference finds the text inputs constant over the calls;
    tests/test_ltx_long.py gives each window its own text. First scheduler: LTXEulerAncestralRFScheduler (its
    documented one; the pipeline warns about any other)."""
    pipe = _pipe(LTXI2VLongMultiPromptPipeline, scheduler=LTXEulerAncestralRFScheduler())
    call = {
        **CALL, "num_frames": 17, "temporal_tile_size": 16, "temporal_overlap": 8, "cond_image": _frame(1),
        "output_type": "latent",
    }
    return Case(pipe, call=call, schedulers=(_same, _euler), images_arg=None, steps=5, prompts="a red cat")


CASES = {
    "LTXPipeline": ltx,
    "LTXImageToVideoPipeline": ltx_i2v,
    "LTXConditionPipeline": ltx_condition,
    "LTXI2VLongMultiPromptPipeline": ltx_long,
}
