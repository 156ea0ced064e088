"""Proofs for ``negdelay.apply`` / ``negdelay.remove`` (diffusers ModelHook on the denoiser).

Flux with true CFG runs the unconditional pass as a second transformer call per step. The reference wraps
``transformer.forward`` (no hooks, no callbacks) and, for every second call (the unconditional one) of the
chosen progress-bar steps, replaces ``encoder_hidden_states`` and ``pooled_projections`` with those captured
from a stock call that used the negative as ``negative_prompt``. SD3 img2img (one batched call) is checked the
same way on the first half of the rows.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, StableDiffusion3Img2ImgPipeline
from tiny import tiny_sd
from tiny_families import no_change, reference, tiny_flux, tiny_sd3

import negdelay
from diffusers import DDPMPipeline, DDPMScheduler
from negdelay import hooks

PROMPTS = ["a girl eating pizza", "a photo of a cat"]
NEGS = ["glasses", "blurry dog"]
BASE = ["", ""]  # true CFG runs only with a negative_prompt: the pipeline's own "unconditional" text
KW = dict(height=16, width=16, max_sequence_length=8, true_cfg_scale=3.0)
STEPS = 5

SCHEDULERS = {
    "flow_euler": lambda: FlowMatchEulerDiscreteScheduler(),
    "flow_euler_shift3": lambda: FlowMatchEulerDiscreteScheduler(shift=3.0),
    "flow_euler_dynamic": lambda: FlowMatchEulerDiscreteScheduler(
        use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15, base_image_seq_len=16, max_image_seq_len=256
    ),
}


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def run(pipe, prompt=PROMPTS, negative_prompt=BASE, **kw):
    kw = {"num_inference_steps": STEPS, "output_type": "np", **KW, **kw}
    return pipe(prompt, negative_prompt=negative_prompt, generator=gen(), **kw).images


def captured(pipe, negative_prompt, **kw):
    """encoder_hidden_states and pooled_projections of the stock unconditional pass (the second call)."""
    with reference(pipe, "transformer", no_change) as calls:
        run(pipe, negative_prompt=negative_prompt, num_inference_steps=1, output_type="latent", **kw)
    assert len(calls) == 2
    kwargs = calls[1][1]
    return {"tokens": kwargs["encoder_hidden_states"].clone(), "pooled": kwargs["pooled_projections"].clone()}


def swap(neg, steps, parts=("tokens", "pooled")):
    def change(step, index, kwargs):
        if index % 2 == 1 and steps(step):  # calls alternate: conditional, unconditional
            if "tokens" in parts:
                kwargs["encoder_hidden_states"] = neg["tokens"]
            if "pooled" in parts:
                kwargs["pooled_projections"] = neg["pooled"]

    return change


def ref(pipe, change, **kw):
    with reference(pipe, "transformer", change) as calls:
        out = run(pipe, **kw)
    assert len(calls) == 2 * STEPS and max(s for s, _ in calls) == STEPS - 1
    return out


@pytest.mark.parametrize("name", list(SCHEDULERS))
@pytest.mark.parametrize("k", [1, 3])
def test_flux_true_cfg_equals_reference(name, k):
    pipe = tiny_flux(SCHEDULERS[name]())
    neg = captured(pipe, NEGS, num_images_per_prompt=2)
    with negdelay.apply(pipe, NEGS, start_step=k):
        got = run(pipe, num_images_per_prompt=2)
    want = ref(pipe, swap(neg, lambda s: s >= k), num_images_per_prompt=2)
    assert got.shape == (4, 16, 16, 3)
    assert np.array_equal(got, want)


def test_flux_reference_is_sound_pooled_matters_and_delay_matters():
    pipe = tiny_flux()
    neg = captured(pipe, NEGS)
    full = run(pipe, negative_prompt=NEGS)
    assert np.array_equal(ref(pipe, swap(neg, lambda s: True)), full)
    want = ref(pipe, swap(neg, lambda s: s >= 2))
    tokens_only = ref(pipe, swap(neg, lambda s: s >= 2, parts=("tokens",)))
    assert np.abs(want - tokens_only).max() > 1e-4  # a tokens-only swap would fail the reference test
    with negdelay.apply(pipe, NEGS, start_step=2):
        late = run(pipe)
    assert np.array_equal(late, want)
    assert np.abs(late - full).max() > 1e-4 and np.abs(late - run(pipe)).max() > 1e-4


def test_flux_sigma_fraction_stop_and_negative_prompt_2():
    pipe = tiny_flux()
    neg = captured(pipe, ["glasses"] * 2, negative_prompt_2=["blurry"] * 2)
    with reference(pipe, "transformer", no_change) as calls:
        run(pipe)
    sig = [float(kw["timestep"][0]) for s, kw in calls[::2]]  # the flow-matching sigma of each step (t / 1000)
    with negdelay.apply(pipe, "glasses", negative_prompt_2="blurry", start_sigma=(sig[1] + sig[2]) / 2, stop_fraction=0.8):
        got = run(pipe)  # from step 2 to step int(0.8 * 5) - 1 = 3
    assert np.array_equal(got, ref(pipe, swap(neg, lambda s: 2 <= s < 4)))


def test_per_row_starts_in_one_call():
    pipe = tiny_flux()
    neg = captured(pipe, ["glasses"] * 3, prompt=[PROMPTS[0]] * 3)
    starts = [1, 2, 9]

    def change(step, index, kwargs):
        if index % 2 == 1:
            rows = [neg["tokens"][r : r + 1] if step >= s else kwargs["encoder_hidden_states"][r : r + 1] for r, s in enumerate(starts)]
            pooled = [neg["pooled"][r : r + 1] if step >= s else kwargs["pooled_projections"][r : r + 1] for r, s in enumerate(starts)]
            kwargs["encoder_hidden_states"], kwargs["pooled_projections"] = torch.cat(rows), torch.cat(pooled)

    kw = dict(prompt=[PROMPTS[0]] * 3, negative_prompt=[""] * 3)
    with negdelay.apply(pipe, "glasses", start_step=starts):
        got = run(pipe, **kw)
    assert np.array_equal(got, ref(pipe, change, **kw))


def test_apply_is_idempotent_and_remove_restores_stock():
    pipe = tiny_flux()
    stock = run(pipe, num_images_per_prompt=2)
    negdelay.apply(pipe, NEGS, start_step=1)
    negdelay.apply(pipe, NEGS, start_step=2)  # replaces, does not stack
    assert list(pipe.transformer._diffusers_hook.hooks) == [hooks.HOOK_NAME]
    once = run(pipe, num_images_per_prompt=2)
    again = run(pipe, num_images_per_prompt=2)  # a second call with the same hook: same result
    negdelay.remove(pipe)
    negdelay.remove(pipe)  # nothing to remove: fine
    assert not hooks.is_applied(pipe)
    assert np.array_equal(run(pipe, num_images_per_prompt=2), stock)
    with negdelay.apply(pipe, NEGS, start_step=2) as handle:
        assert hooks.is_applied(pipe)
        inside = run(pipe, num_images_per_prompt=2)
    assert not hooks.is_applied(pipe)
    assert handle.last_plan[2] == (0, 0, 1, 1)
    assert np.array_equal(once, again) and np.array_equal(once, inside)
    assert not np.array_equal(once, stock)
    assert np.array_equal(run(pipe, num_images_per_prompt=2), stock)


def test_never_switching_equals_stock():
    pipe = tiny_flux()
    stock = run(pipe, num_images_per_prompt=2)
    for kw in (dict(start_step=STEPS), dict(start_fraction=1.0), dict(start_sigma=1e-6)):
        with negdelay.apply(pipe, NEGS, **kw):
            assert np.array_equal(run(pipe, num_images_per_prompt=2), stock)


def test_without_true_cfg_it_warns_and_changes_nothing():
    pipe = tiny_flux()
    stock = pipe(PROMPTS, generator=gen(), num_inference_steps=STEPS, output_type="np", height=16, width=16, max_sequence_length=8).images
    with negdelay.apply(pipe, "glasses", start_step=2):
        with pytest.warns(UserWarning, match="ran no unconditional pass.*true_cfg_scale > 1"):
            got = pipe(PROMPTS, generator=gen(), num_inference_steps=STEPS, output_type="np", height=16, width=16, max_sequence_length=8).images
    assert np.array_equal(got, stock)


def test_sd3_img2img_batched_pass():
    """SD3 img2img does not take the pooled embedding back from a callback; the hook swaps both halves' first half."""
    pipe = StableDiffusion3Img2ImgPipeline(**tiny_sd3().components)
    pipe.set_progress_bar_config(disable=True)
    image = torch.linspace(0, 1, 3 * 16 * 16).reshape(1, 3, 16, 16)
    kw = dict(image=image, strength=0.6, num_inference_steps=10, max_sequence_length=8, output_type="np")  # 6 steps run
    with reference(pipe, "transformer", no_change) as calls:
        pipe([""] * 2, negative_prompt=NEGS, generator=gen(), **{**kw, "output_type": "latent"})
    first = calls[0][1]
    neg = {"tokens": first["encoder_hidden_states"][:2].repeat_interleave(2, 0),
           "pooled": first["pooled_projections"][:2].repeat_interleave(2, 0)}

    def change(step, index, kwargs):
        if step >= 2:
            kwargs["encoder_hidden_states"] = torch.cat([neg["tokens"], kwargs["encoder_hidden_states"][4:]])
            kwargs["pooled_projections"] = torch.cat([neg["pooled"], kwargs["pooled_projections"][4:]])

    with negdelay.apply(pipe, NEGS, start_step=2):
        got = pipe(PROMPTS, generator=gen(), num_images_per_prompt=2, **kw).images
    with reference(pipe, "transformer", change) as calls:
        want = pipe(PROMPTS, generator=gen(), num_images_per_prompt=2, **kw).images
    assert max(s for s, _ in calls) == 5
    assert np.array_equal(got, want)
    stock = pipe(PROMPTS, generator=gen(), num_images_per_prompt=2, **kw).images
    assert not np.array_equal(got, stock)


def test_errors():
    sd = tiny_sd()
    assert hooks.supports(sd)  # every served pipeline, the SD family included
    negdelay.remove(sd)  # nothing applied: no error
    with pytest.raises(TypeError, match=r"negdelay does not serve DDPMPipeline: `negdelay pipelines` lists"):
        negdelay.apply(DDPMPipeline(unet=sd.unet, scheduler=DDPMScheduler()), "glasses", start_step=2)
    pipe = tiny_flux()
    assert hooks.supports(pipe)
    with pytest.raises(TypeError, match=r"unknown arguments \['negative_prompt_3'\]"):
        negdelay.apply(pipe, "glasses", start_step=2, negative_prompt_3="x")
    with pytest.raises(ValueError, match="start_step=0"):
        negdelay.apply(pipe, "glasses", start_step=0)
    with pytest.raises(ValueError, match="exactly one of start_step"):
        negdelay.apply(pipe, "glasses")
    with pytest.raises(TypeError, match="negative_prompt must be a str"):
        negdelay.apply(pipe, 3, start_step=2)
    with pytest.raises(ValueError, match="3 entries but the batch has 2 image rows"):
        with negdelay.apply(pipe, ["a", "b", "c"], start_step=2):
            run(pipe)
    assert not hooks.is_applied(pipe)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stock = run(pipe)
    assert np.array_equal(run(pipe), stock)
