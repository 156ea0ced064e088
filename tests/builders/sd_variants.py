"""Tiny Stable Diffusion descendants (depth-to-image, x4 and latent upscalers, Stable unCLIP, T2I-Adapter,
InstructPix2Pix SD and SDXL), built in code on the text encoders of tests/tiny.py and tests/tiny_families.py.

Each UNet is the tiny SD one (8/16 channels, 2 levels, cross-attention 32) with the inputs its pipeline concatenates:
depth 4+1 channels, x4 upscaler 4+3 (noise level as class label), InstructPix2Pix 4+4, latent upscaler 4+4 with
K-blocks and ``timestep_cond`` = 128 noise-level columns + the pooled text (32). 16x16 pixels, 8x8 latents.
"""

from __future__ import annotations

import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    DDPMScheduler,
    EulerDiscreteScheduler,
    StableDiffusionAdapterPipeline,
    StableDiffusionDepth2ImgPipeline,
    StableDiffusionInstructPix2PixPipeline,
    StableDiffusionLatentUpscalePipeline,
    StableDiffusionUpscalePipeline,
    StableDiffusionXLInstructPix2PixPipeline,
    PriorTransformer,
    StableUnCLIPImg2ImgPipeline,
    StableUnCLIPPipeline,
    T2IAdapter,
    UNet2DConditionModel,
)
from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import StableUnCLIPImageNormalizer

from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from contract_case import Case
from negdelay.toy.tokenizer import make_tokenizer
from tiny import WORDS, tiny_text_encoder
from tiny_families import clip, tiny_sdxl

IMAGE = torch.linspace(0, 1, 3 * 16 * 16).reshape(1, 3, 16, 16)
SMALL = dict(height=16, width=16, output_type="latent")


def _quiet(pipe):
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _unet(in_channels=4, out_channels=4, **extra):
    torch.manual_seed(0)
    config = dict(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=in_channels,
        out_channels=out_channels, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32, norm_num_groups=4,
        attention_head_dim=4,
    )
    return UNet2DConditionModel(**{**config, **extra}).eval()


def _vae(**extra):
    torch.manual_seed(0)
    return AutoencoderKL(
        block_out_channels=(8, 16), in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=4, **extra,
    ).eval()


def _text():
    tokenizer = make_tokenizer(WORDS, model_max_length=12)
    return dict(tokenizer=tokenizer, text_encoder=tiny_text_encoder(tokenizer))


def _ddim(**extra):
    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                         set_alpha_to_one=False, steps_offset=1, **extra)


def _euler(pipe):
    return EulerDiscreteScheduler.from_config(pipe.scheduler.config)


def _same(pipe):
    return pipe.scheduler


def depth2img():
    pipe = StableDiffusionDepth2ImgPipeline(vae=_vae(), unet=_unet(in_channels=5), scheduler=_ddim(),
                                            depth_estimator=None, feature_extractor=None, **_text())
    depth = torch.linspace(0, 1, 16 * 16).reshape(1, 16, 16)
    return Case(_quiet(pipe), call=dict(image=IMAGE, depth_map=depth, strength=0.8, num_inference_steps=5,
                                        output_type="latent"), schedulers=(_same, _euler), full_grid=False)


def upscale():
    pipe = StableDiffusionUpscalePipeline(
        vae=_vae(scaling_factor=0.08333), unet=_unet(in_channels=7, num_class_embeds=400),
        low_res_scheduler=DDPMScheduler(), scheduler=_ddim(prediction_type="v_prediction"), **_text())
    image = torch.linspace(0, 1, 2 * 3 * 8 * 8).reshape(2, 3, 8, 8)  # one low-resolution image per prompt
    return Case(_quiet(pipe), call=dict(image=image, output_type="latent"), schedulers=(_same, _euler), full_grid=False)


def latent_upscale():
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        act_fn="gelu", attention_head_dim=8, norm_num_groups=None,
        block_out_channels=(32, 32, 64, 64),  # K-blocks: groups of 32 channels
        time_cond_proj_dim=128 + 32, conv_in_kernel=1, conv_out_kernel=1, cross_attention_dim=32,
        down_block_types=("KDownBlock2D",) + ("KCrossAttnDownBlock2D",) * 3, in_channels=8, mid_block_type=None,
        only_cross_attention=False, out_channels=5, resnet_time_scale_shift="scale_shift",
        time_embedding_type="fourier", timestep_post_act="gelu",
        up_block_types=("KCrossAttnUpBlock2D",) * 3 + ("KUpBlock2D",),
    ).eval()
    pipe = StableDiffusionLatentUpscalePipeline(
        vae=_vae(), unet=unet, scheduler=EulerDiscreteScheduler(prediction_type="sample"), **_text())
    latents = torch.linspace(-1, 1, 2 * 4 * 8 * 8).reshape(2, 4, 8, 8)  # one latent image per prompt
    return Case(_quiet(pipe), call=dict(image=latents, output_type="latent"), images_arg=None, full_grid=False)


def unclip_img2img():
    torch.manual_seed(0)
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(  # only its dtype is read: the embedding is given
        hidden_size=16, projection_dim=16, num_hidden_layers=1, num_attention_heads=2, image_size=8,
        intermediate_size=16, patch_size=4)).eval()
    pipe = StableUnCLIPImg2ImgPipeline(
        feature_extractor=None, image_encoder=encoder, image_normalizer=StableUnCLIPImageNormalizer(embedding_dim=16),
        image_noising_scheduler=DDPMScheduler(beta_schedule="squaredcos_cap_v2"), vae=_vae(), scheduler=_ddim(),
        unet=_unet(class_embed_type="projection", projection_class_embeddings_input_dim=32), **_text())
    embeds = torch.linspace(-1, 1, 2 * 16).reshape(2, 16)  # CLIP image embeddings (one per prompt), given
    return Case(_quiet(pipe), call=dict(image_embeds=embeds, **SMALL), schedulers=(_same, _euler), full_grid=False)


def unclip():
    prior_tokenizer = make_tokenizer(WORDS, model_max_length=12)
    torch.manual_seed(0)
    prior = PriorTransformer(num_attention_heads=2, attention_head_dim=12, embedding_dim=32, num_layers=1,
                             num_embeddings=12).eval()
    pipe = StableUnCLIPPipeline(
        prior_tokenizer=prior_tokenizer, prior_text_encoder=clip(prior_tokenizer, 5, projection=True), prior=prior,
        prior_scheduler=DDPMScheduler(variance_type="fixed_small_log", prediction_type="sample", clip_sample=True,
                                      clip_sample_range=5.0, beta_schedule="squaredcos_cap_v2"),
        image_normalizer=StableUnCLIPImageNormalizer(embedding_dim=32),
        image_noising_scheduler=DDPMScheduler(beta_schedule="squaredcos_cap_v2"), vae=_vae(), scheduler=_ddim(),
        unet=_unet(class_embed_type="projection", projection_class_embeddings_input_dim=64), **_text())
    return Case(_quiet(pipe), call=dict(prior_num_inference_steps=2, **SMALL), schedulers=(_same, _euler),
                full_grid=False)


def adapter():
    torch.manual_seed(0)
    net = T2IAdapter(in_channels=3, channels=[8, 16], num_res_blocks=1, downscale_factor=2,
                     adapter_type="full_adapter").eval()
    # the adapter's features enter the first block before its downsampler (cross-attention block) and the last after
    unet = _unet(down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                 up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))
    pipe = StableDiffusionAdapterPipeline(vae=_vae(), unet=unet, adapter=net, scheduler=_ddim(),
                                          safety_checker=None, feature_extractor=None, requires_safety_checker=False,
                                          **_text())
    return Case(_quiet(pipe), call=dict(image=IMAGE.repeat(2, 1, 1, 1), **SMALL), schedulers=(_same, _euler),
                full_grid=False)  # one adapter image per prompt


def pix2pix():
    pipe = StableDiffusionInstructPix2PixPipeline(vae=_vae(), unet=_unet(in_channels=8), scheduler=_ddim(),
                                                  safety_checker=None, feature_extractor=None,
                                                  requires_safety_checker=False, **_text())
    return Case(_quiet(pipe), call=dict(image=IMAGE, output_type="latent"), schedulers=(_same, _euler))


def pix2pix_xl():
    base = tiny_sdxl()
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config(base.unet.config, in_channels=8).eval()
    parts = {k: v for k, v in base.components.items() if k not in ("unet", "image_encoder", "feature_extractor")}
    pipe = StableDiffusionXLInstructPix2PixPipeline(**parts, unet=unet, add_watermarker=False)
    return Case(_quiet(pipe), call=dict(image=IMAGE, **SMALL), schedulers=(_same, _euler), full_grid=False)


CASES = {
    "StableDiffusionDepth2ImgPipeline": depth2img,
    "StableDiffusionUpscalePipeline": upscale,
    "StableDiffusionLatentUpscalePipeline": latent_upscale,
    "StableDiffusionInstructPix2PixPipeline": pix2pix,
    "StableDiffusionXLInstructPix2PixPipeline": pix2pix_xl,
}

CASES.update({
    "StableUnCLIPPipeline": unclip,
    "StableUnCLIPImg2ImgPipeline": unclip_img2img,
    "StableDiffusionAdapterPipeline": adapter,
})
