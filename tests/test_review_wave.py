"""Review of the issue-12 wave (parts, pad, starts tuples, steps="progress", batch_axes, grouped, refill,
call.denoiser_kwargs): tests that kill mutations the contract and the features' own tests let through."""

from __future__ import annotations

import pytest
import torch

import negdelay
from contract_cases import call, case
from contract_reference import substituting, text_inputs, watch
from test_progress_steps import _recorded


def _per_row_reference(c, own, mixed, first_step):
    """The stock call with ``own`` negatives whose denoiser text inputs, from ``first_step`` on, are those of the stock
    call with ``mixed`` negatives (the contract reference's substitution, with a negative per prompt)."""
    with watch(c.pipe) as calls_a:
        call(c, negative=own)
    with watch(c.pipe) as calls_b:
        call(c, negative=mixed)
    values = text_inputs(calls_a, calls_b)
    assert values, "the mixed negatives change no denoiser input"
    with watch(c.pipe, substituting(values, first_step)):
        return call(c, negative=own)


REPADDED = ["ErnieImagePipeline[longer negative]", "ErnieImagePipeline[shorter negative]"]


@pytest.mark.parametrize("name", REPADDED)
def test_rows_of_different_widths_in_one_block_equal_the_stock_call_with_those_negatives(name):
    """Per-prompt starts (the first prompt's rows take its delayed negative from step 1, the second's never): from step
    1 the call is the stock call whose negative_prompt is [that delayed negative, the pipeline's own], re-padded."""
    c = case(name)
    own = ["", ""]
    negatives = c.negatives()
    want = _per_row_reference(c, own, [negatives[0], own[1]], 1)
    with negdelay.apply(c.pipe, negatives, start_step=[1, c.steps]):
        got = call(c, negative=own)
    assert torch.equal(got, want)


def _per_bar(values, firsts):
    """The reference's substitution from step ``firsts[b]`` of the ``b``-th progress bar of the call (a step that
    drops back opens the next bar)."""
    changes = [substituting(values, first) for first in firsts]
    seen = {"bar": -1, "last": None}

    def change(step, model, slot, kwargs):
        if seen["last"] is None or step < seen["last"]:
            seen["bar"] += 1
        seen["last"] = step
        changes[seen["bar"]](step, model, slot, kwargs)

    return change


def test_a_fraction_is_of_each_progress_bar_of_its_own_length():
    """A long diffusion-forcing video with ``ar_step=2`` opens bars of different lengths (its first iteration's step
    matrix has more rows than the next ones'): ``start_fraction`` is resolved against each bar's own total, so the
    plan is made anew for every bar (a plan kept from the first, longer bar would never switch in the later ones)."""
    c = case("SkyReelsV2DiffusionForcingPipeline")
    over = dict(num_frames=17, base_num_frames=9, overlap_history=5, ar_step=2)
    values, bars = _recorded(c, **over)
    assert len(set(bars)) > 1, f"bars of one length {bars}: nothing to tell apart"
    with watch(c.pipe, _per_bar(values, [int(0.5 * n) for n in bars])):
        want = call(c, **over)
    with negdelay.apply(c.pipe, c.negatives(), start_fraction=0.5):
        got = call(c, **over)
    assert torch.equal(got, want)


def _window(values, start, stop):
    """The reference's substitution for the steps ``start <= step < stop`` of each progress bar."""
    inner = substituting(values, start)

    def change(step, model, slot, kwargs):
        if step < stop:
            inner(step, model, slot, kwargs)

    return change


@pytest.mark.parametrize("name", ["KandinskyCombinedPipeline", "StableCascadeCombinedPipeline"])
def test_a_wrapper_gives_its_parts_the_stop_too(name):
    """A wrapper's parts get the whole schedule, the stop as well as the start: each part's unconditional pass takes
    the delayed negative for its own steps 1 and 2 only."""
    from contract_cases import recorded

    c = case(name)
    _, values = recorded(name)
    with watch(c.pipe, _window(values, 1, 3)):
        want = call(c)
    with negdelay.apply(c.pipe, c.negatives(), start_step=1, stop_step=3):
        got = call(c)
    assert torch.equal(got, want)
    with negdelay.apply(c.pipe, c.negatives(), start_step=1):
        assert not torch.equal(call(c), want), "the stop changed nothing: no proof"


@pytest.mark.parametrize("k", [1, 3])
def test_no_cfg_on_grouped_rows_equals_the_reference(k):
    """AnimateDiff SDXL (``grouped``: the pooled text one row per video, the tokens one per frame): before the start
    every unconditional row takes its conditional row, the pooled text per video as well."""
    from test_no_cfg import no_cfg_reference

    from contract_cases import recorded

    name = "AnimateDiffSDXLPipeline"
    c = case(name)
    _, values = recorded(name)
    want = no_cfg_reference(c, values, k)
    with negdelay.apply(c.pipe, c.negatives(), start_step=k, before="no_cfg"):
        got = call(c)
    assert torch.equal(got, want)


def test_no_cfg_and_a_negative_in_one_grouped_step_row_by_row():
    """Per-prompt starts with ``before="no_cfg"``: in steps 1 and 2 the first prompt's videos take the negative and
    the second's their conditional text (a merge of conditional and negative rows, one pooled row per video); each
    prompt's videos equal the whole-batch reference of its own start."""
    from test_no_cfg import no_cfg_reference

    from contract_cases import recorded

    name = "AnimateDiffSDXLPipeline"
    c = case(name)
    _, values = recorded(name)
    with negdelay.apply(c.pipe, c.negatives(), start_step=[1, 3], before="no_cfg"):
        got = call(c)
    videos = got.shape[0] // 2
    assert torch.equal(got[:videos], no_cfg_reference(c, values, 1)[:videos])
    assert torch.equal(got[videos:], no_cfg_reference(c, values, 3)[videos:])


def test_a_second_call_reusing_the_encoding_gives_each_prompt_its_own_negative():
    """Two negatives for four prompts (the first for prompts 0-1, the second for 2-3): the stock batch encodes each
    negative once per prompt it covers ([A, A, B, B]). A second identical call reuses that encoding (the session's
    cache) and must map the prompts to its rows as the first call did: the same image, and not the first negative's
    rows for every prompt."""
    c = case("StableDiffusionPipeline")
    kwargs = dict(c.call, prompt=["a red cat", "a blue dog", "a green hat", "a cat"], num_inference_steps=c.steps,
                  num_images_per_prompt=1)

    def run():
        return c.pipe(**kwargs, generator=torch.Generator().manual_seed(0))[0]

    with negdelay.apply(c.pipe, ["blurry hat", "ugly dog"], start_step=1):
        first, second = run(), run()
    with negdelay.apply(c.pipe, ["blurry hat", "blurry hat"], start_step=1):
        one_negative = run()
    assert not torch.equal(torch.as_tensor(first), torch.as_tensor(one_negative)), "the second negative did nothing"
    assert torch.equal(torch.as_tensor(second), torch.as_tensor(first))


WRAPPERS = ["KandinskyCombinedPipeline", "KandinskyImg2ImgCombinedPipeline", "KandinskyInpaintCombinedPipeline",
            "KandinskyV22CombinedPipeline", "KandinskyV22Img2ImgCombinedPipeline",
            "KandinskyV22InpaintCombinedPipeline", "StableCascadeCombinedPipeline"]


def _snapshot(pipe) -> dict:
    """What apply may touch, for the wrapper, every sub-pipeline and every module of each: their instance attributes
    (wrapped methods are instance attributes) and each module's forward and diffusers hooks. After its last hook is
    removed diffusers leaves the module's own forward bound as an instance attribute: counted as no change."""
    from diffusers import DiffusionPipeline

    out = {}
    pipes = {"": pipe, **{n: p for n, p in vars(pipe).items() if isinstance(p, DiffusionPipeline)}}
    for prefix, p in pipes.items():
        # callables by identity (wrapped methods, components); the values a call sets anew (_attention_kwargs) by type
        out[prefix] = {k: id(v) if callable(v) else type(v) for k, v in vars(p).items()}
        for name, module in p.components.items():
            if isinstance(module, torch.nn.Module):
                registry = getattr(module, "_diffusers_hook", None)
                hooks = tuple(registry.hooks) if registry is not None else ()
                forward = module.__dict__.get("forward")
                if getattr(forward, "__self__", None) is module and forward.__func__ is type(module).forward:
                    forward = None  # diffusers' HookRegistry leaves the class's own forward bound on the instance
                out[f"{prefix}.{name}"] = (forward, hooks)
    return out


#: a served class per feature of the wave besides the wrappers (starts tuple, progress, refill, batch axes, grouped,
#: pad, guided reading the call)
FEATURED = ["JoyImageEditPipeline", "SkyReelsV2DiffusionForcingPipeline", "QwenImage21Pipeline", "HiDreamImagePipeline",
            "AnimateDiffSDXLPipeline", "DreamLitePipeline", "AnimateDiffControlNetPipeline"]


@pytest.mark.parametrize("name", WRAPPERS + FEATURED)
def test_remove_leaves_a_wrapper_and_its_parts_as_before_and_apply_is_idempotent(name):
    c = case(name)
    stock = call(c)
    before = _snapshot(c.pipe)
    negdelay.apply(c.pipe, c.negatives(), start_step=1)
    once = call(c)
    handle = negdelay.apply(c.pipe, c.negatives(), start_step=1)
    for part, applied in handle.parts.items() or [(None, handle)]:  # applying again replaced the first
        pipe = c.pipe if part is None else getattr(c.pipe, part)
        assert negdelay.hooks.api.session_of(pipe) is applied.session
        for method in ("progress_bar", *applied.session.tracker.starts):
            assert pipe.__dict__[method]._negdelay_tracker is applied.session.tracker
        for model in applied.models:
            assert list(model._diffusers_hook.hooks).count("negdelay_delayed_negative") == 1
    assert torch.equal(call(c), once)
    negdelay.remove(c.pipe)
    assert _snapshot(c.pipe) == before
    assert torch.equal(call(c), stock)


def test_guided_reads_the_arguments_of_the_denoiser_call_it_decides():
    """``call.denoiser_kwargs`` is the running denoiser call's: the ControlNet's ``guided`` (which reads its own
    ``guess_mode``) sees the ControlNet's arguments, the UNet's the UNet's, whichever ran first in the step."""
    from dataclasses import replace

    from negdelay.hooks.api import session_of

    c = case("AnimateDiffControlNetPipeline")
    seen = []
    with negdelay.apply(c.pipe, c.negatives(), start_step=1):
        session = session_of(c.pipe)
        decide = session.declaration.guided

        def spy(pipeline, call_state, denoiser, rows):
            seen.append((denoiser, "controlnet_cond" in call_state.denoiser_kwargs))
            return decide(pipeline, call_state, denoiser, rows)

        session.declaration = replace(session.declaration, guided=spy)
        call(c)
    assert sorted(seen) == [("controlnet", True), ("unet", False)]


class _Stop(Exception):
    pass


@pytest.mark.parametrize("name", ["QwenImage21Pipeline", "SkyReelsV2DiffusionForcingPipeline", "HiDreamImagePipeline"])
def test_a_call_interrupted_mid_loop_leaves_nothing_to_the_next(name):
    """A step-end callback that raises at step 2 (inside the negative's window, after Qwen-Image 2.1's refill at the
    start, with a progress bar half counted): the next call equals the same call of an untouched apply."""
    c = case(name)

    def stop_at_2(pipe, i, t, kwargs):
        if i == 2:
            raise _Stop
        return kwargs

    with negdelay.apply(c.pipe, c.negatives(), start_step=1, stop_step=3):
        clean = call(c)
    with negdelay.apply(c.pipe, c.negatives(), start_step=1, stop_step=3):
        with pytest.raises(_Stop):
            call(c, callback_on_step_end=stop_at_2)
        again = call(c)
    assert torch.equal(again, clean)


def test_an_ended_call_keeps_no_denoiser_arguments():
    """``call.denoiser_kwargs`` (the running denoiser call's arguments, for ``guided``) is per call: once the call
    has ended the state no longer holds that call's latents and text tensors until the next call."""
    from negdelay.hooks.api import running_call

    c = case("AnimateDiffControlNetPipeline")
    with negdelay.apply(c.pipe, c.negatives(), start_step=1):
        call(c)
        state = running_call(c.pipe)
        assert state.ended
        assert not any(isinstance(v, torch.Tensor) for v in (state.denoiser_kwargs or {}).values())
