"""Bit-exact proofs for the SD3 callback (``DelayedNegativeSD3``) against a callback-free reference.

The reference wraps ``transformer.forward`` and, for the calls of chosen progress-bar steps, replaces the
unconditional rows of ``encoder_hidden_states`` and ``pooled_projections`` with rows captured from a stock
call that used the negative as ``negative_prompt``. Nothing of negdelay is used by the reference.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, FlowMatchHeunDiscreteScheduler
from tiny_families import no_change, reference, tiny_sd3

from negdelay import DelayedNegative, DelayedNegativeSD3
from negdelay.families.sd3 import SD3

PROMPTS = ["a girl eating pizza", "a photo of a cat"]
NEGS = ["glasses", "blurry dog"]
KW = dict(height=16, width=16, max_sequence_length=8)
STEPS = 5

SCHEDULERS = {
    "flow_euler": lambda: FlowMatchEulerDiscreteScheduler(shift=3.0),
    "flow_euler_shift1": lambda: FlowMatchEulerDiscreteScheduler(shift=1.0),
    "flow_heun": lambda: FlowMatchHeunDiscreteScheduler(shift=3.0),
}


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def run(pipe, prompt=PROMPTS, cb=None, seed=0, **kw):
    kw = {"num_inference_steps": STEPS, "output_type": "np", **KW, **kw}
    return pipe(prompt, generator=gen(seed), callback_on_step_end=cb, **kw).images


def captured(pipe, negative_prompt, rows=None, **kw):
    texts = [negative_prompt] if isinstance(negative_prompt, str) else list(negative_prompt)
    prompt = "" if isinstance(negative_prompt, str) else [""] * len(texts)
    with reference(pipe, "transformer", no_change) as calls:
        pipe(prompt, negative_prompt=negative_prompt, num_inference_steps=2, output_type="latent", **KW, **kw)
    kwargs = calls[0][1]
    n = kwargs["encoder_hidden_states"].shape[0] // 2
    assert n == len(texts)
    out = {"tokens": kwargs["encoder_hidden_states"][:n].clone(), "pooled": kwargs["pooled_projections"][:n].clone()}
    rows = rows or len(texts)
    return {k: v.repeat_interleave(rows // len(texts), dim=0) for k, v in out.items()}


def swap(neg, steps, parts=("tokens", "pooled")):
    def change(step, index, kwargs):
        if not steps(step):
            return
        n = kwargs["encoder_hidden_states"].shape[0] // 2
        if "tokens" in parts:
            kwargs["encoder_hidden_states"] = torch.cat([neg["tokens"], kwargs["encoder_hidden_states"][n:]])
        if "pooled" in parts:
            kwargs["pooled_projections"] = torch.cat([neg["pooled"], kwargs["pooled_projections"][n:]])

    return change


def ref(pipe, change, prompt=PROMPTS, **kw):
    with reference(pipe, "transformer", change) as calls:
        out = run(pipe, prompt, **kw)
    return out, calls


@pytest.mark.parametrize("name", list(SCHEDULERS))
@pytest.mark.parametrize("k", [1, 3])
def test_start_step_equals_reference(name, k):
    pipe = tiny_sd3(SCHEDULERS[name]())
    neg = captured(pipe, NEGS, rows=4)
    got = run(pipe, cb=DelayedNegativeSD3(NEGS, start_step=k), num_images_per_prompt=2)
    want, calls = ref(pipe, swap(neg, lambda s: s >= k), num_images_per_prompt=2)
    assert max(s for s, _ in calls) == STEPS - 1
    assert len(calls) == len(pipe.scheduler.timesteps)  # Heun: 2 calls per step but one on the last
    assert got.shape == (4, 16, 16, 3)
    assert np.array_equal(got, want)


def test_pooled_embedding_must_be_swapped():
    pipe = tiny_sd3()
    neg = captured(pipe, NEGS, rows=4)
    want, _ = ref(pipe, swap(neg, lambda s: s >= 2), num_images_per_prompt=2)
    tokens_only, _ = ref(pipe, swap(neg, lambda s: s >= 2, parts=("tokens",)), num_images_per_prompt=2)
    assert np.abs(want - tokens_only).max() > 1e-4

    class TokensOnly(SD3):
        name = "sd3-tokens-only"

        def encode(self, pipeline, texts, current):
            return {"prompt_embeds": super().encode(pipeline, texts, current)["prompt_embeds"]}

    class Mutant(DelayedNegativeSD3):
        family = TokensOnly()

    mutant = run(pipe, cb=Mutant(NEGS, start_step=2), num_images_per_prompt=2)
    assert np.array_equal(mutant, tokens_only)
    assert not np.array_equal(mutant, want)


def test_reference_is_sound_and_delay_matters():
    pipe = tiny_sd3()
    neg = captured(pipe, ["glasses"] * 2)
    full = run(pipe, negative_prompt=["glasses"] * 2)
    assert np.array_equal(ref(pipe, swap(neg, lambda s: True))[0], full)
    late = run(pipe, cb=DelayedNegativeSD3(["glasses"] * 2, start_step=2))
    assert np.abs(late - full).max() > 1e-4
    assert np.abs(late - run(pipe)).max() > 1e-4


def test_start_sigma_follows_the_flow_matching_sigmas():
    pipe = tiny_sd3()
    pipe.scheduler.set_timesteps(STEPS)
    sig = pipe.scheduler.sigmas.tolist()[:STEPS]  # shifted flow-matching sigmas, 1 = noise
    assert sig[0] == pytest.approx(1.0) and all(a > b for a, b in zip(sig, sig[1:]))
    neg = captured(pipe, "glasses", rows=2)
    got = run(pipe, cb=DelayedNegativeSD3("glasses", start_sigma=(sig[2] + sig[3]) / 2))
    assert np.array_equal(got, ref(pipe, swap(neg, lambda s: s >= 3))[0])
    got = run(pipe, cb=DelayedNegativeSD3("glasses", start_sigma=sig[2]))  # "<=" includes equality
    assert np.array_equal(got, ref(pipe, swap(neg, lambda s: s >= 2))[0])


def test_per_encoder_negatives_and_stop():
    pipe = tiny_sd3()
    neg = captured(pipe, ["glasses"], negative_prompt_2=["blurry"], negative_prompt_3=["dog"], rows=2)
    cb = DelayedNegativeSD3("glasses", negative_prompt_2="blurry", negative_prompt_3="dog", start_step=1, stop_step=3)
    assert np.array_equal(run(pipe, cb=cb), ref(pipe, swap(neg, lambda s: 1 <= s < 3))[0])


def test_pipeline_negative_is_kept_before_the_switch():
    pipe = tiny_sd3()
    before = captured(pipe, ["blurry"] * 2)
    after = captured(pipe, "glasses", rows=2)

    def change(step, index, kwargs):
        swap(after if step >= 2 else before, lambda s: True)(step, index, kwargs)

    got = run(pipe, cb=DelayedNegativeSD3("glasses", start_step=2), negative_prompt=["blurry"] * 2)
    assert np.array_equal(got, ref(pipe, change, negative_prompt=["blurry"] * 2)[0])


def test_never_switching_equals_stock():
    pipe = tiny_sd3()
    stock = run(pipe, num_images_per_prompt=2)
    for cb in (
        DelayedNegativeSD3(NEGS, start_step=STEPS),
        DelayedNegativeSD3(NEGS, start_fraction=1.0),
        DelayedNegativeSD3(NEGS, start_sigma=1e-6),
    ):
        assert np.array_equal(run(pipe, cb=cb, num_images_per_prompt=2), stock)


def test_precomputed_embeds_and_for_pipeline():
    pipe = tiny_sd3()
    neg = captured(pipe, "glasses")
    a = run(pipe, PROMPTS[0], cb=DelayedNegative.for_pipeline(pipe, "glasses", start_step=2))
    b = run(pipe, PROMPTS[0], cb=DelayedNegativeSD3(
        negative_prompt_embeds={"prompt_embeds": neg["tokens"], "pooled_prompt_embeds": neg["pooled"]}, start_step=2))
    assert np.array_equal(a, b)
    assert type(DelayedNegative.for_pipeline(pipe, "x", start_step=2)) is DelayedNegativeSD3
    with pytest.raises(ValueError, match="pooled_prompt_embeds"):
        run(pipe, PROMPTS[0], cb=DelayedNegativeSD3(negative_prompt_embeds=neg["tokens"], start_step=2))
