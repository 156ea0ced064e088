"""Bria's negative path gives an empty negative all-zero rows (not an encoded ""): so does negdelay."""

import warnings

import torch

import negdelay
from builders.bria import bria


def _run(case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return case.pipe(prompt=["a red cat", "a blue dog"], num_inference_steps=case.steps,
                         generator=torch.Generator().manual_seed(0), **case.call)[0]


def test_empty_negative_is_the_stock_empty_negative():
    case = bria()
    stock = _run(case)
    with negdelay.apply(case.pipe, ["", ""], start_step=1):
        assert torch.equal(_run(case), stock)
    with negdelay.apply(case.pipe, ["blurry hat", ""], start_step=1):
        assert not torch.equal(_run(case), stock)
