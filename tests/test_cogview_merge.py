"""CogView4's merge: rows of unmasked text from two batches share a call only at one width."""

import pytest
import torch

from negdelay.pipelines.cogview import TOKENS, concat_same_width


def test_mixed_rows_of_one_width_keep_each_source_row():
    own, neg = {TOKENS: torch.zeros(2, 16, 3)}, {TOKENS: torch.ones(2, 16, 3)}
    out = concat_same_width(own, neg, (None, 1))[TOKENS]
    assert torch.equal(out[0], own[TOKENS][0]) and torch.equal(out[1], neg[TOKENS][1])


def test_all_negative_rows_take_the_negatives_width():
    own, neg = {TOKENS: torch.zeros(2, 16, 3)}, {TOKENS: torch.ones(2, 32, 3)}
    assert concat_same_width(own, neg, (1, 0))[TOKENS].shape == (2, 32, 3)


def test_mixed_rows_of_two_widths_are_refused_with_the_widths():
    own, neg = {TOKENS: torch.zeros(2, 16, 3)}, {TOKENS: torch.ones(2, 32, 3)}
    with pytest.raises(ValueError, match="16 tokens.*32 tokens"):
        concat_same_width(own, neg, (None, 0))
