"""Steps counted by the progress bar (a declaration's ``steps="progress"``) where the contract's cases cannot show it:
a diffusion-forcing step matrix longer than ``num_inference_steps`` (``ar_step > 0``), a long video (one progress
bar per iteration, each counted from 0), and the pyramid's stages (one bar, several ``set_timesteps``). Each is
proven against the contract's independent reference (tests/contract_reference.py), which counts the same bar."""

from __future__ import annotations

import pytest
import torch

import negdelay
from contract_cases import call, case
from contract_reference import substituting, text_inputs, watch

DF = "SkyReelsV2DiffusionForcingPipeline"
PYRAMID = "HeliosPyramidPipeline"


def _recorded(c, **over):
    """Runs A (own negative) and B (the delayed one as negative_prompt): the reference's text inputs, and A's
    progress-bar steps per bar (a step index that drops back to 0 opens a new bar)."""
    with watch(c.pipe) as calls_a:
        call(c, **over)
    with watch(c.pipe) as calls_b:
        call(c, negative=c.negatives(), **over)
    bars, last = [], None
    for step, *_ in calls_a:
        if last is None or step < last:
            bars.append(0)
        bars[-1] = max(bars[-1], step + 1)
        last = step
    return text_inputs(calls_a, calls_b), bars


def _check(c, k, values, **over):
    with watch(c.pipe, substituting(values, k)):
        want = call(c, **over)
    with negdelay.apply(c.pipe, c.negatives(), start_step=k):
        got = call(c, **over)
    assert got.shape == want.shape and torch.equal(got, want), f"apply(start_step={k}) differs from the reference"
    with watch(c.pipe):
        stock = call(c, **over)
    assert not torch.equal(got, stock), f"start_step={k}: the delayed negative changed nothing"


@pytest.mark.parametrize("k", [2, 5])
def test_diffusion_forcing_async_matrix_counts_its_rows(k):
    """``ar_step=2``: frames lag each other, the step matrix has more rows than ``num_inference_steps``; step 5 is a
    row past ``num_inference_steps`` (4), so a count by the scheduler's steps would never reach it."""
    c = case(DF)
    over = dict(ar_step=2)
    values, bars = _recorded(c, **over)
    assert bars == [c.steps + 2], bars  # 2 latent frames: the second starts 2 rows later
    _check(c, k, values, **over)


def test_diffusion_forcing_long_video_counts_each_iteration_from_zero():
    """A long video runs its step matrix once per iteration, each in a progress bar of its own."""
    c = case(DF)
    over = dict(num_frames=17, base_num_frames=9, overlap_history=5)
    values, bars = _recorded(c, **over)
    assert len(bars) >= 2, bars
    _check(c, 2, values, **over)


@pytest.mark.parametrize("k", [1, 3])
def test_pyramid_counts_steps_across_stages(k):
    """Two stages of 2 steps in one bar of 4: step 3 is the second stage's second step."""
    c = case(PYRAMID)
    values, bars = _recorded(c)
    assert bars == [sum(c.call["pyramid_num_inference_steps_list"])], bars
    _check(c, k, values)


@pytest.mark.parametrize("point", [dict(start_sigma=0.5), dict(start_percent=0.3)])
def test_noise_levels_are_refused(point):
    c = case(DF)
    with negdelay.apply(c.pipe, c.negatives(), **point), pytest.raises(ValueError, match="start_step or start_frac"):
        call(c)


def test_fraction_counts_the_bar():
    """``start_fraction`` is a fraction of the bar's steps (6 rows with ``ar_step=2``: 0.5 is step 3)."""
    c = case(DF)
    over = dict(ar_step=2)
    with negdelay.apply(c.pipe, c.negatives(), start_fraction=0.5):
        by_fraction = call(c, **over)
    with negdelay.apply(c.pipe, c.negatives(), start_step=3):
        by_step = call(c, **over)
    assert torch.equal(by_fraction, by_step)


def test_bar_counts_updates_and_items():
    """The wrapped progress bar's step: ``update()`` calls so far, or the index of the current item of a loop over
    it (``for t in self.progress_bar(timesteps)``); its total from ``total=`` or the iterable's length."""
    from types import SimpleNamespace

    from tqdm.auto import tqdm

    from negdelay.hooks.calls import _Bar, _bar_total

    tracker = SimpleNamespace(state=None)
    looped = _Bar(tqdm([10, 20, 30], disable=True), tracker, _bar_total([10, 20, 30]))
    assert looped.total == 3
    assert [looped.step for _ in looped] == [0, 1, 2]
    with _Bar(tqdm(total=5, disable=True), tracker, _bar_total(total=5)) as updated:
        seen = []
        for _ in range(3):
            seen.append(updated.step)
            updated.update()
    assert (updated.total, seen, updated.step) == (5, [0, 1, 2], 3)
