"""LTX long multi-prompt image-to-video where the contract's case cannot show it: every temporal window has a text of
its own (the reference's text inputs must be constant over the calls, so the contract's case gives both windows one
prompt), and steps skipped by ``skip_steps_sigma_threshold`` (no denoiser call, no scheduler step). A delayed negative
starts at the same step of every window, counted by that window's progress bar, as the reference counts it
(tests/contract_reference.py)."""

from __future__ import annotations

import pytest
import torch

import negdelay
from contract_cases import call, case
from contract_reference import substituting, text_inputs, watch

NAME = "LTXI2VLongMultiPromptPipeline"
TEXT = ("encoder_hidden_states", "encoder_attention_mask")


def _uncond_rows(calls) -> list[dict]:
    """The unconditional row (row 0 of ``[negative, prompt]``) of the text inputs, per transformer call."""
    return [{n: kw[n][:1] for n in TEXT} for _, model, _, kw in calls if model == "transformer"]


@pytest.mark.parametrize("k", [1, 3])
def test_each_window_with_its_own_text_delays_from_step_k(k):
    c = case(NAME)
    two = "a red cat | a blue dog"  # bar-split: window 0 takes the first text, window 1 the second
    with watch(c.pipe) as calls_b:
        call(c, negative=c.negatives(), prompt=two)
    rows = _uncond_rows(calls_b)
    conditional = {tuple(kw["encoder_hidden_states"][1].flatten()[:4].tolist()) for _, _, _, kw in calls_b}
    assert len(conditional) == 2, "the two windows should have different prompts"
    assert all(torch.equal(r[n], rows[0][n]) for r in rows for n in TEXT), "the negative differs between windows"

    def change(step, model, slot, kwargs):
        if step >= k and model == "transformer":
            for n in TEXT:
                kwargs[n] = torch.cat([rows[0][n], kwargs[n][1:]])

    with watch(c.pipe, change) as calls_ref:
        want = call(c, prompt=two)
    assert sum(step >= k for step, *_ in calls_ref) == 2 * (c.steps - 1 - k), "two windows of steps - 1 calls"
    with negdelay.apply(c.pipe, c.negatives(), start_step=k):
        got = call(c, prompt=two)
    assert torch.equal(got, want), f"apply(start_step={k}) differs from the per-window reference"
    assert not torch.equal(got, call(c, prompt=two)), "the delayed negative changed nothing"


def test_skipped_steps_are_counted():
    """``skip_steps_sigma_threshold=0.9`` skips each window's first step (sigma 1.0): no denoiser call there. Step 1
    is the first call, and the delay from step 1 covers it (a count by the scheduler's step index would call it 0:
    the index is set at the first ``scheduler.step``)."""
    c = case(NAME)
    over = dict(skip_steps_sigma_threshold=0.9)
    with watch(c.pipe) as calls_a:
        call(c, **over)
    with watch(c.pipe) as calls_b:
        call(c, negative=c.negatives(), **over)
    assert sorted({step for step, *_ in calls_a}) == list(range(1, c.steps - 1)), "step 0 should be skipped"
    values = text_inputs(calls_a, calls_b)
    with watch(c.pipe, substituting(values, 1)):
        want = call(c, **over)
    with negdelay.apply(c.pipe, c.negatives(), start_step=1):
        got = call(c, **over)
    assert torch.equal(got, want), "apply(start_step=1) differs from the reference"
    with watch(c.pipe, substituting(values, 2)):
        assert not torch.equal(call(c, **over), want), "starting at step 1 or 2 should differ"
