"""``negdelay.apply`` on the Flux pipelines whose true-CFG pass has no ``cache_context``: img2img, inpaint,
ControlNet and Kontext call the transformer twice per step, conditional first, unconditional second.

The reference (no hooks) wraps ``transformer.forward`` and, for every second call of the chosen progress-bar
steps, substitutes ``encoder_hidden_states`` and ``pooled_projections`` captured from a stock call that used the
negative as ``negative_prompt``. Outputs are compared with ``np.array_equal``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import (
    FluxImg2ImgPipeline,
    FluxInpaintPipeline,
    FluxKontextInpaintPipeline,
    FluxKontextPipeline,
)
from builders.flux import controlnet as _controlnet
from tiny_families import no_change, reference, tiny_flux

import negdelay

PROMPTS = ["a girl eating pizza", "a photo of a cat"]
NEGS = ["glasses", "blurry dog"]
IMAGE = torch.linspace(0, 1, 3 * 16 * 16).reshape(1, 3, 16, 16)
MASK = (torch.arange(16 * 16).reshape(1, 1, 16, 16) % 16 >= 8).float()


#: name -> (pipeline from the tiny Flux parts, call arguments, progress-bar steps that run)
VARIANTS = {
    "img2img": (lambda b: FluxImg2ImgPipeline(**b.components), dict(image=IMAGE, strength=0.6, num_inference_steps=10), 6),
    "inpaint": (
        lambda b: FluxInpaintPipeline(**b.components),
        dict(image=IMAGE, mask_image=MASK, strength=0.8, num_inference_steps=5), 4,
    ),
    "controlnet": (_controlnet, dict(control_image=IMAGE, controlnet_conditioning_scale=0.7, num_inference_steps=5), 5),
    "kontext": (
        lambda b: FluxKontextPipeline(**b.components), dict(image=IMAGE, _auto_resize=False, max_area=16 * 16, num_inference_steps=5), 5,
    ),
    "kontext_inpaint": (
        lambda b: FluxKontextInpaintPipeline(**b.components),
        dict(image=IMAGE, mask_image=MASK, strength=0.8, _auto_resize=False, max_area=16 * 16, num_inference_steps=5), 4,
    ),
}


def make(name):
    pipe = VARIANTS[name][0](tiny_flux())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run(pipe, name, negative_prompt=("", ""), **kw):
    args = {**VARIANTS[name][1], "height": 16, "width": 16, "max_sequence_length": 8, "true_cfg_scale": 3.0,
            "output_type": "np", **kw}
    return pipe(prompt=PROMPTS, negative_prompt=list(negative_prompt), generator=torch.Generator().manual_seed(0), **args).images


def captured(pipe, name, **kw):
    with reference(pipe, "transformer", no_change) as calls:
        run(pipe, name, negative_prompt=NEGS, output_type="latent", **kw)
    unconditional = calls[1][1]
    return unconditional["encoder_hidden_states"].clone(), unconditional["pooled_projections"].clone()


def swap(tokens, pooled, steps):
    def change(step, index, kwargs):
        if index % 2 == 1 and steps(step):
            kwargs["encoder_hidden_states"], kwargs["pooled_projections"] = tokens, pooled

    return change


def test_full_run_from_step_0_rows_equal_stock_negative():
    """The reference is sound: substituting from step 0 reproduces the stock negative, and the pooled row matters."""
    pipe = make("img2img")
    tokens, pooled = captured(pipe, "img2img")
    with reference(pipe, "transformer", swap(tokens, pooled, lambda s: True)):
        assert np.array_equal(run(pipe, "img2img"), run(pipe, "img2img", negative_prompt=NEGS))
    with reference(pipe, "transformer", swap(tokens, pooled, lambda s: s >= 2)):
        both = run(pipe, "img2img")

    def tokens_only(step, index, kwargs):
        if index % 2 == 1 and step >= 2:
            kwargs["encoder_hidden_states"] = tokens

    with reference(pipe, "transformer", tokens_only):
        assert np.abs(run(pipe, "img2img") - both).max() > 1e-4


def test_without_true_cfg_warns_and_changes_nothing():
    pipe = make("img2img")
    kw = {**VARIANTS["img2img"][1], "height": 16, "width": 16, "max_sequence_length": 8, "output_type": "np"}
    stock = pipe(prompt=PROMPTS, generator=torch.Generator().manual_seed(0), **kw).images
    with negdelay.apply(pipe, "glasses", start_step=2):
        with pytest.warns(UserWarning, match="ran no unconditional pass.*true_cfg_scale > 1"):
            got = pipe(prompt=PROMPTS, generator=torch.Generator().manual_seed(0), **kw).images
    assert np.array_equal(got, stock)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_for_pipeline_points_to_apply(name):
    from negdelay import DelayedNegative

    pipe = make(name)
    with pytest.raises(TypeError, match=rf"{type(pipe).__name__} is not supported by a delayed-negative callback.*negdelay\.apply"):
        DelayedNegative.for_pipeline(pipe, "glasses", start_step=2)
