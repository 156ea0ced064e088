"""Qwen-Image 2.1's prefix KV cache and a delayed negative (classic pipeline; the contract covers start steps 1, 3).

The pipeline computes the unconditional text's keys/values at step 0 and reads them from a cache afterwards, so the
declaration's ``refill`` makes the unconditional call where its text changes run in ``kv_cache_mode="extract"``.
Proven here against references run with ``use_kv_cache=False`` (every step reads the text; no cache to refill,
written without negdelay), which on these tiny CPU float32 models equal the cached stock run byte for byte (checked):
a start, a start and stop window, and the refill's necessity.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

import negdelay
from contract_cases import call, case, recorded
from contract_reference import substituting, watch
from negdelay.pipelines import REGISTRY

NAME = "QwenImage21Pipeline"


def same(a, b) -> bool:
    return a.shape == b.shape and torch.equal(a, b)


@pytest.fixture(scope="module")
def c():
    return case(NAME)


def uncached_reference(c, values, start, stop=None):
    """The stock pipeline without its cache, the unconditional text B's (the negative's) at steps [start, stop)."""
    inner = substituting(values, start)

    def change(step, model, slot, kwargs):
        if stop is None or step < stop:
            inner(step, model, slot, kwargs)

    with watch(c.pipe, change):
        return call(c, use_kv_cache=False)


def delayed(c, **schedule):
    with negdelay.apply(c.pipe, c.negatives(), **schedule):
        return call(c)


def test_the_cache_off_is_the_stock_run_here(c):
    stock, _ = recorded(NAME)
    assert same(call(c, use_kv_cache=False), stock)  # what makes the uncached references below stand for cached runs


@pytest.mark.parametrize("start", [1, 2])
def test_a_start_refills_the_cache(c, start):
    _, values = recorded(NAME)
    want = uncached_reference(c, values, start)
    assert same(delayed(c, start_step=start), want)
    assert not same(want, recorded(NAME)[0])


def test_a_stop_refills_it_with_the_pipelines_own_negative(c):
    stock, values = recorded(NAME)
    want = uncached_reference(c, values, 1, stop=3)
    assert same(delayed(c, start_step=1, stop_step=3), want)
    assert not same(want, uncached_reference(c, values, 1)) and not same(want, stock)


def test_without_the_refill_the_switch_is_not_seen(c, monkeypatch):
    _, values = recorded(NAME)
    monkeypatch.setitem(REGISTRY, NAME, dataclasses.replace(REGISTRY[NAME], refill=None))
    assert not same(delayed(c, start_step=1), uncached_reference(c, values, 1))


def test_with_the_cache_off_nothing_is_refilled(c):
    _, values = recorded(NAME)
    with negdelay.apply(c.pipe, c.negatives(), start_step=1, stop_step=3):
        got = call(c, use_kv_cache=False)
    assert same(got, uncached_reference(c, values, 1, stop=3))
