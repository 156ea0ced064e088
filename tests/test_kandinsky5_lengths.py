"""Kandinsky 5 with a negative of another token length than the pipeline's own: the Qwen tokens and their
positions (``text_rope_pos``) change length together. The contract's case keeps both lengths equal, because its
"each input matters" check swaps one input alone, and positions of one length with tokens of another fail in
the transformer; here the delayed runs are compared with the contract's reference, byte for byte."""

from __future__ import annotations

import pytest

import negdelay
import test_contract as tc
from builders.kandinsky5 import t2v

NAME = "Kandinsky5T2VPipeline[own long negative]"


@pytest.fixture(scope="module")
def long_negative_case():
    c = t2v()
    del c.call["negative_prompt"]  # the pipeline's default negative: 16 tokens here, the delayed ones 3
    tc.CASES[NAME] = lambda: c
    yield c
    del tc.CASES[NAME]


@pytest.mark.parametrize("k", [1, 3])
def test_delayed_negative_of_another_length_equals_reference(long_negative_case, k):
    c = long_negative_case
    _, values = tc.recorded(NAME)
    found = values[("transformer", 1)]
    assert found["text_rope_pos"][0].shape != found["text_rope_pos"][1].shape  # the lengths do differ
    want = tc.reference(c, values, k)
    with negdelay.apply(c.pipe, c.negatives(), start_step=k):
        assert tc.same(tc.call(c), want)


def test_merge_of_rows_of_different_widths_pads_and_follows_the_width():
    """Per-row schedules can put the pipeline's own negative (16 tokens) next to a delayed one (3 tokens): rows are
    right-padded with zeros to the widest and the positions cover that width."""
    import torch

    from negdelay.pipelines.kandinsky5 import merge

    own = {"encoder_hidden_states": torch.randn(2, 16, 4), "pooled_projections": torch.randn(2, 5),
           "text_rope_pos": torch.arange(2)}
    negative = {"encoder_hidden_states": torch.randn(2, 3, 4), "pooled_projections": torch.randn(2, 5),
                "text_rope_pos": torch.arange(3)}
    out = merge(own, negative, (None, 1))
    assert torch.equal(out["encoder_hidden_states"][0], own["encoder_hidden_states"][0])
    assert torch.equal(out["encoder_hidden_states"][1, :3], negative["encoder_hidden_states"][1])
    assert not out["encoder_hidden_states"][1, 3:].any()
    assert torch.equal(out["pooled_projections"], torch.stack([own["pooled_projections"][0],
                                                               negative["pooled_projections"][1]]))
    assert torch.equal(out["text_rope_pos"], torch.arange(16))
    only_negative = merge(own, negative, (0, 1))
    assert only_negative["encoder_hidden_states"].shape == (2, 3, 4)
    assert torch.equal(only_negative["text_rope_pos"], torch.arange(3))
