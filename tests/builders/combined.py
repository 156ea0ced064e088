"""Tiny combined pipelines (Kandinsky 2.1 / 2.2, Stable Cascade), built in code, offline, from the pieces of the prior
and decoder builders (builders.kandinsky_prior, builders.kandinsky, builders.stable_cascade) and a tiny Kandinsky 2.2
UNet (image-embedding conditioned, no text).

Both loops run ``case.steps`` steps (``prior_num_inference_steps`` is set to the same), so a delay at step k is at
step k of each loop the negative reaches. Kandinsky's own negative is ``["", ""]``: with a negative the prior also
diffuses the negative's image embedding (the decoder's ``negative_image_embeds``), and A and B must have that same
structure. Stable Cascade's decoder runs CFG only with ``decoder_guidance_scale > 1`` (its default is 0)."""

from __future__ import annotations

import torch
from diffusers import (
    DDPMScheduler,
    DDPMWuerstchenScheduler,
    KandinskyCombinedPipeline,
    KandinskyImg2ImgCombinedPipeline,
    KandinskyInpaintCombinedPipeline,
    KandinskyV22CombinedPipeline,
    KandinskyV22Img2ImgCombinedPipeline,
    KandinskyV22InpaintCombinedPipeline,
    StableCascadeCombinedPipeline,
    UNet2DConditionModel,
)

from builders import kandinsky as k21
from builders import kandinsky_prior
from builders import stable_cascade as cascade
from contract_case import Case
from negdelay.toy.tokenizer import make_tokenizer
from tiny import WORDS
from tiny_families import HIDDEN

STEPS = 4
OWN_NEGATIVE = kandinsky_prior.OWN_NEGATIVE
IMAGES = k21.IMAGES  # one 16x16 image per prompt (the wrappers repeat a list per image embedding)
# inpainting takes tensors only, which the wrappers do not repeat: one per image embedding ([p1, p2, p1, p2]: the
# wrappers tile the prompts, not interleave them)
INPAINT = dict(image=torch.cat(IMAGES * 2), mask_image=torch.cat([k21.MASK[:1]] * 4))
PRIOR_CALL = dict(prior_num_inference_steps=STEPS, prior_guidance_scale=4.0, negative_prompt=OWN_NEGATIVE)
NO_CFG = dict(prior_guidance_scale=1.0, guidance_scale=1.0)


def _prior_parts() -> dict:
    return {f"prior_{name}": part for name, part in kandinsky_prior.components().items()}


def _quiet(pipe):
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _v22_unet(in_channels: int) -> UNet2DConditionModel:
    torch.manual_seed(0)
    return UNet2DConditionModel(
        in_channels=in_channels, out_channels=8, addition_embed_type="image", layers_per_block=1,
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn", block_out_channels=(8, 16), norm_num_groups=4,
        encoder_hid_dim=HIDDEN, encoder_hid_dim_type="image_proj", cross_attention_dim=HIDDEN, attention_head_dim=4,
        resnet_time_scale_shift="scale_shift", class_embed_type=None,
    ).eval()


def _kandinsky21(cls, full=False, steps=STEPS, **call):
    def build():
        tokenizer = make_tokenizer(WORDS, model_max_length=77)
        inpaint = cls is KandinskyInpaintCombinedPipeline
        pipe = cls(text_encoder=k21.mclip(tokenizer), tokenizer=tokenizer, unet=k21._unet(9 if inpaint else 4),
                   scheduler=DDPMScheduler(beta_schedule="linear", beta_start=0.00085, beta_end=0.012,
                                           clip_sample=False, prediction_type="epsilon"),
                   movq=k21._movq(), **_prior_parts())
        return Case(_quiet(pipe), call=dict(height=16, width=16, guidance_scale=4.0, output_type="pt", **PRIOR_CALL,
                                            **call), steps=steps, full_grid=full, no_cfg=dict(NO_CFG))
    return build


def _kandinsky22(cls, steps=STEPS, **call):
    def build():
        inpaint = cls is KandinskyV22InpaintCombinedPipeline
        pipe = cls(unet=_v22_unet(9 if inpaint else 4), movq=k21._movq(),
                   scheduler=DDPMScheduler(beta_schedule="linear", beta_start=0.00085, beta_end=0.012,
                                           clip_sample=False, prediction_type="epsilon"), **_prior_parts())
        return Case(_quiet(pipe), call=dict(height=16, width=16, guidance_scale=4.0, output_type="latent",
                                            **PRIOR_CALL, **call), steps=steps, full_grid=False, no_cfg=dict(NO_CFG))
    return build


def stable_cascade() -> Case:
    prior = cascade.prior().pipe
    decoder = cascade.decoder().pipe
    pipe = StableCascadeCombinedPipeline(
        tokenizer=decoder.tokenizer, text_encoder=decoder.text_encoder, decoder=decoder.decoder,
        scheduler=DDPMWuerstchenScheduler(), vqgan=decoder.vqgan, prior_prior=prior.prior,
        prior_text_encoder=prior.text_encoder, prior_tokenizer=prior.tokenizer,
        prior_scheduler=DDPMWuerstchenScheduler())
    return Case(_quiet(pipe), call=dict(height=64, width=64, prior_num_inference_steps=STEPS, prior_guidance_scale=4.0,
                                        decoder_guidance_scale=4.0, output_type="latent"),
                steps=STEPS, full_grid=False, no_cfg=dict(prior_guidance_scale=1.0, decoder_guidance_scale=1.0))


CASES = {
    "KandinskyCombinedPipeline": _kandinsky21(KandinskyCombinedPipeline, full=True),
    "KandinskyImg2ImgCombinedPipeline": _kandinsky21(KandinskyImg2ImgCombinedPipeline, image=IMAGES, strength=0.8),
    "KandinskyInpaintCombinedPipeline": _kandinsky21(KandinskyInpaintCombinedPipeline, **INPAINT),
    "KandinskyV22CombinedPipeline": _kandinsky22(KandinskyV22CombinedPipeline),
    "KandinskyV22Img2ImgCombinedPipeline": _kandinsky22(KandinskyV22Img2ImgCombinedPipeline, image=IMAGES,
                                                        strength=0.8),
    "KandinskyV22InpaintCombinedPipeline": _kandinsky22(KandinskyV22InpaintCombinedPipeline, **INPAINT),
    "StableCascadeCombinedPipeline": stable_cascade,
}
