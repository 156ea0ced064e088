"""Tiny AnimateDiff ControlNet pipelines (ControlNet, SparseControlNet, video-to-video ControlNet) of the real
diffusers classes, built in code, offline: tests/builders/animatediff.py's motion UNet, VAE and text parts with a
ControlNet of the UNet's sizes (2D for the ControlNet pipelines, motion blocks for SparseCtrl). 4 frames of 16x16.

One prompt per call for the two ControlNet pipelines (their ``check_inputs`` wants ``num_frames`` conditioning
frames, which ``prepare_video`` repeats only when it is one frame). Guess mode (``guess_mode=True`` or
``global_pool_conditions``) with CFG fails in all three stock pipelines (diffusers 0.42.1: the ControlNet's residuals
of the conditional rows are added to the UNet's two halves), so no case runs it; tests/test_animatediff_guess.py
checks the declaration's guard for it.
"""

from __future__ import annotations

import torch
from diffusers import (
    AnimateDiffControlNetPipeline,
    AnimateDiffSparseControlNetPipeline,
    AnimateDiffVideoToVideoControlNetPipeline,
    ControlNetModel,
    SparseControlNetModel,
)

from builders.animatediff import FRAMES, SMALL, VIDEO, _components, _euler
from contract_case import Case

UNET_SIZES = dict(block_out_channels=(8, 8), layers_per_block=1, in_channels=4, cross_attention_dim=32,
                  norm_num_groups=2, attention_head_dim=4, conditioning_embedding_out_channels=(8, 8))


def _reaching(net):
    """A fresh ControlNet's output convs are zeros: its text rows would not reach the output."""
    with torch.no_grad():
        torch.manual_seed(2)
        for conv in [*net.controlnet_down_blocks, net.controlnet_mid_block]:
            conv.weight.normal_(0, 0.3)
    return net.eval()


def _controlnet():
    torch.manual_seed(1)
    return _reaching(ControlNetModel(down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), **UNET_SIZES))


def _sparse():
    torch.manual_seed(1)
    return _reaching(SparseControlNetModel(down_block_types=("CrossAttnDownBlockMotion", "DownBlockMotion"),
                                           conditioning_channels=3, use_simplified_condition_embedding=False,
                                           motion_num_attention_heads=2, **UNET_SIZES))


def _case(cls, controlnet, full=False, **call):
    def build():
        pipe = cls(**_components(), controlnet=controlnet())
        pipe.unet.eval()
        pipe.set_progress_bar_config(disable=True)
        # every AnimateDiff __call__ sets num_videos_per_prompt = 1: no images-per-prompt argument
        return Case(pipe, call={**SMALL, **call}, images_arg=None, schedulers=((lambda p: p.scheduler), _euler),
                    full_grid=full)
    return build


# check_inputs wants num_frames conditioning frames, which prepare_video repeats only when it is one frame: one
# prompt per call (ONE_PROMPT) for the ControlNet pipelines
CONTROL = dict(num_frames=FRAMES, conditioning_frames=VIDEO)

ONE_PROMPT = frozenset({"AnimateDiffControlNetPipeline", "AnimateDiffVideoToVideoControlNetPipeline"})

CASES = {
    "AnimateDiffControlNetPipeline": _case(AnimateDiffControlNetPipeline, _controlnet, full=True, **CONTROL),
    "AnimateDiffSparseControlNetPipeline": _case(AnimateDiffSparseControlNetPipeline, _sparse,
                                                 num_frames=FRAMES, conditioning_frames=VIDEO[:2],
                                                 controlnet_frame_indices=[0, 2]),
    "AnimateDiffVideoToVideoControlNetPipeline": _case(
        AnimateDiffVideoToVideoControlNetPipeline, _controlnet, video=VIDEO, conditioning_frames=VIDEO,
        strength=0.8, num_inference_steps=5),
}
