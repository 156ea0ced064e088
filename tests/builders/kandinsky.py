"""Tiny Kandinsky 2.1 decoders (text-to-image, image-to-image, inpainting), built in code, offline: a 2-layer
``MultilingualCLIP`` (XLM-RoBERTa, width 32) on the toy CLIP tokenizer (the pipelines pad every text to 77 tokens),
a small ``UNet2DConditionModel`` with Kandinsky's text+image projection and added embedding (``out_channels`` twice
the latents: learned-range variance), Kandinsky 3's tiny MoVQ: 16x16 pixels -> 8x8 latents. The prior's image
embeddings (``image_embeds``, ``negative_image_embeds``) are fixed tensors, one row per prompt."""

from __future__ import annotations

import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    KandinskyImg2ImgPipeline,
    KandinskyInpaintPipeline,
    KandinskyPipeline,
    UNet2DConditionModel,
    VQModel,
)
from diffusers.pipelines.kandinsky.text_encoder import MCLIPConfig, MultilingualCLIP

from contract_case import Case
from negdelay.toy.tokenizer import make_tokenizer
from tiny import WORDS

WIDTH = 32  # text width = cross-attention width = image-embedding width
EMBEDS = dict(image_embeds=torch.linspace(-1, 1, 2 * WIDTH).reshape(2, WIDTH),
              negative_image_embeds=torch.linspace(1, -1, 2 * WIDTH).reshape(2, WIDTH).cos())
CALL = dict(height=16, width=16, guidance_scale=4.0, output_type="pt", **EMBEDS)
# one image per prompt: image-to-image repeats the images' latents per image, not per prompt
IMAGES = [torch.linspace(0, 1, 3 * 16 * 16).reshape(1, 3, 16, 16),
          torch.linspace(1, 0, 3 * 16 * 16).reshape(1, 3, 16, 16)]
MASK = (torch.arange(16 * 16).reshape(1, 1, 16, 16) % 16 >= 8).float().repeat(2, 1, 1, 1)  # one per prompt too
# without guidance the pipelines do not repeat image_embeds per image (diffusers 0.42.1): one row per image given
NO_CFG = dict(guidance_scale=1.0, image_embeds=EMBEDS["image_embeds"].repeat_interleave(2, dim=0))
SCHEDULERS = ((lambda p: p.scheduler), (lambda p: DDPMScheduler.from_config(p.scheduler.config)))


def mclip(tokenizer, seed: int = 0) -> MultilingualCLIP:
    torch.manual_seed(seed)
    config = MCLIPConfig(numDims=WIDTH, transformerDimSize=WIDTH, imageDimSize=WIDTH, hidden_size=WIDTH,
                         intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, vocab_size=len(tokenizer),
                         pad_token_id=tokenizer.pad_token_id,  # XLM-R positions count from the pad id
                         max_position_embeddings=tokenizer.pad_token_id + 80)
    return MultilingualCLIP(config).eval()


def _unet(in_channels: int) -> UNet2DConditionModel:
    torch.manual_seed(0)
    return UNet2DConditionModel(
        in_channels=in_channels, out_channels=8, addition_embed_type="text_image", layers_per_block=1,
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        block_out_channels=(8, 16), norm_num_groups=4, encoder_hid_dim=WIDTH, encoder_hid_dim_type="text_image_proj",
        cross_attention_dim=WIDTH, attention_head_dim=4, resnet_time_scale_shift="scale_shift", class_embed_type=None,
    ).eval()


def _movq() -> VQModel:
    torch.manual_seed(0)
    return VQModel(block_out_channels=(32, 32), down_block_types=("DownEncoderBlock2D", "AttnDownEncoderBlock2D"),
                   in_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=8, norm_type="spatial",
                   num_vq_embeddings=12, out_channels=3, up_block_types=("AttnUpDecoderBlock2D", "UpDecoderBlock2D"),
                   vq_embed_dim=4).eval()


def _case(cls, full=False, steps=4, **call):
    def build():
        tokenizer = make_tokenizer(WORDS, model_max_length=77)
        scheduler = DDIMScheduler(beta_schedule="linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
                                  set_alpha_to_one=False, steps_offset=1, prediction_type="epsilon")
        pipe = cls(text_encoder=mclip(tokenizer), tokenizer=tokenizer, scheduler=scheduler, movq=_movq(),
                   unet=_unet(9 if cls is KandinskyInpaintPipeline else 4))
        pipe.set_progress_bar_config(disable=True)
        return Case(pipe, call={**CALL, **call}, steps=steps, schedulers=SCHEDULERS, full_grid=full,
                    no_cfg=dict(NO_CFG))
    return build


CASES = {
    "KandinskyPipeline": _case(KandinskyPipeline, full=True),
    "KandinskyImg2ImgPipeline": _case(KandinskyImg2ImgPipeline, image=IMAGES, strength=0.8, steps=5),
    "KandinskyInpaintPipeline": _case(KandinskyInpaintPipeline, image=torch.cat(IMAGES), mask_image=MASK),
}
