"""The guider contract, for every modular pipeline class negdelay.guider serves, on tiny components.

(a) a start at or past the last step gives the stock output, byte for byte;
(b) a start at step k in {1, 3} gives exactly what an independent reference gives: the stock pipeline whose
    denoiser gets, in the unconditional calls from step k on, the text inputs of a stock run that had the
    negative as its negative_prompt (tests/modular_reference.py; no negdelay code); and it differs from both
    the pipeline's own negative and the delayed one used throughout;
(c) after remove() the pipeline has its own objects back and gives the stock output again.
Also: start_step=0 equals the stock pipeline given the negative as negative_prompt.
"""

from __future__ import annotations

import pytest

import builders_modular as bm
import modular_reference as ref
from negdelay import guider as nd_guider


def _equal(a, b) -> bool:
    return ref._same(a, b)


def _record(case, change=None):
    with ref.recording(case, change) as calls:
        out = case.run()
    return out, calls


def _record_negative(case):
    with ref.recording(case) as calls:
        out = case.run(**ref.negative_run(case))
    return out, calls


def _delayed(case, **schedule):
    with nd_guider.apply(case.pipe, case.negative, **schedule):
        return case.run()


def test_served_list_is_what_this_file_proves():
    assert set(nd_guider.SERVED) == set(bm.CASES)
    assert set(nd_guider.SERVED) | set(nd_guider.NOT_SERVED) == set(nd_guider.modular_classes())
    assert not set(nd_guider.SERVED) & set(nd_guider.NOT_SERVED)


# flex attention traces with torch.dynamo at its first call in a process (~15 s on one core)
SLOW = {"WanAnimate2ModularPipeline", "WanAnimate2DistilledModularPipeline"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in sorted(bm.CASES)])
def test_contract(name):
    case = bm.CASES[name]()
    pipe = case.pipe
    assert type(pipe).__name__ == name
    assert nd_guider.supports(pipe)

    stock, own_calls = _record(case)
    with_negative, neg_calls = _record_negative(case)
    assert not _equal(stock, with_negative), "the negative must change the stock output, or nothing is proven"
    assert set(own_calls.per_denoiser) == set(case.denoisers)  # every denoiser runs (Wan 2.2: both experts)
    role = ref.source_role(case)
    keys = ref.text_keys(own_calls, neg_calls, role)

    # (a) never switching
    assert _equal(_delayed(case, start_step=case.steps), stock)
    # from step 0: the stock pipeline given the negative (a pipeline without a negative_prompt input: the reference)
    from_0 = with_negative if role == 1 else _record(case, ref.substituted(neg_calls, keys, 0, source_role=0))[0]
    if case.reprefill:  # the cache filled from the negative at step 0 is the stock run's own
        assert _equal(_record(case, ref.substituted(neg_calls, keys, 0, reprefill=True))[0], with_negative)
    assert _equal(_delayed(case, start_step=0), from_0)

    # (b) delayed == the independent reference
    for k in (1, 3):
        reference, _ = _record(case, ref.substituted(neg_calls, keys, k, source_role=role, reprefill=case.reprefill))
        delayed = _delayed(case, start_step=k)
        assert _equal(delayed, reference), f"start_step={k}: differs from the reference"
        assert not _equal(delayed, stock) and not _equal(delayed, from_0), f"start_step={k} changed nothing"
        if case.reprefill:  # the refilled cache matters: with the stale one the result differs
            stale, _ = _record(case, ref.substituted(neg_calls, keys, k, source_role=role))
            assert not _equal(delayed, stale), f"start_step={k}: the cache refill changed nothing"

    # (c) remove restores the pipeline's own objects (the guiders untouched: the wrappers above ran on copies) and
    # output
    before = dict(pipe.__dict__)
    guiders = {n: dict(vars(g)) for n, g in before.items() if n.startswith("guider") or n.endswith("guider")}
    nd_guider.apply(pipe, case.negative, start_step=1)
    assert nd_guider.is_applied(pipe) and pipe.guider is not before["guider"]
    nd_guider.remove(pipe)
    assert not nd_guider.is_applied(pipe)
    assert pipe.__dict__.keys() == before.keys() and all(pipe.__dict__[k] is v for k, v in before.items())
    assert all(_equal(dict(vars(before[n])), state) for n, state in guiders.items())
    assert _equal(case.run(), stock)
