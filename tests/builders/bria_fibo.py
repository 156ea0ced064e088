"""Tiny Bria Fibo and Bria Fibo Edit pipelines of the real diffusers classes, built in code, offline: the toy CLIP
tokenizer, a 2-layer ``SmolLM3ForCausalLM`` of width 32 (its vocabulary keeps the 128256 ids of the real one: the
pipeline encodes an empty text as token 128000), a ``BriaFiboTransformer2DModel`` with one block of each kind (as
diffusers' own tests), and an ``AutoencoderKLWan`` of the Wan 2.2 layout (2x2 patches, 16x; Fibo Edit encodes its
reference image with it; latents out): 32x32 pixels -> 2x2 latents -> 4 image tokens.

The pipeline pads the prompt and negative batches to the wider; the contract's own negative is its default, ``""``
(one token), so the joint mask is always given. Besides the contract's case, a delayed negative longer than the
prompts (every block and ``txt_ids`` widen), and one shorter than the pipeline's own (they narrow). Fibo Edit takes
edit-JSON prompts (``{"edit_instruction": ...}``) and one 32x32 reference image (its latents join the image tokens and
the joint mask)."""

from __future__ import annotations

import PIL.Image
import torch
from diffusers import (
    AutoencoderKLWan,
    BriaFiboEditPipeline,
    BriaFiboPipeline,
    BriaFiboTransformer2DModel,
    FlowMatchEulerDiscreteScheduler,
)
from transformers import SmolLM3Config, SmolLM3ForCausalLM

from contract_case import Case
from negdelay.toy.tokenizer import make_tokenizer
from tiny import WORDS

CALL = dict(height=32, width=32, guidance_scale=4.0, output_type="latent")
SCHEDULERS = ((lambda p: p.scheduler), (lambda p: FlowMatchEulerDiscreteScheduler(shift=3.0)))
LONG = ("ugly blurry photo of the dog with extra fingers", "bad hands and a blurry photo of the cat")


def _seeded(build):
    torch.manual_seed(0)
    return build().eval()


def _pipe(cls=BriaFiboPipeline):
    transformer = _seeded(lambda: BriaFiboTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=8, num_attention_heads=2,
        joint_attention_dim=64, text_encoder_dim=32, pooled_projection_dim=None, axes_dims_rope=[0, 4, 4]))
    vae = _seeded(lambda: AutoencoderKLWan(
        base_dim=4, decoder_base_dim=4, num_res_blocks=1, in_channels=12, out_channels=12, patch_size=2,
        scale_factor_spatial=16, scale_factor_temporal=4, temperal_downsample=[False, True, True], z_dim=16,
        dim_mult=[1, 1, 1, 1]))
    encoder = _seeded(lambda: SmolLM3ForCausalLM(SmolLM3Config(
        hidden_size=32, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
        vocab_size=128256)))
    pipe = cls(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=encoder,
               tokenizer=make_tokenizer(WORDS, model_max_length=64))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def bria_fibo() -> Case:
    return Case(_pipe(), call=dict(CALL), schedulers=SCHEDULERS)


def bria_fibo_longer_negative() -> Case:
    case = Case(_pipe(), call=dict(CALL), schedulers=SCHEDULERS, full_grid=False)
    case.negatives = lambda: list(LONG)
    return case


def bria_fibo_shorter_negative() -> Case:
    """The pipeline's own negatives longer than everything else, the delayed ones shorter than the prompts: every
    block and ``txt_ids`` narrow once the delayed negative takes over."""
    return Case(_pipe(), call=dict(CALL, negative_prompt=list(LONG)), schedulers=SCHEDULERS, full_grid=False)


def bria_fibo_edit() -> Case:
    image = PIL.Image.new("RGB", (32, 32), (200, 40, 90))
    return Case(_pipe(BriaFiboEditPipeline), call=dict(CALL, image=image), schedulers=SCHEDULERS, full_grid=False,
                prompts=('{"edit_instruction": "a red cat"}', '{"edit_instruction": "a blue dog"}'))


CASES = {"BriaFiboPipeline": bria_fibo, "BriaFiboPipeline[longer negative]": bria_fibo_longer_negative,
         "BriaFiboPipeline[shorter negative]": bria_fibo_shorter_negative, "BriaFiboEditPipeline": bria_fibo_edit}
