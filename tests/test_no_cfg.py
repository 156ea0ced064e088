"""``before="no_cfg"``: CFG off outside the negative's window, proven byte for byte against a reference written
without negdelay, on tiny pipelines of every hook mode (batched, context, ordered, list), and through the step-end
callback.

The reference (``no_cfg_reference``) wraps the denoisers' ``forward`` (contract_reference.watch) and, for the steps
before the start, gives the unconditional pass the conditional pass's text inputs: in a batched call the rows that
carry the unconditional text (the rows that differ between a run with the pipeline's own negative and one with
the negative) take the values of the first as many rows that do not; a separate unconditional call takes the values
of the conditional call made just before it in the same step. From the start on it substitutes the negative's rows
(the contract's reference). The text inputs are the ones contract_reference finds, not negdelay's declarations.
"""

from __future__ import annotations


import pytest
import torch

import negdelay
from contract_cases import call, case, recorded
from contract_reference import _get, _set, _structure, substituting, watch
from negdelay import DelayedNegative
from negdelay import schedule as sch
from negdelay.pipelines import declaration_for

#: one or more tiny cases per hook mode (the contract covers every served class with the default behaviour)
NAMES = {
    "StableDiffusionPipeline": "batched",
    "StableDiffusionXLPipeline": "batched",
    "SanaPAGPipeline": "batched",  # [unconditional, conditional, perturbed] blocks
    "LuminaPipeline": "batched",  # [conditional, unconditional]
    "FluxPipeline": "context",
    "QwenImagePipeline": "context",  # per-row text length and mask (concat_padded)
    "WanPipeline": "context",
    "ChromaPipeline": "ordered",
    "Lumina2Pipeline": "ordered",
    "ZImagePipeline": "list",
}


def _differing(mine, theirs) -> list[int]:
    """Indices (rows, or list entries) where the pipeline's own negative and the negative differ."""
    if isinstance(mine, list):
        return [j for j, (a, b) in enumerate(zip(mine, theirs)) if a.shape != b.shape or not torch.equal(a, b)]
    return [j for j in range(mine.shape[0]) if not torch.equal(mine[j], theirs[j])]


def _conditional_rows(current, uncond: list[int]):
    """``current`` with the unconditional rows replaced by the first as many rows that are not unconditional."""
    cond = [j for j in range(len(current) if isinstance(current, list) else current.shape[0]) if j not in uncond]
    assert len(cond) >= len(uncond), "the batch holds fewer conditional rows than unconditional ones"
    if isinstance(current, list):
        out = list(current)
        for u, k in zip(uncond, cond):
            out[u] = current[k]
        return out
    out = current.clone()
    out[uncond] = current[cond[: len(uncond)]]
    return out


def no_cfg_reference(c, values, start: int, stop: int | None = None):
    """Steps before ``start`` (and from ``stop`` on): the unconditional pass gets the conditional pass's text inputs;
    steps ``start..stop-1``: the negative's rows."""
    negative = substituting(values, start)
    conditional_calls = {}

    def change(step, model, slot, kwargs):
        found = values.get((model, slot), {})
        if not found:  # a conditional (or other) call: remembered for the unconditional call of this step
            conditional_calls[(step, model)] = dict(kwargs)
            return
        if start <= step and (stop is None or step < stop):
            return negative(step, model, slot, kwargs)
        for name, (mine, theirs) in found.items():
            current = _get(kwargs, name)
            if _structure(current) != _structure(mine):  # a call without unconditional entries (CFG truncation)
                continue
            if (step, model) in conditional_calls:
                _set(kwargs, name, _get(conditional_calls[(step, model)], name))
            else:
                _set(kwargs, name, _conditional_rows(current, _differing(mine, theirs)))

    with watch(c.pipe, change):
        return call(c)


def same(a, b) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)


PARAMS = [pytest.param(name, k, id=f"{name}-{mode}-k{k}") for name, mode in NAMES.items() for k in (1, 3)]


@pytest.mark.parametrize("name,k", PARAMS)
def test_no_cfg_equals_the_reference(name, k):
    c = case(name)
    assert declaration_for(c.pipe).mode == NAMES[name]
    _, values = recorded(name)
    want = no_cfg_reference(c, values, k)
    with negdelay.apply(c.pipe, c.negatives(), start_step=k, before="no_cfg"):
        got = call(c)
    assert same(got, want), f"{name}: apply(start_step={k}, before='no_cfg') differs from the reference"
    with negdelay.apply(c.pipe, c.negatives(), start_step=k):
        unconditional = call(c)
    assert not same(got, unconditional), f"{name}: no_cfg before step {k} changed nothing"


@pytest.mark.parametrize("name", ["StableDiffusionPipeline", "FluxPipeline", "ChromaPipeline"])
def test_no_cfg_with_a_stop_and_never_starting(name):
    c = case(name)
    stock, values = recorded(name)
    # the window 1..2: CFG off at step 0 and again from step 2 on
    want = no_cfg_reference(c, values, 1, stop=2)
    with negdelay.apply(c.pipe, c.negatives(), start_step=1, stop_step=2, before="no_cfg"):
        assert same(call(c), want)
    # a start that never comes: CFG off for the whole run; no negative at all
    want = no_cfg_reference(c, values, c.steps)
    with negdelay.apply(c.pipe, c.negatives(), start_step=c.steps, before="no_cfg"):
        got = call(c)
    assert same(got, want) and not same(got, stock)


def test_plan_shows_the_conditional_key():
    c = case("StableDiffusionPipeline")
    with negdelay.apply(c.pipe, c.negatives(), start_step=2, before="no_cfg") as applied:
        call(c)
    rows = len(applied.last_plan[0])
    assert applied.last_plan[0] == (sch.CONDITIONAL,) * rows
    assert applied.last_plan[1] == (sch.CONDITIONAL,) * rows
    assert all(k is not None and k is not sch.CONDITIONAL for k in applied.last_plan[2])


def test_per_row_segments_mix_no_cfg_and_the_default():
    """One call, rows with and without CFG before their start (segments): each row equals its own single-row
    reference behaviour, checked against the two whole-batch references row by row."""
    c = case("StableDiffusionPipeline")
    _, values = recorded("StableDiffusionPipeline")
    k = 2
    negs = c.negatives()
    n_rows = 2 * len(negs)  # two images per prompt
    texts = [negs[r // 2] for r in range(n_rows)]
    segments = [
        ([(sch.Point("step", 0), sch.CONDITIONAL)] if r % 2 == 0 else []) + [(sch.Point("step", k), texts[r])]
        for r in range(n_rows)
    ]
    with negdelay.apply(c.pipe, segments=segments):
        got = call(c)
    off = no_cfg_reference(c, values, k)
    with watch(c.pipe, substituting(values, k)):
        on = call(c)
    for r in range(n_rows):
        assert same(got[r], (off if r % 2 == 0 else on)[r]), f"row {r}"


def test_no_cfg_is_the_conditional_prediction_alone():
    """CFG off for the whole run on SD equals the stock pipeline with guidance off up to float noise (the batch of
    the reference holds the unconditional rows, the stock call does not)."""
    c = case("StableDiffusionPipeline")
    with negdelay.apply(c.pipe, c.negatives(), start_step=c.steps, before="no_cfg"):
        got = call(c).float()
    off = call(c, guidance_scale=1.0).float()
    with_cfg = call(c).float()
    assert torch.allclose(got, off, atol=1e-4), (got - off).abs().max()
    assert (with_cfg - off).abs().max() > 100 * (got - off).abs().max()


# ------------------------------------------------------------------------------------------- the step-end callback
@pytest.mark.parametrize("name", ["StableDiffusionPipeline", "StableDiffusionXLPipeline"])
def test_callback_no_cfg_with_the_prompt_as_the_pipelines_negative(name):
    """The callback cannot change step 0: with ``negative_prompt=prompt`` on the pipeline (step 0 without CFG) it
    equals the reference; without it, it refuses at step 0 and names both ways out."""
    c = case(name)
    _, values = recorded(name)
    for k in (1, 3):
        want = no_cfg_reference(c, values, k)
        callback = DelayedNegative.for_pipeline(c.pipe, c.negatives(), start_step=k, before="no_cfg")
        prompts = c.prompts if isinstance(c.prompts, str) else list(c.prompts)
        got = call(c, negative=prompts, callback_on_step_end=callback)
        assert same(got, want), f"{name}: callback before='no_cfg' from step {k} differs from the reference"
    prompts = c.prompts if isinstance(c.prompts, str) else list(c.prompts)
    callback = DelayedNegative.for_pipeline(c.pipe, c.negatives(), start_step=1, stop_step=2, before="no_cfg")
    assert same(call(c, negative=prompts, callback_on_step_end=callback), no_cfg_reference(c, values, 1, stop=2))
    callback = DelayedNegative.for_pipeline(c.pipe, c.negatives(), start_step=2, before="no_cfg")
    with pytest.raises(ValueError, match=r"before='no_cfg'.*step 0.*negative_prompt=prompt.*negdelay\.apply"):
        call(c, callback_on_step_end=callback)


# ---------------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("make", [
    lambda pipe: DelayedNegative("x", start_step=2, before="off"),
    lambda pipe: DelayedNegative("x", start_step=2, before=None),
    lambda pipe: negdelay.apply(pipe, "x", start_step=2, before="no-cfg"),
])
def test_bad_before_names_the_parameter(make):
    pipe = case("StableDiffusionPipeline").pipe
    with pytest.raises(ValueError, match="before must be one of 'unconditional', 'no_cfg'"):
        make(pipe)
    assert not negdelay.is_applied(pipe)


def test_before_with_segments_is_refused():
    pipe = case("StableDiffusionPipeline").pipe
    seg = [[(sch.Point("step", 2), "x")]]
    with pytest.raises(ValueError, match="before: segments carry their own"):
        DelayedNegative(segments=seg, before="no_cfg")
    with pytest.raises(ValueError, match="before: segments carry their own"):
        negdelay.apply(pipe, segments=seg, before="no_cfg")


def test_conditional_key_pickles_to_itself():
    import pickle

    assert pickle.loads(pickle.dumps(sch.CONDITIONAL)) is sch.CONDITIONAL
