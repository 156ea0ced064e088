"""The contract every served pipeline passes, parametrized over the registry (in the spirit of diffusers'
``PipelineTesterMixin``): a pipeline joins by a declaration (src/negdelay/pipelines/) and a tiny-components builder
(tests/builders/). Against stock runs and an independent reference (contract_reference.py), on CPU, byte for byte:

(a) never switching (start at N) = the stock pipeline; (b) delayed from step k = the reference, for k in {1, 3} and
every scheduler the case offers (variants with ``full_grid=False``: k = 1, first scheduler); the step-end callback
too where one serves the class; (c) ``remove``/leaving the context restores stock; (d) no CFG -> no change;
(e) the declaration names every text-carrying input the reference finds, and each of them matters.
"""

from __future__ import annotations

import contextlib

import pytest
import torch

import negdelay
from contract_cases import CASES, call, case, recorded
from contract_reference import substituting, watch
from negdelay.pipelines import REGISTRY, declaration_for

SERVED = sorted(name for name in CASES if name.split("[")[0] in REGISTRY)  # "Class[variant]": a second case


@contextlib.contextmanager
def scheduler(c, index):
    pipe = c.pipe
    own = pipe.scheduler
    if index:
        pipe.scheduler = c.schedulers[index](pipe)
    try:
        yield
    finally:
        pipe.scheduler = own


def reference(c, values, k, **kw):
    with watch(c.pipe, substituting(values, k, **kw)):
        return call(c)


def grid(name):
    try:
        c = case(name)
    except Exception:  # noqa: BLE001 -- a builder that fails shows up as a failing test, not a broken collection
        return [(1, 0)]
    ks = (1, 3) if c.full_grid else (1,)
    scheds = range(max(1, len(c.schedulers))) if c.full_grid else range(1)
    return [(k, s) for s in scheds for k in ks]


def same(a, b) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)


PARAMS = [pytest.param(name, k, s, id=f"{name}-k{k}-s{s}") for name in SERVED for k, s in grid(name)]


@pytest.mark.parametrize("name", SERVED)
def test_never_switching_is_stock(name):
    c = case(name)
    stock, _ = recorded(name)
    with negdelay.apply(c.pipe, c.negatives(), start_step=c.steps):
        assert same(call(c), stock)


@pytest.mark.parametrize("name,k,s", PARAMS)
def test_delayed_equals_reference(name, k, s):
    c = case(name)
    _, values = recorded(name)
    with scheduler(c, s):
        want = reference(c, values, k)
        with negdelay.apply(c.pipe, c.negatives(), start_step=k):
            got = call(c)
        assert same(got, want), f"{name}: apply(start_step={k}) differs from the reference"
        declaration = declaration_for(c.pipe)
        if declaration.callback and s == 0:
            callback = negdelay.DelayedNegative.for_pipeline(c.pipe, c.negatives(), start_step=k)
            assert same(call(c, callback_on_step_end=callback), want), f"{name}: the callback differs"


@pytest.mark.parametrize("name", SERVED)
def test_remove_restores_stock(name):
    c = case(name)
    stock, _ = recorded(name)
    with negdelay.apply(c.pipe, c.negatives(), start_step=1):
        pass
    assert same(call(c), stock)
    negdelay.apply(c.pipe, c.negatives(), start_step=1)
    negdelay.remove(c.pipe)
    assert not negdelay.hooks.is_applied(c.pipe)
    assert not any(negdelay.hooks.is_applied(getattr(c.pipe, part)) for part, _ in declaration_for(c.pipe).parts)
    assert same(call(c), stock)
    assert "encode_prompt" not in c.pipe.__dict__


@pytest.mark.parametrize("name", SERVED)
def test_no_guidance_no_change(name):
    c = case(name)
    undo = c.no_cfg(c.pipe) if callable(c.no_cfg) else None
    overrides = {} if callable(c.no_cfg) else c.no_cfg
    try:
        stock = call(c, **overrides)
        with negdelay.apply(c.pipe, c.negatives(), start_step=1):
            assert same(call(c, **overrides), stock)
    finally:
        if undo is not None:
            undo()


@pytest.mark.parametrize("name", SERVED)
def test_declared_inputs_are_the_text_inputs_and_each_matters(name):
    c = case(name)
    _, values = recorded(name)
    declaration = declaration_for(c.pipe)
    found = {n for inputs in values.values() for n in inputs}
    models = {model for model, _ in values}
    assert found, f"{name}: the negative changes no denoiser input"
    assert found <= set(declaration.inputs), f"{name}: undeclared text inputs {sorted(found - set(declaration.inputs))}"
    assert models <= set(declaration.denoisers), f"{name}: undeclared denoisers {sorted(models - set(declaration.denoisers))}"
    full = reference(c, values, 1)
    pairs = sorted({(model, n) for (model, _), inputs in values.items() for n in inputs})
    for model, n in pairs if len(models) > 1 else [(None, n) for n in sorted(found)]:
        skip = ((model, n),) if model else (n,)
        try:
            without = reference(c, values, 1, skip=skip)
        except (RuntimeError, ValueError, IndexError):  # e.g. the negative's tokens with the own text's mask width:
            continue  # the other inputs cannot even run without this one, so it matters
        assert not same(without, full), f"{name}: swapping all but {model or ''} {n} changes nothing"
