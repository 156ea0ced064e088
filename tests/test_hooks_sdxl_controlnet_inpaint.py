"""``negdelay.apply`` on ``StableDiffusionXLControlNetInpaintPipeline``, whose step-end callback does not take
``add_text_embeds`` back (so no callback can swap the pooled negative).

One hook on the UNet and one on the ControlNet replace the first half of ``encoder_hidden_states`` and of
``added_cond_kwargs["text_embeds"]`` (in guess mode the ControlNet gets only the conditional rows and is left
alone). The reference (no hooks) wraps both models' ``forward`` and substitutes the rows captured from a stock call
that used the negative as ``negative_prompt``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, EulerDiscreteScheduler, StableDiffusionXLControlNetInpaintPipeline
from tiny_families import no_change, reference, tiny_sdxl_controlnet

import negdelay
from negdelay.pipelines import declaration_for
from negdelay import DelayedNegative, hooks

PROMPTS = ["a girl eating pizza", "a photo of a cat"]
NEGS = ["glasses", "blurry dog"]
IMAGE = torch.linspace(0, 1, 3 * 16 * 16).reshape(1, 3, 16, 16)
MASK = (torch.arange(16 * 16).reshape(1, 1, 16, 16) % 16 >= 8).float()
KW = dict(image=IMAGE, mask_image=MASK, control_image=IMAGE, strength=0.8, num_inference_steps=5, height=16, width=16)
STEPS = 4  # int(5 * 0.8)


def make(scheduler=None):
    return tiny_sdxl_controlnet(scheduler, cls=StableDiffusionXLControlNetInpaintPipeline)


def run(pipe, negative_prompt=None, **kw):
    return pipe(PROMPTS, negative_prompt=negative_prompt, generator=torch.Generator().manual_seed(0),
                **{**KW, "output_type": "np", **kw}).images


def captured(pipe, n_images=1):
    with reference(pipe, "unet", no_change) as calls:
        run(pipe, NEGS, output_type="latent")
    first = calls[0][1]
    return {"tokens": first["encoder_hidden_states"][:2].repeat_interleave(n_images, 0).clone(),
            "pooled": first["added_cond_kwargs"]["text_embeds"][:2].repeat_interleave(n_images, 0).clone()}


def swap(neg, steps, parts=("tokens", "pooled")):
    n = len(neg["tokens"])

    def change(step, index, kwargs):
        if not steps(step) or kwargs["encoder_hidden_states"].shape[0] != 2 * n:  # guess mode's ControlNet: 1x
            return
        if "tokens" in parts:
            kwargs["encoder_hidden_states"] = torch.cat([neg["tokens"], kwargs["encoder_hidden_states"][n:]])
        if "pooled" in parts:
            added = kwargs["added_cond_kwargs"]
            kwargs["added_cond_kwargs"] = {**added, "text_embeds": torch.cat([neg["pooled"], added["text_embeds"][n:]])}

    return change


@pytest.mark.parametrize("sched", ["euler", "ddim"])
@pytest.mark.parametrize("guess_mode", [False, True])
@pytest.mark.parametrize("k", [1, 2])
def test_equals_reference(sched, guess_mode, k):
    base = {"euler": None, "ddim": DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                                 steps_offset=1, clip_sample=False)}[sched]
    pipe = make(base)
    assert declaration_for(pipe).family == "Stable Diffusion XL"
    neg = captured(pipe, n_images=2)
    with negdelay.apply(pipe, NEGS, start_step=k):
        got = run(pipe, ["", ""], num_images_per_prompt=2, guess_mode=guess_mode)
    with reference(pipe, ("controlnet", "unet"), swap(neg, lambda s: s >= k)) as calls:
        want = run(pipe, ["", ""], num_images_per_prompt=2, guess_mode=guess_mode)
    assert len(calls) == 2 * STEPS and max(s for s, _ in calls) == STEPS - 1
    assert got.shape == (4, 16, 16, 3)
    assert np.array_equal(got, want)
    assert not np.array_equal(got, run(pipe, ["", ""], num_images_per_prompt=2, guess_mode=guess_mode))


def test_force_zeros_kept_before_the_switch_and_never_switching_is_stock():
    """negative_prompt=None: the SDXL default unconditional rows are zeros; they stay until the switch."""
    pipe = make(EulerDiscreteScheduler.from_config(make().scheduler.config))
    stock = run(pipe)
    with negdelay.apply(pipe, NEGS, start_step=STEPS):
        assert np.array_equal(run(pipe), stock)
    neg = captured(pipe)
    with negdelay.apply(pipe, NEGS, start_step=2):
        got = run(pipe)
    with reference(pipe, ("controlnet", "unet"), swap(neg, lambda s: s >= 2)):
        assert np.array_equal(got, run(pipe))
    assert not hooks.is_applied(pipe)
    assert np.array_equal(run(pipe), stock)


def test_for_pipeline_points_to_apply():
    pipe = make()
    with pytest.raises(TypeError, match=r"StableDiffusionXLControlNetInpaintPipeline is not supported.*negdelay\.apply"):
        DelayedNegative.for_pipeline(pipe, "glasses", start_step=2)
