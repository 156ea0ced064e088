"""Review of ``negdelay.apply``: cases a demanding diffusers user can hit that the per-pipeline proofs did not cover.

- Two pipelines sharing one denoiser (``from_pipe`` / ``**pipe.components``): the hook reads steps, mode and the
  guidance decision from the pipeline it was applied to, so a call of the other pipeline must be refused, not
  silently changed.
- A step-end callback that replaces the pipeline's own unconditional rows mid-call while a per-row schedule keeps
  some rows on them: those rows must follow the callback (the hook once cached them for the whole call).
- Batched mode with per-row schedules: rows that keep the pipeline's own unconditional text take it from the first
  (unconditional) half, not from the conditional one.
- QwenImage rows mixed from a long own negative and a short delayed one are padded exactly as the stock pipeline
  pads that mixed list of texts (columns no row uses are dropped).

Every expectation is an independent reference (no hooks): ``tiny_families.reference`` wraps the denoiser's
``forward`` and substitutes inputs captured from stock calls; outputs compared with ``np.array_equal``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import FluxImg2ImgPipeline, StableDiffusionXLControlNetInpaintPipeline
from tiny_families import no_change, reference, tiny_flux, tiny_pixart, tiny_sdxl_controlnet
from tiny_qwen import tiny_qwenimage

import negdelay
from negdelay import hooks

PROMPTS = ["a girl eating pizza", "a photo of a cat"]
NEGS = ["glasses", "blurry dog"]
IMAGE16 = torch.linspace(0, 1, 3 * 16 * 16).reshape(1, 3, 16, 16)


def gen():
    return torch.Generator().manual_seed(0)


# -- two pipelines, one transformer ----------------------------------------------------------------------------

FLUX = dict(height=16, width=16, max_sequence_length=8, true_cfg_scale=3.0, output_type="np")


def t2i(pipe):
    return pipe(PROMPTS, negative_prompt=["", ""], generator=gen(), num_inference_steps=4, **FLUX).images


def i2i(pipe):
    return pipe(prompt=PROMPTS, image=IMAGE16, strength=0.6, negative_prompt=["", ""], generator=gen(),
                num_inference_steps=5, **FLUX).images


def test_a_pipeline_sharing_the_hooked_transformer_is_refused_not_silently_changed():
    base = tiny_flux()
    other = FluxImg2ImgPipeline(**base.components)  # shares transformer and scheduler, as from_pipe does
    other.set_progress_bar_config(disable=True)
    stock_t2i, stock_i2i = t2i(base), i2i(other)
    negdelay.apply(other, NEGS, start_step=1)
    delayed_i2i = i2i(other)
    assert not np.array_equal(delayed_i2i, stock_i2i)
    # before the fix: the img2img hook's ordered mode and step count (from the img2img pipeline) changed this image
    with pytest.raises(RuntimeError, match=r"applied to a FluxImg2ImgPipeline, but its FluxTransformer2DModel was called outside a call of that"):
        t2i(base)
    assert np.array_equal(i2i(other), delayed_i2i)  # the refused call left the hook's own pipeline intact
    negdelay.apply(base, NEGS, start_step=1)  # applying to the pipeline you call replaces the earlier hook
    assert list(base.transformer._diffusers_hook.hooks) == [hooks.HOOK_NAME]  # one hook, bound to base
    with pytest.raises(RuntimeError, match=r"applied to a FluxPipeline, but its FluxTransformer2DModel was called outside"):
        i2i(other)
    negdelay.remove(base)
    assert np.array_equal(t2i(base), stock_t2i) and np.array_equal(i2i(other), stock_i2i)


# -- callback + hook ---------------------------------------------------------------------------------------------

SDXL = dict(image=IMAGE16, mask_image=(torch.arange(256).reshape(1, 1, 16, 16) % 16 >= 8).float(), control_image=IMAGE16,
            strength=1.0, num_inference_steps=4, height=16, width=16)


def test_callback_replacing_own_unconditional_rows_is_followed_by_rows_that_keep_them():
    """Per-row starts [1, never]: row 1 keeps the pipeline's own unconditional rows, which a step-end callback
    replaces after step 1 (``prompt_embeds`` is ``[unconditional, conditional]``). From step 2 row 1 must see the
    callback's rows; before the fix the hook reused the rows it had merged at step 1."""
    pipe = tiny_sdxl_controlnet(None, cls=StableDiffusionXLControlNetInpaintPipeline)

    def first_rows(negative_prompt):
        with reference(pipe, "unet", no_change) as calls:
            pipe(PROMPTS, negative_prompt=negative_prompt, generator=gen(), **SDXL, output_type="latent")
        kwargs = calls[0][1]
        return kwargs["encoder_hidden_states"][:2].clone(), kwargs["added_cond_kwargs"]["text_embeds"][:2].clone()

    neg_tokens, neg_pooled = first_rows(NEGS)
    replacement, _ = first_rows(["a photo of a dog", "a cat"])

    def callback(p, i, t, kw):
        if i == 1:
            return {"prompt_embeds": torch.cat([replacement, kw["prompt_embeds"][2:]])}
        return {}

    def run():
        return pipe(PROMPTS, negative_prompt=["", ""], generator=gen(), **SDXL, output_type="np", callback_on_step_end=callback,
                    callback_on_step_end_tensor_inputs=["prompt_embeds"]).images

    def change(step, index, kwargs):
        if step >= 1 and kwargs["encoder_hidden_states"].shape[0] == 4:  # row 0 from step 1; row 1 as passed
            kwargs["encoder_hidden_states"] = torch.cat([neg_tokens[:1], kwargs["encoder_hidden_states"][1:]])
            added = kwargs["added_cond_kwargs"]
            kwargs["added_cond_kwargs"] = {**added, "text_embeds": torch.cat([neg_pooled[:1], added["text_embeds"][1:]])}

    with negdelay.apply(pipe, NEGS, start_step=[1, 99]):
        got = run()
        without_callback = pipe(PROMPTS, negative_prompt=["", ""], generator=gen(), **SDXL, output_type="np").images
    with reference(pipe, ("controlnet", "unet"), change):
        want = run()
    assert not np.array_equal(got, without_callback)  # the callback's rows matter
    assert np.array_equal(got, want)


# -- batched per-row schedules -----------------------------------------------------------------------------------

PIXART = dict(height=16, width=16, max_sequence_length=8, clean_caption=False, use_resolution_binning=False,
              num_inference_steps=4)
PIXART_INPUTS = ("encoder_hidden_states", "encoder_attention_mask")


def test_pixart_per_row_starts_keep_own_rows_from_the_unconditional_half():
    pipe = tiny_pixart()
    prompts, own = [PROMPTS[0], PROMPTS[1], PROMPTS[0]], ["a very blurry dog", "x", "glasses"]
    starts = [1, 2, 99]
    with reference(pipe, "transformer", no_change) as calls:
        pipe(prompts, negative_prompt=["glasses"] * 3, generator=gen(), **PIXART, output_type="latent")
    neg = {name: calls[0][1][name][:3].clone() for name in PIXART_INPUTS}

    def change(step, index, kwargs):
        for name in PIXART_INPUTS:
            rows = [neg[name][r : r + 1] if step >= s else kwargs[name][r : r + 1] for r, s in enumerate(starts)]
            kwargs[name] = torch.cat([*rows, kwargs[name][3:]])

    def run():
        return pipe(prompts, negative_prompt=own, generator=gen(), **PIXART, output_type="np").images

    with negdelay.apply(pipe, "glasses", start_step=starts):
        got = run()
    with reference(pipe, "transformer", change):
        want = run()
    assert np.array_equal(got, want)
    assert not np.array_equal(got, run())


# -- QwenImage padding of mixed rows -------------------------------------------------------------------------------


def test_qwen_mixed_rows_drop_the_long_own_negatives_padding():
    """Own negatives ["a very blurry dog with glasses", ""] (11 and 1 tokens) padded to 11; from step 1 row 0 takes
    "glasses" (6 tokens), row 1 keeps "": the stock encoding of ["glasses", ""] is 6 columns wide."""
    pipe = tiny_qwenimage()
    own = ["a very blurry dog with glasses", ""]
    kw = dict(num_inference_steps=3, height=32, width=32, true_cfg_scale=3.0)

    with reference(pipe, "transformer", no_change) as calls:
        pipe(PROMPTS, negative_prompt=["glasses", ""], generator=gen(), **kw, num_images_per_prompt=1, output_type="latent")
    mixed = {name: calls[1][1][name].clone() for name in ("encoder_hidden_states", "encoder_hidden_states_mask")}
    assert mixed["encoder_hidden_states"].shape[1] == 6

    def change(step, index, kwargs):
        if index % 2 == 1 and step >= 1:
            kwargs.update(mixed)

    def run():
        return pipe(PROMPTS, negative_prompt=own, generator=gen(), **kw, output_type="np").images

    with negdelay.apply(pipe, "glasses", start_step=[1, 99]):
        got = run()
    with reference(pipe, "transformer", change):
        want = run()
    assert np.array_equal(got, want)


# -- one hook, several calls that differ ---------------------------------------------------------------------------


def test_one_hook_over_calls_of_different_width_and_batch_equals_the_reference_of_each():
    """The hook is applied once and the calls change ``max_sequence_length`` and ``num_images_per_prompt``: each call
    equals its own forward reference (nothing encoded or merged for one call is reused for another)."""
    pipe = tiny_flux()

    def run(**kw):
        return pipe(PROMPTS, negative_prompt=["", ""], generator=gen(), num_inference_steps=3,
                    **{**FLUX, **kw}).images

    calls_kw = [dict(max_sequence_length=8), dict(max_sequence_length=12), dict(max_sequence_length=12, num_images_per_prompt=2),
                dict(max_sequence_length=8)]
    with negdelay.apply(pipe, NEGS, start_step=1):
        got = [run(**kw) for kw in calls_kw]
    for kw, image in zip(calls_kw, got):
        with reference(pipe, "transformer", no_change) as calls:
            pipe(PROMPTS, negative_prompt=NEGS, generator=gen(), num_inference_steps=1, **{**FLUX, **kw, "output_type": "latent"})
        neg = {name: calls[1][1][name].clone() for name in ("encoder_hidden_states", "pooled_projections")}

        def change(step, index, kwargs, neg=neg):
            if index % 2 == 1 and step >= 1:
                kwargs.update(neg)

        with reference(pipe, "transformer", change):
            assert np.array_equal(image, run(**kw)), kw


def test_text_encoder_changed_in_place_between_calls_is_followed():
    """fuse_lora / set_adapters / load_lora_weights / textual inversion change a text encoder in place (same object,
    same LoRA scale): a hook kept across calls must encode the negative as the stock pipeline then does, not reuse
    the previous call's encoding (before the fix it did)."""
    pipe = tiny_flux()

    def run(negative_prompt=("", ""), **kw):
        return pipe(PROMPTS, negative_prompt=list(negative_prompt), generator=gen(),
                    **{**FLUX, "num_inference_steps": 3, **kw}).images

    with negdelay.apply(pipe, NEGS, start_step=1):
        before = run()
        with torch.no_grad():
            pipe.text_encoder_2.shared.weight.data.mul_(1.5)  # as fuse_lora edits weights: no version bump
            pipe.text_encoder.final_layer_norm.weight.data.mul_(0.5)  # the pooled projection's input
        got = run()
    assert not np.array_equal(got, before)
    with reference(pipe, "transformer", no_change) as calls:
        run(NEGS, num_inference_steps=1, output_type="latent")
    neg = {name: calls[1][1][name].clone() for name in ("encoder_hidden_states", "pooled_projections")}

    def change(step, index, kwargs):
        if index % 2 == 1 and step >= 1:
            kwargs.update(neg)

    with reference(pipe, "transformer", change):
        assert np.array_equal(got, run())
