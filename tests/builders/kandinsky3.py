"""Tiny Kandinsky 3 pipelines (text-to-image, image-to-image), built in code, offline: a 2-layer T5 (width 32) on
the toy CLIP tokenizer (the pipeline pads to 128 tokens, then cuts to the longest prompt + 1), a small
``Kandinsky3UNet`` (2 layers per block: 1 breaks its up blocks) and a 2-level ``VQModel`` (MoVQ; its spatial norms
take multiples of 32 channels): 16x16 pixels -> 8x8 latents."""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler, DDPMScheduler, Kandinsky3Img2ImgPipeline, Kandinsky3Pipeline, Kandinsky3UNet, VQModel

from contract_case import Case
from negdelay.toy.tokenizer import make_tokenizer
from tiny import WORDS
from tiny_families import HIDDEN, t5

CALL = dict(height=16, width=16, guidance_scale=6.0, output_type="latent")
SCHEDULERS = ((lambda p: p.scheduler), (lambda p: DDIMScheduler.from_config(p.scheduler.config)))
# one image per prompt: the image-to-image pipeline repeats the images' latents per image, not per prompt
IMAGES = [torch.linspace(0, 1, 3 * 16 * 16).reshape(1, 3, 16, 16), torch.linspace(1, 0, 3 * 16 * 16).reshape(1, 3, 16, 16)]


def _parts():
    tokenizer = make_tokenizer(WORDS, model_max_length=128)
    torch.manual_seed(0)
    unet = Kandinsky3UNet(in_channels=4, time_embedding_dim=4, groups=2, attention_head_dim=4, layers_per_block=2,
                          block_out_channels=(8, 16), cross_attention_dim=4, encoder_hid_dim=HIDDEN).eval()
    torch.manual_seed(0)
    movq = VQModel(block_out_channels=(32, 32), down_block_types=("DownEncoderBlock2D", "AttnDownEncoderBlock2D"),
                   in_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=8, norm_type="spatial",
                   num_vq_embeddings=12, out_channels=3, up_block_types=("AttnUpDecoderBlock2D", "UpDecoderBlock2D"),
                   vq_embed_dim=4).eval()
    scheduler = DDPMScheduler(beta_start=0.00085, beta_end=0.012, steps_offset=1, beta_schedule="squaredcos_cap_v2",
                              clip_sample=True, thresholding=False)
    return dict(unet=unet, scheduler=scheduler, movq=movq, text_encoder=t5(tokenizer, 2), tokenizer=tokenizer)


def kandinsky3() -> Case:
    pipe = Kandinsky3Pipeline(**_parts())
    pipe.set_progress_bar_config(disable=True)
    return Case(pipe, call=dict(CALL), schedulers=SCHEDULERS)


def kandinsky3_img2img() -> Case:
    pipe = Kandinsky3Img2ImgPipeline(**_parts())
    pipe.set_progress_bar_config(disable=True)
    return Case(pipe, call={**CALL, "image": IMAGES, "strength": 0.8}, steps=5, schedulers=SCHEDULERS, full_grid=False)


CASES = {"Kandinsky3Pipeline": kandinsky3, "Kandinsky3Img2ImgPipeline": kandinsky3_img2img}
