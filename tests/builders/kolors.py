"""Tiny Kolors pipelines (text-to-image, img2img): the tiny ChatGLM3 of tests/tiny_chatglm.py (hidden 32) and an
SDXL-style UNet (cross-attention 32, pooled 32 + 6 time ids x 8); 16x16 pixels, ``max_sequence_length=12``."""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler, EulerDiscreteScheduler, UNet2DConditionModel
# the modules, not ``diffusers.Kolors*``: without sentencepiece installed diffusers exports placeholders
from diffusers.pipelines.kolors.pipeline_kolors import KolorsPipeline
from diffusers.pipelines.kolors.pipeline_kolors_img2img import KolorsImg2ImgPipeline

from contract_case import Case
from tiny_chatglm import TinyChatGLMTokenizer, tiny_chatglm
from tiny_families import _vae

IMAGE = torch.linspace(0, 1, 3 * 16 * 16).reshape(1, 3, 16, 16)
SMALL = dict(height=16, width=16, output_type="latent", max_sequence_length=12)


def _unet():
    torch.manual_seed(0)
    return UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, norm_num_groups=4, attention_head_dim=4, use_linear_projection=True,
        addition_embed_type="text_time", addition_time_embed_dim=8, projection_class_embeddings_input_dim=8 * 6 + 32,
    ).eval()


def _ddim(pipe):
    return DDIMScheduler.from_config(pipe.scheduler.config)


def kolors(cls, full=False, **call):
    def build():
        tokenizer = TinyChatGLMTokenizer()
        pipe = cls(vae=_vae(), text_encoder=tiny_chatglm(tokenizer), tokenizer=tokenizer, unet=_unet(),
                   scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                                    timestep_spacing="leading", steps_offset=1),
                   image_encoder=None, feature_extractor=None)
        pipe.set_progress_bar_config(disable=True)
        return Case(pipe, call={**SMALL, **call}, schedulers=((lambda p: p.scheduler), _ddim), full_grid=full)
    return build


CASES = {
    "KolorsPipeline": kolors(KolorsPipeline, full=True),
    "KolorsImg2ImgPipeline": kolors(KolorsImg2ImgPipeline, image=IMAGE, strength=0.8, num_inference_steps=5),
}
