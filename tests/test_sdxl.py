"""Bit-exact proofs for the SDXL callback (``DelayedNegativeXL``) against a callback-free reference.

The reference (tests/tiny_families.py) wraps ``unet.forward`` and, for the UNet calls of chosen progress-bar
steps, replaces the unconditional rows of ``encoder_hidden_states`` *and* of ``added_cond_kwargs["text_embeds"]``
(and ``time_ids`` where a test says so) with rows captured from a stock call that used the negative as
``negative_prompt``. Nothing of negdelay is used by the reference.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLInpaintPipeline,
)
from tiny_families import no_change, reference, tiny_sdxl, tiny_sdxl_controlnet

from negdelay import DelayedNegative, DelayedNegativeXL
from negdelay.families.sdxl import SDXL

PROMPTS = ["a girl eating pizza", "a photo of a cat"]
NEGS = ["glasses", "blurry dog"]
SIZE = dict(height=16, width=16)
STEPS = 5

SCHEDULERS = {
    "euler": lambda c: EulerDiscreteScheduler.from_config(c),
    "ddim": lambda c: DDIMScheduler.from_config(c),
    "dpmpp_2m": lambda c: DPMSolverMultistepScheduler.from_config(c),
    "heun": lambda c: HeunDiscreteScheduler.from_config(c),
}


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def pipe_with(name="euler", **extra):
    pipe = tiny_sdxl(**extra)
    pipe.scheduler = SCHEDULERS[name](pipe.scheduler.config)
    return pipe


def run(pipe, prompt=PROMPTS, cb=None, seed=0, **kw):
    kw = {"num_inference_steps": STEPS, "output_type": "np", **SIZE, **kw}
    return pipe(prompt, generator=gen(seed), callback_on_step_end=cb, **kw).images


def captured(pipe, negative_prompt, rows=None, **kw):
    """The unconditional rows (tokens, pooled, time ids) the stock pipeline feeds the UNet for ``negative_prompt``.

    A str is encoded alone (batch 1), a list in one batch, as negdelay encodes them; ``rows`` repeats each
    entry for that many image rows."""
    texts = [negative_prompt] if isinstance(negative_prompt, str) else list(negative_prompt)
    prompt = "" if isinstance(negative_prompt, str) else [""] * len(texts)
    with reference(pipe, "unet", no_change) as calls:
        pipe(prompt, negative_prompt=negative_prompt, num_inference_steps=2, output_type="latent", **SIZE, **kw)
    kwargs = calls[0][1]
    n = kwargs["encoder_hidden_states"].shape[0] // 2
    out = {
        "tokens": kwargs["encoder_hidden_states"][:n].clone(),
        "pooled": kwargs["added_cond_kwargs"]["text_embeds"][:n].clone(),
    }
    assert n == len(texts)
    rows = rows or len(texts)
    return {k: v.repeat_interleave(rows // len(texts), dim=0) for k, v in out.items()}


def swap(neg, steps, parts=("tokens", "pooled"), time_ids=None):
    """Reference change: at steps in ``steps`` the unconditional rows get ``neg``'s ``parts`` (and ``time_ids``)."""
    inside = steps if callable(steps) else (lambda s: s in steps)

    def change(step, index, kwargs):
        if not inside(step):
            return
        ehs = kwargs["encoder_hidden_states"]
        n = ehs.shape[0] // 2
        added = dict(kwargs["added_cond_kwargs"])
        if "tokens" in parts:
            kwargs["encoder_hidden_states"] = torch.cat([neg["tokens"], ehs[n:]])
        if "pooled" in parts:
            added["text_embeds"] = torch.cat([neg["pooled"], added["text_embeds"][n:]])
        if time_ids is not None:
            added["time_ids"] = torch.cat([time_ids.expand(n, -1), added["time_ids"][n:]])
        kwargs["added_cond_kwargs"] = added

    return change


def ref(pipe, change, prompt=PROMPTS, seed=0, **kw):
    with reference(pipe, "unet", change):
        return run(pipe, prompt, seed=seed, **kw)


@pytest.mark.parametrize("name", list(SCHEDULERS))
@pytest.mark.parametrize("k", [1, 3])
def test_start_step_equals_reference(name, k):
    pipe = pipe_with(name)
    neg = captured(pipe, NEGS, rows=4)
    got = run(pipe, cb=DelayedNegativeXL(NEGS, start_step=k), num_images_per_prompt=2)
    want = ref(pipe, swap(neg, lambda s: s >= k), num_images_per_prompt=2)
    assert got.shape == (4, 16, 16, 3)
    assert np.array_equal(got, want)


def test_pooled_embedding_must_be_swapped():
    """The main proof has teeth: a tokens-only swap (what SD.Next does) gives another image, and a callback
    that swaps only ``prompt_embeds`` fails the comparison with the reference."""
    pipe = pipe_with("euler")
    neg = captured(pipe, NEGS, rows=4)
    want = ref(pipe, swap(neg, lambda s: s >= 2), num_images_per_prompt=2)
    tokens_only = ref(pipe, swap(neg, lambda s: s >= 2, parts=("tokens",)), num_images_per_prompt=2)
    assert np.abs(want - tokens_only).max() > 1e-4

    class TokensOnly(SDXL):
        name = "sdxl-tokens-only"

        def encode(self, pipeline, texts, current):
            return {"prompt_embeds": super().encode(pipeline, texts, current)["prompt_embeds"]}

    class Mutant(DelayedNegativeXL):
        family = TokensOnly()

    mutant = run(pipe, cb=Mutant(NEGS, start_step=2), num_images_per_prompt=2)
    assert np.array_equal(mutant, tokens_only)
    assert not np.array_equal(mutant, want)
    assert np.array_equal(run(pipe, cb=DelayedNegativeXL(NEGS, start_step=2), num_images_per_prompt=2), want)


def test_reference_is_sound_and_delay_matters():
    """Swapping from step 0 in the reference is the stock negative run; a delayed run differs from both ends."""
    pipe = pipe_with("euler")
    neg = captured(pipe, ["glasses"] * 2)
    full = run(pipe, negative_prompt=["glasses"] * 2)
    assert np.array_equal(ref(pipe, swap(neg, lambda s: True)), full)
    late = run(pipe, cb=DelayedNegativeXL(["glasses"] * 2, start_step=2))
    assert np.array_equal(late, ref(pipe, swap(neg, lambda s: s >= 2)))
    assert np.abs(late - full).max() > 1e-4
    assert np.abs(late - run(pipe)).max() > 1e-4


def test_force_zeros_before_the_switch():
    """negative_prompt=None: the stock unconditional rows are all zeros (force_zeros_for_empty_prompt); they stay
    zeros before the switch and after stop. With the flag off, the encoded empty prompt stays instead."""
    for force in (True, False):
        pipe = pipe_with("euler", force_zeros_for_empty_prompt=force)
        seen = []

        def record(step, index, kwargs):
            n = kwargs["encoder_hidden_states"].shape[0] // 2
            seen.append((step, kwargs["encoder_hidden_states"][:n].abs().max().item(), kwargs["added_cond_kwargs"]["text_embeds"][:n].abs().max().item()))

        neg = captured(pipe, "glasses", rows=2)
        got = run(pipe, cb=DelayedNegativeXL("glasses", start_step=1, stop_step=3))
        with reference(pipe, "unet", lambda s, i, kw: (swap(neg, {1, 2})(s, i, kw), record(s, i, kw))):
            want = run(pipe)
        assert np.array_equal(got, want)
        zeros = [(t, p) for s, t, p in seen if s not in (1, 2)]
        assert all((t == 0 and p == 0) == force for t, p in zeros)


def test_pipeline_negative_is_kept_before_the_switch():
    pipe = pipe_with("dpmpp_2m")
    before = captured(pipe, ["blurry"] * 2)
    after = captured(pipe, "glasses", rows=2)

    def change(step, index, kwargs):
        swap(after if 2 <= step < 4 else before, lambda s: True)(step, index, kwargs)

    got = run(pipe, cb=DelayedNegativeXL("glasses", start_step=2, stop_step=4), negative_prompt=["blurry"] * 2)
    assert np.array_equal(got, ref(pipe, change, negative_prompt=["blurry"] * 2))


def test_negative_prompt_2_goes_to_the_second_encoder():
    pipe = pipe_with("euler")
    neg = captured(pipe, ["glasses"], negative_prompt_2=["blurry dog"], rows=2)
    got = run(pipe, cb=DelayedNegativeXL("glasses", negative_prompt_2="blurry dog", start_step=2))
    assert np.array_equal(got, ref(pipe, swap(neg, lambda s: s >= 2)))
    same = run(pipe, cb=DelayedNegativeXL("glasses", start_step=2))
    assert not np.array_equal(got, same)


def test_negative_size_conditioning():
    """Without size options the unconditional time ids stay the stock rows; with them, the negative's rows from
    the switch on (built as the pipeline builds its own: original size, crop, target size)."""
    pipe = pipe_with("euler")
    neg = captured(pipe, "glasses", rows=4)
    row = torch.tensor([[8.0, 8.0, 0.0, 0.0, 8.0, 8.0]])
    cb = DelayedNegativeXL("glasses", start_step=2, negative_original_size=(8, 8), negative_target_size=(8, 8))
    got = run(pipe, cb=cb, num_images_per_prompt=2)
    assert np.array_equal(got, ref(pipe, swap(neg, lambda s: s >= 2, time_ids=row), num_images_per_prompt=2))
    plain = run(pipe, cb=DelayedNegativeXL("glasses", start_step=2), num_images_per_prompt=2)
    assert np.array_equal(plain, ref(pipe, swap(neg, lambda s: s >= 2), num_images_per_prompt=2))
    assert not np.array_equal(plain, got)


def test_never_switching_equals_stock():
    pipe = pipe_with("euler")
    stock = run(pipe, num_images_per_prompt=2)
    for cb in (
        DelayedNegativeXL(NEGS, start_step=STEPS),
        DelayedNegativeXL(NEGS, start_fraction=1.0),
        DelayedNegativeXL(NEGS, start_sigma=1e-6),
    ):
        assert np.array_equal(run(pipe, cb=cb, num_images_per_prompt=2), stock)


def test_sigma_and_fraction_starts():
    pipe = pipe_with("euler")
    pipe.scheduler.set_timesteps(STEPS)
    sig = pipe.scheduler.sigmas.tolist()[:STEPS]
    neg = captured(pipe, "glasses", rows=2)
    got = run(pipe, cb=DelayedNegativeXL("glasses", start_sigma=(sig[2] + sig[3]) / 2))
    assert np.array_equal(got, ref(pipe, swap(neg, lambda s: s >= 3)))
    got = run(pipe, cb=DelayedNegativeXL("glasses", start_fraction=0.4))  # int(0.4 * 5) = 2
    assert np.array_equal(got, ref(pipe, swap(neg, lambda s: s >= 2)))


def test_img2img_xl():
    base = pipe_with("euler")
    pipe = StableDiffusionXLImg2ImgPipeline(**base.components, requires_aesthetics_score=False)
    pipe.set_progress_bar_config(disable=True)
    image = torch.linspace(0, 1, 3 * 16 * 16).reshape(1, 3, 16, 16)
    kw = dict(image=image, strength=0.6, num_inference_steps=10)  # 6 steps run
    neg = captured(pipe, "glasses", rows=2, image=image, strength=0.6)
    got = pipe(PROMPTS[0], generator=gen(), output_type="np", num_images_per_prompt=2,
               callback_on_step_end=DelayedNegativeXL("glasses", start_step=2), **kw).images
    with reference(pipe, "unet", swap(neg, lambda s: s >= 2)) as calls:
        want = pipe(PROMPTS[0], generator=gen(), output_type="np", num_images_per_prompt=2, **kw).images
    assert max(s for s, _ in calls) == 5
    assert np.array_equal(got, want)


def test_inpaint_xl():
    base = pipe_with("euler")
    pipe = StableDiffusionXLInpaintPipeline(**base.components, requires_aesthetics_score=False)
    pipe.set_progress_bar_config(disable=True)
    image = torch.linspace(0, 1, 3 * 16 * 16).reshape(1, 3, 16, 16)
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:12, 4:12] = 1
    kw = dict(image=image, mask_image=mask, strength=1.0, num_inference_steps=STEPS, output_type="np", **SIZE)
    neg = captured(pipe, NEGS, rows=4, image=image, mask_image=mask)
    got = pipe(PROMPTS, generator=gen(), num_images_per_prompt=2, callback_on_step_end=DelayedNegativeXL(NEGS, start_step=3), **kw).images
    with reference(pipe, "unet", swap(neg, lambda s: s >= 3)):
        want = pipe(PROMPTS, generator=gen(), num_images_per_prompt=2, **kw).images
    assert np.array_equal(got, want)


@pytest.mark.parametrize("guess_mode", [False, True])
def test_controlnet_xl(guess_mode):
    """The ControlNet sees the same unconditional rows as the UNet (in guess mode it sees only the conditional half)."""
    pipe = tiny_sdxl_controlnet()
    image = torch.linspace(0, 1, 3 * 16 * 16).reshape(1, 3, 16, 16)
    kw = dict(image=image, guess_mode=guess_mode, num_images_per_prompt=2)
    with reference(pipe, "unet", no_change) as calls:
        pipe([""] * 2, negative_prompt=NEGS, image=image, num_inference_steps=1, output_type="latent", **SIZE)
    first = calls[0][1]
    neg = {"tokens": first["encoder_hidden_states"][:2].repeat_interleave(2, 0),
           "pooled": first["added_cond_kwargs"]["text_embeds"][:2].repeat_interleave(2, 0)}

    def change(step, index, kwargs):
        if kwargs["encoder_hidden_states"].shape[0] == 8:  # guess mode: the ControlNet gets the 4 conditional rows
            swap(neg, lambda s: s >= 2)(step, index, kwargs)

    got = run(pipe, cb=DelayedNegativeXL(NEGS, start_step=2), **kw)
    with reference(pipe, ("controlnet", "unet"), change) as calls:
        want = run(pipe, **kw)
    assert len(calls) == 2 * STEPS
    assert np.array_equal(got, want)
    assert not np.array_equal(got, run(pipe, **kw))


def test_precomputed_embeds_need_the_pooled_rows():
    pipe = pipe_with("euler")
    neg = captured(pipe, "glasses")
    a = run(pipe, PROMPTS[0], cb=DelayedNegativeXL("glasses", start_step=2))
    b = run(pipe, PROMPTS[0], cb=DelayedNegativeXL(
        negative_prompt_embeds={"prompt_embeds": neg["tokens"], "add_text_embeds": neg["pooled"]}, start_step=2))
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="add_text_embeds"):
        run(pipe, PROMPTS[0], cb=DelayedNegativeXL(negative_prompt_embeds=neg["tokens"], start_step=2))


def test_for_pipeline_returns_the_xl_class():
    pipe = pipe_with("euler")
    cb = DelayedNegative.for_pipeline(pipe, "glasses", start_step=2, negative_prompt_2="blurry")
    assert type(cb) is DelayedNegativeXL
    assert set(cb.tensor_inputs) <= set(pipe._callback_tensor_inputs)
    assert cb.config["negative_prompt_2"] == "blurry"


@pytest.mark.parametrize(
    "kwargs, error, text",
    [
        (dict(negative_prompt_2="x", start_step=2), ValueError, "negative_prompt_2 needs negative_prompt"),
        (dict(negative_prompt=["a", "b"], negative_prompt_2=["x", "y", "z"], start_step=2), ValueError, "negative_prompt_2 has 3 entries"),
        (dict(negative_prompt="a", negative_prompt_2=5, start_step=2), TypeError, "negative_prompt_2 must be a str"),
        (dict(negative_prompt="a", negative_original_size=(8, 8), start_step=2), ValueError, "negative_target_size"),
        (dict(negative_prompt="a", negative_original_size=8, negative_target_size=(8, 8), start_step=2), TypeError, "negative_original_size must be a pair"),
    ],
)
def test_bad_arguments(kwargs, error, text):
    with pytest.raises(error, match=text):
        DelayedNegativeXL(**kwargs)
