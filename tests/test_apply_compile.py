"""``negdelay.apply`` with the denoiser wrapped by ``torch.compile`` (CPU, ``backend="eager"``): the hook reads no
stack frames, so the compiled model gives the same image as the uncompiled one, and ``remove`` restores stock."""

from __future__ import annotations

import torch

import negdelay
from contract_cases import all_cases

NEGS = ["blurry hat", "ugly dog"]


def _run(case):
    return case.output(case.pipe(prompt=list(case.prompts), num_inference_steps=case.steps, num_images_per_prompt=2,
                                 generator=torch.Generator().manual_seed(0), **case.call))


def test_apply_on_a_compiled_denoiser_equals_the_uncompiled_one():
    cases = all_cases()
    plain, compiled = cases["FluxPipeline"](), cases["FluxPipeline"]()
    with negdelay.apply(plain.pipe, NEGS, start_step=2):
        want = _run(plain)
    stock = _run(compiled)
    compiled.pipe.transformer = torch.compile(compiled.pipe.transformer, backend="eager")
    with negdelay.apply(compiled.pipe, NEGS, start_step=2):
        got = _run(compiled)
    assert torch.equal(got, want)
    assert not torch.equal(got, stock)
    assert torch.equal(_run(compiled), stock)
