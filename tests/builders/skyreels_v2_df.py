"""Tiny SkyReels-V2 diffusion forcing pipelines (text-, image- and video-to-video) of the real diffusers classes,
built in code, offline, from the tiny Wan parts (tests/builders/wan.py) and a 2-layer ``SkyReelsV2Transformer3DModel``.

Their loop runs one step per row of a step matrix (per-frame timesteps) and steps per-frame copies of the
scheduler, so negdelay counts steps by the progress bar (``steps="progress"``), as the contract's reference does.
The cases run synchronously (``ar_step=0``: the matrix has ``num_inference_steps`` rows, which the contract's
"start at N never switches" needs); tests/test_progress_steps.py proves the asynchronous matrix (more rows than
``num_inference_steps``) and a long video (several progress bars) against the same reference.
"""

from __future__ import annotations

from diffusers import (
    DPMSolverMultistepScheduler,
    SkyReelsV2DiffusionForcingImageToVideoPipeline,
    SkyReelsV2DiffusionForcingPipeline,
    SkyReelsV2DiffusionForcingVideoToVideoPipeline,
    SkyReelsV2Transformer3DModel,
)

from builders.wan import CALL, _pipe, image, transformer, unipc, video
from contract_case import Case


def _transformer():
    return transformer(cls=SkyReelsV2Transformer3DModel)


def dpm(pipe=None):
    """A second scheduler: DPM++ on flow sigmas (FlowMatchEuler refuses the step matrix's integer timesteps)."""
    return DPMSolverMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)


def df() -> Case:
    """Text-to-video: conditional call in ``cache_context("cond")``, then ``"uncond"``, per step-matrix row."""
    pipe = _pipe(SkyReelsV2DiffusionForcingPipeline, transformer=_transformer())
    return Case(pipe, call=dict(CALL), schedulers=(lambda p: unipc(), dpm), images_arg="num_videos_per_prompt")


def df_i2v() -> Case:
    """Image-to-video: the image's VAE latents are a clean prefix frame (no image encoder)."""
    pipe = _pipe(SkyReelsV2DiffusionForcingImageToVideoPipeline, transformer=_transformer())
    return Case(pipe, call=dict(CALL, image=image()), schedulers=(lambda p: unipc(),), images_arg=None,
                full_grid=False)


def df_v2v() -> Case:
    """Video-to-video: the input video's latents are a clean prefix, then new frames (9 frames from 5)."""
    pipe = _pipe(SkyReelsV2DiffusionForcingVideoToVideoPipeline, transformer=_transformer())
    return Case(pipe, call=dict(CALL, video=video(), num_frames=9, overlap_history=5), schedulers=(lambda p: unipc(),),
                images_arg=None, full_grid=False)


CASES = {
    "SkyReelsV2DiffusionForcingPipeline": df,
    "SkyReelsV2DiffusionForcingImageToVideoPipeline": df_i2v,
    "SkyReelsV2DiffusionForcingVideoToVideoPipeline": df_v2v,
}
