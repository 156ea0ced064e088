"""A tiny ChronoEdit pipeline of the real diffusers class, built in code, offline: Wan 2.1 image-to-video's tiny
parts (tests/builders/wan.py: T5 of width 32, Wan VAE, a CLIP vision encoder of width 4) with a 2-layer
``ChronoEditTransformer3DModel`` (36 input channels: latents ++ 4 mask + 16 image-latent channels); 16x16 px,
5 frames."""

from __future__ import annotations

import torch
from diffusers import ChronoEditPipeline, ChronoEditTransformer3DModel
from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

from builders.wan import CALL, Z_DIM, _pipe, euler, image, transformer, unipc
from contract_case import Case


def _chronoedit():
    torch.manual_seed(0)
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=4, projection_dim=4, num_hidden_layers=2, num_attention_heads=2, image_size=4, intermediate_size=16,
        patch_size=1,
    )).eval()
    return _pipe(ChronoEditPipeline, transformer=transformer(cls=ChronoEditTransformer3DModel,
                                                             in_channels=2 * Z_DIM + 4, image_dim=4),
                 image_encoder=encoder, image_processor=CLIPImageProcessor(crop_size=4, size=4))


def chronoedit() -> Case:
    """Two transformer calls per step, no cache context: conditional, then unconditional. One video per prompt:
    ``__call__`` repeats the image embedding ``batch_size`` times only (as Wan 2.1 image-to-video)."""
    return Case(_chronoedit(), call=dict(CALL, image=image()), schedulers=(lambda p: unipc(), lambda p: euler()),
                images_arg=None)  # the first is the pipeline's own (UniPC)


def chronoedit_temporal_reasoning() -> Case:
    """Temporal reasoning: after 2 steps the latents keep only their first and last frames."""
    call = dict(CALL, image=image(), num_frames=9, enable_temporal_reasoning=True, num_temporal_reasoning_steps=2)
    return Case(_chronoedit(), call=call, schedulers=(lambda p: unipc(),), images_arg=None, full_grid=False)


CASES = {"ChronoEditPipeline": chronoedit, "ChronoEditPipeline[temporal reasoning]": chronoedit_temporal_reasoning}
