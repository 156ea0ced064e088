"""A tiny Lucy Edit pipeline of the real diffusers class, built in code, offline: Wan's tiny parts
(tests/builders/wan.py) with a 2-layer ``WanTransformer3DModel`` taking the noisy latents ++ the source video's
latents (16 + 16 channels); a 5-frame 16x16 source video."""

from __future__ import annotations

from diffusers import LucyEditPipeline

from builders.wan import BOUNDARY_RATIO, CALL, Z_DIM, _pipe, euler, transformer, unipc, video
from contract_case import Case


def lucy_edit() -> Case:
    """Video editing on Wan's loop: conditional call in ``cache_context("cond")``, unconditional in ``"uncond"``.
    One prompt, one video: the source video's latents are encoded once (batch 1) and ``prepare_latents`` asserts
    they have the noise's shape, so any batch above 1 fails in the stock pipeline."""
    pipe = _pipe(LucyEditPipeline, transformer=transformer(in_channels=2 * Z_DIM, out_channels=Z_DIM))
    return Case(pipe, call=dict(CALL, video=video()), schedulers=(lambda p: unipc(), euler), images_arg=None,
                prompts="a red cat")


def lucy_edit_two_experts() -> Case:
    """Wan 2.2 A14B-style: ``transformer`` above ``boundary_ratio``, ``transformer_2`` below (2 + 2 steps)."""
    model = dict(in_channels=2 * Z_DIM, out_channels=Z_DIM)
    pipe = _pipe(LucyEditPipeline, transformer=transformer(0, **model), transformer_2=transformer(1, **model),
                 boundary_ratio=BOUNDARY_RATIO)
    return Case(pipe, call=dict(CALL, video=video()), schedulers=(lambda p: unipc(),), images_arg=None,
                prompts="a red cat", full_grid=False)


CASES = {"LucyEditPipeline": lucy_edit, "LucyEditPipeline[two experts]": lucy_edit_two_experts}
