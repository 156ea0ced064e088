"""Tiny SkyReels-V2 pipelines (text- and image-to-video) of the real diffusers classes, built in code, offline.

They reuse the tiny Wan parts (tests/builders/wan.py: T5 tokenizer and encoder of width 32, Wan VAE, 16x16 videos
of 5 frames) with a 2-layer ``SkyReelsV2Transformer3DModel`` of Wan's tiny config.
"""

from __future__ import annotations

import torch
from diffusers import SkyReelsV2ImageToVideoPipeline, SkyReelsV2Pipeline, SkyReelsV2Transformer3DModel
from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

from builders.wan import CALL, Z_DIM, _pipe, euler, image, transformer, unipc
from contract_case import Case


def _transformer(**extra):
    return transformer(cls=SkyReelsV2Transformer3DModel, **extra)


def skyreels_v2() -> Case:
    """Text-to-video: Wan's loop (conditional call in ``cache_context("cond")``, then ``"uncond"``)."""
    pipe = _pipe(SkyReelsV2Pipeline, transformer=_transformer())
    return Case(pipe, call=dict(CALL), schedulers=(lambda p: unipc(), euler), images_arg="num_videos_per_prompt")


def skyreels_v2_i2v() -> Case:
    """Image-to-video with a CLIP image encoder (``encoder_hidden_states_image``, the same in both passes); latents
    ++ (4 mask + 16 image latent channels). One video per prompt: ``__call__`` repeats the image embedding
    ``batch_size`` times only (as Wan 2.1's image-to-video)."""
    torch.manual_seed(0)
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=4, projection_dim=4, num_hidden_layers=2, num_attention_heads=2, image_size=4, intermediate_size=16,
        patch_size=1,
    )).eval()
    pipe = _pipe(SkyReelsV2ImageToVideoPipeline, transformer=_transformer(in_channels=2 * Z_DIM + 4, image_dim=4),
                 image_encoder=encoder, image_processor=CLIPImageProcessor(crop_size=4, size=4))
    return Case(pipe, call=dict(CALL, image=image()), schedulers=(lambda p: unipc(),), images_arg=None,
                full_grid=False)


CASES = {"SkyReelsV2Pipeline": skyreels_v2, "SkyReelsV2ImageToVideoPipeline": skyreels_v2_i2v}
