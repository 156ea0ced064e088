"""``negdelay.apply`` beyond the contract (tests/test_contract.py proves every served class the same way): sigma,
fraction and stop points, per-encoder negatives, per-row starts, idempotence, the no-unconditional-pass warning and
bad input, on tiny Flux with true CFG against a forward wrapper written without negdelay."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from tiny import tiny_sd
from tiny_families import no_change, reference, tiny_flux

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


def test_without_true_cfg_it_warns_and_changes_nothing():
    pipe = tiny_flux()
    stock = pipe(PROMPTS, generator=gen(), num_inference_steps=STEPS, output_type="np", height=16, width=16, max_sequence_length=8).images
    with negdelay.apply(pipe, "glasses", start_step=2):
        with pytest.warns(UserWarning, match="ran no unconditional pass.*true_cfg_scale > 1"):
            got = pipe(PROMPTS, generator=gen(), num_inference_steps=STEPS, output_type="np", height=16, width=16, max_sequence_length=8).images
    assert np.array_equal(got, stock)


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


def test_negative_encoded_once_while_nothing_it_depends_on_changes():
    """The hook reuses the last call's encoding when the call's encode_prompt arguments, the encoders' content and
    the tokenizers are unchanged (one text-encoder pass less per call); a change of max_sequence_length encodes anew."""
    pipe = tiny_flux()
    calls = []
    forward = pipe.text_encoder_2.forward
    pipe.text_encoder_2.forward = lambda *a, **k: calls.append(1) or forward(*a, **k)
    with negdelay.apply(pipe, NEGS, start_step=2):
        counts = []
        for kw in ({}, {}, {"max_sequence_length": 6}):
            calls.clear()
            run(pipe, **kw)
            counts.append(len(calls))
    assert counts == [3, 2, 3]  # prompt, own negative (+ the delayed negative when encoded)
