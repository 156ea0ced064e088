"""Tiny SDXL, SD3 and Flux pipelines of the real diffusers classes, built in code (no hub), and an independent
reference for each: no callbacks, no hooks. The reference wraps the denoiser's ``forward`` and substitutes the
unconditional inputs of the calls of chosen progress-bar steps (steps counted with the pipeline's own progress
bar), with rows captured from a stock call that used the negative as ``negative_prompt``.
"""

from __future__ import annotations

import contextlib

import torch
from diffusers import (
    AutoencoderKL,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, T5Config, T5EncoderModel

from negdelay.toy.tokenizer import make_tokenizer
from tiny import WORDS, _Bar

HIDDEN = 32


def _clip_config(tokenizer, hidden=HIDDEN):
    return CLIPTextConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        hidden_size=hidden, intermediate_size=37, layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=3,
        vocab_size=len(tokenizer), max_position_embeddings=tokenizer.model_max_length, projection_dim=hidden,
        hidden_act="gelu",
    )


def clip(tokenizer, seed, projection=False):
    torch.manual_seed(seed)
    cls = CLIPTextModelWithProjection if projection else CLIPTextModel
    return cls(_clip_config(tokenizer)).eval()


def t5(tokenizer, seed, d_model=HIDDEN):
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=len(tokenizer), d_model=d_model, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, dropout_rate=0.1, decoder_start_token_id=0, pad_token_id=tokenizer.pad_token_id,
    )
    return T5EncoderModel(config).eval()  # dropout 0.1: random per call until eval()


def _vae(latent_channels=4, **kw):
    torch.manual_seed(0)
    return AutoencoderKL(
        block_out_channels=(8, 16), in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=latent_channels, norm_num_groups=4, **kw,
    ).eval()


def tiny_sdxl(scheduler=None, cls=StableDiffusionXLPipeline, **extra):
    """Two CLIP encoders (hidden 32 each, so 64 features), pooled from ``text_encoder_2``; 16x16 images."""
    tokenizer = make_tokenizer(WORDS, model_max_length=12)
    tokenizer_2 = make_tokenizer(WORDS, model_max_length=12)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=2 * HIDDEN, norm_num_groups=4, attention_head_dim=4, use_linear_projection=True,
        addition_embed_type="text_time", addition_time_embed_dim=8, projection_class_embeddings_input_dim=8 * 6 + HIDDEN,
    ).eval()
    scheduler = scheduler or EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="leading", steps_offset=1
    )
    pipe = cls(
        vae=_vae(), text_encoder=clip(tokenizer, 0), text_encoder_2=clip(tokenizer_2, 1, projection=True),
        tokenizer=tokenizer, tokenizer_2=tokenizer_2, unet=unet, scheduler=scheduler, **extra,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_sdxl_controlnet(scheduler=None, cls=None):
    """A tiny ``StableDiffusionXLControlNetPipeline`` (ControlNet made from the tiny SDXL UNet)."""
    from diffusers import ControlNetModel, StableDiffusionXLControlNetPipeline

    base = tiny_sdxl(scheduler)
    torch.manual_seed(1)
    controlnet = ControlNetModel.from_unet(base.unet, conditioning_embedding_out_channels=(4, 8)).eval()
    with torch.no_grad():  # a fresh ControlNet's output convs are zeros: its text rows would not matter at all
        for conv in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
            conv.weight.normal_(0, 0.3)
    parts = {k: v for k, v in base.components.items() if k not in ("image_encoder", "feature_extractor")}
    pipe = (cls or StableDiffusionXLControlNetPipeline)(**parts, controlnet=controlnet)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_sd3(scheduler=None, channels=4):
    """CLIP-L + CLIP-G (hidden 32 each: pooled 64) and T5 (d_model 32); use ``max_sequence_length=8``.
    ``channels=16``: the latent width SD3 inpainting insists on."""
    tokenizer = make_tokenizer(WORDS, model_max_length=12)
    tokenizer_2 = make_tokenizer(WORDS, model_max_length=12)
    tokenizer_3 = make_tokenizer(WORDS, model_max_length=16)
    torch.manual_seed(0)
    transformer = SD3Transformer2DModel(
        sample_size=8, patch_size=1, in_channels=channels, num_layers=1, attention_head_dim=8, num_attention_heads=4,
        caption_projection_dim=HIDDEN, joint_attention_dim=HIDDEN, pooled_projection_dim=2 * HIDDEN, out_channels=channels,
    ).eval()
    pipe = StableDiffusion3Pipeline(
        transformer=transformer, scheduler=scheduler or FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=_vae(latent_channels=channels, shift_factor=0.0609, scaling_factor=1.5035),
        text_encoder=clip(tokenizer, 0, projection=True), tokenizer=tokenizer,
        text_encoder_2=clip(tokenizer_2, 1, projection=True), tokenizer_2=tokenizer_2,
        text_encoder_3=t5(tokenizer_3, 2), tokenizer_3=tokenizer_3,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_flux(scheduler=None):
    """CLIP (pooled, hidden 32) and T5 (d_model 32); 16x16 images; use ``max_sequence_length=8``."""
    tokenizer = make_tokenizer(WORDS, model_max_length=12)
    tokenizer_2 = make_tokenizer(WORDS, model_max_length=16)
    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=HIDDEN, pooled_projection_dim=HIDDEN, axes_dims_rope=(4, 4, 8),
    ).eval()
    pipe = FluxPipeline(
        scheduler=scheduler or FlowMatchEulerDiscreteScheduler(), vae=_vae(
            latent_channels=1, shift_factor=0.0609, scaling_factor=1.5035, use_quant_conv=False, use_post_quant_conv=False
        ),
        text_encoder=clip(tokenizer, 0), tokenizer=tokenizer, text_encoder_2=t5(tokenizer_2, 2), tokenizer_2=tokenizer_2,
        transformer=transformer,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


@contextlib.contextmanager
def reference(pipe, model, change):
    """Within the block, every call of ``pipe.<model>`` (a name, or a tuple of names: e.g. UNet and ControlNet)
    at progress step s gets ``change(s, call_index, kwargs)`` applied to its keyword arguments (``change`` edits
    the dict in place). Yields the list of recorded calls ``(step, kwargs)``. Positional arguments are bound to
    names first, so the model sees only keywords."""
    import inspect

    names_of = (model,) if isinstance(model, str) else tuple(model)
    counter = {"step": 0}
    calls = []
    modules = [getattr(pipe, name) for name in names_of]

    def wrap(module):
        forward = module.forward
        names = list(inspect.signature(forward).parameters)

        def wrapped(*args, **kwargs):
            kwargs = {**dict(zip(names, args)), **kwargs}
            change(counter["step"], len(calls), kwargs)
            calls.append((counter["step"], dict(kwargs)))
            return forward(**kwargs)

        module.forward = wrapped

    for module in modules:
        wrap(module)
    pipe.progress_bar = lambda *a, **k: _Bar(counter)
    try:
        yield calls
    finally:
        for module in modules:
            del module.forward
        del pipe.progress_bar


def no_change(step, index, kwargs):
    return None


def tiny_pixart(scheduler=None, cls=None):
    """A tiny PixArt-Alpha (or ``cls=PixArtSigmaPipeline``): T5 (d_model 32) and a 2-layer PixArt transformer with
    learned sigma; 16x16 images; use ``max_sequence_length=8``."""
    from diffusers import DPMSolverMultistepScheduler, PixArtAlphaPipeline, PixArtTransformer2DModel

    tokenizer = make_tokenizer(WORDS, model_max_length=16)
    torch.manual_seed(0)
    transformer = PixArtTransformer2DModel(
        sample_size=8, num_layers=2, patch_size=2, attention_head_dim=8, num_attention_heads=3, caption_channels=HIDDEN,
        in_channels=4, cross_attention_dim=24, out_channels=8, attention_bias=True, activation_fn="gelu-approximate",
        num_embeds_ada_norm=1000, norm_type="ada_norm_single", norm_elementwise_affine=False, norm_eps=1e-6,
    ).eval()
    pipe = (cls or PixArtAlphaPipeline)(
        tokenizer=tokenizer, text_encoder=t5(tokenizer, 2), vae=_vae(), transformer=transformer,
        scheduler=scheduler or DPMSolverMultistepScheduler(),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
