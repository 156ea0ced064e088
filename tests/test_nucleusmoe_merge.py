"""Nucleus-MoE Image's merge: rows of two widths padded to the wider, masked; all-negative rows as encoded."""

import torch

from negdelay.pipelines.nucleusmoe import MASK, TOKENS, concat_to_widest


def test_all_negative_rows_are_the_negative_batch_as_encoded():
    neg = {TOKENS: torch.randn(2, 16, 3), MASK: None}
    own = {TOKENS: torch.randn(2, 8, 3), MASK: None}
    out = concat_to_widest(own, neg, (1, 0))
    assert torch.equal(out[TOKENS], neg[TOKENS].flip(0)) and out[MASK] is None


def test_mixed_rows_are_padded_to_the_wider_and_masked():
    own = {TOKENS: torch.randn(2, 8, 3), MASK: None}
    neg = {TOKENS: torch.randn(2, 16, 3), MASK: torch.tensor([[1] * 16, [1] * 10 + [0] * 6])}
    out = concat_to_widest(own, neg, (None, 1))
    assert out[TOKENS].shape == (2, 16, 3)
    assert torch.equal(out[TOKENS][0, :8], own[TOKENS][0]) and not out[TOKENS][0, 8:].any()
    assert out[MASK].tolist() == [[1] * 8 + [0] * 8, [1] * 10 + [0] * 6]
