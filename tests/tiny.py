"""Tiny pipelines of the real diffusers classes, built in code (no hub), and an independent reference.

The reference does not use callbacks: it wraps ``unet.forward`` and substitutes the unconditional rows of
``encoder_hidden_states`` for the UNet calls of chosen progress-bar steps, counting steps with the
pipeline's own progress bar.
"""

from __future__ import annotations

import contextlib

import torch
from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel, DDIMScheduler
from transformers import CLIPTextConfig, CLIPTextModel

from negdelay.toy.tokenizer import make_tokenizer

WORDS = (
    "a girl eating pizza wearing glasses hat red blue green cat dog photo of the with extra fingers blurry "
    "ugly bad hands easy negative dot circle square"
).split()


def tiny_text_encoder(tokenizer, hidden=32, seed=0):
    torch.manual_seed(seed)
    config = CLIPTextConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        hidden_size=hidden, intermediate_size=37, layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=3,
        vocab_size=len(tokenizer), max_position_embeddings=tokenizer.model_max_length, projection_dim=hidden,
    )
    return CLIPTextModel(config).eval()


def tiny_sd(scheduler=None, cls=StableDiffusionPipeline, **extra):
    tokenizer = make_tokenizer(WORDS, model_max_length=12)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, norm_num_groups=4, attention_head_dim=4,
    ).eval()
    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=(8, 16), in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=4,
    ).eval()
    scheduler = scheduler or DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False, steps_offset=1
    )
    pipe = cls(
        vae=vae, text_encoder=tiny_text_encoder(tokenizer), tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False, **extra,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


class _Bar:
    def __init__(self, counter):
        self.counter = counter

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        self.counter["step"] += n


@contextlib.contextmanager
def reference(pipe, rows_for_step):
    """Within the block, UNet calls of progress step s get ``rows_for_step(s, ehs)`` as encoder_hidden_states.

    ``rows_for_step`` returns the new tensor or None (unchanged). Also records ``calls``: (step, ehs) per call.
    """
    counter = {"step": 0}
    calls = []
    unet_forward = pipe.unet.forward

    def forward(sample, timestep, encoder_hidden_states, *args, **kwargs):
        new = rows_for_step(counter["step"], encoder_hidden_states)
        if new is not None:
            encoder_hidden_states = new
        calls.append((counter["step"], encoder_hidden_states))
        return unet_forward(sample, timestep, encoder_hidden_states, *args, **kwargs)

    pipe.unet.forward = forward
    pipe.progress_bar = lambda *a, **k: _Bar(counter)
    try:
        yield calls
    finally:
        del pipe.unet.forward
        del pipe.progress_bar


def captured_uncond(pipe, negative_prompt, rows=None, **kw):
    """The unconditional rows the stock pipeline feeds the UNet for ``negative_prompt`` (first UNet call).

    The stock pipeline encodes a negative list in one batch, one row per entry; so does negdelay. A str is
    encoded alone (batch 1), a list as one batch. ``rows`` repeats each entry for that many image rows
    (``rows / len(list)`` consecutive rows each, as diffusers orders ``num_images_per_prompt``).
    """
    texts = [negative_prompt] if isinstance(negative_prompt, str) else list(negative_prompt)
    prompt = "" if isinstance(negative_prompt, str) else [""] * len(texts)
    with reference(pipe, lambda s, e: None) as calls:
        pipe(prompt, negative_prompt=negative_prompt, num_inference_steps=2, output_type="latent", **kw)
    ehs = calls[0][1]
    uncond = ehs[: ehs.shape[0] // 2].clone()
    assert uncond.shape[0] == len(texts)
    rows = rows or len(texts)
    return uncond.repeat_interleave(rows // len(texts), dim=0)


def substitute(uncond, steps):
    """rows_for_step: use ``uncond`` (rows) for the unconditional half at steps in ``steps`` (a set or callable)."""
    inside = steps if callable(steps) else (lambda s: s in steps)

    def rows_for_step(step, ehs):
        if not inside(step):
            return None
        n = ehs.shape[0] // 2
        return torch.cat([uncond.to(ehs.dtype), ehs[n:]])

    return rows_for_step
