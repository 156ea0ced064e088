"""Tiny Stable Cascade prior (stage C) and decoder (stage B), built in code, offline: a 2-layer CLIP text encoder with
projection (width 32) on the toy CLIP tokenizer, small ``StableCascadeUNet`` s (two levels; their zero-initialised
output layer re-drawn, else every prediction is zero and no text matters), Paella's VQ model for the decoder
(``output_type="latent"`` skips it). The prior draws 2x2 latents of 16 channels (64x64 pixels at its resolution
multiple); the decoder takes those image embeddings (one per prompt) to 8x8x4 latents (``latent_dim_scale=4``)."""

from __future__ import annotations

import torch
from diffusers import (
    DDPMScheduler,
    DDPMWuerstchenScheduler,
    StableCascadeDecoderPipeline,
    StableCascadePriorPipeline,
    StableCascadeUNet,
)
from diffusers.pipelines.deprecated.wuerstchen.modeling_paella_vq_model import PaellaVQModel

from contract_case import Case
from negdelay.toy.tokenizer import make_tokenizer
from tiny import WORDS
from tiny_families import HIDDEN, clip

BLOCKS = (("SDCascadeResBlock", "SDCascadeTimestepBlock", "SDCascadeAttnBlock"),) * 2
# the decoder makes one image per image embedding: its num_images_per_prompt must stay 1 (it multiplies the images
# per prompt the embeddings imply, but not the embeddings); 4 embeddings = 2 images for each of the 2 prompts
EMBEDDINGS = torch.linspace(-1, 1, 4 * 16 * 2 * 2).reshape(4, 16, 2, 2)


def _unet(seed: int, **config) -> StableCascadeUNet:
    torch.manual_seed(seed)
    unet = StableCascadeUNet(conditioning_dim=16, block_out_channels=(16, 16), num_attention_heads=(2, 2),
                             down_num_layers_per_block=(1, 1), up_num_layers_per_block=(1, 1),
                             block_types_per_layer=BLOCKS, clip_text_pooled_in_channels=HIDDEN, dropout=(0.0, 0.0),
                             timestep_ratio_embedding_dim=16, **config).eval()
    with torch.no_grad():  # the output projection starts at zero
        unet.clf[1].weight.normal_(0, 0.3)
    return unet


def _ddpm(pipe):
    """The pipelines also run a standard scheduler (timestep ratios from its alphas, every timestep used)."""
    return DDPMScheduler(beta_schedule="squaredcos_cap_v2", clip_sample=False)


def _text():
    tokenizer = make_tokenizer(WORDS, model_max_length=12)
    return dict(tokenizer=tokenizer, text_encoder=clip(tokenizer, 0, projection=True))


def _quiet(pipe):
    pipe.set_progress_bar_config(disable=True)
    return pipe


def prior() -> Case:
    unet = _unet(0, in_channels=16, out_channels=16, clip_text_in_channels=HIDDEN, clip_image_in_channels=8,
                 switch_level=(False,))
    pipe = StableCascadePriorPipeline(prior=unet, scheduler=DDPMWuerstchenScheduler(), **_text())
    return Case(_quiet(pipe), call=dict(height=64, width=64, guidance_scale=4.0, output_type="pt"),
                schedulers=((lambda p: p.scheduler), _ddpm))


def decoder() -> Case:
    unet = _unet(1, in_channels=4, out_channels=4, effnet_in_channels=16, switch_level=None)
    torch.manual_seed(0)
    vqgan = PaellaVQModel(bottleneck_blocks=1, num_vq_embeddings=2, levels=2, embed_dim=4, latent_channels=4,
                          in_channels=3, out_channels=3, up_down_scale_factor=2).eval()
    pipe = StableCascadeDecoderPipeline(decoder=unet, scheduler=DDPMWuerstchenScheduler(), vqgan=vqgan,
                                        latent_dim_scale=4.0, **_text())
    return Case(_quiet(pipe), call=dict(image_embeddings=EMBEDDINGS, guidance_scale=4.0, output_type="latent"),
                images_arg=None, full_grid=False)


CASES = {"StableCascadePriorPipeline": prior, "StableCascadeDecoderPipeline": decoder}

