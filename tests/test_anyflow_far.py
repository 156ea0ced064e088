"""AnyFlow FAR's per-chunk steps (``steps="chunks"``), beyond the contract: every chunk is a full run, so a fraction
is of ``num_inference_steps`` (not of chunks x steps, the pipeline's ``_num_timesteps``); the reference with the
negative from step 0 is the stock run with that negative; a video context's KV-cache pass, which runs before any
chunk has set the scheduler's timesteps, is refused with an error that names the arguments."""

from __future__ import annotations

import pytest
import torch

import negdelay
from contract_cases import call, case, recorded
from contract_reference import substituting, watch

NAME = "AnyFlowFARPipeline"


def reference(c, k):
    _, values = recorded(NAME)
    with watch(c.pipe, substituting(values, k)):
        return call(c)


def test_a_fraction_is_of_each_chunks_steps():
    c = case(NAME)
    with negdelay.apply(c.pipe, c.negatives(), start_fraction=0.5):
        got = call(c)
    assert torch.equal(got, reference(c, c.steps // 2))
    assert not torch.equal(got, recorded(NAME)[0])


def test_the_reference_from_step_0_is_the_stock_negative():
    c = case(NAME)
    assert torch.equal(reference(c, 0), call(c, negative=c.negatives()))


def test_a_video_context_is_refused():
    c = case(NAME)
    context = torch.zeros(2 * len(c.prompts), 1, 16, 2, 2)  # one latent frame: the first chunk is context
    with negdelay.apply(c.pipe, c.negatives(), start_step=1):
        with pytest.raises(ValueError, match="video_latents"):
            call(c, video_latents=context)
    with negdelay.apply(c.pipe, c.negatives(), start_step=1):  # the next call is served again
        assert torch.equal(call(c), reference(c, 1))
