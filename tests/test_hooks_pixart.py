"""``negdelay.apply`` on PixArt-Alpha/Sigma: one batched transformer call per step, ``[unconditional, conditional]``
rows, with the T5 attention mask as a second text input, no ``callback_on_step_end`` and no guidance property.

The reference (no hooks) wraps ``transformer.forward`` and, at the chosen progress-bar steps, puts into the first
half of ``encoder_hidden_states`` and ``encoder_attention_mask`` the rows a stock call made for the negative.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler, PixArtSigmaPipeline, PNDMScheduler
from tiny_families import no_change, reference, tiny_pixart

import negdelay
from negdelay.pipelines import declaration_for

PROMPTS = ["a girl eating pizza", "a photo of a cat"]
NEGS = ["glasses", "blurry dog"]
STEPS = 5
INPUTS = ("encoder_hidden_states", "encoder_attention_mask")
KW = dict(height=16, width=16, max_sequence_length=8, clean_caption=False, use_resolution_binning=False)

SCHEDULERS = {  # DDIM and PNDM have no step_index: the hook counts the batched calls of the run
    "dpm++2m": DPMSolverMultistepScheduler,
    "euler": EulerDiscreteScheduler,
    "ddim": DDIMScheduler,
    "pndm": lambda: PNDMScheduler(skip_prk_steps=True),
}


def run(pipe, negative_prompt=("", ""), prompt=PROMPTS, **kw):
    args = {"num_inference_steps": STEPS, "output_type": "np", **KW, **kw}
    return pipe(list(prompt), negative_prompt=list(negative_prompt), generator=torch.Generator().manual_seed(0), **args).images


def captured(pipe, negative_prompt, n_rows, **kw):
    with reference(pipe, "transformer", no_change) as calls:
        run(pipe, negative_prompt, output_type="latent", **kw)
    first = calls[0][1]
    return {name: first[name][:n_rows].clone() for name in INPUTS}


def swap(neg, steps):
    n = len(neg["encoder_hidden_states"])

    def change(step, index, kwargs):
        if steps(step):
            for name in INPUTS:
                kwargs[name] = torch.cat([neg[name], kwargs[name][n:]])

    return change


@pytest.mark.parametrize("sched", list(SCHEDULERS))
@pytest.mark.parametrize("k", [1, 3])
def test_equals_reference(sched, k):
    pipe = tiny_pixart(SCHEDULERS[sched]())
    assert declaration_for(pipe).mode == "batched"
    neg = captured(pipe, NEGS, 4, num_images_per_prompt=2)
    assert not torch.equal(neg["encoder_attention_mask"][0], neg["encoder_attention_mask"][2])  # masks differ per text
    with negdelay.apply(pipe, NEGS, start_step=k):
        got = run(pipe, num_images_per_prompt=2)
    with reference(pipe, "transformer", swap(neg, lambda s: s >= k)) as calls:
        want = run(pipe, num_images_per_prompt=2)
    assert max(s for s, _ in calls) == STEPS - 1
    assert got.shape == (4, 16, 16, 3)
    assert np.array_equal(got, want)
    assert not np.array_equal(got, run(pipe, num_images_per_prompt=2))


def test_sigma_pipeline_fraction_and_stop():
    pipe = tiny_pixart(cls=PixArtSigmaPipeline)
    neg = captured(pipe, NEGS, 2)
    with negdelay.apply(pipe, NEGS, start_fraction=0.2, stop_step=4):  # steps 1..3
        got = run(pipe)
    assert np.array_equal(got, tiny_ref(pipe, swap(neg, lambda s: 1 <= s < 4)))


def tiny_ref(pipe, change, **kw):
    with reference(pipe, "transformer", change):
        return run(pipe, **kw)


def test_encoding_follows_the_calls_own_arguments():
    """The negative is encoded with the arguments of the pipeline's own encode_prompt call (clean_caption,
    max_sequence_length): apply() takes no encoding options."""
    pipe = tiny_pixart()
    neg = captured(pipe, ["GLASSES", "Blurry Dog"], 2)
    with negdelay.apply(pipe, ["GLASSES", "Blurry Dog"], start_step=2):
        got = run(pipe)
    assert np.array_equal(got, tiny_ref(pipe, swap(neg, lambda s: s >= 2)))
    with pytest.raises(TypeError, match=r"unknown arguments \['clean_caption'\].*allowed extra negatives: \[\]"):
        negdelay.apply(pipe, "glasses", start_step=2, clean_caption=False)


def test_without_guidance_changes_nothing_even_with_equal_latent_halves():
    """guidance_scale=1: no unconditional rows. Two images from the same latents and prompt make the halves of the
    transformer's input equal; the hook reads the pipeline's own decision and leaves them alone."""
    pipe = tiny_pixart()
    latents = torch.randn(1, 4, 2, 2, generator=torch.Generator().manual_seed(1)).repeat(2, 1, 1, 1)
    kw = dict(guidance_scale=1.0, latents=latents)
    stock = run(pipe, prompt=[PROMPTS[0]] * 2, **kw)
    with negdelay.apply(pipe, "glasses", start_step=1):
        got = run(pipe, prompt=[PROMPTS[0]] * 2, **kw)
        guided_after = run(pipe, prompt=[PROMPTS[0]] * 2, latents=latents)  # same hook, next call guided
    assert np.array_equal(got, stock)
    with negdelay.apply(pipe, "glasses", start_step=1):
        guided_fresh = run(pipe, prompt=[PROMPTS[0]] * 2, latents=latents)
    assert np.array_equal(guided_after, guided_fresh)  # the guidance decision is made per call
    assert not np.array_equal(guided_fresh, run(pipe, prompt=[PROMPTS[0]] * 2, latents=latents))


def test_for_pipeline_points_to_apply():
    from negdelay import DelayedNegative

    with pytest.raises(TypeError, match=r"PixArtAlphaPipeline is not supported by a delayed-negative callback.*negdelay\.apply"):
        DelayedNegative.for_pipeline(tiny_pixart(), "glasses", start_step=2)
