"""A tiny Helios pyramid pipeline of the real diffusers class, built in code, offline: the tiny Helios parts
(tests/builders/helios.py) with a two-stage ``HeliosScheduler``. 32x32 px (4x4 latents, 2x2 in the first stage),
one chunk of 2 latent frames, 2 + 2 steps in one progress bar.

Its stages each call ``scheduler.set_timesteps`` inside one progress bar (total: the stages' steps summed), so
negdelay counts steps by that bar (``steps="progress"``), as the contract's reference does: step 3 is the second
stage's second step. One chunk only, for the reason tests/builders/helios.py gives.
"""

from __future__ import annotations

from diffusers import HeliosPyramidPipeline, HeliosScheduler

from builders.helios import CALL, text_parts, transformer, vae
from contract_case import Case


def scheduler(pipe=None) -> HeliosScheduler:
    return HeliosScheduler(stages=2, stage_range=[0, 0.5, 1], gamma=0.25, use_dynamic_shifting=True)


def euler(pipe=None) -> HeliosScheduler:
    """A second scheduler: the Helios scheduler's Euler solver."""
    return HeliosScheduler(stages=2, stage_range=[0, 0.5, 1], gamma=0.25, use_dynamic_shifting=True,
                           scheduler_type="euler")


class _Pyramid(HeliosPyramidPipeline):
    """The real class, taking the contract's ``num_inference_steps`` as a check: the pyramid counts its steps per
    stage (``pyramid_num_inference_steps_list``), and the contract's steps must be their sum (the bar's total)."""

    def __call__(self, *args, num_inference_steps=None, **kwargs):
        stages = kwargs.get("pyramid_num_inference_steps_list")
        if num_inference_steps is not None and num_inference_steps != sum(stages):
            raise ValueError(f"num_inference_steps={num_inference_steps}: the stages run {stages} steps")
        return super().__call__(*args, **kwargs)


def pyramid() -> Case:
    """Text-to-video: per chunk one progress bar over the stages, conditional call in ``cache_context("cond")``, then
    ``"uncond"``. One video per prompt, as HeliosPipeline."""
    pipe = _Pyramid(**text_parts(), vae=vae(), transformer=transformer(), scheduler=scheduler())
    pipe.set_progress_bar_config(disable=True)
    call = dict(CALL, height=32, width=32, pyramid_num_inference_steps_list=[2, 2])
    return Case(pipe, call=call, schedulers=(scheduler, euler), images_arg=None)


CASES = {"HeliosPyramidPipeline": pyramid}
