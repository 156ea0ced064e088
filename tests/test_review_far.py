"""Review of AnyFlow FAR's ``steps="chunks"`` (commit f4f9c52): a step the pipeline's loop skips still counts.
AnyFlowPipeline's loop skips the same way (it is one chunk), so every case runs on both classes.

FAR's inner loop ``continue``s at an item whose timestep equals the next sigma's (``t == r``: a custom ``sigmas=`` /
``timesteps=`` schedule with a repeated value): no denoiser call and no ``scheduler.step`` there, so the scheduler's
step index falls one behind the loop's item from then on. docs/semantics.md counts step ``k`` within each chunk's
schedule of ``num_inference_steps`` items, and the contract's reference counts the loop's items; ``_chunk_step`` counts
the scheduler's step index, i.e. the steps actually taken. The control (the same custom schedule without a repeat)
shows that custom sigmas themselves are served. (The item right after a skipped one is itself a zero-length step:
the scheduler looks its timestep up as the first of the repeated pair, so its text has no effect; the cases below
start where the divergent counting changes the output.)
"""

from __future__ import annotations

import pytest
import torch

import negdelay
from contract_cases import call, case, recorded
from contract_reference import substituting, watch

NAMES = ("AnyFlowPipeline", "AnyFlowFARPipeline")


def reference(c, k, **kw):
    _, values = recorded(type(c.pipe).__name__)
    with watch(c.pipe, substituting(values, k)):
        return call(c, **kw)


def delayed(c, k, **kw):
    with negdelay.apply(c.pipe, c.negatives(), start_step=k):
        return call(c, **kw)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("k", [2, 3])
def test_control_custom_sigmas_without_a_repeat(name, k):
    c = case(name)
    sigmas = [1.0, 0.75, 0.5, 0.25]
    assert torch.equal(delayed(c, k, sigmas=sigmas), reference(c, k, sigmas=sigmas))


@pytest.mark.parametrize(
    "sigmas,k",
    [
        ([1.0, 0.75, 0.75, 0.25], 3),  # item 1 skipped: items 2, 3 run at step indices 1, 2
        ([1.0, 1.0, 0.5, 0.25], 2),  # item 0 skipped: items 1, 2, 3 run at step indices None (0), 1, 2
        ([1.0, 1.0, 0.5, 0.25], 3),
    ],
)
@pytest.mark.parametrize("name", NAMES)
def test_a_skipped_item_still_counts_as_a_step(name, sigmas, k):
    c = case(name)
    want = reference(c, k, sigmas=sigmas)
    assert not torch.equal(want, reference(c, k + 1, sigmas=sigmas))  # step k's text matters here
    assert torch.equal(delayed(c, k, sigmas=sigmas), want), (
        f"{name}: start_step={k} with sigmas={sigmas} differs from the reference (the loop's items)"
    )
