"""Tiny SD3 ControlNet pipelines (text-to-image, inpainting) on the components of tests/tiny_families.py
``tiny_sd3``: a 2-layer transformer and a 1-layer ``SD3ControlNetModel`` (4 latent channels; inpainting: one extra
mask channel) with its output blocks randomized (a fresh ControlNet's are zeros: its text rows would not reach the
output). The default ``force_zeros_for_pooled_projection`` stays on: the ControlNet's pooled projections are zeros,
as with real checkpoints. 16x16 pixels, ``max_sequence_length=8``.
"""

from __future__ import annotations

import torch
from diffusers import (
    FlowMatchEulerDiscreteScheduler,
    SD3ControlNetModel,
    SD3Transformer2DModel,
    StableDiffusion3ControlNetInpaintingPipeline,
    StableDiffusion3ControlNetPipeline,
)

from contract_case import Case
from tiny_families import HIDDEN, tiny_sd3

IMAGE = torch.linspace(0, 1, 3 * 16 * 16).reshape(1, 3, 16, 16)
MASK = (torch.arange(16 * 16).reshape(1, 1, 16, 16) % 16 >= 8).float()
SMALL = dict(height=16, width=16, output_type="latent", max_sequence_length=8)


def _controlnet(extra_channels=0):
    torch.manual_seed(1)
    net = SD3ControlNetModel(
        sample_size=8, patch_size=1, in_channels=4, num_layers=1, attention_head_dim=8, num_attention_heads=4,
        joint_attention_dim=HIDDEN, caption_projection_dim=HIDDEN, pooled_projection_dim=2 * HIDDEN, out_channels=4,
        extra_conditioning_channels=extra_channels,
    ).eval()
    with torch.no_grad():
        for block in net.controlnet_blocks:
            block.weight.normal_(0, 0.3)
    return net


def _transformer():
    """Two layers: the transformer adds ControlNet residuals only after blocks that keep their text stream (the
    last block does not)."""
    torch.manual_seed(0)
    return SD3Transformer2DModel(
        sample_size=8, patch_size=1, in_channels=4, num_layers=2, attention_head_dim=8, num_attention_heads=4,
        caption_projection_dim=HIDDEN, joint_attention_dim=HIDDEN, pooled_projection_dim=2 * HIDDEN, out_channels=4,
    ).eval()


def controlnet(cls, full=False, **call):
    def build():
        parts = {**tiny_sd3().components, "transformer": _transformer()}
        pipe = cls(**{k: v for k, v in parts.items() if k not in ("image_encoder", "feature_extractor")},
                   controlnet=_controlnet(1 if cls is StableDiffusion3ControlNetInpaintingPipeline else 0))
        pipe.set_progress_bar_config(disable=True)
        return Case(pipe, call={**SMALL, "control_image": IMAGE, **call}, full_grid=full, schedulers=(
            (lambda p: p.scheduler), (lambda p: FlowMatchEulerDiscreteScheduler(shift=1.0))))
    return build


CASES = {
    "StableDiffusion3ControlNetPipeline": controlnet(StableDiffusion3ControlNetPipeline, full=True),
    "StableDiffusion3ControlNetInpaintingPipeline": controlnet(
        StableDiffusion3ControlNetInpaintingPipeline, control_mask=MASK),
}
